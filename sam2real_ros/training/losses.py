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
Training losses: supervised cross entropy (Eq. 1) and SAM segment pooling (Eq. 2-6, 9).

Conventions (see docs/training.md for the mapping equation -> code):

* Dense features ``z`` are ``DxHxW`` (one frame) or ``BxDxHxW`` float tensors; SAM segments of a
  frame are :class:`sam2real_ros.sam.mask_layers.MaskLayers` (or ``NxHxW`` bool arrays, which
  are converted): overlapping masks held as a few label layers, never an ``NxHxW`` tensor. The
  segment sums are one ``index_add`` per layer, recomputed in the backward pass, so memory grows
  with the pixel count and the number of layers, not with N x H x W.
* Eq. 3 is computed in two passes in float64 (features centred by their frame mean;
  bfloat16/float16/float32 features are upcast): the means first, then
  ``v_i = sum (z - mu_i)^2``. The one-pass form ``sum z^2 - |S_i| mu_i^2`` loses all digits
  for tight segments (spread small against the mean): in float32 at a spread of 1e-3, and in
  float64 too at a spread of 1e-8. Its gradient is ``2 (z_p - mu_i)`` per pixel, also
  computed in float64.
* Eq. 5 (``pairs='unordered'``, default) is the mean of the hinge over unordered pairs,
  ``2/(N(N-1)) * sum_{i<j}``, i.e. ``2/(N(N-1))`` counts unordered pairs; ``pairs='ordered'``
  reads the sum literally over ordered pairs ``i != j`` with the same factor, which is exactly
  twice that. Distances use ``torch.linalg.vector_norm``. The hinge ``max(0, m - d_ij)`` has,
  for ``0 < d_ij < m``, the gradient ``-(mu_i - mu_j) / d_ij`` w.r.t. ``mu_i``: a unit vector
  however small ``d_ij`` is. At ``d_ij = 0`` it is not differentiable (every vector of norm
  <= 1 is a subgradient); torch returns 0 there, which happens only when the two means are
  bitwise equal (e.g. two identical masks), never NaN.
* Empty segments (``|S_i| = 0``) are dropped before counting ``N``. With ``N < 2`` the variance
  loss is 0, with ``N = 0`` the invariance loss is 0; both stay connected to the graph.
"""
import numpy as np
from sam2real_ros.common.labels import IGNORE_INDEX
from sam2real_ros.sam.mask_layers import as_mask_layers
import torch
import torch.nn.functional as F

PAIRS = ('unordered', 'ordered')


class SegmentMoments(torch.autograd.Function):
    """
    Per-segment pixel count, mean (Eq. 2) and unnormalized variance (Eq. 3), float64 sums.

    ``z`` is PxD, ``layers`` a list of ``(start, ids)``: the layer's pixels ``start ..
    start + len(ids)`` (its rows that hold segments) and their segment ids (int32 numpy, 0 =
    none, ``i + 1`` = segment ``i``; segments of one layer are disjoint); ``n`` is the number of
    segments. Pass 1: one ``index_add`` per layer accumulates ``[z, 1]`` in float64 (after
    subtracting the frame mean) -> ``mu_i``; pass 2: one ``index_add`` per layer of
    ``(z_p - mu_i)^2`` -> ``v_i``, which keeps its digits however tight the segment is
    (the one-pass ``sum z^2 - |S_i| mu_i^2`` does not, even in float64). Backward
    recomputes per layer instead of keeping per-pixel tensors alive: ``dL/dz_p = sum_{i: p in
    S_i} (dL/dmu_i / |S_i| + 2 dL/dv_i (z_p - mu_i))``, also in float64. Memory: O(P x D)
    besides the layers, whatever N is.
    """

    @staticmethod
    def forward(ctx, z, layers, n):
        d = z.shape[1]
        z64 = z.double()
        shift = z64.mean(dim=0, keepdim=True)
        zc = z64 - shift
        del z64
        zz = torch.cat([zc, zc.new_ones((zc.shape[0], 1))], dim=1)
        total = zc.new_zeros((n + 1, d + 1))
        for start, ids in layers:  # pass 1: sums and counts -> means (Eq. 2)
            idx = torch.from_numpy(ids).to(zz.device, torch.int64)
            total.index_add_(0, idx, zz[start:start + len(idx)])
        del zz
        count = total[:, d]
        mu = total[:, :d] / count.clamp(min=1.0)[:, None]
        v = zc.new_zeros((n + 1, d))
        for start, ids in layers:  # pass 2: squared deviations from the means (Eq. 3)
            idx = torch.from_numpy(ids).to(zc.device, torch.int64)
            dev = zc[start:start + len(idx)] - mu.index_select(0, idx)
            v.index_add_(0, idx, dev * dev)
        ctx.save_for_backward(zc, count, mu)
        ctx.layers, ctx.dtype = layers, z.dtype
        mean = torch.where(count[1:, None] > 0, mu[1:] + shift, 0.0)  # 0 when empty
        out = (count[1:].to(z.dtype), mean.to(z.dtype), v[1:].to(z.dtype))
        ctx.mark_non_differentiable(out[0])
        return out

    @staticmethod
    def backward(ctx, g_count, g_mu, g_v):
        zc, count, mu = ctx.saved_tensors
        d = zc.shape[1]
        g_mu, g_v = g_mu.double(), g_v.double()
        table = zc.new_zeros((count.shape[0], 2 * d))
        table[1:, :d] = g_mu / count[1:].clamp(min=1.0)[:, None] - 2.0 * g_v * mu[1:]
        table[1:, d:] = 2.0 * g_v
        grad = torch.zeros_like(zc)
        for start, ids in ctx.layers:
            idx = torch.from_numpy(ids).to(zc.device, torch.int64)
            t = table.index_select(0, idx)
            grad[start:start + len(idx)] += t[:, :d] + t[:, d:] * zc[start:start + len(idx)]
        return grad.to(ctx.dtype), None, None


def _layer_spans(layers):
    """
    Per layer the flat pixel span of its rows that hold segments, and their ids.

    Returns a list of ``(start, ids)``, ``ids`` an int32 numpy array (a view of the layer):
    converted to an int64 tensor one layer at a time, so no L x P int64 copy exists.
    """
    h, w = layers.shape
    out = []
    for layer in layers.layers:
        rows = np.flatnonzero(layer.any(1))
        if len(rows):
            out.append((int(rows[0]) * w, layer[rows[0]:rows[-1] + 1].reshape(-1)))
    return out


def segment_stats(features, masks):
    """
    Per-segment pixel count, mean (Eq. 2) and unnormalized variance (Eq. 3), two-pass.

    Arguments:
    ---------
      features (torch.Tensor): DxHxW float dense features ``z`` of one frame. When the masks
        have another size, the features are bilinearly upsampled to the mask size first.
        bfloat16/float16 features are computed in float32.
      masks (MaskLayers | np.ndarray | torch.Tensor): the frame's N segments (overlap allowed).

    Returns
    -------
      (torch.Tensor, torch.Tensor, torch.Tensor): ``count`` (N,) float pixel counts ``|S_i|``,
      ``mu`` (N, D) segment means (0 for empty segments), ``v`` (N, D) unnormalized variances.

    """
    if features.ndim != 3:
        raise ValueError(f'features must be DxHxW, got shape {tuple(features.shape)}')
    layers = as_mask_layers(masks)
    if features.dtype in (torch.float16, torch.bfloat16):
        features = features.float()
    if layers.shape != tuple(features.shape[1:]):
        features = F.interpolate(features[None], size=layers.shape, mode='bilinear',
                                 align_corners=False)[0]
    d = features.shape[0]
    z = features.reshape(d, -1).t().contiguous()  # P x D
    return SegmentMoments.apply(z, _layer_spans(layers), len(layers))


def segment_pooling_losses(features, masks, margin=0.5, pairs='unordered'):
    """
    Invariance (Eq. 4) and variance (Eq. 5) losses of one frame.

    Arguments:
    ---------
      features (torch.Tensor): DxHxW float dense features.
      masks (MaskLayers | np.ndarray | torch.Tensor): the frame's SAM segments (NxHxW bool
        arrays are converted); empty ones are ignored.
      margin (float): hinge margin of Eq. 5 (the paper's beta in Eq. 5; 0.5).
      pairs (str): Eq. 5 over ``unordered`` pairs (the mean, default) or ``ordered`` pairs
        (the literal sum over i != j with 2/(N(N-1)): twice the mean).

    Returns
    -------
      dict: ``inv`` and ``var`` (0-dim float32/64 tensors) and ``n`` (int, non-empty segments).

    """
    if pairs not in PAIRS:
        raise ValueError(f'pairs must be one of {PAIRS}, got {pairs!r}')
    count, mu, v = segment_stats(features, masks)
    keep = count > 0
    count, mu, v = count[keep], mu[keep], v[keep]
    n = int(count.shape[0])
    zero = (features.sum() * 0.0).to(mu.dtype)
    if n == 0:
        return {'inv': zero, 'var': zero, 'n': 0}
    inv = v.sum() / features.shape[0] / count.sum()
    if n < 2:
        return {'inv': inv, 'var': zero, 'n': n}
    i, j = torch.triu_indices(n, n, offset=1, device=mu.device)
    dist = torch.linalg.vector_norm(mu[i] - mu[j], dim=1)
    var = torch.relu(margin - dist).mean()  # == 2/(N(N-1)) * sum over unordered pairs
    if pairs == 'ordered':
        var = 2.0 * var
    return {'inv': inv, 'var': var, 'n': n}


def real_loss(features, masks, alpha=0.05, beta=1.0, margin=0.5, pairs='unordered'):
    """
    Regularization loss on real frames, Eq. 9 (Eq. 6 for ``beta=1``), averaged over frames.

    Arguments:
    ---------
      features (torch.Tensor): BxDxHxW (or DxHxW) float dense features.
      masks (list): B mask sets, one per frame (:class:`MaskLayers` or NxHxW bool; N may
        differ and may be 0).
      alpha (float): overall scale (0.05 in the paper).
      beta (float): invariance/variance balance of Eq. 9, in [0, 2].
      margin (float): hinge margin of Eq. 5.
      pairs (str): ``unordered`` or ``ordered`` reading of Eq. 5 (see
        :func:`segment_pooling_losses`).

    Returns
    -------
      dict: ``loss`` = ``alpha * (beta * inv + (2 - beta) * var)`` and the frame means of ``inv``
      and ``var`` (0-dim tensors), plus ``n`` (mean segment count, float).

    """
    if features.ndim == 3:
        features, masks = features[None], [masks]
    if len(masks) != features.shape[0]:
        raise ValueError(f'{features.shape[0]} feature maps but {len(masks)} mask sets')
    parts = [segment_pooling_losses(f, m, margin=margin, pairs=pairs)
             for f, m in zip(features, masks)]
    inv = torch.stack([p['inv'] for p in parts]).mean()
    var = torch.stack([p['var'] for p in parts]).mean()
    return {'loss': alpha * (beta * inv + (2.0 - beta) * var), 'inv': inv, 'var': var,
            'n': float(np.mean([p['n'] for p in parts]))}


def supervised_loss(logits, labels, ignore_index=IGNORE_INDEX):
    """
    Pixel-wise cross entropy, Eq. 1, averaged over the labeled pixels of the batch.

    Arguments:
    ---------
      logits (torch.Tensor): BxCxHxW float class logits.
      labels (torch.Tensor): BxHxW integer labels (uint8 allowed); ``ignore_index`` is skipped.

    Returns
    -------
      torch.Tensor: 0-dim loss (0 with a valid graph when every pixel is ignored).

    """
    labels = labels.to(device=logits.device, dtype=torch.long)
    if labels.shape[-2:] != logits.shape[-2:]:
        raise ValueError(f'labels {tuple(labels.shape)} do not match logits '
                         f'{tuple(logits.shape)}')
    if not bool((labels != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=ignore_index)


def sam_pseudolabels(pred, masks, background=0, ignore_index=IGNORE_INDEX):
    """
    Pseudolabels from SAM masks (Sec. IV-E-b): best-IoU mask per predicted object class.

    For every class predicted in ``pred`` (except ``background``) the SAM mask with the highest
    IoU with that class's predicted region becomes the class's pseudolabel (the first such mask
    on ties). All other pixels, and pixels claimed by two classes, get ``ignore_index``.

    Arguments:
    ---------
      pred (np.ndarray): HxW integer predicted labels (e.g. the EMA model's argmax).
      masks (MaskLayers | np.ndarray): the frame's SAM segments (NxHxW bool is converted).
      background (int or None): class that gets no pseudolabel.
      ignore_index (int): value for unlabeled pixels.

    Returns
    -------
      np.ndarray: HxW uint8 pseudolabels.

    """
    pred = np.asarray(pred)
    out = np.full(pred.shape, ignore_index, dtype=np.uint8)
    if isinstance(masks, np.ndarray) and masks.ndim == 3 and masks.shape[0] == 0:
        return out
    layers = as_mask_layers(masks)
    if len(layers) == 0:
        return out
    if layers.shape != pred.shape:
        raise ValueError(f'masks {(len(layers),) + layers.shape} do not match prediction '
                         f'{pred.shape}')
    n = len(layers)
    claimed = np.zeros(pred.shape, dtype=np.int32)
    area = layers.areas()
    for c in np.unique(pred):
        if background is not None and c == background:
            continue
        region = pred == c
        inter = np.zeros(n + 1, np.int64)
        for layer in layers.layers:
            inter += np.bincount(layer[region], minlength=n + 1)
        inter = inter[1:]
        iou = inter / np.maximum(area + int(region.sum()) - inter, 1)
        best = int(np.argmax(iou))
        if iou[best] <= 0:
            continue
        m = (layers.layers == best + 1).any(0)
        out[m] = c
        claimed += m
    out[claimed > 1] = ignore_index
    return out
