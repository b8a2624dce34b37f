"""
``sam2real evaluate``: mIoU (Eq. 8) of a checkpoint or ONNX model on a labeled dataset.

    sam2real evaluate runs/x/checkpoint.pt --data procedural-real
    sam2real evaluate model.onnx --data training/configs/paper_ycbv.yaml --frames 500

``--data`` is a preset name (see ``--help``), a YAML file holding one labeled dataset spec
(``{type: bop, ...}``, see docs/datasets.md) or a training config (its ``data.eval`` is used).
Predictions come from ``SegmentationEngine`` exactly as the segmentation node computes them
(argmax at network resolution, nearest-upsampled to the frame). The last printed line is JSON.
"""
import argparse
import json
import os
import sys

from sam2real_ros.training.metrics import MeanIoU
import yaml

PRESETS = {
    'procedural-real': {'type': 'procedural', 'appearance': 'real', 'seed': 1000,
                        'length': 100},
    'procedural-synthetic': {'type': 'procedural', 'appearance': 'synthetic', 'seed': 1000,
                             'length': 100},
}


class EvalError(ValueError):
    """A user error (bad --data, unreadable model)."""


def resolve_data(spec):
    """Dataset spec dict from a preset name or a YAML file (dataset spec or training config)."""
    if spec in PRESETS:
        return dict(PRESETS[spec])
    if not os.path.isfile(spec):
        raise EvalError(f'--data {spec!r} is neither a preset ({", ".join(PRESETS)}) nor a '
                        f'YAML file')
    try:
        with open(spec) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise EvalError(f'--data {spec}: invalid YAML: {e}') from None
    if isinstance(data, dict) and 'type' in data:
        return data
    if isinstance(data, dict) and isinstance(data.get('data'), dict) \
            and isinstance(data['data'].get('eval'), dict):
        return data['data']['eval']
    raise EvalError(f'--data {spec}: expected a dataset spec with a "type" field or a training '
                    f'config with data.eval')


def build_parser():
    """Argument parser of ``sam2real evaluate``."""
    p = argparse.ArgumentParser(prog='sam2real evaluate',
                                description='mIoU (Eq. 8) of a model on a labeled dataset.')
    p.add_argument('model', help='checkpoint (.pt, EMA weights) or exported .onnx model')
    p.add_argument('--data', default='procedural-real',
                   help=f'preset ({", ".join(PRESETS)}), dataset spec YAML or training config '
                        f'YAML (uses data.eval); default: %(default)s')
    p.add_argument('--frames', type=int, default=0, help='evaluate the first N frames (0 = all)')
    p.add_argument('--no-background', action='store_true',
                   help='leave class 0 out of C_I (default: background counts when present)')
    p.add_argument('--backend', default='auto', choices=('auto', 'onnxruntime', 'torch'))
    p.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    p.add_argument('--json-out', help='also write the summary JSON to this file')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def evaluate(engine, dataset, frames=0, include_background=True, progress=True):
    """Run ``engine`` over ``dataset`` and return :meth:`MeanIoU.summary` (+ class names)."""
    from tqdm import tqdm
    acc = MeanIoU(include_background=include_background)
    n = len(dataset) if not frames else min(frames, len(dataset))
    for i in tqdm(range(n), desc='evaluate', disable=not progress):
        sample = dataset[i]
        if 'labels' not in sample:
            raise EvalError(f'dataset sample {sample.get("key", i)!r} has no labels')
        pred = engine.predict(sample['rgb'], want_features=False).labels
        acc.update(pred, sample['labels'])
    out = acc.summary()
    names = list(engine.class_names)
    out['per_class'] = {(names[int(c)] if int(c) < len(names) else c): v
                        for c, v in out['per_class'].items()}
    return out


def main(argv=None):
    """Entry point of ``sam2real evaluate``; returns an exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.frames < 0:
            raise EvalError(f'--frames must be >= 0, got {args.frames}')
        from sam2real_ros.data import datasets
        from sam2real_ros.inference.engine import SegmentationEngine
        spec = resolve_data(args.data)
        dataset = datasets.build_labeled(spec)
        engine = SegmentationEngine.load(args.model, backend=args.backend, device=args.device)
        summary = evaluate(engine, dataset, args.frames, not args.no_background,
                           progress=not args.no_progress)
    except ValueError as e:  # EvalError, ModelLoadError, DatasetError, ConfigError
        print(f'sam2real evaluate: error: {e}', file=sys.stderr)
        return 2
    summary.update(model=os.fspath(args.model), data=spec, backend=engine.backend)
    print(f'mIoU (Eq. 8) = {summary["miou"]:.4f} over {summary["frames"]} frames '
          f'({summary["skipped_frames"]} without classes skipped)')
    if args.json_out:
        from sam2real_ros.common.io_utils import atomic_write_json
        atomic_write_json(args.json_out, summary)
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
