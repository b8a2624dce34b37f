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
The engines the SAM fast path runs its image encoder and prompt decoder on.

Two backend objects with one interface (``name``, ``decoder``, ``encode(x)``,
``decode_tokens(tokens, state)``, ``decode_masks(q, x)``): :class:`TorchBackend` (the model's
device; optional reduced precision, scaled-dot-product attention, ``torch.compile``) and
:class:`~sam2real_ros.sam.sam_onnx.OnnxSam` (onnxruntime on the CPU). :func:`make_backend`
builds the one a :class:`~sam2real_ros.sam.options.SamOptions` asks for, so the generator never
tests a backend flag.
"""
import torch
import torch.nn.functional as F

ENCODER_DTYPES = {'float32': None, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


class SdpaImageEncoder(torch.nn.Module):
    """
    SAM's ``ImageEncoderViT`` with its attention through ``F.scaled_dot_product_attention``.

    Same modules and weights (shared with ``encoder``, nothing copied); the decomposed relative
    position terms become the additive attention mask, so the math is the library's. On a GPU
    the fused attention kernels avoid the explicit attention matrix ops (segment-anything-fast
    does the same).
    """

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    @staticmethod
    def _attention(attn, x):
        from segment_anything.modeling.image_encoder import get_rel_pos
        b, h, w, _ = x.shape
        qkv = attn.qkv(x).reshape(b, h * w, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                  # B x heads x HW x d
        mask = None
        if attn.use_rel_pos:
            rh = get_rel_pos(h, h, attn.rel_pos_h)
            rw = get_rel_pos(w, w, attn.rel_pos_w)
            r_q = q.reshape(b * attn.num_heads, h, w, -1)
            rel_h = torch.einsum('bhwc,hkc->bhwk', r_q, rh.to(r_q.dtype))
            rel_w = torch.einsum('bhwc,wkc->bhwk', r_q, rw.to(r_q.dtype))
            mask = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(
                b, attn.num_heads, h * w, h * w)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scale)
        return attn.proj(out.transpose(1, 2).reshape(b, h, w, -1))

    def _block(self, blk, x):
        from segment_anything.modeling.image_encoder import window_partition, window_unpartition
        shortcut = x
        x = blk.norm1(x)
        if blk.window_size > 0:
            hw = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, blk.window_size)
        x = self._attention(blk.attn, x)
        if blk.window_size > 0:
            x = window_unpartition(x, blk.window_size, pad_hw, hw)
        x = shortcut + x
        return x + blk.mlp(blk.norm2(x))

    def forward(self, x):
        """Return the image embedding of a preprocessed Bx3xSxS image (as the encoder)."""
        enc = self.encoder
        x = enc.patch_embed(x)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for blk in enc.blocks:
            x = self._block(blk, x)
        return enc.neck(x.permute(0, 3, 1, 2))


class TorchBackend:
    """
    The fast path's encoder and decoder in torch, on the model's device.

    One of the two backend objects (the other: :class:`~sam2real_ros.sam.sam_onnx.OnnxSam`),
    both with ``name``, :meth:`encode`, :meth:`decode_tokens` and :meth:`decode_masks`.
    """

    name = 'torch'

    def __init__(self, model, decoder, options):
        self.decoder = decoder
        self.encoder_dtype = ENCODER_DTYPES[options.encoder_dtype]
        self.decoder_dtype = ENCODER_DTYPES[options.decoder_dtype]
        self.encoder = (SdpaImageEncoder(model.image_encoder) if options.sdpa
                        else model.image_encoder)
        if options.compile_encoder:
            self.encoder = torch.compile(self.encoder)

    @staticmethod
    def _autocast(device, dtype):
        return torch.autocast(device.type, dtype=dtype or torch.bfloat16,
                              enabled=dtype is not None)

    def encode(self, x):
        """Return the float32 1xCxhxw embedding of a preprocessed 1x3xSxS image tensor."""
        with self._autocast(x.device, self.encoder_dtype):
            return self.encoder(x).float()

    def decode_tokens(self, tokens, state):
        """Run :meth:`PromptBatchDecoder.forward`; returns (iou, q, x)."""
        with self._autocast(tokens.device, self.decoder_dtype):
            return self.decoder(tokens, *state)

    def decode_masks(self, q, x):
        """Run :meth:`PromptBatchDecoder.masks`; returns float32 low-res logits."""
        with self._autocast(q.device, self.decoder_dtype):
            return self.decoder.masks(q, x).float()


def make_backend(model, decoder, options, log=print):
    """
    Return the backend object that ``options`` asks for (``auto`` resolved for the model).

    Raises
    ------
      ValueError: options that contradict the backend (e.g. bfloat16 with onnx).

    """
    if options.resolve_backend(model.device.type) == 'onnx':
        from sam2real_ros.sam.sam_onnx import OnnxSam
        return OnnxSam(model, decoder, cache_dir=options.cache_dir, threads=options.threads,
                       quantize=options.quantize, log=log)
    return TorchBackend(model, decoder, options)
