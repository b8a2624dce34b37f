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
The demo's report: its numbers, and :func:`build`, which writes the images and the page.

:func:`build` writes ``<run>/report.html`` (:mod:`report_html`), the images next to it
(:mod:`report_images`) and ``summary.json``. The numbers: per-seed mIoU of both variants, their
paired differences (:func:`paired`) with a plain-language :func:`verdict`, and
:func:`feature_separation` (does the feature head do what the segment loss asks, on held-out
frames).
"""
import math
import os

import cv2
import numpy as np

from sam2real_ros.common.io_utils import atomic_write_json, atomic_write_png
from sam2real_ros.data import datasets
from sam2real_ros.demo.report_html import VARIANT_LABELS, write_html
from sam2real_ros.demo.report_images import (curves_image, episode_image, prediction_image,
                                             TILE)
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.inference.visual import colorize_labels
from sam2real_ros.sam.segmenters import make_segmenter, SegmenterError
from sam2real_ros.training.metrics import MeanIoU


def paired(runs, seeds, key='miou_last_k'):
    """
    Paired differences ``full - synthetic_only`` per seed (same initialization and data).

    Arguments:
    ---------
        runs (dict): ``{(variant, seed): {key: mIoU, ...}}``.
        seeds (list): the seeds, in order.
        key (str): which score (``miou_last_k``: mean of the last epochs, as the benchmark).

    Returns
    -------
        (dict): ``diffs`` (per seed), ``mean``, ``std`` (sample std, ddof 1; NaN for one
        seed), ``n``, ``full_higher`` (seeds where full scored higher), ``key``.

    """
    diffs = [float(runs[('full', s)][key] - runs[('synthetic_only', s)][key]) for s in seeds]
    n = len(diffs)
    return {'diffs': diffs, 'mean': float(np.mean(diffs)) if diffs else float('nan'),
            'std': float(np.std(diffs, ddof=1)) if n > 1 else float('nan'), 'n': n,
            'full_higher': sum(d > 0 for d in diffs), 'key': key}


def verdict(p, reference=None):
    """
    Say in plain words what the paired differences ``p`` (:func:`paired`) show, and no more.

    A difference counts as consistent only when every seed points the same way, there are at
    least 3 seeds and the mean is more than twice its standard error; otherwise the text says
    that this run cannot tell.

    Arguments:
    ---------
        p (dict): :func:`paired`'s result.
        reference (dict or None): a measured paired difference quoted for scale: ``delta``,
            ``std``, ``seeds``, ``iterations`` and ``doc`` (where it is documented), e.g. the
            demo's ``pipeline.SIM2REAL_REFERENCE``; None quotes nothing.

    Returns
    -------
        (str): the verdict, one paragraph.

    """
    scale = '' if reference is None else (
        f' For scale: the sim2real benchmark ({reference["doc"]}: {reference["seeds"]} seeds, '
        f'{reference["iterations"]} iterations each, paired the same way) measures '
        f'{reference["delta"]:+.3f} +- {reference["std"]:.3f} for this comparison.')
    return _what_the_pairs_show(p) + scale


def _what_the_pairs_show(p):
    n, m, sd = p['n'], p['mean'], p['std']
    if n == 0:
        return 'No finished pairs of runs.'
    per = ', '.join(f'{d:+.3f}' for d in p['diffs'])
    if n == 1:
        return (f'One seed ({per}) cannot separate a difference from seed-to-seed noise; run '
                'with --seeds 2 or more.')
    same_sign = p['full_higher'] in (0, n) and all(d != 0 for d in p['diffs'])
    which = 'SAM regularization' if m > 0 else 'synthetic-only training'
    if same_sign and n >= 3 and abs(m) > 2 * sd / math.sqrt(n):
        return (f'{which} scored higher in all {n} seeds ({per}; mean {m:+.3f} +- {sd:.3f}): a '
                'consistent difference at this size, from a small sample of short runs.')
    if same_sign:
        return (f'{which} scored higher in {"both" if n == 2 else f"all {n}"} seeds ({per}; '
                f'mean {m:+.3f} +- {sd:.3f}), but {n} seeds of runs this short cannot tell a '
                'difference of this size from noise: not evidence either way.')
    return (f'No clear difference: the paired differences change sign from seed to seed ({per};'
            f' mean {m:+.3f} +- {sd:.3f}). This run is too small to show whether SAM '
            'regularization helps or hurts.')


def label_segments(labels, min_pixels=20):
    """Ground-truth objects of a label image: NxHxW bool (connected parts of each class > 0)."""
    out = []
    for c in np.unique(labels):
        if c == 0:
            continue
        n, comp = cv2.connectedComponents((labels == c).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            m = comp == k
            if m.sum() >= min_pixels:
                out.append(m)
    return np.stack(out) if out else np.zeros((0,) + labels.shape, bool)


def feature_separation(features, masks, min_pixels=20):
    """
    Measure what the segment loss asks of the features, on one frame.

    Arguments:
    ---------
        features (np.ndarray): HxWxD float.
        masks (np.ndarray): NxHxW bool segments (overlapping allowed).
        min_pixels (int): smaller segments are ignored.

    Returns
    -------
        (tuple): ``(spread, distance, segments)``: mean over segments of the RMS distance of
        a pixel's feature to its segment's mean feature (the invariance term, Eq. 3-4, wants
        it small), mean distance between two segments' means (the variance term, Eq. 5, wants
        it large) and the segments counted. NaN when fewer than 2 segments qualify.

    """
    z = features.reshape(-1, features.shape[-1]).astype(np.float64)
    means, spreads = [], []
    for m in masks:
        idx = np.flatnonzero(m.ravel())
        if len(idx) < min_pixels:
            continue
        zz = z[idx]
        mu = zz.mean(0)
        means.append(mu)
        spreads.append(float(np.sqrt(((zz - mu) ** 2).sum(1).mean())))
    if len(means) < 2:
        return float('nan'), float('nan'), len(means)
    mu = np.stack(means)
    d = np.sqrt(((mu[:, None] - mu[None]) ** 2).sum(-1))
    iu = np.triu_indices(len(mu), 1)
    return float(np.mean(spreads)), float(d[iu].mean()), len(means)


def separation_table(samples, preds, segmenter):
    """
    Aggregate :func:`feature_separation` over held-out frames, per run.

    Arguments:
    ---------
        samples (list[dict]): labeled frames (``rgb``, ``labels``, optional ``depth``).
        preds (dict): ``{(variant, seed): [Prediction per sample]}``.
        segmenter (callable or None): the demo's segmenter (``rgb -> Segments``); its segments
            on these frames are what the loss would see. None: ground-truth objects only.

    Returns
    -------
        (dict): ``{(variant, seed): {'segments': (spread, distance, ratio), 'objects': ...}}``
        where ratio = distance / spread (higher: features constant within a segment and far
        apart between segments), averaged over the frames.

    """
    seg_masks = []
    for smp in samples:
        if segmenter is None:
            seg_masks.append(None)
            continue
        seg_masks.append(_segment(segmenter, smp))
    obj_masks = [label_segments(smp['labels']) for smp in samples]
    size = TILE  # measured at 120x160: the features are a bilinear upsampling anyway

    def small(masks):
        if masks is None:
            return None
        h, w = masks.shape[1:]
        return masks[:, (np.arange(size[0]) * h) // size[0]][:, :, (np.arange(size[1]) * w)
                                                             // size[1]]
    seg_masks, obj_masks = [small(m) for m in seg_masks], [small(m) for m in obj_masks]
    out = {}
    for run, plist in preds.items():
        feats = [cv2.resize(p.features, (size[1], size[0]), interpolation=cv2.INTER_AREA)
                 .reshape(size[0], size[1], -1) for p in plist]
        row = {}
        for name, masks in (('segments', seg_masks), ('objects', obj_masks)):
            vals = [feature_separation(f, m, min_pixels=5) for f, m in zip(feats, masks)
                    if m is not None]
            vals = [(a, b) for a, b, _ in vals if not (math.isnan(a) or math.isnan(b))]
            if vals:
                spread = float(np.mean([a for a, _ in vals]))
                dist = float(np.mean([b for _, b in vals]))
                row[name] = (spread, dist, dist / spread if spread > 0 else float('nan'))
            else:
                row[name] = (float('nan'),) * 3
        out[run] = row
    return out


def _segment(segmenter, sample):
    """Segments of a held-out frame as NxHxW bool (with its depth when the segmenter takes it)."""
    depth = sample.get('depth')
    if depth is not None and getattr(segmenter, 'accepts_depth', False):
        return np.asarray(segmenter(sample['rgb'], depth=depth).masks, bool)
    return np.asarray(segmenter(sample['rgb']).masks, bool)


def background_baseline(train):
    """
    Return ``(mIoU of predicting background everywhere, background pixel fraction)``.

    Computed over the ``train['eval_frames']`` evaluation frames the trainers score.
    """
    ds = datasets.build_labeled(train['eval'])
    acc, fractions = MeanIoU(), []
    for i in range(min(train['eval_frames'], len(ds))):
        gt = ds[i]['labels']
        acc.update(np.zeros_like(gt), gt)
        fractions.append(float(np.mean(gt == 0)))
    return acc.compute(), float(np.mean(fractions))


def predictions(train, frames=4):
    """
    Predict the first ``frames`` eval frames with every run's checkpoint (deployed engine path).

    Returns
    -------
        (list, dict, list): samples, ``{(variant, seed): [Prediction]}``, class names.

    """
    ds = datasets.build_labeled(train['eval'])
    samples = [ds[i] for i in range(min(frames, len(ds)))]
    out, names = {}, []
    for key, run in train['runs'].items():
        engine = SegmentationEngine.load(run['checkpoint'], backend='torch', device='cpu',
                                         threads=1)  # two threads crawl on a busy 2-core box
        out[key] = [engine.predict(smp['rgb']) for smp in samples]
        names = list(engine.class_names)
    return samples, out, names


def build(args, episodes, train, model, node, stages, started, load, reference=None,
          adaptation=None):
    """
    Write every image, ``report.html`` and ``summary.json`` into ``args.out``.

    ``reference`` is the figure the verdict quotes for scale (see :func:`verdict`);
    ``adaptation`` the adaptation round (:func:`sam2real_ros.demo.pipeline.adapt_round`).

    Returns
    -------
        (dict): the summary (``report`` is the HTML path).

    """
    out = args.out
    eps = []
    for k, ep in enumerate(episodes):
        img, n, phases, counts = episode_image(os.path.join(out, 'data'), ep)
        name = f'episode_{k + 1}.png'
        atomic_write_png(os.path.join(out, name), img)
        eps.append({'image': name, 'id': os.path.basename(os.path.normpath(ep['dir'])),
                    'frames': n, 'phases': phases, 'segments': counts})
    seeds, runs = train['seeds'], train['runs']
    samples, preds, names = predictions(train)
    bg_miou, bg_fraction = background_baseline(train)
    first = seeds[0]
    atomic_write_png(os.path.join(out, 'predictions.png'), prediction_image(
        samples, preds[('synthetic_only', first)], preds[('full', first)]))
    curves_image(os.path.join(out, 'curves.png'), {k: r['rows'] for k, r in runs.items()})
    try:
        segmenter = make_segmenter(args.segmenter, log=lambda *a: None)
    except SegmenterError:
        segmenter = None
    sep = separation_table(samples, preds, segmenter)
    p = paired(runs, seeds)
    s = {
        'out': out, 'started': started, 'report': os.path.join(out, 'report.html'),
        'machine': f'{os.cpu_count()} CPU cores, no GPU used, load average {load:.1f} at start',
        'episodes': eps, 'segmenter': args.segmenter, 'eval_frames': train['eval_frames'],
        'train': {
            'seeds': seeds, 'paired': p, 'verdict': verdict(p, reference),
            'mean': {v: float(np.mean([runs[(v, sd)]['miou_last_k'] for sd in seeds]))
                     for v, _ in VARIANT_LABELS},
            'runs': [{k: x for k, x in r.items() if k != 'rows'}
                     for _, r in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0]))],
            'separation': [{'variant': v, 'seed': sd, **sep[(v, sd)]} for sd in seeds
                           for v, _ in VARIANT_LABELS]},
        'separation_frames': len(samples),
        'predictions': 'predictions.png', 'curves': 'curves.png', 'model': model,
        'background_miou': bg_miou, 'background_fraction': bg_fraction,
        'classes': [(n, [int(x) for x in colorize_labels(np.array([[i]], np.uint8))[0, 0]])
                    for i, n in enumerate(names)],
        'node': node, 'stages': list(stages), 'adaptation': adaptation,
        'config': {'scene': args.scene, 'camera_rate': 10.0, 'node_camera_rate': 30.0,
                   'seconds': args.seconds, 'grasps': args.grasps, 'seeds': seeds},
    }
    write_html(s['report'], s)
    atomic_write_json(os.path.join(out, 'summary.json'), s)
    return s
