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
What a segmenter returns for one image: :class:`Segments`.

Its own module so that every segmenter (:mod:`sam2real_ros.sam.segmenters`,
:mod:`sam2real_ros.sam.fallback`) can build it without importing another segmenter.
"""
from dataclasses import dataclass

import numpy as np


@dataclass
class Segments:
    """
    Output of a segmenter for one image.

    Attributes
    ----------
      masks (np.ndarray): NxHxW bool, overlapping allowed.
      scores (np.ndarray): Nx2 float32 (predicted_iou, stability_score); 1.0 for the fallback.
      bboxes (np.ndarray): Nx4 int32 XYWH (SAM convention: inclusive corners, w = x1 - x0).
      timings (dict): seconds per stage.

    """

    masks: np.ndarray
    scores: np.ndarray
    bboxes: np.ndarray
    timings: dict
