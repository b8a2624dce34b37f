# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in
# all copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL
# THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
# THE SOFTWARE.

"""
perception.launch.py through ``ros2 launch``, as a user runs it: arguments and Ctrl-C.

The launch file's arguments that set node parameters are named like those parameters (checked
against the nodes' PARAMETERS tables), a bad argument value is refused with a clear message, and
Ctrl-C to the whole process group (what a terminal sends) ends every node with exit code 0 and
no traceback. The ``ros2 launch`` tests run the package installed in an ament prefix (``make
build``) and skip with the reason where it is not.
"""
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time

from conftest import installed_package, REPO, wait_until
import pytest

rclpy = pytest.importorskip('rclpy')
# I100: these must follow the importorskip, so they cannot all sort after pytest.
from sam2real_ros.nodes import graph  # noqa: E402, I100

SHARE, PYTHONPATH = installed_package()
ROS2 = shutil.which('ros2')
needs_install = pytest.mark.skipif(SHARE is None or ROS2 is None, reason=str(
    PYTHONPATH if SHARE is None else 'the ros2 command (ros2cli, ros2launch) is not installed'))


def test_launch_arguments_are_named_like_the_parameters_they_set():
    setup = open(os.path.join(REPO, 'setup.py')).read()
    for node in graph.NODES:
        table = importlib.import_module(node.module).PARAMETERS
        for name in node.launch_params:
            assert name in table, f'launch argument {name} is no parameter of {node.name}'
        assert f"'{node.executable} = {node.module}:main'" in setup, node
        if node.params_file:
            assert os.path.isfile(os.path.join(REPO, 'config', node.params_file))


def _ros2_launch(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    return subprocess.run([ROS2, 'launch', 'sam2real', 'perception.launch.py', *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


@needs_install
@pytest.mark.rostest
def test_show_args_lists_every_argument():
    res = _ros2_launch('--show-args')
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ['namespace', 'sim', 'image_topic', 'model_path', 'dataset_root',
                 'segmentation_node_params_file', *graph.launch_parameters()]:
        assert f"'{name}':" in res.stdout, (name, res.stdout)


@needs_install
@pytest.mark.rostest
def test_a_bad_launch_argument_is_refused_with_its_name_and_choices():
    res = _ros2_launch('sim:=maybe')
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert 'Argument "sim" provided value "maybe" is not valid' in out, out
    assert "Valid options are: ['true', 'false']" in out, out
    assert 'Traceback' not in out and 'process started' not in out, out


@needs_install
@pytest.mark.rostest
@pytest.mark.slow
def test_ctrl_c_to_the_launched_graph_exits_cleanly(processes, tmp_path, fast_onnx_model):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: every node exits 0."""
    proc = processes.start(
        ROS2, 'launch', 'sam2real', 'perception.launch.py', 'sim:=true', 'namespace:=ctrl_c',
        f'model_path:={fast_onnx_model}', f'dataset_root:={tmp_path / "data"}',
        name='launch', python=False, env={'PYTHONPATH': PYTHONPATH})
    ready = ('loaded model', 'segmenter fallback', 'recording grasp episodes',
             'simulated grasp server', 'publishing 640x480')
    assert wait_until(lambda: all(r in processes.output(proc) for r in ready), 180), \
        processes.output(proc)
    time.sleep(2.0)  # labels flow
    os.killpg(proc.pid, signal.SIGINT)  # every process of the session, launch included
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        code = processes.stop(proc, sig=signal.SIGKILL, group=True)
    out = processes.output(proc)
    assert code == 0, out
    assert 'Traceback' not in out and 'RCLError' not in out, out
    assert "escalating to 'SIGTERM'" not in out and 'process has died' not in out, out
    names = [n.executable for n in graph.NODES if n.switch != 'adaptation']  # off by default
    for name in names:
        assert f'[INFO] [{name}-' in out and 'process has finished cleanly' in out, (name, out)
    assert out.count('process has finished cleanly') == len(names), out


@needs_install
@pytest.mark.rostest
def test_autostart_false_leaves_the_transitions_to_a_manager(processes, tmp_path,
                                                             fast_onnx_model):
    """``autostart:=false``: the lifecycle nodes wait unconfigured; a manager drives them."""
    from sam2real_ros.nodes.lifecycle import LifecycleClient
    from sam2real_ros.nodes.runner import BackgroundNode
    proc = processes.start(
        ROS2, 'launch', 'sam2real', 'perception.launch.py', 'autostart:=false',
        'recorder:=false', 'namespace:=manual', f'model_path:={fast_onnx_model}',
        f'dataset_root:={tmp_path / "data"}', name='launch', python=False,
        env={'PYTHONPATH': PYTHONPATH})
    assert wait_until(lambda: processes.output(proc).count(
        'unconfigured: waiting for the lifecycle transitions') == 2, 120), processes.output(proc)
    bg = BackgroundNode('lifecycle_manager_test')
    try:
        clients = [LifecycleClient(bg.node, f'/manual/{name}')
                   for name in ('sam_worker', 'segmentation_node')]
        assert [c.state() for c in clients] == ['unconfigured'] * 2, processes.output(proc)
        for client in clients:
            assert client.transition('configure') and client.transition('activate'), \
                processes.output(proc)
        assert [c.state() for c in clients] == ['active'] * 2
    finally:
        bg.close()
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(60) == 0, processes.output(proc)


@needs_install
@pytest.mark.rostest
def test_a_node_that_exits_shuts_the_launch_down_with_its_code(processes, tmp_path,
                                                               fast_onnx_model):
    """
    A node that stops on a bad value ends the whole launch with ITS exit code (#21), in one line.

    The full simulated graph runs; the segmentation node's parameter file has a value out of
    range, so it exits 2 while the others start: they are stopped, ros2 launch exits 2 (it
    exited 1 whatever the node's code, 'Caught exception in launch').
    """
    config = open(os.path.join(SHARE, 'config', 'segmentation_node.yaml')).read()
    assert '\n    threads: 0 ' in config, config
    params = tmp_path / 'segmentation_node.yaml'
    params.write_text(config.replace('\n    threads: 0 ', '\n    threads: 999 '))
    proc = processes.start(
        ROS2, 'launch', 'sam2real', 'perception.launch.py', 'sim:=true', 'namespace:=dead',
        f'segmentation_node_params_file:={params}', f'model_path:={fast_onnx_model}',
        f'dataset_root:={tmp_path / "data"}', name='launch', python=False,
        env={'PYTHONPATH': PYTHONPATH})
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        code = processes.stop(proc, sig=signal.SIGKILL, group=True)
    out = processes.output(proc)
    assert code == 2, out
    assert out.count('segmentation_node exited with code 2; shutting the launch down') == 1, out
    assert 'threads' in out, out  # the node's own line says which parameter
    assert 'Traceback' not in out and 'Destroyable' not in out, out
    assert 'Caught exception in launch' not in out, out
    assert "escalating to 'SIGKILL'" not in out, out


def test_launch_exit_codes_and_nothing_recorded_outside_ros2_launch():
    """A node killed by signal N gives 128 + N, as a shell reports it."""
    pytest.importorskip('ros2launch', reason='ros2launch (ros2 launch) is not installed')
    from sam2real_ros.nodes import launch_exit
    assert [launch_exit.exit_code(c) for c in (0, 2, -9, -6)] == [0, 2, 137, 134]
    # outside ros2 launch (no option extension loaded) nothing is recorded: the launch file
    # raises instead and launch exits 1
    assert launch_exit.record('segmentation_node', 2) is False


def _params_yaml(path, node, **values):
    lines = [f'/**/{node}:', '  ros__parameters:'] + [f'    {k}: {v}' for k, v in values.items()]
    path.write_text('\n'.join(lines) + '\n')
    return path


@needs_install
@pytest.mark.rostest
@pytest.mark.slow
def test_a_recorder_that_exits_by_its_watchdog_is_started_again(processes, tmp_path):
    """
    Exit 3 (the recorder cannot receive) restarts the recorder; the launch goes on (#22).

    A camera at 0.1 Hz and ``watchdog_s`` 1 s: the recorder sees a matched camera that sends
    nothing for 2 s and exits with code 3, the launch starts it again after the delay.
    """
    camera = _params_yaml(tmp_path / 'camera.yaml', 'sim_camera', rate_hz=0.1)
    recorder = _params_yaml(tmp_path / 'recorder.yaml', 'grasp_recorder', watchdog_s=1.0,
                            min_free_gb=0.0)
    proc = processes.start(
        ROS2, 'launch', 'sam2real', 'perception.launch.py', 'sim:=true', 'sam_worker:=false',
        'segmentation:=false', 'namespace:=respawn', 'recorder_respawn_delay:=0.5',
        f'sim_camera_params_file:={camera}', f'grasp_recorder_params_file:={recorder}',
        f'dataset_root:={tmp_path / "data"}', name='launch', python=False,
        env={'PYTHONPATH': PYTHONPATH})

    def restarted():
        out = processes.output(proc)
        cut = out.find('grasp_recorder exited with code 3; starting it again in 0.5 s')
        return cut >= 0 and 'recording grasp episodes' in out[cut:]
    wait_until(lambda: restarted() or proc.poll() is not None, 180)
    assert restarted() and proc.poll() is None, processes.output(proc)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        code = processes.stop(proc, sig=signal.SIGKILL, group=True)
    out = processes.output(proc)
    assert code == 0, out
    assert 'shutting the launch down' not in out and 'Traceback' not in out, out


@needs_install
@pytest.mark.rostest
def test_a_recorder_with_a_bad_parameter_ends_the_launch_although_respawned(processes,
                                                                            tmp_path):
    """Exit 2 is never respawned: a restart cannot fix a bad value (recorder_respawn:=true)."""
    recorder = _params_yaml(tmp_path / 'recorder.yaml', 'grasp_recorder', before_s=-1.0)
    proc = processes.start(
        ROS2, 'launch', 'sam2real', 'perception.launch.py', 'sam_worker:=false',
        'segmentation:=false', 'namespace:=bad', 'recorder_respawn:=true',
        f'grasp_recorder_params_file:={recorder}', f'dataset_root:={tmp_path / "data"}',
        name='launch', python=False, env={'PYTHONPATH': PYTHONPATH})
    try:
        code = proc.wait(90)
    except subprocess.TimeoutExpired:
        code = None
    out = processes.output(proc)
    assert code not in (None, 0), out
    assert 'grasp_recorder exited with code 2; shutting the launch down' in out, out
    assert 'starting it again' not in out and out.count('[grasp_recorder-') and \
        out.count('process started with pid') == 1, out
    assert 'before_s' in out and 'Traceback' not in out, out


@needs_install
@pytest.mark.rostest
def test_a_mistyped_params_file_stops_the_launch_with_one_line(tmp_path):
    missing = tmp_path / 'segmentation_nod.yaml'
    res = _ros2_launch(f'segmentation_node_params_file:={missing}', 'recorder:=false',
                       'sam_worker:=false', timeout=90)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert f'segmentation_node_params_file: no such file {missing}' in out, out
    assert 'process started' not in out and 'Traceback' not in out, out


if __name__ == '__main__':  # pragma: no cover
    sys.exit(pytest.main([__file__]))
