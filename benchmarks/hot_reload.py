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
Hot reload without a gap: dropped frames and the swap frame's latency when the model changes.

Usage: ``python -m benchmarks.hot_reload [--profile fast] [--rate-hz 0] [--swaps 3]
[--interval-s 4] [--threads 2] [--allow-spinning]``.

The engines are opened as the segmentation node opens them: onnxruntime threads do not
busy-wait (the node's ``allow_spinning`` parameter, off by default; ``--allow-spinning`` turns
it on).

Two random-weight models of ``--profile`` (different class counts, so every frame says which
model made it) are exported to ONNX. A camera thread puts 640x480 frames into the segmentation
node's one-slot buffer (``inference.runtime.LatestFrame``) at ``--rate-hz`` (0, the default:
half the rate the worker sustains on this machine, measured first, so that a dropped frame is
the swap's doing and not an overloaded worker's); a worker thread
does what the node's worker does per frame (take the newest frame, ``HotModel.take()``,
``SegmentationEngine.predict``, labels only). Every ``--interval-s`` the model file is replaced
atomically by the other model, as the adaptation manager deploys (``os.replace``). Per swap:
the frames dropped from the replace until the frame after the swap frame, and the latency
(camera put -> labels) of the swap frame against the run's median. Runs three times: as
``HotModel`` does it (``warmup``: the new engine warmed up in the loading thread, which loads at
nice +10, ``load_nice``), without the lower priority (``no_lower_priority``) and without either
(``no_warmup``, the first behaviour). Goal (#19): <= 1 dropped frame per swap, swap frame <= 2x p50
(``goal_met``; null when more than 2 % of the frames were dropped away from the swaps -- the
worker was saturated, as on a machine that got busier after the rate was set -- or a load
outlasted ``--interval-s``). The last line is
JSON.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np


def export_models(folder, profile):
    """Export two random-weight models (3 and 5 classes) of ``profile``; return their paths."""
    import torch

    from sam2real_ros.inference import export
    from sam2real_ros.modeling import model as mdl
    paths = []
    for n in (3, 5):
        cfg = mdl.load_profile(profile, pretrained=False, num_classes=n)
        torch.manual_seed(n)
        path = os.path.join(folder, f'model{n}.onnx')
        export.export_onnx(mdl.build_model(cfg), cfg, [f'c{i}' for i in range(n)], path,
                           verify=False)
        paths.append(path)
    return paths


def replace(src, dst):
    """Copy ``src`` beside ``dst`` and rename it over ``dst`` (an atomic deploy)."""
    tmp = dst + '.tmp'
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def run(models, path, rate_hz, swaps, interval_s, threads, warmup, load_nice, spin=False):
    """One run: returns per-swap figures and the run's latency median (ms)."""
    from sam2real_ros.inference.engine import SegmentationEngine
    from sam2real_ros.inference.runtime import HotModel, LatestFrame
    replace(models[0], path)

    def load(p):
        return SegmentationEngine.load(p, threads=threads, allow_spinning=spin)

    hot = HotModel(path, load, poll_s=0.1, settle_s=0.05, warmup=warmup, load_nice=load_nice)
    hot.load_now()
    slot, stop = LatestFrame(), threading.Event()
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    served = []  # (seq, put time, done time, classes, swapped)

    def camera():
        seq, t_next = 0, time.perf_counter()
        while not stop.is_set():
            slot.put((seq, time.perf_counter()))
            seq += 1
            t_next += 1.0 / rate_hz
            time.sleep(max(0.0, t_next - time.perf_counter()))

    def worker():
        swapped = False  # a swap on a take without a frame belongs to the next frame
        while not stop.is_set():
            item = slot.take(timeout=0.1)
            engine, new = hot.take()
            swapped |= new
            if item is None:
                continue
            engine.predict(rgb, want_features=False)
            served.append((item[0], item[1], time.perf_counter(), engine.num_classes, swapped))
            swapped = False

    threads_ = [threading.Thread(target=camera), threading.Thread(target=worker)]
    for t in threads_:
        t.start()
    hot.start()
    replaced_at = []
    try:
        time.sleep(interval_s)
        for i in range(swaps):
            replaced_at.append(time.perf_counter())
            replace(models[(i + 1) % 2], path)
            time.sleep(interval_s)
    finally:
        stop.set()
        for t in threads_:
            t.join()
        hot.stop()
    lat = np.array([(done - put) * 1000.0 for _, put, done, _, _ in served])
    p50 = float(np.median(lat))
    out = []
    swap_frames = [i for i, s in enumerate(served) if s[4]]
    for k, t_rep in enumerate(replaced_at):
        t_next = replaced_at[k + 1] if k + 1 < len(replaced_at) else float('inf')
        classes = (3, 5)[(k + 1) % 2]  # the model this replace deployed
        # its swap frame: the first frame of that model after the replace; a load that
        # outlasts --interval-s runs into the next swap ('late': this swap is not measured)
        idx = next((i for i in swap_frames if served[i][2] >= t_rep
                    and served[i][3] == classes), None)
        if idx is None or served[idx][2] >= t_next:
            out.append({'swapped': False, 'late': idx is not None})
            continue
        first = next(i for i, s in enumerate(served) if s[2] >= t_rep)
        last = min(idx + 1, len(served) - 1)
        seqs = [s[0] for s in served[max(first - 1, 0):last + 1]]
        dropped = int(sum(b - a - 1 for a, b in zip(seqs, seqs[1:])))
        out.append({'swapped': True, 'dropped_frames': dropped,
                    'swap_frame_ms': round(float(lat[idx]), 1),
                    'swap_over_p50': round(float(lat[idx]) / p50, 2),
                    'load_s': round(served[idx][2] - t_rep, 2)})
    seqs = [s[0] for s in served]
    gaps = int(sum(b - a - 1 for a, b in zip(seqs, seqs[1:])))
    in_swaps = sum(s.get('dropped_frames', 0) for s in out)
    return {'p50_ms': round(p50, 1), 'frames': len(served), 'swaps': out,
            'dropped_outside_swaps': gaps - in_swaps}


def main(argv=None):
    """Run the benchmark; returns 0."""
    p = argparse.ArgumentParser(prog='python -m benchmarks.hot_reload',
                                description=__doc__.strip().splitlines()[0])
    p.add_argument('--profile', default='fast')
    p.add_argument('--rate-hz', type=float, default=0.0)
    p.add_argument('--swaps', type=int, default=3)
    p.add_argument('--interval-s', type=float, default=4.0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--allow-spinning', action='store_true',
                   help="onnxruntime threads busy-wait (the node's allow_spinning; off as there)")
    args = p.parse_args(argv)
    result = {'profile': args.profile, 'rate_hz': args.rate_hz, 'threads': args.threads,
              'allow_spinning': args.allow_spinning,
              'cpus': os.cpu_count(), 'load_avg_1min': round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmp:
        models = export_models(tmp, args.profile)
        if args.rate_hz <= 0:
            from benchmarks.model_speed import time_predict
            from sam2real_ros.inference.engine import SegmentationEngine
            engine = SegmentationEngine.load(models[0], threads=args.threads,
                                             allow_spinning=args.allow_spinning)
            rgb = np.zeros((480, 640, 3), np.uint8)
            median_ms = time_predict(engine, rgb, 10, False)[0]
            args.rate_hz = round(500.0 / median_ms, 2)
            result.update(rate_hz=args.rate_hz, predict_ms_median=round(median_ms, 1))
            del engine
        modes = (('warmup', True, 10), ('no_lower_priority', True, 0),
                 ('no_warmup', False, 0))
        for mode, warm, nice in modes:
            r = run(models, os.path.join(tmp, 'model.onnx'), args.rate_hz, args.swaps,
                    args.interval_s, args.threads, warm, nice, args.allow_spinning)
            ok = [s for s in r['swaps'] if s.get('swapped')]
            r['max_dropped_per_swap'] = max((s['dropped_frames'] for s in ok), default=None)
            r['max_swap_over_p50'] = max((s['swap_over_p50'] for s in ok), default=None)
            # frames dropped away from the swaps: the worker could not keep up with the camera
            # (the machine got busier than when the rate was set), so drops at a swap say
            # nothing about the swap; the goal is then not measured (null), not failed
            r['worker_saturated'] = r['dropped_outside_swaps'] > 0.02 * r['frames'] or \
                any(s.get('late') for s in r['swaps'])
            r['goal_met'] = None if r['worker_saturated'] else (
                bool(ok) and len(ok) == len(r['swaps']) and
                r['max_dropped_per_swap'] <= 1 and r['max_swap_over_p50'] <= 2.0)
            print(f'{mode}: p50 {r["p50_ms"]} ms, per swap: dropped '
                  f'{[s.get("dropped_frames") for s in r["swaps"]]}, swap frame / p50 '
                  f'{[s.get("swap_over_p50") for s in r["swaps"]]}'
                  + (f'; worker saturated ({r["dropped_outside_swaps"]} of {r["frames"]} '
                     f'frames dropped away from the swaps, or a load longer than '
                     f'--interval-s): goal not measured, rerun on an idle machine, with a '
                     f'lower --rate-hz or a longer --interval-s' if r['worker_saturated']
                     else ''),
                  file=sys.stderr)
            result[mode] = r
    result['load_avg_1min_end'] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
