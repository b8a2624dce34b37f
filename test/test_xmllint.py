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

"""package.xml is valid against the ROS package format 3 schema (ament_xmllint) and well-formed."""
import ast
import glob
import os
import sys
import xml.etree.ElementTree as ET

import pytest
from test_import_rules import ROS_NAME

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_package_xml_declares_runtime_dependencies():
    root = ET.parse(os.path.join(REPO, 'package.xml')).getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'sam2real'
    deps = {e.text for e in root.findall('exec_depend')}
    for dep in ('rclpy', 'sensor_msgs', 'std_msgs', 'std_srvs', 'action_msgs', 'diagnostic_msgs',
                'python3-opencv', 'python3-numpy'):
        assert dep in deps, dep
    assert root.find('export/build_type').text == 'ament_python'


def _imported_top_level_modules(paths):
    names = set()
    for path in paths:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split('.')[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split('.')[0])
    return names


def test_package_xml_lists_exactly_the_ros_packages_imported_at_run_time():
    """Every ROS package the installed code imports is an exec_depend, and nothing unused is."""
    root = ET.parse(os.path.join(REPO, 'package.xml')).getroot()
    deps = {e.text for e in root.findall('exec_depend')}
    code = glob.glob(os.path.join(REPO, 'sam2real_ros', '**', '*.py'), recursive=True)
    code += glob.glob(os.path.join(REPO, 'launch', '*.py'))
    imported = {m for m in _imported_top_level_modules(code) if ROS_NAME.search(m)}
    not_imported = {'ros2launch'}  # the `ros2 launch` command that runs launch/*.py
    assert imported - deps == set(), f'imported but not in package.xml: {imported - deps}'
    ros_deps = {d for d in deps if not d.startswith('python3-')} - not_imported
    unused = ros_deps - imported
    assert unused == set(), f'in package.xml but never imported: {unused}'


# Third-party Python modules imported at run time: (rosdep key, an exec_depend in package.xml;
# None: pip only) and the pip distribution pinned in requirements.txt (what make setup installs).
PY_MODULES = {
    'numpy': ('python3-numpy', 'numpy'), 'cv2': ('python3-opencv', 'opencv-python-headless'),
    'yaml': ('python3-yaml', 'PyYAML'), 'tqdm': ('python3-tqdm', 'tqdm'),
    'skimage': ('python3-skimage', 'scikit-image'),
    'matplotlib': ('python3-matplotlib', 'matplotlib'), 'scipy': ('python3-scipy', 'scipy'),
    'torch': (None, 'torch'), 'torchvision': (None, 'torchvision'), 'timm': (None, 'timm'),
    'onnx': (None, 'onnx'), 'onnxruntime': (None, 'onnxruntime'),
    'segment_anything': (None, 'segment-anything'), 'rosbags': (None, 'rosbags'),
    'huggingface_hub': (None, 'huggingface_hub'), 'pybullet': (None, 'pybullet'),
}
NOT_INSTALLED = {'stillleben'}  # optional renderer built from source (docs/datasets.md)


def test_package_xml_and_requirements_list_exactly_the_python_modules_imported_at_run_time():
    """Each third-party import is pinned in requirements.txt, and a python3-* key if it has one."""
    root = ET.parse(os.path.join(REPO, 'package.xml')).getroot()
    deps = {e.text for e in root.findall('exec_depend') if e.text.startswith('python3-')}
    code = glob.glob(os.path.join(REPO, 'sam2real_ros', '**', '*.py'), recursive=True)
    code += glob.glob(os.path.join(REPO, 'launch', '*.py'))
    third_party = {m for m in _imported_top_level_modules(code)
                   if m not in sys.stdlib_module_names and not ROS_NAME.search(m)
                   and m != 'sam2real_ros'} - NOT_INSTALLED
    unknown = third_party - set(PY_MODULES)
    assert unknown == set(), f'new run-time imports, add them to PY_MODULES: {unknown}'
    wanted = {PY_MODULES[m][0] for m in third_party} - {None}
    assert wanted - deps == set(), f'imported but not in package.xml: {wanted - deps}'
    assert deps - wanted == set(), f'in package.xml but never imported: {deps - wanted}'
    with open(os.path.join(REPO, 'requirements.txt')) as f:
        pinned = {line.split('==')[0].strip().lower() for line in f if '==' in line}
    missing = {PY_MODULES[m][1] for m in third_party if PY_MODULES[m][1].lower() not in pinned}
    assert missing == set(), f'imported at run time but not pinned in requirements.txt: {missing}'


@pytest.mark.linter
def test_xmllint():
    main = pytest.importorskip('ament_xmllint.main', reason='ament_xmllint needs a ROS 2 install')
    rc = main.main(argv=[])
    assert rc == 0, 'Found errors'
