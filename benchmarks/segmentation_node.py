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
Benchmark the segmentation node end to end through real DDS, and the bare engine.

``python -m benchmarks.segmentation_node --profile fast [--device cpu|cuda] [--seconds N]``
(GPU: ``--profile paper --device cuda``; without CUDA it stops at once with one line, exit 2).

1. exports a random-weight model of the profile (or uses ``--model``);
2. bare engine: ``SegmentationEngine.predict`` on 640x480 frames in this process (labels only,
   as the node computes them when nobody subscribes to ~/features), with the node's
   settings (threads, spinning);
3. end to end: sim_camera process (640x480 rgb8) -> segmentation_node process -> this
   process (labels), after the engine measurement so they do not share the CPU. The node's
   resident memory is sampled every 0.5 s during the window (a leak shows as a slope).

The last printed line is a JSON object: ``hz``, ``latency_ms_p50``, ``latency_ms_p95``
(camera stamp -> label received here), ``engine_hz``, ``engine_ms_p50`` (bare engine),
``node_ms_p50`` (the node's per-frame work: decoding + engine + publishing),
``node_inference_ms_p50`` (the engine inside the node), ``overhead_pct`` (node_ms_p50 /
engine_ms_p50 - 1: what running as a node costs, CPU contention from the camera and DDS in
the same machine included), ``node_own_pct`` (node_ms_p50 / node_inference_ms_p50 - 1: the
node's own code), ``engine_cpu_ms`` (CPU time per bare prediction, all threads),
``node_cpu_ms_per_label`` (the node process's CPU time during the window per label published:
engine, receiving every camera frame, decoding, publishing, diagnostics), ``cpu_overhead_pct``
(their ratio - 1: the node's overhead in CPU time, which other jobs on a shared machine disturb
far less than wall time), ``dropped``, ``frames``, ``rss_mb_start``/``rss_mb_end``,
``rss_slope_kb_per_min`` (least squares over the last two thirds of the window: run
``--seconds 120`` or more to check for a leak), ``camera_hz`` (the camera's set rate),
``camera_sent_hz`` (frames the camera actually published, counted by their camera_info: a
subscription that pushes back on the camera lowers it), ``camera_delivered_hz`` (frames the
node's subscription received), ``profile``,
``device``, ``backend``, ``providers``, ``camera_qos`` (the node's camera reliability).
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np


def cuda_problem(backend, model_path):
    """Return why ``--device cuda`` cannot run here (one line), or None."""
    try:
        import onnxruntime as ort
        providers = ort.get_available_providers()
    except ImportError:
        providers = []
    try:
        import torch
        torch_cuda = torch.cuda.is_available()
    except ImportError:
        torch_cuda = False
    onnx = backend == 'onnxruntime' or (
        backend == 'auto' and (model_path is None or model_path.lower().endswith('.onnx')))
    if onnx and not any(p in providers for p in ('TensorrtExecutionProvider',
                                                 'CUDAExecutionProvider')):
        return (f'--device cuda needs onnxruntime-gpu (this onnxruntime offers {providers}); '
                f'torch.cuda.is_available() is {torch_cuda}'
                + ('' if not torch_cuda else ': or run --backend torch with a .pt --model'))
    if not onnx and not torch_cuda:
        return '--device cuda with the torch backend needs CUDA: torch.cuda.is_available() ' \
               'is False'
    return None


def bench_engine(model_path, backend, device, seconds, threads=0, allow_spinning=False):
    """
    Time the bare engine at 640x480 in this process.

    Returns
    -------
      (tuple): predictions per second, wall p50 ms, CPU ms per prediction (all threads of this
      process: the engine alone here), the engine.

    """
    from sam2real_ros.inference.engine import SegmentationEngine
    from sam2real_ros.inference.runtime import reuse_large_buffers
    from sam2real_ros.nodes.sim_camera import PatternSource
    reuse_large_buffers()  # as in the node, so the comparison is the node's own work
    engine = SegmentationEngine.load(model_path, backend=backend, device=device,
                                     threads=threads or None, allow_spinning=allow_spinning)
    source = PatternSource(640, 480)
    for i in range(5):  # warm-up (TensorRT builds or loads its engine on the first call)
        engine.predict(source.frame(i), want_features=False)
    times, cpu, t_end, i = [], 0.0, time.perf_counter() + seconds, 0
    while time.perf_counter() < t_end or len(times) < 5:
        frame = source.frame(i)
        t0, c0 = time.perf_counter(), time.process_time()
        engine.predict(frame, want_features=False)
        times.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        i += 1
    ms = np.array(times) * 1e3
    return 1e3 / ms.mean(), float(np.median(ms)), 1e3 * cpu / len(times), engine


def cpu_seconds(pid):
    """Return the CPU time (user + system, all threads) process ``pid`` used so far."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def rss_kb(pid):
    """Return the resident set size of process ``pid`` in kB (None when it is gone)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Sample a process's RSS every ``period_s`` in a thread, between start() and stop()."""

    def __init__(self, pid, period_s=0.5):
        self.pid, self.period_s, self.samples = pid, period_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            kb = rss_kb(self.pid)
            if kb is not None:
                self.samples.append((time.monotonic(), kb))
            self._stop.wait(self.period_s)

    def start(self):
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self):
        """
        Stop sampling; return (start MB, end MB, slope kB/min) or Nones without samples.

        The slope is fitted to the last two thirds of the samples (the first third still holds
        lazy allocations of the first frames); a leak shows as a slope that stays positive over
        long runs (``--seconds 120``), while allocator noise averages out.
        """
        self._stop.set()
        self._thread.join(5)
        if len(self.samples) < 4:
            return None, None, None
        t = np.array([s[0] for s in self.samples])
        kb = np.array([s[1] for s in self.samples], np.float64)
        tail = len(t) // 3
        slope = np.polyfit(t[tail:] - t[tail], kb[tail:], 1)[0] * 60.0
        return kb[0] / 1024, kb[-1] / 1024, slope


def rate(drops, key):
    """Return ``drops[key]`` per second of its window (None when the window is unknown)."""
    if not drops or not drops['window_s']:
        return None
    return round(drops[key] / drops['window_s'], 1)


def main(argv=None):
    """Run the benchmark; returns an exit code (2: cannot run here)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument('--profile', default='fast', help='model profile (fast or paper)')
    ap.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'),
                    help='engine device (auto)')
    ap.add_argument('--backend', default='auto', choices=('auto', 'onnxruntime', 'torch'),
                    help='engine backend (auto: by the model file)')
    ap.add_argument('--allow-spinning', action='store_true',
                    help='let onnxruntime threads busy-wait (default: off, as in the node)')
    ap.add_argument('--threads', type=int, default=0, help='CPU threads (0: library default)')
    ap.add_argument('--seconds', type=float, default=10.0, help='end-to-end window (10)')
    ap.add_argument('--camera-hz', type=float, default=None,
                    help='camera rate (default 30; 120 with --device cuda)')
    ap.add_argument('--camera-qos', default=None, choices=('auto', 'best_effort', 'reliable'),
                    help="the node's qos_reliability (default: the node's default)")
    ap.add_argument('--model', default=None, help='use this model instead of exporting one')
    ap.add_argument('--workdir', default=None, help='model and logs (default: a temp dir)')
    args = ap.parse_args(argv)
    camera_hz = args.camera_hz or (120.0 if args.device == 'cuda' else 30.0)
    if args.device == 'cuda':
        problem = cuda_problem(args.backend, args.model)
        if problem:
            print(f'benchmarks.segmentation_node: {problem}', file=sys.stderr)
            return 2
    from sam2real_ros.demo.graph import export_random_model, NodeGraph
    from sam2real_ros.inference.engine import ModelLoadError

    workdir = args.workdir or tempfile.mkdtemp(prefix='sam2real_bench_')
    os.makedirs(workdir, exist_ok=True)
    model = args.model or export_random_model(args.profile,
                                              os.path.join(workdir, f'{args.profile}.onnx'))
    try:
        engine_hz, engine_ms, engine_cpu_ms, engine = bench_engine(
            model, args.backend, args.device, max(3.0, args.seconds / 2), args.threads,
            args.allow_spinning)
    except ModelLoadError as exc:
        print(f'benchmarks.segmentation_node: {exc}', file=sys.stderr)
        return 2
    providers = ','.join(engine.providers)
    print(f'bare engine: {engine_hz:.1f} Hz, p50 {engine_ms:.1f} ms ({engine.backend}: '
          f'{providers}{", fp16" if engine.fp16 else ""}, labels in graph: '
          f'{engine.labels_in_graph})', flush=True)
    del engine
    params = {'backend': args.backend, 'device': args.device, 'threads': args.threads,
              'allow_spinning': args.allow_spinning}
    if args.camera_qos:
        params['qos_reliability'] = args.camera_qos
    try:
        with NodeGraph(model, workdir, rate_hz=camera_hz, node_params=params) as graph:
            graph.wait_for_labels()
            time.sleep(2.0)  # settle (first frames include lazy initialisation)
            pid = graph.procs.procs['node'].pid
            rss = RssSampler(pid).start()
            cpu0, out0 = cpu_seconds(pid), int(graph.listener.snapshot()[1].get('frames_out', 0))
            res = graph.measure(args.seconds)
            cpu1, out1 = cpu_seconds(pid), int(res['node'].get('frames_out', 0))
            rss_start, rss_end, rss_slope = rss.stop()
    except RuntimeError as exc:
        print(f'benchmark failed: {exc}', file=sys.stderr)
        return 1
    node, drops = res['node'], res['drops']
    node_ms = float(node.get('node_ms_p50', 'nan'))
    inference_ms = float(node.get('inference_ms_p50', 'nan'))
    node_cpu_ms = 1e3 * (cpu1 - cpu0) / (out1 - out0) if out1 > out0 else float('nan')
    out = {
        'hz': round(res['hz'], 2),
        'latency_ms_p50': round(res['latency_ms_p50'], 1),
        'latency_ms_p95': round(res['latency_ms_p95'], 1),
        'engine_hz': round(engine_hz, 2),
        'engine_ms_p50': round(engine_ms, 2),
        'node_ms_p50': node_ms,
        'node_inference_ms_p50': inference_ms,
        'overhead_pct': round(100.0 * (node_ms / engine_ms - 1.0), 1),
        'node_own_pct': round(100.0 * (node_ms / inference_ms - 1.0), 1),
        'engine_cpu_ms': round(engine_cpu_ms, 2),
        'node_cpu_ms_per_label': round(node_cpu_ms, 2),
        'cpu_overhead_pct': round(100.0 * (node_cpu_ms / engine_cpu_ms - 1.0), 1),
        'dropped': res['dropped'],
        'frames': res['frames'],
        'rss_mb_start': None if rss_start is None else round(rss_start, 1),
        'rss_mb_end': None if rss_end is None else round(rss_end, 1),
        'rss_slope_kb_per_min': None if rss_slope is None else round(rss_slope, 1),
        'camera_hz': camera_hz,
        'camera_sent_hz': rate(drops, 'camera_frames'),
        'camera_delivered_hz': rate(drops, 'delivered'),
        'profile': args.profile,
        'device': args.device,
        'threads': args.threads,
        'backend': node.get('backend', ''),
        'providers': node.get('providers', providers),
        'camera_qos': node.get('qos_reliability', ''),
    }
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
