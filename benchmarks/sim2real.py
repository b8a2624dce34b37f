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
Does SAM regularization help? A reproducible small-scale version of the paper's Tables I-III.

Trains ``synthetic_only``, ``full`` (SAM regularization, Eq. 6), ``pseudolabel`` and
``real_labels`` over several seeds, plus a wider domain gap and alpha / D sweeps, all described by
one benchmark config (``training/configs/sim2real_*.yaml``), and evaluates the mIoU (Eq. 8) of
each run on held-out target-domain frames. The unlabeled real frames are segmented once into a
mask store with the shared SAM worker code and reused by every run. Finished runs are reused and
interrupted ones resumed, so re-running the same command continues where it stopped.

    python -m benchmarks.sim2real                       # default size, 27 min (2 cores, load 3-11)
    python -m benchmarks.sim2real --quick --out /tmp/s  # smoke test, < 1 min
    python -m benchmarks.sim2real --config training/configs/sim2real_ycbv_gpu.yaml --size paper
    python -m benchmarks.sim2real --report-only --out runs/sim2real  # tables from finished runs

Writes ``<out>/results.md``, ``results.csv`` (one row per run), ``summary.csv`` (mean/std per
experiment), ``curves.png`` (mIoU per epoch per variant) and keeps each run's folder
(``<out>/runs/<size>/<experiment>/seed<k>``: checkpoint, metrics.csv, per-epoch images). The
last printed line is JSON: mean and std over seeds of each experiment's mIoU. docs/sim2real.md.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time

from benchmarks import sim2real_pool
from benchmarks import sim2real_report
from sam2real_ros.common.io_utils import atomic_write_json
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, '..', 'training', 'configs', 'sim2real_cpu.yaml')
BENCH_KEYS = ('train', 'pool', 'segmenter', 'segment_real', 'launcher', 'nproc_per_node',
              'threads', 'sizes', 'quick', 'experiments')
EXP_KEYS = ('id', 'label', 'variant', 'overrides', 'init_from', 'epochs_fraction', 'max_seeds',
            'baseline')


class BenchmarkError(ValueError):
    """A user error: bad benchmark config, option or stale run folder (message says which)."""


def build_parser():
    """Argument parser of the benchmark."""
    p = argparse.ArgumentParser(
        description='SAM regularization vs synthetic-only, pseudolabels and real labels on a '
        'controlled domain gap (paper Tables I-III at small scale). docs/sim2real.md')
    p.add_argument('--config', default=os.path.normpath(DEFAULT_CONFIG),
                   help='benchmark config YAML (default: %(default)s)')
    p.add_argument('--size', default='default', help='size preset from the config: tiny, '
                   'default, paper (default: %(default)s)')
    p.add_argument('--seeds', type=int, help="number of seeds (default: the preset's)")
    p.add_argument('--only', nargs='+', metavar='ID', help='run only these experiment ids '
                   '(or groups, e.g. narrow)')
    p.add_argument('--quick', action='store_true', help='smoke test: size tiny, 1 seed, '
                   "the config's quick experiments")
    p.add_argument('--out', default='runs/sim2real', help='output folder (default: %(default)s)')
    p.add_argument('--launcher', choices=('inprocess', 'python', 'torchrun'),
                   help="how runs are started (default: the config's)")
    p.add_argument('--nproc-per-node', type=int, help='torchrun processes per node')
    p.add_argument('--segmenter', help="auto | fallback | sam (default: the config's)")
    p.add_argument('--threads', type=int, help='torch threads per run (default: config)')
    p.add_argument('--set', nargs='+', default=[], metavar='KEY=VALUE', dest='sets',
                   help='training config overrides for every run, applied last '
                   '(e.g. model.pretrained=false data.num_workers=8)')
    p.add_argument('--report-only', action='store_true',
                   help='train nothing: rewrite the tables and plots from the run folders '
                        'already under --out and print the JSON summary')
    p.add_argument('--dry-run', action='store_true', help='check the config, print the '
                   'planned runs and exit (renders, segments and trains nothing)')
    p.add_argument('--no-progress', action='store_true', help='no tqdm bars')
    return p


def load_bench_config(path, extra_keys=()):
    """
    Read and check a benchmark config; returns the mapping.

    ``extra_keys``: further top-level keys a benchmark built on this one reads itself (e.g.
    ``benchmarks/ycbv_sim2real.py``'s data section).
    """
    if not os.path.isfile(path):
        raise BenchmarkError(f'benchmark config not found: {path}')
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise BenchmarkError(f'benchmark config {path}: invalid YAML: {e}') from None
    if not isinstance(cfg, dict):
        raise BenchmarkError(f'benchmark config {path}: expected a mapping')
    unknown = sorted(set(cfg) - set(BENCH_KEYS) - set(extra_keys))
    if unknown:
        raise BenchmarkError(f'benchmark config {path}: unknown key(s) {unknown}; known: '
                             f'{list(BENCH_KEYS) + list(extra_keys)}')
    for need in ('train', 'experiments', 'sizes'):
        if not cfg.get(need):
            raise BenchmarkError(f'benchmark config {path}: "{need}" is missing or empty')
    ids = set()
    for i, exp in enumerate(cfg['experiments']):
        if not isinstance(exp, dict) or 'id' not in exp or 'variant' not in exp:
            raise BenchmarkError(f'benchmark config {path}: experiments[{i}] needs "id" and '
                                 f'"variant", got {exp!r}')
        bad = sorted(set(exp) - set(EXP_KEYS))
        if bad:
            raise BenchmarkError(f'benchmark config {path}: experiment {exp["id"]}: unknown '
                                 f'key(s) {bad}; known: {list(EXP_KEYS)}')
        if exp.get('init_from') and exp['init_from'] not in ids:
            raise BenchmarkError(f'benchmark config {path}: experiment {exp["id"]}: init_from '
                                 f'{exp["init_from"]!r} must name an earlier experiment')
        ids.add(exp['id'])
    return cfg


def _substitute(obj, mapping):
    if isinstance(obj, str):
        for k, v in mapping.items():
            obj = obj.replace('{' + k + '}', v)
        return obj
    if isinstance(obj, list):
        return [_substitute(v, mapping) for v in obj]
    if isinstance(obj, dict):
        return {k: _substitute(v, mapping) for k, v in obj.items()}
    return obj


def plan_runs(bench, size, seeds, only, out, pool_root, sets=()):
    """List of run dicts (experiment, seed, resolved TrainConfig, run folder), in run order."""
    from sam2real_ros.training.config import (ConfigError, TrainConfig, apply_mapping,
                                              apply_override)
    preset = bench['sizes'].get(size)
    if preset is None:
        raise BenchmarkError(f'unknown --size {size!r}; the config has {sorted(bench["sizes"])}')
    exps = bench['experiments']
    if only:
        wanted = set(only)
        exps = [e for e in exps if e['id'] in wanted or e['id'].split('/')[0] in wanted]
        missing = wanted - {e['id'] for e in exps} - {e['id'].split('/')[0] for e in exps}
        if missing:
            raise BenchmarkError(f'--only: no experiment or group {sorted(missing)}; ids: '
                                 f'{[e["id"] for e in bench["experiments"]]}')
        for e in exps:
            if e.get('init_from') and e['init_from'] not in {x['id'] for x in exps}:
                raise BenchmarkError(f'--only: {e["id"]} needs {e["init_from"]} too')
    base = _substitute(bench['train'], {'pool': pool_root, 'out': out})
    runs = []
    for exp in exps:
        for seed in range(min(seeds, int(exp.get('max_seeds') or seeds))):
            cfg = TrainConfig()
            try:
                apply_mapping(cfg, copy.deepcopy(base), 'benchmark config train')
                texts = (list(preset.get('overrides') or []) + list(exp.get('overrides') or [])
                         + list(sets))
                for text in texts:
                    apply_override(cfg, _substitute(text, {'pool': pool_root, 'out': out}))
                cfg.variant, cfg.seed = exp['variant'], seed
                if exp.get('epochs_fraction'):
                    cfg.max_epochs = max(1, round(cfg.max_epochs * exp['epochs_fraction']))
                run_dir = os.path.join(out, 'runs', size, *exp['id'].split('/'), f'seed{seed}')
                if exp.get('init_from'):
                    cfg.init_checkpoint = os.path.join(out, 'runs', size,
                                                       *exp['init_from'].split('/'),
                                                       f'seed{seed}', 'checkpoint.pt')
                cfg.validate()
            except ConfigError as e:
                raise BenchmarkError(f'experiment {exp["id"]}: {e}') from None
            runs.append({'exp': exp, 'seed': seed, 'cfg': cfg, 'dir': run_dir})
    return runs


def source_digest():
    """
    Return a short digest of the package's Python sources (what decides the numbers).

    A finished run is reused by a rerun into the same ``--out``; when it was trained by other
    code, the table would mix code versions silently, so :func:`main` says so per run.
    """
    import hashlib

    import sam2real_ros
    pkg = os.path.dirname(os.path.abspath(sam2real_ros.__file__))
    h = hashlib.sha256()
    for dirpath, dirnames, files in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
        for name in sorted(f for f in files if f.endswith('.py')):
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, pkg).encode() + b'\0')
            with open(path, 'rb') as f:
                h.update(f.read() + b'\0')
    return h.hexdigest()[:12]


def run_code(run):
    """Return the source digest a finished run recorded (``code.json``), or None."""
    try:
        with open(os.path.join(run['dir'], 'code.json')) as f:
            return json.load(f).get('source_digest')
    except (OSError, ValueError):
        return None


def run_state(run):
    """``done``, ``partial`` or ``new``; a folder trained with another config is an error."""
    from sam2real_ros.training.config import dump_config
    ck = os.path.join(run['dir'], 'checkpoint.pt')
    if not os.path.isfile(ck):
        return 'new'
    with open(os.path.join(run['dir'], 'config.yaml')) as f:
        old = f.read()
    if old != dump_config(run['cfg']):
        raise BenchmarkError(f'{run["dir"]} holds a run with another config; choose another '
                             f'--out or delete that folder')
    rows = sim2real_report.run_metrics(run['dir'])
    return 'done' if len(rows) >= run['cfg'].max_epochs else 'partial'


def launch(run, launcher, nproc, threads):
    """Train one run (resuming a partial one); raises BenchmarkError when it fails."""
    from sam2real_ros.training.config import dump_config
    resume = run_state(run) == 'partial'
    if launcher == 'inprocess':
        import torch

        from sam2real_ros.training import train
        torch.set_num_threads(threads)
        train.run(run['cfg'], run['dir'], resume=resume, progress=False)
        return
    os.makedirs(run['dir'], exist_ok=True)
    cfg_path = run['dir'] + '.yaml'
    with open(cfg_path, 'w') as f:
        f.write(dump_config(run['cfg']))
    cmd = [sys.executable, '-m', 'sam2real_ros.training.train']
    if launcher == 'torchrun':
        cmd = ['torchrun', f'--nproc_per_node={nproc}', '-m', 'sam2real_ros.training.train']
    cmd += ['--config', cfg_path, '--out', run['dir']] + (['--resume'] if resume else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        tail = '\n'.join(proc.stdout.strip().splitlines()[-5:])
        raise BenchmarkError(f'run {run["dir"]} failed (exit {proc.returncode}): {tail}')


def train_runs(runs, launcher, nproc, threads, code, progress=True, log=print, jobs=1):
    """
    Train the runs not finished yet (resuming partial ones); reuse finished ones.

    Arguments:
      runs (list): :func:`plan_runs` output. launcher, nproc, threads: see :func:`launch`.
      code (str): :func:`source_digest` of today's code, recorded in each new run folder.
      progress (bool): tqdm bar. log (callable): one line per run.
      jobs (int): runs trained at the same time (each in its own process with ``threads``
        threads; a run that starts from another's checkpoint waits for it:
        :func:`run_with_parents`). The numbers do not depend on it.

    Returns
    -------
      list[str]: names of the runs that earlier code trained or started (their numbers may
      differ from a fresh run's).

    """
    from tqdm import tqdm
    other_code = []
    bar = tqdm(total=len(runs), desc='runs', unit='run', disable=not progress)
    if jobs > 1 and launcher == 'inprocess':
        launcher = 'python'

    def one(i, run):
        name = f'{run["exp"]["id"]} seed {run["seed"]}'
        state = run_state(run)
        t1 = time.monotonic()
        if state != 'new' and run_code(run) != code:
            other_code.append(name)
            log(f'warning: {name} was {"trained" if state == "done" else "started"} by '
                f'other code (source digest {run_code(run)}, now {code}); its numbers may '
                'differ from a fresh run: delete its folder to train it again')
        if state == 'new':
            atomic_write_json(os.path.join(run['dir'], 'code.json'), {'source_digest': code})
        if state != 'done':
            launch(run, launcher, nproc, threads)
        rows = sim2real_report.run_metrics(run['dir'])
        score = float(rows[-1]['miou_last_k']) if rows else float('nan')
        log(f'[{i + 1}/{len(runs)}] {name}: mIoU {score:.3f}'
            + (' (reused)' if state == 'done' else f' ({time.monotonic() - t1:.0f} s)'))
        bar.update(1)

    if jobs <= 1:
        for i, run in enumerate(runs):
            bar.set_postfix_str(f'{run["exp"]["id"]} seed {run["seed"]}')
            one(i, run)
    else:
        run_with_parents(parents_of(runs), jobs, lambda i: one(i, runs[i]))
    bar.close()
    return other_code


def parents_of(runs):
    """
    Return, per run, the index of the run whose checkpoint it starts from (or None).

    Arguments:
    ---------
      runs (list): :func:`plan_runs` output.

    Returns
    -------
      list: ``parents[i]`` is an index into ``runs``, or None (no ``init_from``, or the parent
      is not planned: its checkpoint exists already or the run fails with a clear error).

    """
    by_dir = {os.path.normpath(r['dir']): i for i, r in enumerate(runs)}
    return [by_dir.get(os.path.normpath(os.path.dirname(r['cfg'].init_checkpoint)))
            if r['cfg'].init_checkpoint else None for r in runs]


def run_with_parents(parents, jobs, work):
    """
    Call ``work(i)`` for every ``i`` on ``jobs`` threads, each after its parent has finished.

    When a thread is free it takes, in this order: a run that others start from, a run whose
    parent has finished (it is on the critical path), then the others in planned order. The
    numbers do not depend on the order; only the wall time does (the pseudolabel runs no longer
    wait for every other run). The first exception of ``work`` is raised once the runs that
    had started have ended; runs not started yet are skipped.

    Arguments:
    ---------
      parents (list): the output of :func:`parents_of`.
      jobs (int): threads (>= 1).
      work (callable): ``work(i)`` trains run ``i``.

    Raises
    ------
      BaseException: the first exception of ``work``.

    """
    import threading

    waiting = list(range(len(parents)))
    has_child = {p for p in parents if p is not None}
    done, errors = set(), []
    cond = threading.Condition()

    def rank(i):
        if i in has_child:
            return (0, i)
        return (1, i) if parents[i] is not None else (2, i)

    def worker():
        while True:
            with cond:
                while True:
                    if errors or not waiting:
                        return
                    ready = [i for i in waiting if parents[i] is None or parents[i] in done]
                    if ready:
                        i = min(ready, key=rank)
                        waiting.remove(i)
                        break
                    cond.wait()
            try:
                work(i)
            except BaseException as e:  # noqa: B902 -- re-raised in the calling thread
                with cond:
                    errors.append(e)
                    cond.notify_all()
                return
            with cond:
                done.add(i)
                cond.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def pool_spec(bench, size, out):
    """(pool folder, pool render spec or None) for a size preset."""
    spec = bench.get('pool')
    if not spec:
        return os.path.join(out, 'pool'), None
    spec = dict(spec)
    frames = bench['sizes'][size].get('pool_frames')
    if frames:
        spec['frames'] = frames
    bad = sorted(set(spec) - set(sim2real_pool.POOL_FIELDS))
    if bad:
        raise BenchmarkError(f'pool: unknown field(s) {bad}; known: '
                             f'{list(sim2real_pool.POOL_FIELDS)}')
    return os.path.join(out, 'pool', str(spec.get('frames', 48))), spec


def prepare_pool(bench, runs, pool_root, spec, progress, log):
    """Render (procedural pool) and segment the real training frames once; returns info."""
    info = {'root': pool_root}
    if spec:
        info.update(sim2real_pool.render_pool(pool_root, progress=progress, **spec))
    if bench.get('segment_real', True):
        real = next((r['cfg'].data.real for r in runs
                     if r['cfg'].variant in ('full', 'pseudolabel')), None)
        if real is None:
            return info
        if real.get('type') not in ('image_folder', 'episodes'):
            raise BenchmarkError('segment_real needs data.real of type image_folder or '
                                 f'episodes, got {real.get("type")!r}')
        seg = bench.get('segmenter', 'auto')
        info['segments'] = sim2real_pool.segment_pool(real['root'], seg, progress=progress,
                                                      log=log)
    return info


def pool_quality(pool_root, spec):
    """Segment quality of a procedural pool's segments and oracle segments (or {})."""
    if not spec:
        return {}
    paths = sim2real_pool.pool_paths(pool_root)
    return {'pool_segments': sim2real_pool.segment_quality(pool_root),
            'oracle_segments': sim2real_pool.segment_quality(pool_root, paths['oracle'])}


def numerics(threads):
    """
    Return what decides the floating-point results besides code, config and seeds.

    A rerun gives the same table bit for bit when these match (docs/sim2real.md): the torch
    version, the CPU kernels torch dispatches to (``cpu_capability``, e.g. AVX2 or AVX512) and
    the number of torch threads per run (a different thread count changes the order of
    floating-point sums, and 200-iteration runs amplify that to differences of the size of the
    seed-to-seed noise).
    """
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')),
                       cpu)
    except OSError:
        pass
    return {'torch': torch.__version__, 'cpu_capability': torch.backends.cpu.get_cpu_capability(),
            'cpu': cpu, 'threads': threads}


def main(argv=None):
    """Run the benchmark; returns an exit code (2 on user errors)."""
    from tqdm import tqdm
    args = build_parser().parse_args(argv)
    if args.quick:
        args.size, args.seeds = 'tiny', args.seeds or 1
    log = tqdm.write
    t0 = time.monotonic()
    try:
        bench = load_bench_config(args.config)
        if args.segmenter:
            bench['segmenter'] = args.segmenter
        if args.quick and not args.only:
            args.only = bench.get('quick')
        preset = bench['sizes'].get(args.size)
        if preset is None:
            raise BenchmarkError(f'unknown --size {args.size!r}; the config has '
                                 f'{sorted(bench["sizes"])}')
        seeds = args.seeds or int(preset.get('seeds', 3))
        if seeds < 1:
            raise BenchmarkError(f'--seeds must be >= 1, got {seeds}')
        launcher = args.launcher or bench.get('launcher', 'inprocess')
        threads = args.threads or int(bench.get('threads', 1))
        nproc = args.nproc_per_node or int(bench.get('nproc_per_node', 1))
        out = os.path.abspath(args.out)
        pool_root, spec = pool_spec(bench, args.size, out)
        runs = plan_runs(bench, args.size, seeds, args.only, out, pool_root, args.sets)
        if args.dry_run:
            plan = [{'experiment': r['exp']['id'], 'seed': r['seed'], 'variant': r['cfg'].variant,
                     'out': r['dir'], 'epochs': r['cfg'].max_epochs,
                     'init_checkpoint': r['cfg'].init_checkpoint} for r in runs]
            for r in plan:
                print(f'{r["experiment"]} seed {r["seed"]}: {r["variant"]}, {r["epochs"]} '
                      f'epochs -> {r["out"]}')
            print(json.dumps({'size': args.size, 'launcher': launcher, 'runs': plan}))
            return 0
        if args.report_only:
            if not os.path.isdir(out):
                raise BenchmarkError(f'--report-only: no benchmark output at {out}')
            summary = sim2real_report.write_report(out, runs, {
                'size': args.size, 'seeds': seeds, 'config': os.path.relpath(args.config),
                'report_only': True, **pool_quality(pool_root, spec)})
            log(f'wrote {os.path.join(out, "results.md")}, results.csv, summary.csv, '
                'curves.png')
            print(json.dumps(summary))
            return 0
        os.makedirs(out, exist_ok=True)
        if launcher == 'inprocess':  # the pool's segmenter and every run: the same threads
            import torch
            torch.set_num_threads(threads)
        pool = prepare_pool(bench, runs, pool_root, spec, not args.no_progress, log)
        log(f'{len(runs)} runs ({len({r["exp"]["id"] for r in runs})} experiments, up to '
            f'{seeds} seeds), size {args.size}, launcher {launcher}, {threads} thread(s); '
            f'out {out}')
        code = source_digest()
        other_code = train_runs(runs, launcher, nproc, threads, code, not args.no_progress, log)
    except BenchmarkError as e:
        print(f'sim2real: error: {e}', file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:  # ConfigError / DatasetError from the trainer
        print(f'sim2real: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('sim2real: interrupted; run the same command again to continue', file=sys.stderr)
        return 130
    wall = time.monotonic() - t0
    summary = sim2real_report.write_report(out, runs, {
        'size': args.size, 'seeds': seeds, 'config': os.path.relpath(args.config),
        'wall_s': round(wall, 1),
        'segmenter': (pool.get('segments') or {}).get('segmenter'), 'launcher': launcher,
        'pool_frames': pool.get('frames'), 'source_digest': code,
        'runs_by_other_code': other_code or None, **numerics(threads),
        **pool_quality(pool_root, spec)})
    log(f'wrote {os.path.join(out, "results.md")}, results.csv, summary.csv, curves.png '
        f'({wall:.0f} s)')
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
