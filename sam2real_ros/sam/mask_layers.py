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
Overlapping segment masks of one frame as a few label layers instead of N dense bool masks.

SAM (and the fallback segmenter) give N overlapping masks per frame; as an NxHxW bool array a
frame with hundreds of masks takes hundreds of MB at 480x640. :class:`MaskLayers` stores the
same masks as L label maps (LxHxW int32, 0 = no mask, ``i + 1`` = mask ``i``) where each mask
lives in exactly one layer and masks of one layer do not overlap; L is about the number of
masks that cover one pixel (a few to a few tens), not N. Nearest-neighbour resizing, cropping
and flipping are indexing of the layers, and the segment sums of the loss are one
``index_add`` per layer, so the masks are never unpacked to NxHxW on the way from the mask
store to the loss.
"""
import numpy as np


class MaskLayers:
    """
    N overlapping bool masks of an HxW frame, as layers of disjoint masks.

    Arguments:
    ---------
      layers (np.ndarray): LxHxW int32; value ``i + 1`` marks the pixels of mask ``i``, 0 none.
        Every mask id appears in at most one layer.
      n (int): number of masks (ids ``1..n``; a mask may be empty).

    """

    def __init__(self, layers, n):
        layers = np.asarray(layers)
        if layers.ndim != 3:
            raise ValueError(f'mask layers must be LxHxW, got shape {layers.shape}')
        self.layers = layers.astype(np.int32, copy=False)
        self.n = int(n)

    # ----------------------------------------------------------------------- construction
    @classmethod
    def empty(cls, shape):
        """Return no masks for an HxW frame."""
        return cls(np.zeros((0,) + tuple(shape), np.int32), 0)

    @classmethod
    def from_masks(cls, masks):
        """Build from NxHxW bool masks (numpy or torch; any nonzero value is True)."""
        if hasattr(masks, 'detach'):  # torch tensor
            masks = masks.detach().cpu().numpy()
        masks = np.asarray(masks)
        if masks.ndim != 3:
            raise ValueError(f'masks must be NxHxW, got shape {masks.shape}')
        builder = _LayerBuilder(masks.shape[1:], len(masks))
        for i, m in enumerate(masks):
            builder.add(i, m.astype(bool, copy=False))
        return builder.result()

    @classmethod
    def from_packed(cls, packed, shape, chunk=32):
        """
        Build from bit-packed masks (the mask store's ``masks_packed``), a chunk at a time.

        Arguments:
        ---------
          packed (np.ndarray): NxB uint8, row i is ``np.packbits`` of mask i, flattened.
          shape (tuple): the frame's height and width.
          chunk (int): masks unpacked at once (memory: chunk x H x W bytes).

        Returns
        -------
          MaskLayers: the N masks.

        """
        h, w = (int(v) for v in shape)
        n = len(packed)
        builder = _LayerBuilder((h, w), n)
        for start in range(0, n, chunk):
            block = np.unpackbits(packed[start:start + chunk], axis=1, count=h * w)
            for k, flat in enumerate(block):
                builder.add(start + k, flat.reshape(h, w).view(bool))
        return builder.result()

    @classmethod
    def from_record(cls, record, chunk=32):
        """Build from a mask store record (``MaskRecord``), unpacking ``chunk`` masks at a time."""
        n = len(record)
        builder = _LayerBuilder(record.image_size, n)
        for start in range(0, n, chunk):
            for k, m in enumerate(record.masks(range(start, min(n, start + chunk)))):
                builder.add(start + k, m)
        return builder.result()

    # ----------------------------------------------------------------------- access
    @property
    def shape(self):
        """Return (H, W) of the frame."""
        return tuple(self.layers.shape[1:])

    @property
    def num_layers(self):
        """Return L, the number of layers."""
        return int(self.layers.shape[0])

    def __len__(self):
        return self.n

    def __repr__(self):
        return f'MaskLayers(n={self.n}, layers={self.num_layers}, shape={self.shape})'

    def areas(self):
        """Return the N pixel counts (int64)."""
        out = np.zeros(self.n + 1, np.int64)
        for layer in self.layers:
            out += np.bincount(layer.ravel(), minlength=self.n + 1)
        return out[1:]

    def to_dense(self, indices=None):
        """Return masks as NxHxW bool (or ``len(indices)`` of them): tests, pictures."""
        idx = np.arange(self.n) if indices is None else np.asarray(indices, np.int64)
        out = np.zeros((len(idx),) + self.shape, bool)
        pos = np.full(self.n + 1, -1, np.int64)
        pos[idx + 1] = np.arange(len(idx))
        for layer in self.layers:
            p = pos[layer]
            ys, xs = np.nonzero(p >= 0)
            out[p[ys, xs], ys, xs] = True
        return out

    # ----------------------------------------------------------------------- transforms
    def take(self, rows, cols):
        """
        Sample every mask at pixels ``(rows[i], cols[j])``: resize, crop, flip (nearest).

        Returns
        -------
          MaskLayers: of size ``len(rows) x len(cols)``; masks keep their ids, so a mask may
          become empty (see :meth:`drop_empty`).

        """
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        return MaskLayers(self.layers[:, rows][:, :, cols], self.n)

    def drop_empty(self):
        """Return the masks without the empty ones (ids renumbered in order) and the kept ids."""
        areas = self.areas()
        keep = np.flatnonzero(areas > 0)
        if len(keep) == self.n:
            return self, keep
        lut = np.zeros(self.n + 1, np.int32)
        lut[keep + 1] = np.arange(1, len(keep) + 1)
        layers = lut[self.layers]
        used = layers.reshape(len(layers), -1).any(1)
        return MaskLayers(layers[used], len(keep)), keep


class _LayerBuilder:
    """First-fit placement of masks into layers (a mask joins the first layer it fits in)."""

    def __init__(self, shape, n):
        self.shape = tuple(int(v) for v in shape)
        self.n = n
        self.layers = []

    def add(self, i, mask):
        ys = np.flatnonzero(mask.any(1))
        if not len(ys):
            return  # empty: no pixels to place
        xs = np.flatnonzero(mask.any(0))
        box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
        m = mask[box]
        for layer in self.layers:
            if not layer[box][m].any():
                layer[box][m] = i + 1
                return
        layer = np.zeros(self.shape, np.int32)
        layer[box][m] = i + 1
        self.layers.append(layer)

    def result(self):
        layers = np.stack(self.layers) if self.layers else np.zeros((0,) + self.shape, np.int32)
        return MaskLayers(layers, self.n)


def as_mask_layers(masks):
    """Return ``masks`` as :class:`MaskLayers` (NxHxW bool arrays or tensors are converted)."""
    if isinstance(masks, MaskLayers):
        return masks
    return MaskLayers.from_masks(masks)
