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

"""MaskLayers: overlapping masks as label layers, equal to the dense masks in every operation."""
import numpy as np
import pytest

from sam2real_ros.modeling.preprocessing import resize_masks
from sam2real_ros.sam.mask_layers import as_mask_layers, MaskLayers
from sam2real_ros.sam.mask_store import MaskStore


def _masks(n=40, h=30, w=40, seed=0):
    """Random overlapping rectangles and blobs, one empty mask, one duplicate."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        y0, x0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
        masks[i, y0:y0 + rng.integers(2, h // 2), x0:x0 + rng.integers(2, w // 2)] = True
    masks[3] = False
    masks[7] = masks[5]
    masks[9] = rng.random((h, w)) < 0.3
    return masks


def test_round_trip_areas_and_few_layers():
    masks = _masks()
    layers = MaskLayers.from_masks(masks)
    assert len(layers) == 40 and layers.shape == (30, 40)
    np.testing.assert_array_equal(layers.to_dense(), masks)
    np.testing.assert_array_equal(layers.to_dense([9, 2]), masks[[9, 2]])
    np.testing.assert_array_equal(layers.areas(), masks.sum((1, 2)))
    # a mask lives in one layer; layers hold disjoint masks; far fewer layers than masks
    depth = masks.sum(0).max()
    assert depth <= layers.num_layers < len(masks)
    ids = [set(np.unique(layer).tolist()) - {0} for layer in layers.layers]
    assert sum(len(s) for s in ids) == 39 and len(set().union(*ids)) == 39


def test_from_packed_store_record_and_empty():
    masks = _masks(seed=1)
    packed = np.packbits(masks.reshape(len(masks), -1), axis=1)
    a = MaskLayers.from_packed(packed, masks.shape[1:], chunk=7)
    np.testing.assert_array_equal(a.to_dense(), masks)
    empty = MaskLayers.from_masks(np.zeros((0, 5, 6), bool))
    assert len(empty) == 0 and empty.shape == (5, 6) and empty.to_dense().shape == (0, 5, 6)
    assert len(MaskLayers.empty((5, 6))) == 0


def test_from_store_record(tmp_path):
    masks = _masks(seed=2)
    store = MaskStore(tmp_path)
    store.write('a.png', masks, np.ones((len(masks), 2)))
    layers = MaskLayers.from_record(store.read('a.png'), chunk=6)
    np.testing.assert_array_equal(layers.to_dense(), masks)


@pytest.mark.parametrize('size', [(15, 20), (45, 70), (30, 40)])
def test_resize_crop_flip_equal_dense_indexing(size):
    masks = _masks(seed=3)
    layers = MaskLayers.from_masks(masks)
    np.testing.assert_array_equal(resize_masks(layers, size).to_dense(),
                                  resize_masks(masks, size))
    rows, cols = np.arange(5, 20), np.arange(30, 2, -2)  # crop + flip
    np.testing.assert_array_equal(layers.take(rows, cols).to_dense(),
                                  masks[:, rows][:, :, cols])


def test_drop_empty_renumbers_in_order():
    masks = _masks(seed=4)
    cut = MaskLayers.from_masks(masks).take(np.arange(0, 6), np.arange(0, 8))
    kept, ids = cut.drop_empty()
    dense = masks[:, :6, :8]
    np.testing.assert_array_equal(ids, np.flatnonzero(dense.any((1, 2))))
    np.testing.assert_array_equal(kept.to_dense(), dense[ids])
    assert len(kept) == len(ids) and kept.num_layers <= cut.num_layers


def test_as_mask_layers_and_bad_input():
    layers = MaskLayers.from_masks(_masks())
    assert as_mask_layers(layers) is layers
    with pytest.raises(ValueError, match='NxHxW'):
        MaskLayers.from_masks(np.zeros((4, 5), bool))


def test_memory_is_layers_not_n_masks():
    """300 masks of a 480x640 frame tiled in 3 granularities: a few layers, not 300 maps."""
    h, w = 480, 640
    labels = [np.arange(h * w).reshape(h, w) // (h * w // k) for k in (10, 50, 240)]
    masks = np.concatenate([lab[None] == np.arange(lab.max() + 1)[:, None, None]
                            for lab in labels])
    layers = MaskLayers.from_masks(masks)
    assert len(layers) == 300 and layers.num_layers == 3
    assert layers.layers.nbytes < masks.nbytes / 20
