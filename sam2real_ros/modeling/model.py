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
The shared segmentation network: ConvNeXt + FPN/PPM decoder + segmentation and feature heads.

Architecture (paper Sec. III-B..D, Fig. 3, UPerNet-style): a ``timm`` ConvNeXt backbone with
``features_only=True`` gives 4 stages (strides 4, 8, 16, 32). A Pyramid Pooling Module (bins
``ppm_bins``) sits on the top stage; lateral 1x1 convs and a top-down path form an FPN of
``fpn_channels``; every FPN level is resized to ``fusion_stride`` (4 or 8), concatenated and
fused by one ``fusion_kernel`` conv into ``fusion_channels``. The segmentation head is a 1x1
conv to class logits; the dense feature head is ``fusion_channels -> feature_hidden -> D``
(GELU between). Both outputs are bilinearly upsampled to the input resolution. All layers use
GELU. The PPM pooling is an exact precomputed matrix product (identical to
``adaptive_avg_pool2d``), so it exports to ONNX for any input size.

This module never imports rclpy.
"""
import dataclasses
import math
import os

import numpy as np
from sam2real_ros.common.io_utils import read_yaml
from sam2real_ros.common.labels import MAX_CLASSES
import torch
from torch import nn
import torch.nn.functional as F

PROFILE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'profiles')
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass
class ModelConfig:
    """
    Everything needed to rebuild the network (stored in checkpoints as a plain dict).

    ``input_size`` is the (height, width) the network runs at: camera frames are resized to it
    by :func:`preprocess` and labels are upsampled back to the camera size by the engine.
    ``None`` means full resolution (the frame's own size).
    """

    name: str = 'custom'
    backbone: str = 'convnext_atto'
    pretrained: bool = False
    pretrained_path: str = None
    num_classes: int = 2
    fpn_channels: int = 128
    ppm_bins: tuple = (1, 2, 3, 6)
    fusion_channels: int = 256
    fusion_stride: int = 8
    fusion_kernel: int = 1
    feature_dim: int = 3
    feature_hidden: int = 256
    norm: str = 'bn'
    input_size: tuple = (240, 320)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __post_init__(self):
        """Normalize list fields to tuples and validate values (ValueError naming the field)."""
        for field in ('num_classes', 'fpn_channels', 'fusion_channels', 'fusion_stride',
                      'fusion_kernel', 'feature_dim', 'feature_hidden'):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f'model config: {field} must be an integer, got {value!r}')
            setattr(self, field, int(value))
        if not isinstance(self.pretrained, bool):
            raise ValueError(f'model config: pretrained must be true or false, '
                             f'got {self.pretrained!r}')
        self.ppm_bins = tuple(int(b) for b in self.ppm_bins)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if self.input_size is not None:
            self.input_size = tuple(int(v) for v in self.input_size)
            if len(self.input_size) != 2 or min(self.input_size) < 32:
                raise ValueError(f'model config: input_size must be [height, width] >= 32 or '
                                 f'null, got {list(self.input_size)}')
        if not str(self.backbone).startswith('convnext'):
            raise ValueError(f'model config: backbone must be a timm convnext_* model, '
                             f'got {self.backbone!r}')
        if self.fusion_stride not in (4, 8):
            raise ValueError(f'model config: fusion_stride must be 4 or 8, '
                             f'got {self.fusion_stride}')
        if self.fusion_kernel not in (1, 3):
            raise ValueError(f'model config: fusion_kernel must be 1 or 3, '
                             f'got {self.fusion_kernel}')
        if self.norm not in ('bn', 'gn', 'none'):
            raise ValueError(f"model config: norm must be 'bn', 'gn' or 'none', got {self.norm!r}")
        if not 1 <= int(self.num_classes) <= MAX_CLASSES:
            raise ValueError(f'model config: num_classes must be in 1..{MAX_CLASSES} (labels are '
                             f'mono8), got {self.num_classes}')
        for field in ('fpn_channels', 'fusion_channels', 'feature_dim', 'feature_hidden'):
            if int(getattr(self, field)) < 1:
                raise ValueError(f'model config: {field} must be >= 1, '
                                 f'got {getattr(self, field)}')
        if not self.ppm_bins or min(self.ppm_bins) < 1:
            raise ValueError(f'model config: ppm_bins must be positive integers, '
                             f'got {list(self.ppm_bins)}')
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError('model config: mean and std must be 3 values (std > 0)')

    def to_dict(self):
        """Plain dict (lists, no tuples) for YAML/JSON/checkpoints."""
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, d, source='model config'):
        """Build from a dict; unknown keys give a ValueError naming them and ``source``."""
        if not isinstance(d, dict):
            raise ValueError(f'{source}: expected a mapping of model settings, got '
                             f'{type(d).__name__}')
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f'{source}: unknown model setting(s) {unknown}; '
                             f'known: {sorted(known)}')
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise ValueError(f'{source}: {e}') from None


def list_profiles():
    """Return the names of the bundled profiles (``sam2real_ros/modeling/profiles/*.yaml``)."""
    return sorted(f[:-5] for f in os.listdir(PROFILE_DIR) if f.endswith('.yaml'))


def load_profile(name_or_path, **overrides):
    """
    Load a named profile (``'paper'``, ``'fast'``) or a YAML file into a :class:`ModelConfig`.

    Arguments:
    ---------
      name_or_path (str): bundled profile name or path to a YAML file of ModelConfig fields.
      overrides: ModelConfig fields that replace the profile's values (e.g. ``num_classes``).

    Returns
    -------
      (ModelConfig): with ``name`` set to the profile name unless the file sets one.

    """
    path = os.fspath(name_or_path)
    if not (path.endswith(('.yaml', '.yml')) or os.sep in path):
        candidate = os.path.join(PROFILE_DIR, path + '.yaml')
        if not os.path.isfile(candidate):
            raise ValueError(f'unknown model profile {path!r}; bundled profiles: '
                             f'{list_profiles()} (or give a path to a .yaml file)')
        path = candidate
    data = read_yaml(path, 'model profile') or {}
    if not isinstance(data, dict):
        raise ValueError(f'model profile {path}: expected a mapping of model settings')
    data.setdefault('name', os.path.splitext(os.path.basename(path))[0])
    data.update(overrides)
    return ModelConfig.from_dict(data, source=f'model profile {path}')


def _norm(kind, channels):
    if kind == 'bn':
        return nn.BatchNorm2d(channels)
    if kind == 'gn':
        # Up to 32 groups with >= 2 channels each: a group never normalizes a single value
        # (the 1x1 PPM bin at batch size 1).
        return nn.GroupNorm(math.gcd(32, max(1, channels // 2)), channels)
    return nn.Identity()


class ConvNormAct(nn.Sequential):
    """Conv2d (no bias unless norm is 'none') + norm + GELU."""

    def __init__(self, cin, cout, kernel, norm):
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=norm == 'none'),
                         _norm(norm, cout), nn.GELU())


def adaptive_pool_matrix(size, bins):
    """Build the ``bins x size`` float32 matrix of 1-D ``adaptive_avg_pool`` (numpy)."""
    m = np.zeros((bins, size), np.float32)
    for i in range(bins):
        start = (i * size) // bins
        end = -((-(i + 1) * size) // bins)  # ceil
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d_exact(x, bins):
    """
    ``F.adaptive_avg_pool2d(x, bins)`` as two matrix products (exports for any size).

    Arguments:
    ---------
      x (torch.Tensor): BxCxHxW.
      bins (int): output size (bins x bins).

    Returns
    -------
      (torch.Tensor): BxCxbinsxbins, same dtype as ``x``.

    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    mh = torch.from_numpy(adaptive_pool_matrix(h, bins)).to(x.device, x.dtype)
    mw = torch.from_numpy(adaptive_pool_matrix(w, bins)).to(x.device, x.dtype)
    return torch.matmul(torch.matmul(mh, x), mw.t())


class PPM(nn.Module):
    """Pyramid Pooling Module: pool to each bin size, 1x1 conv, upsample, concat, 3x3 conv."""

    def __init__(self, cin, cout, bins, norm):
        super().__init__()
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(ConvNormAct(cin, cout, 1, norm) for _ in self.bins)
        self.bottleneck = ConvNormAct(cin + len(self.bins) * cout, cout, 3, norm)

    def forward(self, x):
        """Map BxCinxHxW -> BxCoutxHxW."""
        size = x.shape[-2:]
        outs = [x]
        for b, stage in zip(self.bins, self.stages):
            y = stage(adaptive_avg_pool2d_exact(x, b))
            outs.append(F.interpolate(y, size=size, mode='bilinear', align_corners=False))
        return self.bottleneck(torch.cat(outs, 1))


def _hub_reachable(timeout=3.0):
    """Whether the Hugging Face hub (timm's weight source) accepts a TCP connection."""
    import socket
    import urllib.parse
    host = urllib.parse.urlparse(os.environ.get('HF_ENDPOINT', 'https://huggingface.co'))
    try:
        socket.create_connection((host.hostname, host.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def create_backbone(cfg):
    """
    ``timm`` ConvNeXt with ``features_only`` (4 stages), random or pretrained weights.

    Raises RuntimeError with a clear message when pretrained weights cannot be obtained.
    """
    import timm
    kwargs = {'features_only': True, 'out_indices': (0, 1, 2, 3)}
    if cfg.pretrained_path:
        if not os.path.isfile(cfg.pretrained_path):
            raise RuntimeError(f'pretrained_path not found: {cfg.pretrained_path}')
        kwargs.update(pretrained=True, pretrained_cfg_overlay={'file': cfg.pretrained_path})
    else:
        kwargs.update(pretrained=bool(cfg.pretrained))
    hub_constants, was_offline = None, None
    if kwargs['pretrained'] and not cfg.pretrained_path and not _hub_reachable():
        # Load from the local cache only: fail fast instead of ~1 min of download retries.
        import huggingface_hub.constants as hub_constants
        was_offline, hub_constants.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE, True
    try:
        return timm.create_model(cfg.backbone, **kwargs)
    except Exception as e:  # network errors come in many types (OSError, HTTP errors, ...)
        if 'Unknown model' in str(e):
            raise ValueError(f'unknown timm backbone {cfg.backbone!r}') from None
        if not kwargs['pretrained']:
            raise
        if cfg.pretrained_path:
            raise RuntimeError(f'could not load pretrained weights for {cfg.backbone!r} from '
                               f'{cfg.pretrained_path}: {type(e).__name__}: {e}') from None
        raise RuntimeError(
            f'could not download pretrained weights for {cfg.backbone!r} '
            f'({type(e).__name__}: {e}). Without network access, download the timm weights '
            f'elsewhere and set pretrained_path to the local file, or set pretrained: false.'
        ) from None
    finally:
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = was_offline


class SegmentationNet(nn.Module):
    """
    ConvNeXt + UPerNet-style decoder with a segmentation head and a dense feature head.

    ``forward(x)`` with ``x`` Bx3xHxW float32 (normalized by ``cfg.mean/std``) returns
    ``(logits BxCxHxW, features BxDxHxW)``, both at the input resolution.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.backbone = create_backbone(cfg)
        chans = self.backbone.feature_info.channels()
        c, n = cfg.fpn_channels, cfg.norm
        self.ppm = PPM(chans[3], c, cfg.ppm_bins, n)
        self.lateral = nn.ModuleList(ConvNormAct(ch, c, 1, n) for ch in chans[:3])
        self.fpn_out = nn.ModuleList(ConvNormAct(c, c, 3, n) for _ in chans[:3])
        self.fusion = ConvNormAct(4 * c, cfg.fusion_channels, cfg.fusion_kernel, n)
        self.seg_head = nn.Conv2d(cfg.fusion_channels, cfg.num_classes, 1)
        self.feature_head = nn.Sequential(
            nn.Conv2d(cfg.fusion_channels, cfg.feature_hidden, 1), nn.GELU(),
            nn.Conv2d(cfg.feature_hidden, cfg.feature_dim, 1))

    def decode(self, x):
        """Bx3xHxW -> fused feature map Bx``fusion_channels``xH/sxW/s (s = fusion_stride)."""
        feats = self.backbone(x)
        levels = [None, None, None, self.ppm(feats[3])]
        for i in (2, 1, 0):
            lat = self.lateral[i](feats[i])
            up = F.interpolate(levels[i + 1], size=lat.shape[-2:], mode='bilinear',
                               align_corners=False)
            levels[i] = lat + up
        target = feats[self.cfg.fusion_stride // 8].shape[-2:]  # stride 4 -> 0, 8 -> 1
        if self.cfg.fusion_stride == 8:
            # Levels finer than the fusion stride are downsampled before their 3x3 output conv
            # (4x fewer MACs at stride 4; the result is resized to the fusion size anyway).
            levels[0] = F.interpolate(levels[0], size=target, mode='bilinear',
                                      align_corners=False)
        for i in range(3):
            levels[i] = self.fpn_out[i](levels[i])
        resized = [lv if lv.shape[-2:] == target else
                   F.interpolate(lv, size=target, mode='bilinear', align_corners=False)
                   for lv in levels]
        return self.fusion(torch.cat(resized, 1))

    def head(self, fused, output, size):
        """
        One head on the fused map, bilinearly upsampled to ``size``.

        Under autocast (``precision: bf16``) the feature head and its upsampling run in
        float32: the segment pooling loss (Eq. 3) needs the features' small within-segment
        spreads, which bfloat16's 8 bits would round away.

        Arguments:
        ---------
          fused (torch.Tensor): the output of :meth:`decode`.
          output (str): ``'logits'`` (segmentation head) or ``'features'`` (dense features).
          size (tuple): ``(H, W)`` of the input.

        Returns
        -------
          (torch.Tensor): BxCxHxW logits or BxDxHxW features.

        """
        if output == 'logits':
            out = self.seg_head(fused)
        elif torch.is_autocast_enabled(fused.device.type):
            with torch.autocast(fused.device.type, enabled=False):
                out = self.feature_head(fused.float())
        else:
            out = self.feature_head(fused)
        return F.interpolate(out, size=size, mode='bilinear', align_corners=False)

    def forward(self, x):
        """Return ``(logits BxCxHxW, features BxDxHxW)`` at the input resolution."""
        fused = self.decode(x)
        size = x.shape[-2:]
        return self.head(fused, 'logits', size), self.head(fused, 'features', size)


def build_model(cfg):
    """Build a :class:`SegmentationNet` from a :class:`ModelConfig` (or a plain dict)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return SegmentationNet(cfg)


def checkpoint_payload(model, cfg, class_names, ema_state=None, **extra):
    """
    Checkpoint dict for ``torch.save``: ``model``, ``ema``, ``model_cfg``, ``class_names``.

    Arguments:
    ---------
      model (SegmentationNet): its ``state_dict`` is stored under ``model``.
      cfg (ModelConfig): stored as a plain dict under ``model_cfg``.
      class_names (list[str]): one per class, index 0 = background; must match num_classes.
      ema_state (dict): EMA state_dict (``None`` stores the model weights again).
      extra: more entries (step, optimizer state, ...); plain types and tensors only.

    Returns
    -------
      dict: the checkpoint payload.

    """
    class_names = [str(c) for c in class_names]
    if len(class_names) != cfg.num_classes:
        raise ValueError(f'{len(class_names)} class names for a model with '
                         f'{cfg.num_classes} classes')
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ema = state if ema_state is None else {k: v.detach().cpu() for k, v in ema_state.items()}
    return dict(extra, model=state, ema=ema, model_cfg=cfg.to_dict(), class_names=class_names)


CHECKPOINT_EXPECTED = ('expected the checkpoint.pt that "sam2real train" writes (a torch file '
                       'with model and EMA weights, model_cfg and class_names)')


def load_checkpoint(path):
    """
    ``torch.load`` a checkpoint file (weights only) with clear errors naming the file.

    Raises
    ------
      ValueError: the file is missing or is not a sam2real checkpoint; the message says what
      the file was expected to be (never PyTorch's advice to load it with
      ``weights_only=False``, which would run code from the file).

    """
    import warnings

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f'checkpoint file not found: {path}')
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4 in the checkpoint"
            warnings.simplefilter('ignore')
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        if path.lower().endswith('.onnx'):
            why = 'it is an exported ONNX model, not a training checkpoint'
        elif 'weights only load failed' in str(e).lower():
            why = 'it holds Python objects besides tensors and plain values'
        else:
            why = f'not a torch checkpoint file ({type(e).__name__})'
        raise ValueError(f'{path} is not a sam2real checkpoint: {why}; '
                         f'{CHECKPOINT_EXPECTED}') from None
    if not isinstance(ckpt, dict) or 'model_cfg' not in ckpt or 'model' not in ckpt:
        raise ValueError(f'{path} is not a sam2real checkpoint: a torch file without model and '
                         "model_cfg entries (a bare state_dict or another project's "
                         f'checkpoint?); {CHECKPOINT_EXPECTED}')
    return ckpt


def model_from_checkpoint(path_or_dict, weights='ema'):
    """
    Rebuild the network from a checkpoint file or dict.

    Arguments:
    ---------
      path_or_dict (str | dict): checkpoint path or a :func:`checkpoint_payload` dict.
      weights (str): ``'ema'`` (falls back to ``'model'`` when the checkpoint has no EMA) or
        ``'model'``.

    Returns
    -------
      (SegmentationNet, ModelConfig, list[str]): model in eval mode on CPU, config, class names.

    """
    if weights not in ('ema', 'model'):
        raise ValueError(f"weights must be 'ema' or 'model', got {weights!r}")
    src = 'checkpoint dict'
    if isinstance(path_or_dict, dict):
        ckpt = path_or_dict
    else:
        src = os.fspath(path_or_dict)
        ckpt = load_checkpoint(src)
    cfg_dict = dict(ckpt['model_cfg'], pretrained=False, pretrained_path=None)
    cfg = ModelConfig.from_dict(cfg_dict, source=f'{src}: model_cfg')
    class_names = list(ckpt.get('class_names') or [f'class_{i}' for i in range(cfg.num_classes)])
    state = ckpt.get(weights) or ckpt['model']
    model = build_model(cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f'{src}: weights do not match model_cfg: '
                         f'{str(e).splitlines()[0]}') from None
    return model.eval(), cfg, class_names
