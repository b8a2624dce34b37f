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

"""Trainer on the tiny CPU config: losses fall, kill + resume is exact, variants, CLI, config."""
import csv
import json
import os
import signal
import socket
import subprocess
import sys

from conftest import wait_until
import pytest
from sam2real_ros.training import config as train_config
from sam2real_ros.training import evaluate
from sam2real_ros.training import train
from sam2real_ros.training.trainer import Trainer
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, 'training', 'configs', 'tiny_cpu.yaml')
SMALL = ['frames_per_epoch=2', 'max_epochs=2', 'data.eval_frames=1', 'log.progress=false',
         'log.images_per_epoch=1', 'log.tensorboard=false']


def tiny(*overrides):
    return train_config.load_config(TINY, [*SMALL, *overrides])


def test_supervised_and_real_losses_fall_on_a_fixed_batch(tmp_path):
    tr = Trainer(tiny('loss.alpha=1.0'), str(tmp_path))
    syn = tr.prepare([tr.syn[0]], ('labels',), 'synthetic')
    sup = [tr.supervised_step(syn) for _ in range(4)]
    assert sup[-1] < sup[0]
    real = tr.prepare([tr.real[0]], ('masks',), 'real')
    assert len(real['masks'][0]) >= 2  # MaskLayers, never an NxHxW array
    assert real['masks'][0].shape == tuple(real['x'].shape[2:])
    reg = [tr.real_step(real)['loss'] for _ in range(4)]
    assert reg[-1] < reg[0]


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tensors(obj, prefix=''):
    """Flatten nested dicts/lists of tensors into {path: tensor}."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f'{prefix}/{k}'))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f'{prefix}/{i}'))
    return out


def test_kill_and_resume_equals_straight_run(tmp_path, capsys):
    straight = tmp_path / 'straight'
    summary = train.run(tiny(), str(straight), progress=False)
    assert summary['epochs'] == 2
    # Same config, SIGKILLed from outside (as by a crash or the OOM killer) once epoch 1's
    # checkpoint is on disk, then resumed; the resumed process runs torchrun-style
    # (WORLD_SIZE=1, gloo) to cover the distributed set-up too.
    run_dir = tmp_path / 'killed'
    cmd = [sys.executable, '-m', 'sam2real_ros.training.train', '--config', TINY,
           '--out', str(run_dir), *SMALL]
    with open(tmp_path / 'first.log', 'w') as log:
        first = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:  # the checkpoint is written atomically: once it exists, it is epoch 1's
            assert wait_until(lambda: (run_dir / 'checkpoint.pt').exists()
                              or first.poll() is not None, 300)
            first.send_signal(signal.SIGKILL)
        finally:
            first.kill()
            first.wait(30)
    assert first.returncode == -signal.SIGKILL, (tmp_path / 'first.log').read_text()[-2000:]
    ck = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert ck['epoch'] == 1
    env = dict(os.environ, RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(_free_port()))
    second = subprocess.run([sys.executable, '-m', 'sam2real_ros.training.train',
                             '--out', str(run_dir),
                             '--resume'], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert json.loads(second.stdout.strip().splitlines()[-1])['epochs'] == 2
    a = torch.load(straight / 'checkpoint.pt', weights_only=True)
    b = torch.load(run_dir / 'checkpoint.pt', weights_only=True)
    assert a['epoch'] == b['epoch'] == 2
    ta = _tensors({k: a[k] for k in ('model', 'ema', 'optimizer', 'scheduler')})
    tb = _tensors({k: b[k] for k in ('model', 'ema', 'optimizer', 'scheduler')})
    assert ta.keys() == tb.keys() and len(ta) > 100
    worst = max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta
                if ta[k].numel())
    assert worst <= 1e-6
    assert a['scheduler']['last_epoch'] == b['scheduler']['last_epoch'] == 4
    assert [h['miou'] for h in a['history']] == pytest.approx([h['miou'] for h in b['history']])
    with open(run_dir / 'metrics.csv') as f:
        rows = list(csv.DictReader(f))
    assert [int(r['epoch']) for r in rows] == [1, 2]
    assert 0.0 <= float(rows[-1]['miou']) <= 1.0
    assert sorted(os.listdir(run_dir / 'images')) == ['epoch_001.png', 'epoch_002.png']
    # the checkpoint is a model checkpoint too (EMA weights for evaluation/export)
    from sam2real_ros.modeling.model import model_from_checkpoint
    net, cfg, names = model_from_checkpoint(str(run_dir / 'checkpoint.pt'))
    assert len(names) == cfg.num_classes
    # `sam2real evaluate` (engine path, EMA weights) reproduces the trainer's last mIoU
    assert evaluate.main([str(straight / 'checkpoint.pt'), '--data', TINY, '--frames', '1',
                          '--no-progress', '--backend', 'torch', '--device', 'cpu']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['frames'] == 1
    assert result['miou'] == pytest.approx(a['history'][-1]['miou'], abs=1e-9)
    # pseudolabel variant starts from a checkpoint (Sec. IV-E-b)
    pl = train.run(tiny('variant=pseudolabel', f'init_checkpoint={straight}/checkpoint.pt',
                        'max_epochs=1', 'frames_per_epoch=1', 'data.eval_frames=1'),
                   str(tmp_path / 'pseudo'), progress=False)
    assert pl['epochs'] == 1 and 0.0 <= pl['miou'] <= 1.0


@pytest.mark.parametrize('variant', ['synthetic_only', 'real_labels'])
def test_variants_run(tmp_path, variant):
    out = tmp_path / variant
    s = train.run(tiny(f'variant={variant}', 'max_epochs=1', 'frames_per_epoch=1',
                       'data.eval_frames=1', 'log.tensorboard=true'), str(out), progress=False)
    assert s['epochs'] == 1 and s['variant'] == variant
    with open(out / 'metrics.csv') as f:
        row = next(csv.DictReader(f))
    assert float(row['sup_loss']) > 0 and row['real_loss'] == ''
    assert any(n.startswith('events.out.tfevents') for n in os.listdir(out / 'tb'))


def test_config_overrides_and_errors(tmp_path):
    cfg = tiny('optim.lr=3e-4', 'data.real.seed=7', 'loss.beta=0.5', 'model.fpn_channels=32')
    assert cfg.optim.lr == 3e-4 and cfg.loss.beta == 0.5
    assert cfg.data.real['seed'] == 7 and cfg.data.real['segments'] == 'oracle'
    assert cfg.model['fpn_channels'] == 32
    again = train_config.config_from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(train_config.ConfigError, match="unknown config key 'optim.lrr'"):
        tiny('optim.lrr=1')
    with pytest.raises(train_config.ConfigError, match='max_epochs must be of type int'):
        tiny('max_epochs=abc')
    with pytest.raises(train_config.ConfigError, match='loss.beta must be in'):
        tiny('loss.beta=3')
    with pytest.raises(train_config.ConfigError, match='init_checkpoint'):
        tiny('variant=pseudolabel')


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    assert train.main(['--config', str(tmp_path / 'missing.yaml'), '--out',
                       str(tmp_path / 'r')]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and 'missing.yaml' in err
    assert train.main(['--config', TINY, '--out', str(tmp_path / 'r'), 'nokey=1']) == 2
    assert "unknown config key 'nokey'" in capsys.readouterr().err
    assert train.main(['--out', str(tmp_path / 'nothing'), '--resume']) == 2
    assert evaluate.main([str(tmp_path / 'none.pt'), '--data', 'no-such-preset']) == 2
    assert 'no-such-preset' in capsys.readouterr().err
    assert evaluate.main([str(tmp_path / 'none.pt'), '--data', 'procedural-real']) == 2
    assert 'none.pt' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        train.main(['--help'])
    assert e.value.code == 0


def test_out_and_resume_errors_name_the_run_folder(tmp_path, capsys):
    """--out on a file and --resume of a missing run are one line, not a traceback (#21)."""
    afile = tmp_path / 'afile'
    afile.write_text('x')
    assert train.main(['--config', TINY, '--out', str(afile)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'sam2real train: error: --out {afile} is a file; give a run folder']
    assert train.main(['--out', str(tmp_path / 'nothing'), '--resume']) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'sam2real train: error: --resume: no run folder {tmp_path / "nothing"} (start a new '
        'run without --resume)']
    (tmp_path / 'empty').mkdir()
    assert train.main(['--out', str(tmp_path / 'empty'), '--resume']) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'sam2real train: error: --resume: {tmp_path / "empty"} holds no run (no config.yaml; '
        'start a new run without --resume)']


def test_loss_pairs_option_reaches_the_real_step(tmp_path):
    """``loss.pairs: ordered`` (the literal Eq. 5) doubles the variance term of a training step."""
    values = {}
    for pairs in ('unordered', 'ordered'):
        tr = Trainer(tiny('loss.alpha=1.0', f'loss.pairs={pairs}'), str(tmp_path / pairs))
        values[pairs] = tr.real_step(tr.prepare([tr.real[0]], ('masks',), 'real'))
    un, ordered = values['unordered'], values['ordered']
    assert un['var'] > 0 and un['n'] >= 2
    assert ordered['inv'] == pytest.approx(un['inv'], rel=1e-6)
    assert ordered['var'] == pytest.approx(2 * un['var'], rel=1e-6)
    assert ordered['loss'] == pytest.approx(un['inv'] + 2 * un['var'], rel=1e-6)
    with pytest.raises(train_config.ConfigError, match='loss.pairs must be unordered or ordered'):
        tiny('loss.pairs=both')


def test_real_batch_size_sets_the_real_frames_per_iteration(tmp_path):
    """``real_batch_size`` batches the real streams apart from the synthetic one."""
    cfg = tiny('batch_size=2', 'real_batch_size=1', 'frames_per_epoch=4')
    tr = Trainer(cfg, str(tmp_path / 'run'))
    syn = list(tr.loader('synthetic', tr.syn, 0))
    real = list(tr.loader('real', tr.real, 0))
    assert tr.iters == 2 and len(syn) == len(real) == 2
    assert [len(b) for b in syn] == [2, 2] and [len(b) for b in real] == [1, 1]
    same = Trainer(tiny('batch_size=2', 'frames_per_epoch=4'), str(tmp_path / 'default'))
    assert [len(b) for b in same.loader('real', same.real, 0)] == [2, 2]
    with pytest.raises(train_config.ConfigError, match='real_batch_size must be >= 1'):
        tiny('real_batch_size=0')
