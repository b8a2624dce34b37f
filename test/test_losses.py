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

"""Segment pooling losses (Eq. 2-6, 9) against a direct float64 transcription, and Eq. 1."""
import numpy as np
import pytest
from sam2real_ros.sam.mask_layers import MaskLayers
from sam2real_ros.training import losses
import torch
import torch.nn.functional as F


def reference(features, masks, margin=0.5):
    """Direct transcription of Eq. 2-5 (loops, ordered pairs i != j with 2/(N(N-1)))."""
    d = features.shape[0]
    segs = [m for m in masks if m.any()]
    mus, vs, sizes = [], [], []
    for m in segs:
        zp = features[:, torch.as_tensor(m)]  # D x |S|
        mu = zp.mean(dim=1)  # Eq. 2
        mus.append(mu)
        vs.append(((zp - mu[:, None]) ** 2).sum(dim=1))  # Eq. 3
        sizes.append(zp.shape[1])
    n = len(segs)
    zero = features.sum() * 0
    if n == 0:
        return zero, zero
    inv = sum(v.abs().sum() for v in vs) / d / sum(sizes)  # Eq. 4
    if n < 2:
        return inv, zero
    total = zero
    for i in range(n):
        for j in range(n):
            if i != j:
                total = total + torch.relu(margin - torch.linalg.vector_norm(mus[i] - mus[j]))
    # Eq. 5 with the sum over ordered pairs is twice the unordered-pair mean; halve it.
    var = total / (n * (n - 1))
    return inv, var


def random_case(seed, n=6, d=3, h=9, w=11):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(d, h, w, generator=g, dtype=torch.float64) * 0.3
    masks = torch.rand(n, h, w, generator=g) < 0.35  # overlapping, random
    masks[0] = False  # one empty segment
    masks[1] = masks[2] | masks[3]  # a segment containing others (over-segmentation)
    return feats, masks.numpy()


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_values_and_gradients_match_direct_transcription(seed):
    feats, masks = random_case(seed)
    a = feats.clone().requires_grad_(True)
    out = losses.segment_pooling_losses(a, masks, margin=0.5)
    b = feats.clone().requires_grad_(True)
    inv_ref, var_ref = reference(b, masks)
    assert out['n'] == 5
    assert out['inv'].item() > 0 and out['var'].item() > 0
    assert torch.allclose(out['inv'], inv_ref, atol=1e-10)
    assert torch.allclose(out['var'], var_ref, atol=1e-10)
    (out['inv'] + 2 * out['var']).backward()
    (inv_ref + 2 * var_ref).backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-10)


def test_float32_upsampled_features_match_reference():
    feats, masks = random_case(3, h=16, w=20)
    low = feats[:, ::2, ::2].float()
    out = losses.segment_pooling_losses(low, masks)
    up = F.interpolate(low.detach().double()[None], size=(16, 20), mode='bilinear',
                       align_corners=False)[0]
    inv_ref, var_ref = reference(up, masks)
    assert abs(float(out['inv']) - float(inv_ref)) < 1e-5
    assert abs(float(out['var']) - float(var_ref)) < 1e-5


def test_gradcheck_segment_stats():
    feats, masks = random_case(4, h=5, w=6)
    layers = MaskLayers.from_masks(masks)
    z = feats.clone().requires_grad_(True)

    def stats(x):
        count, mu, v = losses.segment_stats(x, layers)
        return mu, v
    assert torch.autograd.gradcheck(stats, (z,))


def _tight_case(spread, n=60, d=3, h=48, w=64, seed=0):
    """Float32 features: n disjoint segments, each a random mean ~N(0, 1) plus ``spread``."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n, (h, w), generator=g)
    masks = (labels[None] == torch.arange(n)[:, None, None]).numpy()
    means = torch.randn(n, d, generator=g, dtype=torch.float64) * 3.0 + 5.0
    feats = means[labels].permute(2, 0, 1) + spread * torch.randn(d, h, w, generator=g,
                                                                  dtype=torch.float64)
    return feats.float(), masks


@pytest.mark.parametrize('spread', [1e-3, 1e-4])
def test_invariance_of_tight_segments_matches_float64(spread):
    """Eq. 3-4 in float32 against float64 for spreads where sum z^2 - |S| mu^2 breaks down."""
    feats, masks = _tight_case(spread)
    a = feats.clone().requires_grad_(True)
    count, mu, v = losses.segment_stats(a, masks)
    b = feats.double().requires_grad_(True)
    ref = [((b[:, torch.as_tensor(m)] - b[:, torch.as_tensor(m)].mean(1, keepdim=True)) ** 2)
           .sum(1) for m in masks]
    ref = torch.stack(ref)
    assert v.dtype == torch.float32
    rel = ((v.double() - ref).abs() / ref).max().item()
    assert rel < 1e-4, rel  # measured 8e-8 (spread 1e-3) and 6e-6 (1e-4)
    # gradient of the invariance loss (Eq. 4) per pixel: every segment keeps it
    out = losses.segment_pooling_losses(a, masks)
    out['inv'].backward()
    inv_ref = ref.sum() / 3 / float(count.detach().sum())
    inv_ref.backward()
    inv, inv_ref = out['inv'].detach().item(), inv_ref.detach().item()
    assert abs(inv - inv_ref) < 1e-6 * inv_ref  # measured 8e-8
    err = (a.grad.double() - b.grad).abs().max() / b.grad.abs().max()
    assert err < 1e-6, err.item()  # measured 5e-8
    for m in masks:
        assert a.grad[:, torch.as_tensor(m)].abs().sum() > 0


@pytest.mark.parametrize('spread', [1e-6, 1e-8])
def test_float64_features_use_the_two_pass_variance(spread):
    """Float64 input: Eq. 3 as sum (z - mu)^2, where sum z^2 - |S| mu^2 loses every digit."""
    feats, masks = _tight_case(1.0)
    g = torch.Generator().manual_seed(1)
    labels = torch.as_tensor(np.argmax(masks, 0))
    means = torch.randn(len(masks), feats.shape[0], generator=g, dtype=torch.float64) * 3.0 + 5.0
    feats = means[labels].permute(2, 0, 1) + spread * torch.randn(
        feats.shape, generator=g, dtype=torch.float64)
    count, mu, v = losses.segment_stats(feats, masks)
    ref = torch.stack([((feats[:, torch.as_tensor(m)]
                         - feats[:, torch.as_tensor(m)].mean(1, keepdim=True)) ** 2).sum(1)
                       for m in masks])
    assert v.dtype == torch.float64
    rel = ((v - ref).abs() / ref).max().item()
    assert rel < 1e-6, rel  # the one-pass form was 123 % off at spread 1e-8


def test_ordered_pairs_option_doubles_eq5():
    feats, masks = random_case(7)
    un = losses.segment_pooling_losses(feats, masks)
    ordered = losses.segment_pooling_losses(feats, masks, pairs='ordered')
    inv_ref, var_ref = reference(feats, masks)
    # the literal reading: sum over ordered pairs i != j times 2/(N(N-1))
    assert torch.allclose(ordered['var'], 2 * var_ref, atol=1e-12)
    assert torch.allclose(ordered['var'], 2 * un['var']) and ordered['inv'] == un['inv']
    with pytest.raises(ValueError, match='pairs'):
        losses.segment_pooling_losses(feats, masks, pairs='both')


def test_mask_layers_and_dense_masks_give_the_same_loss():
    feats, masks = random_case(8, n=12, h=20, w=24)
    dense = losses.segment_pooling_losses(feats, masks)
    layered = losses.segment_pooling_losses(feats, MaskLayers.from_masks(masks))
    assert dense['n'] == layered['n'] == 11
    assert torch.equal(dense['inv'], layered['inv']) and torch.equal(dense['var'], layered['var'])


def test_bfloat16_features_are_pooled_in_float32():
    feats, masks = random_case(9)
    out = losses.segment_pooling_losses(feats.to(torch.bfloat16), masks)
    assert out['inv'].dtype == torch.float32 and out['var'].dtype == torch.float32
    ref = losses.segment_pooling_losses(feats.to(torch.bfloat16).float(), masks)
    assert torch.equal(out['inv'], ref['inv'])


def test_identical_segments_give_finite_gradients():
    feats = torch.randn(3, 8, 8, requires_grad=True)
    masks = np.zeros((3, 8, 8), bool)
    masks[0, :4] = True
    masks[1, :4] = True  # identical to mask 0: zero distance between means
    masks[2, 4:] = True
    out = losses.real_loss(feats[None], [masks])
    out['loss'].backward()
    assert torch.isfinite(out['loss'])
    assert torch.isfinite(feats.grad).all()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_eq5_gradient_near_and_at_equal_means(dtype):
    """
    The docstring's claim: a unit push however close the means are, 0 only when bitwise equal.

    Two segments of constant features; the hinge of their one pair is ``margin - d``, whose
    gradient w.r.t. ``mu_0`` is ``-(mu_0 - mu_1) / d`` (norm 1), spread over the pixels of
    segment 0 (``1 / |S_0|`` each). At ``d = 0`` (means bitwise equal) torch gives 0.
    """
    masks = np.zeros((2, 4, 6), bool)
    masks[0, :, :3] = True
    masks[1, :, 3:] = True
    for eps, push in ((1e-2, 1.0), (1e-6, 1.0), (0.0, 0.0)):
        feats = torch.full((3, 4, 6), 0.5, dtype=dtype)
        feats[0, :, 3:] += eps
        feats[1, :, 3:] -= eps
        feats.requires_grad_(True)
        out = losses.segment_pooling_losses(feats, masks)
        assert out['var'].item() == pytest.approx(0.5 - np.sqrt(2) * eps, abs=1e-6)
        out['var'].backward()
        g0 = feats.grad[:, masks[0]].sum(1)  # = dvar / dmu_0
        assert torch.isfinite(feats.grad).all()
        assert float(torch.linalg.vector_norm(g0)) == pytest.approx(push, abs=1e-5), eps
        if push:  # mu_0 is pushed away from mu_1 (gradient descent moves it along -g0)
            assert float(g0[0]) > 0 and float(g0[1]) < 0


def test_constant_features_unordered_pair_normalization():
    # All means equal -> every pair is a full margin violation: Eq. 5 == margin exactly
    # (the ordered-pair sum with 2/(N(N-1)) would give 2 * margin).
    feats = torch.full((3, 6, 6), 0.7, requires_grad=True)
    masks = np.zeros((4, 6, 6), bool)
    masks[0, :3], masks[1, 3:], masks[2, :, :2], masks[3, 1:5, 1:5] = True, True, True, True
    out = losses.segment_pooling_losses(feats, masks, margin=0.5)
    assert out['var'].item() == pytest.approx(0.5)
    assert out['inv'].item() == pytest.approx(0.0, abs=1e-7)
    out['var'].backward()
    assert torch.isfinite(feats.grad).all()


def test_two_segments_hand_computed():
    # Segment means (0.1, 0, 0) and (0.4, 0, 0): distance 0.3, hinge 0.5 - 0.3 = 0.2.
    feats = torch.zeros(3, 2, 4, dtype=torch.float64)
    feats[0, :, :2] = torch.tensor([[0.0, 0.2], [0.0, 0.2]])
    feats[0, :, 2:] = 0.4
    masks = np.zeros((2, 2, 4), bool)
    masks[0, :, :2] = True
    masks[1, :, 2:] = True
    out = losses.segment_pooling_losses(feats, masks)
    assert float(out['var']) == pytest.approx(0.2)
    # v_0 = 4 * 0.1^2 = 0.04 in dim 0; Eq. 4: (0.04 / 3) / 8 pixels.
    assert float(out['inv']) == pytest.approx(0.04 / 3 / 8)


@pytest.mark.parametrize('n', [0, 1])
def test_frames_without_pairs_give_zero_with_graph(n):
    feats = torch.randn(3, 5, 5, requires_grad=True)
    masks = np.zeros((max(n, 1), 5, 5), bool)
    if n:
        masks[0, 1:3, 1:3] = True
    out = losses.real_loss(feats, masks)
    assert out['var'].item() == 0.0
    if n == 0:
        assert out['loss'].item() == 0.0
    out['loss'].backward()  # graph is valid
    assert feats.grad is not None and torch.isfinite(feats.grad).all()
    empty = losses.segment_pooling_losses(feats, np.zeros((0, 5, 5), bool))
    assert empty['n'] == 0 and empty['inv'].item() == 0.0


def test_real_loss_eq9_and_batch_mean():
    f1, m1 = random_case(5)
    f2, m2 = random_case(6)
    feats = torch.stack([f1, f2])
    parts = [losses.segment_pooling_losses(f, m) for f, m in ((f1, m1), (f2, m2))]
    inv = (parts[0]['inv'] + parts[1]['inv']) / 2
    var = (parts[0]['var'] + parts[1]['var']) / 2
    for beta in (1.0, 0.5, 1.5):
        out = losses.real_loss(feats, [m1, m2], alpha=0.05, beta=beta)
        assert float(out['loss']) == pytest.approx(float(0.05 * (beta * inv + (2 - beta) * var)))
    eq6 = losses.real_loss(feats, [m1, m2], alpha=0.05)
    assert float(eq6['loss']) == pytest.approx(float(0.05 * (inv + var)))


def test_bad_mask_shape_is_a_clear_error():
    with pytest.raises(ValueError, match='NxHxW'):
        losses.segment_pooling_losses(torch.zeros(3, 4, 4), np.zeros((4, 4), bool))


def test_supervised_loss_eq1_and_ignore():
    logits = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    labels = torch.randint(0, 4, (1, 3, 3))
    labels[0, 0, 0] = 255
    got = losses.supervised_loss(logits, labels.to(torch.uint8))
    logp = torch.log_softmax(logits, dim=1)[0]
    terms = [-logp[labels[0, y, x], y, x] for y in range(3) for x in range(3)
             if labels[0, y, x] != 255]
    assert float(got) == pytest.approx(float(sum(terms) / len(terms)))
    all_ignored = torch.full((1, 3, 3), 255)
    assert float(losses.supervised_loss(logits, all_ignored)) == 0.0


def test_sam_pseudolabels_best_iou_mask_per_class():
    pred = np.zeros((6, 6), np.uint8)
    pred[0:3, 0:3] = 2  # object 2
    pred[4:6, 4:6] = 5  # object 5
    masks = np.zeros((3, 6, 6), bool)
    masks[0, 0:3, 0:2] = True  # IoU 6/9 with class 2
    masks[1, 0:4, 0:4] = True  # IoU 9/16 with class 2
    masks[2, 3:6, 3:6] = True  # IoU 4/9 with class 5
    out = losses.sam_pseudolabels(pred, masks)
    expected = np.full((6, 6), 255, np.uint8)
    expected[masks[0]] = 2
    expected[masks[2]] = 5
    assert np.array_equal(out, expected)


def _peak_rss_reset():
    """Reset the process's peak RSS (Linux ``clear_refs``); False where that is not allowed."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmHWM'))


def _rss():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmRSS'))


@pytest.mark.slow
def test_many_masks_from_store_to_loss_never_dense(tmp_path):
    """
    900 masks of a 480x640 frame: store -> dataset -> batch -> loss + backward, no NxHxW.

    As NxHxW bool (numpy or torch) these masks take 276 MB. Numpy allocations on the whole
    path are traced (tracemalloc) and the process's peak memory is measured (covers torch
    too): both stay far below one dense copy, so building one anywhere on the path fails.
    """
    import tracemalloc

    import cv2
    from sam2real_ros.data.datasets import build_unlabeled
    from sam2real_ros.sam.mask_store import MaskStore
    from sam2real_ros.training.batching import prepare_batch

    h, w = 480, 640
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    grids = [(rows * gy // h) * gx + cols * gx // w for gy, gx in ((5, 6), (14, 15), (22, 30))]
    n = sum(gy * gx for gy, gx in ((5, 6), (14, 15), (22, 30)))
    assert n == 900
    dense = np.zeros((n, h, w), bool)
    offset = 0
    for g in grids:  # three tilings of the frame: coarse, medium, fine
        dense[offset + g, rows, cols] = True
        offset += int(g.max()) + 1
    dense_bytes = dense.nbytes
    assert dense.shape == (n, h, w) and dense_bytes == 276_480_000
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(tmp_path / 'frame.png'), rgb[:, :, ::-1])
    MaskStore(tmp_path / 'masks').write('frame.png', dense, np.ones((n, 2)))
    del dense
    ds = build_unlabeled({'type': 'image_folder', 'root': str(tmp_path)})
    feats = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    feats.requires_grad_(True)

    rss_reset = _peak_rss_reset()
    rss0 = _rss()
    tracemalloc.start()
    try:
        sample = ds[0]
        batch = prepare_batch([sample], None, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), ('masks',),
                              'real')
        out = losses.real_loss(feats, batch['masks'])
        out['loss'].backward()
        numpy_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    peak_growth = _peak_rss() - rss0
    assert out['n'] == n and len(batch['masks'][0]) == n
    assert batch['masks'][0].num_layers == 3
    assert torch.isfinite(feats.grad).all() and feats.grad.abs().sum() > 0
    # the store's bit-packed masks read from the file (twice 1/8 of dense), then unpacked 32
    # masks at a time into the layers: 70 MB
    assert numpy_peak < dense_bytes / 3, numpy_peak
    if rss_reset:  # a dense copy anywhere adds its 276 MB; measured 84-108 MB in all
        assert peak_growth < 0.8 * dense_bytes, peak_growth
