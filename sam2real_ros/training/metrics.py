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
Mean intersection over union exactly as Eq. 7-8 of the paper (per frame, then over frames).

Eq. 7: ``IoU_c(I) = |P_c(I) & G_c(I)| / |P_c(I) | G_c(I)|``; Eq. 8: the mean over frames of the
mean of ``IoU_c(I)`` over ``C_I``, the classes present in the frame's ground truth.

Conventions:

* ``C_I`` is the set of classes with at least one ground-truth pixel in the frame. Background
  (class 0) is a class of the label map; ``include_background=True`` (default, the literal reading
  of Eq. 8) keeps it in ``C_I`` when present, ``include_background=False`` drops it from ``C_I``
  (background pixels still count: an object predicted on background enlarges that object's
  union).
* Pixels whose ground truth is ``ignore_index`` (255) are left out of both P and G.
* A class predicted but absent from the ground truth adds no term (it is not in ``C_I``) but its
  pixels lower the IoU of the classes they were taken from.
* A frame with an empty ``C_I`` (e.g. background-only with ``include_background=False``, or all
  pixels ignored) has no defined term: it is skipped and counted in ``skipped_frames``.
"""
import numpy as np
from sam2real_ros.common.labels import IGNORE_INDEX


def frame_ious(pred, gt, include_background=True, background=0, ignore_index=IGNORE_INDEX):
    """
    Per-class IoU (Eq. 7) of one frame over the classes present in its ground truth.

    Arguments:
    ---------
      pred (np.ndarray): HxW integer predicted labels.
      gt (np.ndarray): HxW integer ground-truth labels (``ignore_index`` pixels are skipped).
      include_background (bool): whether ``background`` belongs to ``C_I`` when present.
      background (int): the background class id.
      ignore_index (int): ground-truth value of unlabeled pixels.

    Returns
    -------
      dict: ``{class_id: IoU}`` for ``c in C_I`` (empty dict when ``C_I`` is empty).

    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'prediction shape {pred.shape} != ground truth shape {gt.shape}')
    valid = gt != ignore_index
    p = pred[valid].astype(np.int64)
    g = gt[valid].astype(np.int64)
    classes = np.unique(g)
    if not include_background:
        classes = classes[classes != background]
    out = {}
    for c in classes.tolist():
        pc, gc = p == c, g == c
        out[int(c)] = float(np.count_nonzero(pc & gc) / np.count_nonzero(pc | gc))
    return out


class MeanIoU:
    """
    Accumulates Eq. 8 over frames.

    Arguments:
    ---------
      include_background (bool): see the module docstring.
      background (int): background class id.
      ignore_index (int): ground-truth value of unlabeled pixels.

    """

    def __init__(self, include_background=True, background=0, ignore_index=IGNORE_INDEX):
        self.include_background = include_background
        self.background = background
        self.ignore_index = ignore_index
        self.frame_scores = []
        self.skipped_frames = 0
        self.class_sums = {}
        self.class_counts = {}

    def update(self, pred, gt):
        """Add one frame (HxW integer arrays); returns its mean IoU or None if skipped."""
        ious = frame_ious(pred, gt, self.include_background, self.background, self.ignore_index)
        if not ious:
            self.skipped_frames += 1
            return None
        score = float(np.mean(list(ious.values())))
        self.frame_scores.append(score)
        for c, v in ious.items():
            self.class_sums[c] = self.class_sums.get(c, 0.0) + v
            self.class_counts[c] = self.class_counts.get(c, 0) + 1
        return score

    @property
    def frames(self):
        """Return the number of frames that contributed a term."""
        return len(self.frame_scores)

    def compute(self):
        """Eq. 8: mean over counted frames of the per-frame mean IoU (NaN when no frame)."""
        return float(np.mean(self.frame_scores)) if self.frame_scores else float('nan')

    def per_class(self):
        """Mean IoU of each class over the frames where it is present (diagnostic only)."""
        return {c: self.class_sums[c] / self.class_counts[c] for c in sorted(self.class_sums)}

    def summary(self):
        """JSON-ready dict: ``miou``, ``frames``, ``skipped_frames``, ``per_class``."""
        return {'miou': self.compute(), 'frames': self.frames,
                'skipped_frames': self.skipped_frames, 'include_background':
                self.include_background,
                'per_class': {str(c): v for c, v in self.per_class().items()}}


def mean_iou(preds, gts, include_background=True, background=0, ignore_index=IGNORE_INDEX):
    """Eq. 8 over paired sequences of HxW prediction and ground-truth label maps."""
    acc = MeanIoU(include_background, background, ignore_index)
    for p, g in zip(preds, gts):
        acc.update(p, g)
    return acc.compute()
