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

"""Segmenters: fast SAM path equals the library's generator; the fallback; auto/sam choice."""
import os

import numpy as np
import pytest
from sam2real_ros.sam.sam_fast import build_tiny_sam, FastAutomaticMaskGenerator
from sam2real_ros.sam.segmenters import (FallbackSegmenter, make_segmenter, SamOptions,
                                         SamSegmenter, SegmenterError)
from segment_anything import SamAutomaticMaskGenerator

YCBV = os.environ.get('SAM2REAL_YCBV_SAMPLE') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    'shared', 'data', 'ycbv_bop_sample')
needs_ycbv = pytest.mark.skipif(not os.path.isdir(os.path.join(YCBV, 'train_real')),
                                reason=f'YCB-V BOP sample not found at {YCBV}')


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
    fast_gen = FastAutomaticMaskGenerator(tiny_sam, SamOptions(backend='torch', upsample_chunk=5,
                                                               generator=kw))
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
    opt = SamOptions(model_type='tiny', backend='torch', generator=kw)
    seg = SamSegmenter(tiny_sam, opt)
    assert seg.name == 'sam:tiny' and seg.settings['backend'] == 'torch'
    fast = seg(img)
    naive = SamSegmenter(tiny_sam, opt.with_changes(fast=False))(img)
    n = len(naive.masks)
    assert n > 0 and fast.masks.shape == (n, 48, 64) and fast.masks.dtype == bool
    np.testing.assert_array_equal(fast.bboxes, naive.bboxes)
    np.testing.assert_allclose(fast.scores, naive.scores, atol=1e-6)
    with pytest.raises(SegmenterError, match='unknown SAM generator settings'):
        make_segmenter('sam', {'generator': {'points_per_sid': 4}})


def rgbd_scene(h=480, w=640, seed=0):
    """
    Draw a tabletop RGB-D frame with known objects (sizes relative to the image).

    The table is a plane (inverse depth linear in the row, 1.2 m at the top, 0.6 m at the
    bottom); boxes stand on it with a vertical front face at the table depth of their bottom
    row. ``a`` and ``b`` touch side by side at the same depth (only colour tells them apart);
    ``d`` stands on ``c``, set back by 4 % of its depth. Returns rgb, depth (uint16 mm) and a
    dict of ground-truth masks (also ``cd``, the stack).
    """
    rng = np.random.default_rng(seed)
    vv, uu = np.mgrid[0:h, 0:w]
    table_z = 1.0 / ((0.6 + 0.6 * vv / (h - 1)) / 0.72)
    z = table_z.copy()
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = (150, 150, 140)

    def box(x0, x1, y0, y1, colour, z_face):
        m = (uu >= x0 * w) & (uu < x1 * w) & (vv >= y0 * h) & (vv < y1 * h)
        z[m] = z_face
        rgb[m] = colour
        return m

    def bottom_z(y1):
        return table_z[min(h - 1, int(y1 * h) - 1), 0]

    gt = {}
    gt['a'] = box(0.10, 0.30, 0.35, 0.75, (200, 40, 40), bottom_z(0.75))
    gt['b'] = box(0.30, 0.45, 0.45, 0.75, (40, 60, 200), bottom_z(0.75))
    zc = bottom_z(0.85)
    gt['c'] = box(0.60, 0.85, 0.60, 0.85, (40, 170, 60), zc)
    gt['d'] = box(0.63, 0.82, 0.35, 0.60, (220, 200, 40), zc * 1.04)
    gt['cd'] = gt['c'] | gt['d']
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    depth = np.round(z * 1000 + rng.normal(0, 1, z.shape)).astype(np.uint16)
    return rgb, depth, gt


def _best(masks, gt):
    return max((_iou(m, gt) for m in masks), default=0.0)


@pytest.mark.parametrize('h,w', [(480, 640), (96, 128)])
def test_fallback_finds_objects_parts_and_stacks_with_depth_at_any_size(h, w):
    rgb, depth, gt = rgbd_scene(h, w)
    seg = FallbackSegmenter()
    out = seg(rgb, depth)
    masks = out.masks
    assert masks.dtype == bool and masks.shape[1:] == (h, w)
    assert out.timings['depth_used'] == 1.0 and out.timings['plane_fraction'] > 0.5
    # whole objects, the two touching ones apart (colour), the stack whole and split (depth);
    # at 96x128 a box is ~25x30 px and a 1-2 px border costs more IoU
    for name in ('a', 'b', 'c', 'd', 'cd'):
        assert _best(masks, gt[name]) >= (0.9 if h >= 480 else 0.8), name
    # SAM-like: few segments, none below the minimum relative area, no duplicates
    assert len(masks) <= 60
    assert masks.sum((1, 2)).min() >= seg.settings['min_area_fraction'] * h * w
    assert len({m.tobytes() for m in masks}) == len(masks)
    assert out.scores.shape == (len(masks), 2) and out.bboxes.shape == (len(masks), 4)
    # deterministic
    again = seg(rgb, depth).masks
    assert again.shape == masks.shape and (again == masks).all()


def test_fallback_scales_with_the_image_size():
    big = FallbackSegmenter()(*rgbd_scene(480, 640)[:2]).masks
    small = FallbackSegmenter()(*rgbd_scene(96, 128)[:2]).masks
    assert 0.5 <= len(small) / len(big) <= 2.0
    # every large segment at full size has its counterpart at 96x128
    down = big[:, ::5, ::5]
    for m in down[down.sum((1, 2)) >= 0.02 * 96 * 128]:
        assert _best(small, m) >= 0.7


def test_fallback_drops_small_segments_and_caps_the_count():
    rgb, depth, gt = rgbd_scene(240, 320)
    tiny = np.zeros(depth.shape, bool)
    tiny[20:26, 20:26] = True  # 36 px < 0.001 * 240 * 320 = 76.8 px
    rgb[tiny] = (255, 0, 255)
    depth[tiny] = (depth[tiny] * 0.8).astype(np.uint16)
    masks = FallbackSegmenter()(rgb, depth).masks
    assert _best(masks, tiny) < 0.5
    assert len(FallbackSegmenter(max_segments=5)(rgb, depth).masks) == 5
    # whole objects come first when the cap bites
    capped = FallbackSegmenter(max_segments=5)(rgb, depth).masks
    assert _best(capped, gt['a'] | gt['b']) >= 0.9 or _best(capped, gt['a']) >= 0.9


def test_fallback_without_depth_or_with_unusable_depth_uses_colour():
    rgb, depth, gt = rgbd_scene(120, 160)
    seg = FallbackSegmenter()
    out = seg(rgb)
    assert out.timings['depth_used'] == 0.0
    for name in ('a', 'b', 'c', 'd'):
        assert _best(out.masks, gt[name]) >= 0.8, name
    empty = seg(rgb, np.zeros_like(depth))  # no valid depth: same as none
    assert empty.timings['depth_used'] == 0.0
    assert empty.masks.shape == out.masks.shape and (empty.masks == out.masks).all()
    with pytest.raises(ValueError, match='depth 80x60 does not match the image 160x120'):
        seg(rgb, depth[:60, :80])


def test_fallback_colour_levels_nest_and_segments_overlap():
    img = _image(120, 160)
    seg = FallbackSegmenter()
    levels = seg.colour_levels(img)
    assert len(levels) == len(seg.settings['scales'])
    for fine, coarse in zip(levels, levels[1:]):
        # every fine segment lies inside exactly one coarse segment
        for lab in np.unique(fine):
            assert len(np.unique(coarse[fine == lab])) == 1
        assert len(np.unique(coarse)) <= len(np.unique(fine))
    masks = seg(img).masks
    assert masks.sum(0).max() >= 2
    inter = masks.reshape(len(masks), -1).astype(np.int32)
    inter = inter @ inter.T
    areas = np.diag(inter)
    contains = (inter == areas[None, :]) & (areas[:, None] > areas[None, :])
    assert contains.any()
    with pytest.raises(ValueError, match='jump_thresholds'):
        FallbackSegmenter(jump_thresholds=[-1.0])
    with pytest.raises(TypeError, match='unknown fallback setting'):
        FallbackSegmenter(scale=3)


@needs_ycbv
@pytest.mark.parametrize('h,w', [(480, 640), (96, 128)])
def test_fallback_on_real_rgbd_frames(h, w):
    """
    Two real YCB-Video frames: every object has a segment with IoU > 0.75 using depth.

    At 96x128 (the frames resized) the same default settings must behave the same way: a
    similar number of segments, every object still found.
    """
    import json
    import os

    import cv2
    from sam2real_ros.common.io_utils import read_image_unchanged, read_rgb
    scene = os.path.join(YCBV, 'train_real', '000001')
    with open(os.path.join(scene, 'scene_camera.json')) as f:
        cams = json.load(f)
    seg = FallbackSegmenter()
    for im in (1, 20):
        rgb = read_rgb(os.path.join(scene, 'rgb', f'{im:06d}.png'))
        depth = read_image_unchanged(os.path.join(scene, 'depth', f'{im:06d}.png'))
        depth = (depth * cams[str(im)]['depth_scale']).astype(np.uint16)
        objects = [read_image_unchanged(os.path.join(scene, 'mask_visib',
                                                     f'{im:06d}_{k:06d}.png')) > 0
                   for k in range(4)]
        if rgb.shape[:2] != (h, w):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
            objects = [cv2.resize(o.astype(np.uint8), (w, h),
                                  interpolation=cv2.INTER_NEAREST) > 0 for o in objects]
        out = seg(rgb, depth)
        assert out.timings['depth_used'] == 1.0
        assert 40 <= len(out.masks) <= 200
        assert out.masks.sum((1, 2)).min() >= seg.settings['min_area_fraction'] * h * w
        for obj in objects:
            assert _best(out.masks, obj) > 0.75


def test_make_segmenter_auto_falls_back_sam_refuses(tmp_path):
    missing = str(tmp_path / 'sam_vit_h_4b8939.pth')
    lines = []
    seg = make_segmenter('auto', SamOptions(checkpoint=missing), log=lines.append)
    assert seg.name == 'fallback' and seg.accepts_depth
    assert len(lines) == 1 and missing in lines[0] and 'sam_vit_h_4b8939.pth' in lines[0]
    with pytest.raises(SegmenterError, match='SAM checkpoint not found: .*sam_vit_h_4b8939'):
        make_segmenter('sam', {'model_type': 'vit_h', 'checkpoint': missing})
    with pytest.raises(SegmenterError, match='bad SAM options.*backend must be one of'):
        make_segmenter('sam', {'backend': 'tensorrt'})
    with pytest.raises(SegmenterError, match='segmenter must be'):
        make_segmenter('bogus')
    with pytest.raises(SegmenterError, match='bad fallback settings'):
        make_segmenter('fallback', fallback_settings={'scale': 3})


def test_leave_one_scene_out_never_tunes_on_the_held_out_scene():
    import json

    from benchmarks import segmenter as bench
    frames = bench.procedural_frames(4, (72, 96))
    for i, f in enumerate(frames):  # two "scenes" of two frames each
        f['key'] = f'train/{"ab"[i // 2]}/rgb/{i:06d}.png'
    res = bench.leave_one_scene_out(frames, n_search=3, seed=0, tune_every=1, max_segments=150,
                                    log=lambda *a: None)
    assert sorted(res['scenes']) == ['a', 'b'] and len(res['search']) == 3
    assert res['search'][0]['settings'] == {'max_segments': 150}  # the defaults come first
    for held, other in (('a', 'b'), ('b', 'a')):
        r = res['scenes'][held]
        assert r['tuned_on'] == [other] and r['frames'] == 2
        best = max(c['scores'][other]['mean_best_iou'] for c in res['search'])
        assert r['tuning_mean_best_iou'] == round(best, 4)
    json.dumps(res)  # the benchmark's last line
