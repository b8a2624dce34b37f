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
Training iteration speed, fp32 vs bf16 autocast (and channels-last), plus a short loss curve.

One iteration is what the trainer does (docs/training.md): a synthetic step (forward, Eq. 1,
backward, AdamW) and a real step (forward, Eq. 6, backward, AdamW), then the EMA update. The
batches (procedural frames, oracle segments) are rendered before timing, so the figure is the
GPU/CPU work of an iteration without data loading. Random-init weights (``pretrained: false``),
GroupNorm (batch 1, as the paper configs).

For every precision x memory format: median seconds per iteration after warm-up (and peak GPU
memory). Then a short run per precision from the same initial weights on the same batches:
the loss curves, the mean of each over the last half, their paired relative difference and the
iteration-to-iteration standard deviation of the fp32 curve over that half (``within_noise``:
the difference of the means is smaller than that deviation). Last printed line: JSON.

  python -m benchmarks.train_step --profile paper --device cuda            # GPU, 480x640
  tools/venv-run python -m benchmarks.train_step --tiny --device cpu       # CPU, tiny model
"""
import argparse
import json
import tempfile
import time

import numpy as np
import torch

TINY_MODEL = {'backbone': 'convnext_zepto_rms', 'pretrained': False, 'fpn_channels': 64,
              'fusion_channels': 32, 'feature_hidden': 16, 'norm': 'gn'}


def make_config(args, precision, channels_last):
    """Return a validated TrainConfig for the benchmark."""
    from sam2real_ros.training.config import apply_mapping, TrainConfig
    size = [args.height, args.width]
    model = dict(TINY_MODEL) if args.tiny else {'pretrained': False, 'norm': 'gn'}
    model['input_size'] = size
    spec = {'type': 'procedural', 'size': size, 'length': max(8, args.batches)}
    data = {'synthetic': dict(spec, appearance='synthetic', seed=0),
            'real': dict(spec, appearance='real', seed=1, segments='oracle'),
            'eval': dict(spec, appearance='real', seed=2, length=1), 'eval_frames': 1}
    cfg = apply_mapping(TrainConfig(), {
        'variant': 'full', 'model_profile': 'fast' if args.tiny else args.profile,
        'model': model, 'image_size': size, 'data': data, 'batch_size': args.batch,
        'frames_per_epoch': args.batch, 'device': args.device, 'precision': precision,
        'channels_last': channels_last, 'optim': {'warmup_iters': 0},
        'log': {'tensorboard': False, 'images_per_epoch': 0, 'progress': False}}, 'benchmark')
    return cfg.validate()


def build(args, precision, channels_last, out):
    """Build a Trainer and pre-render its batches."""
    from sam2real_ros.training.trainer import Trainer
    device = torch.device(args.device)
    tr = Trainer(make_config(args, precision, channels_last), out, device=device)
    syn, real = [], []
    for i in range(args.batches):
        idx = range(i * args.batch, (i + 1) * args.batch)
        syn.append(tr.prepare([tr.syn[j] for j in idx], ('labels',), 'synthetic'))
        real.append(tr.prepare([tr.real[j] for j in idx], ('masks',), 'real'))
    return tr, syn, real


def iteration(tr, syn, real):
    """Run one trainer iteration; returns (supervised loss, real loss)."""
    sup = tr.supervised_step(syn)
    reg = tr.real_step(real)['loss']
    tr.sched.step()
    tr.update_ema()
    return sup, reg


def sync(device):
    """Wait for queued GPU work."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_config(args, precision, channels_last, out):
    """Return seconds per iteration (median) and peak GPU memory of one configuration."""
    tr, syn, real = build(args, precision, channels_last, out)
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.warmup + args.iters):
        sync(args.device)
        t0 = time.perf_counter()
        iteration(tr, syn[i % len(syn)], real[i % len(real)])
        sync(args.device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() / 2 ** 20
            if args.device.startswith('cuda') else None)
    del tr
    return {'s_per_iter': round(float(np.median(times)), 4),
            'peak_mem_mb': round(peak) if peak else None}


def curve(args, precision, channels_last, out):
    """Return the (sup, real) loss curve of a short run from the seed's initial weights."""
    tr, syn, real = build(args, precision, channels_last, out)
    sups, regs = [], []
    for i in range(args.curve_iters):
        s, r = iteration(tr, syn[i % len(syn)], real[i % len(real)])
        sups.append(s)
        regs.append(r)
    return sups, regs


def compare(fp32, bf16):
    """Summarize two loss curves over their last half."""
    a, b = np.asarray(fp32), np.asarray(bf16)
    half = slice(len(a) // 2, None)
    ma, mb, sd = float(a[half].mean()), float(b[half].mean()), float(a[half].std())
    return {'fp32': [round(float(v), 5) for v in a], 'bf16': [round(float(v), 5) for v in b],
            'mean_last_half_fp32': round(ma, 5), 'mean_last_half_bf16': round(mb, 5),
            'rel_diff_last_half': round(abs(mb - ma) / max(abs(ma), 1e-12), 4),
            'max_paired_rel_diff': round(float(np.max(np.abs(b - a) / np.maximum(
                np.abs(a), 1e-12))), 4),
            'fp32_std_last_half': round(sd, 5), 'within_noise': bool(abs(mb - ma) <= sd)}


def main(argv=None):
    """Run the benchmark; prints a JSON line last."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    p.add_argument('--profile', default='paper')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--tiny', action='store_true', help='ConvNeXt-zepto slim model (CPU test)')
    p.add_argument('--height', type=int, default=None, help='480 (64 with --tiny)')
    p.add_argument('--width', type=int, default=None, help='640 (64 with --tiny)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--batches', type=int, default=4, help='distinct pre-rendered batches')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--curve-iters', type=int, default=30)
    p.add_argument('--precisions', default='fp32,bf16')
    p.add_argument('--memory-formats', default='contiguous,channels_last')
    p.add_argument('--threads', type=int, default=0, help='CPU threads (0: torch default)')
    args = p.parse_args(argv)
    args.height = args.height or (64 if args.tiny else 480)
    args.width = args.width or (64 if args.tiny else 640)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith('cuda'):
        torch.backends.cudnn.benchmark = True
    precisions = args.precisions.split(',')
    formats = args.memory_formats.split(',')
    out = {'profile': 'tiny' if args.tiny else args.profile, 'device': args.device,
           'gpu': torch.cuda.get_device_name() if args.device.startswith('cuda') else None,
           'torch_threads': torch.get_num_threads(), 'image': f'{args.height}x{args.width}',
           'batch': args.batch, 'iters': args.iters, 'timings': {}}
    with tempfile.TemporaryDirectory() as tmp:
        for prec in precisions:
            for fmt in formats:
                name = f'{prec}' + ('+channels_last' if fmt == 'channels_last' else '')
                out['timings'][name] = time_config(args, prec, fmt == 'channels_last', tmp)
                print(f'{name}: {out["timings"][name]}', flush=True)
        t = out['timings']
        base = t.get('fp32', {}).get('s_per_iter')
        if base:
            out['speedup_vs_fp32'] = {k: round(base / v['s_per_iter'], 2) for k, v in t.items()}
        if args.curve_iters and {'fp32', 'bf16'} <= set(precisions):
            best_cl = (min(t, key=lambda k: t[k]['s_per_iter']).endswith('channels_last'))
            curves = {prec: curve(args, prec, best_cl, tmp) for prec in ('fp32', 'bf16')}
            out['curves'] = {'channels_last': best_cl, 'iters': args.curve_iters,
                             'sup_loss': compare(curves['fp32'][0], curves['bf16'][0]),
                             'real_loss': compare(curves['fp32'][1], curves['bf16'][1])}
            for k in ('sup_loss', 'real_loss'):
                c = out['curves'][k]
                print(f'{k}: last-half mean fp32 {c["mean_last_half_fp32"]} bf16 '
                      f'{c["mean_last_half_bf16"]} (fp32 std {c["fp32_std_last_half"]})',
                      flush=True)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
