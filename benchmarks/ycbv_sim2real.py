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
The paper's YCB-Video experiment (Table I) at small scale, evaluated on REAL camera frames.

Synthetic (labeled) frames of the 21 YCB-Video objects come from the PyBullet scene generator
(``sam2real_ros.data.ycb_scenes``), rendered once into a BOP-layout cache and reused by every
run (``--synthetic-root`` takes any BOP folder instead, e.g. BlenderProc ``train_pbr``). The
unlabeled real frames are scenes of a real BOP folder (default: YCB-Video training scenes
000000 and 000001 of ``shared/data/ycbv_bop_train``), copied into an image folder with their
depth in millimetres and segmented once by ``sam2real segment``'s worker code (the depth-aware
fallback here, SAM where its checkpoint exists). Evaluation: the mIoU (Eq. 8) of the EMA model,
averaged over the last k epochs, on labeled real frames never trained on (default: scene
000002; ``--eval-root DIR --eval-split NAME`` evaluates on any BOP folder, e.g. held-out
YCB-Video test scenes). Variants synthetic_only, full, pseudolabel, real_labels (upper bound)
over >= 3 seeds, with paired differences to synthetic-only of the same seed; "background
everywhere" is scored on the same frames for reference.

    python -m benchmarks.ycbv_sim2real                  # CPU default (budget: 60 min, 2 cores)
    python -m benchmarks.ycbv_sim2real --quick          # CPU, <= 10 min
    python -m benchmarks.ycbv_sim2real --profile gpu    # bigger model, 480x640, longer
    python -m benchmarks.ycbv_sim2real --eval-root /data/bop/ycbv --eval-split test \
        --eval-scenes 000048 000049

Everything is driven by ``training/configs/sim2real_ycbv.yaml`` (the format of
``benchmarks/sim2real.py``'s configs plus a ``ycbv`` data section); runs, report and
reproducibility rules are that benchmark's (docs/sim2real.md). Writes ``<out>/results.md``,
``results.csv``, ``summary.csv``, ``curves.png``; the last printed line is JSON.
"""
import argparse
import copy
import functools
import glob
import json
import os
import sys
import time

from benchmarks import sim2real, sim2real_pool, sim2real_report
import numpy as np
from sam2real_ros.common.io_utils import atomic_write_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_CONFIG = os.path.join(REPO, 'training', 'configs', 'sim2real_ycbv.yaml')
YCBV_KEYS = ('real', 'eval', 'synthetic')
SIZE_KEYS = ('seeds', 'overrides', 'synthetic_frames', 'synthetic_size', 'real_frames')


def shared_data():
    """``$SAM2REAL_SHARED_DATA`` or ``shared/data`` beside the checkout (as the tests look)."""
    env = os.environ.get('SAM2REAL_SHARED_DATA')
    if env:
        return env
    for up in (REPO, os.path.dirname(REPO), os.path.dirname(os.path.dirname(REPO))):
        cand = os.path.join(up, 'shared', 'data')
        if os.path.isdir(cand):
            return cand
    return os.path.join(os.path.dirname(REPO), 'shared', 'data')


def build_parser():
    """Argument parser of the benchmark."""
    p = argparse.ArgumentParser(
        description="The paper's YCB-Video experiment on real frames: synthetic-only, SAM "
        'regularization (full), pseudolabels and real labels, mIoU on labeled real frames. '
        'docs/sim2real.md')
    p.add_argument('--config', default=os.path.relpath(DEFAULT_CONFIG),
                   help='benchmark config YAML (default: %(default)s)')
    p.add_argument('--profile', default=None,
                   help='size preset of the config: default (CPU, 60 min), quick (CPU, 10 '
                   'min), gpu, tiny (tests) (default: default)')
    p.add_argument('--quick', action='store_true', help='same as --profile quick')
    p.add_argument('--seeds', type=int, help="number of seeds (default: the preset's)")
    p.add_argument('--only', nargs='+', metavar='ID', help='run only these experiment ids')
    p.add_argument('--out', default=None, help='output folder (default: runs/ycbv_<profile>)')
    p.add_argument('--models', default=None,
                   help='YCB models folder for the generator (default: shared/data/ycb_models)')
    p.add_argument('--synthetic-frames', type=int, default=None,
                   help="synthetic frames rendered once and reused (default: the profile's); "
                   '0 = rendered on the fly, never repeated (DataLoader workers)')
    p.add_argument('--synthetic-root', default=None,
                   help='train on this BOP folder instead of rendering synthetic frames')
    p.add_argument('--synthetic-split', default='train_pbr',
                   help='split of --synthetic-root (default: %(default)s)')
    p.add_argument('--real-root', default=None,
                   help='BOP folder of the real frames (default: shared/data/ycbv_bop_train)')
    p.add_argument('--real-scenes', nargs='+', metavar='SCENE',
                   help="scenes used as unlabeled real frames (default: the config's)")
    p.add_argument('--eval-root', default=None,
                   help='BOP folder to evaluate on (default: the real root)')
    p.add_argument('--eval-split', default=None,
                   help="split of --eval-root (default: the config's, train_real)")
    p.add_argument('--eval-scenes', nargs='+', metavar='SCENE',
                   help="scenes to evaluate on (default: the config's with the real root, "
                   'else all)')
    p.add_argument('--segmenter', help="auto | fallback | sam (default: the config's)")
    p.add_argument('--threads', type=int, help="torch threads per run (default: the config's)")
    p.add_argument('--jobs', type=int, default=1,
                   help='runs trained at the same time, one process each (default: '
                   '%(default)s; 2 on 2 idle cores halves the wall time, same numbers)')
    p.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE', dest='sets',
                   help='training config overrides for every run, applied last')
    p.add_argument('--report-only', action='store_true',
                   help='train nothing: rewrite the report from the runs under --out')
    p.add_argument('--dry-run', action='store_true', help='print the planned runs and exit')
    p.add_argument('--no-progress', action='store_true', help='no tqdm bars')
    return p


def _scenes(values):
    return None if values is None else [str(v) for v in values]


def resolve_data(bench, args, preset):
    """
    Where the synthetic, unlabeled real and evaluation frames come from (paths and scenes).

    Raises BenchmarkError when a folder is missing or the real and evaluation frames overlap.
    """
    ycbv = bench.get('ycbv') or {}
    data = shared_data()
    real_cfg, eval_cfg = dict(ycbv.get('real') or {}), dict(ycbv.get('eval') or {})
    real_root = os.path.abspath(args.real_root or real_cfg.get('root')
                                or os.path.join(data, 'ycbv_bop_train'))
    real_split = str(real_cfg.get('split', 'train_real'))
    real_scenes = _scenes(args.real_scenes) or _scenes(real_cfg.get('scenes'))
    if args.eval_root:
        eval_root = os.path.abspath(args.eval_root)
        eval_split = args.eval_split or 'test'
        eval_scenes = _scenes(args.eval_scenes)
    else:
        eval_root = real_root
        eval_split = args.eval_split or str(eval_cfg.get('split', real_split))
        eval_scenes = _scenes(args.eval_scenes) or _scenes(eval_cfg.get('scenes'))
    for root, split, what in ((real_root, real_split, 'real'), (eval_root, eval_split, 'eval')):
        if not os.path.isdir(os.path.join(root, split)):
            raise sim2real.BenchmarkError(
                f'{what} frames: BOP split folder {os.path.join(root, split)} not found '
                f'(--{what}-root; shared data is looked up at {data}, or set '
                'SAM2REAL_SHARED_DATA)')
    if not real_scenes:
        real_scenes = sorted(d for d in os.listdir(os.path.join(real_root, real_split))
                             if os.path.isdir(os.path.join(real_root, real_split, d)))
    if (os.path.realpath(eval_root), eval_split) == (os.path.realpath(real_root), real_split):
        evaluated = eval_scenes or os.listdir(os.path.join(eval_root, eval_split))
        both = set(real_scenes) & set(evaluated)
        if both:
            raise sim2real.BenchmarkError(
                f'scene(s) {sorted(both)} would be trained on (unlabeled real frames) and '
                'evaluated on: choose other --real-scenes / --eval-scenes')
    synth = dict(ycbv.get('synthetic') or {})
    if preset.get('synthetic_frames') is not None:
        synth['frames'] = int(preset['synthetic_frames'])
    if preset.get('synthetic_size'):
        synth['size'] = [int(v) for v in preset['synthetic_size']]
    if args.synthetic_frames is not None:
        synth['frames'] = int(args.synthetic_frames)
    models = os.path.abspath(args.models or synth.pop('models', None)
                             or os.path.join(data, 'ycb_models'))
    synth.pop('models', None)
    return {'real_root': real_root, 'real_split': real_split, 'real_scenes': real_scenes,
            'real_frames': int(preset.get('real_frames') or real_cfg.get('frames') or 0),
            'eval_root': eval_root, 'eval_split': eval_split, 'eval_scenes': eval_scenes,
            'synthetic_root': (os.path.abspath(args.synthetic_root) if args.synthetic_root
                               else None),
            'synthetic_split': args.synthetic_split, 'synthetic': synth, 'models': models}


def synthetic_cache(out, spec):
    """Cache folder of a synthetic render spec (size, frames, seed and a digest of the rest)."""
    import hashlib
    size = 'x'.join(str(v) for v in spec.get('size', (480, 640)))
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    return os.path.join(out, 'synthetic',
                        f'{size}-{spec.get("frames")}-seed{spec.get("seed", 0)}-{digest}')


def prepare_synthetic(d, out, progress, log, jobs=1):
    """
    Return ``(root, split, classes file)`` of the labeled synthetic frames, rendering them once.

    With ``--synthetic-root`` that BOP folder is used as it is. With ``synthetic.frames`` 0 the
    frames are rendered on the fly (``(None, None, None)``). Otherwise the YCB scene generator
    (``sam2real render-ycb``'s ``write_bop_frames``) renders them into a BOP cache under
    ``<out>/synthetic/``, named after its settings; ``cache.json`` marks a finished cache (an
    interrupted one is rendered again).
    """
    if d['synthetic_root']:
        split_dir = os.path.join(d['synthetic_root'], d['synthetic_split'])
        if not os.path.isdir(split_dir):
            raise sim2real.BenchmarkError(f'--synthetic-root: {split_dir} not found')
        return d['synthetic_root'], d['synthetic_split'], None
    spec = dict(d['synthetic'])
    if not os.path.isdir(d['models']):
        raise sim2real.BenchmarkError(f'YCB models folder {d["models"]} not found (--models)')
    if not spec.get('frames'):
        return None, None, None  # rendered on the fly (dataset type ycb_scenes)
    bad = sorted(set(spec) - {'frames', 'size', 'seed', 'objects', 'scene'})
    if bad:
        raise sim2real.BenchmarkError(f'ycbv.synthetic: unknown key(s) {bad}; known: frames, '
                                      'size, seed, objects, scene')
    from sam2real_ros.common.io_utils import atomic_write_json
    from sam2real_ros.data.ycb_render import write_bop_frames
    from sam2real_ros.data.ycb_scenes import YcbSceneConfig, YcbSceneRenderer
    root, split = synthetic_cache(out, spec), 'train_synt'
    marker = os.path.join(root, 'cache.json')
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == json.loads(json.dumps(spec)):
                return root, split, os.path.join(root, 'classes.txt')
    renderer = YcbSceneRenderer(YcbSceneConfig.from_dict(
        d['models'], size=spec.get('size', (480, 640)),
        objects=tuple(spec.get('objects', (3, 8))), **(spec.get('scene') or {})))
    t0 = time.monotonic()
    try:
        write_bop_frames(renderer, root, int(spec['frames']), int(spec.get('seed', 0)),
                         split=split, progress=progress, jobs=jobs)
    finally:
        renderer.close()
    atomic_write_json(marker, spec)
    log(f'synthetic frames: {spec["frames"]} rendered into {root} '
        f'({time.monotonic() - t0:.0f} s)')
    return root, split, os.path.join(root, 'classes.txt')


def prepare_real(d, out, progress, log):
    """
    Copy the unlabeled real frames (rgb + depth in mm) into ``<out>/real/<scene>/`` once.

    ``real_frames`` > 0 keeps that many frames spread evenly over the scenes' frames (paper
    Fig. 8). Depth is converted with each frame's ``depth_scale`` to the millimetre PNGs
    ``io_utils.depth_path`` expects, so the depth-aware segmenter sees it.
    """
    from benchmarks.segmenter import load_bop_frames
    from tqdm import tqdm
    frames = load_bop_frames(d['real_root'], d['real_split'], scenes=d['real_scenes'])
    if not frames:
        raise sim2real.BenchmarkError(f'no real frames in scenes {d["real_scenes"]} of '
                                      f'{os.path.join(d["real_root"], d["real_split"])}')
    n = d['real_frames']
    if n and n < len(frames):
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, n).round().astype(int)]
    dest = os.path.join(out, 'real', '-'.join(d['real_scenes']) + f'-{len(frames)}')
    for f in tqdm(frames, desc='real frames', disable=not progress, unit='frame'):
        parts = f['key'].split(os.sep)
        scene, name = parts[-3], os.path.splitext(parts[-1])[0] + '.png'
        if f['depth'] is not None:  # before the image, as the recorder writes them
            sim2real_pool.keep_or_write(os.path.join(dest, scene, 'depth', name), f['depth'],
                                        dest)
        sim2real_pool.keep_or_write(os.path.join(dest, scene, name), f['rgb'], dest)
    log(f'unlabeled real frames: {len(frames)} of scenes {", ".join(d["real_scenes"])} -> '
        f'{dest}')
    return dest, len(frames)


def real_segment_quality(real_dir, d):
    """
    How well the stored segments of the unlabeled real frames match their ground truth.

    For each visible object of each segmented frame: the best IoU of any segment with its
    ``mask_visib`` (as ``benchmarks/segmenter.py``); ground truth is used for this diagnostic
    only. Returns a dict like ``sim2real_pool.segment_quality``, or None without segments.
    """
    from benchmarks.segmenter import load_bop_frames
    from sam2real_ros.sam.mask_store import MaskStore

    def key(f):
        parts = f['key'].split(os.sep)
        return f'{parts[-3]}/{os.path.splitext(parts[-1])[0]}.png'
    frames = load_bop_frames(d['real_root'], d['real_split'], scenes=d['real_scenes'])
    return sim2real_pool.store_segment_quality(
        MaskStore(os.path.join(real_dir, 'masks')),
        ((key(f), functools.partial(f.get, 'objects')) for f in frames))


def background_only(eval_spec, frames, include_background, ignore_index):
    """Eq. 8 mIoU of predicting background everywhere on the evaluation frames (a reference)."""
    from sam2real_ros.data.datasets import build_labeled
    from sam2real_ros.training.metrics import MeanIoU
    ds = build_labeled(eval_spec)
    acc = MeanIoU(include_background=include_background, ignore_index=ignore_index)
    n = min(len(ds), frames) if frames else len(ds)
    for i in range(n):
        gt = np.asarray(ds[i]['labels'])
        acc.update(np.zeros_like(gt), gt)
    return round(acc.compute(), 4), acc.frames


def main(argv=None):
    """Run the benchmark; returns an exit code (2 on user errors)."""
    from tqdm import tqdm
    args = build_parser().parse_args(argv)
    if args.quick and args.profile not in (None, 'quick'):
        print('ycbv_sim2real: error: --quick and --profile disagree', file=sys.stderr)
        return 2
    size = 'quick' if args.quick else (args.profile or 'default')
    out = os.path.abspath(args.out or os.path.join('runs', f'ycbv_{size}'))
    log = tqdm.write
    t0 = time.monotonic()
    progress = not args.no_progress
    try:
        bench = sim2real.load_bench_config(args.config, extra_keys=('ycbv',))
        bad = sorted(set(bench.get('ycbv') or {}) - set(YCBV_KEYS))
        if bad:
            raise sim2real.BenchmarkError(f'{args.config}: ycbv: unknown key(s) {bad}; known: '
                                          f'{list(YCBV_KEYS)}')
        preset = bench['sizes'].get(size)
        if preset is None:
            raise sim2real.BenchmarkError(f'unknown --profile {size!r}; the config has '
                                          f'{sorted(bench["sizes"])}')
        bad = sorted(set(preset) - set(SIZE_KEYS))
        if bad:
            raise sim2real.BenchmarkError(f'{args.config}: sizes.{size}: unknown key(s) {bad}')
        seeds = args.seeds or int(preset.get('seeds', 3))
        if seeds < 1:
            raise sim2real.BenchmarkError(f'--seeds must be >= 1, got {seeds}')
        threads = args.threads or int(bench.get('threads', 1))
        launcher = bench.get('launcher', 'inprocess')
        nproc = int(bench.get('nproc_per_node', 1))
        d = resolve_data(bench, args, preset)
        if args.dry_run or args.report_only:
            synth = (None, None, None)
            if d['synthetic_root'] or d['synthetic'].get('frames'):
                synth = (d['synthetic_root'] or synthetic_cache(out, d['synthetic']),
                         d['synthetic_split'] if d['synthetic_root'] else 'train_synt', None)
            real_root, real_n = os.path.join(out, 'real', '...'), None
        else:
            os.makedirs(out, exist_ok=True)
            if launcher == 'inprocess':
                import torch
                torch.set_num_threads(threads)
            synth = prepare_synthetic(d, out, progress, log, jobs=args.jobs)
            real_root, real_n = prepare_real(d, out, progress, log)
        bench = copy.deepcopy(bench)
        data = bench['train'].setdefault('data', {})
        if synth[0]:
            data['synthetic'] = dict(data.get('synthetic') or {}, type='bop', root=synth[0],
                                     split=synth[1])
        else:  # on the fly: a frame is never repeated (the paper's Stillleben set-up)
            spec = d['synthetic']
            data['synthetic'] = dict(
                data.get('synthetic') or {}, type='ycb_scenes', models=d['models'],
                size=list(spec.get('size', (480, 640))), seed=int(spec.get('seed', 0)),
                objects=list(spec.get('objects', (3, 8))), scene=spec.get('scene') or None,
                length=100000)
        classes = synth[2] or os.path.join(d['real_root'], 'classes.txt')
        data['real'] = dict(data.get('real') or {}, type='image_folder', root=real_root)
        data['real_labeled'] = dict(data.get('real_labeled') or {}, type='bop',
                                    root=d['real_root'], split=d['real_split'],
                                    scenes=d['real_scenes'], classes=classes)
        data['eval'] = dict(data.get('eval') or {}, type='bop', root=d['eval_root'],
                            split=d['eval_split'], classes=classes)
        if d['eval_scenes']:
            data['eval']['scenes'] = d['eval_scenes']
        runs = sim2real.plan_runs(bench, size, seeds, args.only, out, out, args.sets)
        if args.dry_run:
            for r in runs:
                print(f'{r["exp"]["id"]} seed {r["seed"]}: {r["cfg"].variant}, '
                      f'{r["cfg"].max_epochs} x {r["cfg"].frames_per_epoch} frames -> '
                      f'{r["dir"]}')
            print(json.dumps({'profile': size, 'data': d, 'runs': len(runs)}))
            return 0
        cfg0 = runs[0]['cfg']
        bg, eval_n = background_only(cfg0.data.eval, cfg0.data.eval_frames,
                                     cfg0.include_background, cfg0.loss.ignore_index)
        meta = {'profile': size, 'seeds': seeds, 'config': os.path.relpath(args.config),
                'background_only': bg, 'eval': f'{d["eval_root"]} {d["eval_split"]} '
                f'{" ".join(d["eval_scenes"] or ["(all scenes)"])}', 'eval_frames': eval_n,
                'real': f'{d["real_root"]} {d["real_split"]} {" ".join(d["real_scenes"])}',
                'synthetic': (f'{synth[0]} {synth[1]}' if synth[0] else
                              f'ycb_scenes on the fly, {d["models"]}')}
        if args.report_only:
            if not os.path.isdir(out):
                raise sim2real.BenchmarkError(f'--report-only: no benchmark output at {out}')
            real_dirs = sorted(glob.glob(os.path.join(out, 'real', '*', 'masks')))
            quality = real_segment_quality(os.path.dirname(real_dirs[-1]), d) \
                if real_dirs else None
            summary = sim2real_report.write_report(out, runs, dict(
                meta, report_only=True, real_segments=quality))
            print(json.dumps(summary))
            return 0
        seg = {}
        if any(r['cfg'].variant in ('full', 'pseudolabel') for r in runs):
            seg = sim2real_pool.segment_pool(real_root, args.segmenter
                                             or bench.get('segmenter', 'auto'),
                                             progress=progress, log=log)
        log(f'{len(runs)} runs, profile {size}, {threads} thread(s); background everywhere '
            f'scores {bg:.4f} on {eval_n} evaluation frames; out {out}')
        code = sim2real.source_digest()
        other = sim2real.train_runs(runs, launcher, nproc, threads, code, progress, log,
                                    jobs=args.jobs)
    except sim2real.BenchmarkError as e:
        print(f'ycbv_sim2real: error: {e}', file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:  # ConfigError / DatasetError / StalePoolError
        print(f'ycbv_sim2real: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('ycbv_sim2real: interrupted; run the same command again to continue',
              file=sys.stderr)
        return 130
    wall = time.monotonic() - t0
    summary = sim2real_report.write_report(out, runs, dict(
        meta, wall_s=round(wall, 1), segmenter=seg.get('segmenter'), real_frames=real_n,
        real_segments=real_segment_quality(real_root, d) if seg else None,
        source_digest=code, jobs=args.jobs, runs_by_other_code=other or None,
        **sim2real.numerics(threads)))
    atomic_write_bytes(os.path.join(out, 'summary.json'), json.dumps(summary).encode())
    log(f'wrote {os.path.join(out, "results.md")} ({wall:.0f} s)')
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
