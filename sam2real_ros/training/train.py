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
``sam2real train``: train a model (synthetic + SAM-regularized real frames), resumably.

    sam2real train --config training/configs/tiny_cpu.yaml --out runs/x [--resume] [key=value ...]
    torchrun --nproc_per_node=4 -m sam2real_ros.training.train --config ... --out ...

Writes into ``--out``: ``config.yaml`` (resolved), ``checkpoint.pt`` (every epoch, atomic; model,
EMA, optimizer, scheduler, RNG, epoch, history), ``metrics.csv`` (one row per epoch),
``images/epoch_XXX.png`` and ``tb/`` (TensorBoard). The last printed line is a JSON summary.
See docs/training.md.
"""
import argparse
import csv
import io
import json
import math
import os
import sys

from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.io_utils import atomic_write_bytes
from sam2real_ros.training.config import ConfigError, dump_config, load_config
from sam2real_ros.training.trainer import Trainer
from sam2real_ros.training.viz import save_panel
import torch

CSV_FIELDS = ['epoch', 'iteration', 'lr', 'sup_loss', 'real_loss', 'real_inv', 'real_var',
              'real_n', 'pseudo_loss', 'miou', 'miou_last_k', 'eval_frames', 'time_s']


def build_parser():
    """Argument parser of ``sam2real train``."""
    p = argparse.ArgumentParser(
        prog='sam2real train', description='Train the segmentation network (paper Fig. 4): '
        'alternating synthetic (Eq. 1) and real (Eq. 6/9) steps, EMA, mIoU per epoch.',
        formatter_class=HelpFormatter)
    p.add_argument('--config', help='training config YAML (training/configs/*.yaml); with '
                   '--resume defaults to <out>/config.yaml')
    p.add_argument('--out', required=True, help='run folder (checkpoints, logs, images)')
    p.add_argument('--resume', action='store_true',
                   help='continue from <out>/checkpoint.pt exactly where it stopped')
    p.add_argument('overrides', nargs='*', metavar='key=value',
                   help='config overrides with dotted keys, e.g. optim.lr=3e-4 max_epochs=10')
    return p


def _dist_setup(cfg):
    """(rank, world_size, device); initializes torch.distributed under torchrun."""
    rank, world, local = 0, 1, 0
    if 'WORLD_SIZE' in os.environ and 'RANK' in os.environ:
        rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
        local = int(os.environ.get('LOCAL_RANK', 0))
    want_cuda = cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
    if want_cuda and not torch.cuda.is_available():
        raise ConfigError('config: device is cuda but no CUDA device is available')
    device = torch.device(f'cuda:{local}') if want_cuda else torch.device('cpu')
    if want_cuda:
        torch.cuda.set_device(device)
    if 'WORLD_SIZE' in os.environ and 'RANK' in os.environ:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend='nccl' if want_cuda else 'gloo')
    return rank, world, device


def _barrier(world):
    if world > 1 or torch.distributed.is_initialized():
        torch.distributed.barrier()


def write_csv(path, history):
    """Rewrite ``metrics.csv`` from the history (atomic, so it matches the checkpoint)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction='ignore')
    w.writeheader()
    for row in history:
        w.writerow({k: row.get(k, '') for k in CSV_FIELDS})
    atomic_write_bytes(path, buf.getvalue().encode())


def read_metrics(path):
    """
    Rows of a ``metrics.csv`` written by :func:`write_csv`, as dicts of floats.

    Empty cells read as NaN; a missing file gives ``[]`` (a run that has not finished an epoch).
    """
    if not os.path.isfile(path):
        return []
    with open(path, newline='') as f:
        return [{k: float(v) if v not in ('', None) else float('nan') for k, v in row.items()}
                for row in csv.DictReader(f)]


def _load_cfg(args):
    cfg_path = args.config
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ConfigError(f'--out {args.out} is a file; give a run folder')
    if args.resume and not os.path.isdir(args.out):
        raise ConfigError(f'--resume: no run folder {args.out} (start a new run without '
                          '--resume)')
    if args.resume and cfg_path is None:
        cfg_path = os.path.join(args.out, 'config.yaml')
        if not os.path.isfile(cfg_path):
            raise ConfigError(f'--resume: {args.out} holds no run (no config.yaml; start a new '
                              'run without --resume)')
    if cfg_path is None:
        raise ConfigError('--config is required (or --resume with an existing run folder)')
    cfg = load_config(cfg_path, args.overrides)
    if not args.resume and os.path.exists(os.path.join(args.out, 'checkpoint.pt')):
        raise ConfigError(f'{args.out} already holds a run (checkpoint.pt); use --resume to '
                          f'continue it or choose another --out')
    return cfg


def run(cfg, out, resume=False, progress=None, stop=None):
    """
    Train per ``cfg`` into ``out``; returns the final summary dict (rank 0) or None.

    ``stop`` (optional, a callable without arguments) is asked after each epoch's checkpoint;
    when it returns True the run ends there (``stopped_early`` in the summary) and can be
    continued later with ``resume=True`` (the adaptation manager's wall-time budget).
    """
    from tqdm import tqdm

    rank, world, device = _dist_setup(cfg)
    main_rank = rank == 0
    if main_rank:
        os.makedirs(out, exist_ok=True)
        atomic_write_bytes(os.path.join(out, 'config.yaml'), dump_config(cfg).encode())
    tr = Trainer(cfg, out, resume=resume, rank=rank, world_size=world, device=device)
    note = tr.real.left_out_note() if hasattr(tr.real, 'left_out_note') else None
    if main_rank and note:
        print(f'sam2real train: {note}', file=sys.stderr)  # once, at start
    show = cfg.log.progress if progress is None else progress
    writer = None
    if main_rank and cfg.log.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(os.path.join(out, 'tb'), purge_step=tr.epoch * tr.iters)
    k = cfg.miou_last_k

    def log_iteration(step, values):
        for key, val in values.items():
            writer.add_scalar(f'train/{key}', val, step)

    stopped = False
    epochs = tqdm(range(tr.epoch, cfg.max_epochs), desc='epochs', disable=not (show and
                  main_rank), initial=tr.epoch, total=cfg.max_epochs, position=0)
    for _ in epochs:
        bar = tqdm(total=tr.iters, desc=f'epoch {tr.epoch + 1}', leave=False, position=1,
                   disable=not (show and main_rank))
        stats = tr.timed_epoch(bar, log_fn=log_iteration if writer is not None else None)
        bar.close()
        if main_rank:
            summary, images = tr.evaluate(cfg.log.images_per_epoch)
            scores = [h['miou'] for h in tr.history] + [summary['miou']]
            valid = [s for s in scores[-k:] if not math.isnan(s)]
            row = dict(stats, epoch=tr.epoch, iteration=tr.epoch * tr.iters,
                       lr=tr.sched.get_last_lr()[0], miou=summary['miou'],
                       eval_frames=summary['frames'],
                       miou_last_k=sum(valid) / len(valid) if valid else float('nan'))
            tr.history.append(row)
            write_csv(os.path.join(out, 'metrics.csv'), tr.history)
            if images:
                save_panel(os.path.join(out, 'images', f'epoch_{tr.epoch:03d}.png'), images)
            if writer is not None:
                for key, val in row.items():
                    if key not in ('epoch', 'iteration') and isinstance(val, float):
                        writer.add_scalar(f'epoch/{key}', val, row['iteration'])
                writer.flush()
            tr.save()
            epochs.set_postfix(miou=f'{summary["miou"]:.3f}')
        _barrier(world)
        if stop is not None and tr.epoch < cfg.max_epochs and stop():
            stopped = True
            break
    if writer is not None:
        writer.close()
    if not main_rank:
        return None
    last = tr.history[-1] if tr.history else {}
    return {'epochs': tr.epoch, 'miou': last.get('miou'), 'miou_last_k': last.get('miou_last_k'),
            'k': k, 'variant': cfg.variant, 'checkpoint': os.path.join(out, 'checkpoint.pt'),
            'iterations': tr.epoch * tr.iters, 'stopped_early': stopped}


def main(argv=None):
    """Entry point of ``sam2real train``; returns an exit code."""
    args = build_parser().parse_args(argv)
    try:
        cfg = _load_cfg(args)
        summary = run(cfg, args.out, resume=args.resume)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f'sam2real train: error: {e}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('sam2real train: interrupted; resume with --resume', file=sys.stderr)
        return 130
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if summary is not None:
        print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
