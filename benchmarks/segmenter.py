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
Segment quality of the fallback segmenter (and SAM, given a checkpoint) on real RGB-D frames.

    tools/venv-run python -m benchmarks.segmenter [--data ../shared/data/ycbv_bop_sample]
        [--checkpoint sam_vit_h_4b8939.pth --model-type vit_h] [--frames 20] [--threads 2]
    tools/venv-run python -m benchmarks.segmenter --data ../shared/data/ycbv_bop_train --loso
        [--search 40 --seed 0 --tune-every 4 --max-segments 150]

Frames come from a BOP folder (``<data>/<split>/<scene>/{rgb,depth,mask_visib}``, depth scaled
to millimetres with ``scene_camera.json``'s ``depth_scale``); every visible object mask
(``mask_visib``) is one ground-truth object. For each object the *best IoU* is the largest IoU
of any segment of its frame with the object's mask (how well the segment set can represent that
object, as for SAM's automatic mode). Reported per segmenter and input (``rgb+depth`` and
``rgb`` only): segments per frame (mean, min, max), seconds per frame (median, wall time of the
segmenter call, one process, ``--threads`` OpenCV/torch threads; and the process CPU time, which
a loaded machine inflates less), mean best IoU per object and
the fraction of objects with best IoU > 0.5 and > 0.75. ``--scale`` runs the frames resized
(e.g. 0.2 for 96x128) to check that the parameters scale with the image; ``--procedural N``
uses N frames of the procedural renderer (with its depth) instead, a check on data the
settings were not chosen on.

``--loso``: leave-one-scene-out tuning of the fallback (RGB + depth). ``--search N`` settings
(the defaults first, then N-1 drawn from :data:`SEARCH_SPACE` with ``--seed``) are scored on
every ``--tune-every``-th frame of each scene; for each scene, the setting with the best mean
best IoU over the *other* scenes (within ``--max-segments`` segments per frame there) is run on
all frames of the held-out scene, which reports the figures. The held-out scene never chooses
its own settings. The last printed line is JSON.
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, '..', '..', 'shared', 'data', 'ycbv_bop_sample')
# --loso: fallback settings the search draws from: (low, high, log scale, list length range)
SEARCH_SPACE = {
    'height_thresholds': (0.004, 0.03, True, (1, 2)),
    'jump_thresholds': (0.006, 0.1, True, (1, 4)),
    'hysteresis': (0.2, 0.8, False, None),
    'grow_fraction': (0.002, 0.02, True, None),
    'part_min_fraction': (0.03, 0.3, True, None),
    'sigma': (0.4, 1.5, False, None),
    'scales': (30.0, 10000.0, True, (3, 5)),
    'dedupe_iou': (0.7, 0.95, False, None),
    'min_area_fraction': (0.0005, 0.002, True, None),
    'plane_tolerance': (0.005, 0.02, True, None),
}


def load_bop_frames(root, split='train_real', limit=None, scale=1.0, scenes=None):
    """
    Read BOP frames with depth and visible-object masks (of the ``scenes`` folders, or all).

    Read by the package's BOP loader (``data.bop.BopDataset``: frames, ``mask_visib``) and depth
    reader (``io_utils.read_depth``: millimetres by the scene's ``depth_scale``).

    Returns
    -------
      list[dict]: ``key``, ``rgb`` HxWx3 uint8, ``depth`` HxW uint16 mm (or None), ``objects``
      KxHxW bool visible masks.

    """
    import cv2

    from sam2real_ros.common.io_utils import read_depth, read_rgb
    from sam2real_ros.data.bop import BopDataset
    ds = BopDataset(root, split, scenes=scenes, unknown_obj='background')
    frames = []
    for index in range(len(ds) if not limit else min(limit, len(ds))):
        path = ds.rgb_path(index)
        rgb = read_rgb(path)
        depth = read_depth(path, rgb.shape)
        objects = [m for _, m in ds.visible_masks(index, rgb.shape)]
        objects = np.stack(objects) if objects else np.zeros((0,) + rgb.shape[:2], bool)
        if scale != 1.0:
            h, w = (max(1, round(v * scale)) for v in rgb.shape[:2])
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            if depth is not None:
                depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)
            objects = np.stack([cv2.resize(o.astype(np.uint8), (w, h),
                                           interpolation=cv2.INTER_NEAREST) > 0
                                for o in objects]) if len(objects) else \
                np.zeros((0, h, w), bool)
        frames.append({'key': os.path.relpath(path, root), 'rgb': rgb,
                       'depth': depth, 'objects': objects})
    return frames


def procedural_frames(n, size=(480, 640), appearance='real', seed=5, min_fraction=0.01):
    """
    Frames of the procedural renderer with its registered depth; objects = visible instances.

    Instances whose visible part covers less than ``min_fraction`` of the image are left out
    (mostly hidden objects no segmenter is expected to find).
    """
    from sam2real_ros.data.procedural import TabletopRenderer
    renderer = TabletopRenderer(appearance, tuple(size))
    frames = []
    for i in range(n):
        scene = renderer.render([seed, 9, i])
        inst = scene['instances']
        objects = [inst == k for k in range(1, int(inst.max()) + 1)
                   if (inst == k).sum() >= min_fraction * inst.size]
        frames.append({'key': f'procedural/{appearance}/{seed}-{i}', 'rgb': scene['rgb'],
                       'depth': scene.get('depth'),
                       'objects': np.stack(objects) if objects else
                       np.zeros((0,) + inst.shape, bool)})
    return frames


def best_ious(segments, objects):
    """Return, for each object mask (KxHxW bool), the best IoU over ``segments`` (NxHxW)."""
    out = np.zeros(len(objects))
    if len(segments) == 0:
        return out
    flat = segments.reshape(len(segments), -1)
    area = flat.sum(1, dtype=np.int64)
    for k, obj in enumerate(objects):
        o = obj.reshape(-1)
        inter = flat[:, o].sum(1, dtype=np.int64)
        union = area + int(o.sum()) - inter
        out[k] = float((inter / np.maximum(union, 1)).max())
    return out


def run(segmenter, frames, use_depth, log=print, label=''):
    """Segment every frame; returns the summary dict of one segmenter/input combination."""
    counts, times, cpu, ious = [], [], [], []
    for f in frames:
        kw = {}
        if use_depth and f['depth'] is not None and getattr(segmenter, 'accepts_depth', False):
            kw['depth'] = f['depth']
        t0, c0 = time.perf_counter(), time.process_time()
        seg = segmenter(f['rgb'], **kw)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        masks = seg.masks if hasattr(seg, 'masks') else np.asarray(seg)
        counts.append(len(masks))
        b = best_ious(masks, f['objects'])
        ious.extend(b.tolist())
        log(f'{label:16s} {f["key"]}: {len(masks):4d} segments, {times[-1]:.3f} s '
            f'({cpu[-1]:.3f} s CPU), best IoU '
            + ' '.join(f'{v:.2f}' for v in b))
    ious = np.asarray(ious)
    return {
        'frames': len(frames), 'objects': int(len(ious)),
        'segments_per_frame': round(float(np.mean(counts)), 1),
        'segments_min': int(min(counts)), 'segments_max': int(max(counts)),
        's_per_frame': round(statistics.median(times), 3),
        's_per_frame_mean': round(float(np.mean(times)), 3),
        'cpu_s_per_frame': round(statistics.median(cpu), 3),
        'mean_best_iou': round(float(ious.mean()), 4) if len(ious) else None,
        'frac_iou_gt_0.5': round(float((ious > 0.5).mean()), 4) if len(ious) else None,
        'frac_iou_gt_0.75': round(float((ious > 0.75).mean()), 4) if len(ious) else None,
    }


def scene_of(frame):
    """Return the scene folder of a BOP frame's key (``<split>/<scene>/rgb/<file>``)."""
    return frame['key'].replace(os.sep, '/').split('/')[-3]


def draw_settings(rng, max_segments):
    """Draw one fallback setting from :data:`SEARCH_SPACE` (numbers rounded to 4 digits)."""
    def one(lo, hi, log):
        v = np.exp(rng.uniform(np.log(lo), np.log(hi))) if log else rng.uniform(lo, hi)
        return float(f'{v:.4g}')
    out = {'max_segments': max_segments}
    for name, (lo, hi, log, length) in SEARCH_SPACE.items():
        if length is None:
            out[name] = one(lo, hi, log)
        else:
            n = int(rng.integers(length[0], length[1] + 1))
            out[name] = sorted(one(lo, hi, log) for _ in range(n))
    return out


def leave_one_scene_out(frames, n_search, seed, tune_every, max_segments, log=print):
    """
    Tune the fallback on all scenes but one and report on that one, for every scene.

    Returns
    -------
      dict: ``scenes`` (per held-out scene: the :func:`run` summary on all its frames and the
      chosen ``settings``), ``mean`` (held-out figures averaged over the scenes) and
      ``search`` (per candidate: its settings and per-scene tuning figures).

    """
    from tqdm import tqdm

    from sam2real_ros.sam.fallback import FallbackSegmenter
    scenes = {}
    for f in frames:
        scenes.setdefault(scene_of(f), []).append(f)
    if len(scenes) < 2:
        raise SystemExit(f'--loso needs frames of 2 or more scenes, found {sorted(scenes)}')
    rng = np.random.default_rng(seed)
    candidates = [{'max_segments': max_segments}]
    candidates += [draw_settings(rng, max_segments) for _ in range(n_search - 1)]
    search = []
    for cand in tqdm(candidates, desc='search', unit='setting'):
        seg = FallbackSegmenter(**cand)
        scores = {sc: run(seg, fs[::tune_every], True, log=lambda *a: None)
                  for sc, fs in scenes.items()}
        search.append({'settings': cand, 'scores': scores})
        log(f'search {len(search) - 1}: ' + ', '.join(
            f'{sc} {r["mean_best_iou"]:.3f} ({r["segments_per_frame"]:.0f} seg)'
            for sc, r in scores.items()))
    out = {}
    for held, fs in scenes.items():
        def score(c):
            tune = [r for sc, r in c['scores'].items() if sc != held]
            within = all(r['segments_per_frame'] <= max_segments for r in tune)
            return (within, float(np.mean([r['mean_best_iou'] for r in tune])))
        best = max(search, key=score)
        seg = FallbackSegmenter(**best['settings'])
        run(seg, fs[:1], True, log=lambda *a: None)  # warm-up
        res = run(seg, fs, True, log=log, label=f'held-out {held}')
        res['settings'] = seg.settings
        res['tuned_on'] = sorted(sc for sc in scenes if sc != held)
        res['tuning_mean_best_iou'] = round(score(best)[1], 4)
        out[held] = res
    keys = ('segments_per_frame', 's_per_frame', 'cpu_s_per_frame', 'mean_best_iou',
            'frac_iou_gt_0.5', 'frac_iou_gt_0.75')
    mean = {k: round(float(np.mean([r[k] for r in out.values()])), 4) for k in keys}
    return {'scenes': out, 'mean': mean, 'search': copy.deepcopy(search)}


def print_loso(result, threads, goal_segments):
    """Print the leave-one-scene-out table (one row per held-out scene, then the mean)."""
    print(f'\nleave-one-scene-out, fallback rgb+depth, {threads} threads (segments capped at '
          f'{goal_segments})')
    print(f'{"held-out scene":16s} {"tuned on":16s} {"seg/frame":>10s} {"s/frame":>8s} '
          f'{"CPU s":>6s} {"mean best IoU":>14s} {">0.5":>6s} {">0.75":>6s}')
    rows = [(sc, ' '.join(r['tuned_on']), r) for sc, r in result['scenes'].items()]
    rows.append(('mean', '', result['mean']))
    for sc, tuned, r in rows:
        print(f'{sc:16s} {tuned:16s} {r["segments_per_frame"]:10.1f} {r["s_per_frame"]:8.3f} '
              f'{r["cpu_s_per_frame"]:6.3f} {r["mean_best_iou"]:14.4f} '
              f'{r["frac_iou_gt_0.5"]:6.3f} {r["frac_iou_gt_0.75"]:6.3f}')


def build_parser():
    """Return the benchmark's argument parser."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1].strip())
    p.add_argument('--data', default=DEFAULT_DATA, help='BOP folder (default: the YCB-V sample)')
    p.add_argument('--split', default='train_real')
    p.add_argument('--frames', type=int, default=0, help='first N frames only (0: all)')
    p.add_argument('--scale', type=float, default=1.0, help='resize frames by this factor')
    p.add_argument('--procedural', type=int, default=0, metavar='N',
                   help="instead of --data: N procedural frames ('real' appearance, 480x640 "
                   "times --scale) with the renderer's depth; objects = visible instances "
                   'covering >= 1%% of the image')
    p.add_argument('--threads', type=int, default=2, help='OpenCV and torch threads')
    p.add_argument('--checkpoint', help='also run SAM with this checkpoint')
    p.add_argument('--model-type', default='vit_h')
    p.add_argument('--device', default='auto')
    p.add_argument('--no-rgb-only', action='store_true', help='skip the runs without depth')
    p.add_argument('--rgb-only', action='store_true', help='only the runs without depth')
    p.add_argument('--settings', default='{}',
                   help='fallback settings as JSON (for experiments; defaults otherwise)')
    p.add_argument('--quiet', action='store_true', help='no per-frame lines')
    p.add_argument('--loso', action='store_true',
                   help='leave-one-scene-out tuning of the fallback (see the module docstring)')
    p.add_argument('--search', type=int, default=24, help='--loso: settings tried (the '
                   'defaults included)')
    p.add_argument('--seed', type=int, default=0, help='--loso: seed of the settings drawn')
    p.add_argument('--tune-every', type=int, default=4,
                   help='--loso: score settings on every k-th frame of the tuning scenes')
    p.add_argument('--max-segments', type=int, default=150,
                   help='--loso: segments per frame allowed (the cap of every setting)')
    return p


def main(argv=None):
    """Run the benchmark; print per-frame lines, a table and the JSON summary (last line)."""
    args = build_parser().parse_args(argv)
    import cv2
    import torch
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)

    from sam2real_ros.sam import segmenters
    if args.procedural:
        frames = procedural_frames(args.procedural, (round(480 * args.scale),
                                                     round(640 * args.scale)))
    else:
        frames = load_bop_frames(args.data, args.split, args.frames, args.scale)
    if not frames:
        print(f'no BOP frames with scene_gt.json under {os.path.join(args.data, args.split)}',
              file=sys.stderr)
        return 2
    log = (lambda *a: None) if args.quiet else print
    if args.loso:
        res = leave_one_scene_out(frames, args.search, args.seed, args.tune_every,
                                  args.max_segments, log)
        print_loso(res, args.threads, args.max_segments)
        print(json.dumps({'data': os.path.abspath(args.data), 'split': args.split,
                          'threads': args.threads, 'load_1min': round(os.getloadavg()[0], 2),
                          'n_search': args.search, 'seed': args.seed,
                          'tune_every': args.tune_every, **res}))
        return 0
    results = {}
    fallback = segmenters.make_segmenter('fallback',
                                         fallback_settings=json.loads(args.settings))
    runs = [] if args.rgb_only else [('fallback', fallback, True)]
    if not args.no_rgb_only:
        runs.append(('fallback', fallback, False))
    if args.checkpoint:
        sam = segmenters.make_segmenter('sam', segmenters.SamOptions(
            model_type=args.model_type, checkpoint=args.checkpoint, device=args.device))
        runs.append(('sam', sam, False))
    for name, seg, use_depth in runs:
        has_depth = use_depth and getattr(seg, 'accepts_depth', False)
        label = f'{name}/{"rgb+depth" if has_depth else "rgb"}'
        if label in results:
            continue
        run(seg, frames[:1], use_depth, log=lambda *a: None)  # warm-up (imports, caches)
        results[label] = run(seg, frames, use_depth, log=log, label=label)
        results[label]['segmenter'] = getattr(seg, 'name', name)
    h, w = frames[0]['rgb'].shape[:2]
    print(f'\n{len(frames)} frames {w}x{h}, {args.threads} threads')
    print(f'{"run":20s} {"seg/frame":>10s} {"s/frame":>8s} {"CPU s":>6s} {"mean best IoU":>14s} '
          f'{">0.5":>6s} {">0.75":>6s}')
    for label, r in results.items():
        print(f'{label:20s} {r["segments_per_frame"]:10.1f} {r["s_per_frame"]:8.3f} '
              f'{r["cpu_s_per_frame"]:6.3f} '
              f'{r["mean_best_iou"]:14.4f} {r["frac_iou_gt_0.5"]:6.3f} '
              f'{r["frac_iou_gt_0.75"]:6.3f}')
    data = f'procedural:{args.procedural}' if args.procedural else os.path.abspath(args.data)
    print(json.dumps({'data': data, 'size': [h, w],
                      'threads': args.threads, 'load_1min': round(os.getloadavg()[0], 2),
                      'settings': getattr(fallback, 'settings', {}), 'results': results}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
