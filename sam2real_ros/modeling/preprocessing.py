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
Image preprocessing and label resizing: the one path of training, evaluation and the engine.

The trainer (:func:`sam2real_ros.training.batching.prepare_batch`), the trainer's evaluation and
:class:`sam2real_ros.inference.engine.SegmentationEngine` all turn an RGB frame into network
input with :func:`preprocess`, and bring labels, masks and features to another size with the
``resize_*`` functions here, so what a model sees in training is what it sees when deployed.

* RGB: OpenCV area interpolation when the height shrinks, bilinear otherwise; then
  ``(rgb / 255 - mean) / std`` per channel, as float32.
* Labels and masks: nearest neighbour (OpenCV's rule ``src = floor(dst * H / h)``).
* Dense features: bilinear, per channel.

numpy and OpenCV only (no torch): the ONNX engine runs without torch.
"""
import cv2
import numpy as np

from sam2real_ros.sam.mask_layers import MaskLayers

_CV_MAX_CHANNELS = 128  # features are resized in chunks: OpenCV refuses many-channel arrays


def check_rgb(rgb):
    """Raise ValueError unless ``rgb`` is an HxWx3 uint8 numpy array."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f'expected an HxWx3 uint8 numpy RGB image, got {type(rgb).__name__}')
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected an HxWx3 uint8 RGB image, got shape {rgb.shape} '
                         f'dtype {rgb.dtype}')


def resize_rgb(rgb, size):
    """Resize HxWx3 uint8 to ``size`` (h, w): area when the height shrinks, else bilinear."""
    if size is None or tuple(rgb.shape[:2]) == tuple(size):
        return rgb
    interp = cv2.INTER_AREA if size[0] < rgb.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=interp)


def preprocess(rgb, mean, std, size=None):
    """
    Turn one RGB frame into network input: resize, then normalize.

    Arguments:
    ---------
      rgb (np.ndarray): HxWx3 uint8 RGB.
      mean, std (sequence): per-channel normalization (the model's ``mean`` / ``std``).
      size (tuple | None): (height, width) the network runs at; None keeps the frame's size.

    Returns
    -------
      (np.ndarray): 1x3xhxw float32, ``(rgb / 255 - mean) / std``.

    """
    check_rgb(rgb)
    rgb = resize_rgb(rgb, size)
    scale = 1.0 / (255.0 * np.asarray(std, np.float32))
    shift = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    x = rgb.astype(np.float32) * scale - shift
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def resize_labels(labels, size):
    """Resize HxW integer labels to ``size`` (h, w), nearest neighbour."""
    if size is None or tuple(labels.shape[:2]) == tuple(size):
        return labels
    return cv2.resize(labels, (int(size[1]), int(size[0])), interpolation=cv2.INTER_NEAREST)


def resize_masks(masks, size):
    """
    Resize masks to ``size`` (h, w), nearest (the same pixels as :func:`resize_labels`).

    ``masks`` are :class:`sam2real_ros.sam.mask_layers.MaskLayers` (resized layer by layer;
    masks keep their ids, one may become empty) or NxHxW bool. Pure indexing: no float or
    multi-channel copy of the masks is made.
    """
    if isinstance(masks, MaskLayers):
        h, w = masks.shape
    else:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f'masks must be NxHxW bool, got shape {masks.shape}')
        h, w = masks.shape[1:]
    if size is None or (h, w) == tuple(size):
        return masks
    rows = np.minimum((np.arange(int(size[0])) * h) // int(size[0]), h - 1)
    cols = np.minimum((np.arange(int(size[1])) * w) // int(size[1]), w - 1)
    if isinstance(masks, MaskLayers):
        return masks.take(rows, cols)
    return masks[:, rows][:, :, cols]


def resize_features(feat_hwd, size):
    """Resize HxWxD float32 features to ``size`` (h, w), bilinear, any number of channels."""
    if size is None or feat_hwd.shape[:2] == tuple(size):
        return np.ascontiguousarray(feat_hwd)
    parts = []
    for i in range(0, feat_hwd.shape[2], _CV_MAX_CHANNELS):
        out = cv2.resize(np.ascontiguousarray(feat_hwd[:, :, i:i + _CV_MAX_CHANNELS]),
                         (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
        parts.append(out[:, :, None] if out.ndim == 2 else out)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
