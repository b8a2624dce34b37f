"""
``sam_worker`` node: segments new frames of the recorder's dataset in the background.

A thin ROS adapter around :class:`sam2real_ros.sam.worker.SamWorker`: a worker thread polls the
dataset root every ``poll_period_s`` seconds and segments frames of finished (complete or
interrupted) episodes and image folders into the mask store, one frame at a time, at low CPU
priority. While the latest std_msgs/Bool on ``busy_topic`` is true no new frame is started.
Publishes ``/diagnostics`` (frames done/failed, queue length, s/frame, segmenter) and
``~/frame_done`` (std_msgs/String, the key of each stored frame). Parameters:
config/sam_worker.yaml; usage: docs/sam_worker.md.
"""
import os
import sys
import threading

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.runner import run_node
from sam2real_ros.sam import segmenters
from sam2real_ros.sam.worker import parse_shard, SamWorker, WorkerError
from std_msgs.msg import Bool, String

_SAM, _FB = segmenters.SAM_DEFAULTS, segmenters.FALLBACK_DEFAULTS
PARAMETERS = params.schema(
    Param('dataset_root', '', "the recorder's dataset root", required=True),
    Param('store_root', '', 'mask store folder; empty: <dataset_root>/masks'),
    Param('segmenter', 'auto', 'sam, fallback or auto (SAM when the checkpoint exists, else '
          'fallback)', one_of=('auto', 'sam', 'fallback')),
    Param('model_type', 'vit_h', 'SAM backbone', one_of=('vit_h', 'vit_l', 'vit_b')),
    Param('checkpoint', '', 'SAM checkpoint; empty: $SAM_CHECKPOINT or ~/.cache/sam2real/'),
    Param('device', 'auto', 'auto, cpu, cuda or cuda:N', pattern=r'auto|cpu|cuda(:\d+)?'),
    Param('encoder_dtype', 'float32', 'SAM image encoder precision',
          one_of=('float32', 'bfloat16', 'float16')),
    Param('upsample_chunk', 32, 'SAM masks upsampled to full resolution at once',
          bounds=(1, 4096)),
    Param('nice', 10, 'CPU niceness increment of this process (0: unchanged)', bounds=(0, 19)),
    Param('poll_period_s', 5.0, 'seconds between scans of the dataset root',
          bounds=(0.05, 3600.0), read_only=False),
    Param('busy_topic', 'busy', 'std_msgs/Bool; while true no new frame is started; empty: off'),
    Param('retry_failed', False, 'process frames marked failed again'),
    Param('shard', '0/1', 'i/n: this worker processes shard i of n (stable hash of the key)',
          pattern=r'\d+/\d+'),
    Param('diagnostics_period_s', 1.0, 'seconds between /diagnostics messages',
          bounds=(0.1, 60.0)),
    Param('sam.points_per_side', _SAM['points_per_side'], 'SAM point grid per image side '
          '(paper: 24)', bounds=(1, 128)),
    Param('sam.points_per_batch', _SAM['points_per_batch'], 'SAM point prompts decoded at once',
          bounds=(1, 4096)),
    Param('sam.pred_iou_thresh', _SAM['pred_iou_thresh'], 'SAM predicted-IoU filter',
          bounds=(0.0, 1.0)),
    Param('sam.stability_score_thresh', _SAM['stability_score_thresh'],
          'SAM stability-score filter', bounds=(0.0, 1.0)),
    Param('sam.stability_score_offset', _SAM['stability_score_offset'],
          'SAM stability-score logit offset', bounds=(0.0, 10.0)),
    Param('sam.box_nms_thresh', _SAM['box_nms_thresh'], 'SAM box NMS IoU threshold',
          bounds=(0.0, 1.0)),
    Param('sam.crop_n_layers', _SAM['crop_n_layers'], 'SAM crop layers', bounds=(0, 4)),
    Param('sam.min_mask_region_area', _SAM['min_mask_region_area'], 'SAM small-region removal '
          '(pixels; 0: off)', bounds=(0, 1000000)),
    Param('fallback.scales', list(_FB['scales']), 'Felzenszwalb scales, fine to coarse',
          array=params.DOUBLE_ARRAY),
    Param('fallback.sigma', _FB['sigma'], 'Felzenszwalb Gaussian pre-smoothing',
          bounds=(0.0, 10.0)),
    Param('fallback.min_area', _FB['min_area'], 'minimum segment area in pixels',
          bounds=(1, 10000000)),
    Param('fallback.max_area_fraction', _FB['max_area_fraction'], 'drop segments larger than '
          'this image fraction', bounds=(0.0, 1.0)),
    Param('fallback.max_side', _FB['max_side'], 'long image side it segments at',
          bounds=(16, 8192)),
)
CONFIG_HEADER = """Parameters of the sam_worker node (docs/sam_worker.md):
ros2 run sam2real sam_worker --ros-args --params-file config/sam_worker.yaml
`sam2real segment --config config/sam_worker.yaml DATASET` reads the same file."""


class SamWorkerNode(Node):
    """The sam_worker node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('sam_worker', **kwargs)
        p = params.declare(self, PARAMETERS)
        self.p = p
        root = os.path.expanduser(p['dataset_root'])
        if os.path.exists(root) and not os.path.isdir(root):
            raise ValueError(f'parameter dataset_root must be a folder, got the file {root!r}')
        # Started together with the recorder (one launch), the folder may not exist yet.
        os.makedirs(root, exist_ok=True)
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
        if p['busy_topic']:
            self.create_subscription(Bool, p['busy_topic'], self._on_busy,
                                     QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.diagnostics = Diagnostics(self, 'sam_worker: segmentation',
                                       p['diagnostics_period_s'], self._status, self.root)
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
                self.stop.wait(self.p['poll_period_s'])
        except Exception as e:  # report, keep the node alive for diagnostics
            self.state = 'error'
            self.error = f'{type(e).__name__}: {e}'
            self.get_logger().error(f'worker stopped: {self.error}')

    def _status(self):
        w = self.worker
        values = {'state': self.state, 'busy': self.busy, 'dataset_root': self.root,
                  'frames_done': w.done if w else 0,
                  'frames_failed': w.failed if w else 0,
                  'queue_length': w.queue_length if w else 0,
                  'segmenter': w.segmenter.name if w else '',
                  's_per_frame': f'{w.seconds / w.done:.3f}' if w and w.done else '',
                  'last_s_per_frame': f'{w.last_seconds:.3f}' if w and w.last_seconds else ''}
        level = ('error' if self.state == 'error'
                 else 'warn' if self.busy and w and w.queue_length else 'ok')
        message = self.error or (f'{self.state}, paused (busy)' if self.busy else self.state)
        return level, message, values

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
