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
Deterministic data streams for the trainer: per-epoch index draws, batching.

The frames of epoch ``e`` on rank ``r`` are drawn from ``np.random.default_rng([seed, stream,
r, e])`` (without replacement when the dataset is large enough, Sec. IV-A: "randomly chosen
from the entire dataset for each epoch"), so the data stream position is fully described by
``(epoch, iteration)`` and a resumed run sees exactly the frames a straight run would.
Batches are preprocessed by :mod:`sam2real_ros.modeling.preprocessing`, as the engine does.
"""
import numpy as np
from sam2real_ros.modeling.preprocessing import preprocess, resize_labels, resize_masks
import torch

STREAMS = {'synthetic': 0, 'real': 1, 'real_labeled': 2}


def epoch_indices(n, count, seed, stream, rank, epoch):
    """``count`` dataset indices in ``[0, n)`` for one epoch of one stream on one rank."""
    if n < 1:
        raise ValueError(f'the {stream} dataset is empty')
    rng = np.random.default_rng([int(seed), STREAMS[stream], int(rank), int(epoch)])
    return rng.choice(n, size=count, replace=n < count).tolist()


def make_loader(dataset, indices, batch_size, num_workers):
    """Make a DataLoader over ``indices`` in order, batches as lists of sample dicts."""
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=num_workers,
                                       collate_fn=list)


def _check_sample(sample, need, source):
    if not isinstance(sample, dict):
        raise ValueError(f'{source}: a sample must be a dict, got {type(sample).__name__}')
    for key in need:
        if key not in sample:
            raise ValueError(f'{source}: sample {sample.get("key", "?")!r} has no {key!r} '
                             f'(keys: {sorted(sample)})')


def prepare_batch(samples, size, mean, std, need, source):
    """
    List of sample dicts -> tensors at one size.

    Arguments:
    ---------
      samples (list[dict]): ``rgb`` HxWx3 uint8 and, per ``need``, ``labels`` HxW / ``masks``.
      size (tuple): (h, w) training size, or None for the first sample's size.
      mean, std (tuple): normalization (ImageNet).
      need (tuple): keys every sample must have.
      source (str): dataset name for error messages.

    Returns
    -------
      dict: ``x`` Bx3xhxw float32, ``labels`` Bxhxw int64 (if needed), ``masks`` list of
      Nxhxw bool numpy arrays (if needed), ``keys`` list[str].

    """
    for s in samples:
        _check_sample(s, need, source)
    if size is None:
        size = tuple(samples[0]['rgb'].shape[:2])
    try:
        x = np.concatenate([preprocess(s['rgb'], mean, std, size) for s in samples])
    except ValueError as e:
        raise ValueError(f'{source}: {e}') from None
    out = {'x': torch.from_numpy(x), 'keys': [str(s.get('key', '')) for s in samples]}
    if 'labels' in need:
        out['labels'] = torch.from_numpy(np.stack(
            [resize_labels(np.asarray(s['labels']), size) for s in samples]).astype(np.int64))
    if 'masks' in need:
        out['masks'] = [resize_masks(s['masks'], size) for s in samples]
    return out
