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
Inference engine: one RGB frame in, a label image (and dense features) out.

``SegmentationEngine.load(path)`` opens an exported ``.onnx`` model (onnxruntime, with the
TensorRT (fp16, engine cache) -> CUDA -> CPU execution providers that this onnxruntime build
offers, see :func:`choose_providers`) or a training checkpoint ``.pt`` (PyTorch, EMA weights).
``predict(rgb)`` resizes the frame to the model's inference size, normalizes it, runs the
network, takes the argmax at inference resolution -- inside the graph when the model has the
``labels`` output, so only labels are copied from the GPU -- and nearest-upsamples the labels
to the frame size. This module never imports rclpy.
"""
import dataclasses
import json
import os

import numpy as np

from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.common.labels import MAX_CLASSES
from sam2real_ros.inference.export import model_metadata
from sam2real_ros.modeling.preprocessing import (check_rgb, preprocess, resize_features,
                                                 resize_labels)

GPU_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider')


class ModelLoadError(Sam2realError, ValueError):
    """The model file is missing, unreadable, or not a sam2real model."""


@dataclasses.dataclass
class Prediction:
    """
    Result of :meth:`SegmentationEngine.predict`.

    ``labels``: HxW uint8 class indices at the input frame size (0 = background).
    ``features``: HxWxD float32 dense features at the input frame size, or None.
    """

    labels: np.ndarray
    features: np.ndarray = None


def _argmax_uint8(logits_chw):
    return np.argmax(logits_chw, axis=0).astype(np.uint8)


def trt_cache_dir(model_path, base=None):
    """
    Return the TensorRT engine cache folder for this model file's content.

    onnxruntime names cached engines by the model's path and graph, not by its weights: a
    model replaced in place (hot reload after a new training run) would reuse the engine built
    for the old weights. One folder per content hash (SHA-256 of the file, 16 hex digits) under
    ``base`` (default ``$SAM2REAL_TRT_CACHE`` or ``~/.cache/sam2real/trt``) avoids that.
    """
    import hashlib
    base = base or os.environ.get('SAM2REAL_TRT_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'sam2real', 'trt')
    digest = hashlib.sha256()
    with open(model_path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return os.path.join(base, digest.hexdigest()[:16])


def choose_providers(available, device='auto', fp16=None, cache_dir=None):
    """
    Choose onnxruntime execution providers (with options) for a device.

    TensorRT (fp16 engines when ``fp16``, engine and timing caches in ``cache_dir``) first, then
    CUDA, then CPU, among those ``available`` offers; ``device='cpu'`` uses the CPU only.

    Arguments:
    ---------
      available (list[str]): ``onnxruntime.get_available_providers()``.
      device (str): ``'auto'`` (GPU providers when available), ``'cpu'`` or ``'cuda'``.
      fp16 (bool or None): TensorRT half precision; None = on when TensorRT is used.
      cache_dir (str or None): TensorRT engine cache folder (see :func:`trt_cache_dir`);
        None disables the cache.

    Returns
    -------
      (list, bool): providers for ``InferenceSession`` (names, or ``(name, options)``), and
      whether fp16 is in use.

    Raises
    ------
      ModelLoadError: ``device='cuda'`` without a GPU provider, or an unknown device.

    """
    if device not in ('auto', 'cpu', 'cuda'):
        raise ModelLoadError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    gpu = [p for p in GPU_PROVIDERS if p in available] if device != 'cpu' else []
    if device == 'cuda' and not gpu:
        raise ModelLoadError(f'device cuda requested but this onnxruntime offers only '
                             f'{list(available)} (install onnxruntime-gpu instead of '
                             'onnxruntime)')
    use_trt = 'TensorrtExecutionProvider' in gpu
    fp16 = use_trt if fp16 is None else bool(fp16) and use_trt
    providers = []
    for name in gpu:
        if name == 'TensorrtExecutionProvider':
            options = {'trt_fp16_enable': fp16}
            if cache_dir:
                options.update({'trt_engine_cache_enable': True,
                                'trt_engine_cache_path': cache_dir,
                                'trt_timing_cache_enable': True,
                                'trt_timing_cache_path': cache_dir})
            providers.append((name, options))
        else:
            providers.append(name)
    providers.append('CPUExecutionProvider')
    return providers, fp16


class SegmentationEngine:
    """
    Run a sam2real model on single RGB frames (see :meth:`load`).

    Attributes
    ----------
      class_names (list[str]): one per class, index 0 = background.
      metadata (dict): the model's metadata (ONNX ``metadata_props`` or built from the
        checkpoint's ``model_cfg``), values as strings.
      input_size (tuple): (height, width) the network runs at, or None (frame size).
      backend (str): ``'onnxruntime'`` or ``'torch'``.
      providers (list[str]): onnxruntime execution providers in use, or ``[device]`` for torch.
      fp16 (bool): whether half precision is in use.
      labels_in_graph (bool): the argmax runs inside the model (ONNX ``labels`` output, or on
        the torch device), so only labels are copied to the host; False for ONNX models
        exported before the ``labels`` output existed (argmax of the logits on the host).

    """

    def __init__(self, run, metadata, backend, providers, fp16):
        self._run = run
        self.metadata = metadata
        self.class_names = json.loads(metadata['class_names'])
        size = json.loads(metadata.get('input_size', 'null'))
        self.input_size = tuple(size) if size else None
        self.mean = json.loads(metadata['mean'])
        self.std = json.loads(metadata['std'])
        self.feature_dim = int(metadata.get('feature_dim', 3))
        self.backend = backend
        self.providers = providers
        self.fp16 = fp16
        self.labels_in_graph = False
        if not 1 <= len(self.class_names) <= MAX_CLASSES:
            raise ModelLoadError(f'model has {len(self.class_names)} classes: labels are mono8, '
                                 f'at most {MAX_CLASSES} classes are supported')

    @property
    def num_classes(self):
        """Return the number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @classmethod
    def load(cls, path, backend='auto', device='auto', fp16=None, threads=None,
             allow_spinning=True):
        """
        Open a model file.

        Arguments:
        ---------
          path (str): ``.onnx`` (exported by ``sam2real export``) or ``.pt`` checkpoint.
          backend (str): ``'auto'`` (by file extension), ``'onnxruntime'`` or ``'torch'``.
          device (str): ``'auto'`` (GPU when available), ``'cpu'`` or ``'cuda'``.
          fp16 (bool): half precision; None = on for GPU, off for CPU. onnxruntime uses it
            through TensorRT (``trt_fp16_enable``); torch through autocast on CUDA.
          threads (int): CPU threads for inference (None = library default).
          allow_spinning (bool): onnxruntime worker threads busy-wait between ops (lowest
            latency on idle cores). Set False when other busy processes share the CPU: with 2
            threads on 2 cores and one core busy, spinning doubled the median latency.

        Returns
        -------
          (SegmentationEngine)

        Raises
        ------
          ModelLoadError: missing/unreadable file, no sam2real metadata, > 256 classes,
            unavailable device or backend.

        """
        path = os.fspath(path)
        if backend not in ('auto', 'onnxruntime', 'torch'):
            raise ModelLoadError(f"backend must be 'auto', 'onnxruntime' or 'torch', "
                                 f'got {backend!r}')
        if device not in ('auto', 'cpu', 'cuda'):
            raise ModelLoadError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if threads is not None and int(threads) < 1:
            raise ModelLoadError(f'threads must be >= 1, got {threads}')
        if not os.path.isfile(path):
            raise ModelLoadError(f'model file not found: {path}')
        is_onnx = path.lower().endswith('.onnx')
        if backend == 'auto':
            backend = 'onnxruntime' if is_onnx else 'torch'
        if backend == 'onnxruntime' and not is_onnx:
            raise ModelLoadError(f'the onnxruntime backend needs an .onnx file (export it with '
                                 f'`sam2real export`), got {path}')
        if backend == 'torch' and is_onnx:
            raise ModelLoadError(f'the torch backend needs a .pt checkpoint, got {path}')
        if backend == 'onnxruntime':
            return cls._load_onnx(path, device, fp16, threads, allow_spinning)
        return cls._load_torch(path, device, fp16, threads)

    @classmethod
    def _load_onnx(cls, path, device, fp16, threads, allow_spinning=True):
        import onnxruntime as ort
        available = ort.get_available_providers()
        gpu_wanted = device != 'cpu' and any(p in available for p in GPU_PROVIDERS)
        cache = (trt_cache_dir(path) if gpu_wanted and 'TensorrtExecutionProvider' in available
                 else None)
        providers, fp16 = choose_providers(available, device, fp16, cache)
        if cache:
            os.makedirs(cache, exist_ok=True)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        if not allow_spinning:
            opts.add_session_config_entry('session.intra_op.allow_spinning', '0')
            opts.add_session_config_entry('session.inter_op.allow_spinning', '0')
        try:
            sess = ort.InferenceSession(path, sess_options=opts, providers=providers)
        except Exception as e:
            raise ModelLoadError(f'not a readable ONNX model: {path} ({type(e).__name__}: '
                                 f'{str(e).strip().splitlines()[0] if str(e).strip() else ""})'
                                 ) from None
        in_use = sess.get_providers()
        if device == 'cuda' and not any(p in in_use for p in GPU_PROVIDERS):
            raise ModelLoadError(f'device cuda requested but onnxruntime could not start a GPU '
                                 f'provider (in use: {in_use}; are the CUDA libraries '
                                 'installed?)')
        fp16 = fp16 and 'TensorrtExecutionProvider' in in_use
        meta = dict(sess.get_modelmeta().custom_metadata_map)
        if 'sam2real_version' not in meta or 'class_names' not in meta:
            raise ModelLoadError(f'ONNX model without sam2real metadata: {path} (export it with '
                                 f'`sam2real export`)')
        inputs = [i.name for i in sess.get_inputs()]
        outputs = [o.name for o in sess.get_outputs()]
        if inputs != ['image'] or 'logits' not in outputs:
            raise ModelLoadError(f'ONNX model {path} has inputs {inputs} / outputs {outputs}; '
                                 f"expected input 'image' and outputs 'logits', 'features'")
        has_features = 'features' in outputs
        has_labels = 'labels' in outputs  # ArgMax in the graph (models exported since #11)
        first = 'labels' if has_labels else 'logits'

        def run(x, want_features):
            names = [first, 'features'] if want_features and has_features else [first]
            outs = sess.run(names, {'image': x})
            labels = outs[0][0] if has_labels else _argmax_uint8(outs[0][0])
            if labels.dtype != np.uint8:  # another exporter's int64 ArgMax: < 256 classes
                labels = labels.astype(np.uint8)
            return labels, (outs[1][0] if len(outs) > 1 else None)

        try:
            engine = cls(run, meta, 'onnxruntime', in_use, fp16)
        except (KeyError, ValueError) as e:
            raise ModelLoadError(f'ONNX model {path}: bad sam2real metadata ({e})') from None
        engine.labels_in_graph = has_labels
        return engine

    @classmethod
    def _load_torch(cls, path, device, fp16, threads):
        import torch

        from sam2real_ros.modeling.model import model_from_checkpoint
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if device == 'cuda' and not torch.cuda.is_available():
            raise ModelLoadError('device cuda requested but torch.cuda.is_available() is False')
        if threads:
            torch.set_num_threads(int(threads))
        try:
            net, cfg, names = model_from_checkpoint(path, weights='ema')
        except ValueError as e:
            raise ModelLoadError(str(e)) from None
        if len(names) > MAX_CLASSES:
            raise ModelLoadError(f'{path}: {len(names)} classes, at most {MAX_CLASSES} '
                                 f'(labels are mono8)')
        net = net.to(device)
        fp16 = (device == 'cuda') if fp16 is None else bool(fp16)
        use_autocast = fp16 and device == 'cuda'
        meta = model_metadata(cfg, names, cfg.input_size)

        def run(x, want_features):
            with torch.no_grad(), torch.autocast('cuda', torch.float16, enabled=use_autocast):
                logits, feats = net(torch.from_numpy(x).to(device))
                labels = logits[0].argmax(0).to(torch.uint8)  # on the device: only labels move
            feats = feats[0].float().cpu().numpy() if want_features else None
            return labels.cpu().numpy(), feats

        engine = cls(run, meta, 'torch', [device], use_autocast)
        engine.labels_in_graph = True
        return engine

    def warmup(self, runs=2):
        """
        Run the network ``runs`` times on a black frame of its input size (labels only).

        A fresh onnxruntime / TensorRT / CUDA session allocates its buffers (and may tune
        kernels) on its first runs; :class:`sam2real_ros.inference.runtime.HotModel` calls this
        in its loading thread, so the first camera frame a new model sees is as fast as the rest.
        """
        h, w = self.input_size or (64, 64)
        black = np.zeros((int(h), int(w), 3), np.uint8)
        for _ in range(int(runs)):
            self.predict(black, want_features=False)

    def predict(self, rgb, want_features=True):
        """
        Segment one frame.

        Arguments:
        ---------
          rgb (np.ndarray): HxWx3 uint8 RGB.
          want_features (bool): also return the dense features (skipped when False).

        Returns
        -------
          (Prediction): ``labels`` HxW uint8 at the frame size (argmax at inference
          resolution, nearest-upsampled); ``features`` HxWxD float32 at the frame size
          (bilinear) or None.

        """
        check_rgb(rgb)
        hw = rgb.shape[:2]
        x = preprocess(rgb, self.mean, self.std, self.input_size)
        labels, feats = self._run(x, want_features)
        labels = resize_labels(labels, hw)
        if feats is not None:
            feats = resize_features(feats.transpose(1, 2, 0), hw)
        return Prediction(labels=labels, features=feats)
