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

"""Mask store: round trip, failure markers, keys, corrupt files, box convention."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sam2real_ros.common import io_utils
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
    tmp = tmp_path / '.b.png.npz.tmp-999999-0'
    tmp.write_bytes(b'half')
    assert store.keys() == ['a.png']
    # no writer lock of pid 999999 is held: stale at once, whatever its age
    assert store.remove_stale_temp_files() == 1 and not tmp.exists()


LIVE_WRITER = textwrap.dedent("""
    import sys
    from sam2real_ros.common import io_utils
    from sam2real_ros.sam.mask_store import MaskStore
    store = MaskStore(sys.argv[1])
    store.acquire_writer_lock()
    real_replace = io_utils.os.replace
    io_utils.os.replace = lambda src, dst: None  # frozen between the temp file and the rename
    store.mark_failed('x.png', 'in progress')
    print('writing', flush=True)
    sys.stdin.readline()
""")


def test_a_writer_lock_keeps_live_temp_files_and_a_kill_frees_them(tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', LIVE_WRITER, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'writing'
        temps = [n for n in os.listdir(tmp_path) if io_utils.is_temp_file(n)]
        assert len(temps) == 1 and io_utils.temp_file_pid(temps[0]) == proc.pid
        store = MaskStore(tmp_path)
        store.acquire_writer_lock()
        assert store.live_writer_pids() == {proc.pid, os.getpid()}
        assert store.remove_stale_temp_files() == 0  # the live writer's file stays
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert store.live_writer_pids() == {os.getpid()}  # the dead writer's lock file is gone
    assert store.remove_stale_temp_files() == 1
    assert [n for n in os.listdir(tmp_path) if not n.startswith('.writers')] == []
    store.release_writer_lock()
    assert os.listdir(tmp_path / '.writers') == []
