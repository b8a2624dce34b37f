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
Image folders: one lister for the SAM worker and the dataset, and ``sam2real segment`` itself.

``sam2real segment`` and the training data listed image folders with different extension sets,
so ``.webp`` frames got masks but were never trained on. The command-line tests run the real
command as a subprocess.
"""
import subprocess
import sys

from conftest import REPO
import cv2
import numpy as np
import pytest
from sam2real_ros.common import io_utils
from sam2real_ros.data.datasets import build_unlabeled
from sam2real_ros.sam.mask_store import MaskStore
from sam2real_ros.sam.worker import find_frames


def _img(seed, h=48, w=64):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :w // 2] = rng.integers(0, 255, 3)
    img[:, w // 2:] = rng.integers(0, 255, 3)
    return img


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if path.suffix == '.webp' else []
    assert cv2.imwrite(str(path), rgb[:, :, ::-1], params)


def sam2real(*args):
    return subprocess.run([sys.executable, '-m', 'sam2real_ros.cli', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_one_lister_for_worker_and_dataset(tmp_path):
    for i, rel in enumerate(['a.png', 'b.webp', 'C.JPG', 'sub/d.jpeg', 'sub/e.TIFF',
                             '.hidden.png', '.cache/x.png', 'depth/f.png', 'labels/g.png',
                             'episodes/h.png', 'masks/i.png', 'elsewhere_masks/j.png']):
        _write(tmp_path / rel, _img(i))
    (tmp_path / 'notes.txt').write_text('not an image')
    want = ['C.JPG', 'a.png', 'b.webp', 'elsewhere_masks/j.png', 'sub/d.jpeg', 'sub/e.TIFF']
    assert io_utils.list_images(tmp_path) == want
    assert [f.key for f in find_frames(tmp_path)] == want
    store = tmp_path / 'elsewhere_masks'
    assert [f.key for f in find_frames(tmp_path, store)] == [k for k in want if 'masks' not in k]
    assert io_utils.list_images(tmp_path, exclude=[store]) == [
        k for k in want if 'masks' not in k]


def test_webp_frames_are_segmented_and_trained_on(tmp_path):
    data = tmp_path / 'frames'
    _write(data / 'a.png', _img(1))
    _write(data / 'b.webp', _img(2))
    res = sam2real('segment', str(data), '--segmenter', 'fallback', '--no-progress')
    assert res.returncode == 0, res.stderr
    assert MaskStore(data / 'masks').status('b.webp') == 'done'
    ds = build_unlabeled({'type': 'image_folder', 'root': str(data)})
    assert ds.keys == ['a.png', 'b.webp'] and ds.missing_masks == 0
    sample = ds[ds.keys.index('b.webp')]
    np.testing.assert_array_equal(sample['rgb'], _img(2))
    assert sample['masks'].shape == (48, 64)


@pytest.mark.parametrize('name', ['frame.webp', 'frame.WEBP'])
def test_webp_is_an_image_for_the_lister(tmp_path, name):
    _write(tmp_path / 'x' / name, _img(3))
    assert io_utils.list_images(tmp_path) == [f'x/{name}']


def test_segment_names_failed_frames_and_exits_1(tmp_path):
    _write(tmp_path / 'good.png', _img(1))
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    for i in range(11):
        (tmp_path / f'text{i:02d}.jpg').write_text('not a jpeg')
    res = sam2real('segment', str(tmp_path), '--segmenter', 'fallback', '--no-progress',
                   '--nice', '0')
    assert res.returncode == 1, res.stderr
    assert '12 frame(s) failed' in res.stderr
    assert 'bad.png: not a readable image' in res.stderr  # the file and its reason
    named = [line for line in res.stderr.splitlines() if line.startswith('  text')]
    assert len(named) == 9 and '... and 2 more' in res.stderr
    assert 'done 1, failed 12' in res.stderr
    store = MaskStore(tmp_path / 'masks')
    assert store.status('good.png') == 'done' and len(store.failed_keys()) == 12
    again = sam2real('segment', str(tmp_path), '--segmenter', 'fallback', '--no-progress',
                     '--nice', '0')
    assert again.returncode == 0, again.stderr  # nothing new failed: failed frames are skipped
    assert '12 failed frames in the store' in again.stderr


def test_segment_on_an_empty_folder_says_so_and_writes_nothing(tmp_path):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('no images here')
    res = sam2real('segment', str(tmp_path / 'empty'), '--segmenter', 'fallback', '--nice', '0')
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f'sam2real segment: no images found under {tmp_path / "empty"} (image files '
        '.png .jpg .jpeg .bmp .tif .tiff .webp or finished recorder episodes)']
    assert sorted(p.name for p in (tmp_path / 'empty').iterdir()) == ['readme.txt']


@pytest.mark.slow
def test_training_says_once_how_many_frames_it_leaves_out(tmp_path):
    data = tmp_path / 'frames'
    for i in range(4):
        _write(data / f'{i}.png', _img(i, 96, 128))
    store = MaskStore(data / 'masks')
    for key in ('0.png', '1.png'):
        store.write(key, np.ones((2, 96, 128), bool), np.ones((2, 2)))
    store.mark_failed('2.png', 'test: SAM ran out of memory')  # 3.png: not segmented yet
    res = sam2real('train', '--config', 'training/configs/tiny_cpu.yaml', '--out',
                   str(tmp_path / 'run'), 'max_epochs=1', 'frames_per_epoch=2',
                   'log.progress=false', 'log.tensorboard=false', 'log.images_per_epoch=0',
                   f'data.real={{type: image_folder, root: {data}}}')
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if 'left out' in line]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f'sam2real train: 2 of 4 real frames under {data} left out: '
                               '1 whose segmentation failed')
    assert '1 not segmented yet' in lines[0] and '--retry-failed' in lines[0]
