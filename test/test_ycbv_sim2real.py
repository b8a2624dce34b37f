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


"""``python -m benchmarks.ycbv_sim2real`` at its tiny size on real YCB-Video frames."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real YCB-Video frames live in shared/ beside the checkout (as in test_datasets.py).
DATA = os.environ.get('SAM2REAL_SHARED_DATA') or os.path.join(
    os.path.dirname(ROOT), 'shared', 'data')
REAL = os.path.join(DATA, 'ycbv_bop_train')
needs_real = pytest.mark.skipif(
    not os.path.isdir(os.path.join(REAL, 'train_real', '000002')),
    reason=f'real YCB-Video frames not found at {REAL} (set SAM2REAL_SHARED_DATA)')


def _run(*args):
    env = dict(os.environ, SAM2REAL_SHARED_DATA=DATA)
    return subprocess.run([sys.executable, '-m', 'benchmarks.ycbv_sim2real', '--no-progress',
                           *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=900)


def _bop_copy(dst_root, split, scene, frames):
    """Copy ``frames`` frames (rgb, depth, masks, gt, camera) of a shared real scene."""
    src = os.path.join(REAL, 'train_real', scene)
    gts = {}
    for name in ('scene_gt.json', 'scene_camera.json'):
        with open(os.path.join(src, name)) as f:
            gts[name] = json.load(f)
    keep = sorted(gts['scene_gt.json'], key=int)[:frames]
    dst = dst_root / split / scene
    for sub in ('rgb', 'depth', 'mask_visib'):
        (dst / sub).mkdir(parents=True)
    for im in keep:
        for sub in ('rgb', 'depth'):
            shutil.copy(os.path.join(src, sub, f'{int(im):06d}.png'), dst / sub)
        for g in range(len(gts['scene_gt.json'][im])):
            shutil.copy(os.path.join(src, 'mask_visib', f'{int(im):06d}_{g:06d}.png'),
                        dst / 'mask_visib')
    for name, gt in gts.items():
        (dst / name).write_text(json.dumps({im: gt[im] for im in keep}))
    return dst_root


@needs_real
def test_tiny_run_evaluates_on_a_bop_folder_and_scores_background(tmp_path):
    # evaluation on another BOP folder (2 frames of scene 000002 as a "test" split, without
    # classes.txt: the class names are the generator's)
    ev = _bop_copy(tmp_path / 'heldout', 'test', '000002', 2)
    out = tmp_path / 'out'
    args = ('--profile', 'tiny', '--out', str(out), '--eval-root', str(ev), '--eval-split',
            'test', '--real-scenes', '000000', '--segmenter', 'fallback')
    proc = _run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary['results']) == {'ycbv/synthetic_only', 'ycbv/full', 'ycbv/pseudolabel',
                                       'ycbv/real_labels'}
    for res in summary['results'].values():
        assert res['n'] == 1 and 0.0 <= res['mean'] <= 1.0
    assert summary['eval_frames'] == 2 and str(ev) in summary['eval']
    # background everywhere: background IoU over (1 + objects) per frame, well below 1
    assert 0.05 < summary['background_only'] < 0.5
    assert summary['segmenter'] == 'fallback' and summary['real_frames'] == 2
    quality = summary['real_segments']  # segments vs the real frames' ground truth
    assert quality['frames'] == 2 and quality['with_depth'] == 2
    assert quality['objects'] == 6 and 0.0 < quality['mean_best_iou'] <= 1.0
    # the unlabeled real frames: scene 000000 only, with depth in mm, segmented once
    real = out / 'real' / '000000-2'
    names = sorted(n for n in os.listdir(real / '000000') if n.endswith('.png'))
    assert len(names) == 2 and sorted(os.listdir(real / '000000' / 'depth')) == names
    from sam2real_ros.sam.mask_store import MaskStore
    store = MaskStore(str(real / 'masks'))
    assert len(store.keys()) == 2 and all(store.read(k).extra['depth'] for k in store.keys())
    assert 'background everywhere' in (out / 'results.md').read_text()
    # the synthetic frames: rendered once by the generator into a BOP cache
    (cache,) = (out / 'synthetic').iterdir()
    assert json.loads((cache / 'cache.json').read_text())['frames'] == 4
    gt = json.loads((cache / 'train_synt' / '000000' / 'scene_gt.json').read_text())
    assert len(gt) == 4 and all(gt[k] for k in gt)
    # a rerun reuses the cache, the segments and every run, and gives the same table
    mtime = (cache / 'train_synt' / '000000' / 'scene_gt.json').stat().st_mtime_ns
    again = _run(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])['results'] == summary['results']
    assert again.stdout.count('(reused)') == 4 and 'rendered into' not in again.stdout
    assert (cache / 'train_synt' / '000000' / 'scene_gt.json').stat().st_mtime_ns == mtime


@needs_real
def test_training_on_evaluated_frames_is_refused(tmp_path):
    proc = _run('--profile', 'tiny', '--out', str(tmp_path), '--real-scenes', '000000',
                '000002', '--dry-run')
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith('ycbv_sim2real: error: scene(s) '
                                                           "['000002'] would be trained on")
