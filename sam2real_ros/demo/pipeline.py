"""
``sam2real demo`` / ``make demo``: the whole loop on a simulated robot, on CPU, in minutes.

Stages (each prints ``[stage i/6] ...`` lines; a failure names its stage and the log file):

1. simulated robot: ``sim_camera`` (procedural "real" frames), ``sim_grasp_server``, plus the
   ``grasp_recorder`` and ``sam_worker`` nodes, all real ROS processes;
2. grasps: the demo acts as the grasp pipeline (ActionClient goals, one after another); the
   recorder stores an episode per grasp;
3. SAM worker: the node segments the recorded frames into the mask store (fallback segmenter
   unless a SAM checkpoint is asked for);
4. training: ``synthetic_only`` and ``full`` (SAM regularization) with the same seed and steps,
   in parallel (one thread each), each evaluated (mIoU, Eq. 8) on held-out "real" frames;
5. export of the ``full`` model (EMA) to ONNX;
6. ``segmentation_node`` with that model on the simulated camera, rate measured.

Then ``<out>/report.html`` (images next to it) and ``summary.json``. docs/demo.md.
"""
import argparse
import contextlib
import datetime
import json
import os
import sys
import time
import traceback

from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.processes import ProcessGroup
from sam2real_ros.demo.robot import RobotGraph, StageError

STAGES = 6
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VARIANTS = ('synthetic_only', 'full')


def default_config():
    """Path of ``training/configs/demo.yaml`` (source tree, else the installed share folder)."""
    for base in (REPO, os.path.join(sys.prefix, 'share', 'sam2real')):
        path = os.path.normpath(os.path.join(base, 'training', 'configs', 'demo.yaml'))
        if os.path.isfile(path):
            return path
    return os.path.normpath(os.path.join(REPO, 'training', 'configs', 'demo.yaml'))


class StageFailed(Exception):
    """A stage failed; the message names it (and the log file to read)."""


class Stages:
    """Prints stage lines, times stages and turns their errors into :class:`StageFailed`."""

    def __init__(self, logdir):
        self.logdir, self.times, self.current = logdir, [], None

    def say(self, text):
        """Print one progress line of the current stage."""
        print(f'[stage {self.current}/{STAGES}] {text}', flush=True)

    @contextlib.contextmanager
    def stage(self, index, name):
        """Run one numbered stage as a context manager (a ``with`` block, e.g. 3, 'SAM worker')."""
        self.current = index
        label = f'stage {index}/{STAGES}' if index else 'report'
        print(f'[{label}] {name} ...', flush=True)
        t0 = time.monotonic()
        try:
            yield self
        except StageError as exc:
            log = f' (log: {exc.log})' if exc.log else ''
            detail = ''.join(f'\n    {line}' for line in exc.detail.splitlines())
            raise StageFailed(f'{label} ({name}) failed: {exc}{log}{detail}') from None
        except Exception as exc:  # unexpected: keep the traceback in a file, one line here
            path = os.path.join(self.logdir, 'demo_error.log')
            with open(path, 'w') as f:
                f.write(traceback.format_exc())
            raise StageFailed(f'{label} ({name}) failed: {type(exc).__name__}: {exc} '
                              f'(traceback: {path})') from None
        dt = time.monotonic() - t0
        self.times.append((f'{index}. {name}' if index else name, dt))
        print(f'[{label}] {name}: done in {dt:.0f} s', flush=True)


def build_parser():
    """Argument parser of ``sam2real demo``."""
    p = argparse.ArgumentParser(
        prog='sam2real demo', description='The whole sam2real loop on a simulated robot: '
        'grasps recorded, frames segmented, synthetic-only vs SAM-regularized training, ONNX '
        'export, segmentation node rate; writes an HTML report. docs/demo.md',
        formatter_class=HelpFormatter)
    p.add_argument('--out', help='run folder (default: runs/demo-<timestamp>); must not exist '
                   'or be empty')
    p.add_argument('--grasps', type=int, default=3, help='grasps to record (default: 3)')
    p.add_argument('--epochs', type=int, help="training epochs (default: the config's, 8)")
    p.add_argument('--frames-per-epoch', type=int,
                   help="training iterations per epoch (default: the config's, 25)")
    p.add_argument('--scenes', type=int, default=32,
                   help='distinct procedural scenes the camera cycles (default: 32)')
    p.add_argument('--seconds', type=float, default=10.0,
                   help='segmentation node measurement time (default: 10)')
    p.add_argument('--segmenter', choices=('fallback', 'auto', 'sam'), default='fallback',
                   help='SAM worker segmenter: fallback (Felzenszwalb, default: SAM is '
                   'impractical on CPU), auto (SAM when its checkpoint exists), sam')
    p.add_argument('--config', default=default_config(),
                   help='training config (default: %(default)s)')
    p.add_argument('--quick', action='store_true', help='smallest loop (tests): 2 grasps, '
                   '2 epochs x 6 iterations, 4 eval frames, 3 s node measurement')
    p.add_argument('--node-only', action='store_true', help='only run segmentation_node on '
                   'the simulated camera with a random-weight (or --model) model')
    p.add_argument('--model', help='--node-only: use this exported model')
    return p


def _check_args(args):
    if args.quick:
        args.grasps, args.seconds, args.scenes = min(args.grasps, 2), 3.0, 16
        args.epochs = args.epochs or 2
        args.frames_per_epoch = args.frames_per_epoch or 6
    for name in ('grasps', 'epochs', 'frames_per_epoch', 'scenes'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    if args.seconds <= 0:
        raise ValueError(f'--seconds must be positive, got {args.seconds:g}')
    if not os.path.isfile(args.config):
        raise ValueError(f'--config {args.config}: no such file')
    if args.out is None:
        args.out = os.path.join('runs', 'demo-' + time.strftime('%Y%m%d-%H%M%S'))
    args.out = os.path.abspath(args.out)
    if os.path.isdir(args.out) and os.listdir(args.out):
        raise ValueError(f'--out {args.out} is not empty; choose a new folder')
    try:
        os.makedirs(os.path.join(args.out, 'logs'), exist_ok=True)
        probe = os.path.join(args.out, '.write_test')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f'--out {args.out}: cannot write there ({exc.strerror})') from None


def record(args, st, data_root):
    """Stages 1-3; returns the list of recorded episodes (episode_store dicts)."""
    graph = RobotGraph(data_root, os.path.join(args.out, 'logs'), num_frames=args.scenes,
                       segmenter=args.segmenter)
    try:
        with st.stage(1, 'simulated robot, grasp recorder, SAM worker'):
            st.say(f'starting sim_camera ({args.scenes} procedural "real" scenes), '
                   f'sim_grasp_server, grasp_recorder, sam_worker ({args.segmenter}); logs in '
                   f'{graph.procs.logdir}')
            graph.start(progress=st.say)
        episodes = []
        with st.stage(2, 'grasps'):
            for i in range(args.grasps):
                ep = graph.grasp(i)
                episodes.append(ep)
                phases = {}
                for fr in ep['frames']:
                    phases[fr['phase']] = phases.get(fr['phase'], 0) + 1
                st.say(f'grasp {i + 1}/{args.grasps}: episode '
                       f'{os.path.basename(ep["dir"])} with {len(ep["frames"])} frames '
                       f'({", ".join(f"{n} {p}" for p, n in phases.items())})')
        with st.stage(3, 'SAM worker'):
            t0 = time.monotonic()
            graph.wait_for_masks(report=lambda d, n: st.say(
                f'SAM worker: {d}/{n} frames ({time.monotonic() - t0:.0f} s)'))
    finally:
        codes = graph.close()
    bad = {k: v for k, v in codes.items() if v != 0}
    if bad:
        print(f'warning: processes exited with non-zero codes on SIGINT: {bad} (logs in '
              f'{graph.procs.logdir})', file=sys.stderr)
    return episodes


def train(args, st, data_root):
    """Stage 4: both variants in parallel subprocesses; returns ``{variant: summary dict}``."""
    from tqdm import tqdm

    from sam2real_ros.training.config import load_config
    from sam2real_ros.training.train import read_metrics
    procs = ProcessGroup(os.path.join(args.out, 'logs'))
    overrides = [f'data.real.root={data_root}']
    if args.epochs:
        overrides.append(f'max_epochs={args.epochs}')
    if args.frames_per_epoch:
        overrides.append(f'frames_per_epoch={args.frames_per_epoch}')
    if args.quick:
        overrides += ['data.eval_frames=4', 'miou_last_k=1', 'optim.warmup_iters=2']
    try:
        cfg = load_config(args.config, overrides)
    except ValueError as exc:
        raise StageError(f'training config: {exc}') from None
    one_thread = {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
    bars, rows = {}, {v: [] for v in VARIANTS}
    try:
        for v in VARIANTS:
            procs.start('-m', 'sam2real_ros.training.train', '--config', args.config,
                        '--out', os.path.join(args.out, 'train', v), f'variant={v}', *overrides,
                        name=f'train_{v}', env=one_thread)
        st.say(f'training synthetic_only and full in parallel: {cfg.max_epochs} epochs x '
               f'{cfg.frames_per_epoch} iterations, {cfg.image_size[0]}x{cfg.image_size[1]}, '
               f'seed {cfg.seed}; logs: {procs.logdir}/train_*.log')
        bars = {v: tqdm(total=cfg.max_epochs, desc=f'  {v}', unit='epoch', leave=True,
                        disable=None, position=i) for i, v in enumerate(VARIANTS)}
        while True:
            for v in VARIANTS:
                path = os.path.join(args.out, 'train', v, 'metrics.csv')
                new = read_metrics(path)
                for r in new[len(rows[v]):]:
                    bars[v].update(1)
                    bars[v].set_postfix_str(f'mIoU {r["miou"]:.3f}')
                    st.say(f'{v}: epoch {int(r["epoch"])}/{cfg.max_epochs}, mIoU '
                           f'{r["miou"]:.3f} ({r["time_s"]:.0f} s)')
                rows[v] = new
            states = {v: procs.procs[f'train_{v}'].poll() for v in VARIANTS}
            for v, code in states.items():
                if code not in (None, 0):
                    raise StageError(f'training {v} exited with code {code}',
                                     log=procs.log_path(f'train_{v}'),
                                     detail=procs.tail(f'train_{v}'))
            if all(code == 0 for code in states.values()):
                break
            time.sleep(0.5)
    finally:  # also on Ctrl-C: the trainers run in their own sessions
        for bar in bars.values():
            bar.close()
        procs.stop_all()
    out = {}
    for v in VARIANTS:
        last = rows[v][-1]
        out[v] = {'miou': last['miou'], 'miou_last_k': last['miou_last_k'],
                  'epochs': int(last['epoch']), 'iterations': int(last['iteration']),
                  'k': cfg.miou_last_k, 'rows': rows[v],
                  'checkpoint': os.path.join(args.out, 'train', v, 'checkpoint.pt')}
    out['eval'] = dict(cfg.data.eval)
    out['eval_frames'] = min(cfg.data.eval_frames or cfg.data.eval['length'],
                             cfg.data.eval['length'])
    return out


def export(args, st, checkpoint):
    """Stage 5: ``sam2real export`` of the full model's EMA weights; returns the .onnx path."""
    procs = ProcessGroup(os.path.join(args.out, 'logs'))
    out = os.path.join(args.out, 'model_full.onnx')
    try:
        proc = procs.start('-m', 'sam2real_ros.inference.export', checkpoint, '--out', out,
                           name='export')
        code = proc.wait()
    finally:
        procs.stop_all()
    if code != 0:
        raise StageError(f'sam2real export exited with code {code}', log=procs.log_path('export'),
                         detail=procs.tail('export'))
    with open(procs.log_path('export')) as f:
        for line in f.read().splitlines():
            st.say(line)
    return out


def measure_node(args, st, model):
    """Stage 6: segmentation_node on the simulated camera; returns :meth:`NodeGraph.measure`."""
    from sam2real_ros.demo.graph import NodeGraph
    workdir = os.path.join(args.out, 'logs')
    st.say(f'starting sim_camera (30 Hz) and segmentation_node; logs: {workdir}/camera.log, '
           f'{workdir}/node.log')
    try:
        with NodeGraph(model, workdir, rate_hz=30.0, source='procedural',
                       camera_params={'num_frames': args.scenes}) as graph:
            graph.wait_for_labels()
            res = graph.measure(args.seconds, progress=sys.stderr.isatty())
    except RuntimeError as exc:
        raise StageError(str(exc), log=os.path.join(workdir, 'node.log')) from None
    st.say(f'{res["hz"]:.1f} labels/s over {args.seconds:g} s, latency p50 '
           f'{res["latency_ms_p50"]:.0f} ms, inference p50 '
           f'{res["node"].get("inference_ms_p50", "?")} ms')
    return res


def run(args):
    """Run all stages and the report; returns the summary dict. Raises StageFailed."""
    from sam2real_ros.demo import report as demo_report
    st = Stages(os.path.join(args.out, 'logs'))
    started = datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    data_root = os.path.join(args.out, 'data')
    episodes = record(args, st, data_root)
    with st.stage(4, 'training'):
        tr = train(args, st, data_root)
    with st.stage(5, 'ONNX export'):
        model = export(args, st, tr['full']['checkpoint'])
    with st.stage(6, 'segmentation node'):
        node = measure_node(args, st, model)
    with st.stage(0, 'report'):
        summary = demo_report.build(args, episodes, tr, model, node, st.times, started, load)
    return summary


def main(argv=None):
    """Entry point of ``sam2real demo``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.node_only:
        from sam2real_ros.demo.graph import run_node_demo
        if args.model is not None and not os.path.isfile(args.model):
            print(f'sam2real demo: model file {args.model!r} does not exist', file=sys.stderr)
            return 2
        return run_node_demo('fast', args.seconds, 30.0, args.out, args.model, 'procedural')
    try:
        _check_args(args)
    except ValueError as exc:
        print(f'sam2real demo: error: {exc}', file=sys.stderr)
        return 2
    print(f'sam2real demo: run folder {args.out}', flush=True)
    try:
        summary = run(args)
    except StageFailed as exc:
        print(f'sam2real demo: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('sam2real demo: interrupted', file=sys.stderr)
        return 130
    t = summary['train']
    print(f'mIoU on {summary["eval_frames"]} held-out "real" frames: synthetic only '
          f'{t["synthetic_only"]["miou"]:.4f}, full (SAM regularization) '
          f'{t["full"]["miou"]:.4f} ({t["full"]["miou"] - t["synthetic_only"]["miou"]:+.4f}; '
          f'background everywhere: {summary["background_miou"]:.4f}); '
          f'segmentation node {summary["node"]["hz"]:.1f} labels/s')
    print(json.dumps({'report': summary['report'], 'miou_synthetic_only':
                      t['synthetic_only']['miou'], 'miou_full': t['full']['miou'],
                      'node_hz': summary['node']['hz'],
                      'stages_s': {k: round(v, 1) for k, v in summary['stages']}}))
    print(f'report: {summary["report"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
