"""
Bring sam2real up on the robot: grasp recorder, SAM worker and real-time segmentation node.

    ros2 launch sam2real perception.launch.py grasp_action:=/pick_object \
        model_path:=~/sam2real/model.onnx dataset_root:=~/sam2real_data

Every node takes its parameters from ``config/<node>.yaml`` (installed to
``share/sam2real/config``); the launch arguments below override the few values that change from
robot to robot. ``sim:=true`` adds a simulated camera and a simulated grasp action server, so the
whole graph can be brought up on a machine without a robot (used by the launch tests).
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
import yaml

ARGUMENTS = [
    # name, default, description
    ('namespace', '', 'namespace for all sam2real nodes ("" = root)'),
    ('camera_topic', '/head_front_camera/rgb/image_raw', 'RGB image topic (TIAGo++ head camera)'),
    ('camera_info_topic', '/head_front_camera/rgb/camera_info', 'camera_info of that camera'),
    ('depth_topic', '', 'registered 16UC1 depth topic to record as well ("" = none)'),
    ('grasp_action', '/grasp_server/grasp',
     'grasp action whose <action>/_action/status starts and ends episodes'),
    ('dataset_root', '~/sam2real_data', 'where episodes and SAM masks are written'),
    ('model_path', '', 'exported .onnx (or .pt) model for the segmentation node'),
    ('sam_checkpoint', '', 'SAM checkpoint (sam_vit_h_4b8939.pth); "" = fallback segmenter'),
    ('device', 'auto', 'auto, cpu or cuda for the segmentation node and the SAM worker'),
    ('recorder', 'true', 'start the grasp recorder'),
    ('sam_worker', 'true', 'start the background SAM worker'),
    ('segmentation', 'true', 'start the real-time segmentation node'),
    ('sim', 'false', 'also start a simulated camera and grasp action server (no robot)'),
    ('config_dir', '', 'folder with the node YAML files ("" = share/sam2real/config)'),
    ('log_level', 'info', 'ROS log level of the sam2real nodes'),
]


def _config_dir(value):
    if value:
        return os.path.expanduser(value)
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory('sam2real'), 'config')


def node_parameters(config_dir, node_name):
    """
    Return the ``ros__parameters`` of ``node_name`` from ``<config_dir>/<node_name>.yaml``.

    Loading the YAML here (rather than passing ``--params-file``) makes the values apply whatever
    namespace the node is pushed into.
    """
    path = os.path.join(config_dir, f'{node_name}.yaml')
    if not os.path.isfile(path):
        raise RuntimeError(f'sam2real launch: parameter file not found: {path}')
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    for key, value in data.items():
        if key.strip('/').split('/')[-1] in (node_name, '**'):
            return dict(value.get('ros__parameters', {}))
    raise RuntimeError(f'sam2real launch: {path} has no section for node {node_name!r}')


def _flag(context, name):
    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value not in ('true', 'false', '1', '0', 'yes', 'no', 'on', 'off'):
        raise RuntimeError(f'sam2real launch: {name}:={value!r} must be true or false')
    return value in ('true', '1', 'yes', 'on')


def _setup(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    cfg = _config_dir(arg['config_dir'])
    dataset_root = os.path.expanduser(arg['dataset_root'])
    common = {'output': 'screen', 'emulate_tty': True,
              'arguments': ['--ros-args', '--log-level', arg['log_level']]}
    nodes = []
    if _flag(context, 'recorder'):
        params = node_parameters(cfg, 'grasp_recorder')
        params.update(image_topic=arg['camera_topic'], camera_info_topic=arg['camera_info_topic'],
                      depth_topic=arg['depth_topic'], output_dir=dataset_root,
                      action_names=[arg['grasp_action']] if arg['grasp_action'] else [''])
        nodes.append(Node(package='sam2real', executable='grasp_recorder', name='grasp_recorder',
                          parameters=[params], **common))
    if _flag(context, 'sam_worker'):
        params = node_parameters(cfg, 'sam_worker')
        params.update(dataset_root=dataset_root, device=arg['device'])
        if arg['sam_checkpoint']:
            params.update(checkpoint=os.path.expanduser(arg['sam_checkpoint']))
        nodes.append(Node(package='sam2real', executable='sam_worker', name='sam_worker',
                          parameters=[params], **common))
    if _flag(context, 'segmentation'):
        params = node_parameters(cfg, 'segmentation_node')
        params.update(image_topic=arg['camera_topic'], device=arg['device'],
                      model_path=os.path.expanduser(arg['model_path']))
        nodes.append(Node(package='sam2real', executable='segmentation_node',
                          name='segmentation_node', parameters=[params], **common))
    if _flag(context, 'sim'):
        params = node_parameters(cfg, 'sim_camera')
        params.update(image_topic=arg['camera_topic'], camera_info_topic=arg['camera_info_topic'])
        nodes.append(Node(package='sam2real', executable='sim_camera', name='sim_camera',
                          parameters=[params], **common))
        nodes.append(Node(package='sam2real', executable='sim_grasp_server',
                          name='sim_grasp_server',
                          parameters=[{'action_name': arg['grasp_action']}], **common))
    actions = [PushRosNamespace(arg['namespace'])] if arg['namespace'] else []
    return [GroupAction(actions + nodes)]


def generate_launch_description():
    """Declare the launch arguments and start the selected nodes."""
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_setup)])
