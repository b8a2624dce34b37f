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
Unlabeled real frames with their SAM segments: recorder episodes, image folders, rosbags.

Frames are addressed by ``key`` = image path relative to the dataset root (``/`` separators);
their masks come from the mask store (``<root>/masks`` by default). Frames without masks are
skipped and counted (``ds.missing_masks``), or segmented on the fly when a segmenter is given
and ``missing_masks: segment`` is set. Rosbags are first extracted once into an image-folder
cache (:func:`extract_bag_frames`), which the SAM worker then segments like any image folder.
"""
import os

from sam2real_ros.common.io_utils import IMAGE_EXTS, list_images, read_rgb
from sam2real_ros.data.base import (BaseDataset, DatasetError, resolve_segmenter, segment_frame,
                                    take_config)
from sam2real_ros.data.rosbag import extract_bag_frames
from sam2real_ros.recording.episode_store import iter_frames
from sam2real_ros.sam.mask_layers import MaskLayers
from sam2real_ros.sam.mask_store import MaskStore

_FIELDS = ('root', 'masks', 'missing_masks', 'segmenter', 'complete_only', 'with_failed',
           'episodes')
_ROSBAG_FIELDS = ('path', 'image_topic', 'depth_topic', 'min_period_s', 'cache', 'masks',
                  'missing_masks', 'segmenter', 'progress')


class MaskedFrames(BaseDataset):
    """
    Frames (paths + keys) joined with their masks in a mask store.

    Arguments:
    ---------
      root (str): dataset root; keys are paths relative to it.
      keys (list): image keys (relative paths, ``/`` separators).
      masks (str | None): mask store root (default ``<root>/masks``).
      missing_masks (str): ``skip`` (default: frames without masks are skipped and counted) or
        ``segment`` (run ``segmenter`` on them, not stored).
      segmenter (callable | str | None): used with ``missing_masks: segment``.
      with_failed (bool): keep frames whose segmentation failed when segmenting on the fly.

    """

    def __init__(self, root, keys, masks=None, missing_masks='skip', segmenter=None,
                 with_failed=False, **kw):
        super().__init__(**kw)
        self.root = os.fspath(root)
        self.store = MaskStore(masks or os.path.join(self.root, 'masks'))
        if missing_masks not in ('skip', 'segment'):
            raise DatasetError(f'missing_masks must be skip or segment, got {missing_masks!r}')
        self.segmenter = None
        if missing_masks == 'segment':
            if segmenter is None:
                raise DatasetError('missing_masks "segment" needs a segmenter')
            self.segmenter = resolve_segmenter(segmenter)
        self.keys, self.missing_masks, self.failed_masks = [], 0, 0
        for key in keys:
            status = self.store.status(key)
            if status == 'done' or (self.segmenter is not None
                                    and (status is None or with_failed)):
                self.keys.append(key)
            elif status == 'failed':
                self.failed_masks += 1
            else:
                self.missing_masks += 1
        self.total_frames = len(keys)
        if not self.keys:
            raise DatasetError(
                f'none of the {len(keys)} frames under {self.root} has masks in '
                f'{self.store.root} ({self.missing_masks} missing, {self.failed_masks} failed); '
                f'run "sam2real segment" on {self.root} first')

    def left_out_note(self):
        """
        Say how many frames this dataset leaves out and why, or return None when none.

        Returns
        -------
          (str | None): one line naming the root, the frames whose segmentation failed (with
          where the reasons are and how to retry) and those not segmented yet.

        """
        if not (self.failed_masks or self.missing_masks):
            return None
        parts = []
        if self.failed_masks:
            parts.append(f'{self.failed_masks} whose segmentation failed (reasons in '
                         f'{self.store.root}/<frame>.failed.json; "sam2real segment '
                         f'--retry-failed {self.root}" tries again)')
        if self.missing_masks:
            parts.append(f'{self.missing_masks} not segmented yet ("sam2real segment '
                         f'{self.root}")')
        dropped = self.failed_masks + self.missing_masks
        return (f'{dropped} of {self.total_frames} real frames under {self.root} left out: '
                + ', '.join(parts))

    def __len__(self):
        return len(self.keys)

    def _key(self, index):
        return self.keys[index]

    def _load(self, index):
        key = self.keys[index]
        path = os.path.join(self.root, *key.split('/'))
        rgb = read_rgb(path)
        if self.store.status(key) == 'done':
            rec = self.store.read(key)
            if tuple(rec.image_size) != rgb.shape[:2]:
                raise DatasetError(f'{self.store.path(key)}: masks are {rec.image_size[1]}x'
                                   f'{rec.image_size[0]} but the image {key} is '
                                   f'{rgb.shape[1]}x{rgb.shape[0]}')
            masks = MaskLayers.from_record(rec)  # never all N masks unpacked at once
        else:
            masks = segment_frame(self.segmenter, rgb, path=path)
        return {'rgb': rgb, 'masks': masks, 'key': key}


def build(kind, cfg, segmenter=None):
    """Build an ``episodes``, ``image_folder`` or ``rosbag`` dataset from its config."""
    fields = _ROSBAG_FIELDS if kind == 'rosbag' else _FIELDS
    kw = take_config(cfg, fields, 'unlabeled')
    if segmenter is not None:
        kw['segmenter'] = segmenter
    if kind == 'rosbag':
        for need in ('path', 'image_topic'):
            if not kw.get(need):
                raise DatasetError(f'rosbag dataset needs "{need}"')
        cache = kw.pop('cache', None) or os.fspath(kw['path']).rstrip('/\\') + '.frames'
        extract_bag_frames(kw.pop('path'), kw.pop('image_topic'),
                           os.path.join(cache, 'frames'), kw.pop('min_period_s', 0.5),
                           progress=kw.pop('progress', True),
                           depth_topic=kw.pop('depth_topic', None))
        kw['root'] = cache
        kind = 'image_folder'
    root = kw.get('root')
    if not root:
        raise DatasetError(f'{kind} dataset needs "root"')
    if not os.path.isdir(root):
        raise DatasetError(f'{kind} dataset root is not a folder: {root}')
    if kind == 'episodes':
        complete_only = kw.pop('complete_only', True)
        only = kw.pop('episodes', None)
        if only is not None and not isinstance(only, (list, tuple)):
            raise DatasetError(f'episodes dataset: "episodes" must be a list of episode ids, '
                               f'got {only!r}')
        only = None if only is None else {str(e) for e in only}
        keys = [f.key for f in iter_frames(root, complete_only=complete_only)
                if only is None or f.episode_id in only]
        if not keys:
            raise DatasetError(f'no recorded episode frames under {root}/episodes '
                               f'(complete_only={complete_only}'
                               f'{"" if only is None else f", episodes {sorted(only)}"})')
    else:
        kw.pop('complete_only', None)
        if kw.pop('episodes', None) is not None:
            raise DatasetError(f'{kind} dataset: "episodes" applies to type episodes only')
        keys = list_images(root, exclude=[kw.get('masks') or os.path.join(root, 'masks')])
        if not keys:
            raise DatasetError(f'no images ({", ".join(IMAGE_EXTS)}) found under {root}')
    return MaskedFrames(keys=keys, **kw)
