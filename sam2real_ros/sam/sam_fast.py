"""
A faster ``SamAutomaticMaskGenerator`` with the same output (masks, scores, boxes, order).

The library's generator upsamples *every* one of the 3 masks per point prompt to full
resolution (first to 1024x1024, padding included), then filters by predicted IoU, then by
stability score, encodes each survivor as RLE in a Python loop, runs box NMS, and finally decodes
the RLEs back to masks. :class:`FastAutomaticMaskGenerator` does the same arithmetic on fewer
masks:

1. the predicted-IoU filter runs on the low-resolution decoder output, before any upsampling
   (the scores do not depend on it), so only survivors are upsampled;
2. upsampling skips the padded part of SAM's 1024x1024 frame (bit-identical: bilinear with an
   exact 4x scale only reads the low-res rows/columns the kept output needs) and runs in chunks;
3. masks stay boolean tensors (no RLE encode/decode round trip); areas are plain sums.

Stability score, thresholding, boxes, crop-edge filtering and NMS are the library's own
functions on the same full-resolution logits, so the kept masks are the same. Optionally the
image encoder runs in bfloat16/float16 (``encoder_dtype``; changes the output slightly, off by
default).

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
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.utils.amg import (
    batched_mask_to_box, calculate_stability_score, is_box_near_crop_edge, MaskData,
    remove_small_regions, uncrop_boxes_xyxy, uncrop_masks, uncrop_points)
import torch
import torch.nn.functional as F
from torchvision.ops.boxes import batched_nms

ENCODER_DTYPES = {'float32': None, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
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


class FastAutomaticMaskGenerator(SamAutomaticMaskGenerator):
    """
    Drop-in subclass of ``SamAutomaticMaskGenerator`` (``output_mode='binary_mask'``).

    Arguments:
    ---------
      model (Sam): the SAM model.
      upsample_chunk (int): masks upsampled to full resolution at once (memory bound).
      encoder_dtype (str): 'float32' (exact), 'bfloat16' or 'float16' (autocast of the image
        encoder only).
      **kwargs: the parent's generator settings (points_per_side, pred_iou_thresh, ...).

    """

    def __init__(self, model, upsample_chunk=32, encoder_dtype='float32', **kwargs):
        if kwargs.get('output_mode', 'binary_mask') != 'binary_mask':
            raise ValueError('FastAutomaticMaskGenerator only supports output_mode=binary_mask')
        if encoder_dtype not in ENCODER_DTYPES:
            raise ValueError(f'encoder_dtype must be one of {sorted(ENCODER_DTYPES)}, '
                             f'got {encoder_dtype!r}')
        super().__init__(model, **kwargs)
        self.upsample_chunk = max(1, int(upsample_chunk))
        self.encoder_dtype = encoder_dtype
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
        t0 = time.perf_counter()
        dtype = ENCODER_DTYPES[self.encoder_dtype]
        if dtype is None:
            self.predictor.set_image(image)
        else:
            with torch.autocast(self.predictor.device.type, dtype=dtype):
                self.predictor.set_image(image)
            self.predictor.features = self.predictor.features.float()
        self._tick('encoder', t0)

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
        t0 = time.perf_counter()
        transformed = self.predictor.transform.apply_coords(points, im_size)
        in_points = torch.as_tensor(transformed, device=self.predictor.device)
        in_labels = torch.ones(in_points.shape[0], dtype=torch.int, device=in_points.device)
        sparse, dense = model.prompt_encoder(points=(in_points[:, None, :], in_labels[:, None]),
                                             boxes=None, masks=None)
        low_res, iou_preds = model.mask_decoder(
            image_embeddings=self.predictor.features,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=True)
        n_out = low_res.shape[1]
        low_res, iou_preds = low_res.flatten(0, 1), iou_preds.flatten(0, 1)
        pts = torch.as_tensor(points.repeat(n_out, axis=0))
        self._tick('decoder', t0)

        t0 = time.perf_counter()
        if self.pred_iou_thresh > 0.0:
            keep = iou_preds > self.pred_iou_thresh
            low_res, iou_preds, pts = low_res[keep], iou_preds[keep], pts[keep.cpu()]
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
