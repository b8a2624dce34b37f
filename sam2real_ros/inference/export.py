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
Export a trained checkpoint (EMA weights by default) to one self-contained ONNX file.

``sam2real export CKPT --out model.onnx [--weights ema|model] [--opset 17]`` or, before any
model is trained, ``sam2real export --random --profile fast --classes bg,a,b --out x.onnx``.

The ONNX graph has input ``image`` (1x3xhxw float32, normalized, at the profile's inference
size) and outputs ``logits`` (1xCxhxw), ``features`` (1xDxhxw) and ``labels`` (1xhxw uint8,
the argmax over classes inside the graph: a GPU runtime copies 0.3 MB of labels to the host
per 480x640 frame instead of C x 1.2 MB of logits). ``metadata_props`` carry
``sam2real_version``, ``class_names`` (JSON list), ``input_size`` (JSON [h, w]), ``mean`` and
``std`` (JSON lists), ``profile``, ``feature_dim``, ``num_classes`` and ``model_cfg`` (JSON).
After export, onnxruntime (CPU) is run on a random input and compared with PyTorch.
"""
import argparse
import contextlib
import copy
import json
import os
import sys
import warnings

import numpy as np

from sam2real_ros import version
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.io_utils import atomic_write_bytes
from sam2real_ros.common.labels import class_names_problem

DEFAULT_FULL_RES = (480, 640)  # export size for profiles with input_size: null
METADATA_MARK = 'sam2real_version'


def model_metadata(cfg, class_names, input_size):
    """
    Return the metadata every deployable model carries (ONNX ``metadata_props``, engine).

    Arguments:
    ---------
      cfg (ModelConfig): the network's configuration.
      class_names (list of str): one name per output class.
      input_size (tuple or None): (height, width) the network runs at; None = frame size.

    Returns
    -------
      dict: str -> str (JSON-encoded lists), keys ``sam2real_version``, ``class_names``,
      ``input_size``, ``mean``, ``std``, ``profile``, ``feature_dim``, ``num_classes``,
      ``model_cfg``.

    """
    return {
        METADATA_MARK: version(),
        'class_names': json.dumps(list(class_names)),
        'input_size': json.dumps(list(input_size) if input_size else None),
        'mean': json.dumps(list(cfg.mean)),
        'std': json.dumps(list(cfg.std)),
        'profile': cfg.name,
        'feature_dim': str(cfg.feature_dim),
        'num_classes': str(cfg.num_classes),
        'model_cfg': json.dumps(cfg.to_dict()),
    }


def export_input_size(cfg, size=None):
    """(height, width) the ONNX graph is exported at: ``size``, the profile's, or 480x640."""
    if size is not None:
        return tuple(int(v) for v in size)
    return tuple(cfg.input_size) if cfg.input_size is not None else DEFAULT_FULL_RES


OUTPUTS = ('logits', 'features', 'labels')


def with_labels(model):
    """
    Wrap a :class:`SegmentationNet` so that it also returns its labels (for export).

    Returns
    -------
      (torch.nn.Module): ``forward(x) -> (logits, features, labels)``, ``labels`` 1xhxw uint8
      = ``argmax`` over the classes (first index on ties, as numpy and ONNX ArgMax).

    """
    import torch

    class WithLabels(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            logits, features = self.net(x)
            return logits, features, torch.argmax(logits, dim=1).to(torch.uint8)

    return WithLabels(model).train(model.training)  # the exporter restores this mode after


def _torch_export(model, x, out_path, opset):
    import torch
    kw = {'input_names': ['image'], 'output_names': list(OUTPUTS), 'opset_version': opset}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            torch.onnx.export(model, (x,), out_path, dynamo=False, do_constant_folding=True, **kw)
        except Exception as legacy_error:  # legacy exporter removed or failing: try dynamo
            try:
                torch.onnx.export(model, (x,), out_path, dynamo=True, external_data=False, **kw)
            except Exception as e:
                raise RuntimeError(f'ONNX export failed (legacy: {legacy_error}; dynamo: '
                                   f'{e})') from None


def export_onnx(model, cfg, class_names, out_path, opset=17, size=None, verify=True,
                progress=None):
    """
    Export ``model`` to ``out_path`` (atomically) with sam2real metadata.

    Arguments:
    ---------
      model (SegmentationNet): the network (a CPU copy in eval mode is exported).
      cfg (ModelConfig): its config (input size, normalization, profile name).
      class_names (list[str]): one per class; at most 256 (labels are mono8).
      out_path (str): destination ``.onnx`` file.
      opset (int): ONNX opset, >= 17.
      size (tuple): optional (height, width) overriding the profile's inference size.
      verify (bool): compare onnxruntime (CPU) with PyTorch on a random input.
      progress (callable): optional, called with a step name after each step.

    Returns
    -------
      (dict): ``path``, ``input_size``, ``max_abs_diff_logits``, ``max_abs_diff_features``,
      ``labels_agree`` (fraction of pixels where the graph's labels equal the argmax of
      PyTorch's logits; ties between near-equal logits may differ) -- None without verify.

    """
    import onnx
    import torch

    if opset < 17:
        raise ValueError(f'opset must be >= 17, got {opset}')
    class_names = [str(c) for c in class_names]
    problem = class_names_problem(class_names)
    if problem:
        raise ValueError(problem)
    if len(class_names) != cfg.num_classes:
        raise ValueError(f'{len(class_names)} class names for a model with '
                         f'{cfg.num_classes} classes')
    h, w = export_input_size(cfg, size)
    model = copy.deepcopy(model).cpu().eval()  # leave the caller's model (device, mode) as is
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    tmp = f'{out_path}.export-tmp-{os.getpid()}.onnx'
    try:
        with torch.no_grad():
            _torch_export(with_labels(model), x, tmp, opset)
        proto = onnx.load(tmp)  # also pulls in external data if an exporter wrote any
    finally:
        for p in (tmp, tmp + '.data'):
            if os.path.exists(p):
                os.unlink(p)
    meta = model_metadata(cfg, class_names, (h, w))
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    data = proto.SerializeToString()
    atomic_write_bytes(out_path, data)
    if progress:
        progress('exported')
    result = {'path': os.fspath(out_path), 'input_size': [h, w], 'max_abs_diff_logits': None,
              'max_abs_diff_features': None, 'labels_agree': None}
    if verify:
        import onnxruntime as ort
        sess = ort.InferenceSession(data, providers=['CPUExecutionProvider'])
        ol, of, olab = sess.run(list(OUTPUTS), {'image': x.numpy()})
        with torch.no_grad():
            tl, tf = model(x)
        result['max_abs_diff_logits'] = float(np.abs(ol - tl.numpy()).max())
        result['max_abs_diff_features'] = float(np.abs(of - tf.numpy()).max())
        result['labels_agree'] = float(np.mean(olab == tl.argmax(1).numpy()))
        if progress:
            progress('verified')
    return result


def _parse_size(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be HxW (e.g. 480x640), got {text!r}')
    return h, w


def build_parser():
    """Argument parser of ``sam2real export``."""
    p = argparse.ArgumentParser(
        prog='sam2real export', description='Export a sam2real checkpoint (or a random model) '
        'to one self-contained ONNX file with class names and preprocessing in its metadata.',
        formatter_class=HelpFormatter)
    p.add_argument('checkpoint', nargs='?', help='checkpoint .pt written by sam2real train')
    p.add_argument('--out', required=True, help='output .onnx path')
    p.add_argument('--weights', choices=('ema', 'model'), default='ema',
                   help='which weights of the checkpoint to export (default: ema)')
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 17, default 17)')
    p.add_argument('--size', type=_parse_size, default=None,
                   help="inference size HxW (default: the profile's input_size, 480x640 for "
                   'full-resolution profiles)')
    p.add_argument('--random', action='store_true',
                   help='export a randomly initialized model instead of a checkpoint')
    p.add_argument('--profile', default='fast',
                   help='model profile name or YAML path for --random (default: fast)')
    p.add_argument('--classes', default='background,object',
                   help='comma-separated class names for --random, background first')
    p.add_argument('--seed', type=int, default=0, help='random seed for --random')
    p.add_argument('--no-verify', action='store_true',
                   help='skip the onnxruntime-vs-PyTorch comparison')
    p.add_argument('--verbose', action='store_true',
                   help="show the exporter's own output (torch.onnx / onnxscript progress and "
                   'warnings; hidden by default)')
    return p


def check_out_path(out):
    """
    Refuse an ``--out`` that cannot be written, before any export work starts.

    Raises
    ------
      ValueError: ``out`` names a folder (or ends with a path separator), its folder does not
      exist, or that folder is not writable.

    """
    text = os.fspath(out)
    if not text:
        raise ValueError('--out is empty; give the .onnx file to write')
    if text.endswith(('/', os.sep)) or os.path.isdir(text):
        raise ValueError(f'--out {text} is a folder; give the file to write, e.g. '
                         f'{os.path.join(text, "model.onnx")}')
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise ValueError(f'--out {text}: folder {folder} does not exist (create it first)')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f'--out {text}: folder {folder} is not writable')


@contextlib.contextmanager
def quiet_fds(enabled=True):
    """
    Send everything written to file descriptors 1 and 2 (and Python warnings) to nowhere.

    The exporters print progress, warnings and onnxscript "Evaluation failed" lines from
    Python and C++ alike; only a file-descriptor redirect keeps them all off the terminal.
    """
    if not enabled:
        yield
        return
    import tempfile
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
            warnings.simplefilter('ignore')
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


def main(argv=None):
    """Run ``sam2real export``; returns 0 on success, 2 on a user error."""
    args = build_parser().parse_args(argv)
    try:
        check_out_path(args.out)
    except ValueError as e:
        print(f'sam2real export: error: {e}', file=sys.stderr)
        return 2
    from tqdm import tqdm

    from sam2real_ros.modeling import model as mdl
    # the bar writes to a copy of the terminal's stderr, which quiet_fds leaves alone
    bar_file = os.fdopen(os.dup(2), 'w')
    bar = tqdm(total=2 if args.no_verify else 3, desc='sam2real export', unit='step',
               file=bar_file, leave=False, disable=None)  # no bar when not a TTY

    def step(name):
        bar.set_postfix_str(name)
        bar.update(1)

    exporting = False
    try:
        if args.random:
            if args.checkpoint:
                raise ValueError('give either a checkpoint or --random, not both')
            names = [c.strip() for c in args.classes.split(',') if c.strip()]
            problem = class_names_problem(names)
            if problem:
                raise ValueError(f'--classes: {problem}')
            cfg = mdl.load_profile(args.profile, num_classes=len(names), pretrained=False,
                                   pretrained_path=None)
            import torch
            torch.manual_seed(args.seed)
            net = mdl.build_model(cfg)
        else:
            if not args.checkpoint:
                raise ValueError('give a checkpoint path (or --random --profile NAME)')
            net, cfg, names = mdl.model_from_checkpoint(args.checkpoint, weights=args.weights)
        step('model loaded')
        exporting = True
        with quiet_fds(not args.verbose):
            res = export_onnx(net, cfg, names, args.out, opset=args.opset, size=args.size,
                              verify=not args.no_verify, progress=step)
    except (ValueError, RuntimeError, OSError) as e:
        bar.close()
        bar_file.close()
        hint = " (--verbose shows the exporter's own output)" if exporting and not \
            args.verbose else ''
        print(f'sam2real export: error: {e}{hint}', file=sys.stderr)
        return 2
    bar.close()
    bar_file.close()
    size_mb = os.path.getsize(args.out) / 1e6
    print(f'wrote {args.out} ({size_mb:.1f} MB, profile {cfg.name}, input '
          f'{res["input_size"][0]}x{res["input_size"][1]}, {len(names)} classes, '
          f'D={cfg.feature_dim})')
    if res['max_abs_diff_logits'] is not None:
        print(f'onnxruntime vs torch: max abs diff logits {res["max_abs_diff_logits"]:.3g}, '
              f'features {res["max_abs_diff_features"]:.3g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
