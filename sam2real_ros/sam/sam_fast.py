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
A faster ``SamAutomaticMaskGenerator`` with the same output (masks, scores, boxes, order).

The library's generator upsamples *every* one of the 3 masks per point prompt to full
resolution (first to 1024x1024, padding included), then filters by predicted IoU, then by
stability score, encodes each survivor as RLE in a Python loop, runs box NMS, and finally decodes
the RLEs back to masks. :class:`FastAutomaticMaskGenerator` does the same arithmetic on fewer
masks:

1. the predicted-IoU filter runs before the masks exist (the scores come from the decoder's IoU
   token alone), so only prompts with a surviving mask run the mask upsampling head, and only
   survivors are upsampled to full resolution;
2. upsampling skips the padded part of SAM's 1024x1024 frame (bit-identical: bilinear with an
   exact 4x scale only reads the low-res rows/columns the kept output needs) and runs in chunks;
3. masks stay boolean tensors (no RLE encode/decode round trip); areas are plain sums;
4. the mask decoder runs as :class:`PromptBatchDecoder`: the same weights and the same
   arithmetic, reordered so that work which does not depend on the prompt is done once per
   image and no per-prompt projection of the 4096 image tokens is made (see its docstring).
   Results equal the library's up to float32 rounding (~1e-6 relative).

Stability score, thresholding, boxes, crop-edge filtering and NMS are the library's own
functions on the same full-resolution logits, so the kept masks are the same. The encoder and
decoder run on one backend object (:mod:`sam2real_ros.sam.backends`): ``TorchBackend`` (the
model's device) or :class:`~sam2real_ros.sam.sam_onnx.OnnxSam` (onnxruntime, faster on CPU;
graphs exported once per set of weights into a cache folder), picked by ``make_backend`` from the
:class:`~sam2real_ros.sam.options.SamOptions` (``backend``). Optional, off by default
because they change the output slightly: the image encoder / decoder in bfloat16 or float16
(``encoder_dtype``, ``decoder_dtype``; GPU), scaled-dot-product attention in the image encoder
(``sdpa``), ``torch.compile`` of the image encoder (``compile_encoder``), an int8 dynamically
quantized encoder (``quantize='int8'``, onnx backend).

It overrides private methods of the library's generator (``_generate_masks`` pipeline:
``_process_crop``, ``_process_batch``), so it is tied to the segment-anything release it was
written against (:data:`WRITTEN_FOR`); importing it with another installed version warns
(:class:`SamVersionWarning`): run ``test/test_segmenters.py`` (same masks as the library's
generator) before trusting it.
"""
from importlib import metadata
import math
import time
import warnings

import numpy as np
from sam2real_ros.sam.backends import make_backend
from sam2real_ros.sam.options import SamOptions
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.utils.amg import (
    batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge, MaskData,
    remove_small_regions, uncrop_boxes_xyxy, uncrop_masks, uncrop_points)
import torch
import torch.nn.functional as F
from torchvision.ops.boxes import batched_nms

WRITTEN_FOR = '1.0'
"""The segment-anything version (PyPI ``segment-anything``) whose generator this subclasses."""


class SamVersionWarning(UserWarning):
    """The installed segment-anything is not the version this subclass was written against."""


def version_mismatch(installed):
    """Return the warning for an ``installed`` segment-anything version; None when it fits."""
    if installed == WRITTEN_FOR:
        return None
    return (f'sam2real_ros.sam.sam_fast subclasses SamAutomaticMaskGenerator of segment-anything '
            f'{WRITTEN_FOR}, but {installed or "an unknown version"} is installed: its private '
            f'methods may differ; run test/test_segmenters.py (same masks as the library) or '
            f'install segment-anything=={WRITTEN_FOR}')


def _installed_version():
    try:
        return metadata.version('segment-anything')
    except metadata.PackageNotFoundError:  # imported from a source checkout
        return None


_MISMATCH = version_mismatch(_installed_version())
if _MISMATCH:
    warnings.warn(_MISMATCH, SamVersionWarning, stacklevel=2)


class PromptBatchDecoder(torch.nn.Module):
    """
    SAM's mask decoder for many single-point prompts on one image, reordered (same math).

    The library repeats the 64x64 image embedding once per prompt and runs every projection of
    its two-way transformer on all 4096 image tokens of every prompt. Here:

    * layer 1 sees the same image tokens for every prompt (embedding + the constant no-mask
      dense embedding), so their key/value/query projections are computed once per image
      (:meth:`image_state`);
    * where a few prompt tokens (T = 7) attend to the image, the query is mapped back through
      the key projection (``q W_k``) and the attention pools the *unprojected* image tokens
      before the value projection, instead of projecting 4096 image tokens per prompt (the key
      bias adds the same number to every key of a query and drops out of the softmax; the value
      bias passes through since the weights sum to 1);
    * where the image tokens attend to the prompt tokens, the image token is dotted with the
      prompt keys mapped back through the query projection, and the output projection is
      applied to the T value vectors before the attention weights mix them;
    * the mask upsampling head (two 2x2 stride-2 transposed convolutions, a LayerNorm2d and
      GELUs) runs as per-pixel matrix products, only for the prompts asked for
      (:meth:`masks`), and the hypernetwork dot product is taken before the pixels are
      reordered.

    All weights are the model's own; results equal ``MaskDecoder`` up to float32 rounding.
    ``forward`` (tokens and image state -> IoU predictions, tokens, image tokens) and
    :meth:`masks` are also the two graphs exported to ONNX.
    """

    def __init__(self, sam):
        super().__init__()
        self.sam = sam
        self.heads = sam.mask_decoder.transformer.layers[0].cross_attn_token_to_image.num_heads

    @torch.no_grad()
    def image_state(self, features):
        """
        Per-image tensors every prompt uses.

        Arguments:
        ---------
          features (torch.Tensor): 1xCxhxw image embedding.

        Returns
        -------
          (tuple): ``x0`` PxC image tokens + no-mask embedding, ``pos`` PxC positional
          encoding, and layer 1's projections per head: keys HxdxP, values HxPxd, image queries
          HxdxP (P = h*w image tokens).

        """
        pe_mod = self.sam.prompt_encoder
        tf = self.sam.mask_decoder.transformer
        x0 = features[0].flatten(1).t() + pe_mod.no_mask_embed.weight
        pos = pe_mod.get_dense_pe()[0].flatten(1).t().to(x0)
        p, h = x0.shape[0], self.heads
        x0p = x0 + pos
        l0 = tf.layers[0]
        k0 = l0.cross_attn_token_to_image.k_proj(x0p).reshape(p, h, -1).permute(1, 2, 0)
        v0 = l0.cross_attn_token_to_image.v_proj(x0).reshape(p, h, -1).transpose(0, 1)
        q0 = l0.cross_attn_image_to_token.q_proj(x0p).reshape(p, h, -1).permute(1, 2, 0)
        return (x0.contiguous(), pos.contiguous(), k0.contiguous(), v0.contiguous(),
                q0.contiguous())

    @torch.no_grad()
    def prompt_tokens(self, coords, labels):
        """Return the decoder's input tokens BxTxC for points ``coords`` BxNx2 (1024 frame)."""
        dec = self.sam.mask_decoder
        sparse, _ = self.sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        out = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], 0)
        return torch.cat([out.expand(sparse.shape[0], -1, -1), sparse], 1)

    def _split(self, x):
        b, n, ci = x.shape
        return x.reshape(b, n, self.heads, ci // self.heads).transpose(1, 2)   # B x H x N x d

    def _tokens_to_shared_image(self, attn, q, k, v):
        """Tokens attend to the shared image tokens (``k`` HxdxP, ``v`` HxPxd projected)."""
        b, t, _ = q.shape
        qh = attn.q_proj(q).reshape(b * t, self.heads, -1).transpose(0, 1)    # H x BT x d
        w = torch.softmax(qh @ k / math.sqrt(qh.shape[-1]), dim=-1)           # H x BT x P
        return attn.out_proj((w @ v).transpose(0, 1).reshape(b, t, -1))

    def _tokens_to_image(self, attn, q, keys, values):
        """Tokens attend to per-prompt image tokens, never projecting the P image tokens."""
        b, t, _ = q.shape
        h = self.heads
        qh = self._split(attn.q_proj(q))                                      # B x H x T x d
        d = qh.shape[-1]
        qk = torch.einsum('bhtd,hdc->bhtc', qh, attn.k_proj.weight.reshape(h, d, -1))
        w = torch.softmax(qk.reshape(b, h * t, -1) @ keys.transpose(1, 2) / math.sqrt(d), -1)
        pooled = (w @ values).reshape(b, h, t, -1)                            # B x H x T x C
        out = torch.einsum('bhtc,hdc->bthd', pooled, attn.v_proj.weight.reshape(h, d, -1))
        return attn.out_proj(out.reshape(b, t, h * d) + attn.v_proj.bias)

    def _image_to_tokens(self, attn, image_q, tok_k, tok_v, shared_q=None):
        """Image tokens attend to the prompt tokens; returns the BxPxC attention output."""
        b, t, _ = tok_k.shape
        h = self.heads
        kh = self._split(attn.k_proj(tok_k))                                  # B x H x T x d
        vh = self._split(attn.v_proj(tok_v))
        d = kh.shape[-1]
        if shared_q is not None:                       # layer 1: image queries HxdxP, shared
            s = (kh.transpose(0, 1).reshape(h, b * t, d) @ shared_q).reshape(h, b, t, -1)
            a = torch.softmax(s / math.sqrt(d), dim=2).transpose(0, 1).reshape(b, h * t, -1)
        else:
            kq = torch.einsum('bhtd,hdc->bhtc', kh, attn.q_proj.weight.reshape(h, d, -1))
            kb = (kh * attn.q_proj.bias.reshape(h, 1, d)).sum(-1).reshape(b, h * t, 1)
            s = torch.baddbmm(kb, kq.reshape(b, h * t, -1), image_q.transpose(1, 2))
            # softmax over the T tokens (dim 2) with the P image tokens contiguous
            a = torch.softmax(s.reshape(b, h, t, -1) / math.sqrt(d), dim=2).reshape(b, h * t, -1)
        u = torch.einsum('bhtd,chd->bhtc', vh, attn.out_proj.weight.reshape(-1, h, d))
        # each head's weights sum to 1 over the tokens: the output bias rides along in u
        u = u.reshape(b, h * t, -1) + attn.out_proj.bias / h
        return torch.bmm(a.transpose(1, 2), u)

    def forward(self, tokens, x0, pos, k0, v0, q0):
        """
        Run the two-way transformer and the IoU head for B prompts.

        Returns
        -------
          (tuple): IoU predictions Bx(M+1) (all mask tokens), prompt tokens BxTxC and image
          tokens BxPxC after the transformer (inputs of :meth:`masks`).

        """
        tf = self.sam.mask_decoder.transformer
        l0 = tf.layers[0]
        pe = tokens
        q = l0.norm1(l0.self_attn(q=tokens, k=tokens, v=tokens))   # skip_first_layer_pe
        q = l0.norm2(q + self._tokens_to_shared_image(l0.cross_attn_token_to_image, q + pe,
                                                      k0, v0))
        q = l0.norm3(q + l0.mlp(q))
        x = l0.norm4(x0 + self._image_to_tokens(l0.cross_attn_image_to_token, None, q + pe, q,
                                                shared_q=q0))
        for layer in tf.layers[1:]:
            qq = q + pe
            q = layer.norm1(q + layer.self_attn(q=qq, k=qq, v=q))
            xp = x + pos                                  # keys of both attentions below
            q = layer.norm2(q + self._tokens_to_image(layer.cross_attn_token_to_image, q + pe,
                                                      xp, x))
            q = layer.norm3(q + layer.mlp(q))
            x = layer.norm4(x + self._image_to_tokens(layer.cross_attn_image_to_token, xp,
                                                      q + pe, q))
        q = tf.norm_final_attn(q + self._tokens_to_image(tf.final_attn_token_to_image, q + pe,
                                                         x + pos, x))
        iou = self.sam.mask_decoder.iou_prediction_head(q[:, 0])
        return iou, q, x

    def masks(self, q, x):
        """Return the multimask low-res logits Bx3x4hx4w (mask tokens 1..3) of B prompts."""
        dec = self.sam.mask_decoder
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](q[:, 1 + i])
                             for i in range(1, dec.num_mask_tokens)], 1)     # B x M x C2
        up1, norm, act1, up2, act2 = dec.output_upscaling
        b, p, c = x.shape
        hh, ww = self.sam.prompt_encoder.image_embedding_size
        c1, c2 = up1.out_channels, up2.out_channels
        # a 2x2 stride-2 transposed convolution is a per-pixel product: columns (di, dj, out)
        w1 = up1.weight.permute(0, 2, 3, 1).reshape(c, 4 * c1)
        y = torch.addmm(up1.bias.repeat(4), x.reshape(b * p, c), w1).reshape(b * p * 4, c1)
        y = act1(F.layer_norm(y, (c1,), norm.weight, norm.bias, norm.eps))   # LayerNorm2d
        w2 = up2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2)
        z = act2(torch.addmm(up2.bias.repeat(4), y, w2))     # rows (b, i, j, d1), cols (d2, o)
        m = hyper.shape[1]
        z = torch.bmm(z.reshape(b, p * 16, c2), hyper.transpose(1, 2))       # B x (p d1 d2) x M
        z = z.reshape(b, hh, ww, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return z.reshape(b, m, hh * 4, ww * 4)


class FastAutomaticMaskGenerator(SamAutomaticMaskGenerator):
    """
    Drop-in subclass of ``SamAutomaticMaskGenerator`` (``output_mode='binary_mask'``).

    Arguments:
    ---------
      model (Sam): the SAM model.
      options (SamOptions): generator settings (``options.generator``) and the fast path's
        (backend, dtypes, ``upsample_chunk``: masks upsampled to full resolution at once,
        ``decoder_batch``: prompts decoded at once, ~30 MB per prompt in float32); default
        ``SamOptions()``.
      log (callable): where the one-time ONNX export notice goes.

    Attributes
    ----------
      backend: the backend object (``TorchBackend`` or ``OnnxSam``; ``backend.name``).

    """

    def __init__(self, model, options=None, log=print):
        options = options or SamOptions()
        self.backend = make_backend(model, PromptBatchDecoder(model).eval(), options, log)
        super().__init__(model, **options.generator_settings())
        self.options = options
        self.upsample_chunk = max(1, int(options.upsample_chunk))
        self.decoder_batch = max(1, int(options.decoder_batch or (
            16 if model.device.type == 'cpu' else 64)))
        self.decoder = self.backend.decoder
        self.state = None
        self.timings = {}

    def _tick(self, name, t0):
        if self.predictor.device.type == 'cuda':
            torch.cuda.synchronize()
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    @torch.no_grad()
    def generate_arrays(self, image):
        """
        Segment everything, returning arrays instead of per-mask dicts.

        Arguments:
        ---------
          image (np.ndarray): HxWx3 uint8 RGB.

        Returns
        -------
          (dict): ``masks`` NxHxW bool, ``iou_preds`` N float32, ``stability_score`` N float32,
            ``boxes`` Nx4 XYXY (inclusive, as the library), ``points`` Nx2 float, ``crop_boxes``
            Nx4 XYXY; in the library's order (decreasing predicted IoU after NMS). ``timings``
            (seconds per stage) is in :attr:`timings`.

        """
        self.timings = {}
        data = self._generate_masks(image)
        if self.min_mask_region_area > 0:
            t0 = time.perf_counter()
            data = self._small_regions(data, self.min_mask_region_area,
                                       max(self.box_nms_thresh, self.crop_nms_thresh))
            self._tick('small_regions', t0)
        names = ('masks', 'iou_preds', 'stability_score', 'boxes', 'points', 'crop_boxes')
        out = {k: np.asarray(data[k]) for k in names}
        if out['masks'].size == 0:
            out['masks'] = np.zeros((0,) + image.shape[:2], bool)
        return out

    @torch.no_grad()
    def generate(self, image):
        """Return the same records as ``SamAutomaticMaskGenerator.generate`` (binary masks)."""
        d = self.generate_arrays(image)
        recs = []
        for i in range(len(d['masks'])):
            x0, y0, x1, y1 = (float(v) for v in d['boxes'][i])
            cx0, cy0, cx1, cy1 = (float(v) for v in d['crop_boxes'][i])
            recs.append({'segmentation': d['masks'][i], 'area': int(d['masks'][i].sum()),
                         'bbox': [x0, y0, x1 - x0, y1 - y0],
                         'predicted_iou': float(d['iou_preds'][i]),
                         'point_coords': [d['points'][i].tolist()],
                         'stability_score': float(d['stability_score'][i]),
                         'crop_box': [cx0, cy0, cx1 - cx0, cy1 - cy0]})
        return recs

    def _set_image(self, image):
        """Encode the image once (1024-pixel resize, normalization, padding, encoder)."""
        t0 = time.perf_counter()
        pred = self.predictor
        if pred.model.image_format != 'RGB':
            image = image[..., ::-1]
        x = torch.as_tensor(pred.transform.apply_image(image), device=pred.device)
        x = x.permute(2, 0, 1).contiguous()[None]
        pred.reset_image()
        pred.original_size, pred.input_size = image.shape[:2], tuple(x.shape[-2:])
        feats = self.backend.encode(pred.model.preprocess(x))
        pred.features, pred.is_image_set = feats.float(), True
        self.state = self.decoder.image_state(pred.features)
        self._tick('encoder', t0)

    def _decode(self, tokens):
        """Return the multimask IoU predictions and transformer outputs of prompt tokens."""
        iou, q, x = self.backend.decode_tokens(tokens, self.state)
        return iou[:, 1:].float(), q, x

    @torch.no_grad()
    def predicted_ious(self, image, batch=64):
        """
        Return the predicted IoUs of the multimask outputs of every grid prompt on ``image``.

        The decoder's IoU head only (no mask is computed): an Nx3 float32 array, N = the
        points of the first crop layer's grid. Benchmarks calibrate ``pred_iou_thresh`` with it.
        """
        self._set_image(image)
        h, w = image.shape[:2]
        pts = self.point_grids[0] * np.array([[w, h]])
        coords = torch.as_tensor(self.predictor.transform.apply_coords(pts, (h, w)),
                                 dtype=torch.float, device=self.predictor.device)
        tokens = self.decoder.prompt_tokens(coords[:, None], torch.ones(
            (len(coords), 1), dtype=torch.int, device=coords.device))
        ious = torch.cat([self._decode(tokens[s:s + batch])[0].cpu()
                          for s in range(0, len(tokens), batch)])
        self.predictor.reset_image()
        return ious.numpy()

    def _process_crop(self, image, crop_box, crop_layer_idx, orig_size):
        x0, y0, x1, y1 = crop_box
        cropped_im = image[y0:y1, x0:x1, :]
        cropped_im_size = cropped_im.shape[:2]
        self._set_image(cropped_im)
        points_scale = np.array(cropped_im_size)[None, ::-1]
        points_for_image = self.point_grids[crop_layer_idx] * points_scale
        data = MaskData()
        for start in range(0, len(points_for_image), self.points_per_batch):
            points = points_for_image[start:start + self.points_per_batch]
            data.cat(self._process_batch(points, cropped_im_size, crop_box, orig_size))
        self.predictor.reset_image()
        t0 = time.perf_counter()
        keep_by_nms = batched_nms(data['boxes'].float(), data['iou_preds'],
                                  torch.zeros(len(data['boxes'])),
                                  iou_threshold=self.box_nms_thresh)
        data.filter(keep_by_nms)
        data['boxes'] = uncrop_boxes_xyxy(data['boxes'], crop_box)
        data['points'] = uncrop_points(data['points'], crop_box)
        data['masks'] = uncrop_masks(data['masks'], crop_box, *orig_size)
        data['crop_boxes'] = torch.tensor([crop_box for _ in range(len(data['masks']))])
        self._tick('nms', t0)
        return data

    def _upsample(self, low_res):
        """Compute ``Sam.postprocess_masks`` of Nx256x256 logits exactly, skipping the padding."""
        model = self.predictor.model
        img = model.image_encoder.img_size
        lh, lw = low_res.shape[-2:]
        f = img // lh
        ih, iw = self.predictor.input_size
        rh = min(lh, math.ceil(ih / f) + 1)
        rw = min(lw, math.ceil(iw / f) + 1)
        x = F.interpolate(low_res[:, None, :rh, :rw], (rh * f, rw * f), mode='bilinear',
                          align_corners=False)
        x = x[..., :ih, :iw]
        x = F.interpolate(x, self.predictor.original_size, mode='bilinear', align_corners=False)
        return x[:, 0]

    def _process_batch(self, points, im_size, crop_box, orig_size):
        orig_h, orig_w = orig_size
        model = self.predictor.model
        transformed = self.predictor.transform.apply_coords(points, im_size)
        coords = torch.as_tensor(transformed, dtype=torch.float, device=self.predictor.device)
        labels = torch.ones((len(coords), 1), dtype=torch.int, device=coords.device)
        tokens = self.decoder.prompt_tokens(coords[:, None, :], labels)
        low_res, iou_preds, index = [], [], []
        for s in range(0, len(tokens), self.decoder_batch):
            t1 = time.perf_counter()
            iou, q, x = self._decode(tokens[s:s + self.decoder_batch])
            self._tick('decoder', t1)
            # the library's pred_iou filter, applied before any mask exists: a prompt's masks
            # are computed only if one of them survives
            keep = (iou > self.pred_iou_thresh if self.pred_iou_thresh > 0.0
                    else torch.ones_like(iou, dtype=torch.bool))
            sel = keep.any(1)
            if bool(sel.any()):
                t1 = time.perf_counter()
                low = self.backend.decode_masks(q[sel], x[sel])
                self._tick('masks', t1)
                low_res.append(low.flatten(0, 1)[keep[sel].flatten()])
                iou_preds.append(iou[keep])
                index.append(torch.nonzero(keep)[:, 0].cpu() + s)
        n = sum(len(i) for i in index)
        low_res = (torch.cat(low_res) if n else
                   torch.zeros((0, 1, 1), device=coords.device))
        iou_preds = torch.cat(iou_preds) if n else torch.zeros(0, device=coords.device)
        pts = torch.as_tensor(points[torch.cat(index).numpy()] if n else points[:0])

        t0 = time.perf_counter()
        masks, stab, kept = [], [], []
        for s in range(0, len(low_res), self.upsample_chunk):
            logits = self._upsample(low_res[s:s + self.upsample_chunk])
            st = calculate_stability_score(logits, model.mask_threshold,
                                           self.stability_score_offset)
            ok = (st >= self.stability_score_thresh if self.stability_score_thresh > 0.0
                  else torch.ones_like(st, dtype=torch.bool))
            masks.append(logits[ok] > model.mask_threshold)
            stab.append(st[ok])
            kept.append(ok)
            del logits
        if masks:
            masks, stab, kept = torch.cat(masks), torch.cat(stab), torch.cat(kept)
        else:
            masks = torch.zeros((0,) + tuple(self.predictor.original_size), dtype=torch.bool,
                                device=low_res.device)
            stab = torch.zeros(0, device=low_res.device)
            kept = torch.zeros(0, dtype=torch.bool, device=low_res.device)
        data = MaskData(masks=masks, iou_preds=iou_preds[kept], points=pts[kept.cpu()],
                        stability_score=stab)
        data['boxes'] = batched_mask_to_box(data['masks'])
        keep = ~is_box_near_crop_edge(data['boxes'], crop_box, [0, 0, orig_w, orig_h])
        if not torch.all(keep):
            data.filter(keep)
        self._tick('postprocess', t0)
        return data

    @staticmethod
    def _small_regions(data, min_area, nms_thresh):
        """Run the library's ``postprocess_small_regions`` on boolean masks, not RLEs."""
        if len(data['masks']) == 0:
            return data
        new_masks, scores = [], []
        for mask in data['masks']:
            mask, changed_h = remove_small_regions(mask, min_area, mode='holes')
            mask, changed_i = remove_small_regions(mask, min_area, mode='islands')
            new_masks.append(torch.as_tensor(mask).unsqueeze(0))
            scores.append(float(not (changed_h or changed_i)))
        masks = torch.cat(new_masks, 0)
        boxes = batched_mask_to_box(masks)
        keep = batched_nms(boxes.float(), torch.as_tensor(scores), torch.zeros(len(boxes)),
                           iou_threshold=nms_thresh)
        for i in keep:
            if scores[i] == 0.0:
                data['masks'][i] = masks[i].numpy()
                data['boxes'][i] = boxes[i].numpy()
        data.filter(keep)
        return data


def build_tiny_sam(seed=0, img_size=256, embed_dim=32, depth=2, num_heads=2, prompt_dim=32,
                   logit_scale=1.0, device='cpu'):
    """
    Build a small random-weight SAM from the real ``segment_anything.modeling`` classes.

    For tests and CPU benchmarks only (weights cannot be downloaded there). ``prompt_dim=256``
    and ``img_size=1024`` give SAM's real decoder and post-processing cost with a tiny encoder.
    Random mask logits are tiny (std ~0.02), so every stability score is ~0; ``logit_scale``
    (e.g. 1000) multiplies the decoder's last hypernetwork layers so that masks survive the
    generator's filters and comparisons are meaningful.
    """
    from functools import partial

    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)
    torch.manual_seed(seed)
    emb = img_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=depth, embed_dim=embed_dim, img_size=img_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=num_heads,
            patch_size=16, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=[depth - 1], window_size=min(14, emb), out_chans=prompt_dim),
        prompt_encoder=PromptEncoder(embed_dim=prompt_dim, image_embedding_size=(emb, emb),
                                     input_image_size=(img_size, img_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim,
                                          mlp_dim=prompt_dim * 8, num_heads=8),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=prompt_dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(logit_scale)
    return sam.eval().to(device)
