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
The dataset registry: labeled synthetic frames and unlabeled real frames with SAM segments.

Every dataset is built from a config dict by :func:`build_labeled` or :func:`build_unlabeled`
(see docs/datasets.md) and is a map-style dataset (``len(ds)``, ``ds[i]``) with
``class_names``, ``set_epoch(epoch)`` and a ``skipped`` counter. Samples are plain dicts:

* labeled: ``rgb`` HxWx3 uint8 RGB, ``labels`` HxW uint8 (0 = background), ``key`` str;
* unlabeled: ``rgb``, ``masks`` (:class:`sam2real_ros.sam.mask_layers.MaskLayers`, the N
  overlapping segments), ``key``; plus ``labels`` only where ground truth exists and the
  config asks for it (evaluation only).

Broken inputs raise :class:`DatasetError` naming the file, or -- with ``on_error: skip`` -- the
frame is skipped, counted in ``ds.skipped`` and the next frame is returned instead.

This module only builds: the datasets live in ``procedural.py``, ``bop.py``, ``ycb_render.py``,
``labeled_folder.py`` and ``real.py``, on top of ``base.py`` (which imports none of them).
"""
from sam2real_ros.data import real
from sam2real_ros.data.base import DatasetError, take_config
from sam2real_ros.data.bop import BOP_FIELDS, BopDataset, STILLLEBEN_FIELDS, StillLebenDataset
from sam2real_ros.data.labeled_folder import FIELDS as FOLDER_FIELDS, LabeledFolder
from sam2real_ros.data.procedural import ProceduralDataset
from sam2real_ros.data.ycb_render import YCB_FIELDS, YcbScenesDataset

_PROC = ('appearance', 'length', 'size', 'objects')


def build_labeled(cfg):
    """
    Build a labeled dataset (training on synthetic frames, or evaluation) from a config.

    Arguments:
    ---------
      cfg (dict): ``{type: procedural|bop|labeled_folder|stillleben|ycb_scenes, ...}``
        (fields in docs/datasets.md).

    Returns
    -------
      BaseDataset: samples ``dict(rgb, labels, key)``.

    """
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    if kind == 'procedural':
        try:
            return ProceduralDataset(**take_config(cfg, _PROC, 'labeled'))
        except ValueError as e:
            raise DatasetError(f'procedural: {e}') from None
    if kind == 'bop':
        return BopDataset(**take_config(cfg, BOP_FIELDS, 'labeled'))
    if kind == 'labeled_folder':
        return LabeledFolder(**take_config(cfg, FOLDER_FIELDS, 'labeled'))
    if kind == 'stillleben':
        return StillLebenDataset(**take_config(cfg, STILLLEBEN_FIELDS, 'labeled'))
    if kind == 'ycb_scenes':
        return YcbScenesDataset(**take_config(cfg, YCB_FIELDS, 'labeled'))
    raise DatasetError(f'unknown labeled dataset type {kind!r}; '
                       'known: procedural, bop, labeled_folder, stillleben, ycb_scenes')


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
        kw = take_config(cfg, _PROC + ('segments', 'with_labels', 'oracle'), 'unlabeled')
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
        return real.build(kind, cfg, segmenter)
    raise DatasetError(f'unknown unlabeled dataset type {kind!r}; '
                       'known: episodes, image_folder, rosbag, procedural')
