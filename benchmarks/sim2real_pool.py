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
Fixed pool of procedural "real" training frames, segmented once into a mask store.

The sim2real benchmark trains every variant and seed on the same pool of unlabeled real frames,
like a robot's recorded dataset: the frames are rendered once with the ``real`` appearance and
written as PNGs (``<pool>/real/frames/NNNNNN.png``, with the renderer's registered depth in
``<pool>/real/frames/depth/NNNNNN.png`` as a robot's recorder keeps it), the shared SAM worker code
(:class:`sam2real_ros.sam.worker.SamWorker`, the same as ``sam2real segment``) segments them
into ``<pool>/real/masks`` (resumable: frames with masks are skipped), and the same frames with
their ground truth are written as a BOP folder (``<pool>/real_bop``) for the ``real_labels``
upper bound. For a diagnostic "ideal SAM", ``<pool>/oracle_masks`` holds segments derived from
the ground-truth instances (``procedural.oracle_segments``: whole objects, halves, merged
neighbours, the background) for the same frames; only experiments that name it use it.

A pool on disk is reused only while it is what today's code makes: every frame is rendered
again and compared with the files (image, depth, ground truth, oracle segments), and the stored
segments must come from the same segmenter with the same settings, with depth where the frame
has depth, and the first frame segmented again must give the same masks. Anything else raises
:class:`StalePoolError`: a pool left by older code would silently give other numbers (#13).
"""
import functools
import json
import os

import numpy as np

from sam2real_ros.common.io_utils import (atomic_write_bytes, atomic_write_png,
                                          read_image_unchanged)

POOL_FIELDS = ('appearance', 'seed', 'frames', 'size', 'objects')


class StalePoolError(ValueError):
    """A pool folder that today's code would not make (the message says what differs)."""


def _stale(root, what):
    return StalePoolError(f'the pool {root} was made by other code or settings: {what}; delete '
                          'that folder (or choose another --out) to make it again')


def keep_or_write(path, image, root):
    """Write ``image`` as PNG, or check that the file already there holds exactly it."""
    if not os.path.isfile(path):
        atomic_write_png(path, image)
        return
    old = read_image_unchanged(path)
    if old.shape != image.shape or old.dtype != image.dtype or not np.array_equal(old, image):
        raise _stale(root, f'{os.path.relpath(path, root)} differs from what the renderer '
                     'draws now')


def pool_paths(root):
    """Folders of a pool: ``dict(real=<image folder + masks/>, bop=<BOP root>, oracle=...)``."""
    return {'real': os.path.join(root, 'real'), 'bop': os.path.join(root, 'real_bop'),
            'oracle': os.path.join(root, 'oracle_masks')}


def render_pool(root, appearance='real', seed=11, frames=48, size=(96, 128), objects=(4, 8),
                progress=False):
    """
    Render the pool's frames (skipping those already on disk) and their BOP ground truth.

    Arguments:
      root (str): pool folder.
      appearance (str | dict): renderer appearance of the "robot camera" frames.
      seed (int): pool seed; frame i is rendered from ``[seed, 2, 0, i]`` (the unlabeled stream
        of ``ProceduralDataset``), so it never coincides with training or evaluation frames
        drawn from other seeds.
      frames (int): pool size. size (tuple): ``(height, width)``. objects (tuple): min/max.

    Returns
    -------
      dict: ``real``, ``bop`` and ``oracle`` folder paths, ``frames`` count.

    """
    from tqdm import tqdm

    from sam2real_ros.data.procedural import oracle_segments
    from sam2real_ros.data.procedural import CLASS_NAMES, TabletopRenderer
    from sam2real_ros.sam.mask_store import MaskStore
    paths = pool_paths(root)
    oracle = MaskStore(paths['oracle'])
    img_dir = os.path.join(paths['real'], 'frames')
    scene_dir = os.path.join(paths['bop'], 'train', '000000')
    gt_path = os.path.join(scene_dir, 'scene_gt.json')
    renderer = TabletopRenderer(appearance, tuple(size), tuple(objects))
    scene_gt = {}
    for i in tqdm(range(int(frames)), desc='render real pool', disable=not progress,
                  unit='frame'):
        name = f'{i:06d}.png'
        rgb_path = os.path.join(img_dir, name)
        scene = renderer.render([int(seed), 2, 0, i])
        objs = []
        for inst, cls in enumerate(scene['instance_classes'], start=1):
            visible = scene['instances'] == inst
            if not visible.any():
                continue
            mask_path = os.path.join(scene_dir, 'mask_visib', f'{i:06d}_{len(objs):06d}.png')
            keep_or_write(mask_path, visible.astype(np.uint8) * 255, root)
            objs.append({'obj_id': int(cls)})
        scene_gt[str(i)] = objs
        key = f'frames/{name}'
        masks = oracle_segments(scene['instances'], np.random.default_rng([int(seed), 3, i]))
        if oracle.status(key) != 'done':
            oracle.write(key, masks, np.ones((len(masks), 2), np.float32), segmenter='oracle')
        elif not np.array_equal(oracle.read(key).masks(), masks):
            raise _stale(root, f'the oracle segments of {key} differ from what '
                         'oracle_segments gives now')
        depth_path = os.path.join(img_dir, 'depth', name)  # io_utils.depth_path of the frame
        if not os.path.isfile(depth_path) and os.path.isfile(rgb_path):
            raise _stale(root, f'{key} has no depth (a pool from before the pool got depth: its '
                         'segments were made without depth)')
        keep_or_write(depth_path, scene['depth'], root)  # before the image: the worker may
        keep_or_write(rgb_path, scene['rgb'], root)      # start at once
        keep_or_write(os.path.join(scene_dir, 'rgb', name), scene['rgb'], root)
    if os.path.isfile(gt_path):
        with open(gt_path) as f:
            if json.load(f) != scene_gt:
                raise _stale(root, f'{os.path.relpath(gt_path, root)} differs from the ground '
                             'truth rendered now')
    atomic_write_bytes(gt_path, json.dumps(scene_gt).encode())
    atomic_write_bytes(os.path.join(paths['bop'], 'classes.txt'),
                       ('\n'.join(CLASS_NAMES[1:]) + '\n').encode())
    return dict(paths, frames=int(frames))


def segment_pool(real_root, segmenter='auto', progress=False, log=print):
    """
    Segment every frame of ``real_root`` without masks into ``<real_root>/masks``, once.

    Arguments:
      real_root (str): image folder (the pool's ``real`` folder, or a real dataset root).
      segmenter (str | dict): ``auto`` (SAM when its checkpoint exists, else the fallback),
        ``fallback``, ``sam``, or a dict of ``segmenters.make_segmenter`` keywords.
      log (callable): one-line messages.

    Returns
    -------
      dict: ``segmented`` (frames processed now), ``reused`` (frames whose masks were there
      already), ``failed``, ``seconds`` (segmenter time), ``segmenter`` name and ``settings``,
      ``store`` path.

    Raises
    ------
      StalePoolError: masks already in the store come from another segmenter, other settings,
      without the frame's depth, or differ from what the segmenter gives now (first frame).

    """
    from sam2real_ros.common.io_utils import depth_path
    from sam2real_ros.sam.segmenters import make_segmenter
    from sam2real_ros.sam.worker import find_frames, SamWorker
    spec = {'kind': segmenter} if isinstance(segmenter, str) else dict(segmenter)
    worker = SamWorker(real_root, make_segmenter(log=log, **spec))
    seg = worker.segmenter
    settings = json.loads(json.dumps(seg.settings, sort_keys=True))
    takes_depth = getattr(seg, 'accepts_depth', False)
    reused = [f for f in find_frames(worker.root, worker.store_root)
              if worker.store.status(f.key) == 'done']
    for i, frame in enumerate(reused):
        rec = worker.store.read(frame.key)
        what = None
        if rec.segmenter != seg.name:
            what = f'the masks of {frame.key} come from {rec.segmenter!r}, not {seg.name!r}'
        elif rec.settings != settings:
            diff = {k: (rec.settings.get(k), settings.get(k))
                    for k in sorted(set(rec.settings) | set(settings))
                    if rec.settings.get(k) != settings.get(k)}
            what = (f'the masks of {frame.key} were made with other {seg.name} settings '
                    '(stored, now): ' + ', '.join(f'{k} {a} vs {b}' for k, (a, b) in diff.items()))
        elif takes_depth and bool(rec.extra.get('depth')) != os.path.isfile(
                depth_path(frame.image_path)):
            what = (f'the masks of {frame.key} were made '
                    f'{"with" if rec.extra.get("depth") else "without"} depth, but the frame '
                    f'{"has none" if rec.extra.get("depth") else "has depth"}')
        elif i == 0:
            rgb, depth = worker.load(frame)
            now = seg(rgb, depth=depth) if depth is not None else seg(rgb)
            if not np.array_equal(now.masks, rec.masks()):
                what = (f'{seg.name} segments {frame.key} differently now ({len(now.masks)} '
                        f'masks, the store holds {len(rec)})')
        if what:
            worker.close()
            raise _stale(os.path.dirname(worker.store_root), what)
    todo = worker.pending()
    if todo:
        log(f'segmenting {len(todo)} real frames with {seg.name} into {worker.store_root} '
            f'(once; reused by every variant and seed)')
        worker.run(todo, progress=progress)
    worker.close()
    if worker.failed:
        log(f'warning: {worker.failed} frames failed to segment (see {worker.store_root})')
    return {'segmented': worker.done, 'reused': len(reused), 'failed': worker.failed,
            'seconds': worker.seconds, 'segmenter': seg.name, 'settings': settings,
            'store': worker.store_root}


def segment_quality(pool_root, store_root=None):
    """
    Measure how well a pool's stored segments match its ground-truth objects.

    For every pool frame with masks and every visible object (``real_bop`` ``mask_visib``), the
    *best IoU* is the largest IoU of any segment with that object, as in
    ``benchmarks/segmenter.py``.

    Arguments:
      pool_root (str): pool folder (:func:`render_pool`).
      store_root (str | None): mask store (default: the pool's ``real/masks``).

    Returns
    -------
      dict | None: ``frames``, ``objects``, ``segments_per_frame`` (mean), ``segments_min``,
      ``segments_max``, ``mean_best_iou``, ``frac_iou_gt_0.5``, ``frac_iou_gt_0.75``,
      ``with_depth`` (frames segmented with depth), ``segmenter``; None when nothing to measure.

    """
    from sam2real_ros.sam.mask_store import MaskStore
    paths = pool_paths(pool_root)
    store = MaskStore(store_root or os.path.join(paths['real'], 'masks'))
    scene_dir = os.path.join(paths['bop'], 'train', '000000')
    gt_path = os.path.join(scene_dir, 'scene_gt.json')
    if not os.path.isfile(gt_path):
        return None
    with open(gt_path) as f:
        scene_gt = json.load(f)

    def objects(i):
        masks = [read_image_unchanged(os.path.join(
            scene_dir, 'mask_visib', f'{int(i):06d}_{k:06d}.png')) > 0
            for k in range(len(scene_gt[i]))]
        return np.stack(masks) if masks else None
    return store_segment_quality(store, ((f'frames/{int(i):06d}.png', functools.partial(
        objects, i)) for i in sorted(scene_gt, key=int)))


def store_segment_quality(store, frames):
    """
    Segment quality of stored segments against the frames' ground-truth object masks.

    Arguments:
    ---------
      store (MaskStore): the segments.
      frames (iterable): ``(key, objects)`` per frame, ``objects`` a callable returning the
        frame's KxHxW bool object masks (or None): read only for frames the store has done.

    Returns
    -------
      dict | None: as :func:`segment_quality`; None when no frame is segmented.

    """
    from benchmarks.segmenter import best_ious
    counts, ious, depth, names = [], [], 0, set()
    for key, objects in frames:
        if store.status(key) != 'done':
            continue
        rec = store.read(key)
        names.add(rec.segmenter)
        depth += bool(rec.extra.get('depth'))
        counts.append(len(rec))
        masks = objects()
        if masks is not None and len(masks):
            ious.extend(best_ious(rec.masks(), masks).tolist())
    if not counts:
        return None
    ious = np.asarray(ious)

    def frac(t):
        return round(float((ious > t).mean()), 4) if len(ious) else None
    return {'segmenter': ', '.join(sorted(names)), 'frames': len(counts),
            'objects': int(len(ious)), 'segments_per_frame': round(float(np.mean(counts)), 1),
            'segments_min': int(min(counts)), 'segments_max': int(max(counts)),
            'mean_best_iou': round(float(ious.mean()), 4) if len(ious) else None,
            'frac_iou_gt_0.5': frac(0.5), 'frac_iou_gt_0.75': frac(0.75), 'with_depth': depth}
