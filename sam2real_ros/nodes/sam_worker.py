"""
``sam_worker`` node: segments new frames of the recorder's dataset in the background.

A thin ROS adapter around :class:`sam2real_ros.sam.worker.SamWorker`: a worker thread polls the
dataset root every ``poll_period`` seconds and segments frames of finished (complete or
interrupted) episodes and image folders into the mask store, one frame at a time, at low CPU
priority. While the latest std_msgs/Bool on ``busy_topic`` is true no new frame is started.
Publishes ``/diagnostics`` (frames done/failed, queue length, s/frame, segmenter) and
``~/frame_done`` (std_msgs/String, the key of each stored frame). Parameters:
config/sam_worker.yaml; usage: docs/sam_worker.md.
"""
import os
import sys
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sam2real_ros.nodes.runner import declare_parameters, run_node
from sam2real_ros.sam import segmenters
from sam2real_ros.sam.worker import parse_shard, SamWorker, WorkerError
from std_msgs.msg import Bool, String

_STR = {
    'dataset_root': ('', "the recorder's dataset root (required)"),
    'store_root': ('', 'mask store folder; empty: <dataset_root>/masks'),
    'segmenter': ('auto', 'sam | fallback | auto (SAM when the checkpoint exists, else fallback)'),
    'model_type': ('vit_h', 'SAM backbone: vit_h | vit_l | vit_b'),
    'checkpoint': ('', 'SAM checkpoint; empty: $SAM_CHECKPOINT or ~/.cache/sam2real/'),
    'device': ('auto', 'auto | cpu | cuda | cuda:N'),
    'encoder_dtype': ('float32', 'SAM image encoder precision: float32 | bfloat16 | float16'),
    'busy_topic': ('busy', 'std_msgs/Bool; while true no new frame is started; empty: off'),
    'shard': ('0/1', 'i/n: this worker processes shard i of n (stable hash of the key)'),
}
_FLOAT = {
    'poll_period': (5.0, 'seconds between scans of the dataset root', 0.05, 3600.0),
    'diagnostics_period': (1.0, 'seconds between /diagnostics messages', 0.1, 60.0),
    'sam.pred_iou_thresh': (0.88, 'SAM predicted-IoU filter', 0.0, 1.0),
    'sam.stability_score_thresh': (0.95, 'SAM stability-score filter', 0.0, 1.0),
    'sam.stability_score_offset': (1.0, 'SAM stability-score logit offset', 0.0, 10.0),
    'sam.box_nms_thresh': (0.7, 'SAM box NMS IoU threshold', 0.0, 1.0),
    'fallback.sigma': (0.8, 'Felzenszwalb Gaussian pre-smoothing', 0.0, 10.0),
    'fallback.max_area_fraction': (0.95, 'drop segments larger than this image fraction',
                                   0.0, 1.0),
}
_INT = {
    'nice': (10, 'CPU niceness increment of this process (0: unchanged)', 0, 19),
    'upsample_chunk': (32, 'SAM masks upsampled to full resolution at once', 1, 4096),
    'sam.points_per_side': (24, 'SAM point grid per image side (paper: 24)', 1, 128),
    'sam.points_per_batch': (64, 'SAM point prompts decoded at once', 1, 4096),
    'sam.crop_n_layers': (0, 'SAM crop layers', 0, 4),
    'sam.min_mask_region_area': (0, 'SAM small-region removal (pixels; 0: off)', 0, 1000000),
    'fallback.min_area': (64, 'fallback: minimum segment area in pixels', 1, 10000000),
    'fallback.max_side': (320, 'fallback: long image side it segments at', 16, 8192),
}


class SamWorkerNode(Node):
    """The sam_worker node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('sam_worker', **kwargs)
        p = declare_parameters(self, {**_STR, **_FLOAT, **_INT}, read_only=False)
        p['retry_failed'] = self.declare_parameter('retry_failed', False, ParameterDescriptor(
            description='process frames marked failed again')).value
        p['fallback.scales'] = list(self.declare_parameter(
            'fallback.scales', segmenters.FALLBACK_DEFAULTS['scales'], ParameterDescriptor(
                type=ParameterType.PARAMETER_DOUBLE_ARRAY,
                description='Felzenszwalb scales, fine to coarse')).value)
        self.p = p
        root = os.path.expanduser(p['dataset_root'])
        if not root:
            raise ValueError("parameter dataset_root must name the recorder's dataset folder")
        if os.path.exists(root) and not os.path.isdir(root):
            raise ValueError(f'parameter dataset_root must be a folder, got the file {root!r}')
        # Started together with the recorder (one launch), the folder may not exist yet.
        os.makedirs(root, exist_ok=True)
        if p['segmenter'] not in ('sam', 'fallback', 'auto'):
            raise ValueError(f'parameter segmenter must be sam, fallback or auto, got '
                             f"{p['segmenter']!r}")
        ckpt = p['checkpoint'] or segmenters.default_checkpoint(p['model_type'])
        if p['segmenter'] == 'sam' and not os.path.isfile(ckpt):
            raise ValueError(segmenters.missing_checkpoint_message(ckpt, p['model_type']))
        try:
            self.shard = parse_shard(p['shard'])
        except WorkerError as e:
            raise ValueError(f'parameter shard: {e}') from None
        if p['nice'] > 0:
            os.nice(p['nice'])
        self.root = root
        self.busy = False
        self.state = 'starting'
        self.error = ''
        self.worker = None
        self.stop = threading.Event()
        self.done_pub = self.create_publisher(String, '~/frame_done', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if p['busy_topic']:
            self.create_subscription(Bool, p['busy_topic'], self._on_busy,
                                     QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.create_timer(p['diagnostics_period'], self._publish_diagnostics)
        self.thread = threading.Thread(target=self._loop, name='sam_worker', daemon=True)
        self.thread.start()

    def _on_busy(self, msg):
        self.busy = bool(msg.data)

    def _build_segmenter(self):
        p = self.p
        sam = {k[4:]: v for k, v in p.items() if k.startswith('sam.')}
        fallback = {k[9:]: v for k, v in p.items() if k.startswith('fallback.')}
        return segmenters.make_segmenter(
            p['segmenter'], p['model_type'], p['checkpoint'] or None, p['device'], sam, fallback,
            upsample_chunk=p['upsample_chunk'], encoder_dtype=p['encoder_dtype'],
            log=self.get_logger().warning)

    def _on_frame(self, frame, status):
        if status == 'done':
            self.done_pub.publish(String(data=frame.key))
        elif status == 'failed':
            reason = self.worker.store.failure_reason(frame.key)
            self.get_logger().warning(f'frame {frame.key} failed: {reason}')

    def _loop(self):
        try:
            self.state = 'loading'
            seg = self._build_segmenter()
            self.worker = SamWorker(self.root, seg, self.p['store_root'] or None, self.shard,
                                    self.p['retry_failed'])
            self.get_logger().info(f'segmenter {seg.name}, store {self.worker.store_root}')
            while not self.stop.is_set():
                self.state = 'scanning'
                frames = self.worker.pending()
                self.state = 'working' if frames else 'idle'
                self.worker.run(frames, stop=self.stop, busy=lambda: self.busy,
                                on_frame=self._on_frame)
                self.state = 'idle'
                self.stop.wait(self.p['poll_period'])
        except Exception as e:  # report, keep the node alive for diagnostics
            self.state = 'error'
            self.error = f'{type(e).__name__}: {e}'
            self.get_logger().error(f'worker stopped: {self.error}')

    def _publish_diagnostics(self):
        w = self.worker
        values = {'state': self.state, 'busy': str(self.busy), 'dataset_root': self.root,
                  'frames_done': str(w.done if w else 0),
                  'frames_failed': str(w.failed if w else 0),
                  'queue_length': str(w.queue_length if w else 0),
                  'segmenter': w.segmenter.name if w else '',
                  's_per_frame': f'{w.seconds / w.done:.3f}' if w and w.done else '',
                  'last_s_per_frame': f'{w.last_seconds:.3f}' if w and w.last_seconds else ''}
        level = (DiagnosticStatus.ERROR if self.state == 'error'
                 else DiagnosticStatus.WARN if self.busy and w and w.queue_length
                 else DiagnosticStatus.OK)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(
            level=level, name='sam_worker: segmentation', hardware_id=self.root,
            message=self.error or (f'{self.state}, paused (busy)' if self.busy else self.state),
            values=[KeyValue(key=k, value=v) for k, v in values.items()])]
        self.diag_pub.publish(msg)

    def shutdown(self, timeout=60.0):
        """Stop the worker thread between frames and wait for it."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout)


def main(argv=None):
    """Run ``sam_worker`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    return run_node('sam_worker', SamWorkerNode, argv, (segmenters.SegmenterError,))


if __name__ == '__main__':
    sys.exit(main())
