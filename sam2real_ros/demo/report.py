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
The demo's report: PNG images and one HTML page (``<run>/report.html``, images next to it).

Images (all HxWx3 uint8 RGB, written atomically with :func:`io_utils.atomic_write_png`):
``episode_<k>.png`` (a recorded episode: frames with their phase, then the outlines of the SAM
worker's largest segments), ``predictions.png`` (held-out "real" frames: input, ground truth,
the synthetic-only and the SAM-regularized model's labels and dense features, first seed),
``curves.png`` (mIoU per epoch of every run). The numbers: per-seed mIoU of both variants, their
paired differences with a plain-language :func:`verdict`, and :func:`feature_separation` (does
the feature head do what the segment loss asks, on held-out frames). Numbers in the HTML carry
``id``/``data-*`` attributes so tests can read them back.
"""
import html
import math
import os

import cv2
import numpy as np

from sam2real_ros.common.io_utils import (atomic_write_bytes, atomic_write_json,
                                          atomic_write_png, read_rgb)
from sam2real_ros.data import datasets
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.inference.visual import colorize_labels, features_to_rgb
from sam2real_ros.recording import episode_store
from sam2real_ros.sam.mask_store import MaskStore
from sam2real_ros.sam.segmenters import make_segmenter, SegmenterError
from sam2real_ros.training.metrics import frame_ious, MeanIoU

TILE = (120, 160)  # (h, w) of one image tile
EPISODE_TILE = (180, 240)  # episode frames: large enough to read segment outlines
PHASE_COLOURS = {'before': (80, 160, 255), 'during': (255, 170, 40), 'after': (90, 210, 90)}
OUTLINED = 12  # segments outlined per frame (the largest)
# 12 distinct outline colours (RGB), largest segment first
OUTLINE_COLOURS = ((255, 60, 60), (60, 220, 60), (70, 130, 255), (255, 220, 40),
                   (255, 60, 255), (40, 230, 230), (255, 150, 40), (170, 90, 255),
                   (255, 255, 255), (150, 255, 120), (255, 140, 170), (120, 200, 255))


def _tile(img, interp=cv2.INTER_AREA, size=TILE):
    return cv2.resize(np.ascontiguousarray(img), (size[1], size[0]), interpolation=interp)


def _caption(img, text, colour=(255, 255, 255)):
    """Return ``img`` with a dark caption band on top holding ``text``."""
    out = img.copy()
    out[:16] = (out[:16] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out


def segment_outlines(rgb, masks, count=OUTLINED):
    """
    Outline the ``count`` largest segments over a darkened ``rgb``, one colour each.

    Arguments:
    ---------
        rgb (np.ndarray): HxWx3 uint8.
        masks (np.ndarray): NxHxW bool at the size of ``rgb`` (overlapping allowed).
        count (int): segments outlined, largest first.

    Returns
    -------
        (np.ndarray): HxWx3 uint8; the outlines are 1 px wide (2 px for the largest three).

    """
    out = (rgb.astype(np.float32) * 0.55).astype(np.uint8)
    if len(masks) == 0:
        return out
    areas = masks.reshape(len(masks), -1).sum(1)
    order = np.argsort(-areas, kind='stable')[:count]
    for rank in range(len(order) - 1, -1, -1):  # largest drawn last, on top
        m = np.ascontiguousarray(masks[order[rank]], dtype=np.uint8)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, OUTLINE_COLOURS[rank % len(OUTLINE_COLOURS)],
                         2 if rank < 3 else 1, cv2.LINE_8)
    return out


def episode_image(data_root, episode, max_frames=8):
    """
    Two rows for one episode: frames with phase captions, and their segment overlays.

    Arguments:
    ---------
        data_root (str): recorder dataset root (``masks/`` holds the mask store).
        episode (dict): an :func:`episode_store.list_episodes` entry (``dir`` is its folder).
        max_frames (int): frames shown, spread evenly over the episode.

    Returns
    -------
        (np.ndarray, int, dict, list): image HxWx3 uint8, frames in the episode, phase counts,
        segments per frame shown.

    """
    store = MaskStore(os.path.join(data_root, 'masks'))
    eid = os.path.basename(os.path.normpath(episode['dir']))
    frames = [f for f in episode_store.iter_frames(data_root) if f.episode_id == eid]
    phases = {}
    for f in frames:
        phases[f.phase] = phases.get(f.phase, 0) + 1
    pick = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round()
                     .astype(int)) if frames else []
    top, bottom, counts = [], [], []
    size = EPISODE_TILE
    for i in pick:
        f = frames[i]
        rgb = read_rgb(f.image_path)
        tile = _tile(rgb, size=size)
        top.append(_caption(tile, f'{i + 1}: {f.phase}', PHASE_COLOURS.get(f.phase)))
        if store.status(f.key) == 'done':
            masks = store.read(f.key).masks()
            h, w = masks.shape[1:]  # nearest-neighbour to the tile size before outlining
            ys = (np.arange(size[0]) * h) // size[0]
            xs = (np.arange(size[1]) * w) // size[1]
            small = masks[:, ys][:, :, xs]
            counts.append(len(masks))
            seg = _caption(segment_outlines(tile, small),
                           f'{len(masks)} segments, {min(OUTLINED, len(masks))} largest shown')
        else:
            seg = _caption(np.zeros((*size, 3), np.uint8), 'no masks')
        bottom.append(seg)
    if not top:
        return np.zeros((*size, 3), np.uint8), 0, phases, counts
    gap = np.full((size[0] * 2, 2, 3), 255, np.uint8)
    cols = [np.concatenate([t, b], 0) for t, b in zip(top, bottom)]
    row = [c for col in cols for c in (col, gap)][:-1]
    return np.concatenate(row, 1), len(frames), phases, counts


PRED_COLUMNS = ('input', 'ground truth', 'synthetic only', 'full (SAM reg.)',
                'features: syn. only', 'features: full')


def prediction_image(samples, preds_syn, preds_full):
    """
    Rows of held-out frames: input, ground truth, both models' labels and features.

    Arguments:
    ---------
        samples (list[dict]): labeled samples (``rgb`` HxWx3 uint8, ``labels`` HxW uint8).
        preds_syn, preds_full (list): :class:`engine.Prediction` per sample (labels HxW uint8,
            features HxWxD float32).

    Returns
    -------
        (np.ndarray): HxWx3 uint8 with a title row; each label tile is captioned with that
        frame's mIoU (Eq. 8 over the classes present).

    """
    header = np.full((20, TILE[1] * len(PRED_COLUMNS), 3), 255, np.uint8)
    for k, title in enumerate(PRED_COLUMNS):
        cv2.putText(header, title, (k * TILE[1] + 4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for s, ps, pf in zip(samples, preds_syn, preds_full):
        def lab(p):
            ious = frame_ious(p.labels, s['labels'])
            score = np.mean(list(ious.values())) if ious else float('nan')
            return _caption(_tile(colorize_labels(p.labels), cv2.INTER_NEAREST),
                            f'mIoU {score:.2f}')
        tiles = [_tile(s['rgb']), _tile(colorize_labels(s['labels']), cv2.INTER_NEAREST),
                 lab(ps), lab(pf), _tile(features_to_rgb(ps.features)),
                 _tile(features_to_rgb(pf.features))]
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def curves_image(path, runs):
    """
    Plot mIoU per epoch of every run to ``path`` (PNG).

    ``runs`` maps ``(variant, seed)`` to metrics rows; one colour per variant, one line style
    per seed.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.ticker
    import matplotlib.pyplot as plt
    colours = {'synthetic_only': 'tab:blue', 'full': 'tab:orange'}
    labels = {'synthetic_only': 'synthetic only', 'full': 'full (SAM reg.)'}
    styles = ('-', '--', ':', '-.')
    seeds = sorted({seed for _, seed in runs})
    fig, ax = plt.subplots(figsize=(5.6, 3.2), dpi=100)
    for (variant, seed), rows in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        ax.plot([r['epoch'] for r in rows], [r['miou'] for r in rows], marker='o', ms=3,
                color=colours.get(variant), linestyle=styles[seeds.index(seed) % len(styles)],
                label=f'{labels.get(variant, variant)}, seed {seed}')
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel('epoch')
    ax.set_ylabel('mIoU (Eq. 8), held-out "real"')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    atomic_write_png(path, img)


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


def _fmt(value, spec='.3f'):
    return 'n/a' if value is None or value != value else format(value, spec)


VARIANT_LABELS = (('synthetic_only', 'synthetic only'), ('full', 'full (SAM reg.)'))


STYLE = (
    'body{font-family:sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}',
    'table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;'
    'text-align:left}img{max-width:100%;border:1px solid #ddd}.note{color:#555}'
    '.verdict{background:#f4f4ec;border-left:4px solid #aa9;padding:.5em 1em}')


def write_html(path, s):
    """
    Write the report page; ``s`` is the demo summary dict (see :func:`build`).

    Keys used: ``episodes`` (list of dicts ``image``, ``id``, ``frames``, ``phases``,
    ``segments``), ``segmenter``, ``train`` (``seeds``, ``runs`` list of per-run dicts,
    ``paired``, ``verdict``, ``mean``, ``separation``), ``eval_frames``, ``background_miou`` /
    ``background_fraction``, ``predictions`` / ``curves`` (image file names or None),
    ``classes`` (``[(name, [r, g, b])]``), ``node`` (:meth:`NodeGraph.measure`), ``stages``
    (``[(name, seconds)]``), ``config`` (dict). One function per section, each returning its
    HTML lines.
    """
    parts = (html_head(s) + episodes_section(s) + training_section(s) + predictions_section(s)
             + separation_section(s) + node_section(s) + stages_section(s)
             + ['</body></html>'])
    atomic_write_bytes(path, '\n'.join(parts).encode())


def html_head(s):
    """Return the page head, title and the run's note."""
    e = html.escape
    return [
        '<!doctype html><html><head><meta charset="utf-8"><title>sam2real demo</title><style>',
        *STYLE,
        '</style></head><body>',
        '<h1>sam2real demo: the whole loop on a simulated robot</h1>',
        f'<p class="note">Run folder <code>{e(s["out"])}</code>, {e(s["started"])}; '
        f'{e(s["machine"])}. Random-weight tiny model, a few minutes of CPU training: the '
        'numbers show that the loop works, not what the method reaches at full scale.</p>']


def episodes_section(s):
    """Return section 1: the recorded episodes with their segment outlines."""
    e = html.escape
    segs = [n for ep in s['episodes'] for n in ep.get('segments', [])]
    seg_text = (f'{min(segs)}-{max(segs)} segments per frame (mean {np.mean(segs):.0f})'
                if segs else 'no segments')
    parts = [
        '<h2>1. Captured grasp episodes</h2>',
        f'<p>The grasp recorder stored {sum(ep["frames"] for ep in s["episodes"])} frames '
        f'in {len(s["episodes"])} episodes around the simulated grasps. The camera looks at '
        f'one tabletop (scene {s["config"]["scene"]}, procedural "real" appearance, '
        f'{s["config"]["camera_rate"]:g} Hz): in each grasp a gripper takes the nearest '
        'object off the table, and between grasps the head camera moves a little. Top row: '
        'frames with their phase (<b style="color:#3070d0">before</b>: the object on the '
        'table, <b style="color:#d08010">during</b>: the gripper closing on it and lifting it, '
        '<b style="color:#40a040">after</b>: the object gone). Bottom row: the outlines of the '
        f'{OUTLINED} largest segments the SAM worker ({e(s["segmenter"])}) found in that frame '
        f'({seg_text}); these segments are what the SAM loss trains on.</p>',
    ]
    for k, ep in enumerate(s['episodes']):
        phases = ', '.join(f'{n} {ph}' for ph, n in ep['phases'].items())
        parts.append(f'<h3>Episode {k + 1} <small class="note">{e(ep["id"])}: '
                     f'{ep["frames"]} frames ({e(phases)})</small></h3>'
                     f'<img src="{e(ep["image"])}" alt="episode {k + 1}">')
    return parts


def training_section(s):
    """Return section 2: per-seed mIoU of both variants, paired differences, verdict, curves."""
    e = html.escape
    t, p = s['train'], s['train']['paired']
    runs = {(r['variant'], r['seed']): r for r in t['runs']}
    first = runs[('full', t['seeds'][0])]
    parts = [
        '<h2>2. Synthetic only vs SAM-regularized training</h2>',
        f'<p>Each variant trained with {len(t["seeds"])} seeds ({first["iterations"]} '
        f'iterations in {first["epochs"]} epochs each). The same seed gives both variants the '
        'same initialization and the same synthetic frames, so the difference of a pair is '
        'the effect of the SAM loss plus noise. <i>synthetic only</i>: supervised steps on '
        'procedural "synthetic" frames. <i>full</i>: each supervised step followed by a step of '
        'the SAM segment pooling loss (Eq. 6) on the recorded frames. mIoU (Eq. 8, background '
        f'included) of the EMA model on {s["eval_frames"]} held-out procedural "real" frames '
        '(same renderer as the camera, scenes the camera never shows). Background (table and '
        f'wall, {100 * s["background_fraction"]:.0f}% of the pixels of these frames) counts '
        f'as a class: predicting background everywhere scores {s["background_miou"]:.3f}.</p>',
        '<table><tr><th>seed</th><th>synthetic only</th><th>full (SAM reg.)</th>'
        '<th>difference</th><th class="note">last epoch: synthetic only / full</th></tr>',
    ]
    for seed, d in zip(t['seeds'], p['diffs']):
        a, b = runs[('synthetic_only', seed)], runs[('full', seed)]
        parts.append(
            f'<tr><td>{seed}</td><td class="miou" data-variant="synthetic_only" '
            f'data-seed="{seed}">{_fmt(a["miou_last_k"], ".4f")}</td><td class="miou" '
            f'data-variant="full" data-seed="{seed}">{_fmt(b["miou_last_k"], ".4f")}</td>'
            f'<td class="diff" data-seed="{seed}">{d:+.4f}</td><td class="note">'
            f'{_fmt(a["miou"], ".4f")} / {_fmt(b["miou"], ".4f")}</td></tr>')
    parts += [
        f'<tr><td><b>mean</b></td><td>{t["mean"]["synthetic_only"]:.4f}</td>'
        f'<td>{t["mean"]["full"]:.4f}</td><td><b id="paired-mean">{p["mean"]:+.4f}</b> +- '
        f'<span id="paired-std">{_fmt(p["std"], ".4f")}</span></td><td></td></tr></table>',
        '<p class="note">mIoU per run: '
        + (f'mean of its last {first["k"]} epochs' if first['k'] != 1 else 'its last epoch')
        + ' (as the benchmark scores runs); +- is the standard deviation of the paired '
        'differences over seeds.</p>',
        f'<p class="verdict" id="verdict">{e(t["verdict"])}</p>',
    ]
    if s.get('curves'):
        parts.append(f'<p><img src="{e(s["curves"])}" alt="mIoU per epoch" '
                     'style="width:560px"></p>')
    return parts


def predictions_section(s):
    """Return the predictions image of the first seed with the class colour legend."""
    e = html.escape
    if not s.get('predictions'):
        return []
    legend = ' '.join(
        f'<span style="white-space:nowrap"><span style="display:inline-block;'
        f'width:12px;height:12px;border:1px solid #888;background:rgb{tuple(c)}">'
        f'</span> {e(n)}</span>' for n, c in s['classes'])
    return [f'<h3>Predictions on held-out "real" frames (seed {s["train"]["seeds"][0]})</h3>',
            f'<img src="{e(s["predictions"])}" alt="predictions">',
            f'<p>{legend}</p>',
            '<p class="note">Label colours: one per class as above. Features: '
            'the D=3 dense feature head shown as RGB (each channel min-max scaled per '
            'frame).</p>']


def separation_section(s):
    """Return the table of :func:`separation_table` (do the features separate segments?)."""
    sep = s['train'].get('separation') or []
    if not sep:
        return []
    parts = [
        '<h3>Do the features do what the SAM loss asks?</h3>',
        f'<p>The loss asks the features to be constant inside a segment (Eq. 3-4) and '
        f'different between segments (Eq. 5). Measured on the {s["separation_frames"]} '
        "held-out frames above: <i>spread</i> is the mean RMS distance of a pixel's "
        'feature to the mean feature of its segment, <i>distance</i> the mean distance '
        "between two segments' mean features, and <i>ratio</i> = distance / spread "
        '(higher is better, scale-free). "Segments": what the segmenter finds in these '
        'frames (what the loss would see); "objects": the true objects of the ground '
        'truth (what one hopes the features separate).</p>',
        '<table><tr><th>run</th><th>segments: spread / distance</th><th>ratio</th>'
        '<th>objects: spread / distance</th><th>ratio</th></tr>']
    for r in sep:
        cells = ''
        for name in ('segments', 'objects'):
            sp, di, ra = r[name]
            cells += (f'<td>{_fmt(sp)} / {_fmt(di)}</td><td class="sep" data-run='
                      f'"{r["variant"]}_s{r["seed"]}" data-kind="{name}">{_fmt(ra, ".2f")}'
                      '</td>')
        parts.append(f'<tr><td>{html.escape(dict(VARIANT_LABELS)[r["variant"]])}, seed '
                     f'{r["seed"]}</td>{cells}</tr>')
    parts.append('</table>')
    return parts


def node_section(s):
    """Return section 3: the segmentation node's rate, latency and both kinds of drops."""
    e = html.escape
    node, rate = s['node'], s['config']['node_camera_rate']
    cam = node.get('camera_frames')
    parts = [
        '<h2>3. The segmentation node with the trained model</h2>',
        f'<p>The <i>full</i> model of seed {s["train"]["seeds"][0]} (EMA weights) exported to '
        f'ONNX (<code>{e(s["model"])}</code>) runs in <code>segmentation_node</code> on the '
        f'simulated camera (640x480 at {rate:g} Hz, so the rate cannot exceed {rate:g} '
        'labels/s).</p>',
        '<table>',
        f'<tr><td>labels received</td><td><span id="rate-hz">{node["hz"]:.2f}</span> '
        f'labels/s ({node["frames"]} in {s["config"]["seconds"]:g} s)</td></tr>',
        f'<tr><td>latency camera stamp -> labels received</td><td>p50 '
        f'{_fmt(node["latency_ms_p50"], ".0f")} ms, p95 {_fmt(node["latency_ms_p95"], ".0f")} '
        'ms</td></tr>',
        f'<tr><td>inference (node)</td><td>p50 {e(str(node["node"].get("inference_ms_p50", "?")))}'
        f' ms, backend {e(str(node["node"].get("backend", "?")))}</td></tr>',
    ]
    if cam is not None:
        parts += [
            f'<tr><td>camera frames published</td><td id="camera-frames">{cam}</td></tr>',
            f'<tr><td>never delivered to the node (lost or late in transport)</td>'
            f'<td id="undelivered">{node["undelivered"]}</td></tr>']
    else:
        parts += [
            '<tr><td>camera frames published / never delivered</td><td id="camera-frames-unknown">'
            "unknown: the report's listener received no camera_info in the window</td></tr>"]
    return parts + [
        "<tr><td>delivered but replaced in the node's newest-frame slot</td>"
        f'<td id="replaced">{node["dropped"]}</td></tr>',
        '</table>',
        '<p class="note">Two different drops: a frame can be <i>never delivered</i> (the '
        "camera published it, the node's subscription never got it: transport loss or a full "
        'queue), or be <i>delivered and replaced</i> (the node keeps only the newest frame; one '
        'that arrives while the model is busy replaces the waiting one, so the node always '
        'segments the latest image instead of falling behind). Counted over the measurement '
        'window.</p>']


def stages_section(s):
    """Return the wall time per stage and where the logs, runs and data are."""
    parts = ['<h2>Stages</h2><table><tr><th>stage</th><th>wall time</th></tr>']
    parts += [f'<tr><td>{html.escape(name)}</td><td>{sec:.0f} s</td></tr>'
              for name, sec in s['stages']]
    total = sum(sec for _, sec in s['stages'])
    parts.append(f'<tr><td><b>total</b> (before writing this report)</td><td><b>{total:.0f} s'
                 '</b></td></tr></table>')
    parts.append('<p class="note">Logs of every process: <code>logs/</code>; training runs: '
                 '<code>train/&lt;variant&gt;_s&lt;seed&gt;</code> (checkpoint, metrics.csv); '
                 'recorded data and masks: <code>data/</code>.</p>')
    return parts


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


def build(args, episodes, train, model, node, stages, started, load, reference=None):
    """
    Write every image, ``report.html`` and ``summary.json`` into ``args.out``.

    ``reference`` is the figure the verdict quotes for scale (see :func:`verdict`).

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
        'node': node, 'stages': list(stages),
        'config': {'scene': args.scene, 'camera_rate': 10.0, 'node_camera_rate': 30.0,
                   'seconds': args.seconds, 'grasps': args.grasps, 'seeds': seeds},
    }
    write_html(s['report'], s)
    atomic_write_json(os.path.join(out, 'summary.json'), s)
    return s
