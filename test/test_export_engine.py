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

"""ONNX export (parity, metadata, CLI) and the inference engine on real files."""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sam2real_ros.inference import export
from sam2real_ros.inference.engine import (choose_providers, ModelLoadError, SegmentationEngine,
                                           trt_cache_dir)
from sam2real_ros.modeling import model as mdl
from sam2real_ros.modeling.preprocessing import preprocess
import torch

CLASSES = ['background', 'mug', 'box']


def model_input(rgb, cfg):
    """Return the network input of ``rgb`` for ``cfg`` as a tensor (the engine's preprocessing)."""
    return torch.from_numpy(preprocess(rgb, cfg.mean, cfg.std, cfg.input_size))


def tiny_cfg(**kw):
    """Make a small random-weight config (top level 7x9 at 200x260: bins 2, 3, 6 do not divide)."""
    base = {'backbone': 'convnext_atto', 'pretrained': False, 'num_classes': 3, 'fpn_channels': 16,
            'fusion_channels': 32, 'feature_hidden': 24, 'fusion_stride': 4, 'fusion_kernel': 3,
            'input_size': (200, 260), 'name': 'tiny'}
    base.update(kw)
    return mdl.ModelConfig(**base)


def frame(h=480, w=640, seed=0):
    """Make a 640x480 test frame with smooth structure (few exact logit ties)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], -1)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def fast_onnx(tmp_path_factory):
    """Export the fast profile with random weights through the CLI."""
    out = tmp_path_factory.mktemp('fast') / 'fast.onnx'
    rc = export.main(['--random', '--profile', 'fast', '--classes', ','.join(CLASSES),
                      '--out', str(out)])
    assert rc == 0
    return out


@pytest.fixture(scope='module')
def tiny_ckpt_and_onnx(tmp_path_factory):
    """Save a tiny checkpoint (.pt, EMA differs from model) and export it to ONNX."""
    d = tmp_path_factory.mktemp('tiny')
    torch.manual_seed(0)
    cfg = tiny_cfg()
    net = mdl.build_model(cfg).eval()
    ema_net = mdl.build_model(cfg).eval()  # different random weights
    ckpt = d / 'tiny.pt'
    torch.save(mdl.checkpoint_payload(net, cfg, CLASSES, ema_state=ema_net.state_dict()), ckpt)
    res = export.export_onnx(ema_net, cfg, CLASSES, str(d / 'tiny.onnx'))
    return ckpt, d / 'tiny.onnx', res


def test_fast_export_is_one_file_with_metadata_and_matches_torch(fast_onnx):
    assert not os.path.exists(str(fast_onnx) + '.data')
    assert list(os.listdir(fast_onnx.parent)) == ['fast.onnx']
    proto = onnx.load(str(fast_onnx))
    assert proto.opset_import[0].version >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta['class_names']) == CLASSES
    assert json.loads(meta['input_size']) == [192, 256]
    assert json.loads(meta['mean']) == list(mdl.IMAGENET_MEAN)
    assert meta['profile'] == 'fast' and meta['feature_dim'] == '3' and meta['sam2real_version']
    sess = ort.InferenceSession(str(fast_onnx), providers=['CPUExecutionProvider'])
    assert [i.name for i in sess.get_inputs()] == ['image']
    assert list(sess.get_inputs()[0].shape) == [1, 3, 192, 256]
    assert [o.name for o in sess.get_outputs()] == ['logits', 'features', 'labels']
    assert sess.get_outputs()[2].type == 'tensor(uint8)'
    assert list(sess.get_outputs()[2].shape) == [1, 192, 256]
    # `--random` seeds torch with --seed (default 0): rebuild the same weights and compare.
    cfg = mdl.load_profile('fast', num_classes=3, pretrained=False)
    torch.manual_seed(0)
    net = mdl.build_model(cfg).eval()
    x = model_input(frame(), cfg)
    ol, of, olab = sess.run(None, {'image': x.numpy()})
    with torch.no_grad():
        tl, tf = net(x)
    assert np.abs(ol - tl.numpy()).max() < 1e-4
    assert np.abs(of - tf.numpy()).max() < 1e-4
    # The graph's ArgMax: the labels are the argmax of its own logits, first index on ties.
    assert olab.dtype == np.uint8 and np.array_equal(olab, np.argmax(ol, axis=1))
    assert np.mean(olab == tl.argmax(1).numpy()) > 0.999


def test_non_dividing_ppm_export_parity(tiny_ckpt_and_onnx):
    ckpt, onnx_path, res = tiny_ckpt_and_onnx
    assert res['input_size'] == [200, 260]
    # Independent check with another input: onnxruntime vs torch on the EMA weights.
    net, cfg, _ = mdl.model_from_checkpoint(str(ckpt), weights='ema')
    x = model_input(frame(), cfg)
    sess = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    ol, of = sess.run(['logits', 'features'], {'image': x.numpy()})
    with torch.no_grad():
        tl, tf = net(x)
    assert np.abs(ol - tl.numpy()).max() < 1e-4
    assert np.abs(of - tf.numpy()).max() < 1e-4
    assert res['max_abs_diff_logits'] < 1e-4


def test_engine_predicts_at_frame_size(fast_onnx):
    eng = SegmentationEngine.load(str(fast_onnx), threads=2)
    assert eng.class_names == CLASSES and eng.input_size == (192, 256)
    assert eng.backend == 'onnxruntime' and 'CPUExecutionProvider' in eng.providers
    rgb = frame()
    pred = eng.predict(rgb)
    assert pred.labels.shape == (480, 640) and pred.labels.dtype == np.uint8
    assert pred.labels.max() < len(CLASSES)
    assert pred.features.shape == (480, 640, 3) and pred.features.dtype == np.float32
    assert eng.predict(rgb, want_features=False).features is None
    assert np.array_equal(eng.predict(rgb, want_features=False).labels, pred.labels)
    quiet = SegmentationEngine.load(str(fast_onnx), threads=2, allow_spinning=False)
    assert np.array_equal(quiet.predict(rgb).labels, pred.labels)
    small = eng.predict(frame(123, 77))
    assert small.labels.shape == (123, 77) and small.features.shape == (123, 77, 3)
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        eng.predict(rgb.astype(np.float32))
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        eng.predict(rgb[:, :, 0])


def test_torch_and_onnx_backends_agree(tiny_ckpt_and_onnx):
    ckpt, onnx_path, _ = tiny_ckpt_and_onnx
    e_onnx = SegmentationEngine.load(str(onnx_path))
    e_torch = SegmentationEngine.load(str(ckpt), device='cpu')
    assert e_torch.backend == 'torch' and e_torch.class_names == CLASSES
    assert e_torch.input_size == e_onnx.input_size == (200, 260)
    rgb = frame(seed=3)
    a, b = e_onnx.predict(rgb), e_torch.predict(rgb)
    assert a.labels.shape == b.labels.shape == (480, 640)
    # Identical up to ties between near-equal logits (ONNX ~1e-6 numeric noise).
    assert np.mean(a.labels == b.labels) > 0.999
    assert np.abs(a.features - b.features).max() < 1e-3
    assert len(np.unique(b.labels)) > 1  # random weights still give several classes


def test_export_cli_from_checkpoint_and_errors(tiny_ckpt_and_onnx, tmp_path, capsys):
    ckpt, _, _ = tiny_ckpt_and_onnx
    out = tmp_path / 'model.onnx'
    assert export.main([str(ckpt), '--out', str(out), '--weights', 'model', '--no-verify',
                        '--size', '96x128']) == 0
    eng = SegmentationEngine.load(str(out))
    assert eng.input_size == (96, 128) and eng.metadata['profile'] == 'tiny'
    capsys.readouterr()
    assert export.main([str(tmp_path / 'missing.pt'), '--out', str(tmp_path / 'x.onnx')]) == 2
    err = capsys.readouterr().err
    assert 'missing.pt' in err and len(err.strip().splitlines()) == 1
    assert export.main(['--random', '--classes', ','.join(f'c{i}' for i in range(300)),
                        '--out', str(tmp_path / 'y.onnx')]) == 2
    assert 'at most 256' in capsys.readouterr().err
    assert export.main(['--random', '--profile', 'nope', '--out', str(tmp_path / 'z.onnx')]) == 2
    assert 'unknown model profile' in capsys.readouterr().err
    assert not any(p.suffix == '.onnx' and p.name != 'model.onnx' for p in tmp_path.iterdir())


def test_engine_load_errors(tiny_ckpt_and_onnx, tmp_path):
    ckpt, onnx_path, _ = tiny_ckpt_and_onnx
    with pytest.raises(ModelLoadError, match='not found'):
        SegmentationEngine.load(str(tmp_path / 'nope.onnx'))
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'\x00garbage' * 10)
    with pytest.raises(ModelLoadError, match='not a readable ONNX model'):
        SegmentationEngine.load(str(garbage))
    proto = onnx.load(str(onnx_path))
    del proto.metadata_props[:]
    plain = tmp_path / 'plain.onnx'
    onnx.save(proto, str(plain))
    with pytest.raises(ModelLoadError, match='without sam2real metadata'):
        SegmentationEngine.load(str(plain))
    proto = onnx.load(str(onnx_path))
    for p in proto.metadata_props:
        if p.key == 'class_names':
            p.value = json.dumps([f'c{i}' for i in range(300)])
    many = tmp_path / 'many.onnx'
    onnx.save(proto, str(many))
    with pytest.raises(ModelLoadError, match='at most 256'):
        SegmentationEngine.load(str(many))
    with pytest.raises(ModelLoadError, match='needs an .onnx'):
        SegmentationEngine.load(str(ckpt), backend='onnxruntime')
    with pytest.raises(ModelLoadError, match='backend must be'):
        SegmentationEngine.load(str(onnx_path), backend='tensorflow')
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        with pytest.raises(ModelLoadError, match='cuda'):
            SegmentationEngine.load(str(onnx_path), device='cuda')


def strip_labels_output(src, dst):
    """Write ``src`` as a model exported before the ArgMax existed (no ``labels`` output)."""
    proto = onnx.load(str(src))
    keep = [o for o in proto.graph.output if o.name != 'labels']
    del proto.graph.output[:]
    proto.graph.output.extend(keep)
    while True:  # drop the nodes nothing needs any more (Cast, ArgMax)
        needed = {o.name for o in proto.graph.output}
        needed |= {i for n in proto.graph.node for i in n.input}
        dead = [n for n in proto.graph.node if not set(n.output) & needed]
        if not dead:
            break
        for n in dead:
            proto.graph.node.remove(n)
    onnx.save(proto, str(dst))


def test_engine_uses_the_graph_argmax_and_old_models_still_work(fast_onnx, tmp_path):
    old = tmp_path / 'old.onnx'
    strip_labels_output(fast_onnx, old)
    sess = ort.InferenceSession(str(old), providers=['CPUExecutionProvider'])
    assert [o.name for o in sess.get_outputs()] == ['logits', 'features']
    assert not any(n.op_type == 'ArgMax' for n in onnx.load(str(old)).graph.node)
    new_eng = SegmentationEngine.load(str(fast_onnx), threads=1)
    old_eng = SegmentationEngine.load(str(old), threads=1)
    assert new_eng.labels_in_graph and not old_eng.labels_in_graph
    for seed in (0, 1):
        rgb = frame(seed=seed)
        a, b = new_eng.predict(rgb), old_eng.predict(rgb)
        assert a.labels.dtype == b.labels.dtype == np.uint8
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.features, b.features)
        assert np.array_equal(new_eng.predict(rgb, want_features=False).labels, a.labels)


def test_provider_choice_follows_what_onnxruntime_offers():
    cpu = ['CPUExecutionProvider']
    assert choose_providers(cpu) == (cpu, False)
    assert choose_providers(['AzureExecutionProvider', *cpu], 'auto') == (cpu, False)
    with pytest.raises(ModelLoadError, match='onnxruntime-gpu'):
        choose_providers(cpu, 'cuda')
    with pytest.raises(ModelLoadError, match='device must be'):
        choose_providers(cpu, 'tpu')
    cuda = ['CUDAExecutionProvider', *cpu]
    assert choose_providers(cuda, 'auto') == (['CUDAExecutionProvider', *cpu], False)
    assert choose_providers(cuda, 'cuda', fp16=True) == (['CUDAExecutionProvider', *cpu], False)
    assert choose_providers(cuda, 'cpu') == (cpu, False)
    trt = ['TensorrtExecutionProvider', *cuda]
    providers, fp16 = choose_providers(trt, 'cuda', cache_dir='/cache/abc')
    assert fp16 is True
    assert [p if isinstance(p, str) else p[0] for p in providers] == trt
    options = providers[0][1]
    assert options['trt_fp16_enable'] is True and options['trt_engine_cache_enable'] is True
    assert options['trt_engine_cache_path'] == options['trt_timing_cache_path'] == '/cache/abc'
    providers, fp16 = choose_providers(trt, 'auto', fp16=False)
    assert fp16 is False and providers[0] == ('TensorrtExecutionProvider',
                                              {'trt_fp16_enable': False})
    assert choose_providers(trt, 'cpu') == (cpu, False)


def test_trt_cache_folder_follows_the_model_content(tmp_path, monkeypatch):
    monkeypatch.setenv('SAM2REAL_TRT_CACHE', str(tmp_path / 'cache'))
    model = tmp_path / 'model.onnx'
    model.write_bytes(b'weights of run 1')
    first = trt_cache_dir(model)
    assert first.startswith(str(tmp_path / 'cache'))
    assert trt_cache_dir(model) == first
    model.write_bytes(b'weights of run 2')  # same path, new weights: a new engine is built
    assert trt_cache_dir(model) != first
    assert trt_cache_dir(model, base='/elsewhere').startswith('/elsewhere/')
