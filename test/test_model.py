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

"""Model, profiles, preprocessing, checkpoints and visual helpers (random weights)."""
import numpy as np
import pytest
from sam2real_ros.inference.visual import colorize_labels, features_to_rgb
from sam2real_ros.modeling import model as mdl
import torch
from torch import nn
import torch.nn.functional as F


def tiny_cfg(**kw):
    """Build a small random-weight config for fast tests."""
    base = {'backbone': 'convnext_atto', 'pretrained': False, 'num_classes': 4, 'fpn_channels': 16,
            'fusion_channels': 32, 'feature_hidden': 24, 'fusion_stride': 8, 'fusion_kernel': 1,
            'input_size': (64, 96)}
    base.update(kw)
    return mdl.ModelConfig(**base)


def test_bundled_profiles_match_the_spec():
    paper = mdl.load_profile('paper')
    assert (paper.backbone, paper.fpn_channels, paper.fusion_channels) == \
        ('convnext_large', 256, 512)
    assert (paper.fusion_stride, paper.fusion_kernel, paper.input_size) == (4, 3, None)
    assert paper.ppm_bins == (1, 2, 3, 6) and paper.feature_hidden == 256
    assert paper.feature_dim == 3 and paper.name == 'paper'
    fast = mdl.load_profile('fast', num_classes=7)
    assert (fast.fusion_stride, fast.fusion_kernel, fast.input_size) == (8, 1, (192, 256))
    assert fast.num_classes == 7 and fast.backbone.startswith('convnext')
    assert set(mdl.list_profiles()) >= {'paper', 'fast'}


def test_profile_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match='unknown model profile'):
        mdl.load_profile('nope')
    bad = tmp_path / 'bad.yaml'
    bad.write_text('backbone: convnext_atto\nfusion_channles: 3\n')
    with pytest.raises(ValueError, match='fusion_channles'):
        mdl.load_profile(str(bad))
    bad.write_text('fusion_stride: 16\n')
    with pytest.raises(ValueError, match='fusion_stride'):
        mdl.load_profile(str(bad))
    with pytest.raises(ValueError, match='num_classes'):
        tiny_cfg(num_classes=300)
    with pytest.raises(ValueError, match='backbone'):
        tiny_cfg(backbone='resnet18')
    with pytest.raises(ValueError, match='fpn_channels must be an integer'):
        tiny_cfg(fpn_channels='16')
    good = tmp_path / 'mine.yaml'
    good.write_text('backbone: convnext_atto\ninput_size: [96, 128]\n')
    cfg = mdl.load_profile(str(good))
    assert cfg.name == 'mine' and cfg.input_size == (96, 128)


@pytest.mark.parametrize('stride,kernel,dim,hw', [(8, 1, 3, (64, 96)), (4, 3, 1, (70, 90)),
                                                  (8, 3, 5, (100, 76))])
def test_output_shapes_at_input_resolution(stride, kernel, dim, hw):
    cfg = tiny_cfg(fusion_stride=stride, fusion_kernel=kernel, feature_dim=dim)
    net = mdl.build_model(cfg).eval()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        fused = net.decode(x)
        logits, feats = net(x)
    assert logits.shape == (2, 4, *hw) and feats.shape == (2, dim, *hw)
    assert fused.shape[:2] == (2, 32)
    assert fused.shape[-2:] == net.backbone(x)[stride // 8].shape[-2:]
    assert torch.isfinite(logits).all() and torch.isfinite(feats).all()


def test_heads_and_activations_follow_the_paper():
    cfg = tiny_cfg(feature_hidden=40, feature_dim=3)
    net = mdl.build_model(cfg)
    assert isinstance(net.seg_head, nn.Conv2d) and net.seg_head.kernel_size == (1, 1)
    assert (net.seg_head.in_channels, net.seg_head.out_channels) == (32, 4)
    convs = [m for m in net.feature_head if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(32, 40), (40, 3)]
    assert isinstance(net.feature_head[1], nn.GELU)
    decoder = [net.ppm, net.lateral, net.fpn_out, net.fusion]
    for part in decoder:
        assert not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in part.modules())
        assert any(isinstance(m, nn.GELU) for m in part.modules())
    assert net.fusion[0].kernel_size == (1, 1) and net.fusion[0].in_channels == 4 * 16


@pytest.mark.parametrize('norm', ['gn', 'none'])
def test_trains_at_batch_size_one(norm):
    net = mdl.build_model(tiny_cfg(norm=norm)).train()
    logits, feats = net(torch.randn(1, 3, 64, 96))
    (logits.mean() + feats.mean()).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.ppm.stages[0][0].weight.grad.abs().sum() > 0  # the 1x1 bin's conv still learns


@pytest.mark.parametrize('size', [(15, 20), (7, 10), (6, 8), (1, 1), (12, 12)])
def test_ppm_pooling_is_exactly_adaptive_avg_pool(size):
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    for b in (1, 2, 3, 6):
        ref = F.adaptive_avg_pool2d(x, b)
        assert torch.allclose(mdl.adaptive_avg_pool2d_exact(x, b), ref, atol=1e-12)


@pytest.mark.slow
def test_paper_profile_builds_and_runs_small_input():
    torch.manual_seed(0)
    cfg = mdl.load_profile('paper', pretrained=False, num_classes=3)
    net = mdl.build_model(cfg).eval()
    assert net.fusion[0].kernel_size == (3, 3) and net.fusion[0].out_channels == 512
    with torch.no_grad():
        logits, feats = net(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 3, 64, 64) and feats.shape == (1, 3, 64, 64)


def test_checkpoint_round_trip_ema_and_model(tmp_path):
    cfg = tiny_cfg()
    net = mdl.build_model(cfg).eval()
    ema = {k: (v + 0.01 if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    names = ['background', 'mug', 'box', 'can']
    payload = mdl.checkpoint_payload(net, cfg, names, ema_state=ema, step=12)
    assert set(payload) >= {'model', 'ema', 'model_cfg', 'class_names', 'step'}
    assert isinstance(payload['model_cfg'], dict)
    path = tmp_path / 'ckpt.pt'
    torch.save(payload, path)
    for weights, ref in (('ema', ema), ('model', net.state_dict())):
        net2, cfg2, names2 = mdl.model_from_checkpoint(str(path), weights=weights)
        assert cfg2 == cfg and names2 == names and not net2.training
        for k, v in net2.state_dict().items():
            assert torch.equal(v, ref[k]), k
    with pytest.raises(ValueError, match='class names'):
        mdl.checkpoint_payload(net, cfg, ['a', 'b'])


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match='not found'):
        mdl.model_from_checkpoint(str(tmp_path / 'missing.pt'))
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='junk.pt'):
        mdl.model_from_checkpoint(str(junk))
    other = tmp_path / 'other.pt'
    torch.save({'weights': torch.zeros(3)}, other)
    with pytest.raises(ValueError, match='not a sam2real checkpoint'):
        mdl.model_from_checkpoint(str(other))
    cfg = tiny_cfg()
    payload = mdl.checkpoint_payload(mdl.build_model(cfg), cfg, list('abcd'))
    payload['model_cfg']['fpn_channels'] = 8
    with pytest.raises(ValueError, match='do not match'):
        mdl.model_from_checkpoint(payload)


def test_pretrained_path_loads_local_weights(tmp_path):
    import timm
    torch.manual_seed(1)
    ref = timm.create_model('convnext_atto', pretrained=False)
    path = tmp_path / 'convnext_atto.pth'
    torch.save(ref.state_dict(), path)
    net = mdl.build_model(tiny_cfg(pretrained=True, pretrained_path=str(path)))
    loaded = net.backbone.state_dict()
    assert torch.equal(loaded['stem_0.weight'], ref.state_dict()['stem.0.weight'])
    with pytest.raises(RuntimeError, match='pretrained_path not found'):
        mdl.build_model(tiny_cfg(pretrained=True, pretrained_path=str(tmp_path / 'no.pth')))


def test_unreachable_hub_fails_fast_telling_to_set_pretrained_path(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub
    monkeypatch.setenv('HF_ENDPOINT', 'http://127.0.0.1:9')  # nothing listens on port 9
    monkeypatch.setattr(hub, 'HF_HUB_CACHE', str(tmp_path))  # empty cache
    offline_before = hub.HF_HUB_OFFLINE
    with pytest.raises(RuntimeError, match='set pretrained_path'):
        mdl.build_model(tiny_cfg(pretrained=True))
    assert hub.HF_HUB_OFFLINE == offline_before  # the offline switch is restored


def test_colorize_labels_palette():
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    rgb = colorize_labels(labels)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 0).all()
    assert len({tuple(c) for c in rgb.reshape(-1, 3)}) == 4
    with pytest.raises(ValueError, match='num_classes'):
        colorize_labels(labels, num_classes=3)
    with pytest.raises(ValueError, match='HxW'):
        colorize_labels(np.zeros((2, 2, 3), np.uint8))


def test_features_to_rgb_normalizes_per_frame():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(20, 30, 3)).astype(np.float32) * np.array([1, 100, 0.01], np.float32)
    rgb = features_to_rgb(f)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    assert (rgb.reshape(-1, 3).min(0) == 0).all() and (rgb.reshape(-1, 3).max(0) == 255).all()
    gray = features_to_rgb(f[:, :, :1])
    assert (gray[:, :, 0] == gray[:, :, 2]).all()
    two = features_to_rgb(f[:, :, :2])
    assert (two[:, :, 2] == 128).all()
    assert (features_to_rgb(np.zeros((4, 4, 3))) == 0).all()
