"""
Training losses: supervised cross entropy (Eq. 1) and SAM segment pooling (Eq. 2-6, 9).

Conventions (see docs/training.md for the mapping equation -> code):

* Dense features ``z`` are ``DxHxW`` (one frame) or ``BxDxHxW`` float tensors; SAM segments are
  ``NxHxW`` bool masks that may overlap and over-segment. Masks never become an ``NxHxW`` float
  tensor: pooling converts at most ``chunk`` masks at a time to float, and the backward pass
  recomputes those chunks from the bool masks instead of keeping them alive.
* The per-segment sums use the expanded form ``v_i = sum_{p in S_i} z_p^2 - |S_i| mu_i^2``
  (Eq. 3 rearranged) on features centred by their detached frame mean (the variance is
  shift-invariant, centring only improves float32 accuracy); tiny negative round-off is clamped.
* Eq. 5 is the mean over *unordered* pairs: ``2/(N(N-1)) * sum_{i<j} hinge_ij``. Summing the
  hinge over ordered pairs ``i != j`` would double the loss. Distances use
  ``torch.linalg.vector_norm``, whose gradient at a zero distance is 0 (never NaN).
* Empty segments (``|S_i| = 0``) are dropped before counting ``N``. With ``N < 2`` the variance
  loss is 0, with ``N = 0`` the invariance loss is 0; both stay connected to the graph.
"""
import numpy as np
import torch
import torch.nn.functional as F

IGNORE_INDEX = 255


class SegmentSums(torch.autograd.Function):
    """
    ``[M @ z, M @ z^2, M @ 1]`` for bool masks ``M`` (NxP), features ``z`` (PxD), chunked.

    The last column is the pixel count ``|S_i|`` (computed here so that no NxP integer copy of
    the masks is ever made); it has no gradient.
    """

    @staticmethod
    def forward(ctx, z, masks, chunk):
        zz = torch.cat([z, z * z, z.new_ones((z.shape[0], 1))], dim=1)  # P x (2D + 1)
        out = z.new_empty((masks.shape[0], zz.shape[1]))
        for i in range(0, masks.shape[0], chunk):
            out[i:i + chunk] = masks[i:i + chunk].to(z.dtype) @ zz
        ctx.save_for_backward(z, masks)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):
        z, masks = ctx.saved_tensors
        d = z.shape[1]
        acc = z.new_zeros((z.shape[0], 2 * d))
        for i in range(0, masks.shape[0], ctx.chunk):
            g = grad_out[i:i + ctx.chunk, :2 * d]
            acc.addmm_(masks[i:i + ctx.chunk].to(z.dtype).t(), g)
        return acc[:, :d] + 2.0 * z * acc[:, d:], None, None


def _as_bool_masks(masks, device):
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(np.ascontiguousarray(masks))
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f'masks must be a NxHxW bool array or tensor, got {type(masks).__name__}')
    if masks.ndim != 3:
        raise ValueError(f'masks must be NxHxW, got shape {tuple(masks.shape)}')
    if masks.dtype != torch.bool:
        masks = masks != 0
    return masks.to(device)


def segment_stats(features, masks, chunk=16):
    """
    Per-segment pixel count, mean (Eq. 2) and unnormalized variance (Eq. 3).

    Arguments:
    ---------
      features (torch.Tensor): DxHxW float dense features ``z`` of one frame. When the masks
        have another size, the features are bilinearly upsampled to the mask size first.
      masks (np.ndarray or torch.Tensor): NxHxW bool SAM segments (overlap allowed).
      chunk (int): number of masks converted to float at a time.

    Returns
    -------
      (torch.Tensor, torch.Tensor, torch.Tensor): ``count`` (N,) float pixel counts ``|S_i|``,
      ``mu`` (N, D) segment means (0 for empty segments), ``v`` (N, D) unnormalized variances.

    """
    if features.ndim != 3:
        raise ValueError(f'features must be DxHxW, got shape {tuple(features.shape)}')
    masks = _as_bool_masks(masks, features.device)
    if masks.shape[1:] != features.shape[1:]:
        features = F.interpolate(features[None], size=tuple(masks.shape[1:]), mode='bilinear',
                                 align_corners=False)[0]
    d = features.shape[0]
    z = features.reshape(d, -1).t()  # P x D
    z = z - z.detach().mean(dim=0, keepdim=True)
    flat = masks.reshape(masks.shape[0], z.shape[0])
    sums = SegmentSums.apply(z, flat, max(1, int(chunk)))
    count = sums[:, 2 * d].detach()
    safe = count.clamp(min=1.0)[:, None]
    mu = sums[:, :d] / safe
    v = (sums[:, d:2 * d] - sums[:, :d] * mu).clamp(min=0.0)
    return count, mu, v


def segment_pooling_losses(features, masks, margin=0.5, chunk=16):
    """
    Invariance (Eq. 4) and variance (Eq. 5) losses of one frame.

    Arguments:
    ---------
      features (torch.Tensor): DxHxW float dense features.
      masks (np.ndarray or torch.Tensor): NxHxW bool SAM segments; empty ones are ignored.
      margin (float): hinge margin of Eq. 5 (the paper's beta in Eq. 5; 0.5).
      chunk (int): masks converted to float at a time (memory vs. speed).

    Returns
    -------
      dict: ``inv`` and ``var`` (0-dim tensors) and ``n`` (int, non-empty segments).

    """
    count, mu, v = segment_stats(features, masks, chunk=chunk)
    keep = count > 0
    count, mu, v = count[keep], mu[keep], v[keep]
    n = int(count.shape[0])
    zero = features.sum() * 0.0
    if n == 0:
        return {'inv': zero, 'var': zero, 'n': 0}
    inv = v.sum() / features.shape[0] / count.sum()
    if n < 2:
        return {'inv': inv, 'var': zero, 'n': n}
    i, j = torch.triu_indices(n, n, offset=1, device=mu.device)
    dist = torch.linalg.vector_norm(mu[i] - mu[j], dim=1)
    var = torch.relu(margin - dist).mean()  # == 2/(N(N-1)) * sum over unordered pairs
    return {'inv': inv, 'var': var, 'n': n}


def real_loss(features, masks, alpha=0.05, beta=1.0, margin=0.5, chunk=16):
    """
    Regularization loss on real frames, Eq. 9 (Eq. 6 for ``beta=1``), averaged over frames.

    Arguments:
    ---------
      features (torch.Tensor): BxDxHxW (or DxHxW) float dense features.
      masks (list): B NxHxW bool masks (one entry per frame; N may differ, may be 0).
      alpha (float): overall scale (0.05 in the paper).
      beta (float): invariance/variance balance of Eq. 9, in [0, 2].
      margin (float): hinge margin of Eq. 5.
      chunk (int): masks converted to float at a time.

    Returns
    -------
      dict: ``loss`` = ``alpha * (beta * inv + (2 - beta) * var)`` and the frame means of ``inv``
      and ``var`` (0-dim tensors), plus ``n`` (mean segment count, float).

    """
    if features.ndim == 3:
        features, masks = features[None], [masks]
    if len(masks) != features.shape[0]:
        raise ValueError(f'{features.shape[0]} feature maps but {len(masks)} mask sets')
    parts = [segment_pooling_losses(f, m, margin=margin, chunk=chunk)
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
    IoU with that class's predicted region becomes the class's pseudolabel. All other pixels,
    and pixels claimed by two classes, get ``ignore_index``.

    Arguments:
    ---------
      pred (np.ndarray): HxW integer predicted labels (e.g. the EMA model's argmax).
      masks (np.ndarray): NxHxW bool SAM segments of the same frame.
      background (int or None): class that gets no pseudolabel.
      ignore_index (int): value for unlabeled pixels.

    Returns
    -------
      np.ndarray: HxW uint8 pseudolabels.

    """
    pred = np.asarray(pred)
    masks = np.asarray(masks, dtype=bool)
    out = np.full(pred.shape, ignore_index, dtype=np.uint8)
    if masks.ndim != 3 or masks.shape[0] == 0:
        return out
    if masks.shape[1:] != pred.shape:
        raise ValueError(f'masks {masks.shape} do not match prediction {pred.shape}')
    claimed = np.zeros(pred.shape, dtype=np.int32)
    flat = masks.reshape(masks.shape[0], -1)
    area = flat.sum(axis=1)
    for c in np.unique(pred):
        if background is not None and c == background:
            continue
        region = (pred == c).reshape(-1)
        inter = flat[:, region].sum(axis=1)
        iou = inter / np.maximum(area + region.sum() - inter, 1)
        best = int(np.argmax(iou))
        if iou[best] <= 0:
            continue
        out[masks[best]] = c
        claimed += masks[best]
    out[claimed > 1] = ignore_index
    return out
