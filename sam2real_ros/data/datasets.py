"""
The one dataset layer: labeled synthetic frames and unlabeled real frames with SAM segments.

Every dataset is built from a config dict by :func:`build_labeled` or :func:`build_unlabeled`
(see docs/datasets.md) and is a map-style dataset (``len(ds)``, ``ds[i]``) with
``class_names``, ``set_epoch(epoch)`` and a ``skipped`` counter. Samples are plain dicts:

* labeled: ``rgb`` HxWx3 uint8 RGB, ``labels`` HxW uint8 (0 = background), ``key`` str;
* unlabeled: ``rgb``, ``masks`` NxHxW bool (overlapping segments), ``key``; plus ``labels``
  only where ground truth exists and the config asks for it (evaluation only).

Broken inputs raise :class:`DatasetError` naming the file, or -- with ``on_error: skip`` -- the
frame is skipped, counted in ``ds.skipped`` and the next frame is returned instead.
"""
import collections

import cv2
import numpy as np

from sam2real_ros.common.io_utils import ImageReadError
from sam2real_ros.data import procedural

ON_ERROR = ('raise', 'skip')


class DatasetError(ValueError):
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
            except (DatasetError, ImageReadError, OSError, _mask_store_error()) as e:
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


def _mask_store_error():
    try:
        from sam2real_ros.sam.mask_store import MaskStoreError
        return MaskStoreError
    except ImportError:  # pragma: no cover - the mask store is part of the package
        return DatasetError


class ProceduralDataset(BaseDataset):
    """
    Procedural tabletop frames rendered on the fly (see :mod:`sam2real_ros.data.procedural`).

    Frame ``i`` of epoch ``e`` is rendered from the seed ``[seed, stream, e, i]``, so every epoch
    brings new scenes ("generated on the fly, a frame never repeats") while a fixed ``seed`` and
    epoch give a fixed evaluation set.

    Arguments:
    ---------
      appearance (str | dict): preset name or dict (see ``procedural.get_appearance``).
      length (int): frames per epoch. size (tuple): ``(height, width)``.
      segments (str | callable | None): unlabeled use only: ``oracle`` (segments derived from
        the ground-truth instances with random over/under-segmentation), ``fallback`` (the
        fallback over-segmenter of ``segmenters.py``) or a callable ``rgb -> NxHxW bool``.
        None gives labeled samples.
      with_labels (bool): also return ``labels`` in unlabeled samples (evaluation only).
      oracle (dict): options of :func:`oracle_segments`.

    """

    def __init__(self, appearance='synthetic', length=1500, size=(480, 640), objects=(4, 8),
                 segments=None, with_labels=False, oracle=None, **kw):
        super().__init__(**kw)
        self.renderer = procedural.TabletopRenderer(appearance, size, objects)
        self.appearance_name = appearance if isinstance(appearance, str) else 'custom'
        self.length = int(length)
        if self.length < 1:
            raise DatasetError(f'procedural: length must be >= 1, got {length}')
        self.class_names = list(procedural.CLASS_NAMES)
        self.unlabeled = segments is not None
        self.with_labels = bool(with_labels)
        self.oracle = dict(oracle or {})
        self.segmenter = None
        if segments == 'oracle':
            self.segments_name = 'oracle'
        elif self.unlabeled:
            from sam2real_ros.data.real import resolve_segmenter
            self.segmenter = resolve_segmenter(segments)
            self.segments_name = getattr(self.segmenter, 'name', str(segments))

    def __len__(self):
        return self.length

    def _key(self, index):
        return f'procedural/{self.appearance_name}/{self.seed}-{self.epoch}-{index}'

    def _load(self, index):
        stream = 2 if self.unlabeled else 1
        scene = self.renderer.render([self.seed, stream, self.epoch, index])
        out = {'rgb': scene['rgb'], 'key': self._key(index)}
        if not self.unlabeled:
            out['labels'] = scene['labels']
            return out
        if self.segmenter is None:
            rng = np.random.default_rng([self.seed, 3, self.epoch, index])
            out['masks'] = oracle_segments(scene['instances'], rng, **self.oracle)
        else:
            from sam2real_ros.data.real import normalize_masks
            out['masks'] = normalize_masks(self.segmenter(scene['rgb']), scene['rgb'].shape[:2])
        if self.with_labels:
            out['labels'] = scene['labels']
        return out


def oracle_segments(instances, rng, p_split=0.5, p_keep_whole=0.7, p_merge=0.2,
                    p_background=0.5, min_area=64):
    """
    Make "oracle SAM" segments for tests: overlapping whole/part masks from an instance map.

    Each visible instance gives its whole mask and, with ``p_split``, two parts cut by a random
    line through its centroid (the whole is then kept with ``p_keep_whole``): SAM-like
    over-segmentation. Touching instances are merged into one extra mask with ``p_merge``
    (under-segmentation), and the background is one segment with ``p_background``. This uses
    ground truth, so it is only ever selected explicitly (``segments: oracle``).

    Arguments:
    ---------
      instances (np.ndarray): HxW int instance ids (0 = none).
      rng (np.random.Generator): random source (the result is deterministic given it).

    Returns
    -------
      np.ndarray: NxHxW bool masks in random order (N may be 0).

    """
    h, w = instances.shape
    out = []
    ids = [int(i) for i in np.unique(instances) if i != 0]
    kernel = np.ones((5, 5), np.uint8)
    for i in ids:
        whole = instances == i
        area = int(whole.sum())
        if area < min_area:
            continue
        keep_whole = True
        if rng.random() < p_split:
            ys, xs = np.nonzero(whole)
            t = rng.uniform(0, np.pi)
            side = (xs - xs.mean()) * np.cos(t) + (ys - ys.mean()) * np.sin(t) > 0
            for part in (side, ~side):
                if part.sum() >= min_area:
                    m = np.zeros((h, w), bool)
                    m[ys[part], xs[part]] = True
                    out.append(m)
            keep_whole = rng.random() < p_keep_whole
        if keep_whole:
            out.append(whole)
        if rng.random() < p_merge:
            ring = cv2.dilate(whole.astype(np.uint8), kernel).astype(bool) & ~whole
            touching = [int(j) for j in np.unique(instances[ring]) if j not in (0, i)]
            if touching:
                out.append(whole | (instances == touching[int(rng.integers(len(touching)))]))
    if rng.random() < p_background and (instances == 0).sum() >= min_area:
        out.append(instances == 0)
    order = rng.permutation(len(out))
    return np.stack([out[k] for k in order]) if out else np.zeros((0, h, w), bool)


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
            masks = sample['masks'][:, ys][:, :, xs]
            out['masks'] = np.ascontiguousarray(masks[masks.reshape(len(masks), -1).any(1)])
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


_COMMON = ('type', 'on_error', 'augment', 'seed')


def _take(cfg, allowed, kind):
    """Check a config dict's keys; returns the keyword arguments (without ``type``)."""
    if not isinstance(cfg, dict):
        raise DatasetError(f'{kind} dataset config must be a dict, got {cfg!r}')
    if 'type' not in cfg:
        raise DatasetError(f'{kind} dataset config needs a "type" field: {cfg}')
    unknown = sorted(set(cfg) - set(allowed) - set(_COMMON))
    if unknown:
        raise DatasetError(f'{kind} dataset type {cfg["type"]!r}: unknown field(s) {unknown}; '
                           f'allowed: {sorted(set(allowed) | set(_COMMON) - {"type"})}')
    kw = {k: v for k, v in cfg.items() if k != 'type'}
    for key in ('size', 'objects'):
        if key in kw and kw[key] is not None:
            kw[key] = tuple(kw[key])
    return kw


_PROC = ('appearance', 'length', 'size', 'objects')


def build_labeled(cfg):
    """
    Build a labeled dataset (training on synthetic frames, or evaluation) from a config.

    Arguments:
    ---------
      cfg (dict): ``{type: procedural|bop|stillleben, ...}`` (fields in docs/datasets.md).

    Returns
    -------
      BaseDataset: samples ``dict(rgb, labels, key)``.

    """
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    if kind == 'procedural':
        try:
            return ProceduralDataset(**_take(cfg, _PROC, 'labeled'))
        except ValueError as e:
            raise DatasetError(f'procedural: {e}') from None
    if kind == 'bop':
        from sam2real_ros.data.bop import BopDataset, BOP_FIELDS
        return BopDataset(**_take(cfg, BOP_FIELDS, 'labeled'))
    if kind == 'stillleben':
        from sam2real_ros.data.bop import STILLLEBEN_FIELDS, StillLebenDataset
        return StillLebenDataset(**_take(cfg, STILLLEBEN_FIELDS, 'labeled'))
    raise DatasetError(f'unknown labeled dataset type {kind!r}; '
                       'known: procedural, bop, stillleben')


def build_unlabeled(cfg, segmenter=None):
    """
    Build an unlabeled real dataset (frames + SAM segments) from a config.

    Arguments:
    ---------
      cfg (dict): ``{type: episodes|image_folder|rosbag|procedural, ...}`` (docs/datasets.md).
      segmenter (callable | None): ``rgb -> NxHxW bool``; used for frames without stored
        masks when the config says ``missing_masks: segment`` (overrides ``segmenter``).

    Returns
    -------
      BaseDataset: samples ``dict(rgb, masks, key)`` (+ ``labels`` where asked and known).

    """
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    if kind == 'procedural':
        kw = _take(cfg, _PROC + ('segments', 'with_labels', 'oracle'), 'unlabeled')
        if kw.get('segments') is None and segmenter is None:
            raise DatasetError(
                'procedural unlabeled frames need "segments": "fallback" (the fallback '
                'over-segmenter) or "oracle" (derived from ground truth, for tests)')
        if segmenter is not None:
            kw['segments'] = segmenter
        kw.setdefault('appearance', 'real')
        kw.setdefault('seed', 1)
        try:
            return ProceduralDataset(**kw)
        except ValueError as e:
            raise DatasetError(f'procedural: {e}') from None
    if kind in ('episodes', 'image_folder', 'rosbag'):
        from sam2real_ros.data import real as datasets_real
        return datasets_real.build(kind, cfg, segmenter)
    raise DatasetError(f'unknown unlabeled dataset type {kind!r}; '
                       'known: episodes, image_folder, rosbag, procedural')
