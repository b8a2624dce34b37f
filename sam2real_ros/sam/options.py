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
:class:`SamOptions`: everything that configures SAM segmentation, in one object.

The CLI (``sam2real segment``), the ``sam_worker`` node and the benchmarks build one
``SamOptions`` and hand it to :func:`sam2real_ros.sam.segmenters.make_segmenter`, which hands it
to :class:`~sam2real_ros.sam.segmenters.SamSegmenter` and
:class:`~sam2real_ros.sam.sam_fast.FastAutomaticMaskGenerator`. The engine the fast path runs on
(``backend``) is resolved once here (:meth:`SamOptions.resolve_backend`); the backend objects
themselves live in :mod:`sam2real_ros.sam.sam_fast`. Plain Python: importing this module does
not import torch.
"""
from dataclasses import dataclass, field, replace
from typing import Optional

# SamAutomaticMaskGenerator defaults (chosen for ViT-H) with the paper's 24 points per side.
SAM_DEFAULTS = {'points_per_side': 24, 'points_per_batch': 64, 'pred_iou_thresh': 0.88,
                'stability_score_thresh': 0.95, 'stability_score_offset': 1.0,
                'box_nms_thresh': 0.7, 'crop_n_layers': 0, 'crop_nms_thresh': 0.7,
                'crop_overlap_ratio': 512 / 1500, 'crop_n_points_downscale_factor': 1,
                'min_mask_region_area': 0}
BACKENDS = ('auto', 'torch', 'onnx')
DTYPES = ('float32', 'bfloat16', 'float16')
QUANTIZE = (None, 'int8')


@dataclass(frozen=True)
class SamOptions:
    """
    How SAM segments a frame: model, engine and the automatic mask generator's settings.

    Arguments:
    ---------
      model_type (str): SAM backbone (``vit_h``, ``vit_l``, ``vit_b``).
      checkpoint (str or None): weights file (None: ``$SAM_CHECKPOINT`` or
        ``~/.cache/sam2real/<file>``).
      device (str): ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N``.
      backend (str): the fast path's engine: ``torch`` (the model's device), ``onnx``
        (onnxruntime on the CPU; graphs exported once per set of weights into ``cache_dir``,
        minutes for ViT-H) or ``auto`` (onnx on a CPU when every option allows it, else torch).
      fast (bool): the faster generator (same masks); False: segment_anything's own.
      encoder_dtype, decoder_dtype (str): ``float32`` (exact), ``bfloat16`` or ``float16``
        (torch backend).
      quantize (str or None): ``int8`` encoder (onnx backend; changes the masks).
      sdpa (bool): image encoder attention through scaled-dot-product attention (torch).
      compile_encoder (bool): ``torch.compile`` the image encoder (torch).
      upsample_chunk (int): masks upsampled to full resolution at once.
      decoder_batch (int or None): prompts decoded at once (None: 16 on a CPU, 64 on a GPU).
      cache_dir (str or None): ONNX graph cache (None: ``~/.cache/sam2real/onnx``).
      threads (int or None): onnxruntime threads (None: torch's thread count).
      generator (dict): ``SamAutomaticMaskGenerator`` settings over :data:`SAM_DEFAULTS`.

    Raises
    ------
      ValueError: an unknown choice or generator setting (the message names it).

    """

    model_type: str = 'vit_h'
    checkpoint: Optional[str] = None
    device: str = 'auto'
    backend: str = 'auto'
    fast: bool = True
    encoder_dtype: str = 'float32'
    decoder_dtype: str = 'float32'
    quantize: Optional[str] = None
    sdpa: bool = False
    compile_encoder: bool = False
    upsample_chunk: int = 32
    decoder_batch: Optional[int] = None
    cache_dir: Optional[str] = None
    threads: Optional[int] = None
    generator: dict = field(default_factory=dict)

    def __post_init__(self):
        """Check the choices and the generator settings."""
        for name, value, allowed in (('backend', self.backend, BACKENDS),
                                     ('encoder_dtype', self.encoder_dtype, DTYPES),
                                     ('decoder_dtype', self.decoder_dtype, DTYPES),
                                     ('quantize', self.quantize, QUANTIZE)):
            if value not in allowed:
                raise ValueError(f'SAM {name} must be one of {list(allowed)}, got {value!r}')
        unknown = sorted(set(self.generator) - set(SAM_DEFAULTS))
        if unknown:
            raise ValueError(f'unknown SAM generator settings: {unknown} (known: '
                             f'{sorted(SAM_DEFAULTS)})')

    def generator_settings(self):
        """Return the generator's settings: :data:`SAM_DEFAULTS` with ``generator`` over it."""
        return dict(SAM_DEFAULTS, **self.generator)

    def with_changes(self, **changes):
        """Return a copy with some fields changed."""
        return replace(self, **changes)

    def resolve_backend(self, device_type):
        """
        Return the fast path's engine (``torch`` or ``onnx``) for a model on ``device_type``.

        ``auto`` picks onnx on a CPU unless an option needs torch (a reduced precision, sdpa,
        compile). Raises ValueError where the options contradict the backend.
        """
        torch_only = sorted(name for name, on in (
            ('encoder_dtype', self.encoder_dtype != 'float32'),
            ('decoder_dtype', self.decoder_dtype != 'float32'),
            ('sdpa', self.sdpa), ('compile_encoder', self.compile_encoder)) if on)
        backend = self.backend
        if backend == 'auto':
            backend = 'onnx' if device_type == 'cpu' and not torch_only else 'torch'
        if backend == 'onnx':
            if torch_only:
                raise ValueError(f'{", ".join(torch_only)}: torch backend only (backend is '
                                 'onnx)')
            if device_type != 'cpu':
                raise ValueError('backend onnx runs on the CPU (onnxruntime); the model is on '
                                 f'{device_type}: use backend torch')
        elif self.quantize:
            raise ValueError('quantize needs backend onnx')
        return backend
