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
SAM worker speed: the naive ``SamAutomaticMaskGenerator`` vs the fast path, and mask agreement.

Random weights (no checkpoints here): ``--model-type vit_b|vit_l|vit_h`` builds the real-size
architecture from segment_anything's registry without a checkpoint; ``tiny`` is a small ViT
encoder with SAM's real 256-channel decoder and post-processing; ``micro`` is the tests' SAM
(256-pixel frame, 32 channels), for smoke runs of the benchmark itself. Random mask logits are
tiny, so the decoder's last layers are scaled (``--logit-scale``); random predicted IoUs are small
(ViT-B: -0.08..0.10), so the predicted-IoU threshold is set to keep ``--keep-fraction`` (0.25)
of the masks (measured on the first frame, untimed) unless ``--pred-iou-thresh`` is given; the
stability threshold is SAM's default (0.95); box NMS is off (1.0, SAM: 0.7) because the boxes of
random masks nearly all overlap and NMS would leave a handful of masks to compare. Both
generators get the same settings.

Each ``--variants`` entry is a fast-path configuration, '+'-joined from: ``onnx`` or ``torch``
(backend), ``int8`` (int8 encoder, onnx), ``bf16`` (encoder and decoder autocast), ``bf16enc``
(encoder only), ``sdpa``, ``compile``. Default: ``onnx`` on a CPU, ``torch,torch+bf16+sdpa,
torch+bf16+sdpa+compile`` on a GPU. Per variant: seconds per frame (median), speedup over the
naive generator, stage times, and agreement with the naive masks: masks are matched within the
same prompt point (greedy by IoU), reporting the mean and min IoU of matched masks and the
count difference. The fallback segmenter is timed on the first frame too. Last printed line: a
JSON object.

  tools/venv-run python -m benchmarks.sam_worker --model-type vit_b --variants onnx,torch  # CPU
  python -m benchmarks.sam_worker --device cuda --model-type vit_h                       # GPU
"""
import argparse
import json
import time

import numpy as np
import torch

OPTIONS = ('onnx', 'torch', 'int8', 'bf16', 'bf16enc', 'sdpa', 'compile')


def synthetic_image(h, w, seed=0):
    """Draw an HxWx3 uint8 tabletop-like test image (coloured boxes on a noisy background)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 110, np.uint8)
    for _ in range(10):
        y, x = rng.integers(0, h - h // 6), rng.integers(0, w - w // 6)
        img[y:y + rng.integers(h // 10, h // 4), x:x + rng.integers(w // 10, w // 4)] = \
            rng.integers(0, 255, 3)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def build_model(model_type, device, logit_scale):
    """Build a random-weight SAM of the given type on ``device``."""
    from segment_anything import sam_model_registry

    from sam2real_ros.sam.sam_fast import build_tiny_sam
    if model_type == 'tiny':
        return build_tiny_sam(0, img_size=1024, embed_dim=64, depth=2, num_heads=2,
                              prompt_dim=256, logit_scale=logit_scale, device=device)
    if model_type == 'micro':   # the tests' size: a smoke run of the benchmark itself
        return build_tiny_sam(0, logit_scale=logit_scale, device=device)
    torch.manual_seed(0)
    sam = sam_model_registry[model_type](checkpoint=None)
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(logit_scale)
    return sam.eval().requires_grad_(False).to(device)


def sync(device):
    """Wait for queued GPU work."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def variant_kwargs(spec, device):
    """Map a variant spec (``onnx+int8``) to :class:`SamOptions` fields."""
    opts = [o for o in spec.split('+') if o]
    bad = [o for o in opts if o not in OPTIONS]
    if bad:
        raise SystemExit(f'unknown variant option(s) {bad} in {spec!r}; use {list(OPTIONS)}')
    kw = {'backend': 'onnx' if 'onnx' in opts else 'torch'}
    if 'int8' in opts:
        kw['quantize'] = 'int8'
    if 'bf16' in opts or 'bf16enc' in opts:
        kw['encoder_dtype'] = 'bfloat16'
    if 'bf16' in opts:
        kw['decoder_dtype'] = 'bfloat16'
    kw['sdpa'] = 'sdpa' in opts
    kw['compile_encoder'] = 'compile' in opts
    return kw


def run_naive(sam, img, settings, device):
    """Run the library's generator, with stage times from wrappers around its calls."""
    from segment_anything import SamAutomaticMaskGenerator
    gen = SamAutomaticMaskGenerator(sam, **settings)
    t = {'encoder': 0.0, 'decoder': 0.0, 'predict_torch': 0.0}

    def timed(fn, name):
        def wrapper(*a, **k):
            sync(device)
            t0 = time.perf_counter()
            out = fn(*a, **k)
            sync(device)
            t[name] += time.perf_counter() - t0
            return out
        return wrapper

    gen.predictor.set_image = timed(gen.predictor.set_image, 'encoder')
    gen.predictor.predict_torch = timed(gen.predictor.predict_torch, 'predict_torch')
    sam.mask_decoder.forward = timed(sam.mask_decoder.forward, 'decoder')
    try:
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            recs = gen.generate(img)
        sync(device)
        total = time.perf_counter() - t0
    finally:
        del sam.mask_decoder.forward
    stages = {'encoder': t['encoder'], 'decoder': t['decoder'],
              'upsample_full_res': t['predict_torch'] - t['decoder'],
              'filter_rle_nms_decode': total - t['encoder'] - t['predict_torch']}
    masks = (np.stack([r['segmentation'] for r in recs]) if recs
             else np.zeros((0,) + img.shape[:2], bool))
    points = np.array([r['point_coords'][0] for r in recs]).reshape(-1, 2)
    return total, stages, {'masks': masks.astype(bool), 'points': points}


def run_fast(gen, img, device):
    """Run a fast generator on one frame; returns (seconds, stage times, arrays)."""
    sync(device)
    t0 = time.perf_counter()
    out = gen.generate_arrays(img)
    sync(device)
    return time.perf_counter() - t0, dict(gen.timings), out


def match_masks(ref, other):
    """
    Match masks that come from the same prompt point, greedily by IoU.

    Arguments:
    ---------
      ref, other (dict): ``masks`` NxHxW bool and ``points`` Nx2 (prompt point of each mask).

    Returns
    -------
      (dict): ``count_ref``, ``count``, ``count_diff``, ``matched``, ``mean_iou``, ``min_iou``
      (over matched pairs; 1.0 when nothing is to match).

    """
    ious, used = [], set()
    flat_o = other['masks'].reshape(len(other['masks']), other['masks'][0].size
                                    if len(other['masks']) else 0)
    flat_r = ref['masks'].reshape(len(ref['masks']), ref['masks'][0].size
                                  if len(ref['masks']) else 0)
    for m, p in zip(flat_r, ref['points']):
        cand = [j for j in np.flatnonzero(np.all(np.abs(other['points'] - p) < 1e-3, 1))
                if j not in used]
        if not cand:
            continue
        inter = (flat_o[cand] & m).sum(1)
        union = (flat_o[cand] | m).sum(1)
        iou = inter / np.maximum(union, 1)
        best = int(np.argmax(iou))
        used.add(cand[best])
        ious.append(float(iou[best]))
    n_ref, n = len(ref['masks']), len(other['masks'])
    return {'count_ref': n_ref, 'count': n, 'count_diff': n - n_ref, 'matched': len(ious),
            'mean_iou': round(float(np.mean(ious)), 5) if ious else 1.0,
            'min_iou': round(float(np.min(ious)), 5) if ious else 1.0}


def calibrate_pred_iou(gen, img, keep_fraction):
    """Return the predicted-IoU threshold that keeps ``keep_fraction`` of the masks of ``img``."""
    return float(np.quantile(gen.predicted_ious(img), 1.0 - keep_fraction))


def main(argv=None):
    """Run the benchmark; prints a JSON line last."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('--device', default='cpu')
    p.add_argument('--model-type', default=None, help='tiny (CPU default) | vit_b | vit_l | '
                   'vit_h (GPU default) | micro (256-pixel SAM, 32 channels: smoke runs)')
    p.add_argument('--points-per-side', type=int, default=None,
                   help='default 24 (paper); 8 for tiny')
    p.add_argument('--points-per-batch', type=int, default=64)
    p.add_argument('--decoder-batch', type=int, default=None,
                   help='prompts per decoder call (default 16 on a CPU, 64 on a GPU)')
    p.add_argument('--upsample-chunk', type=int, default=32)
    p.add_argument('--variants', default=None, help='comma-separated fast-path variants')
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--frames', type=int, default=1, help='timed frames (after warm-up)')
    p.add_argument('--logit-scale', type=float, default=1000.0)
    p.add_argument('--keep-fraction', type=float, default=0.25,
                   help='fraction of masks the predicted-IoU filter keeps (calibrated)')
    p.add_argument('--pred-iou-thresh', type=float, default=None, help='fixed threshold')
    p.add_argument('--stability-score-thresh', type=float, default=0.95)
    p.add_argument('--box-nms-thresh', type=float, default=1.0)
    p.add_argument('--skip-naive', action='store_true')
    p.add_argument('--skip-fallback', action='store_true', help='do not time the fallback')
    p.add_argument('--threads', type=int, default=0, help='CPU threads (0: torch default)')
    p.add_argument('--cache-dir', default=None, help='ONNX graph cache')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = args.device.startswith('cuda')
    model_type = args.model_type or ('vit_h' if on_gpu else 'tiny')
    pps = args.points_per_side or (8 if model_type in ('tiny', 'micro') else 24)
    specs = (args.variants or ('torch,torch+bf16+sdpa,torch+bf16+sdpa+compile' if on_gpu
                               else 'onnx')).split(',')
    from sam2real_ros.sam.options import SamOptions
    from sam2real_ros.sam.sam_fast import FastAutomaticMaskGenerator
    t0 = time.perf_counter()
    sam = build_model(model_type, args.device, args.logit_scale)
    print(f'{model_type}: built in {time.perf_counter() - t0:.1f} s', flush=True)
    settings = {'points_per_side': pps, 'points_per_batch': args.points_per_batch,
                'pred_iou_thresh': 0.0, 'stability_score_thresh': args.stability_score_thresh,
                'box_nms_thresh': args.box_nms_thresh}
    frames = [synthetic_image(args.height, args.width, seed=i) for i in range(args.frames)]
    gens, setup_s = {}, {}
    for spec in specs:
        t0 = time.perf_counter()
        gens[spec] = FastAutomaticMaskGenerator(sam, SamOptions(
            upsample_chunk=args.upsample_chunk, decoder_batch=args.decoder_batch,
            cache_dir=args.cache_dir, threads=args.threads or None, generator=settings,
            **variant_kwargs(spec, args.device)), log=lambda m: print(m, flush=True))
        setup_s[spec] = time.perf_counter() - t0
    if args.pred_iou_thresh is not None:
        settings['pred_iou_thresh'] = args.pred_iou_thresh
    else:
        settings['pred_iou_thresh'] = calibrate_pred_iou(gens[specs[0]], frames[0],
                                                         args.keep_fraction)
    print(f'settings {settings}', flush=True)
    from segment_anything.utils.amg import build_all_layer_point_grids
    few = build_all_layer_point_grids(2, 0, 1)
    for spec, gen in gens.items():   # warm-up (allocator, kernels, compilation), untimed
        gen.pred_iou_thresh = settings['pred_iou_thresh']
        grids, gen.point_grids = gen.point_grids, few
        t0 = time.perf_counter()
        with torch.no_grad():
            gen.generate_arrays(frames[0][:64, :64])
        setup_s[spec] += time.perf_counter() - t0
        gen.point_grids = grids
        print(f'{spec}: set up + warm-up {setup_s[spec]:.1f} s', flush=True)
    if not args.skip_naive:
        run_naive(sam, frames[0][:64, :64], dict(settings, points_per_side=2), args.device)
    naive_t, naive_stages, res = [], {}, {s: {'t': [], 'stages': {}, 'agree': []} for s in specs}
    for i, frame in enumerate(frames):
        ref = None
        if not args.skip_naive:
            nt, nst, ref = run_naive(sam, frame, settings, args.device)
            naive_t.append(nt)
            for k, v in nst.items():
                naive_stages[k] = naive_stages.get(k, 0.0) + v / len(frames)
            print(f'frame {i}: naive {nt:.2f} s, {len(ref["masks"])} masks; '
                  + ', '.join(f'{k} {v:.2f}' for k, v in nst.items()), flush=True)
        for spec, gen in gens.items():
            ft, st, out = run_fast(gen, frame, args.device)
            r = res[spec]
            r['t'].append(ft)
            for k, v in st.items():
                r['stages'][k] = r['stages'].get(k, 0.0) + v / len(frames)
            line = f'frame {i}: {spec} {ft:.2f} s, {len(out["masks"])} masks'
            if ref is not None:
                r['agree'].append(match_masks(ref, out))
                a = r['agree'][-1]
                line += (f'; vs naive: {a["matched"]} matched, mean IoU {a["mean_iou"]:.4f}, '
                         f'min {a["min_iou"]:.4f}, count diff {a["count_diff"]}')
            print(line + '; ' + ', '.join(f'{k} {v:.2f}' for k, v in st.items()), flush=True)
    fb_t = fb_masks = None
    if not args.skip_fallback:
        from sam2real_ros.sam.segmenters import FallbackSegmenter
        t0 = time.perf_counter()
        fb_masks = len(FallbackSegmenter()(frames[0]).masks)
        fb_t = round(time.perf_counter() - t0, 3)
        print(f'fallback (colour only, no depth here; quality: benchmarks/segmenter.py): '
              f'{fb_t:.2f} s, {fb_masks} masks')
    naive = float(np.median(naive_t)) if naive_t else None
    variants = {}
    for spec, r in res.items():
        fast = float(np.median(r['t']))
        ag = r['agree']
        variants[spec] = {
            's_per_frame': round(fast, 3),
            'speedup': round(naive / fast, 2) if naive else None,
            'setup_s': round(setup_s[spec], 1),
            'stages_s': {k: round(v, 3) for k, v in r['stages'].items()},
            'mean_mask_iou': min(a['mean_iou'] for a in ag) if ag else None,
            'min_mask_iou': min(a['min_iou'] for a in ag) if ag else None,
            'count_diff': max((a['count_diff'] for a in ag), key=abs) if ag else None,
            'masks_per_frame': float(np.mean([a['count'] for a in ag])) if ag else None}
    first = variants[specs[0]]
    out = {'model_type': model_type, 'device': args.device, 'random_weights': True,
           'torch_threads': torch.get_num_threads(), 'points_per_side': pps,
           'image': f'{args.height}x{args.width}', 'frames': len(frames),
           'settings': {k: (round(v, 5) if isinstance(v, float) else v)
                        for k, v in settings.items()},
           'naive_s_per_frame': round(naive, 3) if naive else None,
           'naive_stages_s': {k: round(v, 3) for k, v in naive_stages.items()},
           'naive_masks_per_frame': (float(np.mean([a['count_ref'] for a in res[specs[0]]
                                                    ['agree']])) if naive else None),
           'variant': specs[0], 's_per_frame': first['s_per_frame'],
           'speedup': first['speedup'], 'min_mask_iou_vs_naive': first['min_mask_iou'],
           'variants': variants, 'fallback_s_per_frame': fb_t,
           'fallback_masks_per_frame': fb_masks}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
