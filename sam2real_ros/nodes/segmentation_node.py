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
Real-time semantic segmentation as a lifecycle node: camera ``image`` -> label image.

A thin ROS adapter around :mod:`sam2real_ros.inference` (engine, runtime): ``configure`` loads
the model and creates the publishers, ``activate`` subscribes to the camera and starts the worker
thread and the model file watcher, ``deactivate`` stops them and frees the model (GPU memory
too), ``cleanup`` destroys the publishers. With ``autostart`` it configures and activates itself.

The camera callback only puts the message into a one-slot buffer (a newer frame replaces an
unprocessed one, counted as dropped); the worker runs the engine on the newest frame and
publishes ``~/labels`` (mono8, the camera's header), ``~/labels_color``, ``~/overlay`` and
``~/features`` (rgb8, only while subscribed), the class map (``~/class_names`` latched JSON, and
``~/label_info`` as ``vision_msgs/LabelInfo`` when vision_msgs is importable) and
``/diagnostics``. docs/segmentation_node.md describes topics, states and parameters.
"""
import json
import sys
import threading
import time

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sam2real_ros.common.conversions import image_to_rgb8, stamp_to_ns
from sam2real_ros.common.rejects import fault_kind
from sam2real_ros.inference import visual
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.inference.runtime import (HotModel, LatestFrame, RateWindow,
                                            reuse_large_buffers)
from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.lifecycle import AUTOSTART, ManagedNode
from sam2real_ros.nodes.messages import numpy_to_image
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.qos import camera_qos_parameters, CameraSubscription
from sam2real_ros.nodes.runner import run_node
from sensor_msgs.msg import Image
from std_msgs.msg import String

try:  # the standard class-map message, where the robot has vision_msgs (ROS 2 >= Humble)
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:
    LabelInfo = VisionClass = None

PARAMETERS = params.schema(
    Param('model_path', '', 'exported model (.onnx, or a .pt checkpoint for the torch '
          'backend); a new or replaced file is loaded in the background and swapped in '
          'between two frames'),
    Param('backend', 'auto', 'engine backend: auto (by file extension), onnxruntime or torch',
          one_of=('auto', 'onnxruntime', 'torch')),
    Param('device', 'auto', 'engine device: auto (GPU when available), cpu or cuda',
          one_of=('auto', 'cpu', 'cuda')),
    Param('threads', 0, 'CPU inference threads (0: the library default)', bounds=(0, 256)),
    Param('allow_spinning', False, 'onnxruntime CPU threads busy-wait between operators: '
          'lowest latency on idle cores, but they steal CPU from the camera callbacks and '
          'other nodes on a busy robot CPU'),
    *camera_qos_parameters('best_effort', 1),
    params.camera_timeout_parameter(3.0),
    Param('publish_color', True, 'publish ~/labels_color while it has subscribers',
          read_only=False),
    Param('publish_overlay', True, 'publish ~/overlay while it has subscribers',
          read_only=False),
    Param('publish_features', True, 'publish ~/features while it has subscribers',
          read_only=False),
    Param('overlay_alpha', 0.5, 'weight of the class colours in ~/overlay', bounds=(0.0, 1.0),
          read_only=False),
    Param('model_retry_s', 2.0, 'seconds between checks of model_path for a new, replaced or '
          'missing file', bounds=(0.1, 3600.0), read_only=False),
    Param('diagnostics_period_s', 1.0, 'period of the /diagnostics status',
          bounds=(0.05, 60.0)),
    AUTOSTART,
)
CONFIG_HEADER = """Parameters of the segmentation node (docs/segmentation_node.md).
ros2 run sam2real segmentation_node --ros-args --params-file config/segmentation_node.yaml \\
    -r image:=/head_front_camera/rgb/image_raw -p autostart:=true"""

MAX_REASONS = 16  # distinct bad-frame reasons counted one by one; more go to 'other'


class SegmentationNode(ManagedNode):
    """Camera ``image`` in; ``~/labels`` (mono8) and its colour views out (lifecycle)."""

    def __init__(self, **kwargs):
        super().__init__('segmentation_node', PARAMETERS, **kwargs)
        self.slot = LatestFrame()
        self.frames = RateWindow()  # camera frames received (any, good or bad)
        self.labels = RateWindow()  # label images published, with per-frame figures
        self.frames_in = self.frames_out = self.no_model_frames = 0
        self.bad = {}  # undecodable frame: reason -> count (the first of each is logged)
        self.failed = {}  # frames the engine or publishing failed on: reason -> count
        self.hot = None
        self.camera = None
        self.worker = None
        self.class_names = []
        self.pubs = {}
        self._stop = threading.Event()
        self.diagnostics = Diagnostics(self, f'{self.get_name()}: segmentation',
                                       self.p.diagnostics_period_s, self._status)
        self.start_lifecycle()

    def on_parameter(self, name, value):
        """Apply a new ``model_retry_s`` at the watcher's next wait."""
        if name == 'model_retry_s' and self.hot is not None:
            self.hot.poll_s = float(value)

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self):
        """Load the model (or start waiting for it) and create the publishers."""
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {
            'labels': self.create_publisher(Image, '~/labels', 2),
            'labels_color': self.create_publisher(Image, '~/labels_color', 2),
            'overlay': self.create_publisher(Image, '~/overlay', 2),
            'features': self.create_publisher(Image, '~/features', 2),
            'class_names': self.create_publisher(String, '~/class_names', latched),
        }
        if LabelInfo is not None:
            self.pubs['label_info'] = self.create_publisher(LabelInfo, '~/label_info', latched)
        self.hot = HotModel(self.p.model_path, self._load_engine, self.p.model_retry_s,
                            report=self.log)
        self._take_model()

    def activate(self):
        """Load the model if deactivate freed it, start the worker, subscribe to the camera."""
        self._take_model()
        self.frames.reset()
        self.labels.reset()
        self._stop.clear()
        self.worker = threading.Thread(target=self._work, name='segmentation', daemon=True)
        self.worker.start()
        self.hot.start()
        self.camera = CameraSubscription(self, Image, 'image', self._on_image,
                                         self.p.qos_reliability, self.p.qos_depth)

    def deactivate(self):
        """Unsubscribe, stop the worker and the file watcher, free the model."""
        self._stop_work()
        return 'inactive: camera unsubscribed, model freed'

    def cleanup(self):
        """Destroy the publishers (back to unconfigured)."""
        self._stop_work()
        for pub in self.pubs.values():
            self.destroy_publisher(pub)
        self.pubs, self.hot, self.class_names = {}, None, []

    def _stop_work(self):
        """Unsubscribe, stop the worker thread and the watcher, free the model."""
        if self.camera is not None:
            self.camera.destroy()
            self.camera = None
        self._stop.set()
        self.slot.wake()
        if self.worker is not None:
            self.worker.join()
            self.worker = None
        self.slot.clear()
        if self.hot is not None:
            self.hot.release()

    def shutdown(self):
        """Stop the worker and free the model (called by run_node before destroy_node)."""
        self._stop_work()

    # --- model -----------------------------------------------------------------------------
    def _load_engine(self, path):
        return SegmentationEngine.load(path, backend=self.p.backend, device=self.p.device,
                                       threads=self.p.threads or None,
                                       allow_spinning=self.p.allow_spinning)

    def _take_model(self):
        """Load the model now if none is loaded; publish the class map of a new one."""
        self.hot.load_now()
        engine, swapped = self.hot.take()
        if swapped or (engine is not None and engine.class_names != self.class_names):
            self._publish_class_map(engine)
        return engine

    def _publish_class_map(self, engine):
        self.class_names = list(engine.class_names)
        self.pubs['class_names'].publish(String(data=json.dumps(self.class_names)))
        if 'label_info' in self.pubs:
            msg = LabelInfo(class_map=[VisionClass(class_id=i, class_name=name)
                                       for i, name in enumerate(self.class_names)],
                            threshold=0.0)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.pubs['label_info'].publish(msg)

    # --- camera and worker -----------------------------------------------------------------
    def _on_image(self, msg):
        self.frames_in += 1
        self.frames.add()
        self.slot.put(msg)

    def _work(self):
        while not self._stop.is_set():
            msg = self.slot.take(timeout=0.1)
            engine, swapped = self.hot.take()  # a new model comes in between two frames
            if swapped:
                self._publish_class_map(engine)
            if msg is None or self._stop.is_set():
                continue
            if engine is None:
                self.no_model_frames += 1
                continue
            try:
                self._process(msg, engine)
            except Exception as exc:  # keep serving; counted, each kind logged once
                if not self.context.ok():
                    return  # shutting down (SIGINT): publishing fails, nothing to report
                self._count(self.failed, exc, f'frame failed: {type(exc).__name__}: {exc}',
                            'error')

    def _count(self, counts, exc, text, level='warn'):
        """Count a skipped frame under its reason; log the first of each reason."""
        key = fault_kind(str(exc).strip() or type(exc).__name__)
        if key not in counts and len(counts) >= MAX_REASONS:
            key = 'other'
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            self.log(level, f'{text} (counted in /diagnostics, logged once per cause)')

    def _process(self, msg, engine):
        t0 = time.perf_counter()
        try:
            rgb = image_to_rgb8(msg)
        except ValueError as exc:
            self._count(self.bad, exc, f'bad frame on {self.camera.topic} skipped: {exc}')
            return
        p, pubs = self.p, self.pubs
        want = {name: getattr(p, f'publish_{name}') and pubs[topic].get_subscription_count() > 0
                for name, topic in (('color', 'labels_color'), ('overlay', 'overlay'),
                                    ('features', 'features'))}
        t1 = time.perf_counter()
        pred = engine.predict(rgb, want_features=want['features'])
        t2 = time.perf_counter()
        labels = pred.labels
        pubs['labels'].publish(numpy_to_image(labels, 'mono8', header=msg.header))
        if want['color'] or want['overlay'] or want['features']:
            if want['color'] or want['overlay']:
                colors = visual.colorize_labels(labels, engine.num_classes)
            if want['color']:
                pubs['labels_color'].publish(numpy_to_image(colors, 'rgb8', header=msg.header))
            if want['overlay']:
                alpha = p.overlay_alpha
                blend = (rgb * (1.0 - alpha) + colors * alpha).astype('uint8')
                pubs['overlay'].publish(numpy_to_image(blend, 'rgb8', header=msg.header))
            if want['features'] and pred.features is not None:
                feats = visual.features_to_rgb(pred.features)
                pubs['features'].publish(numpy_to_image(feats, 'rgb8', header=msg.header))
        self.frames_out += 1
        now_ns = self.get_clock().now().nanoseconds
        self.labels.add(latency_ms=(now_ns - stamp_to_ns(msg.header.stamp)) / 1e6,
                        inference_ms=(t2 - t1) * 1e3, node_ms=(time.perf_counter() - t0) * 1e3)

    # --- diagnostics -----------------------------------------------------------------------
    def _status(self):
        """Return ``(level, message, values)`` for /diagnostics (states: docs)."""
        s, cam = self.labels.summary(), self.frames.summary()
        hot, engine = self.hot, (self.hot.engine if self.hot is not None else None)
        state = self.lifecycle_state
        if state != 'active':
            level, message = 'ok', f'{state} (lifecycle): not segmenting'
        elif engine is None:
            level = 'error'
            message = f'model {hot.state}' + (f': {hot.error}' if hot.error else '')
        elif self.camera is None or self.camera.reliability is None:
            topic = self.camera.topic if self.camera is not None else 'image'
            level, message = 'warn', f'waiting for a camera publisher on {topic}'
        elif cam['age_s'] >= self.p.camera_timeout_s:
            level, message = 'warn', f'no camera frames for {cam["age_s"]:.0f} s'
        elif hot.state == 'reload failed':
            level, message = 'warn', f'new model failed to load ({hot.error}); the previous ' \
                'model stays in use'
        elif cam['rate_hz'] > 0 and s['rate_hz'] == 0 and self.bad:
            level, message = 'warn', 'camera frames cannot be segmented (see bad_frame values)'
        else:
            level, message = 'ok', f'{s["rate_hz"]:.1f} Hz'
        nan = float('nan')
        values = {
            'lifecycle_state': state,
            'rate_hz': f'{s["rate_hz"]:.2f}',
            'camera_hz': f'{cam["rate_hz"]:.2f}',
            'last_frame_age_s': f'{cam["age_s"]:.1f}' if state == 'active' else '',
            'latency_ms_p50': f'{s.get("latency_ms_p50", nan):.1f}',
            'latency_ms_p95': f'{s.get("latency_ms_p95", nan):.1f}',
            'inference_ms_p50': f'{s.get("inference_ms_p50", nan):.1f}',
            'node_ms_p50': f'{s.get("node_ms_p50", nan):.1f}',
            'frames_in': self.frames_in, 'frames_out': self.frames_out,
            'dropped_frames': self.slot.dropped, 'bad_frames': sum(self.bad.values()),
            'failed_frames': sum(self.failed.values()), 'no_model_frames': self.no_model_frames,
            'model_path': self.p.model_path,
            'model_state': hot.state if hot is not None else 'not loaded',
            'model_error': hot.error if hot is not None else '',
            'model_loads': hot.loads if hot is not None else 0,
            'classes': len(self.class_names),
            'backend': getattr(engine, 'backend', ''),
            'providers': ','.join(getattr(engine, 'providers', None) or []),
            'fp16': getattr(engine, 'fp16', ''),
            'labels_in_graph': getattr(engine, 'labels_in_graph', ''),
            'device': self.p.device,
            'image_topic': self.camera.topic if self.camera is not None else '',
            'qos_reliability': (self.camera.reliability or 'waiting') if self.camera else '',
        }
        values.update({f'bad_frame: {k}': n for k, n in sorted(self.bad.items())})
        values.update({f'failed_frame: {k}': n for k, n in sorted(self.failed.items())})
        return level, message, values


def main(args=None):
    """Run ``segmentation_node`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    reuse_large_buffers()  # camera frames: half the CPU per received frame
    return run_node('segmentation_node', SegmentationNode, args)


if __name__ == '__main__':
    sys.exit(main())
