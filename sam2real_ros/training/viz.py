"""
Per-epoch image panels: input | prediction | ground truth | dense features as RGB.

Uses ``sam2real_ros.inference.visual`` (``colorize_labels``, ``features_to_rgb``) when it is
installed, else a small built-in palette and per-channel min-max normalization.
"""
import cv2
import numpy as np

from sam2real_ros.common.io_utils import atomic_write_png


def _colorize(labels):
    try:
        from sam2real_ros.inference.visual import colorize_labels
        return colorize_labels(labels)
    except ImportError:
        rng = np.random.default_rng(7)
        palette = rng.integers(40, 255, size=(256, 3), dtype=np.uint8)
        palette[0] = 0
        palette[255] = 255
        return palette[np.asarray(labels, dtype=np.uint8)]


def _features_rgb(features):
    try:
        from sam2real_ros.inference.visual import features_to_rgb
        return features_to_rgb(features)
    except ImportError:
        f = np.asarray(features, dtype=np.float32)
        if f.shape[2] < 3:
            f = np.concatenate([f] + [f[:, :, :1]] * (3 - f.shape[2]), axis=2)
        f = f[:, :, :3]
        lo, hi = f.min(axis=(0, 1)), f.max(axis=(0, 1))
        return ((f - lo) / np.maximum(hi - lo, 1e-8) * 255).astype(np.uint8)


def make_panel(rows, tile_height=160):
    """
    Stack rows of (rgb, pred, gt, features) into one uint8 image.

    Arguments:
    ---------
      rows (list): tuples ``(rgb HxWx3 uint8, pred HxW uint8, gt HxW uint8,
        features hxwxD float32)``; every tile is resized to ``tile_height``.

    Returns
    -------
      np.ndarray: panel HxWx3 uint8 (columns: input, prediction, ground truth, features).

    """
    out = []
    for rgb, pred, gt, feats in rows:
        h = tile_height
        w = max(1, int(round(rgb.shape[1] * h / rgb.shape[0])))
        tiles = [rgb, _colorize(pred), _colorize(gt), _features_rgb(feats)]
        interps = [cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_NEAREST, cv2.INTER_LINEAR]
        out.append(np.concatenate([cv2.resize(np.ascontiguousarray(t), (w, h), interpolation=i)
                                   for t, i in zip(tiles, interps)], axis=1))
    return np.concatenate(out, axis=0)


def save_panel(path, rows, tile_height=160):
    """Write :func:`make_panel` as a PNG atomically; returns the panel."""
    panel = make_panel(rows, tile_height)
    atomic_write_png(path, panel)
    return panel
