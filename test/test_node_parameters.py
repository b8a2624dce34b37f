"""Every node: its config file names only declared parameters, and bad values stop it cleanly."""
import os
import subprocess
import sys

from conftest import REPO
import pytest
import yaml

rclpy = pytest.importorskip('rclpy')

# module, node name in its config file (None: no config file), node class
NODES = [
    ('segmentation_node', 'segmentation_node', 'SegmentationNode'),
    ('recorder_node', 'grasp_recorder', 'RecorderNode'),
    ('sam_node', 'sam_worker', 'SamWorkerNode'),
    ('sim_camera', 'sim_camera', 'SimCamera'),
]


def _flatten(d, prefix=''):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


@pytest.mark.rostest
@pytest.mark.parametrize('module,config,cls', NODES)
def test_config_file_names_only_declared_parameters(module, config, cls, tmp_path):
    import importlib
    path = os.path.join(REPO, 'config', f'{config}.yaml')
    with open(path) as f:
        keys = set(_flatten(yaml.safe_load(f)[config]['ros__parameters']))
    args = ['--ros-args', '--params-file', path]
    if module == 'recorder_node':
        args += ['-p', f'output_dir:={tmp_path}', '-p', 'min_free_gb:=0.0']
    if module == 'sam_node':
        args += ['-p', f'dataset_root:={tmp_path}', '-p', 'nice:=0']
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    node = None
    try:
        node = getattr(importlib.import_module(f'sam2real_ros.{module}'), cls)(context=context)
        declared = set(node._parameters)
        assert keys <= declared, f'{path} sets undeclared parameters: {sorted(keys - declared)}'
    finally:
        if node is not None:
            if hasattr(node, 'shutdown'):
                node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.rostest
@pytest.mark.parametrize('module,arg,needle', [
    ('segmentation_node', 'qos_depth:=0', 'qos_depth'),
    ('recorder_node', 'before_s:=-1.0', 'before_s'),
    ('sam_node', 'sam.points_per_side:=0', 'points_per_side'),
    ('sim_camera', 'rate_hz:=0.0', 'rate_hz'),
])
def test_invalid_parameter_exits_2_with_one_clear_line(module, arg, needle, tmp_path):
    res = subprocess.run([sys.executable, '-m', f'sam2real_ros.{module}', '--ros-args', '-p', arg,
                          '-p', f'dataset_root:={tmp_path}', '-p', f'output_dir:={tmp_path}'],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr and 'Traceback' not in res.stderr, res.stderr
