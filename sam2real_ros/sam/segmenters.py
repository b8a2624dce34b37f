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
Segmenters that over-segment an RGB image into overlapping masks for the mask store.

``SamSegmenter``: SAM's automatic ("segment everything") mode, paper defaults (ViT-H, 24 points
per side), through :class:`sam2real_ros.sam.sam_fast.FastAutomaticMaskGenerator` (same output as
the library's generator, faster). ``FallbackSegmenter`` (:mod:`sam2real_ros.sam.fallback`): for
machines without a SAM checkpoint; whole objects and their parts from depth (support plane +
depth jumps) and colour, colour only for frames without depth. :func:`make_segmenter` picks one
(``sam``, ``fallback`` or ``auto``).
"""
import os
import re

import numpy as np

from sam2real_ros.sam import fallback
from sam2real_ros.sam.fallback import FallbackSegmenter  # noqa: F401 (public name)
from sam2real_ros.sam.segments import Segments

SAM_CHECKPOINTS = {
    'vit_h': 'sam_vit_h_4b8939.pth',
    'vit_l': 'sam_vit_l_0b3195.pth',
    'vit_b': 'sam_vit_b_01ec64.pth',
}
SAM_URL = 'https://dl.fbaipublicfiles.com/segment_anything/'
# SamAutomaticMaskGenerator defaults (chosen for ViT-H) with the paper's 24 points per side.
SAM_DEFAULTS = {'points_per_side': 24, 'points_per_batch': 64, 'pred_iou_thresh': 0.88,
                'stability_score_thresh': 0.95, 'stability_score_offset': 1.0,
                'box_nms_thresh': 0.7, 'crop_n_layers': 0, 'crop_nms_thresh': 0.7,
                'crop_overlap_ratio': 512 / 1500, 'crop_n_points_downscale_factor': 1,
                'min_mask_region_area': 0}
FALLBACK_DEFAULTS = dict(fallback.DEFAULTS)


class SegmenterError(RuntimeError):
    """A segmenter cannot be built (missing checkpoint, bad setting); the message says why."""


def default_checkpoint(model_type='vit_h'):
    """Return the default checkpoint: ``$SAM_CHECKPOINT`` or ``~/.cache/sam2real/<file>``."""
    if os.environ.get('SAM_CHECKPOINT'):
        return os.environ['SAM_CHECKPOINT']
    name = SAM_CHECKPOINTS.get(model_type, f'sam_{model_type}.pth')
    return os.path.join(os.path.expanduser('~'), '.cache', 'sam2real', name)


def missing_checkpoint_message(path, model_type='vit_h',
                               how='give it (sam2real segment --checkpoint, sam_worker parameter '
                               'checkpoint)'):
    """
    Return one line naming the missing file and where to download it.

    ``how`` says how the caller names a checkpoint (the CLI's flag, the node's parameter).
    """
    name = SAM_CHECKPOINTS.get(model_type, 'sam_vit_h_4b8939.pth')
    return (f'SAM checkpoint not found: {path} (download {name} from {SAM_URL}{name} and '
            f'{how}, or set SAM_CHECKPOINT)')


DEVICE_PATTERN = r'auto|cpu|cuda(:\d+)?'
"""The devices the SAM worker (node and ``sam2real segment``) accepts."""


def device_problem(device):
    """Return why ``device`` is not a device of :data:`DEVICE_PATTERN` (one line), or None."""
    if device is None or re.fullmatch(DEVICE_PATTERN, str(device)):
        return None
    return f'device {device!r} must be auto, cpu, cuda or cuda:N'


def resolve_device(device):
    """Map 'auto' to 'cuda' when available else 'cpu'; keep other values."""
    if device in (None, '', 'auto'):
        import torch
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return device


def load_sam(model_type='vit_h', checkpoint=None, device='cpu'):
    """
    Build a SAM model and load its checkpoint.

    Raises
    ------
      SegmenterError: unknown model type, missing or unreadable checkpoint.

    """
    import torch
    from segment_anything import sam_model_registry
    if model_type not in sam_model_registry:
        raise SegmenterError(f'unknown SAM model_type {model_type!r} '
                             f'(one of {sorted(sam_model_registry)})')
    path = checkpoint or default_checkpoint(model_type)
    if not os.path.isfile(path):
        raise SegmenterError(missing_checkpoint_message(path, model_type))
    sam = sam_model_registry[model_type](checkpoint=None)
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
        sam.load_state_dict(state)
    except Exception as e:
        raise SegmenterError(f'cannot load SAM checkpoint {path} as {model_type}: '
                             f'{type(e).__name__}: {str(e)[:200]}') from None
    return sam.eval().to(device)


class SamSegmenter:
    """
    SAM automatic mask generation (all masks kept, as the generator returns them).

    Arguments:
    ---------
      model (Sam): a loaded SAM model (its device is used).
      model_type (str): recorded in the store (``sam:<model_type>``).
      fast (bool): use the faster generator (same output) instead of the library's.
      upsample_chunk (int): masks upsampled at once (fast path).
      encoder_dtype (str): 'float32' (exact), 'bfloat16' or 'float16'.
      backend (str): fast path: 'auto' (onnx on a CPU with ``encoder_dtype`` float32, else
        torch), 'torch' or 'onnx' (onnxruntime; graphs exported once per set of weights into
        ``cache_dir``).
      quantize (str): None or 'int8' (int8 encoder, onnx backend; changes the masks).
      cache_dir (str): ONNX graph cache (default ``~/.cache/sam2real/onnx``).
      log (callable): where the one-time ONNX export notice goes.
      **settings: ``SamAutomaticMaskGenerator`` settings overriding :data:`SAM_DEFAULTS`.

    """

    def __init__(self, model, model_type='vit_h', fast=True, upsample_chunk=32,
                 encoder_dtype='float32', backend='torch', quantize=None, cache_dir=None,
                 log=print, **settings):
        from segment_anything import SamAutomaticMaskGenerator

        from sam2real_ros.sam.sam_fast import FastAutomaticMaskGenerator
        unknown = set(settings) - set(SAM_DEFAULTS)
        if unknown:
            raise SegmenterError(f'unknown SAM generator settings: {sorted(unknown)}')
        if backend == 'auto':
            on_cpu = next(model.parameters()).device.type == 'cpu'
            backend = 'onnx' if on_cpu and encoder_dtype == 'float32' else 'torch'
        self.settings = dict(SAM_DEFAULTS, **settings)
        self.name = f'sam:{model_type}'
        self.fast = bool(fast)
        if self.fast:
            try:
                self.generator = FastAutomaticMaskGenerator(
                    model, upsample_chunk=upsample_chunk, encoder_dtype=encoder_dtype,
                    backend=backend, quantize=quantize, cache_dir=cache_dir, log=log,
                    **self.settings)
            except ValueError as e:
                raise SegmenterError(f'SAM fast path: {e}') from None
        else:
            self.generator = SamAutomaticMaskGenerator(model, **self.settings)
        self.settings.update(model_type=model_type, encoder_dtype=encoder_dtype)
        if self.fast and quantize:
            self.settings.update(quantize=quantize)

    def __call__(self, rgb):
        """Segment HxWx3 uint8 RGB; returns :class:`Segments`."""
        if self.fast:
            d = self.generator.generate_arrays(rgb)
            masks = d['masks']
            scores = np.stack([d['iou_preds'], d['stability_score']], 1).astype(np.float32)
            b = d['boxes'].reshape(-1, 4).astype(np.int32)
            bboxes = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)
            return Segments(masks, scores.reshape(-1, 2), bboxes.reshape(-1, 4),
                            dict(self.generator.timings))
        recs = self.generator.generate(rgb)
        masks = np.stack([r['segmentation'] for r in recs]) if recs else np.zeros(
            (0,) + rgb.shape[:2], bool)
        scores = np.array([[r['predicted_iou'], r['stability_score']] for r in recs],
                          np.float32).reshape(-1, 2)
        bboxes = np.array([r['bbox'] for r in recs], np.int32).reshape(-1, 4)
        return Segments(masks, scores, bboxes, {})


def make_segmenter(kind='auto', model_type='vit_h', checkpoint=None, device='auto',
                   sam_settings=None, fallback_settings=None, fast=True, upsample_chunk=32,
                   encoder_dtype='float32', backend='auto', quantize=None, cache_dir=None,
                   log=print):
    """
    Build the configured segmenter.

    Arguments:
    ---------
      kind (str): 'sam' (refuses to run without the checkpoint), 'fallback' (depth + colour),
        or 'auto' (SAM when the checkpoint exists, else says so in one line and falls back).
      sam_settings (dict): generator settings (see :data:`SAM_DEFAULTS`).
      fallback_settings (dict): :class:`FallbackSegmenter` settings (``fallback.DEFAULTS``).
      backend, quantize, cache_dir: the SAM fast path's (see :class:`SamSegmenter`).
      log (callable): where the one-line fallback and ONNX export notices go.

    Raises
    ------
      SegmenterError: bad kind or settings; missing checkpoint with kind 'sam'.

    """
    if kind not in ('sam', 'fallback', 'auto'):
        raise SegmenterError(f'segmenter must be sam, fallback or auto, got {kind!r}')
    if device_problem(device):
        raise SegmenterError(device_problem(device))
    if kind in ('sam', 'auto'):
        path = checkpoint or default_checkpoint(model_type)
        if os.path.isfile(path) or kind == 'sam':
            model = load_sam(model_type, path, resolve_device(device))
            return SamSegmenter(model, model_type, fast=fast, upsample_chunk=upsample_chunk,
                                encoder_dtype=encoder_dtype, backend=backend, quantize=quantize,
                                cache_dir=cache_dir, log=log, **(sam_settings or {}))
        log(missing_checkpoint_message(path, model_type) + '; using the fallback segmenter '
            '(depth + colour)')
    try:
        return FallbackSegmenter(**(fallback_settings or {}))
    except (TypeError, ValueError) as e:
        raise SegmenterError(f'bad fallback settings {fallback_settings}: {e}') from None
