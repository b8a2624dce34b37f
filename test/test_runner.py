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

"""The one node runner (nodes/runner.py): exit codes, --params-file errors, double Ctrl-C."""
import os
import signal
import subprocess
import sys

from conftest import own_stderr_lines, REPO, wait_until
import pytest

rclpy = pytest.importorskip('rclpy')
# I100: these must follow the importorskip, so they cannot all sort after pytest.
from sam2real_ros.nodes.graph import node_command  # noqa: E402, I100

SLOW_CLEANUP_NODE = """
import sys
import time
from rclpy.node import Node
from sam2real_ros.nodes.runner import run_node


class Slow(Node):
    def __init__(self):
        super().__init__('slow_cleanup')
        self.create_timer(0.5, lambda: print('spinning', flush=True))

    def shutdown(self):
        print('cleaning up', flush=True)
        time.sleep(2.0)  # a worker thread finishing its frame
        print('cleaned up', flush=True)


sys.exit(run_node('slow_cleanup', Slow))
"""

STUCK_CLEANUP_NODE = """
import sys
import time
from rclpy.node import Node
from sam2real_ros.nodes import runner


class Stuck(Node):
    def __init__(self):
        super().__init__('stuck_cleanup')
        self.create_timer(0.2, lambda: print('spinning', flush=True))

    def shutdown(self):
        print('cleaning up', flush=True)
        time.sleep(1000)  # a call that never returns (a DDS call, a worker that hangs)


runner.CLEANUP_LIMIT_S = float(sys.argv[1])
sys.exit(runner.run_node('stuck_cleanup', Stuck))
"""

LATE_SHUTDOWN_NODE = """
import sys
import threading
import time
import rclpy
from rclpy.node import Node
from sam2real_ros.nodes.runner import run_node


class Interrupted(Node):
    def __init__(self):
        super().__init__('late_shutdown')
        self.create_timer(0.2, self.tick)

    def tick(self):
        # as rclpy's SIGINT handling: its thread shuts the context down a moment after the
        # KeyboardInterrupt, here turned by pybind11 into a RuntimeError inside take_message
        if sys.argv[1] == 'late':
            threading.Thread(target=lambda: (time.sleep(0.5), rclpy.shutdown())).start()
        raise RuntimeError("Unable to convert call argument '0' to Python object")


sys.exit(run_node('late_shutdown', Interrupted))
"""


def _run(args, timeout=60):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.rostest
@pytest.mark.parametrize('make,needle', [
    (lambda tmp: tmp / 'missing.yaml', 'no such file'),
    (lambda tmp: tmp, 'cannot read it'),  # a folder
    (lambda tmp: (tmp / 'bad.yaml', (tmp / 'bad.yaml').write_text('a: [1, 2\n'))[0],
     'not valid YAML'),
    (lambda tmp: (tmp / 'plain.yaml', (tmp / 'plain.yaml').write_text('a: 1\n'))[0],
     'not a ROS 2 parameter file'),
])
def test_bad_params_file_is_one_line_and_exit_2(make, needle, tmp_path):
    path = make(tmp_path)
    res = _run(node_command('grasp_server', params_file=path))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = own_stderr_lines(res.stderr)
    assert len(lines) == 1 and lines[0].startswith(f'sim_grasp_server: --params-file {path}: ') \
        and needle in lines[0], res.stderr


def test_every_node_of_the_graph_runs_through_the_runner():
    """So the --params-file and argument checks above hold for each node, not only this one."""
    import ast
    import importlib
    from sam2real_ros.nodes import graph
    for node in graph.NODES:
        path = importlib.import_module(node.module).__file__
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == 'main')
        calls = [c.func.id for c in ast.walk(main)
                 if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        assert 'run_node' in calls, f'{node.module}.main does not call run_node'


@pytest.mark.rostest
def test_bad_ros_argument_is_one_line_and_exit_2():
    res = _run(node_command('grasp_server', params_file=False, ros_args=['-r', 'bad']))
    assert res.returncode == 2, res.stdout + res.stderr
    assert 'sim_grasp_server: ' in res.stderr and 'remap rule' in res.stderr
    assert 'Traceback' not in res.stderr and ' at /' not in res.stderr, res.stderr


@pytest.mark.rostest
@pytest.mark.parametrize('then', ['SIGTERM', 'nothing'])
def test_a_stuck_cleanup_still_ends_the_process(processes, then):
    """
    Shutdown is bounded (#21): SIGTERM during the clean-up ends it, and so does the time limit.

    A node stuck in its clean-up once ignored SIGINT and SIGTERM until SIGKILL.
    """
    limit = 60.0 if then == 'SIGTERM' else 3.0
    proc = processes.start('-c', STUCK_CLEANUP_NODE, str(limit), name='stuck')
    assert wait_until(lambda: 'spinning' in processes.output(proc), 60), processes.output(proc)
    proc.send_signal(signal.SIGINT)
    assert wait_until(lambda: 'cleaning up' in processes.output(proc), 30)
    if then == 'SIGTERM':
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM, processes.output(proc)
    else:
        assert proc.wait(60) == 1, processes.output(proc)
        out = processes.output(proc)
        assert 'stuck_cleanup: clean-up did not finish within 3 s; exiting' in out, out
        assert 'in shutdown' in out, out  # faulthandler names the stuck call


@pytest.mark.rostest
@pytest.mark.parametrize('shutdown', ['late', 'never'])
def test_ctrl_c_while_taking_a_message_exits_0_even_if_the_context_shuts_down_late(shutdown):
    """
    A SIGINT inside take_message is no error, also when rclpy shuts the context down late (#21).

    Seen 1 in 48 Ctrl-Cs of the launched graph at load 10 (benchmarks/launch_shutdown.py): the
    segmentation node exited 1 with a traceback. A RuntimeError with the context still ok after
    runner.SIGINT_SHUTDOWN_WAIT_S is a real error.
    """
    res = _run(['-c', LATE_SHUTDOWN_NODE, shutdown])
    if shutdown == 'late':
        assert res.returncode == 0, res.stdout + res.stderr
        assert 'Traceback' not in res.stderr, res.stderr
    else:
        assert res.returncode == 1, res.stdout + res.stderr
        assert 'RuntimeError: Unable to convert call argument' in res.stderr, res.stderr


@pytest.mark.rostest
def test_unknown_ros_flag_is_one_line_and_exit_2():
    res = _run(node_command('grasp_server', params_file=False, ros_args=['--bogus']))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.splitlines() == [
        "sim_grasp_server: unknown ROS argument '--bogus' (after --ros-args: -p, -r, "
        '--params-file, --log-level, ...; end them with --)'], res.stderr


@pytest.mark.rostest
def test_ctrl_c_twice_during_clean_up_exits_0_without_traceback(processes):
    """A terminal's Ctrl-C reaches the whole group, then ros2 launch forwards one more SIGINT."""
    proc = processes.start('-c', SLOW_CLEANUP_NODE, name='slow')
    assert wait_until(lambda: 'spinning' in processes.output(proc), 60), processes.output(proc)
    os.killpg(proc.pid, signal.SIGINT)
    assert wait_until(lambda: 'cleaning up' in processes.output(proc), 30)
    os.killpg(proc.pid, signal.SIGINT)  # arrives during shutdown()
    assert proc.wait(30) == 0, processes.output(proc)
    out = processes.output(proc)
    assert 'cleaned up' in out and 'Traceback' not in out, out
