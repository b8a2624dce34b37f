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
Bring sam2real up on the robot: grasp recorder, SAM worker and real-time segmentation node.

    ros2 launch sam2real perception.launch.py action_names:="['/pick_object']" \
        model_path:=$HOME/sam2real/model.onnx dataset_root:=$HOME/sam2real_data

The nodes, their executables, parameter files and camera topics come from the one graph
definition in ``sam2real_ros/nodes/graph.py`` (the demo and the tests start the same graph).
Each node reads ``<node>_params_file`` (default: its file in ``share/sam2real/config``); the
arguments named like a node parameter (``model_path``, ``dataset_root``, ...) override that
parameter in every node that has it, and are left to the parameter file when empty. The camera
topics are remappings of the nodes' relative ``image``, ``camera_info`` and ``depth``.
``sim:=true`` adds a simulated camera and grasp action server, so the whole graph runs without
a robot.

The lifecycle nodes (``sam_worker``, ``segmentation_node``) configure and activate themselves as
soon as their process starts (their ``autostart`` parameter, set from the launch argument
``autostart``, default true); the launch file sends them no transitions, so a pause
(``deactivate``) lasts until someone sends ``activate``. ``autostart:=false`` leaves them
unconfigured for a lifecycle manager (as nav2 and slam_toolbox do).

Every node is required: one that fails on its own (e.g. exit code 2 on a bad parameter value)
shuts the whole launch down, which says so in one line naming the node and its exit code, and
``ros2 launch`` exits with that node's code (``sam2real_ros/nodes/launch_exit.py``); a
``<node>_params_file`` that does not exist stops the launch before any node starts. One
exception: with ``recorder_respawn:=true`` (the default) a ``grasp_recorder`` that ends with
any other code (3: its watchdog found it stuck or unable to receive; 1: a hang with
the GIL held; killed by a signal) is started again after ``recorder_respawn_delay`` seconds
(docs/grasp_recorder.md, "Watchdog"); exit code 2 (bad parameters, or another recorder holds
``dataset_root``) still ends the launch, since a restart cannot fix it.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, GroupAction, LogInfo, \
    OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace
from launch_ros.descriptions import ParameterFile
from launch_ros.substitutions import FindPackageShare
from sam2real_ros.nodes import graph, launch_exit
import yaml

SWITCHES = {
    'recorder': ('true', 'start the grasp recorder'),
    'sam_worker': ('true', 'start the background SAM worker'),
    'segmentation': ('true', 'start the real-time segmentation node'),
    'adaptation': ('false', 'start the adaptation manager (fine-tunes a candidate on the '
                   'recorded frames, deploys it to model_path only if the gate passes)'),
    'sim': ('false', 'also start a simulated camera and grasp action server (no robot)'),
    'autostart': ('true', 'the lifecycle nodes (sam_worker, segmentation_node) configure and '
                  'activate themselves right after start; false: they wait unconfigured for a '
                  'lifecycle manager'),
}
SIGTERM_TIMEOUT_S = 15
RESPAWN = {  # node name -> launch argument that makes its non-fatal exits restart it
    'grasp_recorder': 'recorder_respawn'}
FATAL_EXIT = 2  # bad parameters (or a dataset root held by another recorder): never respawned
TOPICS = {  # launch argument -> the nodes' relative topic name it remaps
    'image_topic': 'image', 'camera_info_topic': 'camera_info', 'depth_topic': 'depth'}


def _arguments():
    args = [DeclareLaunchArgument('namespace', default_value='',
                                  description='namespace of all sam2real nodes ("": root)'),
            DeclareLaunchArgument('log_level', default_value='info',
                                  description='ROS log level of the sam2real nodes')]
    for name, (default, text) in SWITCHES.items():
        args.append(DeclareLaunchArgument(name, default_value=default, description=text,
                                          choices=['true', 'false']))
    args += [DeclareLaunchArgument(
                 'recorder_respawn', default_value='true', choices=['true', 'false'],
                 description='start grasp_recorder again when it ends with a code other than '
                 f'{FATAL_EXIT} (its watchdog exits with 3 when it is stuck or cannot receive); '
                 f'false: any exit ends the launch'),
             DeclareLaunchArgument(
                 'recorder_respawn_delay', default_value='2.0',
                 description='seconds before a respawned grasp_recorder starts (> 0: a Ctrl-C '
                 'that ends it first is never mistaken for a failure)')]
    for arg, topic in TOPICS.items():
        args.append(DeclareLaunchArgument(
            arg, default_value=graph.TIAGO_CAMERA[topic],
            description=f'camera topic the nodes\' relative "{topic}" is remapped to'))
    for name, nodes in graph.launch_parameters().items():
        args.append(DeclareLaunchArgument(
            name, default_value='', description=f'parameter {name} of {", ".join(nodes)} '
            '("": as in the parameter file)'))
    for node in graph.NODES:
        if node.params_file:
            args.append(DeclareLaunchArgument(
                f'{node.name}_params_file',
                default_value=PathJoinSubstitution([FindPackageShare(graph.PACKAGE), 'config',
                                                    node.params_file]),
                description=f'parameter file of {node.name}'))
    return args


def _overrides(context, node):
    """Return the parameters of ``node`` set by non-empty launch arguments (YAML-typed)."""
    out = {}
    for name in node.launch_params:
        value = LaunchConfiguration(name).perform(context)
        if value != '':
            # typed as YAML (lists, numbers, booleans) except plain strings such as paths
            parsed = yaml.safe_load(value)
            out[name] = parsed if isinstance(parsed, (list, bool, int, float)) else value
    return out


class NodeExited(RuntimeError):
    """A node of the graph ended while the launch was running (launch prints it in one line)."""


def _stop_on_exit(name, respawn_s=None):
    """
    Return an on_exit handler that ends the launch once node ``name`` ends on its own.

    With ``respawn_s`` (the node's action respawns it after that many seconds) only exit code
    :data:`FATAL_EXIT` ends the launch; any other failure is logged and left to the respawn.
    """
    def on_exit(event, context):
        if context.is_shutdown or event.returncode in (0, -2, -15):
            # ending anyway: Ctrl-C to the process group reaches the nodes (exit 0) before
            # the launch has seen it, or the launch stops them (SIGINT, SIGTERM)
            return None
        if respawn_s is not None and event.returncode != FATAL_EXIT:
            return [LogInfo(msg=f'{name} exited with code {event.returncode}; starting it '
                            f'again in {respawn_s:g} s (its log above says why)')]
        reason = (f'{name} exited with code {event.returncode}; shutting the launch down (its '
                  'log above says why)')
        if not launch_exit.record(name, event.returncode):
            # not under ros2 launch with sam2real's entry points (launch_testing): launch prints
            # 'Caught exception in launch ...: <reason>', shuts every node down, exits with 1
            raise NodeExited(reason)
        # one line naming the node; ros2 launch then exits with the node's code (launch_exit)
        get_logger('launch').error(reason)
        return [EmitEvent(event=Shutdown(reason=reason))]
    return on_exit


def _params_file(context, node):
    path = LaunchConfiguration(f'{node.name}_params_file').perform(context)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{node.name}_params_file: no such file {path}')
    return path


def _respawn_delay(context, name):
    """Return the respawn delay of node ``name`` in seconds, or None when it is not respawned."""
    arg = RESPAWN.get(name)
    if arg is None or LaunchConfiguration(arg).perform(context) != 'true':
        return None
    text = LaunchConfiguration(f'{arg}_delay').perform(context)
    try:
        delay = float(text)
    except ValueError:
        delay = None
    if delay is None or not 0.0 < delay <= 3600.0:
        raise ValueError(f'{arg}_delay: {text!r} is not a number of seconds in (0, 3600]')
    return delay


def _nodes(context):
    remappings = [(topic, LaunchConfiguration(arg).perform(context))
                  for arg, topic in TOPICS.items()]
    actions = [PushRosNamespace(LaunchConfiguration('namespace'))]
    for node in graph.NODES:
        parameters = []
        if node.params_file:
            if IfCondition(LaunchConfiguration(node.switch)).evaluate(context):
                parameters.append(ParameterFile(_params_file(context, node)))
        overrides = _overrides(context, node)
        if node.lifecycle:  # the node does its own transitions (no launch event handlers)
            overrides['autostart'] = LaunchConfiguration('autostart').perform(context) == 'true'
        if overrides:
            parameters.append(overrides)
        kwargs = {
            'package': graph.PACKAGE, 'executable': node.executable, 'name': node.name,
            'namespace': '', 'parameters': parameters,
            'remappings': [(src, dst) for src, dst in remappings if src in node.topics],
            'arguments': ['--ros-args', '--log-level', LaunchConfiguration('log_level')],
            'output': 'screen', 'emulate_tty': True,
            # at shutdown: SIGINT, then SIGTERM after this long (the nodes bound their own
            # clean-up below it: runner.CLEANUP_LIMIT_S), then SIGKILL
            'sigterm_timeout': str(SIGTERM_TIMEOUT_S),
            'condition': IfCondition(LaunchConfiguration(node.switch))}
        respawn_s = _respawn_delay(context, node.name)
        if respawn_s is not None:
            kwargs.update(respawn=True, respawn_delay=respawn_s)
        action = LifecycleNode(**kwargs) if node.lifecycle else Node(**kwargs)
        actions += [action, RegisterEventHandler(OnProcessExit(
            target_action=action, on_exit=_stop_on_exit(node.name, respawn_s)))]
    return [GroupAction(actions)]


def generate_launch_description():
    """Declare the launch arguments and start the selected nodes of the graph."""
    return LaunchDescription(_arguments() + [OpaqueFunction(function=_nodes)])
