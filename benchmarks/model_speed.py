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
Time ``SegmentationEngine.predict`` on a 640x480 frame for model profiles (random weights).

Usage: ``python -m benchmarks.model_speed [--profiles fast,paper] [--iters 20] [--threads 2]``.
Each profile is exported to ONNX (random weights) in a temporary folder, then ``predict`` is
timed end to end (resize, normalize, network, argmax, upsampling to 640x480), with and without
the dense features. Prints one line per profile; the last line is a JSON object of medians in
ms. Figures on a shared machine are noisy: compare medians of several runs.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def time_predict(engine, rgb, iters, want_features):
    """
    Wall-time median and min, and process CPU-time median (ms) of ``engine.predict``.

    CPU time (all threads of this process) is less sensitive to other jobs on a shared machine
    than wall time; with 1 thread it approximates the uncontended single-core wall time.
    """
    for _ in range(2):
        engine.predict(rgb, want_features=want_features)
    times, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        engine.predict(rgb, want_features=want_features)
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return float(np.median(times)), float(np.min(times)), float(np.median(cpu))


def main(argv=None):
    """Run the benchmark; returns 0."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--profiles', default='fast', help='comma-separated profile names/paths')
    p.add_argument('--iters', type=int, default=20, help='timed calls per setting')
    p.add_argument('--threads', type=int, default=2, help='onnxruntime intra-op threads')
    p.add_argument('--backend', choices=('onnxruntime', 'torch'), default='onnxruntime')
    args = p.parse_args(argv)

    import torch

    from sam2real_ros.inference.engine import SegmentationEngine
    from sam2real_ros.inference.export import export_onnx
    from sam2real_ros.modeling import model as mdl

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.profiles.split(','):
            cfg = mdl.load_profile(name, num_classes=3, pretrained=False)
            torch.manual_seed(0)
            net = mdl.build_model(cfg).eval()
            if args.backend == 'onnxruntime':
                path = os.path.join(tmp, f'{cfg.name}.onnx')
                export_onnx(net, cfg, ['bg', 'a', 'b'], path, verify=False)
            else:
                path = os.path.join(tmp, f'{cfg.name}.pt')
                torch.save(mdl.checkpoint_payload(net, cfg, ['bg', 'a', 'b']), path)
            del net
            engine = SegmentationEngine.load(path, backend=args.backend, device='cpu',
                                             threads=args.threads)
            labels_ms, labels_min, labels_cpu = time_predict(engine, rgb, args.iters, False)
            both_ms, both_min, both_cpu = time_predict(engine, rgb, args.iters, True)
            size = 'x'.join(map(str, engine.input_size or (480, 640)))
            print(f'{cfg.name}: {cfg.backbone}, inference {size}, {args.backend} '
                  f'{args.threads} threads: predict 640x480 labels only {labels_ms:.1f} ms '
                  f'(min {labels_min:.1f}, cpu {labels_cpu:.1f}), labels+features '
                  f'{both_ms:.1f} ms (min {both_min:.1f}, cpu {both_cpu:.1f})', flush=True)
            results[cfg.name] = {'labels_ms': round(labels_ms, 1),
                                 'labels_features_ms': round(both_ms, 1),
                                 'labels_min_ms': round(labels_min, 1),
                                 'labels_cpu_ms': round(labels_cpu, 1),
                                 'labels_features_cpu_ms': round(both_cpu, 1),
                                 'inference_size': size, 'backbone': cfg.backbone}
            del engine
    print(json.dumps({'benchmark': 'model_speed', 'backend': args.backend,
                      'threads': args.threads, 'frame': '640x480', 'results': results}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
