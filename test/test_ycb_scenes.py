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


"""The YCB scene generator (data/ycb_scenes.py) on the real meshes and real YCB-Video frames."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from sam2real_ros.common.io_utils import read_depth
from sam2real_ros.data.datasets import build_labeled, DatasetError
from sam2real_ros.data.ycb_models import scaled_intrinsics, XTION_K
from sam2real_ros.data.ycb_render import main as render_main
from sam2real_ros.data.ycb_render import render_at_gt_poses, write_bop_frames
from sam2real_ros.data.ycb_scenes import frame_seed, YcbSceneConfig, YcbSceneRenderer
import torch

# The meshes and the real frames live in shared/ beside the checkout (CI lays a copy there).
SHARED = os.environ.get('SAM2REAL_SHARED_DATA') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    'shared', 'data')
MODELS = os.path.join(SHARED, 'ycb_models')
REAL = os.path.join(SHARED, 'ycbv_bop_train', 'train_real')
try:
    import pybullet  # noqa: F401
    HAVE_PYBULLET = True
except ImportError:
    HAVE_PYBULLET = False
needs_models = pytest.mark.skipif(
    not (os.path.isfile(os.path.join(MODELS, 'objects.json')) and HAVE_PYBULLET),
    reason=f'YCB meshes not found at {MODELS} (set SAM2REAL_SHARED_DATA) or pybullet missing')
needs_real = pytest.mark.skipif(not os.path.isdir(REAL),
                                reason=f'real YCB-Video frames not found at {REAL}')

SMALL = {'height': 120, 'width': 160}


@pytest.fixture(scope='module')
def renderer():
    r = YcbSceneRenderer(YcbSceneConfig(models=MODELS, **SMALL))
    yield r
    r.close()


def test_intrinsics_scale_with_the_image():
    k = scaled_intrinsics(240, 320)
    assert k[0, 0] == pytest.approx(XTION_K[0, 0] / 2) and k[1, 1] == pytest.approx(
        XTION_K[1, 1] / 2)
    # pixel centres map onto pixel centres: (313 + 0.5) / 2 - 0.5
    assert k[0, 2] == pytest.approx(156.25) and k[1, 2] == pytest.approx(120.4)
    assert np.allclose(scaled_intrinsics(480, 640), XTION_K)


def test_bad_configs_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match='objects'):
        YcbSceneConfig(models='x', objects=(5, 2))
    with pytest.raises(ValueError, match='distance'):
        YcbSceneConfig(models='x', distance=(1.0, 0.5))
    with pytest.raises(DatasetError, match='models folder not found'):
        build_labeled({'type': 'ycb_scenes', 'models': str(tmp_path / 'none')})
    with pytest.raises(DatasetError, match='objects.json'):
        build_labeled({'type': 'ycb_scenes', 'models': str(tmp_path)})


@needs_models
def test_a_broken_model_folder_is_named(tmp_path):
    shutil.copytree(MODELS, tmp_path / 'm', ignore=shutil.ignore_patterns('*.jpg', '*.obj'))
    with pytest.raises(DatasetError, match='002_master_chef_can/model.urdf: mesh file '
                                           '.textured.obj. not found'):
        build_labeled({'type': 'ycb_scenes', 'models': str(tmp_path / 'm')})


@needs_models
def test_bad_scene_fields_are_refused():
    with pytest.raises(DatasetError, match="unknown scene field.*'lamp'"):
        build_labeled({'type': 'ycb_scenes', 'models': MODELS, 'scene': {'lamp': 1}})
    with pytest.raises(DatasetError, match='object_ids'):
        build_labeled({'type': 'ycb_scenes', 'models': MODELS, 'scene': {'object_ids': [0, 22]}})


@needs_models
def test_frame_contents_agree(renderer):
    frame = renderer.render(3)
    h, w = SMALL['height'], SMALL['width']
    assert frame.rgb.shape == (h, w, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (h, w) and frame.depth.dtype == np.float32
    assert frame.label.dtype == np.uint8 and frame.instance.dtype == np.uint16
    assert np.allclose(frame.K, scaled_intrinsics(h, w))
    ids = [p.obj_id for p in frame.poses]
    assert 3 <= len(ids) <= 8 and len(set(ids)) == len(ids)
    assert set(np.unique(frame.label)) <= set(ids) | {0}
    for i, pose in enumerate(frame.poses):
        inst = frame.instance == i + 1
        assert (frame.label[inst] == pose.obj_id).all()
        assert np.allclose(pose.R @ pose.R.T, np.eye(3), atol=1e-6)
        assert 300 < pose.t[2] < 1500  # mm, in front of the camera
    assert (frame.label > 0).sum() > 0.02 * h * w
    objects = frame.instance > 0
    assert (frame.depth[objects] > 0.2).all() and (frame.depth[objects] < 2.0).all()


@needs_models
def test_a_subset_of_objects_smaller_than_a_scene():
    r = YcbSceneRenderer(YcbSceneConfig(models=MODELS, object_ids=(2, 5), **SMALL))
    frame = r.render(0)
    r.close()
    assert sorted(p.obj_id for p in frame.poses) == [2, 5]  # objects (3, 8): all there are
    assert set(np.unique(frame.label)) <= {0, 2, 5}


@needs_models
def test_same_seed_same_frame_other_seed_other_frame(renderer):
    a = renderer.render(11)
    renderer.render(12)  # another scene in between must not leak into the next one
    b = renderer.render(11)
    c = renderer.render(13)
    for name in ('rgb', 'depth', 'label', 'instance'):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert [p.obj_id for p in a.poses] == [p.obj_id for p in b.poses]
    assert all(np.array_equal(p.t, q.t) for p, q in zip(a.poses, b.poses))
    assert not np.array_equal(a.rgb, c.rgb)


@needs_models
def test_objects_rest_on_the_table_without_interpenetration(renderer):
    stacked = 0
    for seed in range(6):
        renderer.render(seed)
        state = renderer.physics_report()
        assert state['max_speed'] < 0.02, (seed, state)
        assert state['min_contact_distance'] > -0.002, (seed, state)
        assert state['lowest_z'] > 0.0, (seed, state)  # no object centre below the table top
        assert state['max_xy'] < 1.2, (seed, state)  # nothing rolled off the table
        stacked += state['object_contacts'] > 0
    assert stacked >= 3  # objects lean on and lie on each other


@needs_models
def test_returned_poses_reproduce_the_rendered_masks(renderer):
    frame = renderer.render(5)
    again = renderer.render_at_poses(frame.poses, frame.K, SMALL['height'], SMALL['width'])
    for i in range(len(frame.poses)):
        a, b = frame.instance == i + 1, again.instance == i + 1
        if a.sum() > 50:
            assert (a & b).sum() / (a | b).sum() > 0.97, frame.poses[i].obj_id


@needs_models
@needs_real
def test_gt_poses_reproduce_real_visible_masks():
    per_scene = {}
    for scene in sorted(os.listdir(REAL)):
        res = render_at_gt_poses(os.path.join(REAL, scene), MODELS, progress=False, every=4)
        assert res['frames'] == 5 and res['objects'] >= 15
        per_scene[scene] = res['mean_iou']
    assert len(per_scene) == 3
    assert np.mean(list(per_scene.values())) >= 0.9, per_scene
    assert min(per_scene.values()) >= 0.85, per_scene


@needs_models
@needs_real
def test_cli_at_gt_poses_writes_a_bop_scene_and_a_picture(tmp_path, capsys):
    scene = os.path.join(REAL, '000000')
    rc = render_main(['--models', MODELS, '--at-gt-poses', scene, '--out', str(tmp_path / 'o'),
                      '--preview', str(tmp_path / 'overlay.png'), '--no-progress'])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res['frames'] == 20 and res['mean_iou'] >= 0.9
    assert set(res['per_obj']) == {'8', '14', '21'}
    ds = build_labeled({'type': 'bop', 'root': str(tmp_path / 'o'), 'split': 'train_real'})
    assert len(ds) == 20
    real = build_labeled({'type': 'bop', 'root': os.path.dirname(REAL), 'split': 'train_real',
                          'scenes': ['000000']})
    a, b = ds[0]['labels'], real[0]['labels']
    assert ((a > 0) & (a == b)).sum() / ((a > 0) | (b > 0)).sum() >= 0.9
    picture = cv2.imread(str(tmp_path / 'overlay.png'))
    assert picture.shape == (240, 640, 3)  # real | overlay, at half scale


@needs_models
def test_bop_cache_loads_in_the_bop_loader(tmp_path):
    r = YcbSceneRenderer(YcbSceneConfig(models=MODELS, **SMALL))
    res = write_bop_frames(r, str(tmp_path), 3, seed=4, progress=False, keep=3)
    assert res['scenes'] == [str(tmp_path / 'train_synt' / '000000')]
    ds = build_labeled({'type': 'bop', 'root': str(tmp_path), 'split': 'train_synt'})
    assert len(ds) == 3 and ds.class_names == r.models.class_names
    for i, frame in enumerate(res['kept']):
        again = r.render(frame_seed(4, i))
        assert np.array_equal(again.rgb, frame.rgb)
        sample = ds[i]
        assert np.array_equal(sample['rgb'], frame.rgb)
        assert np.array_equal(sample['labels'], frame.label)
        depth = read_depth(os.path.join(res['scenes'][0], 'rgb', f'{i:06d}.png'))
        assert np.array_equal(depth, np.round(frame.depth * 1000).astype(np.uint16))
    with open(tmp_path / 'train_synt' / '000000' / 'scene_gt.json') as f:
        gt = json.load(f)
    pose = gt['0'][0]
    assert pose['obj_id'] == res['kept'][0].poses[0].obj_id
    assert np.allclose(pose['cam_t_m2c'], res['kept'][0].poses[0].t)
    r.close()


@needs_models
def test_cli_renders_frames_and_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / 'ycb'
    rc = render_main(['--models', MODELS, '--out', str(out), '--frames', '2', '--size', '96',
                      '128', '--seed', '3', '--preview', str(tmp_path / 'p.png'),
                      '--no-progress'])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res['frames'] == 2
    assert len(os.listdir(out / 'train_synt' / '000000' / 'rgb')) == 2
    assert cv2.imread(str(tmp_path / 'p.png')).shape == (77, 102, 3)  # 2 rows at 0.4 scale
    bad = [(['--models', str(tmp_path / 'nothing')], 'no objects.json'),
           (['--frames', '0'], '--frames must be >= 1'),
           (['--objects', '4', '2'], 'objects must be'),
           (['--at-gt-poses', str(tmp_path / 'noscene')], 'BOP scene folder not found')]
    for extra, message in bad:
        args = ['--models', MODELS, '--out', str(tmp_path / 'x'), '--no-progress'] + extra
        assert render_main(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


@needs_models
def test_dataset_renders_in_loader_workers_without_repeats():
    cfg = {'type': 'ycb_scenes', 'models': MODELS, 'size': [96, 128], 'length': 4,
           'objects': [2, 3], 'seed': 5}
    ds = build_labeled(cfg)
    assert ds.class_names[0] == 'background' and len(ds.class_names) == 22
    assert ds.class_names[1] == '002_master_chef_can'
    here = [ds[i] for i in range(4)]
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    there = list(loader)
    for a, b in zip(here, there):
        assert a['key'] == b['key']
        assert np.array_equal(a['rgb'], np.asarray(b['rgb']))
        assert np.array_equal(a['labels'], np.asarray(b['labels']))
        assert a['labels'].shape == (96, 128) and a['labels'].max() <= 21
    keys = {s['key'] for s in here}
    ds.set_epoch(1)
    keys_next = {ds[i]['key'] for i in range(4)}
    assert len(keys) == 4 and not keys & keys_next


@needs_models
def test_views_of_one_scene_share_its_objects_and_repeat():
    r = YcbSceneRenderer(YcbSceneConfig(models=MODELS, views=3, floor=1.0, **SMALL))
    try:
        a0, a1 = r.render(5, 0), r.render(5, 1)
        other = r.render(6, 0)
        again = r.render(5, 1)  # settled anew after scene 6: the same frame
        assert np.array_equal(again.rgb, a1.rgb) and np.array_equal(again.label, a1.label)
        assert [p.obj_id for p in a0.poses] == [p.obj_id for p in a1.poses]
        assert not np.array_equal(a0.rgb, a1.rgb)  # another camera, light, table
        assert [p.obj_id for p in other.poses] != [p.obj_id for p in a0.poses]
        with pytest.raises(DatasetError, match='view 3 out of range'):
            r.render(5, 3)
    finally:
        r.close()
    with pytest.raises(ValueError, match='views'):
        YcbSceneConfig(models=MODELS, views=0)


@needs_models
def test_bop_cache_is_the_same_with_views_rendered_in_parallel(tmp_path):
    r = YcbSceneRenderer(YcbSceneConfig(models=MODELS, views=2, **SMALL))
    serial = write_bop_frames(r, str(tmp_path / 'a'), 5, seed=1, progress=False, keep=5)
    parallel = write_bop_frames(r, str(tmp_path / 'b'), 5, seed=1, progress=False, keep=5,
                                jobs=2)
    r.close()
    for a, b in zip(serial['kept'], parallel['kept']):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.label, b.label)
    ids = [sorted(p.obj_id for p in f.poses) for f in serial['kept']]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    for name in ('scene_gt.json', 'rgb/000004.png'):
        with open(tmp_path / 'a' / 'train_synt' / '000000' / name, 'rb') as fa, \
                open(tmp_path / 'b' / 'train_synt' / '000000' / name, 'rb') as fb:
            assert fa.read() == fb.read()
