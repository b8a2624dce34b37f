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
``sam2real adapt``: fine-tune on the robot's new frames, gate, deploy; ``rollback``, ``status``.

    sam2real adapt --dataset-root ~/sam2real_data --model-path ~/models/seg.onnx
        --init-checkpoint runs/paper/checkpoint.pt            # once: version 1, deployed
    sam2real adapt --dataset-root ~/sam2real_data --model-path ~/models/seg.onnx
        --gate gate.yaml [--watch] [--force]                  # a round (or one per new data)
    sam2real adapt rollback --dataset-root ~/sam2real_data [--to v0002]
    sam2real adapt status --dataset-root ~/sam2real_data

Every decision is one JSON line in ``<work-dir>/ledger.jsonl``; the last printed line is that
line (or the status) as JSON. See docs/adaptation.md.
"""
import argparse
import dataclasses
import json
import sys
import time

from sam2real_ros.adaptation.config import AdaptConfig, AdaptError
from sam2real_ros.adaptation.manager import AdaptationManager, read_ledger
from sam2real_ros.common.cli_help import HelpFormatter

_HELP = {
    'dataset_root': "the recorder's dataset root (episodes/ and masks/)",
    'model_path': 'the ONNX file the segmentation node watches (replaced atomically on deploy)',
    'work_dir': 'model versions, ledger and the candidate (default <dataset-root>/adaptation)',
    'train_config': "training YAML for the candidates (default: the deployed checkpoint's own)",
    'min_new_frames': 'new masked frames that start a round',
    'max_iterations': 'training iterations of a round (budget)',
    'max_wall_s': 'training wall time of a round in seconds (budget, checked per epoch)',
    'epoch_iterations': 'iterations between candidate checkpoints (resume point after a kill)',
    'gate_data': 'labeled real gate frames: a folder (images/ + labels/, or BOP), a dataset '
                 'spec YAML (e.g. a BOP test split) or a sam2real evaluate preset; never '
                 'trained on (default: none, synthetic '
                 'validation only)',
    'gate_class_map': "how gate classes map to the model's (as sam2real evaluate --class-map)",
    'gate_frames': 'gate frames evaluated (0 = all)',
    'synthetic_val_frames': 'synthetic validation frames (the forgetting check)',
    'real_margin': 'real-gate mIoU the candidate may lose (paired bootstrap lower bound)',
    'synthetic_margin': 'synthetic validation mIoU the candidate may lose',
    'confidence': "confidence of the paired bootstrap's lower bound",
    'bootstrap_samples': 'paired bootstrap resamples',
    'seed': 'bootstrap seed',
    'device': 'training device',
}


def _flag(name):
    return '--' + name.replace('_', '-')


def _add_common(p):
    p.add_argument('--dataset-root', required=True, help=_HELP['dataset_root'])
    p.add_argument('--work-dir', default='', help=_HELP['work_dir'])
    p.add_argument('--model-path', default='', help=_HELP['model_path'] + ' (default: the '
                   "ledger's)")


def build_parser():
    """Argument parser of ``sam2real adapt`` (a round / init / watch)."""
    p = argparse.ArgumentParser(
        prog='sam2real adapt', formatter_class=HelpFormatter, allow_abbrev=False,
        description='Fine-tune a candidate on the new robot frames (variant full), gate it '
        'against the deployed model and deploy it only if it is not worse. Subcommands: '
        '"sam2real adapt rollback", "sam2real adapt status".')
    _add_common(p)
    p.add_argument('--init-checkpoint', help='register this checkpoint (the model the robot '
                   'runs now) as version 1 and deploy it; once per work dir')
    p.add_argument('--force', action='store_true', help='train now, however few frames are new')
    p.add_argument('--watch', action='store_true', help='keep running: a round whenever '
                   'min-new-frames new frames are there (checked every --poll-s)')
    p.add_argument('--poll-s', type=float, default=60.0, help='seconds between checks (--watch)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    defaults = AdaptConfig()
    for f in dataclasses.fields(AdaptConfig):
        if f.name in ('dataset_root', 'work_dir', 'model_path', 'train_overrides', 'progress'):
            continue
        kind = type(getattr(defaults, f.name))
        kw = {'choices': ('auto', 'cpu', 'cuda')} if f.name == 'device' else {}
        flag = {'train_config': '--config', 'gate_data': '--gate'}.get(f.name, _flag(f.name))
        p.add_argument(flag, dest=f.name,
                       type=kind, default=getattr(defaults, f.name), help=_HELP[f.name], **kw)
    p.add_argument('overrides', nargs='*', metavar='key=value',
                   help='training config overrides for the candidates, e.g. optim.lr=1e-4')
    return p


def build_rollback_parser():
    """Argument parser of ``sam2real adapt rollback``."""
    p = argparse.ArgumentParser(prog='sam2real adapt rollback', formatter_class=HelpFormatter,
                                description='Deploy an earlier model version again (atomic; '
                                'one ledger line).')
    _add_common(p)
    p.add_argument('--to', help='version to deploy (default: the one deployed before)')
    return p


def build_status_parser():
    """Argument parser of ``sam2real adapt status``."""
    p = argparse.ArgumentParser(prog='sam2real adapt status', formatter_class=HelpFormatter,
                                description='Deployed version, versions, new frames and the '
                                'last decision, as JSON.')
    _add_common(p)
    return p


def _model_path(args):
    """``--model-path``, else the one the ledger recorded."""
    if args.model_path:
        return args.model_path
    cfg = AdaptConfig(dataset_root=args.dataset_root, work_dir=args.work_dir, model_path='x')
    entries = read_ledger(cfg.work)
    if not entries:
        raise AdaptError(f'--model-path is required (no ledger in {cfg.work} to take it from)')
    return entries[-1]['model_path']


def _log(level, text):
    print(f'sam2real adapt: {"" if level == "info" else level + ": "}{text}', file=sys.stderr)


def _run(argv):
    if argv and argv[0] in ('rollback', 'status'):
        sub, rest = argv[0], argv[1:]
        args = (build_rollback_parser() if sub == 'rollback' else build_status_parser()) \
            .parse_args(rest)
        cfg = AdaptConfig(dataset_root=args.dataset_root, work_dir=args.work_dir,
                          model_path=_model_path(args))
        mgr = AdaptationManager(cfg, log=_log)
        if sub == 'rollback':
            return mgr.rollback(args.to)
        with mgr.locked():
            return mgr.status()
    args = build_parser().parse_args(argv)
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(AdaptConfig)
              if hasattr(args, f.name)}
    fields['model_path'] = _model_path(args)
    cfg = AdaptConfig(**fields, train_overrides=list(args.overrides),
                      progress=not args.no_progress)
    mgr = AdaptationManager(cfg, log=_log)
    if args.init_checkpoint:
        return mgr.init(args.init_checkpoint)
    if not args.watch:
        entry = mgr.run_round(force=args.force)
        if entry is None:
            _log('info', f'no round: {mgr.detail} (--force trains now)')
            with mgr.locked():
                return mgr.status()
        return entry
    while True:  # --watch: until Ctrl-C
        entry = mgr.run_round(force=args.force)
        if entry is not None:
            print(json.dumps(entry), flush=True)
        args.force = False
        time.sleep(args.poll_s)


def main(argv=None):
    """Entry point of ``sam2real adapt``; returns an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        out = _run(argv)
    except KeyboardInterrupt:
        _log('info', 'interrupted; an unfinished candidate is resumed by the next run')
        return 130
    except (AdaptError, ValueError, FileNotFoundError) as e:
        # AdaptError, LedgerError, ConfigError, DatasetError, EvalError, ModelLoadError
        print(f'sam2real adapt: error: {str(e).strip().splitlines()[0]}', file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
