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
The perception node graph, defined once: nodes, executables, parameter files, remappings.

Plain Python data without ROS imports, used by ``launch/perception.launch.py`` (launch_ros
actions), by the demo (``sam2real_ros/demo/robot.py``, ``demo/graph.py``) and by the tests, which
start the same nodes as plain processes with :func:`node_command`.

Nodes subscribe and publish relative names (``image``, ``camera_info``, ``depth``); the robot's
topics are remappings (:data:`TIAGO_CAMERA` by default).
"""
from dataclasses import dataclass
import os

PACKAGE = 'sam2real'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The TIAGo++ head camera (Orbbec Astra) as the nodes' relative topic names remap to it.
TIAGO_CAMERA = {
    'image': '/head_front_camera/rgb/image_raw',
    'camera_info': '/head_front_camera/rgb/camera_info',
    'depth': '/head_front_camera/depth_registered/image_raw',
}
GRASP_ACTION = '/grasp_server/grasp'  # the default of grasp_recorder's action_names


@dataclass(frozen=True)
class GraphNode:
    """
    One node of the graph.

    Attributes
    ----------
      name (str): node name, also the key in its parameter file.
      executable (str): console script (installed to ``lib/sam2real/``).
      module (str): the module behind it (``python -m <module>``).
      params_file (str or None): file name in ``config/`` (share/sam2real/config installed).
      topics (tuple): the relative camera topic names it uses (remapped to the camera).
      switch (str): the launch argument that starts it (``true``/``false``).
      launch_params (tuple): its parameters the launch file exposes as arguments, same name.
      lifecycle (bool): an rclpy lifecycle node (its ``autostart`` follows the launch argument).

    """

    name: str
    executable: str
    module: str
    params_file: str = None
    topics: tuple = ()
    switch: str = None
    launch_params: tuple = ()
    lifecycle: bool = False


NODES = (
    GraphNode('grasp_recorder', 'grasp_recorder', 'sam2real_ros.nodes.grasp_recorder',
              'grasp_recorder.yaml', ('image', 'camera_info', 'depth'), 'recorder',
              ('dataset_root', 'action_names', 'record_depth', 'qos_reliability')),
    GraphNode('sam_worker', 'sam_worker', 'sam2real_ros.nodes.sam_worker', 'sam_worker.yaml',
              (), 'sam_worker', ('dataset_root', 'device', 'checkpoint', 'segmenter'),
              lifecycle=True),
    GraphNode('segmentation_node', 'segmentation_node', 'sam2real_ros.nodes.segmentation_node',
              'segmentation_node.yaml', ('image',), 'segmentation',
              ('model_path', 'device', 'qos_reliability'), lifecycle=True),
    # off by default (adaptation:=true): fine-tunes, gates and deploys model_path's model
    GraphNode('adaptation_manager', 'adaptation_manager',
              'sam2real_ros.nodes.adaptation_manager', 'adaptation_manager.yaml', (),
              'adaptation', ('dataset_root', 'model_path', 'device'), lifecycle=True),
    # the simulated robot (sim:=true): a camera and a grasp action server
    GraphNode('sim_camera', 'sim_camera', 'sam2real_ros.nodes.sim_camera', 'sim_camera.yaml',
              ('image', 'camera_info', 'depth'), 'sim'),
    GraphNode('grasp_server', 'sim_grasp_server', 'sam2real_ros.nodes.sim_grasp_server', None,
              (), 'sim'),
)
BY_NAME = {n.name: n for n in NODES}


def launch_parameters():
    """Return ``{parameter name: (node names)}`` for the parameters the launch file exposes."""
    out = {}
    for node in NODES:
        for name in node.launch_params:
            out.setdefault(name, ())
            out[name] += (node.name,)
    return out


def config_dir():
    """Return the installed ``share/sam2real/config`` if sam2real is installed, else the repo's."""
    try:
        from ament_index_python.packages import get_package_share_directory
        path = os.path.join(get_package_share_directory(PACKAGE), 'config')
        if os.path.isdir(path):
            return path
    except Exception:  # ament_index missing, or the package is not in the ament index
        pass
    return os.path.join(REPO, 'config')


def remappings(node, camera=None):
    """Return ``[(from, to)]``: the node's relative camera topics -> ``camera`` (TIAGo++)."""
    camera = TIAGO_CAMERA if camera is None else camera
    return [(topic, camera[topic]) for topic in node.topics if topic in camera]


def _param_text(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(f"'{v}'" if isinstance(v, str) else str(v) for v in value) + ']'
    if value == '':
        return "''"  # `-p name:=` alone does not parse
    return str(value)


def node_command(name, params=None, camera=None, params_file=True, cfg_dir=None,
                 ros_args=()):
    """
    Return the arguments after ``python`` that start node ``name`` as a plain process.

    Arguments:
    ---------
      name (str): a node of :data:`NODES`.
      params (dict or None): parameter overrides (``-p name:=value``; lists and bools as YAML).
      camera (dict or None): relative topic -> topic (default :data:`TIAGO_CAMERA`).
      params_file (bool or str): True: the node's file in ``cfg_dir``; a path: that file;
        False: none.
      cfg_dir (str or None): folder of the parameter files (default :func:`config_dir`).
      ros_args (sequence): further arguments after ``--ros-args``.

    Returns
    -------
      list[str]: ``['-m', module, '--ros-args', ...]``.

    """
    node = BY_NAME[name]
    args = ['-m', node.module, '--ros-args']
    if params_file is True and node.params_file:
        args += ['--params-file', os.path.join(cfg_dir or config_dir(), node.params_file)]
    elif params_file and params_file is not True:
        args += ['--params-file', str(params_file)]
    for src, dst in remappings(node, camera):
        args += ['-r', f'{src}:={dst}']
    for key, value in (params or {}).items():
        args += ['-p', f'{key}:={_param_text(value)}']
    if node.lifecycle and 'autostart' not in (params or {}):
        args += ['-p', 'autostart:=true']
    return args + list(ros_args)
