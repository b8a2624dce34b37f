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

"""sim_camera as a real process: survives a flood and ends cleanly on Ctrl-C (#11, #14)."""
import time

from conftest import wait_until
import pytest

rclpy = pytest.importorskip('rclpy')
# I100: the ROS imports must follow the importorskip.
from sam2real_ros.nodes.graph import node_command, TIAGO_CAMERA  # noqa: E402, I100
from sam2real_ros.nodes.runner import BackgroundNode  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

TOPIC = TIAGO_CAMERA['image']  # node_command remaps the camera's relative 'image' to it


@pytest.mark.rostest
def test_flooding_camera_keeps_running_and_ends_cleanly_on_ctrl_c(processes):
    """A 500 Hz 640x480 camera with a reliable reader; each SIGINT ends it with exit 0."""
    ros = BackgroundNode('test_flood_reader')
    got = []
    ros.node.create_subscription(Image, TOPIC, lambda m: got.append(1), 1)
    try:
        for run in range(3):  # the shutdown race is timing-dependent: try it a few times
            cam = processes.start(*node_command('sim_camera', {'rate_hz': 500.0},
                                                params_file=False), name=f'camera{run}')
            count = len(got)
            assert wait_until(lambda: len(got) > count + 20, 60), processes.output(cam)
            time.sleep(1.0 + 0.37 * run)  # the flood goes on; SIGINT at varying moments
            assert cam.poll() is None, processes.output(cam)
            assert processes.stop(cam) == 0, processes.output(cam)
            log = processes.output(cam)
            assert 'Traceback' not in log and 'RCLError' not in log, log
    finally:
        ros.close()


def test_failed_publish_drops_the_frame_and_the_camera_goes_on():
    """A publish that raises (RCLError under a flood, a dead context at Ctrl-C) is survived."""
    from sam2real_ros.nodes.sim_camera import SimCamera
    context = rclpy.Context()
    rclpy.init(context=context)
    cam = SimCamera(context=context)  # not spun: the test calls its timer callback itself
    try:
        cam.publish_frame()
        assert (cam.count, cam.failed_publishes) == (1, 0)
        cam.pub_image.destroy()  # every publish on it now raises a RuntimeError
        cam.publish_frame()
        cam.publish_frame()
        assert (cam.count, cam.failed_publishes) == (3, 2)
        rclpy.shutdown(context=context)  # as after Ctrl-C: not a failure worth a warning
        cam.publish_frame()
        assert (cam.count, cam.failed_publishes) == (4, 2)
    finally:
        cam.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.rostest
def test_procedural_camera_publishes_registered_depth(processes):
    """The procedural source publishes 16UC1 depth with the image's stamp and frame, in mm."""
    ros = BackgroundNode('test_depth_reader')
    images, depths = {}, {}

    def key(msg):
        return (msg.header.stamp.sec, msg.header.stamp.nanosec)
    ros.node.create_subscription(Image, TOPIC, lambda m: images.setdefault(key(m), m), 10)
    ros.node.create_subscription(Image, TIAGO_CAMERA['depth'],
                                 lambda m: depths.setdefault(key(m), m), 10)
    cam = processes.start(*node_command('sim_camera', {
        'source': 'procedural', 'width': 128, 'height': 96, 'num_frames': 2, 'rate_hz': 10.0},
        params_file=False), name='camera')
    try:
        assert wait_until(lambda: set(images) & set(depths), 60), processes.output(cam)
        both = sorted(set(images) & set(depths))[0]
        img, depth = images[both], depths[both]
        assert depth.encoding == '16UC1' and (depth.width, depth.height) == (128, 96)
        assert depth.header.frame_id == img.header.frame_id
        import numpy as np
        mm = np.frombuffer(bytes(depth.data), np.uint16).reshape(96, 128)
        assert 500 < np.median(mm[mm > 0]) < 1300  # the renderer's table: 0.6-1.2 m
    finally:
        assert processes.stop(cam) == 0, processes.output(cam)
        ros.close()
