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
Segment pooling loss (Eq. 2-5): project implementation vs. direct dense transcription.

    tools/venv-run python -m benchmarks.segment_loss [--n 150] [--height 480] [--width 640]

Each method runs in its own subprocess on identical inputs (seeded): D=3 features at HxW and N
overlapping elliptic segments. The project's loss gets them as the trainer does, as
``MaskLayers`` (a few label layers; built once before timing, its build time reported as
``layers_ms``); the dense transcription as NxHxW bool. Time: median forward+backward wall time
over ``--repeats`` runs after one warm-up. Peak memory: the growth of the process's peak resident
set size (``ru_maxrss``) during those runs, measured after the inputs exist and torch is warm,
i.e. the extra memory the loss needs on top of features + masks. ``masks_mb`` is the size of
the masks as the method holds them (NxHxW bool vs the layers). ``max_abs_diff`` compares inv,
var and the feature gradient of both methods. The last line is JSON.
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


def make_inputs(n, h, w, d=3, seed=0, source='ellipses'):
    """
    Features DxHxW float32 (smooth random) and overlapping bool masks.

    ``source``: ``ellipses`` (N random ellipses, a stress case: each pixel in ~13 masks) or
    ``ycbv`` (the fallback segmenter's masks of the first real YCB-Video sample frame with its
    depth, resized to HxW: what training sees).
    """
    rng = np.random.default_rng(seed)
    if source == 'ycbv':
        from benchmarks.segmenter import DEFAULT_DATA, load_bop_frames
        from sam2real_ros.modeling.preprocessing import resize_masks
        from sam2real_ros.sam.fallback import FallbackSegmenter
        f = load_bop_frames(DEFAULT_DATA, limit=1)[0]
        masks = resize_masks(FallbackSegmenter()(f['rgb'], f['depth']).masks, (h, w))
    else:
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


def child(method, n, h, w, repeats, out_path, source='ellipses'):
    """Run one method; write timings, peak growth, values and gradient to ``out_path``."""
    from sam2real_ros.training.losses import segment_pooling_losses
    feats, masks = make_inputs(n, h, w, source=source)
    layers_s, num_layers, held = 0.0, 0, masks
    if method == 'project':
        try:
            from sam2real_ros.sam.mask_layers import MaskLayers
        except ImportError:  # an older checkout (dense masks): measure it as it was
            MaskLayers = None
        if MaskLayers is not None:
            t0 = time.perf_counter()
            held = MaskLayers.from_masks(masks)
            layers_s = time.perf_counter() - t0
            num_layers = held.num_layers
    masks_mb = (held.layers.nbytes if hasattr(held, 'layers') else held.nbytes) / 2 ** 20

    def once():
        f = feats.clone().requires_grad_(True)
        if method == 'project':
            out = segment_pooling_losses(f, held)
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
             grad=grad.numpy(), coverage=masks.sum() / (h * w), layers_s=layers_s,
             num_layers=num_layers, masks_mb=masks_mb, n=len(masks))


def main(argv=None):
    """Run both methods in subprocesses and print the comparison (JSON last line)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=150, help='number of segments')
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--source', choices=('ellipses', 'ycbv'), default='ellipses',
                   help='masks: random ellipses (--n of them) or the fallback segments of a '
                   'real frame (--n ignored)')
    p.add_argument('--child', choices=('project', 'dense'), help=argparse.SUPPRESS)
    p.add_argument('--child-out', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.n, args.height, args.width, args.repeats, args.child_out,
              args.source)
        return 0
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ('project', 'dense'):
            out = os.path.join(tmp, f'{method}.npz')
            subprocess.run([sys.executable, '-m', 'benchmarks.segment_loss', '--child', method,
                            '--child-out', out, '--n', str(args.n), '--height',
                            str(args.height), '--width', str(args.width), '--repeats',
                            str(args.repeats), '--source', args.source], check=True,
                           cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
        'source': args.source, 'n': int(a['n']), 'height': args.height, 'width': args.width,
        'd': 3,
        'mask_coverage': round(float(a['coverage']), 2), 'repeats': args.repeats,
        'torch_threads': torch.get_num_threads(),
        'ms': round(statistics.median(a['times']) * 1e3, 1),
        'peak_mb': round(float(a['peak_kb']) / 1024, 1),
        'layers_ms': round(float(a['layers_s']) * 1e3, 1), 'layers': int(a['num_layers']),
        'masks_mb': round(float(a['masks_mb']), 1),
        'dense_masks_mb': round(float(b['masks_mb']), 1),
        'dense_ms': round(statistics.median(b['times']) * 1e3, 1),
        'dense_peak_mb': round(float(b['peak_kb']) / 1024, 1),
        'max_abs_diff': diff,
        'memory': 'growth of ru_maxrss during the timed runs, one subprocess per method',
    }
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
