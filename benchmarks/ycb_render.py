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
Render speed of the YCB scene generator (data/ycb_scenes.py) at 640x480, physics included.

    tools/venv-run python -m benchmarks.ycb_render [--frames 40] [--workers 2] [--size 480 640]
        [--models ../shared/data/ycb_models]

Two measurements: (1) one process loads every mesh once (``preload_s``), renders ``--stages``
scenes and reports the median wall time of each stage (drop + physics until rest,
TinyRenderer, table/background/camera model) and the process CPU time per frame, which a
loaded machine inflates less than the wall time; (2) a ``torch.utils.data.DataLoader`` with
``--workers`` worker processes renders ``--frames`` scenes of the ``ycb_scenes`` dataset type as
training does (one PyBullet client per worker), and the throughput is frames / wall second,
counted from the first delivered frame of every worker (the first scenes of a process load the
meshes: reported apart as ``warmup_s``). The load average before and after is printed: on a
shared machine the figure is a lower bound. The last printed line is JSON.
"""
import argparse
import json
import os
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODELS = os.path.join(HERE, '..', '..', 'shared', 'data', 'ycb_models')


def stage_times(models, size, frames):
    """Render ``frames`` scenes in this process; median stage times and CPU time per frame."""
    from sam2real_ros.data.ycb_scenes import YcbSceneConfig, YcbSceneRenderer

    r = YcbSceneRenderer(YcbSceneConfig(models=models, height=size[0], width=size[1]))
    preload = r.preload()  # parse every mesh once, as a long-running worker has
    stages, cpu0 = [], time.process_time()
    for seed in range(frames):
        r.render(seed)
        stages.append(r.last_timings)
    cpu = (time.process_time() - cpu0) / frames
    r.close()
    med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    med['total_s'] = statistics.median(sum(s.values()) for s in stages)
    return {'preload_s': preload, 'median': med, 'cpu_s_per_frame': cpu}


def loader_throughput(models, size, frames, workers):
    """Frames per second of the ycb_scenes dataset in a DataLoader with ``workers`` workers."""
    import torch

    from sam2real_ros.data.datasets import build_labeled
    ds = build_labeled({'type': 'ycb_scenes', 'models': models, 'size': list(size),
                        'length': frames + workers, 'seed': 1})
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers,
                                         prefetch_factor=2 if workers else None)
    t0 = time.perf_counter()
    stamps = []
    for sample in loader:
        assert sample['labels'].shape == tuple(size)
        stamps.append(time.perf_counter())
    warm = stamps[max(workers, 1) - 1]
    timed = len(stamps) - max(workers, 1)
    return {'frames': len(stamps), 'warmup_s': warm - t0,
            'frames_per_s': timed / (stamps[-1] - warm)}


def main(argv=None):
    """Run both measurements; print them and a JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--models', default=DEFAULT_MODELS)
    ap.add_argument('--frames', type=int, default=40, help='scenes through the DataLoader')
    ap.add_argument('--stages', type=int, default=10, help='scenes for the stage times')
    ap.add_argument('--workers', type=int, default=2, help='DataLoader worker processes')
    ap.add_argument('--size', type=int, nargs=2, default=[480, 640])
    args = ap.parse_args(argv)
    import cv2

    load0 = os.getloadavg()
    res = {'size': args.size, 'workers': args.workers, 'cpus': os.cpu_count(),
           'cv2_threads': cv2.getNumThreads(), 'load_before': [round(v, 2) for v in load0]}
    res['one_process'] = stage_times(args.models, args.size, args.stages)
    print(f"one process: {json.dumps(res['one_process'])}", flush=True)
    res['loader'] = loader_throughput(args.models, args.size, args.frames, args.workers)
    res['load_after'] = [round(v, 2) for v in os.getloadavg()]
    print(f"{args.workers} DataLoader workers: {res['loader']['frames_per_s']:.2f} frames/s "
          f'at {args.size[1]}x{args.size[0]} incl. physics (load average before '
          f"{res['load_before'][0]:.2f}, after {res['load_after'][0]:.2f}, {res['cpus']} CPUs)")
    print(json.dumps(res))


if __name__ == '__main__':
    main()
