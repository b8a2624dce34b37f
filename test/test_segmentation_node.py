"""
Integration tests: sim_camera and segmentation_node processes over real DDS.

A random-weight ``fast`` model is exported once; the test process listens with its own rclpy
node (own context, spun in a thread) and checks what the node publishes.
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
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sam2real_ros.common.conversions import stamp_to_ns  # noqa: E402
from sam2real_ros.nodes.graph import node_command, TIAGO_CAMERA  # noqa: E402
from sam2real_ros.nodes.messages import numpy_to_image  # noqa: E402
from sam2real_ros.nodes.runner import BackgroundNode  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

NODE = '/segmentation_node'


@pytest.fixture(scope='module')
def model_path(fast_onnx_model):
    """Return a random-weight ``fast`` ONNX model with three classes (shared, see conftest)."""
    return fast_onnx_model


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

    def diagnostics(self):
        """Latest key/value dict of the segmentation node's diagnostic status (or None)."""
        for _, msg in reversed(self.got('/diagnostics')):
            for status in msg.status:
                if status.name.startswith('segmentation_node'):
                    return {kv.key: kv.value for kv in status.values}
        return None

    def close(self):
        self._ros.close()


@pytest.fixture
def listener():
    lis = Listener()
    yield lis
    lis.close()


def start_camera(processes, rate_hz):
    # Publisher depth 10 so the test's own (slow, Python) camera_info reader misses no stamp.
    return processes.start(*node_command('sim_camera', {'qos_depth': 10,
                                                        'rate_hz': float(rate_hz)},
                                         params_file=False), name='camera')


def start_node(processes, model):
    return processes.start(*node_command('segmentation_node', {'model_path': model},
                                         params_file=False), name='node')


def assert_alive(processes, *procs):
    for proc in procs:
        assert proc.poll() is None, f'process died:\n{processes.output(proc)}'


@pytest.mark.rostest
def test_labels_answer_the_newest_frame(processes, listener, model_path):
    """A camera far faster than the model: labels carry recent camera stamps, the rest drop."""
    listener.listen(CameraInfo, TIAGO_CAMERA['camera_info'])
    listener.listen(Image, f'{NODE}/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    camera = start_camera(processes, 60)
    node = start_node(processes, model_path)
    assert wait_until(lambda: len(listener.got(f'{NODE}/labels')) >= 3, 60), \
        processes.output(node)
    time.sleep(2.5)  # let a queue build up if there were one
    labels = listener.got(f'{NODE}/labels')
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
    diag = wait_until(lambda: int((listener.diagnostics() or {}).get('dropped_frames', 0))
                      and listener.diagnostics(), 5)
    assert diag, f'no dropped frames reported: {listener.diagnostics()}'
    assert int(diag['frames_in']) > int(diag['frames_out']) > 0
    assert diag['model_state'] == 'loaded' and diag['qos_reliability'] == 'reliable'

    # Late joiners get the latched class names; overlay/features start once subscribed.
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                         reliability=ReliabilityPolicy.RELIABLE)
    listener.listen(String, f'{NODE}/class_names', latched)
    listener.listen(Image, f'{NODE}/overlay')
    listener.listen(Image, f'{NODE}/features')
    assert wait_until(lambda: listener.got(f'{NODE}/class_names'), 10)
    assert json.loads(listener.got(f'{NODE}/class_names')[0][1].data) == CLASSES
    for topic in ('overlay', 'features'):
        assert wait_until(lambda: listener.got(f'{NODE}/{topic}'), 40), processes.output(node)
        msg = listener.got(f'{NODE}/{topic}')[-1][1]
        assert (msg.encoding, msg.width, msg.height) == ('rgb8', 640, 480)
    assert_alive(processes, camera, node)
    assert processes.stop(node) == 0  # SIGINT -> clean exit
    assert 'Traceback' not in node.log_path.read_text()


@pytest.mark.rostest
def test_model_problems_and_bad_frames(processes, listener, model_path, tmp_path):
    """Missing/broken model and bad frames: one clear log line each, the node keeps running."""
    listener.listen(Image, '/node/labels')
    listener.listen(DiagnosticArray, '/diagnostics')
    pub = listener.node.create_publisher(Image, '/test_images', 10)
    target = tmp_path / 'later.onnx'
    node = processes.start('-m', 'sam2real_ros.nodes.segmentation_node', '--ros-args',
                           '-r', '__node:=node', '-r', 'image:=/test_images',
                           '-p', 'qos_reliability:=reliable', '-p', f'model_path:={target}',
                           '-p', 'model_retry_s:=0.3', '-p', 'diagnostics_period_s:=0.2',
                           name='node')

    def status():
        for _, m in reversed(listener.got('/diagnostics')):
            for s in m.status:
                if s.name.startswith('node'):
                    return {kv.key: kv.value for kv in s.values}
        return {}

    good = numpy_to_image(np.zeros((120, 160, 3), np.uint8), 'bgr8')
    stop = threading.Event()

    def feed():  # good frames at ~10 Hz until the model works
        while not stop.wait(0.1):
            pub.publish(good)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert wait_until(lambda: status().get('model_state') == 'missing'
                          and int(status()['no_model_frames']) > 0, 30), processes.output(node)
        time.sleep(1.0)  # several retry periods (0.3 s)
        log = processes.output(node)
        assert log.count('does not exist') == 1 and str(target) in log, log

        target.write_bytes(b'not an onnx model')
        assert wait_until(lambda: status().get('model_state') == 'failed', 40), \
            processes.output(node)
        time.sleep(1.0)
        assert processes.output(node).count('cannot load model') == 1, processes.output(node)

        tmp = tmp_path / 'copy.tmp'
        shutil.copyfile(model_path, tmp)
        os.replace(tmp, target)  # the node loads it on its next check
        assert wait_until(lambda: listener.got('/node/labels'), 30), processes.output(node)
    finally:
        stop.set()
        feeder.join()

    bad = numpy_to_image(np.zeros((4, 4), np.uint8), 'mono8')
    bad.encoding = 'yuv422'
    short = numpy_to_image(np.zeros((480, 640, 3), np.uint8), 'rgb8')
    short.height = 481  # data no longer matches step x height
    for count, msg in enumerate((bad, short, bad, short), start=1):
        pub.publish(msg)  # one at a time: a newer frame would replace it in the 1-slot buffer
        assert wait_until(lambda: status().get('bad_frames') == str(count), 20), status()
    good.header.stamp.sec = 42
    pub.publish(good)
    assert wait_until(lambda: any(m.header.stamp.sec == 42
                                  for _, m in listener.got('/node/labels')), 20)
    msg = listener.got('/node/labels')[-1][1]
    assert (msg.width, msg.height, msg.encoding) == (160, 120, 'mono8')
    assert status()['bad_frames'] == '4'
    log = processes.output(node)
    # counted every time, logged at most once a minute (rclpy's throttle): no log loop
    assert log.count("unsupported image encoding 'yuv422'") == 1, log
    assert log.count('bad frame on /test_images skipped') == 1, log
    assert_alive(processes, node)
    assert processes.stop(node) == 0
    assert 'Traceback' not in node.log_path.read_text()


def test_latest_frame_keeps_only_the_newest():
    from sam2real_ros.nodes.segmentation_node import LatestFrame
    slot = LatestFrame()
    assert slot.take(timeout=0.01) is None
    for i in range(5):
        slot.put(i)
    assert slot.take(timeout=0.01) == 4 and slot.dropped == 4
    assert slot.take(timeout=0.01) is None
    got = []
    taker = threading.Thread(target=lambda: got.append(slot.take(timeout=10.0)))
    taker.start()
    slot.put('late')  # wakes the waiting worker
    taker.join(10.0)
    assert got == ['late'] and slot.dropped == 4


def test_invalid_parameter_is_refused_at_start(processes):
    node = processes.start('-m', 'sam2real_ros.nodes.segmentation_node', '--ros-args',
                           '-p', 'qos_depth:=0', name='node')
    assert node.wait(30) == 2
    out = processes.output(node)
    assert 'qos_depth' in out and 'Traceback' not in out
