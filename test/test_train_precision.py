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

"""Trainer precision: bf16 autocast matches fp32 within tolerance; bf16 resume is exact."""
import copy
import os

import pytest
from sam2real_ros.modeling import model as mdl
from sam2real_ros.training import config as train_config
from sam2real_ros.training.trainer import Trainer
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, 'training', 'configs', 'tiny_cpu.yaml')
SMALL = ['frames_per_epoch=1', 'max_epochs=2', 'data.eval_frames=1', 'log.progress=false',
         'log.images_per_epoch=0', 'log.tensorboard=false']


@pytest.fixture(autouse=True)
def one_thread():
    """Run single-threaded: on the shared 2-core machine OpenMP spinning costs 10x here."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(*overrides):
    return train_config.load_config(TINY, [*SMALL, *overrides])


def _run_steps(tmp_path, precision, steps=2):
    tr = Trainer(tiny('loss.alpha=1.0', f'precision={precision}'), str(tmp_path / precision))
    seen = []
    hook = tr.model.seg_head.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    syn = tr.prepare([tr.syn[0]], ('labels',), 'synthetic')
    real = tr.prepare([tr.real[0]], ('masks',), 'real')
    sup, reg, grads = [], [], []
    for step, batch in [(tr.supervised_step, syn)] * steps + [(tr.real_step, real)] * steps:
        (sup if batch is syn else reg).append(step(batch))
        if len(sup + reg) in (1, steps + 1):  # first step of each kind: same weights in both
            grads.append(torch.cat([p.grad.flatten() for p in tr.model.parameters()
                                    if p.grad is not None]))
    tr.update_ema()
    hook.remove()
    return tr, seen, sup, reg, grads


def test_bf16_autocast_matches_fp32(tmp_path):
    fp, seen_fp, sup_fp, reg_fp, grads_fp = _run_steps(tmp_path, 'fp32')
    bf, seen_bf, sup_bf, reg_bf, grads_bf = _run_steps(tmp_path, 'bf16')
    # the network really ran in bfloat16 (and only with precision bf16)
    assert set(seen_fp) == {torch.float32} and set(seen_bf) == {torch.bfloat16}
    # same initial weights (same seed), so the first losses differ by bf16 rounding only; the
    # invariance term (small within-segment variances) is the most sensitive one
    assert sup_bf[0] == pytest.approx(sup_fp[0], rel=1e-2)
    for key, rel in (('loss', 2e-2), ('var', 2e-2), ('inv', 5e-2)):
        assert reg_bf[0][key] == pytest.approx(reg_fp[0][key], rel=rel), key
    # a few AdamW steps later the curves stay within 5 % of the starting loss of each other,
    # and both fall
    real_fp, real_bf = [r['loss'] for r in reg_fp], [r['loss'] for r in reg_bf]
    for curve_fp, curve_bf in ((sup_fp, sup_bf), (real_fp, real_bf)):
        for a, b in zip(curve_fp, curve_bf):
            assert abs(b - a) <= 0.05 * curve_fp[0]
        assert curve_bf[-1] < curve_bf[0] and curve_fp[-1] < curve_fp[0]
    # the gradients of the first supervised step (same weights) point the same way
    cos = float(torch.nn.functional.cosine_similarity(grads_fp[0], grads_bf[0], dim=0))
    assert cos > 0.99
    # weights, gradients, optimizer state and EMA stay float32
    assert all(p.dtype == torch.float32 for p in bf.model.parameters())
    assert all(p.grad.dtype == torch.float32 for p in bf.model.parameters()
               if p.grad is not None)
    assert all(e.dtype == torch.float32 for e in bf.ema.state_dict().values()
               if e.is_floating_point())
    assert all(v.dtype == torch.float32 for st in bf.opt.state.values() for k, v in st.items()
               if k != 'step')


def test_bf16_channels_last_resume_is_exact_and_checkpoint_unchanged(tmp_path):
    from sam2real_ros.modeling.model import model_from_checkpoint
    over = ('precision=bf16', 'channels_last=true')
    straight = Trainer(tiny(*over), str(tmp_path / 'a'))
    assert next(p for p in straight.model.parameters() if p.ndim == 4).is_contiguous(
        memory_format=torch.channels_last)
    straight.train_epoch()
    straight.train_epoch()
    os.makedirs(tmp_path / 'b')
    first = Trainer(tiny(*over), str(tmp_path / 'b'))
    first.train_epoch()
    first.save()
    resumed = Trainer(tiny(*over), str(tmp_path / 'b'), resume=True)
    assert resumed.epoch == 1
    resumed.train_epoch()
    sa, sb = straight.state(), resumed.state()
    for part in ('model', 'ema'):
        assert sa[part].keys() == sb[part].keys()
        for k in sa[part]:
            assert torch.equal(sa[part][k], sb[part][k]), (part, k)
    assert sa['scheduler']['last_epoch'] == sb['scheduler']['last_epoch'] == 2
    # the checkpoint of a bf16 run is an ordinary float32 model checkpoint
    resumed.save()
    net, _, _ = model_from_checkpoint(str(tmp_path / 'b' / 'checkpoint.pt'))
    assert all(p.dtype == torch.float32 for p in net.parameters())
    with pytest.raises(train_config.ConfigError, match='precision must be fp32 or bf16'):
        tiny('precision=fp16')


def test_bf16_features_reach_the_loss_in_float32():
    """Under bf16 autocast the feature head runs in float32 on the bf16 decoder output."""
    net = mdl.build_model(tiny().model).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        fused = net.decode(x)
        feats = net.head(fused, 'features', x.shape[-2:])
        logits = net.head(fused, 'logits', x.shape[-2:])
    assert fused.dtype == torch.bfloat16 and logits.dtype == torch.bfloat16
    assert feats.dtype == torch.float32
    # the float64 head on the same (bf16-valued) decoder output agrees to float32 digits
    with torch.no_grad():
        ref = copy.deepcopy(net.feature_head).double()(fused.double())
        ref = torch.nn.functional.interpolate(ref, size=x.shape[-2:], mode='bilinear',
                                              align_corners=False)
    err = ((feats.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < 1e-5, err  # a bfloat16 feature head is off by about 1e-2
