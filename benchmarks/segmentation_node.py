"""
Benchmark the segmentation node end to end through real DDS, and the bare engine.

``python benchmarks/segmentation_node.py --profile fast [--device cpu|cuda] [--seconds N]``

1. exports a random-weight model of the profile;
2. bare engine: ``SegmentationEngine.predict`` on 640x480 frames in this process (labels only,
   no features, as the node does when nobody subscribes to ~/features);
3. end to end: sim_camera process (640x480 rgb8) -> segmentation_node process -> this
   process (labels), with the engine measurement finished first so they do not share the CPU.

The last printed line is a JSON object: ``hz``, ``latency_ms_p50``, ``latency_ms_p95``
(camera stamp -> label received here), ``engine_hz``, ``engine_ms_p50``, ``node_ms_p50``
(node's per-frame work: conversion + engine + publishing), ``overhead_pct``
(node_ms_p50 / engine_ms_p50 - 1), ``dropped``, ``camera_hz``, ``profile``, ``device``.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def bench_engine(model_path, backend, device, seconds, threads=0):
    """Return (predictions per second, p50 ms, backend name) of the bare engine at 640x480."""
    from sam2real_ros.inference.engine import SegmentationEngine
    from sam2real_ros.nodes.sim_camera import PatternSource
    engine = SegmentationEngine.load(model_path, backend=backend, device=device,
                                     threads=threads or None)
    source = PatternSource(640, 480)
    for i in range(3):  # warm-up
        engine.predict(source.frame(i), want_features=False)
    times, t_end, i = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < t_end or len(times) < 5:
        frame = source.frame(i)
        t0 = time.perf_counter()
        engine.predict(frame, want_features=False)
        times.append(time.perf_counter() - t0)
        i += 1
    ms = np.array(times) * 1e3
    return 1e3 / ms.mean(), float(np.median(ms)), str(getattr(engine, 'backend', backend))


def main(argv=None):
    """Run the benchmark; returns an exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--profile', default='fast', help='model profile (fast or paper)')
    ap.add_argument('--device', default='auto', help='engine device: auto, cpu or cuda')
    ap.add_argument('--backend', default='auto', help='engine backend (auto)')
    ap.add_argument('--allow-spinning', action='store_true',
                    help='let onnxruntime threads busy-wait in the node (default: off)')
    ap.add_argument('--threads', type=int, default=0, help='CPU threads (0: library default)')
    ap.add_argument('--seconds', type=float, default=10.0, help='end-to-end window (10)')
    ap.add_argument('--camera-hz', type=float, default=30.0, help='camera rate (30)')
    ap.add_argument('--model', default=None, help='use this model instead of exporting one')
    ap.add_argument('--workdir', default=None, help='model and logs (default: a temp dir)')
    args = ap.parse_args(argv)
    from sam2real_ros.demo.graph import export_random_model, NodeGraph

    workdir = args.workdir or tempfile.mkdtemp(prefix='sam2real_bench_')
    os.makedirs(workdir, exist_ok=True)
    model = args.model or export_random_model(args.profile,
                                              os.path.join(workdir, f'{args.profile}.onnx'))
    engine_hz, engine_ms, backend = bench_engine(model, args.backend, args.device,
                                                 max(3.0, args.seconds / 2), args.threads)
    print(f'bare engine: {engine_hz:.1f} Hz, p50 {engine_ms:.1f} ms ({backend})', flush=True)
    params = {'backend': args.backend, 'device': args.device, 'threads': args.threads,
              'allow_spinning': args.allow_spinning}
    try:
        with NodeGraph(model, workdir, rate_hz=args.camera_hz, node_params=params) as graph:
            graph.wait_for_labels()
            time.sleep(2.0)  # settle (first frames include lazy initialisation)
            res = graph.measure(args.seconds)
    except RuntimeError as exc:
        print(f'benchmark failed: {exc}', file=sys.stderr)
        return 1
    node_ms = float(res['node'].get('node_ms_p50', 'nan'))
    out = {
        'hz': round(res['hz'], 2),
        'latency_ms_p50': round(res['latency_ms_p50'], 1),
        'latency_ms_p95': round(res['latency_ms_p95'], 1),
        'engine_hz': round(engine_hz, 2),
        'engine_ms_p50': round(engine_ms, 1),
        'node_ms_p50': node_ms,
        'node_inference_ms_p50': float(res['node'].get('inference_ms_p50', 'nan')),
        'overhead_pct': round(100.0 * (node_ms / engine_ms - 1.0), 1),
        'dropped': res['dropped'],
        'frames': res['frames'],
        'camera_hz': args.camera_hz,
        'profile': args.profile,
        'device': args.device,
        'threads': args.threads,
        'backend': res['node'].get('backend', backend),
    }
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
