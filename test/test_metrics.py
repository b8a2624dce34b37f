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

"""mIoU (Eq. 7-8) on hand-computed examples."""
import math

import numpy as np
import pytest

from sam2real_ros.training.metrics import frame_ious, mean_iou, MeanIoU


def test_frame_ious_hand_example():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 1],
                     [2, 2, 0, 3]])
    # class 0: P={00,10,11,22} G={00,01,10,11} -> inter 3, union 5
    # class 1: P={01,02,03,12,13} G={02,03,12,13} -> inter 4, union 5
    # class 2: P={20,21} G={20..23} -> 2/4; class 3 predicted but absent -> no term
    assert frame_ious(pred, gt) == {0: pytest.approx(3 / 5), 1: pytest.approx(4 / 5),
                                    2: pytest.approx(2 / 4)}
    assert frame_ious(pred, gt, include_background=False) == {1: pytest.approx(0.8),
                                                              2: pytest.approx(0.5)}


def test_mean_over_frames_not_over_pixels():
    gt1 = np.array([[1, 1], [1, 1]])
    pred1 = gt1.copy()                       # frame mean 1.0
    gt2 = np.array([[0, 2], [2, 2]])
    pred2 = np.array([[0, 0], [2, 2]])       # class 0: 1/2, class 2: 2/3 -> 7/12
    got = mean_iou([pred1, pred2], [gt1, gt2])
    assert got == pytest.approx((1.0 + 7 / 12) / 2)
    no_bg = mean_iou([pred1, pred2], [gt1, gt2], include_background=False)
    assert no_bg == pytest.approx((1.0 + 2 / 3) / 2)


def test_ignore_pixels_and_empty_frames():
    gt = np.array([[255, 1], [0, 0]])
    pred = np.array([[1, 0], [0, 0]])        # the ignored pixel's prediction does not count
    assert frame_ious(pred, gt) == {0: pytest.approx(2 / 3), 1: 0.0}
    acc = MeanIoU(include_background=False)
    assert acc.update(np.zeros((2, 2)), np.zeros((2, 2))) is None   # C_I empty -> skipped
    assert acc.update(np.ones((2, 2)), np.full((2, 2), 255)) is None
    assert acc.skipped_frames == 2 and acc.frames == 0 and math.isnan(acc.compute())
    acc.update(pred, gt)
    s = acc.summary()
    assert s['miou'] == 0.0 and s['frames'] == 1 and s['skipped_frames'] == 2


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match='shape'):
        frame_ious(np.zeros((2, 3)), np.zeros((3, 2)))
