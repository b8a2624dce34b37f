"""Mask store: round trip, failure markers, keys, corrupt files, box convention."""
import os
import time

import numpy as np
import pytest
from sam2real_ros.sam.mask_store import masks_to_bboxes, MaskStore, MaskStoreError
from segment_anything.utils.amg import batched_mask_to_box
import torch


def _random_masks(n=5, h=37, w=53, seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        y, x = rng.integers(0, h - 5), rng.integers(0, w - 5)
        masks[i, y:y + rng.integers(1, h - y), x:x + rng.integers(1, w - x)] = True
    return masks


def test_round_trip(tmp_path):
    store = MaskStore(tmp_path / 'masks')
    masks = _random_masks()
    scores = np.random.default_rng(1).random((5, 2)).astype(np.float32)
    key = 'episodes/e1/rgb/100_before.png'
    assert store.status(key) is None
    store.write(key, masks, scores, segmenter='sam:vit_h', settings={'points_per_side': 24},
                extra={'seconds': 1.5})
    assert store.status(key) == 'done'
    rec = store.read(key)
    assert rec.image_size == (37, 53) and len(rec) == 5
    np.testing.assert_array_equal(rec.masks(), masks)
    np.testing.assert_array_equal(rec.mask(3), masks[3])
    np.testing.assert_array_equal(rec.scores, scores)
    np.testing.assert_array_equal(rec.predicted_iou, scores[:, 0])
    np.testing.assert_array_equal(rec.areas, masks.sum((1, 2)))
    assert rec.segmenter == 'sam:vit_h' and rec.settings == {'points_per_side': 24}
    assert rec.extra == {'seconds': 1.5}
    assert store.keys() == [key]
    # compact: far smaller than one byte per pixel per mask
    assert (tmp_path / 'masks' / 'episodes/e1/rgb/100_before.png.npz').stat().st_size < masks.size


def test_bboxes_follow_sam_convention():
    masks = _random_masks(8, seed=3)
    masks[2] = False
    sam = batched_mask_to_box(torch.as_tensor(masks)).numpy()
    xywh = np.stack([sam[:, 0], sam[:, 1], sam[:, 2] - sam[:, 0], sam[:, 3] - sam[:, 1]], 1)
    np.testing.assert_array_equal(masks_to_bboxes(masks), xywh)
    assert (masks_to_bboxes(masks)[2] == 0).all()


def test_empty_and_failed(tmp_path):
    store = MaskStore(tmp_path)
    store.write('a.png', np.zeros((0, 4, 6), bool), np.zeros((0, 2)), segmenter='x')
    rec = store.read('a.png')
    assert rec.masks().shape == (0, 4, 6) and rec.image_size == (4, 6)
    store.mark_failed('sub/b.png', 'not a readable image: sub/b.png')
    assert store.status('sub/b.png') == 'failed'
    assert 'not a readable' in store.failure_reason('sub/b.png')
    assert store.keys() == ['a.png'] and store.failed_keys() == ['sub/b.png']
    # a later success replaces the failure marker
    store.write('sub/b.png', np.ones((1, 4, 6), bool), np.ones((1, 2)), segmenter='x')
    assert store.status('sub/b.png') == 'done' and store.failed_keys() == []


def test_bad_input_and_corrupt_file(tmp_path):
    store = MaskStore(tmp_path)
    with pytest.raises(MaskStoreError, match='NxHxW'):
        store.write('a.png', np.zeros((4, 6), bool), np.zeros((0, 2)))
    with pytest.raises(MaskStoreError, match='bool'):
        store.write('a.png', np.zeros((1, 4, 6), np.uint8), np.zeros((1, 2)))
    with pytest.raises(MaskStoreError, match='score rows'):
        store.write('a.png', np.zeros((2, 4, 6), bool), np.zeros((3, 2)))
    with pytest.raises(MaskStoreError, match='invalid mask store key'):
        store.path('../x.png')
    with pytest.raises(MaskStoreError, match='no masks'):
        store.read('missing.png')
    (tmp_path / 'c.png.npz').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(MaskStoreError, match='corrupt mask file .*c.png.npz'):
        store.read('c.png')


def test_stale_temp_files_are_not_keys_and_get_removed(tmp_path):
    store = MaskStore(tmp_path)
    store.write('a.png', np.ones((1, 2, 2), bool), np.ones((1, 2)))
    tmp = tmp_path / '.b.png.npz.tmp-999-0'
    tmp.write_bytes(b'half')
    assert store.keys() == ['a.png']
    assert store.remove_stale_temp_files() == 0  # could be a live writer's file
    os.utime(tmp, (time.time() - 120, time.time() - 120))
    assert store.remove_stale_temp_files() == 1 and not tmp.exists()
