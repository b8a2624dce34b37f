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
SAM's image encoder and prompt decoder as onnxruntime sessions (the fast path on a CPU).

:class:`OnnxSam` exports three graphs once per set of weights and runs them with onnxruntime:

* ``encoder.onnx``: the image encoder as the library defines it (1x3x1024x1024 -> 1xCx64x64);
* ``decoder_tokens.onnx``: :class:`~sam2real_ros.sam.sam_fast.PromptBatchDecoder`'s transformer
  and IoU head for a batch of prompts (prompt tokens + per-image state -> IoU, tokens, image
  tokens);
* ``decoder_masks.onnx``: its mask upsampling head for the prompts whose masks are needed.

The graphs go into ``<cache>/<key>/`` where ``key`` is a hash of the model's weights (and of
the export format), so a changed checkpoint gets new graphs and an unchanged one is exported
once. ``<cache>`` is ``cache_dir``, else ``$SAM2REAL_CACHE/onnx``, else
``~/.cache/sam2real/onnx``. Files are written into a temporary folder and moved into place, so
a killed export leaves nothing half-written; weights live in one ``.onnx.data`` file per graph
(ViT-H's encoder is over protobuf's 2 GB limit).

``quantize='int8'`` additionally writes ``encoder_int8.onnx`` (onnxruntime dynamic quantization
of the encoder's matrix products, int8 weights): faster on a CPU, but it changes the masks, so
it is reported separately by ``benchmarks/sam_worker.py``.
"""
import hashlib
import logging
import os
import tempfile
import time

import numpy as np
import torch

FORMAT = 1          # bump when an exported graph changes: old cache entries are not reused
OPSET = 17
QUANTIZE = (None, 'int8')


def cache_root(cache_dir=None):
    """Return the folder that holds one sub-folder of graphs per set of weights."""
    if cache_dir:
        return os.fspath(cache_dir)
    if os.environ.get('SAM2REAL_CACHE'):
        return os.path.join(os.environ['SAM2REAL_CACHE'], 'onnx')
    return os.path.join(os.path.expanduser('~'), '.cache', 'sam2real', 'onnx')


def weights_key(sam):
    """Return a hex key of the model's weights, image size and the export format."""
    h = hashlib.sha1(f'sam2real-onnx-{FORMAT}-{sam.image_encoder.img_size}'.encode())
    for name, t in sorted(sam.state_dict().items()):
        t = t.detach().to('cpu').contiguous()
        h.update(f'{name}:{t.dtype}:{tuple(t.shape)}'.encode())
        h.update(memoryview(t.view(torch.uint8).numpy()) if t.numel() else b'')
    return h.hexdigest()[:20]


class _Encoder(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, image):
        return self.encoder(image)


class _Masks(torch.nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, q, x):
        return self.decoder.masks(q, x)


def _save_with_external_data(src, dst_folder, name):
    """Re-save ``src`` as ``dst_folder/name`` with all weights in ``name.data``."""
    import onnx
    model = onnx.load(src)
    onnx.save_model(model, os.path.join(dst_folder, name), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=name + '.data', size_threshold=1024)


def _export_graph(module, args, names_in, names_out, dynamic, dst_folder, name):
    """Export ``module`` to ``dst_folder/name`` (+ ``.data``) with the TorchScript exporter."""
    import warnings
    with tempfile.TemporaryDirectory(dir=dst_folder) as tmp:
        raw = os.path.join(tmp, 'raw.onnx')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')   # tracer and deprecation warnings of the exporter
            torch.onnx.export(module, args, raw, dynamo=False, opset_version=OPSET,
                              input_names=names_in, output_names=names_out,
                              dynamic_axes=dynamic, do_constant_folding=True)
        _save_with_external_data(raw, dst_folder, name)


def export(sam, decoder, folder, quantize=None, log=print):
    """
    Write the graphs :class:`OnnxSam` runs into ``folder`` unless they are there already.

    ``decoder`` is the ``PromptBatchDecoder`` of ``sam`` (passed in by ``sam_fast``, so that
    this module does not import it back).

    Returns
    -------
      (dict): graph name -> path (``encoder``, ``tokens``, ``masks``, ``encoder_int8``).

    """
    paths = {'encoder': 'encoder.onnx', 'tokens': 'decoder_tokens.onnx',
             'masks': 'decoder_masks.onnx'}
    if quantize == 'int8':
        paths['encoder_int8'] = 'encoder_int8.onnx'
    paths = {k: os.path.join(folder, v) for k, v in paths.items()}
    missing = [k for k, p in paths.items() if not os.path.isfile(p)]
    if not missing:
        return paths
    os.makedirs(folder, exist_ok=True)
    t0 = time.monotonic()
    log(f'exporting SAM to ONNX once for these weights ({", ".join(missing)}) into {folder}')
    sam.eval()
    dec = decoder.eval()
    size = sam.image_encoder.img_size
    with torch.no_grad():
        feats = torch.zeros(1, sam.prompt_encoder.embed_dim,
                            *sam.prompt_encoder.image_embedding_size)
        state = dec.image_state(feats)
        coords = torch.full((2, 1, 2), size / 2.0)
        tokens = dec.prompt_tokens(coords, torch.ones(2, 1, dtype=torch.int))
        _, q, x = dec(tokens, *state)
    with tempfile.TemporaryDirectory(dir=folder, prefix='.export-') as tmp:
        with torch.no_grad():
            if 'encoder' in missing:
                _export_graph(_Encoder(sam.image_encoder), (torch.zeros(1, 3, size, size),),
                              ['image'], ['features'], None, tmp, 'encoder.onnx')
            if 'tokens' in missing:
                _export_graph(dec, (tokens, *state), ['tokens', 'x0', 'pos', 'k0', 'v0', 'q0'],
                              ['iou', 'q', 'x'],
                              {'tokens': {0: 'b'}, 'iou': {0: 'b'}, 'q': {0: 'b'},
                               'x': {0: 'b'}}, tmp, 'decoder_tokens.onnx')
            if 'masks' in missing:
                _export_graph(_Masks(dec), (q, x), ['q', 'x'], ['masks'],
                              {'q': {0: 'b'}, 'x': {0: 'b'}, 'masks': {0: 'b'}}, tmp,
                              'decoder_masks.onnx')
        if 'encoder_int8' in missing:   # from the float encoder, exported now or before
            from onnxruntime.quantization import quantize_dynamic, QuantType
            src = tmp if 'encoder' in missing else folder
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)   # one warning per unquantizable tensor otherwise
            try:
                quantize_dynamic(os.path.join(src, 'encoder.onnx'),
                                 os.path.join(tmp, 'encoder_int8.onnx'),
                                 weight_type=QuantType.QInt8, use_external_data_format=True)
            finally:
                root.setLevel(level)
        # weights first, then the graph that names them: a graph file is only ever complete
        for k in missing:
            name = os.path.basename(paths[k])
            for f in sorted(os.listdir(tmp), key=lambda n: n.endswith('.onnx')):
                if f == name or (f.startswith(name) and f != name and not f.endswith('.onnx')):
                    os.replace(os.path.join(tmp, f), os.path.join(folder, f))
    log(f'exported in {time.monotonic() - t0:.0f} s')
    return paths


class OnnxSam:
    """
    Run a SAM model's encoder and :class:`PromptBatchDecoder` graphs in onnxruntime (CPU).

    The fast path's onnx backend object (the torch one: ``sam_fast.TorchBackend``; both have
    ``name``, ``decoder``, :meth:`encode`, :meth:`decode_tokens` and :meth:`decode_masks`).

    Arguments:
    ---------
      sam (Sam): the model (its weights are hashed to find or make the graphs).
      decoder (PromptBatchDecoder): ``sam``'s reordered mask decoder (exported as two graphs).
      cache_dir (str): where the graphs go (see :func:`cache_root`).
      threads (int): onnxruntime intra-op threads (default: torch's thread count).
      quantize (str): None or 'int8' (dynamically quantized encoder; changes the masks).
      log (callable): where the one-time export notice goes.

    """

    name = 'onnx'

    def __init__(self, sam, decoder, cache_dir=None, threads=None, quantize=None, log=print):
        import onnxruntime as ort
        if quantize not in QUANTIZE:
            raise ValueError(f'quantize must be None or int8, got {quantize!r}')
        self.decoder = decoder
        self.folder = os.path.join(cache_root(cache_dir), weights_key(sam))
        self.paths = export(sam, decoder, self.folder, quantize, log)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def session(name):
            return ort.InferenceSession(self.paths[name], so, providers=['CPUExecutionProvider'])

        self.encoder = session('encoder_int8' if quantize == 'int8' else 'encoder')
        self.tokens = session('tokens')
        self.masks = session('masks')

    def encode(self, image):
        """Return the 1xCxhxw embedding of a preprocessed 1x3xSxS image tensor."""
        x = np.ascontiguousarray(image.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.encoder.run(None, {'image': x})[0])

    def decode_tokens(self, tokens, state):
        """Run :meth:`PromptBatchDecoder.forward`; returns (iou, q, x) tensors."""
        names = ('tokens', 'x0', 'pos', 'k0', 'v0', 'q0')
        feed = {n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
                for n, t in zip(names, (tokens, *state))}
        return tuple(torch.from_numpy(a) for a in self.tokens.run(None, feed))

    def decode_masks(self, q, x):
        """Run :meth:`PromptBatchDecoder.masks`; returns Bx3x4hx4w low-res logits."""
        feed = {'q': np.ascontiguousarray(q.numpy()), 'x': np.ascontiguousarray(x.numpy())}
        return torch.from_numpy(self.masks.run(None, feed)[0])
