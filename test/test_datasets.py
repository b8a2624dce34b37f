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

"""Dataset layer: BOP on the real YCB-V sample, procedural, image folders, episodes, rosbags."""
import json
import os
import shutil

from conftest import write_labeled_folder
import cv2
import numpy as np
import pytest

from sam2real_ros.common.io_utils import atomic_write_png, read_rgb
from sam2real_ros.data.base import Augment
from sam2real_ros.data.datasets import build_labeled, build_unlabeled, DatasetError
from sam2real_ros.data.labeled_folder import folder_spec
from sam2real_ros.data.procedural import oracle_segments, TabletopRenderer
from sam2real_ros.data.rosbag import extract_bag_frames
from sam2real_ros.sam.mask_store import MaskStore

# The real YCB-Video sample lives in shared/ beside the checkout (CI lays a copy there too).
YCBV = os.environ.get('SAM2REAL_YCBV_SAMPLE') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    'shared', 'data', 'ycbv_bop_sample')
SCENE = os.path.join(YCBV, 'train_real', '000001')
needs_ycbv = pytest.mark.skipif(
    not os.path.isdir(SCENE),
    reason=f'YCB-V BOP sample not found at {YCBV} (set SAM2REAL_YCBV_SAMPLE)')


def _bop_copy(tmp_path, scenes=('000001',), frames=3):
    """Copy the first ``frames`` images of the sample (no depth) into ``tmp_path/train_real``."""
    with open(os.path.join(SCENE, 'scene_gt.json')) as f:
        gt = json.load(f)
    keep = sorted(gt, key=int)[:frames]
    for name in scenes:
        dst = tmp_path / 'train_real' / name
        (dst / 'rgb').mkdir(parents=True)
        (dst / 'mask_visib').mkdir()
        for im in keep:
            shutil.copy(os.path.join(SCENE, 'rgb', f'{int(im):06d}.png'), dst / 'rgb')
            for g in range(len(gt[im])):
                shutil.copy(os.path.join(SCENE, 'mask_visib', f'{int(im):06d}_{g:06d}.png'),
                            dst / 'mask_visib')
        (dst / 'scene_gt.json').write_text(json.dumps({im: gt[im] for im in keep}))
    shutil.copy(os.path.join(YCBV, 'classes.txt'), tmp_path / 'classes.txt')
    return gt


@needs_ycbv
def test_bop_labels_match_visible_masks_on_real_sample():
    ds = build_labeled({'type': 'bop', 'root': YCBV, 'split': 'train_real'})
    assert len(ds) == 20
    assert ds.class_names[1] == '002_master_chef_can' and ds.class_names[5] == '006_mustard_bottle'
    with open(os.path.join(SCENE, 'scene_gt.json')) as f:
        gt = json.load(f)
    for i in (0, 19):
        s = ds[i]
        im_id = int(s['key'].split('/')[-1].split('.')[0])
        assert s['key'] == f'train_real/000001/rgb/{im_id:06d}.png'
        assert s['rgb'].shape == (480, 640, 3) and s['labels'].dtype == np.uint8
        expected = np.zeros((480, 640), np.uint8)
        for g, obj in enumerate(gt[str(im_id)]):
            m = cv2.imread(os.path.join(SCENE, 'mask_visib', f'{im_id:06d}_{g:06d}.png'), 0)
            expected[m > 0] = obj['obj_id']
        np.testing.assert_array_equal(s['labels'], expected)
        assert set(np.unique(s['labels'])) <= {0, 1, 2, 3, 5}
        assert (s['labels'] > 0).sum() > 10000


@needs_ycbv
def test_bop_class_mapping_and_unknown_obj_id(tmp_path):
    _bop_copy(tmp_path, frames=2)
    cfg = {'type': 'bop', 'root': str(tmp_path), 'split': 'train_real',
           'classes': ['can', 'box'], 'obj_to_class': {1: 'can', 2: 'box', 3: 2, 5: None}}
    ds = build_labeled(cfg)
    ref = build_labeled({'type': 'bop', 'root': str(tmp_path), 'split': 'train_real'})
    a, b = ds[0]['labels'], ref[0]['labels']
    assert ds.class_names == ['background', 'can', 'box']
    np.testing.assert_array_equal(a[b == 1], 1)
    np.testing.assert_array_equal(a[(b == 2) | (b == 3)], 2)
    np.testing.assert_array_equal(a[b == 5], 0)   # dropped object -> background
    assert (b == 5).any()
    # A mapping file works like the dict.
    (tmp_path / 'map.yaml').write_text('1: can\n2: box\n3: box\n5: null\n')
    np.testing.assert_array_equal(build_labeled(dict(cfg, obj_to_class=str(
        tmp_path / 'map.yaml')))[0]['labels'], a)
    # obj_id 5 missing from the mapping: an error naming the obj_id and the file.
    bad = dict(cfg, obj_to_class={1: 'can', 2: 'box', 3: 'box'})
    with pytest.raises(DatasetError, match=r'scene_gt\.json.*unknown obj_id 5'):
        build_labeled(bad)[0]
    ok = build_labeled(dict(bad, unknown_obj='background'))[0]['labels']
    np.testing.assert_array_equal(ok, a)
    with pytest.raises(DatasetError, match="unknown class 'bowl'"):
        build_labeled(dict(cfg, obj_to_class={1: 'bowl'}))


@needs_ycbv
def test_bop_broken_inputs_raise_or_skip(tmp_path):
    _bop_copy(tmp_path, scenes=('000001', '000002'), frames=3)
    root = str(tmp_path)
    mask = tmp_path / 'train_real/000001/mask_visib/000002_000000.png'
    small = cv2.resize(cv2.imread(str(mask), 0), (320, 240), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(mask), small)
    (tmp_path / 'train_real/000002/rgb/000003.png').write_bytes(b'not a png')
    cfg = {'type': 'bop', 'root': root, 'split': 'train_real'}
    ds = build_labeled(cfg)
    with pytest.raises(DatasetError, match=r'000002_000000\.png: mask size 320x240 differs'):
        ds[1]
    with pytest.raises(DatasetError, match=r'000002/rgb/000003\.png'):
        ds[5]
    skip = build_labeled(dict(cfg, on_error='skip'))
    keys = [skip[i]['key'] for i in range(len(skip))]
    assert sum(skip.skipped.values()) == 2
    assert 'train_real/000001/rgb/000002.png' not in keys
    # A broken scene_gt.json: one line naming the file and where the JSON breaks.
    gt_file = tmp_path / 'train_real/000002/scene_gt.json'
    gt_file.write_text('{"0": [{"obj_id": 1}],')
    with pytest.raises(DatasetError, match=r'BOP annotation file .*000002/scene_gt\.json: '
                                           r'not valid JSON \(.*line 1'):
        build_labeled(cfg)
    # A scene without scene_gt.json: named in the error, or skipped and counted.
    os.unlink(gt_file)
    with pytest.raises(DatasetError, match=r'000002/scene_gt\.json'):
        build_labeled(cfg)
    part = build_labeled(dict(cfg, on_error='skip'))
    assert len(part) == 3 and part.skipped['scene'] == 1
    with pytest.raises(DatasetError, match='split folder not found'):
        build_labeled(dict(cfg, split='train_pbr'))


def test_procedural_labeled_is_deterministic_and_fresh_per_epoch():
    cfg = {'type': 'procedural', 'seed': 5, 'length': 4, 'size': [96, 128]}
    a, b = build_labeled(cfg), build_labeled(cfg)
    np.testing.assert_array_equal(a[2]['rgb'], b[2]['rgb'])
    first = a[2]['rgb']
    a.set_epoch(1)
    assert not np.array_equal(a[2]['rgb'], first)  # new scenes every epoch
    assert a.class_names[0] == 'background' and len(a.class_names) == 8
    with pytest.raises(IndexError):
        a[4]
    with pytest.raises(DatasetError, match='unknown field'):
        build_labeled(dict(cfg, apperance='real'))
    with pytest.raises(DatasetError, match='preset'):
        build_labeled(dict(cfg, appearance='photoreal'))


def test_procedural_unlabeled_needs_explicit_segments_and_oracle_overlaps():
    with pytest.raises(DatasetError, match='oracle'):
        build_unlabeled({'type': 'procedural'})
    ds = build_unlabeled({'type': 'procedural', 'segments': 'oracle', 'length': 3,
                          'size': [120, 160], 'with_labels': True})
    overlap = 0
    for i in range(3):
        s = ds[i]
        masks = s['masks'].to_dense()
        assert s['labels'].shape == (120, 160)
        assert masks.dtype == bool and masks.shape[1:] == (120, 160) and len(masks) >= 2
        overlap += int((masks.sum(0) >= 2).sum())
    assert overlap > 0   # whole + part masks overlap, like SAM's
    assert 'labels' not in build_unlabeled({'type': 'procedural', 'segments': 'oracle',
                                            'length': 1, 'size': [64, 64]})[0]


def test_oracle_segments_stay_inside_instances():
    inst = TabletopRenderer('real', size=(120, 160)).render(0)['instances']
    masks = oracle_segments(inst, np.random.default_rng(0), p_background=0.0)
    assert len(masks) > 0
    for m in masks:
        ids = set(np.unique(inst[m]).tolist())
        assert 0 not in ids and len(ids) <= 2


def test_augment_moves_labels_and_masks_with_pixels():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 2, (12, 16)).astype(np.uint8)
    labels = cv2.resize(blocks, (160, 120), interpolation=cv2.INTER_NEAREST)
    rgb = np.stack([labels * 200 + 20] * 3, -1).astype(np.uint8)
    sample = {'rgb': rgb, 'labels': labels, 'masks': labels[None] > 0, 'key': 'k'}
    flip = Augment(scale=(1, 1), ratio=(1, 1), flip=1.0, brightness=0, contrast=0,
                   saturation=0, hue=0)(sample, rng)
    np.testing.assert_array_equal(flip['rgb'], rgb[:, ::-1])
    np.testing.assert_array_equal(flip['labels'], labels[:, ::-1])
    np.testing.assert_array_equal(flip['masks'].to_dense()[0], labels[:, ::-1] > 0)
    for seed in range(5):
        out = Augment(size=(60, 80), scale=(0.3, 0.8), flip=0.5)(
            sample, np.random.default_rng(seed))
        assert out['rgb'].shape == (60, 80, 3) and out['labels'].shape == (60, 80)
        bright = out['rgb'].mean(-1) > out['rgb'].mean()
        assert np.mean(bright == (out['labels'] > 0)) > 0.9
        if len(out['masks']):  # masks emptied by the crop are dropped
            np.testing.assert_array_equal(out['masks'].to_dense()[0], out['labels'] > 0)
        else:
            assert not out['labels'].any()
    assert sample['rgb'] is rgb  # input untouched


def _folder_with_masks(tmp_path, n=3, with_masks=2):
    root = tmp_path / 'imgs'
    frames = [TabletopRenderer('real', size=(60, 80)).render(i) for i in range(n)]
    store = MaskStore(root / 'masks')
    for i, f in enumerate(frames):
        atomic_write_png(root / 'cam' / f'{i:03d}.png', f['rgb'])
        if i < with_masks:
            masks = oracle_segments(f['instances'], np.random.default_rng(i))
            store.write(f'cam/{i:03d}.png', masks, np.ones((len(masks), 2)), segmenter='test')
    return root, store, frames


def test_image_folder_with_mask_store(tmp_path):
    root, store, frames = _folder_with_masks(tmp_path)
    ds = build_unlabeled({'type': 'image_folder', 'root': str(root)})
    assert len(ds) == 2 and ds.missing_masks == 1
    s = ds[1]
    assert s['key'] == 'cam/001.png'
    np.testing.assert_array_equal(s['rgb'], frames[1]['rgb'])
    np.testing.assert_array_equal(s['masks'].to_dense(), store.read('cam/001.png').masks())
    calls = []

    def seg(rgb):
        calls.append(rgb.shape)
        return [{'segmentation': rgb[..., 0] > 100}]

    full = build_unlabeled({'type': 'image_folder', 'root': str(root),
                            'missing_masks': 'segment'}, segmenter=seg)
    masks = full[2]['masks']
    assert len(full) == 3 and len(masks) == 1 and masks.shape == (60, 80)
    assert calls == [(60, 80, 3)]
    # Masks of the wrong size are an error naming the mask file.
    store.write('cam/000.png', np.zeros((1, 30, 40), bool), np.ones((1, 2)))
    with pytest.raises(DatasetError, match=r'000\.png.*masks are 40x30'):
        ds[0]
    with pytest.raises(DatasetError, match='sam2real segment'):
        build_unlabeled({'type': 'image_folder', 'root': str(root), 'masks': str(tmp_path)})


def test_image_folder_depth_beside_the_images(tmp_path):
    root, store, frames = _folder_with_masks(tmp_path, n=3, with_masks=1)
    # depth of cam/001.png by the convention: cam/depth/001.png (uint16 mm)
    atomic_write_png(root / 'cam' / 'depth' / '001.png', frames[1]['depth'])
    calls = []

    def seg(rgb, depth=None):
        calls.append(None if depth is None else depth.shape)
        return np.ones((1,) + rgb.shape[:2], bool)
    seg.accepts_depth = True
    ds = build_unlabeled({'type': 'image_folder', 'root': str(root), 'missing_masks': 'segment'},
                         segmenter=seg)
    # the depth folder holds no frames
    assert ds.keys == ['cam/000.png', 'cam/001.png', 'cam/002.png']
    ds[1], ds[2]
    assert calls == [(60, 80), None]
    # procedural frames hand the renderer's depth to the segmenter
    calls.clear()
    proc = build_unlabeled({'type': 'procedural', 'size': [48, 64], 'length': 2,
                            'segments': seg})
    proc[0]
    assert calls == [(48, 64)]
    # a depth file that does not match its image is an error naming it
    atomic_write_png(root / 'cam' / 'depth' / '002.png', frames[1]['depth'][:30])
    with pytest.raises(DatasetError, match=r'cam/depth/002\.png is 80x30'):
        ds[2]


def test_episodes_with_masks(tmp_path):
    from sam2real_ros.recording.episode_store import EpisodeWriter, iter_frames
    root = tmp_path / 'data'
    w = EpisodeWriter(str(root), 1_000_000_000, {})
    r = TabletopRenderer('real', size=(60, 80))
    for i, phase in enumerate(('before', 'during', 'during', 'after')):
        w.add_frame(1_000_000_000 + i * 100_000_000, phase, r.render(i)['rgb'])
    w.close()
    refs = list(iter_frames(str(root)))
    store = MaskStore(root / 'masks')
    for ref in refs[:3]:
        store.write(ref.key, np.ones((1, 60, 80), bool), np.ones((1, 2)))
    store.mark_failed(refs[3].key, 'test')
    ds = build_unlabeled({'type': 'episodes', 'root': str(root)})
    assert [ds[i]['key'] for i in range(len(ds))] == [f.key for f in refs[:3]]
    assert ds.failed_masks == 1 and ds.missing_masks == 0
    np.testing.assert_array_equal(ds[0]['rgb'], read_rgb(refs[0].image_path))
    # a fixed set of episodes (what the adaptation manager trains a candidate on)
    only = build_unlabeled({'type': 'episodes', 'root': str(root),
                            'episodes': [refs[0].episode_id]})
    assert len(only) == 3
    with pytest.raises(DatasetError, match=r'episodes \['):
        build_unlabeled({'type': 'episodes', 'root': str(root), 'episodes': ['nope']})


def _write_bag(path, storage, stamps_s, shape=(24, 32)):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_KILTED)
    Image, Header, Time = (ts.types[n] for n in (
        'sensor_msgs/msg/Image', 'std_msgs/msg/Header', 'builtin_interfaces/msg/Time'))
    rng = np.random.default_rng(0)
    images = {}
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conn = writer.add_connection('/cam/image', Image.__msgtype__, typestore=ts)
        other = writer.add_connection('/other/image', Image.__msgtype__, typestore=ts)
        for k, t in enumerate(stamps_s):
            ns = int(round(t * 1e9))
            rgb = rng.integers(0, 255, shape + (3,), dtype=np.uint8)
            enc, data = ('bgr8', rgb[:, :, ::-1]) if k % 2 else ('rgb8', rgb)
            msg = Image(header=Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                                      frame_id='cam'), height=shape[0], width=shape[1],
                        encoding=enc, is_bigendian=0, step=shape[1] * 3,
                        data=np.ascontiguousarray(data).reshape(-1))
            writer.write(conn, ns + 5, ts.serialize_cdr(msg, Image.__msgtype__))
            writer.write(other, ns + 6, ts.serialize_cdr(msg, Image.__msgtype__))
            images[ns] = rgb
    return images


@pytest.mark.parametrize('storage', ['sqlite3', 'mcap'])
def test_rosbag_extraction_subsamples_by_time_and_resumes(tmp_path, storage):
    stamps = [100 + 0.2 * k for k in range(10)]
    images = _write_bag(tmp_path / 'bag', storage, stamps)
    kept, last = [], None
    for ns in sorted(images):
        if last is None or ns - last >= 500_000_000:
            kept.append(ns)
            last = ns
    out = tmp_path / 'cache' / 'frames'
    stats = extract_bag_frames(tmp_path / 'bag', '/cam/image', str(out), 0.5, progress=False)
    assert stats['messages'] == 10 and stats['written'] == len(kept) == 4
    assert sorted(os.listdir(out)) == [f'{ns:019d}.png' for ns in kept]
    for ns in kept:
        np.testing.assert_array_equal(read_rgb(out / f'{ns:019d}.png'), images[ns])
    again = extract_bag_frames(tmp_path / 'bag', '/cam/image', str(out), 0.5, progress=False)
    assert again['written'] == 0 and again['existing'] == 4
    os.unlink(out / f'{kept[2]:019d}.png')
    resumed = extract_bag_frames(tmp_path / 'bag', '/cam/image', str(out), 0.5, progress=False)
    assert resumed['written'] == 1 and resumed['existing'] == 3
    with pytest.raises(DatasetError, match=r"'/camera'.*/cam/image"):
        extract_bag_frames(tmp_path / 'bag', '/camera', str(out), progress=False)


def test_rosbag_dataset_reads_through_image_folder_and_masks(tmp_path):
    _write_bag(tmp_path / 'bag', 'sqlite3', [1.0, 1.1, 2.0])
    cfg = {'type': 'rosbag', 'path': str(tmp_path / 'bag'), 'image_topic': '/cam/image',
           'min_period_s': 0.5, 'cache': str(tmp_path / 'cache'), 'progress': False}
    with pytest.raises(DatasetError, match='sam2real segment'):
        build_unlabeled(cfg)  # extracted, but nothing segmented yet
    keys = sorted(f'frames/{n}' for n in os.listdir(tmp_path / 'cache' / 'frames'))
    assert len(keys) == 2
    store = MaskStore(tmp_path / 'cache' / 'masks')
    for k in keys:
        store.write(k, np.ones((2, 24, 32), bool), np.ones((2, 2)))
    ds = build_unlabeled(cfg)
    assert [ds[i]['key'] for i in range(len(ds))] == keys and len(ds[0]['masks']) == 2


GATE = {'type': 'procedural', 'appearance': 'real', 'seed': 4242, 'length': 3, 'size': [48, 64]}


def test_labeled_folder_pairs_labels_by_relative_path(tmp_path):
    root = tmp_path / 'gate'
    written = write_labeled_folder(GATE, root)
    spec = folder_spec(str(root))
    assert spec == {'type': 'labeled_folder', 'root': str(root), 'images': 'images',
                    'labels': 'labels'}
    ds = build_labeled(spec)
    ref = build_labeled(GATE)
    assert ds.class_names == ref.class_names and len(ds) == 3
    for s, w in zip(sorted((ds[i] for i in range(3)), key=lambda s: s['key']),
                    sorted(written, key=lambda s: s['key'])):
        assert s['key'] == 'images/' + w['key'] + '.png'
        np.testing.assert_array_equal(s['rgb'], w['rgb'])
        np.testing.assert_array_equal(s['labels'], w['labels'])
    # uint16 labels, JPEG images and an explicit class list; images in the root itself
    flat = tmp_path / 'flat'
    (flat / 'gt' / 'sub').mkdir(parents=True)
    (flat / 'sub').mkdir()
    cv2.imwrite(str(flat / 'sub' / 'a.jpg'), written[0]['rgb'][:, :, ::-1])
    atomic_write_png(str(flat / 'gt' / 'sub' / 'a.png'), written[0]['labels'].astype(np.uint16))
    ds = build_labeled({'type': 'labeled_folder', 'root': str(flat), 'images': '.',
                        'labels': 'gt', 'classes': list(ref.class_names)})
    assert len(ds) == 1 and ds.class_names == ref.class_names  # 'gt/' is not an image folder
    s = ds[0]
    assert s['key'] == 'sub/a.jpg' and s['labels'].dtype == np.uint8
    np.testing.assert_array_equal(s['labels'], written[0]['labels'])


def test_labeled_folder_bad_files_are_one_line_naming_the_file(tmp_path):
    root = tmp_path / 'gate'
    written = write_labeled_folder(GATE, root)
    keys = sorted(s['key'] for s in written)
    lab = [str(root / 'labels' / (k + '.png')) for k in keys]
    os.remove(lab[0])
    atomic_write_png(lab[1], np.zeros((24, 64), np.uint8))
    atomic_write_png(lab[2], np.full((48, 64), 9, np.uint16))
    ds = build_labeled(folder_spec(str(root)))
    for i, want in enumerate((r'label missing for image images/.*0\.png',
                              'label size 64x24 differs from the image size 64x48',
                              r'class id 9 outside 0\.\.7')):
        with pytest.raises(DatasetError, match=want) as e:
            ds[i]
        assert '\n' not in str(e.value) and lab[i] in str(e.value)
    skipping = build_labeled(dict(folder_spec(str(root)), on_error='skip'))
    with pytest.raises(DatasetError, match='3 frames in a row were broken'):
        skipping[0]
    assert sum(skipping.skipped.values()) == 3
    cv2.imwrite(lab[0], np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(DatasetError, match='single-channel uint8/uint16 class ids, got 3'):
        ds[0]
    os.remove(root / 'classes.txt')
    with pytest.raises(DatasetError, match='no class names'):
        build_labeled(folder_spec(str(root)))
    with pytest.raises(DatasetError, match='neither an image\\+label folder'):
        folder_spec(str(tmp_path / 'gate' / 'images'))


@needs_ycbv
def test_a_bop_folder_is_a_labeled_folder_spec_too(tmp_path):
    _bop_copy(tmp_path, frames=1)
    assert folder_spec(str(tmp_path)) == {'type': 'bop', 'root': str(tmp_path),
                                          'split': 'train_real'}
    _bop_copy(tmp_path / 'two', frames=1)
    os.rename(tmp_path / 'two' / 'train_real', tmp_path / 'two' / 'val')
    _bop_copy(tmp_path / 'two', frames=1)
    with pytest.raises(DatasetError, match=r"splits \['train_real', 'val'\]; name one"):
        folder_spec(str(tmp_path / 'two'))
