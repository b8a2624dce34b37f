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
Integration tests: sim_camera and segmentation_node processes over real DDS.

Random-weight models are exported once (conftest); the test process listens with its own
rclpy node (own context, spun in a thread), drives the lifecycle through the node's
``change_state``/``get_state`` services and checks what the node publishes.
"""
import json
import os
import shutil
import threading
import time

from conftest import FAST_MODEL_CLASSES as CLASSES, wait_until
import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
# I100: the ROS imports must follow the importorskip, so they cannot all sort after pytest.
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402, I100
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from malformed_images import interleaved  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sam2real_ros.common.conversions import stamp_to_ns  # noqa: E402
from sam2real_ros.inference.visual import PALETTE  # noqa: E402
from sam2real_ros.nodes.graph import node_command, TIAGO_CAMERA  # noqa: E402
from sam2real_ros.nodes.messages import numpy_to_image  # noqa: E402
from sam2real_ros.nodes.runner import BackgroundNode  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

NODE = '/segmentation_node'
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)


class Listener:
    """The test's own ROS node: records messages (with receipt time) per topic."""

    def __init__(self):
        self._ros = BackgroundNode('test_listener')
        self.node = self._ros.node
        self.msgs = {}
        self.lock = threading.Lock()

    def listen(self, msg_type, topic, qos=10):
        """Subscribe and record ``(receipt_ns, msg)`` pairs under ``topic``."""
        self.msgs[topic] = []

        def callback(msg):
            with self.lock:
                self.msgs[topic].append((time.time_ns(), msg))
        return self.node.create_subscription(msg_type, topic, callback, qos)

    def got(self, topic):
        """Return a copy of what ``topic`` received so far."""
        with self.lock:
            return list(self.msgs[topic])

    def status(self, name='segmentation_node'):
        """Return the latest diagnostic status of node ``name``: (level, message, values)."""
        for _, msg in reversed(self.got('/diagnostics')):
            for st in msg.status:
                if st.name.startswith(f'{name}:'):
                    return st.level, st.message, {kv.key: kv.value for kv in st.values}
        return None, '', {}

    def values(self, name='segmentation_node'):
        """Return the latest diagnostic values of node ``name`` (a dict, empty before any)."""
        return self.status(name)[2]

    def call(self, srv_type, name, request, timeout=60.0):
        """Call service ``name`` and return the response (None on timeout)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                return None
            future = client.call_async(request)
            wait_until(future.done, timeout)
            return future.result() if future.done() else None
        finally:
            self.node.destroy_client(client)

    def lifecycle_state(self, node=NODE):
        """Return the node's lifecycle state label (``unconfigured``, ``inactive``, ...)."""
        resp = self.call(GetState, f'{node}/get_state', GetState.Request())
        return resp.current_state.label if resp is not None else None

    def transition(self, transition_id, node=NODE):
        """Request a lifecycle transition; return whether it succeeded."""
        req = ChangeState.Request()
        req.transition.id = transition_id
        resp = self.call(ChangeState, f'{node}/change_state', req)
        return resp is not None and resp.success

    def close(self):
        self._ros.close()


@pytest.fixture
def listener():
    lis = Listener()
    yield lis
    lis.close()


def start_camera(processes, rate_hz, name='camera'):
    # Publisher depth 10 so the test's own (slow, Python) camera_info reader misses no stamp.
    return processes.start(*node_command('sim_camera', {'qos_depth': 10, 'rate_hz': rate_hz},
                                         params_file=False), name=name)


def start_node(processes, params, name='node', camera=None):
    return processes.start(*node_command('segmentation_node', params, params_file=False,
                                         camera=camera), name=name)


def assert_alive(processes, *procs):
    for proc in procs:
        assert proc.poll() is None, f'process died:\n{processes.output(proc)}'


def assert_clean_exit(processes, proc):
    assert processes.stop(proc) == 0, processes.output(proc)  # SIGINT -> clean exit
    assert 'Traceback' not in proc.log_path.read_text(), processes.output(proc)


def replace_atomically(src, dst):
    """Copy ``src`` (a path or bytes) next to ``dst`` and rename it over ``dst``."""
    tmp = f'{dst}.tmp'
    if isinstance(src, bytes):
        with open(tmp, 'wb') as f:
            f.write(src)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@pytest.mark.rostest
def test_labels_answer_the_newest_frame(processes, listener, fast_onnx_model):
    """A camera far faster than the model: labels carry recent camera stamps, the rest drop."""
    # Depth 1000: the DDS reader keeps every camera_info while this Python process is starved
    # (4 busy processes on 2 cores stalled it for more than 10 messages at 60 Hz: 11 of 70 lost).
    listener.listen(CameraInfo, TIAGO_CAMERA['camera_info'], 1000)
    listener.listen(Image, f'{NODE}/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    camera = start_camera(processes, 60.0)
    node = start_node(processes, {'model_path': str(fast_onnx_model)})
    assert wait_until(lambda: len(listener.got(f'{NODE}/labels')) >= 3, 60), \
        processes.output(node)
    # The test's camera_info reader, made before the camera, can be matched seconds after the
    # node (discovery); only frames stamped after its first camera_info can be checked.
    assert wait_until(lambda: listener.got(TIAGO_CAMERA['camera_info']), 30)
    first_info = stamp_to_ns(listener.got(TIAGO_CAMERA['camera_info'])[0][1].header.stamp)
    time.sleep(2.5)  # let a queue build up if there were one
    labels = [(t, m) for t, m in listener.got(f'{NODE}/labels')
              if stamp_to_ns(m.header.stamp) > first_info]
    assert len(labels) >= 3, processes.output(node)
    time.sleep(1.0)  # the camera_info of the newest labelled frame may still be in flight
    camera_stamps = {stamp_to_ns(m.header.stamp)
                     for _, m in listener.got(TIAGO_CAMERA['camera_info'])}
    for _, msg in labels:
        assert (msg.encoding, msg.width, msg.height, msg.step) == ('mono8', 640, 480, 640)
        assert msg.header.frame_id == 'head_front_camera_rgb_optical_frame'
        assert np.frombuffer(msg.data, np.uint8).max() < len(CLASSES)
    # Labels carry the stamp of a camera frame (camera_info has the same stamp). The test's
    # own camera_info subscription can miss a message on a loaded machine: allow a few.
    label_stamps = [stamp_to_ns(m.header.stamp) for _, m in labels]
    matched = sum(st in camera_stamps for st in label_stamps)
    assert matched >= 0.9 * len(label_stamps), (matched, len(label_stamps))
    # Frames are skipped between answers, not answered late. The node is always busy, so a
    # label whose frame was the newest one at the start of its inference is about one
    # inference (= the gap between labels) old; from a queue it would be several gaps old.
    stamps = np.array([stamp_to_ns(m.header.stamp) for _, m in labels])
    received = np.array([t for t, _ in labels])
    assert np.all(np.diff(stamps) > 0)
    ages_s = (received - stamps)[1:] / 1e9
    gaps_s = np.diff(received) / 1e9
    excess = np.median((ages_s - gaps_s)[-10:])
    assert excess < 0.5, f'labels lag behind the camera (queueing?): ages {ages_s}, gaps {gaps_s}'
    diag = wait_until(lambda: int(listener.values().get('dropped_frames', 0))
                      and listener.values(), 5)
    assert diag, f'no dropped frames reported: {listener.values()}'
    assert int(diag['frames_in']) > int(diag['frames_out']) > 0
    assert diag['model_state'] == 'loaded' and diag['labels_in_graph'] == 'True'
    # The camera subscription's default: best-effort, depth 1 (never pushes back on a camera).
    assert diag['qos_reliability'] == 'best_effort' and diag['lifecycle_state'] == 'active'
    assert listener.status()[0] == DiagnosticStatus.OK

    # Late joiners get the latched class names; the colour views start once subscribed.
    listener.listen(String, f'{NODE}/class_names', LATCHED)
    for topic in ('labels_color', 'overlay', 'features'):
        listener.listen(Image, f'{NODE}/{topic}')
    # A new subscription is matched after discovery, which takes seconds on a loaded machine.
    assert wait_until(lambda: listener.got(f'{NODE}/class_names'), 30)
    assert json.loads(listener.got(f'{NODE}/class_names')[0][1].data) == CLASSES
    for topic in ('labels_color', 'overlay', 'features'):
        assert wait_until(lambda: listener.got(f'{NODE}/{topic}'), 40), processes.output(node)
        msg = listener.got(f'{NODE}/{topic}')[-1][1]
        assert (msg.encoding, msg.width, msg.height) == ('rgb8', 640, 480)
    # The colour image is the palette of the label image of the same frame. The two messages of
    # a frame arrive on two subscriptions, in either order: wait for a frame that has both.

    def same_frame_pairs():
        by_stamp = {stamp_to_ns(m.header.stamp): m for _, m in listener.got(f'{NODE}/labels')}
        return [(by_stamp[stamp_to_ns(c.header.stamp)], c)
                for _, c in listener.got(f'{NODE}/labels_color')
                if stamp_to_ns(c.header.stamp) in by_stamp]

    pairs = wait_until(same_frame_pairs, 20)
    assert pairs, (len(listener.got(f'{NODE}/labels')), len(listener.got(f'{NODE}/labels_color')))
    lab, col = pairs[-1]
    lab = np.frombuffer(lab.data, np.uint8).reshape(480, 640)
    col = np.frombuffer(col.data, np.uint8).reshape(480, 640, 3)
    assert np.array_equal(col, PALETTE[lab])
    assert_alive(processes, camera, node)
    assert_clean_exit(processes, node)


@pytest.mark.rostest
def test_lifecycle_transitions(processes, listener, fast_onnx_model):
    """Configure loads, activate subscribes, deactivate unsubscribes and frees the model."""
    listener.listen(Image, f'{NODE}/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    start_camera(processes, 20.0)
    node = start_node(processes, {'model_path': str(fast_onnx_model), 'autostart': False,
                                  'diagnostics_period_s': 0.2})
    camera_topic = TIAGO_CAMERA['image']

    def camera_subscribed():
        return any(i.node_name == 'segmentation_node' for i in
                   listener.node.get_subscriptions_info_by_topic(camera_topic))

    def labels_publishers():
        return listener.node.count_publishers(f'{NODE}/labels')

    assert listener.lifecycle_state() == 'unconfigured', processes.output(node)
    assert wait_until(lambda: listener.values().get('lifecycle_state') == 'unconfigured', 20)
    assert listener.status()[0] == DiagnosticStatus.OK and not camera_subscribed()
    assert listener.values()['model_state'] == 'not loaded' and labels_publishers() == 0

    assert listener.transition(Transition.TRANSITION_CONFIGURE), processes.output(node)
    assert listener.lifecycle_state() == 'inactive'
    assert wait_until(lambda: listener.values().get('model_state') == 'loaded', 20)
    assert wait_until(lambda: labels_publishers() == 1, 20)  # configure created them
    listener.listen(String, f'{NODE}/class_names', LATCHED)  # configure published it
    assert wait_until(lambda: listener.got(f'{NODE}/class_names'), 20)
    time.sleep(1.0)
    assert not listener.got(f'{NODE}/labels') and not camera_subscribed()

    for _ in range(2):  # activate, deactivate, and again
        assert listener.transition(Transition.TRANSITION_ACTIVATE), processes.output(node)
        assert listener.lifecycle_state() == 'active'
        assert wait_until(camera_subscribed, 20)
        count = len(listener.got(f'{NODE}/labels'))
        assert wait_until(lambda: len(listener.got(f'{NODE}/labels')) > count + 2, 60), \
            processes.output(node)
        assert listener.transition(Transition.TRANSITION_DEACTIVATE), processes.output(node)
        assert listener.lifecycle_state() == 'inactive'
        assert wait_until(lambda: not camera_subscribed(), 20)
        assert wait_until(lambda: listener.values().get('model_state') == 'not loaded', 20)
        assert listener.values()['backend'] == ''  # the engine is gone
        time.sleep(0.5)  # a label in flight may still arrive
        count = len(listener.got(f'{NODE}/labels'))
        time.sleep(1.5)
        assert len(listener.got(f'{NODE}/labels')) == count

    assert listener.transition(Transition.TRANSITION_CLEANUP)
    assert listener.lifecycle_state() == 'unconfigured'
    assert wait_until(lambda: labels_publishers() == 0, 20)  # cleanup destroyed them
    assert listener.transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
    assert listener.lifecycle_state() == 'finalized'
    log = processes.output(node)
    # configure loads, the first activate uses that model, the second loads it again
    assert log.count('model freed') == 2 and log.count("loaded model '") == 2, log
    assert_alive(processes, node)
    assert_clean_exit(processes, node)


@pytest.mark.rostest
def test_hot_reload_follows_the_model_file(processes, listener, tiny_models, tmp_path):
    """A replaced model is swapped in with its class map; a broken one leaves the old in use."""
    listener.listen(Image, f'{NODE}/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    listener.listen(String, f'{NODE}/class_names', LATCHED)
    path = tmp_path / 'model.onnx'
    replace_atomically(tiny_models[3], path)
    start_camera(processes, 15.0)
    node = start_node(processes, {'model_path': str(path), 'model_retry_s': 0.2,
                                  'diagnostics_period_s': 0.2})

    def class_names():
        got = listener.got(f'{NODE}/class_names')
        return json.loads(got[-1][1].data) if got else None

    assert wait_until(lambda: len(listener.got(f'{NODE}/labels')) >= 3, 60), \
        processes.output(node)
    assert wait_until(lambda: class_names() == ['c0', 'c1', 'c2'], 20), class_names()

    replace_atomically(tiny_models[5], path)
    assert wait_until(lambda: class_names() == [f'c{i}' for i in range(5)], 60), \
        processes.output(node)
    assert wait_until(lambda: listener.values().get('model_loads') == '2'
                      and listener.values().get('classes') == '5', 20)
    count = len(listener.got(f'{NODE}/labels'))
    assert wait_until(lambda: len(listener.got(f'{NODE}/labels')) > count + 3, 30)

    replace_atomically(b'not a model', path)  # e.g. a half-copied file renamed by mistake
    assert wait_until(lambda: listener.status()[0] == DiagnosticStatus.WARN, 30), \
        listener.status()
    level, message, values = listener.status()
    assert 'new model failed to load' in message and values['model_state'] == 'reload failed'
    count = len(listener.got(f'{NODE}/labels'))
    assert wait_until(lambda: len(listener.got(f'{NODE}/labels')) > count + 3, 30)
    assert listener.values()['classes'] == '5'
    # Every frame had a model: labels kept coming from the old one until each swap.
    assert listener.values()['no_model_frames'] == '0'
    log = processes.output(node)
    assert log.count('cannot load the new model') == 1, log
    assert log.count('loaded a new version of model') == 1, log
    assert_clean_exit(processes, node)


@pytest.mark.rostest
def test_camera_gone_is_reported(processes, listener, tiny_models):
    """A stopped camera: WARN "no camera frames for N s", and the rate falls to 0."""
    listener.listen(DiagnosticArray, '/diagnostics')
    camera = start_camera(processes, 15.0)
    node = start_node(processes, {'model_path': str(tiny_models[3]), 'camera_timeout_s': 1.5,
                                  'diagnostics_period_s': 0.2})
    assert wait_until(lambda: float(listener.values().get('rate_hz', 0)) > 2.0, 60), \
        processes.output(node)
    assert listener.status()[0] == DiagnosticStatus.OK
    assert processes.stop(camera) == 0
    assert wait_until(lambda: listener.status()[0] == DiagnosticStatus.WARN, 20)
    level, message, values = listener.status()
    assert message.startswith('no camera frames for ') and message.endswith(' s'), message
    assert float(values['last_frame_age_s']) >= 1.5
    # Measured up to now: the rate falls while the camera is gone (5 s window).
    assert wait_until(lambda: float(listener.values().get('rate_hz', 1)) == 0.0, 20)
    assert float(listener.values()['last_frame_age_s']) >= 5.0
    assert listener.status()[0] == DiagnosticStatus.WARN
    camera = start_camera(processes, 15.0, name='camera2')  # the camera comes back
    assert wait_until(lambda: listener.status()[0] == DiagnosticStatus.OK, 60), \
        processes.output(node)
    assert_alive(processes, camera, node)
    assert_clean_exit(processes, node)


@pytest.mark.rostest
def test_malformed_images_are_counted_and_logged_once(processes, listener, tiny_models):
    """Malformed images between good ones: every good frame answered, each cause counted."""
    listener.listen(Image, f'{NODE}/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    pub = listener.node.create_publisher(Image, '/test_images', 10)
    node = start_node(processes, {'model_path': str(tiny_models[3]),
                                  'qos_reliability': 'reliable',
                                  'diagnostics_period_s': 0.2},
                      camera={'image': '/test_images'})
    assert wait_until(lambda: listener.values().get('model_state') == 'loaded'
                      and listener.values().get('qos_reliability') == 'reliable', 60), \
        processes.output(node)
    assert wait_until(lambda: pub.get_subscription_count() > 0, 20)

    def good(i):
        msg = numpy_to_image(np.full((120, 160, 3), i, np.uint8), 'bgr8')
        msg.header.stamp.sec = 1000 + i
        return msg

    def answered(sec):
        return any(m.header.stamp.sec == sec for _, m in listener.got(f'{NODE}/labels'))

    sent_bad, goods = 0, 0
    for cause, msg in interleaved(good, rounds=2):
        # One at a time: a newer frame would replace it in the node's one-slot buffer.
        frames_in = int(listener.values().get('frames_in', 0))
        pub.publish(msg)
        if cause is None:
            goods += 1
            assert wait_until(lambda: answered(msg.header.stamp.sec), 30), \
                (processes.output(node), listener.values())
        else:
            sent_bad += 1
            assert wait_until(lambda: int(listener.values().get('bad_frames', -1)) == sent_bad
                              and int(listener.values()['frames_in']) > frames_in, 30), \
                (cause, listener.values(), processes.output(node))
    values = wait_until(lambda: int(listener.values()['frames_out']) == goods
                        and listener.values(), 10)
    assert values and int(values['bad_frames']) == sent_bad, listener.values()
    reasons = {k[len('bad_frame: '):]: int(v) for k, v in values.items()
               if k.startswith('bad_frame: ')}
    assert sum(reasons.values()) == sent_bad and len(reasons) >= 8, reasons
    assert any("unsupported image encoding 'yuv422'" in r for r in reasons)
    assert any("'16UC1' is a depth" in r for r in reasons)
    assert any("'32FC1' is a depth" in r for r in reasons)
    log = processes.output(node)
    assert log.count('bad frame on /test_images skipped') == len(reasons), log
    assert log.count("unsupported image encoding 'yuv422'") == 1, log
    assert values['failed_frames'] == '0'
    assert_alive(processes, node)
    assert_clean_exit(processes, node)


@pytest.mark.rostest
def test_missing_then_broken_then_good_model(processes, listener, tiny_models, tmp_path):
    """No model yet: ERROR, one log line; a broken file: one line; a good one: labels."""
    listener.listen(Image, f'{NODE}/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    target = tmp_path / 'later.onnx'
    start_camera(processes, 10.0)
    node = start_node(processes, {'model_path': str(target), 'model_retry_s': 0.3,
                                  'diagnostics_period_s': 0.2})
    assert wait_until(lambda: listener.values().get('model_state') == 'missing'
                      and int(listener.values()['no_model_frames']) > 0, 60), \
        processes.output(node)
    assert listener.status()[0] == DiagnosticStatus.ERROR
    time.sleep(1.0)  # several checks (0.3 s)
    log = processes.output(node)
    assert log.count('does not exist') == 1 and str(target) in log, log
    replace_atomically(b'not an onnx model', target)
    assert wait_until(lambda: listener.values().get('model_state') == 'failed', 40), \
        processes.output(node)
    assert 'not a readable ONNX model' in listener.status()[1]
    time.sleep(1.0)
    assert processes.output(node).count('cannot load model') == 1, processes.output(node)
    replace_atomically(tiny_models[3], target)
    assert wait_until(lambda: listener.got(f'{NODE}/labels'), 60), processes.output(node)
    assert wait_until(lambda: listener.status()[0] == DiagnosticStatus.OK, 20)
    assert_clean_exit(processes, node)


def test_invalid_parameter_is_refused_at_start(processes):
    node = start_node(processes, {'qos_depth': 0})
    assert node.wait(60) == 2
    out = processes.output(node)
    assert 'qos_depth' in out and 'Traceback' not in out


@pytest.mark.rostest
def test_label_info_carries_the_class_map(processes, listener, fast_onnx_model):
    """With vision_msgs installed (a ROS 2 distro has it) the node latches a LabelInfo."""
    label_info = pytest.importorskip(
        'vision_msgs.msg', reason='vision_msgs is not installed (no PyPI wheel; a ROS 2 distro '
        'has ros-<distro>-vision-msgs): the node then keeps only ~/class_names').LabelInfo
    listener.listen(DiagnosticArray, '/diagnostics')
    start_camera(processes, 10.0)
    node = start_node(processes, {'model_path': str(fast_onnx_model)})
    assert wait_until(lambda: listener.values().get('model_state') == 'loaded', 60), \
        processes.output(node)
    listener.listen(label_info, f'{NODE}/label_info', LATCHED)  # a late joiner
    assert wait_until(lambda: listener.got(f'{NODE}/label_info'), 30), processes.output(node)
    msg = listener.got(f'{NODE}/label_info')[-1][1]
    assert [(c.class_id, c.class_name) for c in msg.class_map] == list(enumerate(CLASSES))
