"""
Segment pooling loss (Eq. 2-5): project implementation vs. direct dense transcription.

    tools/venv-run python benchmarks/segment_loss.py [--n 150] [--height 480] [--width 640]

Each method runs in its own subprocess on identical inputs (seeded): D=3 features at HxW and N
overlapping elliptic segments (bool masks). Time: median forward+backward wall time over
``--repeats`` runs after one warm-up. Peak memory: the growth of the process's peak resident
set size (``ru_maxrss``) during those runs, measured after the inputs exist and torch is warm,
i.e. the extra memory the loss needs on top of features + bool masks. ``max_abs_diff`` compares
inv, var and the feature gradient of both methods. The last line is JSON.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch


def make_inputs(n, h, w, d=3, seed=0):
    """Features DxHxW float32 (smooth random) and N overlapping elliptic bool masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(10, h / 3), rng.uniform(10, w / 3)
        masks[i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    low = torch.from_numpy(rng.standard_normal((1, d, h // 16, w // 16)).astype(np.float32))
    feats = torch.nn.functional.interpolate(low, size=(h, w), mode='bilinear',
                                            align_corners=False)[0]
    return feats.contiguous(), masks


def dense_losses(features, masks, margin=0.5):
    """Direct transcription of Eq. 2-5 with dense NxDxP tensors (the memory-hungry way)."""
    d = features.shape[0]
    z = features.reshape(d, -1)                                   # D x P
    m = torch.from_numpy(masks.reshape(masks.shape[0], -1)).to(z.dtype)  # N x P
    m = m[m.sum(1) > 0]
    count = m.sum(1)                                              # |S_i|
    mu = (m[:, None, :] * z[None]).sum(2) / count[:, None]        # Eq. 2, N x D
    v = (m[:, None, :] * (z[None] - mu[:, :, None]) ** 2).sum(2)  # Eq. 3, N x D
    inv = v.abs().sum() / d / count.sum()                         # Eq. 4
    n = mu.shape[0]
    dist = torch.cdist(mu, mu)                                    # N x N, ordered pairs
    off = ~torch.eye(n, dtype=torch.bool)
    var = torch.relu(margin - dist[off]).sum() / (n * (n - 1))    # = unordered-pair mean
    return inv, var


def child(method, n, h, w, repeats, out_path):
    """Run one method; write timings, peak growth, values and gradient to ``out_path``."""
    from sam2real_ros.training.losses import segment_pooling_losses
    feats, masks = make_inputs(n, h, w)

    def once():
        f = feats.clone().requires_grad_(True)
        if method == 'project':
            out = segment_pooling_losses(f, masks)
            inv, var = out['inv'], out['var']
        else:
            inv, var = dense_losses(f, masks)
        (inv + var).backward()
        return float(inv.detach()), float(var.detach()), f.grad

    small = make_inputs(4, 32, 32)  # warm up kernels without raising the high-water mark
    f0 = small[0].clone().requires_grad_(True)
    if method == 'project':
        segment_pooling_losses(f0, small[1])['inv'].backward()
    else:
        dense_losses(f0, small[1])[0].backward()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        inv, var, grad = once()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.savez(out_path, times=np.array(times), peak_kb=peak - base, inv=inv, var=var,
             grad=grad.numpy(), coverage=masks.sum() / (h * w))


def main(argv=None):
    """Run both methods in subprocesses and print the comparison (JSON last line)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=150, help='number of segments')
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--child', choices=('project', 'dense'), help=argparse.SUPPRESS)
    p.add_argument('--child-out', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.n, args.height, args.width, args.repeats, args.child_out)
        return 0
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ('project', 'dense'):
            out = os.path.join(tmp, f'{method}.npz')
            subprocess.run([sys.executable, os.path.abspath(__file__), '--child', method,
                            '--child-out', out, '--n', str(args.n), '--height',
                            str(args.height), '--width', str(args.width), '--repeats',
                            str(args.repeats)], check=True)
            with np.load(out) as z:
                res[method] = {k: z[k] for k in z.files}
            r = res[method]
            print(f'{method:8s}: fwd+bwd median {statistics.median(r["times"]) * 1e3:8.1f} ms, '
                  f'peak RSS growth {float(r["peak_kb"]) / 1024:8.1f} MB, '
                  f'inv {float(r["inv"]):.6f} var {float(r["var"]):.6f}')
    a, b = res['project'], res['dense']
    diff = max(abs(float(a['inv']) - float(b['inv'])), abs(float(a['var']) - float(b['var'])),
               float(np.abs(a['grad'] - b['grad']).max()))
    summary = {
        'n': args.n, 'height': args.height, 'width': args.width, 'd': 3,
        'mask_coverage': round(float(a['coverage']), 2), 'repeats': args.repeats,
        'torch_threads': torch.get_num_threads(),
        'ms': round(statistics.median(a['times']) * 1e3, 1),
        'peak_mb': round(float(a['peak_kb']) / 1024, 1),
        'dense_ms': round(statistics.median(b['times']) * 1e3, 1),
        'dense_peak_mb': round(float(b['peak_kb']) / 1024, 1),
        'max_abs_diff': diff,
        'memory': 'growth of ru_maxrss during the timed runs, one subprocess per method',
    }
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
