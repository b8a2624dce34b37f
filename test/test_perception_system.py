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
The perception launch scenario with plain processes (runs where launch_testing is missing).

The same graph as ``perception.launch.py sim:=true``: simulated camera and grasp action server,
grasp recorder, SAM worker (fallback segmenter) and segmentation node, each a real process
started with its installed parameter file from ``config/``, talking over real DDS. Asserts what
test_perception_launch.py asserts: labels at 640x480 mono8, an episode recorded around a grasp,
masks produced for it, and clean exit codes on SIGINT.
"""
import os
import threading

from conftest import grasp_until_recorded, REPO, send_grasp, wait_until
import pytest
from sam2real_ros.nodes.graph import GRASP_ACTION as ACTION, node_command
from sam2real_ros.recording import episode_store
from sam2real_ros.sam.mask_store import MaskStore

rclpy = pytest.importorskip('rclpy')


def _node_args(name, **params):
    """Return the graph's node ``name`` with its parameter file from the source config/."""
    return node_command(name, params, cfg_dir=os.path.join(REPO, 'config'))


@pytest.mark.rostest
@pytest.mark.slow
def test_perception_graph_records_segments_and_labels(processes, tmp_path, fast_onnx_model):
    from action_msgs.msg import GoalStatus
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image
    from test_msgs.action import Fibonacci

    model = fast_onnx_model
    data = tmp_path / 'data'
    procs = {
        'camera': processes.start(*_node_args('sim_camera', rate_hz=10.0), name='camera'),
        'grasp': processes.start(*_node_args('grasp_server', grasp_duration_s=1.0),
                                 name='grasp'),
        'recorder': processes.start(*_node_args(
            'grasp_recorder', dataset_root=str(data), min_free_gb=0.0, before_s=1.0,
            after_s=1.0, action_names=[ACTION]), name='recorder'),
        'sam': processes.start(*_node_args('sam_worker', dataset_root=str(data),
                                           segmenter='fallback', poll_period_s=0.5, nice=0),
                               name='sam'),
        'seg': processes.start(*_node_args('segmentation_node', model_path=str(model)),
                               name='seg'),
    }

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node('perception_system_test', context=ctx)
    labels, received = [], {}
    node.create_subscription(Image, '/segmentation_node/labels', labels.append, 10)

    def on_diag(msg):  # the recorder's count of camera frames (hardware_id: its dataset root)
        for st in msg.status:
            if st.hardware_id == str(data):
                received.update({kv.key: kv.value for kv in st.values})
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        assert wait_until(lambda: labels, 120), 'no labels; segmentation node log:\n' + \
            processes.output(procs['seg'])
        assert (labels[0].width, labels[0].height, labels[0].encoding) == (640, 480, 'mono8')

        # the "before" phase needs the recorder's ring buffer: under load its camera
        # subscription can match well after the segmentation node's (2 s of 10 Hz frames)
        assert wait_until(lambda: int(received.get('frames_received', 0)) >= 20, 120), \
            'the recorder received no camera frames; its log:\n' + \
            processes.output(procs['recorder'])
        client = ActionClient(node, Fibonacci, ACTION)

        def grasp():
            assert send_grasp(client, Fibonacci.Goal(order=3))[1] == GoalStatus.STATUS_SUCCEEDED

        def frames():
            return list(episode_store.iter_frames(str(data), complete_only=True))
        assert grasp_until_recorded(
            grasp, frames, lambda: int(received.get('terminal_goals_ignored', 0)), 60), \
            f'no complete episode ({received}); recorder log:\n' + \
            processes.output(procs['recorder'])
        phases = {f.phase for f in frames()}
        assert {'before', 'during', 'after'} <= phases, phases

        store = MaskStore(str(data / 'masks'))
        assert wait_until(lambda: all(store.status(f.key) == 'done' for f in frames()), 240), \
            'masks missing; SAM worker log:\n' + processes.output(procs['sam'])
        record = store.read(frames()[0].key)
        masks = record.masks()
        assert masks.ndim == 3 and masks.shape[1:] == (480, 640) and masks.shape[0] > 0
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)

    for name, proc in procs.items():
        assert processes.stop(proc) == 0, f'{name} did not exit cleanly:\n' + \
            processes.output(proc)
