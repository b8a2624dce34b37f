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

"""SAM fast path: reordered decoder == library decoder; ONNX backend == library generator."""
import os

import numpy as np
import pytest
from sam2real_ros.sam import sam_onnx
from sam2real_ros.sam.backends import SdpaImageEncoder
from sam2real_ros.sam.options import SamOptions
from sam2real_ros.sam.sam_fast import build_tiny_sam, FastAutomaticMaskGenerator, \
    PromptBatchDecoder
from sam2real_ros.sam.segmenters import SamSegmenter, SegmenterError
from segment_anything import SamAutomaticMaskGenerator
import torch

SETTINGS = {'points_per_side': 4, 'points_per_batch': 6, 'pred_iou_thresh': 0.03,
            'stability_score_thresh': 0.6, 'box_nms_thresh': 1.0}


def _image(h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 90, np.uint8)
    img[h // 6:h * 2 // 3, w // 4:w * 5 // 8] = (200, 40, 40)
    img[h // 2:h - 5, w * 5 // 8:w - 5] = (0, 90, 250)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def tiny_sam():
    # random weights; logits rescaled so that masks pass the generator's filters (sam_fast)
    return build_tiny_sam(seed=0, logit_scale=1000.0)


def _same_output(naive, fast):
    assert len(naive) >= 3, 'test settings must let masks survive'
    assert len(fast) == len(naive)
    for a, b in zip(naive, fast):
        inter = (a['segmentation'] & b['segmentation']).sum()
        union = (a['segmentation'] | b['segmentation']).sum()
        assert inter / max(union, 1) >= 0.99
        assert a['bbox'] == b['bbox']
        assert b['predicted_iou'] == pytest.approx(a['predicted_iou'], abs=1e-5)
        assert b['stability_score'] == pytest.approx(a['stability_score'], abs=1e-4)


@pytest.mark.parametrize('dim', [32, 256])
def test_prompt_batch_decoder_equals_mask_decoder(dim):
    sam = build_tiny_sam(seed=1, prompt_dim=dim, logit_scale=50.0)
    emb = sam.prompt_encoder.image_embedding_size
    torch.manual_seed(0)
    feats = torch.randn(1, dim, *emb)
    coords = torch.rand(5, 1, 2) * sam.image_encoder.img_size
    labels = torch.ones(5, 1, dtype=torch.int)
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        ref_masks, ref_iou = sam.mask_decoder(
            image_embeddings=feats, image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=True)
        dec = PromptBatchDecoder(sam)
        iou, q, x = dec(dec.prompt_tokens(coords, labels), *dec.image_state(feats))
        masks = dec.masks(q[[3, 0]], x[[3, 0]])   # any subset of the prompts, in any order
    torch.testing.assert_close(iou[:, 1:], ref_iou, rtol=1e-4, atol=1e-5)
    scale = float(ref_masks.abs().max())
    assert scale > 1.0
    torch.testing.assert_close(masks, ref_masks[[3, 0]], rtol=1e-4, atol=1e-5 * scale)


def test_onnx_backend_equals_library_and_is_cached(tiny_sam, tmp_path):
    img = _image()
    naive = SamAutomaticMaskGenerator(tiny_sam, **SETTINGS).generate(img)
    notes = []
    gen = FastAutomaticMaskGenerator(tiny_sam, SamOptions(
        backend='onnx', cache_dir=tmp_path, decoder_batch=4, upsample_chunk=5,
        generator=SETTINGS), log=notes.append)
    assert gen.backend.name == 'onnx'
    _same_output(naive, gen.generate(img))
    # the public seam of the benchmark: the IoU head's predictions for every grid prompt
    ious = gen.predicted_ious(img)
    assert ious.shape == (SETTINGS['points_per_side'] ** 2, 3)
    assert (ious > SETTINGS['pred_iou_thresh']).any(1).sum() >= 3
    assert {'encoder', 'decoder', 'masks', 'postprocess', 'nms'} <= set(gen.timings)
    assert len(notes) == 2 and 'exporting SAM to ONNX' in notes[0]
    folder = tmp_path / sam_onnx.weights_key(tiny_sam)
    assert sorted(f for f in os.listdir(folder) if not f.startswith('.')) == [
        'decoder_masks.onnx', 'decoder_masks.onnx.data', 'decoder_tokens.onnx',
        'decoder_tokens.onnx.data', 'encoder.onnx', 'encoder.onnx.data']
    # the second generator on the same weights reuses the graphs
    again = []
    FastAutomaticMaskGenerator(tiny_sam, SamOptions(backend='onnx', cache_dir=tmp_path,
                                                    generator=SETTINGS), log=again.append)
    assert again == []
    # other weights, other key (a changed checkpoint never runs stale graphs)
    other = build_tiny_sam(seed=0, logit_scale=1000.0)
    with torch.no_grad():
        other.mask_decoder.iou_token.weight.add_(1e-3)
    assert sam_onnx.weights_key(other) != sam_onnx.weights_key(tiny_sam)
    assert sam_onnx.weights_key(build_tiny_sam(seed=0, logit_scale=1000.0)) == \
        sam_onnx.weights_key(tiny_sam)


def test_torch_backend_without_iou_filter_and_sdpa_encoder(tiny_sam):
    img = _image(48, 64)
    kw = dict(SETTINGS, pred_iou_thresh=0.0)
    naive = SamAutomaticMaskGenerator(tiny_sam, **kw).generate(img)
    gen = FastAutomaticMaskGenerator(tiny_sam, SamOptions(sdpa=True, decoder_batch=5,
                                                          generator=kw))
    assert gen.backend.name == 'torch'  # auto: sdpa is a torch option
    _same_output(naive, gen.generate(img))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(SdpaImageEncoder(tiny_sam.image_encoder)(x),
                                   tiny_sam.image_encoder(x), rtol=1e-4, atol=1e-5)


def test_int8_encoder_and_option_errors(tiny_sam, tmp_path):
    img = _image()
    # 'auto' picks onnx for a CPU model, torch when a reduced-precision encoder is asked for
    opt = SamOptions(model_type='tiny', cache_dir=tmp_path, generator=SETTINGS)
    auto = SamSegmenter(tiny_sam, opt, log=lambda m: None)
    assert auto.generator.backend.name == 'onnx' and auto.settings['backend'] == 'onnx'
    bf16 = SamSegmenter(tiny_sam, opt.with_changes(encoder_dtype='bfloat16'))
    assert bf16.generator.backend.name == 'torch'
    # the backend asked for is the backend used
    assert SamSegmenter(tiny_sam, opt.with_changes(backend='torch')).settings['backend'] == \
        'torch'
    # the int8 encoder is quantized from the float graph already in the cache
    notes = []
    seg = SamSegmenter(tiny_sam, opt.with_changes(backend='onnx', quantize='int8'),
                       log=notes.append)
    assert 'once for these weights (encoder_int8)' in notes[0]
    out = seg(img)
    assert out.masks.shape[1:] == img.shape[:2] and len(out.masks) > 0
    assert seg.settings['quantize'] == 'int8'
    folder = tmp_path / sam_onnx.weights_key(tiny_sam)
    assert (folder / 'encoder_int8.onnx').is_file()
    with pytest.raises(SegmenterError, match='encoder_dtype: torch backend only'):
        SamSegmenter(tiny_sam, opt.with_changes(backend='onnx', encoder_dtype='bfloat16'))
    with pytest.raises(SegmenterError, match='quantize needs backend onnx'):
        SamSegmenter(tiny_sam, opt.with_changes(backend='torch', quantize='int8'))
    with pytest.raises(ValueError, match='backend must be one of'):
        SamOptions(backend='tensorrt')
    with pytest.raises(ValueError, match=r"unknown SAM generator settings: \['points_per_sid'\]"):
        SamOptions(generator={'points_per_sid': 4})
