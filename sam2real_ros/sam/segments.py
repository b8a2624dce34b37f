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
