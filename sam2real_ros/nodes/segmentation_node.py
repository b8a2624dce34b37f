"""
Real-time semantic segmentation node: camera image -> label image (+ overlay, features).

The subscription callback only puts the message in a one-slot buffer (a newer frame replaces
an unprocessed one, which is counted as dropped); one worker thread loads the model, runs
:class:`sam2real_ros.inference.engine.SegmentationEngine`
on the newest frame and publishes. Topics,
parameters, QoS and diagnostics are described in docs/segmentation_node.md.
"""
import collections
import json
import os
import sys
import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sam2real_ros.common.conversions import image_to_rgb8, stamp_to_ns
from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.messages import numpy_to_image
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.qos import camera_qos_parameters, CameraSubscription
from sam2real_ros.nodes.runner import run_node
from sensor_msgs.msg import Image
from std_msgs.msg import String

PARAMETERS = params.schema(
    Param('model_path', '', 'exported model (.onnx or .pt); loaded when it appears'),
    Param('backend', 'auto', 'engine backend: auto (by file extension), onnxruntime or torch',
          one_of=('auto', 'onnxruntime', 'torch')),
    Param('device', 'auto', 'engine device: auto (GPU when available), cpu or cuda',
          one_of=('auto', 'cpu', 'cuda')),
    Param('threads', 0, 'CPU inference threads (0: the library default)', bounds=(0, 256)),
    Param('allow_spinning', False, 'onnxruntime CPU threads busy-wait between operators: '
          'lowest latency on idle cores, but they steal CPU from the camera callbacks and '
          'other nodes on a busy robot CPU'),
    *camera_qos_parameters('auto', 1),
    Param('publish_overlay', True, 'publish ~/overlay while it has subscribers',
          read_only=False),
    Param('publish_features', True, 'publish ~/features while it has subscribers',
          read_only=False),
    Param('overlay_alpha', 0.5, 'weight of the class colours in ~/overlay', bounds=(0.0, 1.0),
          read_only=False),
    Param('model_retry_s', 2.0, 'seconds between checks for a missing or changed model file',
          bounds=(0.1, 3600.0), read_only=False),
    Param('diagnostics_period_s', 1.0, 'period of the /diagnostics status',
          bounds=(0.05, 60.0)),
)
CONFIG_HEADER = """Parameters of the segmentation node (docs/segmentation_node.md).
ros2 run sam2real segmentation_node --ros-args --params-file config/segmentation_node.yaml \\
    -r image:=/head_front_camera/rgb/image_raw"""


class LatestFrame:
    """A one-slot buffer: ``put`` replaces the unprocessed frame (counted in ``dropped``)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self.dropped = 0

    def put(self, item):
        """Store ``item``, replacing (and counting) a frame nobody took yet."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout):
        """Return the newest item and empty the slot, or ``None`` after ``timeout`` seconds."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def wake(self):
        """Wake a waiting ``take`` (used at shutdown)."""
        with self._cond:
            self._cond.notify_all()


class Window:
    """Rolling per-frame figures over the last ``seconds`` (publish rate and percentiles)."""

    def __init__(self, seconds=5.0):
        self.seconds = seconds
        self._items = collections.deque()
        self._lock = threading.Lock()

    def add(self, **values):
        """Record one published frame with its figures (e.g. ``latency_ms=...``)."""
        now = time.monotonic()
        with self._lock:
            self._items.append((now, values))
            while self._items and now - self._items[0][0] > self.seconds:
                self._items.popleft()

    def summary(self):
        """Return ``{'rate_hz': float, '<name>_p50': float, '<name>_p95': float, ...}``."""
        now = time.monotonic()
        with self._lock:
            items = [v for t, v in self._items if now - t <= self.seconds]
            times = [t for t, _ in self._items if now - t <= self.seconds]
        out = {'rate_hz': 0.0}
        if len(times) >= 2 and times[-1] > times[0]:
            out['rate_hz'] = (len(times) - 1) / (times[-1] - times[0])
        for key in (items[0] if items else {}):
            vals = np.array([v[key] for v in items])
            out[f'{key}_p50'] = float(np.percentile(vals, 50))
            out[f'{key}_p95'] = float(np.percentile(vals, 95))
        return out


class SegmentationNode(Node):
    """Camera ``image`` in; ``~/labels`` (mono8), ``~/overlay``, ``~/features`` (rgb8) out."""

    def __init__(self, **kwargs):
        super().__init__('segmentation_node', **kwargs)
        self.p = params.declare(self, PARAMETERS)
        self.slot = LatestFrame()
        self.window = Window()
        self.frames_in = self.frames_out = self.bad_frames = self.no_model_frames = 0
        self.engine = None
        self.model_state = 'not loaded'
        self._model_sig = None
        self._stop = threading.Event()

        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.pub_labels = self.create_publisher(Image, '~/labels', 2)
        self.pub_overlay = self.create_publisher(Image, '~/overlay', 2)
        self.pub_features = self.create_publisher(Image, '~/features', 2)
        self.pub_classes = self.create_publisher(String, '~/class_names', latched)
        self.diagnostics = Diagnostics(self, f'{self.get_name()}: segmentation',
                                       self.p.diagnostics_period_s, self._status)
        self.camera = CameraSubscription(self, Image, 'image', self._on_image,
                                         self.p.qos_reliability, self.p.qos_depth)
        self.topic = self.camera.topic
        self.worker = threading.Thread(target=self._work, name='segmentation', daemon=True)
        self.worker.start()

    def _on_image(self, msg):
        self.frames_in += 1
        self.slot.put(msg)

    # --- model ---------------------------------------------------------------------------------
    def _maybe_load_model(self):
        """Load the model when the file appeared or changed since the last failed try."""
        path = os.path.expanduser(self.p.model_path)
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        sig = (st.st_mtime_ns, st.st_size) if st else None
        if sig == self._model_sig and sig is not None:
            return  # this version already failed; wait for the file to change
        self._model_sig = sig
        if sig is None:
            self.model_state = 'missing'
            # a reminder once a minute, not at every check
            self.get_logger().error(
                f'model file {path!r} does not exist: no labels until it appears (checking '
                f'every {self.p.model_retry_s:g} s)' if path else
                'parameter model_path is empty: set it to an exported .onnx/.pt model',
                throttle_duration_sec=60.0)
            return
        try:
            from sam2real_ros.inference.engine import SegmentationEngine
            engine = SegmentationEngine.load(path, backend=self.p.backend, device=self.p.device,
                                             threads=self.p.threads or None,
                                             allow_spinning=self.p.allow_spinning)
            names = list(engine.class_names)  # 1..MAX_CLASSES, checked by the engine
        except Exception as exc:  # one line per file version: retried when the file changes
            self.model_state = 'failed'
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.get_logger().error(f'cannot load model {path!r}: {reason}')
            return
        self.engine, self.model_state = engine, 'loaded'
        self.class_names = names
        self.pub_classes.publish(String(data=json.dumps(names)))
        backend = getattr(engine, 'backend', self.p.backend)
        self.get_logger().info(f'loaded model {path!r} ({len(names)} classes: '
                               f'{", ".join(names)}; backend {backend})')

    # --- worker ----------------------------------------------------------------------------
    def _work(self):
        next_try = 0.0
        while not self._stop.is_set() and self.context.ok():
            if self.engine is None:
                if time.monotonic() >= next_try:
                    self._maybe_load_model()
                    next_try = time.monotonic() + self.p.model_retry_s
                if self.engine is None:
                    if self.slot.take(timeout=0.1) is not None:
                        self.no_model_frames += 1
                    continue
            msg = self.slot.take(timeout=0.1)
            if msg is not None:
                try:
                    self._process(msg)
                except Exception as exc:  # keep the node alive; counted and logged once
                    if not self.context.ok():
                        return  # shutting down (SIGINT): publishing fails, nothing to report
                    self.bad_frames += 1
                    self.get_logger().error(f'frame skipped: {type(exc).__name__}: {exc} '
                                            '(counted in diagnostics; logged at most once a '
                                            'minute)', throttle_duration_sec=60.0)

    def _process(self, msg):
        t0 = time.perf_counter()
        try:
            rgb = image_to_rgb8(msg)
        except ValueError as exc:
            self.bad_frames += 1
            self.get_logger().warning(f'bad frame on {self.topic} skipped: {exc} (counted in '
                                      'diagnostics; logged at most once a minute)',
                                      throttle_duration_sec=60.0)
            return
        want_overlay = self.p.publish_overlay and self.pub_overlay.get_subscription_count() > 0
        want_features = (self.p.publish_features
                         and self.pub_features.get_subscription_count() > 0)
        t1 = time.perf_counter()
        pred = self.engine.predict(rgb, want_features=want_features)
        t2 = time.perf_counter()
        labels = pred.labels
        if labels.shape != rgb.shape[:2] or labels.dtype != np.uint8:
            raise ValueError(f'engine returned labels {labels.shape} {labels.dtype}, '
                             f'expected {rgb.shape[:2]} uint8')
        self.pub_labels.publish(numpy_to_image(labels, 'mono8', header=msg.header))
        if want_overlay or (want_features and pred.features is not None):
            from sam2real_ros.inference import visual
            if want_overlay:
                colors = visual.colorize_labels(labels, len(self.class_names))
                alpha = self.p.overlay_alpha
                blend = (rgb * (1.0 - alpha) + colors * alpha).astype(np.uint8)
                self.pub_overlay.publish(numpy_to_image(blend, 'rgb8', header=msg.header))
            if want_features and pred.features is not None:
                feats = np.ascontiguousarray(visual.features_to_rgb(pred.features), np.uint8)
                self.pub_features.publish(numpy_to_image(feats, 'rgb8', header=msg.header))
        self.frames_out += 1
        now_ns = self.get_clock().now().nanoseconds
        self.window.add(latency_ms=(now_ns - stamp_to_ns(msg.header.stamp)) / 1e6,
                        inference_ms=(t2 - t1) * 1e3,
                        node_ms=(time.perf_counter() - t0) * 1e3)

    # --- diagnostics -----------------------------------------------------------------------
    def _status(self):
        s = self.window.summary()
        if self.engine is None:
            level, message = 'error', f'model {self.model_state}'
        elif self.camera.sub is None:
            level, message = 'warn', 'waiting for a camera publisher'
        else:
            level, message = 'ok', f'{s["rate_hz"]:.1f} Hz'
        nan = float('nan')
        return level, message, {
            'rate_hz': f'{s["rate_hz"]:.2f}',
            'latency_ms_p50': f'{s.get("latency_ms_p50", nan):.1f}',
            'latency_ms_p95': f'{s.get("latency_ms_p95", nan):.1f}',
            'inference_ms_p50': f'{s.get("inference_ms_p50", nan):.1f}',
            'node_ms_p50': f'{s.get("node_ms_p50", nan):.1f}',
            'frames_in': self.frames_in, 'frames_out': self.frames_out,
            'dropped_frames': self.slot.dropped, 'bad_frames': self.bad_frames,
            'no_model_frames': self.no_model_frames,
            'model_path': self.p.model_path, 'model_state': self.model_state,
            'backend': getattr(self.engine, 'backend', self.p.backend),
            'device': self.p.device,
            'providers': ','.join(getattr(self.engine, 'providers', None) or []),
            'image_topic': self.camera.topic, 'qos_reliability': self.camera.reliability,
        }

    def shutdown(self):
        """Stop the worker thread (waits for the frame in progress)."""
        self._stop.set()
        self.slot.wake()
        self.worker.join(timeout=10.0)


def main(args=None):
    """Run ``segmentation_node`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    return run_node('segmentation_node', SegmentationNode, args)


if __name__ == '__main__':
    sys.exit(main())
