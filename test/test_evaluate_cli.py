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
``sam2real evaluate``: class names checked against the data, a training config's eval settings.

An 8-class procedural model evaluated on the real YCB-Video sample (22 BOP classes) used to print
an mIoU under the wrong names and exit 0, and ``--data CONFIG`` ignored ``data.eval_frames``.
The commands run as subprocesses, as a user runs them.
"""
import csv
import json
import os
import subprocess
import sys

from conftest import REPO, write_labeled_folder
import numpy as np
import pytest
from sam2real_ros.data.procedural import CLASS_NAMES
from sam2real_ros.modeling import model as mdl
from sam2real_ros.training.evaluate import class_lut, EvalError, parse_class_map
import torch

# The real YCB-Video sample lives in shared/ beside the checkout (as in test_datasets.py).
YCBV = os.environ.get('SAM2REAL_YCBV_SAMPLE') or os.path.join(
    os.path.dirname(REPO), 'shared', 'data', 'ycbv_bop_sample')
TINY = {'backbone': 'convnext_zepto_rms', 'pretrained': False, 'pretrained_path': None,
        'fpn_channels': 16, 'fusion_channels': 16, 'feature_hidden': 8, 'norm': 'gn',
        'input_size': [64, 64]}


def sam2real(*args):
    return subprocess.run([sys.executable, '-m', 'sam2real_ros.cli', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope='module')
def procedural_model(tmp_path_factory):
    """Make a random-weight checkpoint with the procedural renderer's 8 class names."""
    torch.manual_seed(0)
    cfg = mdl.load_profile('fast', num_classes=len(CLASS_NAMES), **TINY)
    path = tmp_path_factory.mktemp('model') / 'procedural8.pt'
    torch.save(mdl.checkpoint_payload(mdl.build_model(cfg), cfg, CLASS_NAMES), path)
    return path


@pytest.fixture(scope='module')
def ycbv_spec(tmp_path_factory):
    if not os.path.isdir(YCBV):
        pytest.skip(f'YCB-V BOP sample not found at {YCBV} (set SAM2REAL_YCBV_SAMPLE)')
    path = tmp_path_factory.mktemp('data') / 'ycbv.yaml'
    path.write_text(f'type: bop\nroot: {YCBV}\nsplit: train_real\n')
    return path


def test_class_mismatch_is_refused(procedural_model, ycbv_spec):
    res = sam2real('evaluate', str(procedural_model), '--data', str(ycbv_spec), '--no-progress')
    assert res.returncode == 2 and res.stdout == ''
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith('sam2real evaluate: error: class mismatch: the model has 8 classes '
                           '(background, box, can, ball, banana, mug, bottle, block), the '
                           'dataset 22 (background, 002_master_chef_can,')
    assert '--class-map' in line


def test_explicit_class_map_evaluates_under_the_model_names(
        procedural_model, ycbv_spec, tmp_path):
    pairs = ('002_master_chef_can=can,003_cracker_box=box,004_sugar_box=box,'
             '006_mustard_bottle=bottle')
    res = sam2real('evaluate', str(procedural_model), '--data', str(ycbv_spec), '--no-progress',
                   '--frames', '3', '--class-map', pairs)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out['frames'] == 3 and set(out['per_class']) <= {'background', 'can', 'box', 'bottle'}
    assert out['class_map']['004_sugar_box'] == 'box'
    # a YAML file; null leaves the mustard bottle's pixels out of the score
    mapping = tmp_path / 'map.yaml'
    mapping.write_text('002_master_chef_can: can\n003_cracker_box: box\n004_sugar_box: box\n'
                       '006_mustard_bottle: null\n')
    res = sam2real('evaluate', str(procedural_model), '--data', str(ycbv_spec), '--no-progress',
                   '--frames', '3', '--class-map', str(mapping))
    assert res.returncode == 0, res.stderr
    assert 'bottle' not in json.loads(res.stdout.splitlines()[-1])['per_class']


def test_class_map_errors_name_the_problem(procedural_model, ycbv_spec):
    res = sam2real('evaluate', str(procedural_model), '--data', str(ycbv_spec), '--no-progress',
                   '--class-map', 'by-name')
    assert res.returncode == 2
    assert ("frame 'train_real/000001/rgb/000001.png' holds dataset class(es) "
            '002_master_chef_can, 003_cracker_box, 004_sugar_box, 006_mustard_bottle that '
            '--class-map leaves without a model class') in res.stderr


def test_class_lut():
    assert class_lut(['background', 'a', 'b'], ['background', 'a', 'b']) is None
    with pytest.raises(EvalError, match='class mismatch'):
        class_lut(['background', 'a', 'b'], ['background', 'b', 'a'])
    lut = class_lut(['background', 'a', 'b'], ['background', 'b', 'a'], 'by-name')
    np.testing.assert_array_equal(lut[:3], [0, 2, 1])
    assert lut[255] == 255
    lut = class_lut(['background', 'obj'], ['background', 'x', 'y', 'z'],
                    parse_class_map('x=obj,y='))
    np.testing.assert_array_equal(lut[:4], [0, 1, 255, -1])
    with pytest.raises(EvalError, match="'x' is not DATA_CLASS=MODEL_CLASS"):
        parse_class_map('x')
    with pytest.raises(EvalError, match='dataset classes that do not exist: w'):
        class_lut(['background', 'obj'], ['background', 'x'], {'w': 'obj'})
    with pytest.raises(EvalError, match='model classes that do not exist: pot'):
        class_lut(['background', 'obj'], ['background', 'x'], {'x': 'pot'})


@pytest.mark.slow
def test_evaluate_with_a_training_config_scores_what_training_scored(tmp_path):
    run = tmp_path / 'run'
    res = sam2real('train', '--config', 'training/configs/tiny_cpu.yaml', '--out', str(run),
                   'max_epochs=1', 'frames_per_epoch=2', 'log.progress=false',
                   'log.tensorboard=false', 'log.images_per_epoch=0')
    assert res.returncode == 0, res.stderr
    with open(run / 'metrics.csv') as f:
        row = list(csv.DictReader(f))[-1]
    assert int(row['eval_frames']) == 4  # tiny_cpu.yaml: eval length 8, eval_frames 4
    res = sam2real('evaluate', str(run / 'checkpoint.pt'), '--data',
                   'training/configs/tiny_cpu.yaml', '--no-progress')
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.splitlines()[-1])
    assert out['frames'] == 4
    assert abs(out['miou'] - float(row['miou'])) < 1e-6
    res = sam2real('evaluate', str(run / 'checkpoint.pt'), '--data',
                   'training/configs/tiny_cpu.yaml', '--no-progress', '--frames', '0')
    assert json.loads(res.stdout.splitlines()[-1])['frames'] == 8  # --frames overrides


def test_a_folder_of_images_and_labels_scores_like_the_frames_it_holds(
        tmp_path, procedural_model):
    spec = {'type': 'procedural', 'appearance': 'real', 'seed': 4242, 'length': 3,
            'size': [48, 64]}
    (tmp_path / 'spec.yaml').write_text(json.dumps(spec))
    write_labeled_folder(spec, tmp_path / 'gate')
    scores = []
    for data in (tmp_path / 'spec.yaml', tmp_path / 'gate'):
        res = sam2real('evaluate', str(procedural_model), '--data', str(data), '--no-progress')
        assert res.returncode == 0, res.stderr
        scores.append(json.loads(res.stdout.splitlines()[-1]))
    assert scores[1]['data']['type'] == 'labeled_folder' and scores[1]['frames'] == 3
    assert scores[1]['miou'] == pytest.approx(scores[0]['miou'], abs=1e-9)
    labels = sorted((tmp_path / 'gate' / 'labels').rglob('*.png'))
    labels[1].write_bytes(b'not a png')
    res = sam2real('evaluate', str(procedural_model), '--data', str(tmp_path / 'gate'),
                   '--no-progress')
    assert res.returncode == 2 and res.stderr.count('\n') == 1, res.stderr
    assert str(labels[1]) in res.stderr and 'Traceback' not in res.stderr
