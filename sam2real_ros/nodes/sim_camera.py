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
Simulated camera node: rgb8 frames + camera_info at a fixed rate, for tests and demos.

``python -m sam2real_ros.nodes.sim_camera --ros-args -p rate_hz:=30.0 -p source:=pattern``.
Sources: ``pattern`` (a cheap moving test pattern, the default) and ``procedural`` (frames of
``sam2real_ros.data.procedural.TabletopRenderer(appearance='real')``, rendered once at start for
``num_frames`` seeds, then cycled) and ``world`` (one persistent tabletop whose objects the
goals of ``grasp_action`` take away, :class:`sam2real_ros.data.sim_world.GraspWorld`: the demo's
robot). Both also publish registered depth, 16UC1 mm with the image's header, on ``depth``
(while someone subscribes), like the robot's depth camera. Like every node this is a thin ROS
adapter; the frame generators below are plain numpy.

Large images and best-effort readers: unless ``FASTDDS_DEFAULT_PROFILES_FILE`` is already set,
the camera runs with ``config/fastdds_large_images.xml`` (a 10 MB Fast DDS shared-memory
segment, so a 640x480 rgb8 frame is not cut into fragments that a best-effort reader loses);
see docs/segmentation_node.md, "Camera QoS".
"""
import os
import sys
import time

from action_msgs.msg import GoalStatusArray
import numpy as np
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sam2real_ros.data.procedural import TabletopRenderer
from sam2real_ros.data.sim_world import GraspWorld
from sam2real_ros.nodes import params
from sam2real_ros.nodes.graph import config_dir
from sam2real_ros.nodes.messages import numpy_to_image
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.qos import goal_status_qos
from sam2real_ros.nodes.runner import run_node
from sam2real_ros.recording.grasp_episodes import status_tuples
from sensor_msgs.msg import CameraInfo, Image

PARAMETERS = params.schema(
    Param('rate_hz', 30.0, 'frames per second', bounds=(0.1, 1000.0)),
    Param('width', 640, 'image width in pixels', bounds=(16, 8192)),
    Param('height', 480, 'image height in pixels', bounds=(16, 8192)),
    Param('source', 'pattern', 'frame source: a moving test pattern, the procedural '
          'tabletop renderer, or a persistent tabletop the grasps clear (world); both with depth',
          one_of=('pattern', 'procedural', 'world')),
    Param('num_frames', 8, 'procedural source: frames rendered at start and cycled',
          bounds=(1, 1000)),
    Param('seed', 0, 'world source: the scene', bounds=(0, 2 ** 31 - 1)),
    Param('grasp_action', '/grasp_server/grasp', 'world source: the action whose goals take '
          'objects off the table'),
    Param('grasp_motion_s', 1.5, 'world source: seconds the gripper takes to lift an object '
          'out of view', bounds=(0.05, 60.0)),
    Param('frame_id', 'head_front_camera_rgb_optical_frame', 'header.frame_id'),
    Param('qos_reliability', 'reliable', 'publisher reliability (a camera driver chooses one)',
          one_of=('reliable', 'best_effort')),
    Param('qos_depth', 1, 'publisher queue depth (keep-last)', bounds=(1, 100)),
)
CONFIG_HEADER = """Parameters of the simulated camera (docs/segmentation_node.md):
python -m sam2real_ros.nodes.sim_camera --ros-args --params-file config/sim_camera.yaml
It publishes image, camera_info and (procedural and world sources) depth: remap them to the
robot's names."""


class PatternSource:
    """
    A moving test pattern: colour bars, a bright square sweeping across, a grey gradient.

    Arguments:
    ---------
        width (int), height (int): frame size.

    ``frame(i)`` returns HxWx3 uint8 RGB; cost ~1 ms at 640x480 (two array copies).

    """

    def __init__(self, width, height):
        x = np.arange(width)
        bars = np.array([[230, 60, 60], [60, 200, 60], [60, 90, 230], [230, 210, 40],
                         [40, 200, 210], [200, 60, 200], [128, 128, 128], [20, 20, 20]],
                        np.uint8)
        base = np.empty((height, width, 3), np.uint8)
        base[:] = bars[(x * len(bars)) // width][None]
        base[height * 2 // 3:] = (x * 255 // max(width - 1, 1)).astype(np.uint8)[None, :, None]
        self.base, self.size = base, max(8, min(width, height) // 5)

    def frame(self, i):
        """Return frame ``i`` (HxWx3 uint8 RGB)."""
        img = self.base.copy()
        h, w = img.shape[:2]
        x0 = (i * 8) % max(w - self.size, 1)
        y0 = (h // 3 + int(h / 6 * np.sin(i / 15.0))) % max(h - self.size, 1)
        img[y0:y0 + self.size, x0:x0 + self.size] = 255
        return img


class ProceduralSource:
    """Frames of the procedural tabletop renderer (``appearance='real'``), pre-rendered."""

    def __init__(self, width, height, num_frames):
        import cv2

        renderer = TabletopRenderer(appearance='real')
        self.frames, self.depths, self.depth = [], [], None
        for seed in range(num_frames):
            scene = renderer.render(seed)
            rgb, depth = np.asarray(scene['rgb'], np.uint8), scene['depth']
            if rgb.shape[:2] != (height, width):
                rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
                depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
            self.frames.append(np.ascontiguousarray(rgb))
            self.depths.append(np.ascontiguousarray(depth))

    def frame(self, i):
        """Return frame ``i`` (HxWx3 uint8 RGB), cycling the rendered set; its depth: ``depth``."""
        self.depth = self.depths[i % len(self.depths)]
        return self.frames[i % len(self.frames)]


class WorldSource:
    """The persistent grasp scene, following the goal status of the grasp action."""

    def __init__(self, node, width, height, seed, action, motion_s):
        self.world = GraspWorld(seed, (height, width), grasp_s=motion_s)
        self.depth = None
        node.create_subscription(GoalStatusArray, action.rstrip('/') + '/_action/status',
                                 self._on_status, goal_status_qos())

    def _on_status(self, msg):
        # the world runs on wall-clock seconds, the clock of the goals' stamps
        self.world.on_goal_statuses(
            [(gid, status, stamp_ns * 1e-9) for gid, stamp_ns, status in status_tuples(msg)],
            time.time())

    def frame(self, i):
        """Return the view now (HxWx3 uint8 RGB); its depth is in ``self.depth``."""
        out = self.world.frame(time.time())
        self.depth = out['depth']
        return out['rgb']


class SimCamera(Node):
    """Publishes ``image`` (rgb8, stamped now) and a matching ``camera_info``."""

    def __init__(self, **kwargs):
        super().__init__('sim_camera', **kwargs)
        p = self.p = params.declare(self, PARAMETERS)
        if p.source == 'procedural':
            self.source = ProceduralSource(p.width, p.height, p.num_frames)
        elif p.source == 'world':
            self.source = WorldSource(self, p.width, p.height, p.seed, p.grasp_action,
                                      p.grasp_motion_s)
        else:
            self.source = PatternSource(p.width, p.height)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.qos_depth,
                         reliability=(ReliabilityPolicy.RELIABLE if p.qos_reliability ==
                                      'reliable' else ReliabilityPolicy.BEST_EFFORT))
        self.pub_image = self.create_publisher(Image, 'image', qos)
        self.pub_info = self.create_publisher(CameraInfo, 'camera_info', qos)
        self.pub_depth = (self.create_publisher(Image, 'depth', qos)
                          if hasattr(self.source, 'depth') else None)
        self.info = self._camera_info(p.width, p.height)
        self.count = 0
        self.failed_publishes = 0
        self.create_timer(1.0 / p.rate_hz, self.publish_frame)
        extra = ' and 16UC1 depth' if self.pub_depth is not None else ''
        self.get_logger().info(f'publishing {p.width}x{p.height} rgb8{extra} ({p.source}) at '
                               f'{p.rate_hz:g} Hz on {self.pub_image.topic_name} '
                               f'({p.qos_reliability})')

    def _camera_info(self, width, height):
        """Build a pinhole CameraInfo: 60 degree horizontal field of view, no distortion."""
        f = width / (2.0 * np.tan(np.radians(30.0)))
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
        info.d = [0.0] * 5
        info.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def publish_frame(self):
        """Publish the next frame (the timer's callback); a failed publish drops the frame."""
        msg = numpy_to_image(self.source.frame(self.count), 'rgb8')
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.p.frame_id
        self.info.header = msg.header
        self.count += 1
        try:
            if self.pub_depth is not None and self.pub_depth.get_subscription_count():
                # registered: the image's stamp and frame; built only when someone listens
                self.pub_depth.publish(numpy_to_image(self.source.depth, '16UC1', msg.header))
            self.pub_image.publish(msg)
            self.pub_info.publish(self.info)
        except RuntimeError as exc:  # rclpy's RCLError: a frame is lost, the camera goes on
            if not self.context.ok():
                return  # Ctrl-C: the context is already shut down; nothing to report
            self.failed_publishes += 1
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
            self.get_logger().warning(
                f'publish failed, frame dropped ({self.failed_publishes} so far): '
                f'{type(exc).__name__}: {text}', throttle_duration_sec=5.0)


def large_image_profile():
    """Return the Fast DDS profile for large-image publishers (installed or in the repo)."""
    return os.path.join(config_dir(), 'fastdds_large_images.xml')


def main(args=None):
    """Run ``sim_camera`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    profile = large_image_profile()
    if os.path.isfile(profile):  # read by Fast DDS when rclpy.init creates the participant
        os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', profile)
    return run_node('sim_camera', SimCamera, args, (ImportError,))


if __name__ == '__main__':
    sys.exit(main())
