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
``sam2real segment``: segment every frame of a dataset into its mask store, resumably.

The command line around :class:`sam2real_ros.sam.worker.SamWorker`: options from the command
line over a parameter file (``config/sam_worker.yaml``, the ``sam_worker`` node's), SAM's as one
:class:`~sam2real_ros.sam.options.SamOptions` (``--backend`` picks the fast path's engine),
shards from ``--shard`` or torchrun, SIGINT/SIGTERM stop after the frame in progress, failed
frames named at the end (exit 1). Usage: docs/sam_worker.md; also
``torchrun -m sam2real_ros.sam.segment_cli`` for one shard per process.
"""
import argparse
import os
import signal
import sys
import threading

from sam2real_ros.common import io_utils
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.sam import segmenters
from sam2real_ros.sam.options import SamOptions
from sam2real_ros.sam.worker import find_frames, parse_shard, SamWorker, shard_from_env, \
    WorkerError

SHOW_FAILURES = 10  # failed frames ``sam2real segment`` names on screen


def load_config(path):
    """Read the parameters of ``config/sam_worker.yaml`` (the ROS parameter file)."""
    doc = io_utils.read_yaml(path, 'config', WorkerError) or {}
    for node in doc.values() if isinstance(doc, dict) else []:
        if isinstance(node, dict) and isinstance(node.get('ros__parameters'), dict):
            return node['ros__parameters']
    raise WorkerError(f'{path}: no "<node>: ros__parameters:" section')


def build_parser():
    """Build the argument parser of ``sam2real segment``."""
    p = argparse.ArgumentParser(
        prog='sam2real segment', formatter_class=HelpFormatter,
        description='Segment every frame of a dataset (recorder episodes and image folders '
        'below it) with SAM or the fallback into its mask store, resumably: frames with masks '
        'are skipped, failed frames are named and make the exit status 1. docs/sam_worker.md')
    p.add_argument('dataset', help='dataset root (recorder layout) or image folder')
    p.add_argument('--store', help='mask store folder (default DATASET/masks)')
    p.add_argument('--config', help='parameter file (config/sam_worker.yaml layout)')
    p.add_argument('--segmenter', choices=('sam', 'fallback', 'auto'), default=None,
                   help='sam: SAM only; fallback: depth + colour segments; auto (default): '
                   'SAM when the checkpoint exists, else the fallback')
    p.add_argument('--model-type', default=None, help='SAM backbone (default vit_h)')
    p.add_argument('--checkpoint', default=None,
                   help='SAM checkpoint (default $SAM_CHECKPOINT or ~/.cache/sam2real/)')
    p.add_argument('--points-per-side', type=int, default=None, help='default 24 (paper)')
    p.add_argument('--points-per-batch', type=int, default=None, help='default 64')
    p.add_argument('--device', default=None, help='auto (default), cpu, cuda, cuda:1, ...')
    p.add_argument('--backend', choices=('auto', 'torch', 'onnx'), default=None,
                   help="SAM fast path's engine: torch, onnx (onnxruntime on the CPU; exports "
                   'the graphs once per checkpoint, minutes for ViT-H) or auto (default: onnx on '
                   'a CPU, torch on a GPU)')
    p.add_argument('--shard', default=None, help='i/n: process shard i of n (default from '
                   'torchrun RANK/WORLD_SIZE, else 0/1)')
    p.add_argument('--limit', type=int, default=None, help='at most this many frames')
    p.add_argument('--watch', action='store_true', help='keep polling for new frames')
    p.add_argument('--poll', type=float, default=None, help='seconds between scans (--watch)')
    p.add_argument('--retry-failed', action='store_true', help='try failed frames again')
    p.add_argument('--nice', type=int, default=None, help='CPU niceness increment (default 10)')
    p.add_argument('--naive', action='store_true',
                   help="use segment_anything's own generator (slower, same masks)")
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def run_options(args):
    """Return the run's options: the command line over the parameter file over defaults."""
    cfg = load_config(args.config) if args.config else {}
    generator = dict(cfg.get('sam') or {})
    for name in ('points_per_side', 'points_per_batch'):
        if getattr(args, name) is not None:
            generator[name] = getattr(args, name)
    device = args.device or cfg.get('device', 'auto')
    if device == 'auto' and 'LOCAL_RANK' in os.environ:
        import torch
        if torch.cuda.is_available():
            device = f"cuda:{os.environ['LOCAL_RANK']}"
    try:
        sam = SamOptions(
            model_type=args.model_type or cfg.get('model_type', 'vit_h'),
            checkpoint=args.checkpoint or cfg.get('checkpoint') or None, device=device,
            backend=args.backend or cfg.get('backend', 'auto'), fast=not args.naive,
            upsample_chunk=int(cfg.get('upsample_chunk', 32)),
            encoder_dtype=cfg.get('encoder_dtype', 'float32'), generator=generator)
    except ValueError as e:
        raise WorkerError(str(e)) from None
    return {
        'segmenter': args.segmenter or cfg.get('segmenter', 'auto'), 'sam': sam,
        'fallback': dict(cfg.get('fallback') or {}),
        'nice': args.nice if args.nice is not None else int(cfg.get('nice', 10)),
        'poll': args.poll if args.poll is not None else float(cfg.get('poll_period_s', 5.0))}


def _left_out(skipped):
    """Return one line naming the episode folders left out, or ''."""
    if not skipped:
        return ''
    more = len(skipped) - SHOW_FAILURES
    return (f'{len(skipped)} episode folder(s) left out: '
            + '; '.join(f'{eid}: {why}' for eid, why in skipped[:SHOW_FAILURES])
            + (f'; ... and {more} more' if more > 0 else ''))


def _setup(args):
    """Check the dataset, build the segmenter and the worker; raises on user errors."""
    opt = run_options(args)
    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    if not os.path.isdir(args.dataset):
        raise WorkerError(f'dataset root is not a folder: {args.dataset}')
    skipped = []
    found = find_frames(args.dataset, args.store, skipped)
    left_out = _left_out(skipped)
    if not found and not args.watch:
        raise WorkerError(f'no images found under {args.dataset} (image files '
                          f'{" ".join(io_utils.IMAGE_EXTS)} or finished recorder episodes)'
                          + (f'; {left_out}' if left_out else ''))
    if opt['nice'] > 0:
        os.nice(opt['nice'])
    seg = segmenters.make_segmenter(opt['segmenter'], opt['sam'], opt['fallback'],
                                    log=lambda m: print(m, file=sys.stderr))
    worker = SamWorker(args.dataset, seg, args.store, shard, args.retry_failed)
    return opt, worker, left_out


def _run(worker, args, poll, stop):
    """Segment until done (or, with ``--watch``, until stopped); returns the exit code."""
    left = args.limit
    try:
        while not stop.is_set():
            n = worker.run(limit=left, stop=stop, progress=not args.no_progress)
            if left is not None:
                left -= n
            if not args.watch or (left is not None and left <= 0):
                break
            stop.wait(poll)
    except WorkerError as e:
        print(f'sam2real segment: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('aborted', file=sys.stderr)
        return 130
    per = f', {worker.seconds / worker.done:.2f} s/frame' if worker.done else ''
    report_failures(worker)
    print(f'done {worker.done}, failed {worker.failed}{per}; '
          f'{len(worker.store.failed_keys())} failed frames in the store', file=sys.stderr)
    return 1 if worker.failed else 0


def main(argv=None):
    """Run ``sam2real segment``; returns the exit code."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print('stopping after the current frame (again to abort)', file=sys.stderr)
        stop.set()

    try:
        opt, worker, left_out = _setup(args)
    except (WorkerError, segmenters.SegmenterError, OSError) as e:
        print(f'sam2real segment: {e}', file=sys.stderr)
        return 2
    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if left_out:
        print(f'sam2real segment: {left_out}', file=sys.stderr)
    print(f'segmenter {worker.segmenter.name}, store {worker.store_root}, shard '
          f'{worker.shard[0]}/{worker.shard[1]}'
          + (f', removed {worker.removed_temp_files} stale temp files'
             if worker.removed_temp_files else ''), file=sys.stderr)
    try:
        return _run(worker, args, opt['poll'], stop)
    finally:
        worker.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def report_failures(worker, out=sys.stderr, show=SHOW_FAILURES):
    """Print the frames that failed in this run with their reasons (the first ``show``)."""
    if not worker.failed:
        return
    print(f'sam2real segment: {worker.failed} frame(s) failed (each reason is also in '
          f'{worker.store_root}/<frame>.failed.json; --retry-failed tries them again):',
          file=out)
    for key, reason in worker.failures[:show]:
        print(f'  {key}: {reason}', file=out)
    if worker.failed > show:
        print(f'  ... and {worker.failed - show} more', file=out)


if __name__ == '__main__':
    sys.exit(main())
