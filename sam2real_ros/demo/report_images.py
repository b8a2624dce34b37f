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
The demo report's images, HxWx3 uint8 RGB, written atomically (``io_utils.atomic_write_png``).

``episode_<k>.png`` (:func:`episode_image`: a recorded episode, frames with their phase, then
the outlines of the SAM worker's largest segments), ``predictions.png``
(:func:`prediction_image`: held-out "real" frames, input, ground truth, the synthetic-only and
the SAM-regularized model's labels and dense features), ``curves.png`` (:func:`curves_image`:
mIoU per epoch of every run).
"""
import os

import cv2
import numpy as np

from sam2real_ros.common.io_utils import atomic_write_png, read_rgb
from sam2real_ros.inference.visual import colorize_labels, features_to_rgb
from sam2real_ros.recording import episode_store
from sam2real_ros.sam.mask_store import MaskStore
from sam2real_ros.training.metrics import frame_ious

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
