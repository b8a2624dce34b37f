"""
Where the SAM worker's time goes, naive generator vs the fast path, and the fallback.

Random weights (no checkpoints here): ``--model-type tiny`` (default on CPU) is a small ViT
encoder with SAM's real prompt encoder / mask decoder (256 ch) and real 1024x1024
post-processing; ``vit_h`` / ``vit_l`` / ``vit_b`` are the real-size architectures. Random mask
logits are tiny, so the decoder's last layers are scaled (``--logit-scale``) and the filter
thresholds are lowered (same settings for naive and fast) so that masks survive and the
per-mask IoU comparison is meaningful. Last printed line: a JSON object.

  tools/venv-run python -m benchmarks.sam_worker                       # CPU, tiny, 8 pts/side
  python -m benchmarks.sam_worker --device cuda --model-type vit_h     # GPU, 24 pts/side
"""
import argparse
import json
import time

import numpy as np
import torch


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
    torch.manual_seed(0)
    sam = sam_model_registry[model_type](checkpoint=None)
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(logit_scale)
    return sam.eval().to(device)


def sync(device):
    """Wait for queued GPU work."""
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


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
    dec_forward = sam.mask_decoder.forward
    sam.mask_decoder.forward = timed(dec_forward, 'decoder')
    try:
        sync(device)
        t0 = time.perf_counter()
        recs = gen.generate(img)
        sync(device)
        total = time.perf_counter() - t0
    finally:
        del sam.mask_decoder.forward
    stages = {'encoder': t['encoder'], 'decoder': t['decoder'],
              'upsample_full_res': t['predict_torch'] - t['decoder'],
              'filter_rle_nms_decode': total - t['encoder'] - t['predict_torch']}
    masks = np.stack([r['segmentation'] for r in recs]) if recs else np.zeros((0,) + img.shape[:2])
    return total, stages, masks.astype(bool)


def run_fast(sam, img, settings, device, chunk, encoder_dtype):
    """Run the fast path; stage times from the generator."""
    from sam2real_ros.sam.sam_fast import FastAutomaticMaskGenerator
    gen = FastAutomaticMaskGenerator(sam, upsample_chunk=chunk, encoder_dtype=encoder_dtype,
                                     **settings)
    sync(device)
    t0 = time.perf_counter()
    out = gen.generate_arrays(img)
    sync(device)
    return time.perf_counter() - t0, dict(gen.timings), out['masks']


def min_iou(a, b):
    """Return the min per-mask IoU of two equally ordered mask stacks (0: counts differ)."""
    if len(a) != len(b):
        return 0.0
    if len(a) == 0:
        return 1.0
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    inter, union = (a & b).sum(1), (a | b).sum(1)
    return float(np.min(inter / np.maximum(union, 1)))


def main(argv=None):
    """Run the benchmark; prints a JSON line last."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--model-type', default=None, help='tiny (CPU default) | vit_h | vit_l | vit_b')
    p.add_argument('--points-per-side', type=int, default=None,
                   help='default 8 for tiny on CPU, else 24 (paper)')
    p.add_argument('--points-per-batch', type=int, default=64)
    p.add_argument('--upsample-chunk', type=int, default=32)
    p.add_argument('--encoder-dtype', default='float32')
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--frames', type=int, default=1, help='timed frames (after one warm-up)')
    p.add_argument('--logit-scale', type=float, default=1000.0)
    p.add_argument('--pred-iou-thresh', type=float, default=0.0, help='lowered (default 0.88)')
    p.add_argument('--stability-score-thresh', type=float, default=0.5,
                   help='lowered (default 0.95)')
    p.add_argument('--box-nms-thresh', type=float, default=1.0,
                   help='1.0 keeps random masks (their boxes all overlap); SAM default 0.7')
    p.add_argument('--skip-naive', action='store_true')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_type = args.model_type or ('tiny' if args.device == 'cpu' else 'vit_h')
    pps = args.points_per_side or (8 if model_type == 'tiny' and args.device == 'cpu' else 24)
    settings = {'points_per_side': pps, 'points_per_batch': args.points_per_batch,
                'pred_iou_thresh': args.pred_iou_thresh,
                'stability_score_thresh': args.stability_score_thresh,
                'box_nms_thresh': args.box_nms_thresh}
    sam = build_model(model_type, args.device, args.logit_scale)
    img = synthetic_image(args.height, args.width)
    with torch.no_grad():  # warm-up (allocator, kernels)
        run_fast(sam, img[:64, :64], dict(settings, points_per_side=2), args.device,
                 args.upsample_chunk, 'float32')
    fast_t, naive_t, stages, naive_stages, ious, counts = [], [], {}, {}, [], []
    for i in range(args.frames):
        frame = synthetic_image(args.height, args.width, seed=i)
        ft, st, fm = run_fast(sam, frame, settings, args.device, args.upsample_chunk,
                              args.encoder_dtype)
        fast_t.append(ft)
        counts.append(len(fm))
        for k, v in st.items():
            stages[k] = stages.get(k, 0.0) + v / args.frames
        print(f'frame {i}: fast {ft:.2f} s, {len(fm)} masks, stages '
              + ', '.join(f'{k} {v:.2f}' for k, v in st.items()))
        if not args.skip_naive:
            nt, nst, nm = run_naive(sam, frame, settings, args.device)
            naive_t.append(nt)
            ious.append(min_iou(nm, fm))
            for k, v in nst.items():
                naive_stages[k] = naive_stages.get(k, 0.0) + v / args.frames
            print(f'frame {i}: naive {nt:.2f} s, {len(nm)} masks, stages '
                  + ', '.join(f'{k} {v:.2f}' for k, v in nst.items())
                  + f'; min IoU fast vs naive {ious[-1]:.4f}')
    from sam2real_ros.sam.segmenters import FallbackSegmenter
    fb = FallbackSegmenter()
    t0 = time.perf_counter()
    fb_masks = len(fb(img).masks)
    fb_t = time.perf_counter() - t0
    print(f'fallback (colour only, no depth here; quality: benchmarks/segmenter.py): '
          f'{fb_t:.2f} s, {fb_masks} masks')
    res = {
        's_per_frame': round(float(np.median(fast_t)), 3),
        'naive_s_per_frame': round(float(np.median(naive_t)), 3) if naive_t else None,
        'speedup': round(float(np.median(naive_t) / np.median(fast_t)), 2) if naive_t else None,
        'masks_per_frame': float(np.mean(counts)), 'device': args.device, 'model_type': model_type,
        'random_weights': True, 'points_per_side': pps, 'image': f'{args.height}x{args.width}',
        'settings': settings, 'encoder_dtype': args.encoder_dtype,
        'stages_s': {k: round(v, 3) for k, v in stages.items()},
        'naive_stages_s': {k: round(v, 3) for k, v in naive_stages.items()},
        'min_mask_iou_vs_naive': min(ious) if ious else None,
        'fallback_s_per_frame': round(fb_t, 3), 'fallback_masks_per_frame': fb_masks}
    print(json.dumps(res))


if __name__ == '__main__':
    main()
