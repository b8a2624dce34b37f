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
``sam2real evaluate``: mIoU (Eq. 8) of a checkpoint or ONNX model on a labeled dataset.

    sam2real evaluate runs/x/checkpoint.pt --data procedural-real
    sam2real evaluate model.onnx --data training/configs/paper_ycbv.yaml --frames 500

``--data`` is a preset name (see ``--help``), a folder of labeled frames (images/ + labels/, or a
BOP folder), a YAML file holding one labeled dataset spec (``{type: bop, ...}``, see
docs/datasets.md) or a training config (its ``data.eval``, and like
training its ``data.eval_frames``, ``include_background`` and ``loss.ignore_index``).
Predictions come from ``SegmentationEngine`` exactly as the segmentation node computes them
(argmax at network resolution, nearest-upsampled to the frame). The model's class names must be
the dataset's (same names, same order) unless ``--class-map`` says how the dataset's classes
correspond to the model's. The last printed line is JSON.
"""
import argparse
import json
import os
import sys

import numpy as np
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.common.io_utils import atomic_write_json, read_yaml
from sam2real_ros.common.labels import IGNORE_INDEX
from sam2real_ros.data import datasets
from sam2real_ros.data.labeled_folder import folder_spec
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.training.config import load_config
from sam2real_ros.training.metrics import MeanIoU

PRESETS = {
    'procedural-real': {'type': 'procedural', 'appearance': 'real', 'seed': 1000,
                        'length': 100},
    'procedural-synthetic': {'type': 'procedural', 'appearance': 'synthetic', 'seed': 1000,
                             'length': 100},
}


class EvalError(Sam2realError, ValueError):
    """A user error (bad --data, unreadable model)."""


def resolve_data(spec):
    """
    Return the dataset spec and the evaluation settings that ``--data`` names.

    Arguments:
    ---------
      spec (str): a preset name, a folder (images/ + labels/, or BOP), a dataset spec YAML file
        or a training config YAML file.

    Returns
    -------
      (dict, dict): the labeled dataset spec, and the settings a training config fixes for its
      own evaluation (``frames`` = ``data.eval_frames``, ``include_background``,
      ``ignore_index``); empty for presets and dataset specs.

    """
    if spec in PRESETS:
        return dict(PRESETS[spec]), {}
    if os.path.isdir(spec):
        try:
            return folder_spec(spec), {}
        except datasets.DatasetError as e:
            raise EvalError(f'--data {e}') from None
    if not os.path.isfile(spec):
        raise EvalError(f'--data {spec!r} is neither a preset ({", ".join(PRESETS)}), a folder '
                        f'nor a YAML file')
    data = read_yaml(spec, '--data', EvalError)
    if isinstance(data, dict) and 'type' in data:
        return data, {}
    if isinstance(data, dict) and isinstance(data.get('data'), dict) \
            and isinstance(data['data'].get('eval'), dict):
        cfg = load_config(spec)  # the defaults training used, e.g. eval_frames 50
        return dict(cfg.data.eval), {'frames': cfg.data.eval_frames,
                                     'include_background': cfg.include_background,
                                     'ignore_index': cfg.loss.ignore_index}
    raise EvalError(f'--data {spec}: expected a dataset spec with a "type" field or a training '
                    f'config with data.eval')


def _names(names, limit=8):
    shown = ', '.join(names[:limit])
    return shown + (f', ... ({len(names)} in all)' if len(names) > limit else '')


def parse_class_map(text):
    """
    Read ``--class-map``: ``by-name``, a YAML/JSON file, or ``DATA=MODEL,...`` pairs.

    Returns
    -------
      (dict | str): dataset class name -> model class name, or None for "ignore these pixels";
      or the string ``'by-name'``.

    """
    if text == 'by-name':
        return text
    if os.path.isfile(text):
        mapping = read_yaml(text, '--class-map', EvalError)
        if not isinstance(mapping, dict):
            raise EvalError(f'--class-map {text}: expected a mapping "dataset class: model '
                            f'class" (null to ignore a class)')
        return {str(k): (None if v is None else str(v)) for k, v in mapping.items()}
    mapping = {}
    for pair in filter(None, (p.strip() for p in text.split(','))):
        data, sep, model = pair.partition('=')
        if not sep or not data.strip():
            raise EvalError(f'--class-map: {pair!r} is not DATA_CLASS=MODEL_CLASS (nor a file)')
        mapping[data.strip()] = model.strip() or None
    if not mapping:
        raise EvalError('--class-map: empty mapping')
    return mapping


def class_lut(model_names, data_names, class_map=None, ignore_index=IGNORE_INDEX):
    """
    Check the dataset's classes against the model's; return the label lookup table.

    Arguments:
    ---------
      model_names (list of str): the model's class names (index = predicted label).
      data_names (list of str): the dataset's class names (index = ground-truth label).
      class_map (dict | str | None): None: the names must be equal (same order); ``'by-name'``:
        every dataset class goes to the model class of the same name; a dict: dataset name ->
        model name (None = ignore its pixels), other dataset classes by the same name.
      ignore_index (int): ground-truth value of ignored pixels.

    Returns
    -------
      (np.ndarray | None): 256 int16 entries, dataset label -> model label (``ignore_index``
      for ignored classes, -1 for dataset classes with no model class: an error in
      :func:`evaluate` when a frame holds one); None when the names are equal.

    Raises
    ------
      EvalError: the names differ and no mapping is given, or the mapping names a class that
      does not exist.

    """
    model_names, data_names = [str(n) for n in model_names], [str(n) for n in data_names]
    if not data_names:
        raise EvalError("the dataset defines no class names, so the model's classes cannot be "
                        'checked against it')
    if class_map is None:
        if model_names == data_names:
            return None
        raise EvalError(
            f'class mismatch: the model has {len(model_names)} classes '
            f'({_names(model_names)}), the dataset {len(data_names)} ({_names(data_names)}); '
            "an mIoU would compare unrelated classes. Evaluate on data with the model's "
            'classes, or say how they correspond with --class-map (by-name, '
            'DATA_CLASS=MODEL_CLASS pairs or a YAML file; see --help)')
    mapping = {} if class_map == 'by-name' else dict(class_map)
    unknown = [d for d in mapping if d not in data_names]
    if unknown:
        raise EvalError(f'--class-map names dataset classes that do not exist: '
                        f'{", ".join(unknown)} (dataset classes: {_names(data_names, 30)})')
    bad = [m for m in mapping.values() if m is not None and m not in model_names]
    if bad:
        raise EvalError(f'--class-map names model classes that do not exist: {", ".join(bad)} '
                        f'(model classes: {_names(model_names, 30)})')
    lut = np.full(256, ignore_index, np.int16)
    for i, name in enumerate(data_names):
        target = mapping.get(name, name)
        if name in mapping and target is None:
            continue
        lut[i] = model_names.index(target) if target in model_names else -1
    return lut


def build_parser():
    """Argument parser of ``sam2real evaluate``."""
    p = argparse.ArgumentParser(prog='sam2real evaluate',
                                description='mIoU (Eq. 8) of a model on a labeled dataset.',
                                formatter_class=HelpFormatter)
    p.add_argument('model', help='checkpoint (.pt, EMA weights) or exported .onnx model')
    p.add_argument('--data', default='procedural-real',
                   help=f'preset ({", ".join(PRESETS)}), a folder of labeled frames (images/ + '
                        f'labels/, or BOP), dataset spec YAML or training config YAML (uses '
                        f'data.eval)')
    p.add_argument('--frames', type=int, default=None,
                   help="evaluate the first N frames (0 = all; default: a training config's "
                        'data.eval_frames, else all)')
    p.add_argument('--no-background', action='store_true',
                   help='leave class 0 out of C_I (default: background counts when present, '
                        "or a training config's include_background)")
    p.add_argument('--class-map', metavar='MAP',
                   help="how the dataset's classes correspond to the model's when their names "
                        'differ: "by-name" (same names, any order or a subset), '
                        '"DATA_CLASS=MODEL_CLASS,..." (DATA_CLASS= ignores that class\'s '
                        'pixels; unnamed classes by the same name) or a YAML file with that '
                        'mapping (null ignores). Without it the names must be equal')
    p.add_argument('--backend', default='auto', choices=('auto', 'onnxruntime', 'torch'),
                   help='inference backend (auto: torch for .pt, onnxruntime for .onnx)')
    p.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'),
                   help='inference device')
    p.add_argument('--json-out', help='also write the summary JSON to this file')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def evaluate(engine, dataset, frames=0, include_background=True, progress=True, lut=None,
             ignore_index=IGNORE_INDEX, keep_frames=False):
    """
    Run ``engine`` over ``dataset`` and return :meth:`MeanIoU.summary` (+ class names).

    ``lut`` (from :func:`class_lut`) maps the dataset's labels to the model's; the per-class
    results are named with the model's class names. ``keep_frames`` adds ``frame_scores``:
    ``{frame key: that frame's mean IoU}`` for the frames that count (paired comparisons of two
    models over the same frames).
    """
    from tqdm import tqdm
    acc = MeanIoU(include_background=include_background, ignore_index=ignore_index)
    n = len(dataset) if not frames else min(frames, len(dataset))
    per_frame = {}
    for i in tqdm(range(n), desc='evaluate', disable=not progress):
        sample = dataset[i]
        if 'labels' not in sample:
            raise EvalError(f'dataset sample {sample.get("key", i)!r} has no labels')
        pred = engine.predict(sample['rgb'], want_features=False).labels
        gt = np.asarray(sample['labels'])
        if lut is not None:
            gt = lut[gt]
            if (gt < 0).any():
                names = [str(dataset.class_names[c]) for c in
                         np.unique(np.asarray(sample['labels'])[gt < 0])]
                raise EvalError(
                    f'frame {sample.get("key", i)!r} holds dataset class(es) {", ".join(names)} '
                    f'that --class-map leaves without a model class: map them '
                    f'({names[0]}=MODEL_CLASS) or ignore their pixels ({names[0]}=)')
            gt = gt.astype(np.uint8)
        score = acc.update(pred, gt)
        if keep_frames and score is not None:
            per_frame[str(sample.get('key', i))] = score
    out = acc.summary()
    if keep_frames:
        out['frame_scores'] = per_frame
    names = list(engine.class_names)
    out['per_class'] = {(names[int(c)] if int(c) < len(names) else c): v
                        for c, v in out['per_class'].items()}
    return out


def main(argv=None):
    """Entry point of ``sam2real evaluate``; returns an exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.frames is not None and args.frames < 0:
            raise EvalError(f'--frames must be >= 0, got {args.frames}')
        spec, fixed = resolve_data(args.data)
        frames = args.frames if args.frames is not None else fixed.get('frames', 0)
        background = fixed.get('include_background', True) and not args.no_background
        ignore_index = fixed.get('ignore_index', IGNORE_INDEX)
        class_map = parse_class_map(args.class_map) if args.class_map is not None else None
        dataset = datasets.build_labeled(spec)
        engine = SegmentationEngine.load(args.model, backend=args.backend, device=args.device)
        lut = class_lut(engine.class_names, dataset.class_names, class_map, ignore_index)
        summary = evaluate(engine, dataset, frames, background, progress=not args.no_progress,
                           lut=lut, ignore_index=ignore_index)
    except ValueError as e:  # EvalError, ModelLoadError, DatasetError, ConfigError
        print(f'sam2real evaluate: error: {e}', file=sys.stderr)
        return 2
    summary.update(model=os.fspath(args.model), data=spec, backend=engine.backend,
                   class_map=class_map)
    print(f'mIoU (Eq. 8) = {summary["miou"]:.4f} over {summary["frames"]} frames '
          f'({summary["skipped_frames"]} without classes skipped)')
    if args.json_out:
        atomic_write_json(args.json_out, summary)
    print(json.dumps(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
