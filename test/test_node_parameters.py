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
Node parameters: one declaration per node (sam2real_ros/nodes/params.py).

The generated files (config/*.yaml, the docs' parameter tables) match the declarations; every
node refuses invalid values at start with one line and exit code 2; ``ros2 param set`` is
refused for read-only parameters and honoured for the others.
"""
import importlib
import os
import subprocess
import sys

from conftest import call_service, own_stderr_lines, REPO
import pytest
import yaml

rclpy = pytest.importorskip('rclpy')
# I100: these must follow the importorskip, so they cannot all sort after pytest.
from sam2real_ros.nodes import param_docs, params  # noqa: E402, I100
from sam2real_ros.nodes.graph import BY_NAME, node_command, NODES  # noqa: E402


def test_generated_config_files_and_docs_tables_match_the_declarations():
    stale = []
    for path, text in param_docs.generated_files(REPO).items():
        with open(path) as f:
            if f.read() != text:
                stale.append(os.path.relpath(path, REPO))
    assert not stale, f'{stale} differ from the PARAMETERS tables: run python -m ' \
        'sam2real_ros.nodes.param_docs --write'


@pytest.mark.parametrize('node_name,module,doc', param_docs.NODES)
def test_every_node_has_its_docs_table_and_config_values_pass_validation(node_name, module,
                                                                         doc):
    import importlib
    table = importlib.import_module(module).PARAMETERS
    with open(os.path.join(REPO, doc)) as f:
        assert param_docs.begin_marker(node_name) in f.read(), f'{doc} has no table of {node_name}'
    path = os.path.join(REPO, 'config', f'{node_name}.yaml')
    if not os.path.exists(path):
        return
    with open(path) as f:
        values = yaml.safe_load(f)[f'/**/{node_name}']['ros__parameters']
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({f'{key}.{k}': v for k, v in value.items()})
        else:
            flat[key] = value
    assert list(flat) == list(table), path
    for name, value in flat.items():
        assert value == table[name].default, (path, name)


def test_camera_nodes_share_one_declaration_of_the_camera_parameters():
    from sam2real_ros.nodes import grasp_recorder, qos, segmentation_node
    shared = {'camera_timeout_s': params.camera_timeout_parameter(),
              **{p.name: p for p in qos.camera_qos_parameters()}}
    for table in (segmentation_node.PARAMETERS, grasp_recorder.PARAMETERS):
        for name, p in shared.items():
            mine = table[name]
            assert (mine.description, mine.one_of, mine.bounds, mine.read_only) == \
                (p.description, p.one_of, p.bounds, p.read_only), name


def test_every_camera_node_has_the_same_qos_parameters_and_none_is_reliable_only():
    """
    One name for the camera QoS in every node (#11), the same choices, no reliable-only default.

    A reliable-only subscription gets nothing from a best-effort driver (the Astra's default).
    """
    import importlib
    from sam2real_ros.nodes import graph, qos
    publishers = {'sim_camera'}  # publishes the camera topics (a driver chooses its QoS)
    for node in graph.NODES:
        table = importlib.import_module(node.module).PARAMETERS
        names = {n for n in table if 'qos' in n or 'reliab' in n}
        assert names == ({'qos_reliability', 'qos_depth'} if node.topics else set()), \
            (node.name, names)
        if not node.topics or node.name in publishers:
            continue
        assert table['qos_reliability'].one_of == qos.RELIABILITIES, node.name
        assert table['qos_reliability'].default in ('auto', 'best_effort'), node.name
        # and the subscriptions go through the one helper that reads it
        with open(importlib.import_module(node.module).__file__) as f:
            source = f.read()
        assert 'CameraSubscription(' in source and 'create_subscription(Image' not in source


def test_schema_validation_messages():
    p = params.Param('backend', 'auto', 'engine backend', one_of=('auto', 'torch'))
    assert p.check('auto') is None
    assert p.check('tensorrt') == "parameter backend='tensorrt' must be one of auto, torch"
    d = params.Param('device', 'auto', 'device', pattern=r'auto|cpu|cuda(:\d+)?')
    assert d.check('cuda:1') is None and 'must be matching' in d.check('tpu')
    r = params.Param('root', '', 'the root', required=True)
    assert 'must not be empty' in r.check('')
    with pytest.raises(ValueError, match='declared twice'):
        params.schema(p, p)
    with pytest.raises(ValueError, match='default of parameter x'):
        params.schema(params.Param('x', 'a', 'x', one_of=('b',)))


@pytest.mark.rostest
@pytest.mark.parametrize('node,arg,needle', [
    ('segmentation_node', 'qos_depth:=0', 'qos_depth'),
    ('segmentation_node', 'backend:=tensorrt', "backend='tensorrt' must be one of"),
    ('segmentation_node', 'device:=tpu', "device='tpu' must be one of"),
    ('segmentation_node', 'qos_reliability:=sometimes', 'qos_reliability'),
    ('grasp_recorder', 'before_s:=-1.0', 'before_s'),
    ('grasp_recorder', 'qos_reliability:=reliable_only', 'qos_reliability'),
    ('sam_worker', 'sam.points_per_side:=0', 'points_per_side'),
    ('sam_worker', 'device:=tpu', 'device'),
    ('sam_worker', 'segmenter:=magic', 'segmenter'),
    ('sim_camera', 'rate_hz:=0.0', 'rate_hz'),
    ('sim_camera', 'source:=video', 'source'),
    ('grasp_server', 'grasp_duration_s:=-1.0', 'grasp_duration_s'),
    ('grasp_recorder', 'dataset_root:=/proc/nope',
     "parameter dataset_root: cannot create '/proc/nope'"),
    ('segmentation_node', 'threads:=many', 'threads'),  # wrong type
])
def test_invalid_parameter_exits_2_with_one_clear_line(node, arg, needle, tmp_path):
    params_ = {'dataset_root': str(tmp_path)} if node in ('grasp_recorder', 'sam_worker') \
        else {}
    _assert_refused_in_one_line(node, node_command(node, params_, params_file=False)
                                + ['-p', arg], needle)


def _assert_refused_in_one_line(node, cmd, needle):
    """Run a node command: exit 2 and one stderr line, prefixed by the node, with ``needle``."""
    res = subprocess.run([sys.executable, *cmd], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = own_stderr_lines(res.stderr)
    prefix = f'{BY_NAME[node].executable}: '
    assert len(lines) == 1 and lines[0].startswith(prefix) and needle in lines[0], res.stderr


@pytest.mark.rostest
@pytest.mark.parametrize('node,arg,needle', [
    ('segmentation_node', 'image_topic:=/foo', "unknown parameter 'image_topic'"),
    ('segmentation_node', 'bakend:=torch', "unknown parameter 'bakend' (did you mean backend?"),
    ('grasp_recorder', 'sim:=true', "unknown parameter 'sim'"),
    ('sam_worker', 'segmentr:=fallback', "unknown parameter 'segmentr' (did you mean segmenter?"),
])
@pytest.mark.parametrize('source', ['command line', 'params file'])
def test_unknown_parameter_exits_2_naming_it_and_the_closest(node, arg, needle, source,
                                                             tmp_path):
    """An undeclared name (a typo, a launch argument given to a node) is refused, not ignored."""
    params_ = {'dataset_root': str(tmp_path)} if node in ('grasp_recorder', 'sam_worker') \
        else {}
    name, value = arg.split(':=')
    if source == 'command line':
        cmd = node_command(node, params_, params_file=False) + ['-p', arg]
    else:
        path = tmp_path / 'params.yaml'
        path.write_text(f'/**/{node}:\n  ros__parameters:\n    {name}: {value}\n')
        cmd = node_command(node, params_, params_file=str(path))
    _assert_refused_in_one_line(node, cmd, needle)


@pytest.mark.rostest
@pytest.mark.parametrize('node', [n.name for n in NODES])
def test_help_prints_the_parameter_table_and_exits_0(node):
    """``<node> --help`` lists every parameter and exits 0 instead of starting the node."""
    module = BY_NAME[node].module
    res = subprocess.run([sys.executable, '-m', module, '--help'], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith(f'usage: ros2 run sam2real {BY_NAME[node].executable} ')
    table = importlib.import_module(module).PARAMETERS
    for name, p in table.items():
        assert f'  {name} ' in res.stdout and p.description in res.stdout, (name, res.stdout)
    assert res.stderr == '', res.stderr  # the node did not start (no log lines)


def test_ros_built_in_parameters_are_not_unknown():
    assert params.unknown_parameter(['use_sim_time', 'qos_overrides./image.subscription.depth',
                                     'backend'], {'backend': None}, lambda n: False) is None
    assert params.unknown_parameter(['bakend'], {'backend': None, 'device': None},
                                    lambda n: False) == \
        "unknown parameter 'bakend' (did you mean backend? --help lists the parameters)"


@pytest.mark.rostest
def test_param_set_refuses_read_only_and_honours_the_others(processes, tmp_path):
    """``ros2 param set`` never reports success for a change that does nothing."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import GetParameters, SetParameters
    from sam2real_ros.nodes.runner import BackgroundNode

    proc = processes.start(*node_command('segmentation_node', {'model_path': ''},
                                         params_file=False, ros_args=['-r', '__node:=ptest']),
                           name='node')
    ros = BackgroundNode('param_test')
    try:
        setp = ros.node.create_client(SetParameters, '/ptest/set_parameters')
        getp = ros.node.create_client(GetParameters, '/ptest/get_parameters')
        assert setp.wait_for_service(timeout_sec=30.0), processes.output(proc)

        def call(client, request):  # each request does the same when repeated
            return call_service(client, request, tries=3)

        def set_double(name, value):
            v = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
            return call(setp, SetParameters.Request(
                parameters=[Parameter(name=name, value=v)])).results[0]

        res = set_double('model_retry_s', 7.0)  # read at every check: may change
        assert res.successful, res.reason
        res = set_double('diagnostics_period_s', 0.5)  # read once: refused
        assert not res.successful and 'read-only' in res.reason.lower(), res.reason
        res = set_double('overlay_alpha', 2.0)  # out of range: refused
        assert not res.successful
        got = call(getp, GetParameters.Request(names=['model_retry_s', 'diagnostics_period_s']))
        assert [v.double_value for v in got.values] == [7.0, 1.0]
    finally:
        ros.close()
    assert processes.stop(proc) == 0, processes.output(proc)
