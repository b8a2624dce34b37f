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
``sam_worker`` lifecycle node: segments new frames of the recorder's dataset in the background.

A thin ROS adapter around :class:`sam2real_ros.sam.worker.WorkerLoop`, driven by its lifecycle
(the pattern of yolo_ros): ``configure`` loads the segmenter (the SAM model) and creates the
publisher ``~/frame_done``; ``activate`` starts the worker thread, which scans the dataset root
every ``poll_period_s`` seconds and segments frames of finished (complete or interrupted)
episodes and image folders into the mask store, one frame at a time, at low CPU priority;
``deactivate`` stops it after the frame in progress and frees the model (GPU memory too), which
is how a grasp pipeline pauses it (:class:`sam2real_ros.nodes.lifecycle.LifecycleClient`);
``activate`` loads the model again. With ``autostart`` it configures and activates itself.
``/diagnostics`` reports the lifecycle and worker state, frames done/failed, queue length and
s/frame in every state. Parameters: config/sam_worker.yaml; usage: docs/sam_worker.md.
"""
import os
import sys

from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.lifecycle import AUTOSTART, ManagedNode
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.runner import run_node
from sam2real_ros.sam import fallback, segmenters
from sam2real_ros.sam.worker import parse_shard, WorkerError, WorkerLoop
from std_msgs.msg import String

SHUTDOWN_WAIT_S = 3.0  # at SIGINT, wait this long for the frame in progress, then leave it
_SAM = segmenters.SAM_DEFAULTS
PARAMETERS = params.schema(
    Param('dataset_root', '', "the recorder's dataset root", required=True),
    Param('store_root', '', 'mask store folder; empty: <dataset_root>/masks'),
    Param('segmenter', 'auto', 'sam, fallback or auto (SAM when the checkpoint exists, else '
          'fallback)', one_of=('auto', 'sam', 'fallback')),
    Param('model_type', 'vit_h', 'SAM backbone', one_of=('vit_h', 'vit_l', 'vit_b')),
    Param('checkpoint', '', 'SAM checkpoint; empty: $SAM_CHECKPOINT or ~/.cache/sam2real/'),
    Param('device', 'auto', 'auto, cpu, cuda or cuda:N', pattern=segmenters.DEVICE_PATTERN),
    Param('backend', 'auto', "SAM fast path's engine: torch, onnx (onnxruntime on the CPU; "
          'exports the graphs once per checkpoint, minutes for ViT-H) or auto (onnx on a CPU, '
          'torch on a GPU)', one_of=('auto', 'torch', 'onnx')),
    Param('encoder_dtype', 'float32', 'SAM image encoder precision',
          one_of=('float32', 'bfloat16', 'float16')),
    Param('upsample_chunk', 32, 'SAM masks upsampled to full resolution at once',
          bounds=(1, 4096)),
    Param('nice', 10, 'CPU niceness increment of this process (0: unchanged)', bounds=(0, 19)),
    Param('poll_period_s', 5.0, 'seconds between scans of the dataset root',
          bounds=(0.05, 3600.0), read_only=False),
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
    # the fallback segmenter's settings, from its own table (sam/fallback.py PARAMETERS);
    # list values are range-checked by the segmenter when it is built
    *[Param('fallback.' + name, list(default), f'{text} (each in [{lo}, {hi}])',
            array=params.DOUBLE_ARRAY) if isinstance(default, list) else
      Param('fallback.' + name, default, text, bounds=(lo, hi))
      for name, (default, text, lo, hi) in fallback.PARAMETERS.items()],
    AUTOSTART,
)
CONFIG_HEADER = """Parameters of the sam_worker node (docs/sam_worker.md):
ros2 run sam2real sam_worker --ros-args --params-file config/sam_worker.yaml
`sam2real segment --config config/sam_worker.yaml DATASET` reads the same file."""


class SamWorkerNode(ManagedNode):
    """The sam_worker lifecycle node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('sam_worker', PARAMETERS, **kwargs)
        p = self.p
        root = os.path.expanduser(p['dataset_root'])
        if os.path.exists(root) and not os.path.isdir(root):
            raise ValueError(f'parameter dataset_root must be a folder, got the file {root!r}')
        ckpt = p['checkpoint'] or segmenters.default_checkpoint(p['model_type'])
        if p['segmenter'] == 'sam' and not os.path.isfile(ckpt):
            raise ValueError(segmenters.missing_checkpoint_message(
                ckpt, p['model_type'], how='set the parameter checkpoint'))
        try:
            self.shard = parse_shard(p['shard'])
        except WorkerError as e:
            raise ValueError(f'parameter shard: {e}') from None
        if p['nice'] > 0:
            os.nice(p['nice'])
        self.root = root
        self.loop = None
        self.done_pub = None
        self.diagnostics = Diagnostics(self, 'sam_worker: segmentation',
                                       p['diagnostics_period_s'], self._status, self.root)
        self.start_lifecycle()

    def on_parameter(self, name, value):
        """Apply a new ``poll_period_s`` at the worker's next scan."""
        if name == 'poll_period_s' and self.loop is not None:
            self.loop.poll_period = float(value)

    # --- lifecycle -------------------------------------------------------------------------
    def configure(self):
        """Load the segmenter and create the ``~/frame_done`` publisher."""
        # Started together with the recorder (one launch), the folder may not exist yet.
        if params.ensure_folder('dataset_root', self.root):
            self.log('warning', f'dataset_root {self.root} did not exist: created it (waiting '
                     'for episodes or images there; check the path unless the recorder starts '
                     'now)')
        self.loop = WorkerLoop(
            self.root, self._build_segmenter, self.p['store_root'] or None, self.shard,
            self.p['retry_failed'], self.p['poll_period_s'], on_frame=self._on_frame,
            log=self.log, shutting_down=lambda: not self.context.ok())
        self.loop.load()
        self.done_pub = self.create_lifecycle_publisher(String, '~/frame_done', 10)
        return (f'configured: segmenter {self.loop.segmenter.name}, store '
                f'{self.loop.worker.store_root}')

    def activate(self):
        """Load the segmenter again if deactivate freed it, then start the worker thread."""
        self.loop.load()
        self.loop.start()
        return 'active: segmenting new frames'

    def deactivate(self):
        """Stop the worker after the frame in progress and free the model (GPU memory too)."""
        if self.loop is not None:
            self.loop.stop()
            self.loop.free()
        return 'inactive: worker stopped, model freed'

    def cleanup(self):
        """Release the mask store and destroy the publisher (back to unconfigured)."""
        if self.loop is not None:
            self.loop.close()
            self.loop = None
        if self.done_pub is not None:
            self.destroy_lifecycle_publisher(self.done_pub)
            self.done_pub = None

    def shutdown(self):
        """
        Stop the worker (called by run_node at SIGINT, before destroy_node).

        Waits ``SHUTDOWN_WAIT_S`` for the frame in progress; a longer one is left: returns False,
        and run_node ends the process at once (the frame is not stored; it is redone at the
        next start).
        """
        if self.loop is None:
            return True
        ended = self.loop.close(SHUTDOWN_WAIT_S)
        self.loop = None
        if not ended:
            self.log('warning', f'a frame was still being segmented after {SHUTDOWN_WAIT_S:g} '
                     's: left unstored (segmented again at the next start)')
        return ended

    # --- work ------------------------------------------------------------------------------
    def _build_segmenter(self):
        p = self.p
        sam = {k[4:]: v for k, v in p.items() if k.startswith('sam.')}
        fb = {k[9:]: v for k, v in p.items() if k.startswith('fallback.')}
        opt = segmenters.SamOptions(
            model_type=p['model_type'], checkpoint=p['checkpoint'] or None, device=p['device'],
            backend=p['backend'], upsample_chunk=p['upsample_chunk'],
            encoder_dtype=p['encoder_dtype'], generator=sam)
        return segmenters.make_segmenter(p['segmenter'], opt, fb,
                                         log=self.get_logger().warning)

    def _on_frame(self, frame, status):
        """Publish the key of each stored frame; log failed ones (worker thread)."""
        if not self.context.ok():
            return  # shutting down: the publisher may be gone
        if status == 'done' and self.done_pub is not None:
            self.done_pub.publish(String(data=frame.key))
        elif status == 'failed':
            reason = self.loop.worker.store.failure_reason(frame.key) if self.loop else ''
            self.get_logger().warning(f'frame {frame.key} failed: {reason}')

    def _status(self):
        loop = self.loop
        w = loop.worker if loop is not None else None
        work = loop.state if loop is not None else 'unconfigured'
        values = {'lifecycle_state': self.lifecycle_state, 'state': work,
                  'model_loaded': loop is not None and loop.segmenter is not None,
                  'dataset_root': self.root,
                  'frames_done': w.done if w else 0,
                  'frames_failed': w.failed if w else 0,
                  'queue_length': w.queue_length if w else 0,
                  'segmenter': w.segmenter.name if w and w.segmenter else '',
                  's_per_frame': f'{w.seconds / w.done:.3f}' if w and w.done else '',
                  'last_s_per_frame': f'{w.last_seconds:.3f}' if w and w.last_seconds else ''}
        error = (loop.error if loop is not None and loop.state == 'error' else '') or self.error
        if error:
            level, message = 'error', error
        elif self.lifecycle_state != 'active':
            level, message = 'ok', f'{self.lifecycle_state} (lifecycle): not segmenting'
        else:
            level, message = 'ok', work
        return level, message, values


def main(argv=None):
    """Run ``sam_worker`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    return run_node('sam_worker', SamWorkerNode, argv, (segmenters.SegmenterError,))


if __name__ == '__main__':
    sys.exit(main())
