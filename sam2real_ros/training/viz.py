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
Per-epoch image panels: input | prediction | ground truth | dense features as RGB.

Colours come from :mod:`sam2real_ros.inference.visual`, the same as the node's and the demo's.
"""
import cv2
import numpy as np

from sam2real_ros.common.io_utils import atomic_write_png
from sam2real_ros.inference.visual import colorize_labels, features_to_rgb


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
        tiles = [rgb, colorize_labels(pred), colorize_labels(gt), features_to_rgb(feats)]
        interps = [cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_NEAREST, cv2.INTER_LINEAR]
        out.append(np.concatenate([cv2.resize(np.ascontiguousarray(t), (w, h), interpolation=i)
                                   for t, i in zip(tiles, interps)], axis=1))
    return np.concatenate(out, axis=0)


def save_panel(path, rows, tile_height=160):
    """Write :func:`make_panel` as a PNG atomically; returns the panel."""
    panel = make_panel(rows, tile_height)
    atomic_write_png(path, panel)
    return panel
