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

"""ament_python package setup for sam2real (works with colcon and with plain pip)."""
from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'sam2real'


def tree(src, dst_root):
    """Map every file below ``src`` to ``share/sam2real/<dst_root>/...`` for data_files."""
    out = {}
    for path in glob(os.path.join(src, '**', '*'), recursive=True):
        if os.path.isfile(path) and '__pycache__' not in path:
            rel = os.path.relpath(os.path.dirname(path), src)
            dst = os.path.normpath(os.path.join('share', package_name, dst_root, rel))
            out.setdefault(dst, []).append(path)
    return sorted(out.items())


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'benchmarks']),
    package_data={'sam2real_ros.modeling': ['profiles/*.yaml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ] + tree('launch', 'launch') + tree('config', 'config')
    + tree('training/configs', 'training/configs'),
    install_requires=['setuptools'],
    # colcon test runs pytest (not unittest) when the package declares it for its tests
    extras_require={'test': ['pytest']},
    zip_safe=True,
    maintainer='sam2real maintainers',
    maintainer_email='maintainers@sam2real.invalid',
    description='SAM-regularized sim2real semantic segmentation for ROS 2 robots',
    license='MIT',
    entry_points={
        'console_scripts': [
            'segmentation_node = sam2real_ros.nodes.segmentation_node:main',
            'grasp_recorder = sam2real_ros.nodes.grasp_recorder:main',
            'sam_worker = sam2real_ros.nodes.sam_worker:main',
            'adaptation_manager = sam2real_ros.nodes.adaptation_manager:main',
            'sam2real = sam2real_ros.cli:main',
            'sim_camera = sam2real_ros.nodes.sim_camera:main',
            'sim_grasp_server = sam2real_ros.nodes.sim_grasp_server:main',
        ],
        # ros2 launch exits with the code of the node that ended perception.launch.py
        'ros2launch.option': [
            'sam2real_node_exit_code = sam2real_ros.nodes.launch_exit:NodeExitCode',
        ],
    },
)
