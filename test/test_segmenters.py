"""Segmenters: fast SAM path equals the library's generator; nested fallback; auto/sam choice."""
import numpy as np
import pytest
from sam2real_ros.sam.sam_fast import build_tiny_sam, FastAutomaticMaskGenerator
from sam2real_ros.sam.segmenters import (FelzenszwalbSegmenter, make_segmenter, SamSegmenter,
                                         SegmenterError)
from segment_anything import SamAutomaticMaskGenerator


def _image(h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 90, np.uint8)
    img[h // 6:h * 2 // 3, w // 4:w * 5 // 8] = (200, 40, 40)
    img[h // 2:h - 5, w * 5 // 8:w - 5] = (0, 90, 250)
    img[h // 5:h // 3, w // 3:w // 2] = (250, 250, 0)  # a part inside the red object
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


@pytest.fixture(scope='module')
def tiny_sam():
    # Random weights: logits are rescaled so masks pass the generator's filters (see sam_fast).
    return build_tiny_sam(seed=0, logit_scale=1000.0)


@pytest.mark.parametrize('settings', [
    {'pred_iou_thresh': 0.0, 'stability_score_thresh': 0.5, 'box_nms_thresh': 1.0},
    {'pred_iou_thresh': 0.03, 'stability_score_thresh': 0.6, 'box_nms_thresh': 1.0},
    {'pred_iou_thresh': 0.0, 'stability_score_thresh': 0.5, 'box_nms_thresh': 1.0,
     'min_mask_region_area': 30},
])
def test_fast_generator_equals_library(tiny_sam, settings):
    img = _image()
    kw = dict(points_per_side=4, points_per_batch=6, **settings)
    naive = SamAutomaticMaskGenerator(tiny_sam, **kw).generate(img)
    fast_gen = FastAutomaticMaskGenerator(tiny_sam, upsample_chunk=5, **kw)
    fast = fast_gen.generate(img)
    assert len(naive) >= 3, 'test settings must let masks survive'
    assert len(fast) == len(naive)
    for a, b in zip(naive, fast):
        assert _iou(a['segmentation'], b['segmentation']) >= 0.99
        assert a['bbox'] == b['bbox'] and a['area'] == b['area']
        assert b['predicted_iou'] == pytest.approx(a['predicted_iou'], abs=1e-6)
        assert b['stability_score'] == pytest.approx(a['stability_score'], abs=1e-6)
    assert {'encoder', 'decoder', 'postprocess', 'nms'} <= set(fast_gen.timings)


def test_sam_segmenter_output(tiny_sam):
    img = _image(48, 64)
    kw = {'points_per_side': 4, 'pred_iou_thresh': 0.0, 'stability_score_thresh': 0.5,
          'box_nms_thresh': 1.0}
    fast = SamSegmenter(tiny_sam, 'tiny', **kw)(img)
    naive = SamSegmenter(tiny_sam, 'tiny', fast=False, **kw)(img)
    n = len(naive.masks)
    assert n > 0 and fast.masks.shape == (n, 48, 64) and fast.masks.dtype == bool
    np.testing.assert_array_equal(fast.bboxes, naive.bboxes)
    np.testing.assert_allclose(fast.scores, naive.scores, atol=1e-6)
    with pytest.raises(SegmenterError, match='unknown SAM generator settings'):
        SamSegmenter(tiny_sam, 'tiny', points_per_sid=4)


def test_fallback_segments_nest_and_overlap():
    img = _image(120, 160)
    seg = FelzenszwalbSegmenter(scales=[20, 100, 400], min_area=20)
    levels = seg.label_levels(img)
    assert len(levels) == 3
    for fine, coarse in zip(levels, levels[1:]):
        # every fine segment lies inside exactly one coarse segment
        for lab in np.unique(fine):
            assert len(np.unique(coarse[fine == lab])) == 1
        assert len(np.unique(coarse)) <= len(np.unique(fine))
    out = seg(img)
    masks = out.masks
    assert masks.dtype == bool and masks.shape[1:] == (120, 160)
    assert (masks.sum((1, 2)) >= 20).all()
    assert out.scores.shape == (len(masks), 2) and out.bboxes.shape == (len(masks), 4)
    # overlapping: some pixels are covered by several segments, and some segment strictly
    # contains another one
    assert masks.sum(0).max() >= 2
    inter = masks.reshape(len(masks), -1).astype(np.int32)
    inter = inter @ inter.T
    areas = np.diag(inter)
    contains = (inter == areas[None, :]) & (areas[:, None] > areas[None, :])
    assert contains.any()
    # no duplicate masks
    assert len({m.tobytes() for m in masks}) == len(masks)


def test_make_segmenter_auto_falls_back_sam_refuses(tmp_path):
    missing = str(tmp_path / 'sam_vit_h_4b8939.pth')
    lines = []
    seg = make_segmenter('auto', 'vit_h', missing, log=lines.append)
    assert seg.name == 'felzenszwalb'
    assert len(lines) == 1 and missing in lines[0] and 'sam_vit_h_4b8939.pth' in lines[0]
    with pytest.raises(SegmenterError, match='SAM checkpoint not found: .*sam_vit_h_4b8939'):
        make_segmenter('sam', 'vit_h', missing)
    with pytest.raises(SegmenterError, match='segmenter must be'):
        make_segmenter('bogus')
    with pytest.raises(SegmenterError, match='bad fallback settings'):
        make_segmenter('fallback', fallback_settings={'scale': 3})
