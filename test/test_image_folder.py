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
    assert sample['masks'].shape[1:] == (48, 64)


@pytest.mark.parametrize('name', ['frame.webp', 'frame.WEBP'])
def test_webp_is_an_image_for_the_lister(tmp_path, name):
    _write(tmp_path / 'x' / name, _img(3))
    assert io_utils.list_images(tmp_path) == [f'x/{name}']
