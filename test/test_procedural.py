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

"""Procedural tabletop renderer: determinism, label consistency, domain-gap presets."""
import cv2
import numpy as np
import pytest

from sam2real_ros.data import procedural
from sam2real_ros.data import tabletop
from sam2real_ros.data.procedural import CLASS_NAMES, get_appearance, TabletopRenderer

SIZE = (120, 160)


def test_same_seed_same_frame_other_seed_other_frame():
    r = TabletopRenderer('real', size=SIZE)
    a, b, c = r.render(3), r.render(3), r.render(4)
    for k in ('rgb', 'labels', 'instances'):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a['rgb'], c['rgb'])


def test_output_types_and_label_instance_consistency():
    r = TabletopRenderer('synthetic', size=(240, 320))
    seen = set()
    for seed in range(8):
        out = r.render(seed)
        rgb, labels, inst = out['rgb'], out['labels'], out['instances']
        assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
        assert labels.shape == (240, 320) and labels.dtype == np.uint8
        assert inst.dtype == np.int32
        assert labels.max() < len(CLASS_NAMES)
        # Every instance pixel carries its instance's class; background has no instance.
        cls = np.concatenate([[0], out['instance_classes']])
        np.testing.assert_array_equal(labels, cls[inst])
        assert np.all(cls[1:] > 0)
        seen.update(np.unique(labels).tolist())
    assert seen == set(range(len(CLASS_NAMES)))  # every class appears in a few scenes


def test_objects_occlude_each_other():
    """Visible areas never exceed the silhouettes, and some objects are partly covered."""
    r = TabletopRenderer('synthetic', size=(240, 320))
    partly = 0
    for seed in range(6):
        out = r.render(seed)
        inst = out['instances']
        visible = np.bincount(inst.ravel(), minlength=len(out['full_areas']) + 1)[1:]
        assert np.all(visible <= out['full_areas'])
        assert np.count_nonzero(visible) >= 2
        partly += int(np.sum(visible < 0.9 * out['full_areas']))
    assert partly >= 3


def _stats(preset, n=6):
    r = TabletopRenderer(preset, size=(240, 320))
    frames = [r.render(s) for s in range(n)]
    obj = [f['rgb'][f['labels'] > 0].astype(np.float32) for f in frames]
    gray = [cv2.cvtColor(f['rgb'], cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
    lap = [np.abs(cv2.Laplacian(g, cv2.CV_32F)) for g in gray]
    hsv = [cv2.cvtColor(f['rgb'], cv2.COLOR_RGB2HSV)[f['labels'] > 0] for f in frames]
    return {
        # typical high-frequency energy on the table (the median ignores object edges)
        'table_hf': float(np.mean([np.median(q[f['labels'] == 0]) for q, f in zip(lap, frames)])),
        'lap': float(np.mean([q.mean() for q in lap])),
        'obj_sat': float(np.mean([h[:, 1].mean() for h in hsv])),
        'obj_std': float(np.mean([np.std(o, axis=0).mean() for o in obj])),
    }


def test_presets_differ_in_appearance_statistics():
    syn, real, wide = _stats('synthetic'), _stats('real'), _stats('synthetic_wide_gap')
    # The robot camera has noise and a textured table; the simulator is clean.
    assert real['table_hf'] > 2 * syn['table_hf'] + 1
    # Palette desaturated in "real".
    assert real['obj_sat'] < syn['obj_sat']
    # The wide-gap render is flat: far less shading/texture variation inside objects.
    assert wide['obj_std'] < 0.8 * syn['obj_std']
    assert wide['lap'] < syn['lap'] < real['lap']


def test_appearance_config_and_errors():
    app = get_appearance({'preset': 'real', 'noise_std': 0.0, 'white_balance': [1, 1, 1]})
    assert app.noise_std == 0.0 and app.blur_sigma == procedural.PRESETS['real'].blur_sigma
    with pytest.raises(ValueError, match='unknown appearance preset'):
        get_appearance('photoreal')
    with pytest.raises(ValueError, match='nosie_std'):
        get_appearance({'nosie_std': 1})
    with pytest.raises(ValueError, match='jpeg_quality'):
        get_appearance({'jpeg_quality': 101})
    with pytest.raises(ValueError, match='size'):
        TabletopRenderer(size=(10, 10))


@pytest.mark.parametrize('appearance,seed', [('synthetic', 106), ('synthetic', 223),
                                             ('real', 105), ('real', 230)])
def test_object_filling_its_bounding_box_is_shaded_not_black(appearance, seed):
    """These seeds draw a box that fills its bounding box (no border pixel inside it)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)  # was: overflow, then NaN cast to 0
        out = TabletopRenderer(appearance=appearance, size=(96, 128)).render(seed)
    inst, filled = out['instances'], []
    for i in range(1, int(inst.max()) + 1):
        ys, xs = np.nonzero(inst == i)
        if len(ys) and (np.ptp(ys) + 1) * (np.ptp(xs) + 1) == len(ys):
            filled.append(i)
    assert filled, 'the seed no longer renders an object that fills its box'
    for i in filled:
        assert out['rgb'][inst == i].mean() > 40  # the black rectangle had mean 0-20


@pytest.mark.parametrize('preset', ['synthetic', 'real'])
def test_registered_depth_table_plane_and_objects_on_it(preset):
    h, w = SIZE
    rows = np.arange(h)[:, None]
    for seed in range(4):
        out = TabletopRenderer(preset, size=SIZE).render(seed)
        depth, inst = out['depth'], out['instances']
        assert depth.shape == (h, w) and depth.dtype == np.uint16
        z = depth.astype(np.float64) / 1000.0
        valid = depth > 0
        if preset == 'synthetic':
            assert valid.all()  # exact depth; 'real' has noise and shadow holes
            # the table (below the wall at 1.2 m) is a plane: inverse depth linear in the row
            for col in range(0, w, 7):
                sel = (inst[:, col] == 0) & (z[:, col] < tabletop.TABLE_FAR_M - 0.01)
                if sel.sum() > 10:
                    r, inv = np.nonzero(sel)[0], 1.0 / z[sel, col]
                    fit = np.polyval(np.polyfit(r, inv, 1), r)
                    assert np.abs(fit - inv).max() < 0.005 * inv.max()
        assert 0.55 < np.median(z[valid]) < 1.25
        # the upper half of every object is nearer than the table rows beside its top
        for k in range(1, int(inst.max()) + 1):
            m = (inst == k) & valid
            if m.sum() < 50:
                continue
            ys = np.nonzero(m.any(1))[0]
            top = m & (rows < (ys[0] + ys[-1]) // 2)
            beside = (inst == 0) & valid & (np.abs(rows - ys[0]) < 3)
            if beside.any() and top.any():
                assert np.median(z[top]) < np.median(z[beside])
