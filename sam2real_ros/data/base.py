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
The base of every dataset: BaseDataset, DatasetError, augmentation, config and mask checks.

Concrete datasets (``procedural.py``, ``bop.py``, ``real.py``) build on this module and the
registry ``datasets.py`` builds them from configs; this module imports none of them.
"""
import collections

import cv2
import numpy as np

from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.common.io_utils import ImageReadError, read_depth
from sam2real_ros.sam import segmenters
from sam2real_ros.sam.mask_layers import as_mask_layers, MaskLayers
from sam2real_ros.sam.mask_store import MaskStoreError

ON_ERROR = ('raise', 'skip')


class DatasetError(Sam2realError, ValueError):
    """A dataset config or a dataset file is wrong; the message names the file or field."""


class BaseDataset:
    """
    Common behaviour: error policy, skip counting, epochs and augmentation.

    Arguments:
    ---------
      on_error (str): ``raise`` (default) or ``skip`` broken frames (counted in ``skipped``).
      augment (dict | bool | None): :class:`Augment` settings (training only).
      seed (int): seed of the augmentation (and of procedural scenes).

    """

    class_names = ()

    def __init__(self, on_error='raise', augment=None, seed=0):
        if on_error not in ON_ERROR:
            raise DatasetError(f'on_error must be one of {ON_ERROR}, got {on_error!r}')
        self.on_error = on_error
        self.augment = Augment.from_config(augment)
        self.seed = int(seed)
        self.epoch = 0
        self.skipped = collections.Counter()
        self.skip_log = []  # (key, message), first 100

    def set_epoch(self, epoch):
        """Select the epoch (changes augmentation draws and procedural scenes)."""
        self.epoch = int(epoch)

    def __len__(self):
        raise NotImplementedError

    def _load(self, index):
        """Load sample ``index`` (no augmentation); raise on broken input."""
        raise NotImplementedError

    def _key(self, index):
        return str(index)

    def skip(self, reason, key, message):
        """Count one skipped frame under ``reason``."""
        self.skipped[reason] += 1
        if len(self.skip_log) < 100:
            self.skip_log.append((key, message))

    def __getitem__(self, index):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f'index {index} out of range for {n} frames')
        index %= n
        for attempt in range(min(n, 1000)):
            i = (index + attempt) % n
            try:
                sample = self._load(i)
            except (DatasetError, ImageReadError, OSError, MaskStoreError) as e:
                if self.on_error == 'raise':
                    if isinstance(e, DatasetError):
                        raise
                    raise DatasetError(str(e)) from None
                self.skip(type(e).__name__, self._key(i), str(e))
                continue
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, self.epoch, index, 7])
                sample = self.augment(sample, rng)
            return sample
        raise DatasetError(f'{type(self).__name__}: {min(n, 1000)} frames in a row were broken '
                           f'and skipped; first problems: {self.skip_log[:3]}')


class Augment:
    """
    Random resized crop, horizontal flip and colour jitter for training samples.

    Geometric changes apply to ``rgb``, ``labels`` and every mask alike; colour jitter to
    ``rgb`` only. Masks emptied by the crop are dropped.

    Arguments:
    ---------
      size (tuple | None): output ``(height, width)``; None keeps the input size.
      scale (tuple): range of the crop area as a fraction of the image.
      ratio (tuple): range of the crop aspect ratio (width / height), relative to the image's.
      flip (float): probability of a horizontal flip.
      brightness, contrast, saturation (float): maximum relative change; hue (float): maximum
        hue shift as a fraction of the hue circle.

    """

    def __init__(self, size=None, scale=(0.5, 1.0), ratio=(0.75, 1.333), flip=0.5,
                 brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02):
        if not 0 < scale[0] <= scale[1] <= 1:
            raise DatasetError(f'augment.scale must be 0 < min <= max <= 1, got {scale}')
        if not 0 <= flip <= 1:
            raise DatasetError(f'augment.flip must be a probability, got {flip}')
        self.size = tuple(int(v) for v in size) if size else None
        self.scale, self.ratio, self.flip = tuple(scale), tuple(ratio), float(flip)
        self.jitter = (float(brightness), float(contrast), float(saturation), float(hue))

    @classmethod
    def from_config(cls, cfg):
        """``None``/``False`` -> None, ``True`` -> defaults, dict -> keyword arguments."""
        if cfg is None or cfg is False:
            return None
        if cfg is True:
            return cls()
        if not isinstance(cfg, dict):
            raise DatasetError(f'augment must be true/false or a dict, got {cfg!r}')
        try:
            return cls(**cfg)
        except TypeError as e:
            raise DatasetError(f'augment: {e}') from None

    def __call__(self, sample, rng):
        """Return an augmented copy of ``sample`` (dict with rgb and labels and/or masks)."""
        rgb = sample['rgb']
        h, w = rgb.shape[:2]
        oh, ow = self.size or (h, w)
        area = h * w * rng.uniform(*self.scale)
        ar = (w / h) * np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
        ch = int(min(h, round(np.sqrt(area / ar))))
        cw = int(min(w, round(np.sqrt(area * ar))))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        flip = rng.random() < self.flip
        # Nearest-neighbour sample positions for labels and masks.
        ys = np.minimum(y0 + ((np.arange(oh) + 0.5) * ch / oh).astype(np.int64), h - 1)
        xs = np.minimum(x0 + ((np.arange(ow) + 0.5) * cw / ow).astype(np.int64), w - 1)
        if flip:
            xs = xs[::-1]
        out = dict(sample)
        crop = cv2.resize(rgb[y0:y0 + ch, x0:x0 + cw], (ow, oh), interpolation=cv2.INTER_LINEAR)
        if flip:
            crop = crop[:, ::-1]
        out['rgb'] = self._colour(np.ascontiguousarray(crop), rng)
        for name in ('labels', 'instances'):
            if name in sample:
                out[name] = np.ascontiguousarray(sample[name][np.ix_(ys, xs)])
        if 'masks' in sample:
            out['masks'] = as_mask_layers(sample['masks']).take(ys, xs).drop_empty()[0]
        return out

    def _colour(self, rgb, rng):
        b, c, s, hue = self.jitter
        if not any(self.jitter):
            return rgb
        img = rgb.astype(np.float32) * rng.uniform(1 - b, 1 + b)
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - c, 1 + c) + mean
        hsv = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
        hsv = hsv.astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue) * 256) % 256
        hsv[..., 1] *= rng.uniform(1 - s, 1 + s)
        hsv = np.clip(hsv, 0, 255).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


COMMON_FIELDS = ('type', 'on_error', 'augment', 'seed')


def take_config(cfg, allowed, kind):
    """Check a config dict's keys; returns the keyword arguments (without ``type``)."""
    if not isinstance(cfg, dict):
        raise DatasetError(f'{kind} dataset config must be a dict, got {cfg!r}')
    if 'type' not in cfg:
        raise DatasetError(f'{kind} dataset config needs a "type" field: {cfg}')
    unknown = sorted(set(cfg) - set(allowed) - set(COMMON_FIELDS))
    if unknown:
        raise DatasetError(f'{kind} dataset type {cfg["type"]!r}: unknown field(s) {unknown}; '
                           f'allowed: {sorted(set(allowed) | set(COMMON_FIELDS) - {"type"})}')
    kw = {k: v for k, v in cfg.items() if k != 'type'}
    for key in ('size', 'objects'):
        if key in kw and kw[key] is not None:
            kw[key] = tuple(kw[key])
    return kw


def normalize_masks(result, shape):
    """
    Segmenter output -> :class:`MaskLayers` (the masks of a sample).

    Arguments:
    ---------
      result: :class:`MaskLayers`, an NxHxW array, a list of HxW arrays, SAM-style dicts with
        ``segmentation``, or an object with ``masks`` (array or method).
      shape (tuple): expected ``(H, W)``.

    Returns
    -------
      MaskLayers: the N masks (overlapping), never an NxHxW array.

    """
    if isinstance(result, MaskLayers):
        if result.shape != tuple(shape):
            raise DatasetError(f'segmenter returned masks of size {result.shape}, expected '
                               f'{tuple(shape)}')
        return result
    if hasattr(result, 'masks'):
        result = result.masks() if callable(result.masks) else result.masks
    if isinstance(result, (list, tuple)):
        result = [r['segmentation'] if isinstance(r, dict) else r for r in result]
        result = np.stack(result) if result else np.zeros((0,) + tuple(shape), bool)
    masks = np.asarray(result)
    if masks.ndim != 3 or masks.shape[1:] != tuple(shape):
        raise DatasetError(f'segmenter returned masks of shape {masks.shape}, expected '
                           f'Nx{shape[0]}x{shape[1]}')
    return MaskLayers.from_masks(masks)


def segment_frame(segmenter, rgb, depth=None, path=None):
    """
    Run a segmenter on one frame, with its registered depth when the segmenter takes depth.

    Arguments:
    ---------
      segmenter (callable): ``rgb -> masks``, or ``(rgb, depth=...) -> masks`` when it has a
        true ``accepts_depth`` attribute (the fallback segmenter).
      rgb (np.ndarray): HxWx3 uint8.
      depth (np.ndarray | None): HxW registered depth; when None and ``path`` is given, the
        image's depth file is read if it has one (``io_utils.read_depth``).
      path (str | None): the image file.

    Returns
    -------
      MaskLayers: the frame's masks (:func:`normalize_masks`).

    """
    if getattr(segmenter, 'accepts_depth', False):
        if depth is None and path is not None:
            depth = read_depth(path, rgb.shape)
        if depth is not None:
            return normalize_masks(segmenter(rgb, depth=depth), rgb.shape[:2])
    return normalize_masks(segmenter(rgb), rgb.shape[:2])


def resolve_segmenter(spec):
    """
    Return a callable ``rgb -> masks`` from a callable, ``fallback``, ``sam``/``auto`` or a dict.

    Names and dicts (``{kind: fallback, fallback_settings: {...}}``, ``{kind: sam, sam:
    {model_type: vit_b, ...}}``) go to ``segmenters.make_segmenter``; ``fallback`` is the
    depth + colour fallback segmenter.
    """
    if callable(spec):
        return spec
    if isinstance(spec, str):
        spec = {'kind': spec}
    if not isinstance(spec, dict) or spec.get('kind') not in ('fallback', 'sam', 'auto'):
        raise DatasetError(f'segmenter must be "fallback", "sam", "auto", a dict with such a '
                           f'"kind", or a callable; got {spec!r}')
    try:
        return segmenters.make_segmenter(**spec)
    except (TypeError, segmenters.SegmenterError) as e:
        raise DatasetError(f'segmenter {spec}: {e}') from None
