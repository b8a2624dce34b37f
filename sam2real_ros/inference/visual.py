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
Visualization helpers shared by the segmentation node, the trainer and the demo.

No torch or rclpy needed: numpy only.
"""
import numpy as np

from sam2real_ros.common.labels import MAX_CLASSES

# First colours are distinct and easy to tell apart; background (class 0) is black.
_BASE = np.array([
    [0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
    [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
    [170, 255, 195], [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128],
], np.uint8)


def _palette():
    rng = np.random.default_rng(12345)
    rest = rng.integers(40, 256, (MAX_CLASSES - len(_BASE), 3), dtype=np.uint8)
    return np.concatenate([_BASE, rest], 0)


PALETTE = _palette()  # MAX_CLASSES x 3 uint8, fixed across runs


def colorize_labels(labels, num_classes=None):
    """
    Colour a label image with the fixed palette (class 0 = black).

    Arguments:
    ---------
      labels (np.ndarray): HxW uint8 (or integer) class indices.
      num_classes (int): optional; labels >= num_classes raise ValueError.

    Returns
    -------
      (np.ndarray): HxWx3 uint8 RGB.

    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in 'ui':
        raise ValueError(f'expected an HxW integer label image, got shape {labels.shape} '
                         f'dtype {labels.dtype}')
    if labels.size and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
        raise ValueError(f'label values must be in 0..{MAX_CLASSES - 1}')
    if num_classes is not None:
        if not 1 <= num_classes <= MAX_CLASSES:
            raise ValueError(f'num_classes must be in 1..{MAX_CLASSES}, got {num_classes}')
        if labels.size and int(labels.max()) >= num_classes:
            raise ValueError(f'label {int(labels.max())} >= num_classes {num_classes}')
    return PALETTE[labels.astype(np.intp, copy=False)]


def features_to_rgb(features):
    """
    Visualize dense features as colours, each channel min-max normalized per frame.

    As in the paper's Fig. 5/11: D = 3 maps to RGB; D = 2 to red/green with blue constant
    (128); D = 1 to grayscale; D > 3 shows the first 3 channels.

    Arguments:
    ---------
      features (np.ndarray): HxWxD float (D >= 1).

    Returns
    -------
      (np.ndarray): HxWx3 uint8 RGB.

    """
    f = np.asarray(features, np.float32)
    if f.ndim != 3 or f.shape[2] < 1:
        raise ValueError(f'expected HxWxD features, got shape {f.shape}')
    f = f[:, :, :3]
    lo = f.min(axis=(0, 1), keepdims=True)
    hi = f.max(axis=(0, 1), keepdims=True)
    scaled = (f - lo) * (255.0 / np.maximum(hi - lo, 1e-12))
    scaled = np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)
    h, w, d = scaled.shape
    if d == 3:
        return scaled
    if d == 1:
        return np.repeat(scaled, 3, axis=2)
    return np.concatenate([scaled, np.full((h, w, 1), 128, np.uint8)], axis=2)
