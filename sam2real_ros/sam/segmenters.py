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
(``sam``, ``fallback`` or ``auto``); SAM's settings travel as one
:class:`~sam2real_ros.sam.options.SamOptions`.
"""
import os
import re

import numpy as np

from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.sam.fallback import FallbackSegmenter  # noqa: F401 (public name)
from sam2real_ros.sam.options import SAM_DEFAULTS, SamOptions  # noqa: F401 (public names)
from sam2real_ros.sam.segments import Segments

SAM_CHECKPOINTS = {
    'vit_h': 'sam_vit_h_4b8939.pth',
    'vit_l': 'sam_vit_l_0b3195.pth',
    'vit_b': 'sam_vit_b_01ec64.pth',
}
SAM_URL = 'https://dl.fbaipublicfiles.com/segment_anything/'


class SegmenterError(Sam2realError, RuntimeError):
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
      options (SamOptions): generator settings, fast or library generator, backend, dtypes;
        ``options.model_type`` is recorded in the store (``sam:<model_type>``).
      log (callable): where the one-time ONNX export notice goes.

    Raises
    ------
      SegmenterError: options that contradict each other or the model's device.

    """

    def __init__(self, model, options=None, log=print):
        from segment_anything import SamAutomaticMaskGenerator

        from sam2real_ros.sam.sam_fast import FastAutomaticMaskGenerator
        options = options or SamOptions()
        self.options = options
        self.name = f'sam:{options.model_type}'
        self.settings = options.generator_settings()
        self.fast = bool(options.fast)
        if self.fast:
            try:
                self.generator = FastAutomaticMaskGenerator(model, options, log=log)
            except ValueError as e:
                raise SegmenterError(f'SAM fast path: {e}') from None
            self.settings.update(backend=self.generator.backend.name)
        else:
            self.generator = SamAutomaticMaskGenerator(model, **self.settings)
        self.settings.update(model_type=options.model_type,
                             encoder_dtype=options.encoder_dtype)
        if self.fast and options.quantize:
            self.settings.update(quantize=options.quantize)

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


def make_segmenter(kind='auto', sam=None, fallback_settings=None, log=print):
    """
    Build the configured segmenter.

    Arguments:
    ---------
      kind (str): 'sam' (refuses to run without the checkpoint), 'fallback' (depth + colour),
        or 'auto' (SAM when the checkpoint exists, else says so in one line and falls back).
      sam (SamOptions or dict or None): SAM's options (a dict holds :class:`SamOptions`
        fields, e.g. from a YAML segmenter spec); default ``SamOptions()``.
      fallback_settings (dict): :class:`FallbackSegmenter` settings (``fallback.DEFAULTS``).
      log (callable): where the one-line fallback and ONNX export notices go.

    Raises
    ------
      SegmenterError: bad kind or settings; missing checkpoint with kind 'sam'.

    """
    if kind not in ('sam', 'fallback', 'auto'):
        raise SegmenterError(f'segmenter must be sam, fallback or auto, got {kind!r}')
    try:
        opt = sam if isinstance(sam, SamOptions) else SamOptions(**(sam or {}))
    except (TypeError, ValueError) as e:
        raise SegmenterError(f'bad SAM options {sam}: {e}') from None
    if device_problem(opt.device):
        raise SegmenterError(device_problem(opt.device))
    if kind in ('sam', 'auto'):
        path = opt.checkpoint or default_checkpoint(opt.model_type)
        if os.path.isfile(path) or kind == 'sam':
            model = load_sam(opt.model_type, path, resolve_device(opt.device))
            return SamSegmenter(model, opt, log=log)
        log(missing_checkpoint_message(path, opt.model_type) + '; using the fallback segmenter '
            '(depth + colour)')
    try:
        return FallbackSegmenter(**(fallback_settings or {}))
    except (TypeError, ValueError) as e:
        raise SegmenterError(f'bad fallback settings {fallback_settings}: {e}') from None
