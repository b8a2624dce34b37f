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
Per-frame segment masks on disk: one compact, atomically written ``.npz`` per frame.

Shared by the SAM worker (writer) and the trainer (reader). A frame is addressed by its ``key``,
the image path relative to the dataset root with ``/`` separators; by convention the store lives
in ``<dataset_root>/masks`` and the file of a key is ``<store_root>/<key>.npz``. A frame that
could not be segmented has a small ``<store_root>/<key>.failed.json`` instead. A process that
writes holds a writer lock, ``<store_root>/.writers/<host>-<pid>.lock``, so that the temporary
files of a killed writer can be told from those of a live one. The format is described in
docs/mask_store.md.
"""
import fcntl
import json
import os
import socket
import time

import numpy as np

from sam2real_ros.common import io_utils
from sam2real_ros.common.errors import Sam2realError

FORMAT_VERSION = 1
SUFFIX = '.npz'
FAILED_SUFFIX = '.failed.json'
WRITERS_DIR = '.writers'
_HELD = {}  # lock file path -> [open file, number of MaskStore objects of this process using it]


class MaskStoreError(Sam2realError, RuntimeError):
    """A mask file is missing, corrupt, or a write got inconsistent arrays."""


def _check_key(key):
    if not isinstance(key, str) or not key or key.startswith('/') or '\\' in key:
        raise MaskStoreError(f'invalid mask store key {key!r}: need a relative path with "/"')
    if any(part in ('', '.', '..') for part in key.split('/')):
        raise MaskStoreError(f'invalid mask store key {key!r}: empty, "." or ".." component')
    return key


def masks_to_bboxes(masks):
    """
    Return tight boxes of boolean masks in SAM's XYWH convention.

    Arguments:
    ---------
      masks (np.ndarray): NxHxW bool.

    Returns
    -------
      (np.ndarray): Nx4 int32 ``[x0, y0, x1 - x0, y1 - y0]`` with inclusive ``x1, y1`` (as
        ``SamAutomaticMaskGenerator`` reports them); all zeros for an empty mask.

    """
    masks = np.asarray(masks, dtype=bool)
    out = np.zeros((len(masks), 4), np.int32)
    if masks.size == 0:
        return out
    rows, cols = masks.any(2), masks.any(1)
    nonempty = rows.any(1)
    h, w = masks.shape[1:]
    y0 = rows.argmax(1)
    y1 = h - 1 - rows[:, ::-1].argmax(1)
    x0 = cols.argmax(1)
    x1 = w - 1 - cols[:, ::-1].argmax(1)
    out[:] = np.stack([x0, y0, x1 - x0, y1 - y0], 1)
    out[~nonempty] = 0
    return out


class MaskRecord:
    """
    The masks of one frame as read from the store (masks stay bit-packed until asked for).

    Attributes
    ----------
      key (str): the frame's key.
      image_size (tuple(int, int)): (H, W) of the image and of every mask.
      scores (np.ndarray): Nx2 float32, columns (predicted_iou, stability_score).
      areas (np.ndarray): N int64 pixel counts.
      bboxes (np.ndarray): Nx4 int32 XYWH (SAM convention, see :func:`masks_to_bboxes`).
      segmenter (str): name of the segmenter that produced the masks, e.g. ``sam:vit_h``.
      settings (dict): the segmenter's settings. extra (dict): anything else the writer stored.

    """

    def __init__(self, key, packed, image_size, scores, areas, bboxes, meta):
        self.key = key
        self._packed = packed
        self.image_size = tuple(int(v) for v in image_size)
        self.scores = scores
        self.areas = areas
        self.bboxes = bboxes
        self.meta = meta
        self.segmenter = meta.get('segmenter', '')
        self.settings = meta.get('settings', {})
        self.extra = meta.get('extra', {})

    def __len__(self):
        return len(self.areas)

    @property
    def predicted_iou(self):
        """Return the N float32 predicted IoU scores (column 0 of :attr:`scores`)."""
        return self.scores[:, 0]

    @property
    def stability_score(self):
        """Return the N float32 stability scores (column 1 of :attr:`scores`)."""
        return self.scores[:, 1]

    def masks(self, indices=None):
        """
        Unpack masks.

        Arguments:
        ---------
          indices (sequence(int) or None): which masks; all when None.

        Returns
        -------
          (np.ndarray): NxHxW bool (N = len(indices) when given).

        """
        packed = self._packed if indices is None else self._packed[np.asarray(indices, int)]
        h, w = self.image_size
        flat = np.unpackbits(packed, axis=1, count=h * w).astype(bool)
        return flat.reshape(len(packed), h, w)

    def mask(self, i):
        """Return mask ``i`` as HxW bool."""
        return self.masks([i])[0]


class MaskStore:
    """
    Directory of per-frame mask files.

    Arguments:
    ---------
      store_root (str or PathLike): folder of the store, usually ``<dataset_root>/masks``.

    """

    def __init__(self, store_root):
        self.root = os.path.abspath(os.fspath(store_root))
        self._lock = None

    def path(self, key):
        """Return the file that holds the masks of ``key``."""
        return os.path.join(self.root, *_check_key(key).split('/')) + SUFFIX

    def failed_path(self, key):
        """Return the marker file of a frame that failed."""
        return os.path.join(self.root, *_check_key(key).split('/')) + FAILED_SUFFIX

    def status(self, key):
        """Return ``'done'``, ``'failed'`` or None (not processed yet)."""
        if os.path.isfile(self.path(key)):
            return 'done'
        if os.path.isfile(self.failed_path(key)):
            return 'failed'
        return None

    def write(self, key, masks, scores, bboxes=None, segmenter='', extra=None, settings=None):
        """
        Store the masks of one frame atomically (replaces an earlier result or failure).

        Arguments:
        ---------
          key (str): image path relative to the dataset root, ``/`` separators.
          masks (np.ndarray): NxHxW bool (N may be 0).
          scores (np.ndarray or dict): Nx2 (predicted_iou, stability_score), or a dict with
            those two keys holding N values each.
          bboxes (np.ndarray or None): Nx4 XYWH; computed from the masks when None.
          segmenter (str): name of the segmenter, e.g. ``sam:vit_h`` or ``fallback``.
          extra (dict or None): JSON-serializable data stored alongside (e.g. timings).
          settings (dict or None): the segmenter's settings (JSON-serializable).

        Returns
        -------
          (str): the written file's path.

        """
        masks = np.asarray(masks)
        if masks.ndim != 3:
            raise MaskStoreError(f'{key}: masks must be NxHxW, got shape {masks.shape}')
        if masks.dtype != bool:
            raise MaskStoreError(f'{key}: masks must be bool, got {masks.dtype}')
        n, h, w = masks.shape
        if isinstance(scores, dict):
            scores = np.stack([np.asarray(scores['predicted_iou'], np.float32).reshape(-1),
                               np.asarray(scores['stability_score'], np.float32).reshape(-1)], 1)
        scores = np.asarray(scores, np.float32)
        scores = scores.reshape(-1, 2) if n else np.zeros((0, 2), np.float32)
        if len(scores) != n:
            raise MaskStoreError(f'{key}: {len(scores)} score rows for {n} masks')
        bboxes = masks_to_bboxes(masks) if bboxes is None else np.asarray(bboxes)
        bboxes = bboxes.reshape(-1, 4).astype(np.int32) if n else np.zeros((0, 4), np.int32)
        if len(bboxes) != n:
            raise MaskStoreError(f'{key}: {len(bboxes)} boxes for {n} masks')
        meta = {'format': FORMAT_VERSION, 'key': key, 'segmenter': str(segmenter),
                'settings': settings or {}, 'extra': extra or {}, 'created': time.time()}
        packed = np.packbits(masks.reshape(n, h * w), axis=1)
        path = self.path(key)
        io_utils.atomic_write_npz(
            path, masks_packed=packed, image_size=np.array([h, w], np.int64),
            scores=scores, areas=masks.reshape(n, h * w).sum(1, dtype=np.int64), bboxes=bboxes,
            meta=np.array(json.dumps(meta, sort_keys=True)))
        try:
            os.unlink(self.failed_path(key))
        except FileNotFoundError:
            pass
        return path

    def read(self, key):
        """Load the masks of ``key`` as a :class:`MaskRecord`; raises :class:`MaskStoreError`."""
        path = self.path(key)
        if not os.path.isfile(path):
            raise MaskStoreError(f'no masks for {key!r} (expected {path})')
        try:
            with np.load(path, allow_pickle=False) as z:
                packed = z['masks_packed']
                image_size = z['image_size']
                scores, areas, bboxes = z['scores'], z['areas'], z['bboxes']
                meta = json.loads(str(z['meta']))
        except Exception as e:  # zipfile, KeyError, ValueError, json errors
            raise MaskStoreError(f'corrupt mask file {path}: {type(e).__name__}: {e}') from None
        n = len(areas)
        h, w = (int(v) for v in image_size)
        if packed.shape != (n, (h * w + 7) // 8) or scores.shape != (n, 2) or len(bboxes) != n:
            raise MaskStoreError(f'corrupt mask file {path}: inconsistent array shapes')
        return MaskRecord(key, packed, (h, w), scores, areas, bboxes, meta)

    def mark_failed(self, key, reason):
        """Record that ``key`` could not be segmented (a small JSON file with the reason)."""
        io_utils.atomic_write_json(self.failed_path(key),
                                   {'key': key, 'reason': str(reason), 'time': time.time()})

    def failure_reason(self, key):
        """Return the reason stored by :meth:`mark_failed`, or None."""
        try:
            with open(self.failed_path(key)) as f:
                return json.load(f).get('reason')
        except (OSError, ValueError):
            return None

    def _walk(self, suffix):
        out = []
        for dirpath, dirnames, files in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d != WRITERS_DIR)
            for name in sorted(files):
                if name.endswith(suffix) and not io_utils.is_temp_file(name):
                    rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                    rel = rel.replace(os.sep, '/')[:-len(suffix)]
                    if suffix == SUFFIX and rel.endswith('.failed'):
                        continue
                    out.append(rel)
        return out

    def keys(self):
        """Return the sorted keys of all frames with masks."""
        return self._walk(SUFFIX)

    def failed_keys(self):
        """Return the sorted keys of all frames marked failed."""
        return self._walk(FAILED_SUFFIX)

    # ------------------------------------------------------------------ writers
    def acquire_writer_lock(self):
        """
        Take this process's writer lock (``.writers/<host>-<pid>.lock``, an ``fcntl`` lock).

        Held until :meth:`release_writer_lock` or the process ends (a kill releases it too), so
        :meth:`live_writer_pids` tells live writers from killed ones. Idempotent; stores of one
        process on the same folder share the lock.
        """
        if self._lock is not None:
            return
        folder = os.path.join(self.root, WRITERS_DIR)
        path = os.path.join(folder, f'{socket.gethostname()}-{os.getpid()}.lock')
        if path not in _HELD:
            os.makedirs(folder, exist_ok=True)
            f = open(path, 'w')
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                raise
            _HELD[path] = [f, 0]
        _HELD[path][1] += 1
        self._lock = path

    def release_writer_lock(self):
        """Release the writer lock of :meth:`acquire_writer_lock` (the last user removes it)."""
        if self._lock is None:
            return
        held = _HELD[self._lock]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self._lock]
            try:
                os.unlink(self._lock)
            except OSError:
                pass
            held[0].close()
        self._lock = None

    def live_writer_pids(self):
        """
        Return the pids of the processes that hold a writer lock of this store (this one too).

        Lock files of dead writers are removed on the way. Pids are not tied to a host: a dead
        writer whose pid a live writer on another host shares keeps its temp files one more run.
        """
        folder = os.path.join(self.root, WRITERS_DIR)
        live = set()
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            pid = name[:-len('.lock')].rsplit('-', 1)[-1] if name.endswith('.lock') else ''
            if not pid.isdigit():
                continue
            path = os.path.join(folder, name)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live.add(int(pid))
            else:  # nobody holds it: a dead writer's lock
                try:
                    os.unlink(path)
                except OSError:
                    pass
            finally:
                os.close(fd)
        return live

    def remove_stale_temp_files(self):
        """
        Delete the temp files of writers that are not alive; returns how many were removed.

        A temp file ``.<name>.tmp-<pid>-<n>`` belongs to a live writer only when a writer lock
        of its pid is held (:meth:`live_writer_pids`); every other temp file is stale, whatever
        its age (a worker killed a second ago leaves nothing behind once the next one starts).
        Clean-up itself is :func:`sam2real_ros.common.io_utils.remove_stale_temp_files`.
        """
        return io_utils.remove_stale_temp_files(self.root, self.live_writer_pids())
