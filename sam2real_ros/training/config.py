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
Training configuration: :class:`TrainConfig`, YAML files and ``key=value`` overrides.

A config is nested dataclasses; YAML files under ``training/configs/`` set any subset of fields
and command-line overrides use dotted keys (``optim.lr=3e-4``, ``loss.beta=0.5``,
``data.real.seed=3``). Values are parsed as YAML scalars and type-checked against the field's
default; unknown keys raise :class:`ConfigError` naming the key and the known ones. Dataset specs
(``data.*``) and ``model`` are free-form mappings handed to ``datasets.py`` / ``model.py``.
"""
import dataclasses
import os

from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.common.io_utils import read_yaml
from sam2real_ros.common.labels import IGNORE_INDEX
import yaml

VARIANTS = ('synthetic_only', 'full', 'real_labels', 'pseudolabel')
PRECISIONS = ('fp32', 'bf16')


class ConfigError(Sam2realError, ValueError):
    """A config file or override is invalid (message names the file, key and value)."""


@dataclasses.dataclass
class DataConfig:
    """Dataset specs for ``datasets.build_labeled`` / ``build_unlabeled`` (mappings)."""

    synthetic: dict = dataclasses.field(
        default_factory=lambda: {'type': 'procedural', 'appearance': 'synthetic', 'seed': 0})
    real: dict = dataclasses.field(
        default_factory=lambda: {'type': 'procedural', 'appearance': 'real', 'seed': 1,
                                 'segments': 'fallback'})
    real_labeled: dict = None   # variant real_labels; defaults to ``real``
    eval: dict = dataclasses.field(  # noqa: A003 (the config key 'eval')
        default_factory=lambda: {'type': 'procedural', 'appearance': 'real', 'seed': 1000,
                                 'length': 100})
    eval_frames: int = 50       # held-out frames evaluated per epoch (0 = all)
    num_workers: int = 0        # DataLoader worker processes


@dataclasses.dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay (per iteration)."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    warmup_iters: int = 1000
    min_lr_ratio: float = 0.01  # final lr = lr * min_lr_ratio
    grad_clip: float = 0.0      # 0 = off


@dataclasses.dataclass
class LossConfig:
    """Eq. 6/9 hyperparameters (alpha, beta of Eq. 9, margin of Eq. 5) and Eq. 1 ignore label."""

    alpha: float = 0.05
    beta: float = 1.0
    margin: float = 0.5
    pairs: str = 'unordered'    # Eq. 5: mean over unordered pairs, or 'ordered' (twice that)
    ignore_index: int = IGNORE_INDEX


@dataclasses.dataclass
class LogConfig:
    """TensorBoard, CSV and image logging."""

    tensorboard: bool = True
    images_per_epoch: int = 4   # eval frames in images/epoch_XXX.png (0 = off)
    progress: bool = True       # tqdm bars


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; saved resolved as ``<out>/config.yaml``."""

    variant: str = 'full'
    model_profile: str = 'fast'
    model: dict = dataclasses.field(default_factory=dict)  # ModelConfig overrides
    image_size: list = None     # [h, w] training resolution; null = model input_size / native
    class_names: list = None    # null = taken from the synthetic dataset
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    log: LogConfig = dataclasses.field(default_factory=LogConfig)
    batch_size: int = 1
    real_batch_size: int = None  # real frames per iteration (real, real_labeled); None = same
    frames_per_epoch: int = 1500
    max_epochs: int = 300
    ema_decay: float = 0.999
    miou_last_k: int = 50
    include_background: bool = True
    init_checkpoint: str = None  # pseudolabel: synthetic-only checkpoint to start from
    seed: int = 0
    device: str = 'auto'        # auto | cpu | cuda
    precision: str = 'fp32'     # fp32 | bf16 (autocast of the network; losses and EMA in fp32)
    channels_last: bool = False  # NHWC memory format for the network and its input

    def validate(self):
        """Raise :class:`ConfigError` for values outside their range."""
        checks = [
            (self.variant in VARIANTS, 'variant', f'one of {list(VARIANTS)}'),
            (self.batch_size >= 1, 'batch_size', '>= 1'),
            (self.real_batch_size is None or self.real_batch_size >= 1, 'real_batch_size',
             '>= 1 or null'),
            (self.frames_per_epoch >= 1, 'frames_per_epoch', '>= 1'),
            (self.max_epochs >= 1, 'max_epochs', '>= 1'),
            (0.0 <= self.ema_decay < 1.0, 'ema_decay', 'in [0, 1)'),
            (self.miou_last_k >= 1, 'miou_last_k', '>= 1'),
            (self.optim.lr > 0, 'optim.lr', '> 0'),
            (self.optim.weight_decay >= 0, 'optim.weight_decay', '>= 0'),
            (self.optim.warmup_iters >= 0, 'optim.warmup_iters', '>= 0'),
            (0 <= self.optim.min_lr_ratio <= 1, 'optim.min_lr_ratio', 'in [0, 1]'),
            (self.loss.alpha >= 0, 'loss.alpha', '>= 0'),
            (0 <= self.loss.beta <= 2, 'loss.beta', 'in [0, 2] (Eq. 9)'),
            (self.loss.margin > 0, 'loss.margin', '> 0'),
            (self.loss.pairs in ('unordered', 'ordered'), 'loss.pairs', 'unordered or ordered'),
            (self.data.eval_frames >= 0, 'data.eval_frames', '>= 0'),
            (self.data.num_workers >= 0, 'data.num_workers', '>= 0'),
            (self.device in ('auto', 'cpu', 'cuda'), 'device', 'auto, cpu or cuda'),
            (self.precision in PRECISIONS, 'precision', ' or '.join(PRECISIONS)),
            (self.image_size is None or (len(self.image_size) == 2
                                         and min(self.image_size) >= 32),
             'image_size', '[height, width] >= 32 or null'),
        ]
        for ok, key, want in checks:
            if not ok:
                raise ConfigError(f'config: {key} must be {want}, got {get_key(self, key)!r}')
        if self.variant == 'pseudolabel' and not self.init_checkpoint:
            raise ConfigError('config: variant pseudolabel needs init_checkpoint (a '
                              'synthetic-only checkpoint, Sec. IV-E-b)')
        return self

    def to_dict(self):
        """Plain nested dict (for YAML and checkpoints)."""
        return dataclasses.asdict(self)


def get_key(cfg, dotted):
    """Value of a dotted key (``optim.lr``)."""
    obj = cfg
    for part in dotted.split('.'):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def _check_type(key, value, default, source):
    """Coerce ``value`` to the type of ``default`` where safe, else raise ConfigError."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, (list, dict)):
        if isinstance(value, type(default)):
            return value
    raise ConfigError(f'{source}: {key} must be of type {type(default).__name__}, '
                      f'got {value!r} ({type(value).__name__})')


_NULLABLE = {'image_size': list, 'class_names': list, 'init_checkpoint': str,
             'data.real_labeled': dict}


def _set(obj, key, value, prefix, source):
    """Set ``key`` (one level) on dataclass ``obj``; dataclass fields get merged recursively."""
    names = {f.name for f in dataclasses.fields(obj)}
    full = f'{prefix}{key}'
    if key not in names:
        raise ConfigError(f'{source}: unknown config key {full!r}; known keys at this level: '
                          f'{sorted(names)}')
    current = getattr(obj, key)
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise ConfigError(f'{source}: {full} must be a mapping, got {value!r}')
        for k, v in value.items():
            _set(current, str(k), v, f'{full}.', source)
        return
    if current is None and full in _NULLABLE and value is not None:
        if not isinstance(value, _NULLABLE[full]) or isinstance(value, bool):
            raise ConfigError(f'{source}: {full} must be {_NULLABLE[full].__name__} or null, '
                              f'got {value!r}')
    else:
        value = _check_type(full, value, current, source)
    setattr(obj, key, value)


def apply_mapping(cfg, data, source):
    """Merge a nested mapping (from YAML) into ``cfg``."""
    if data is None:
        return cfg
    if not isinstance(data, dict):
        raise ConfigError(f'{source}: expected a mapping of config keys, got '
                          f'{type(data).__name__}')
    for k, v in data.items():
        _set(cfg, str(k), v, '', source)
    return cfg


def apply_override(cfg, text):
    """Apply one ``dotted.key=value`` override (value parsed as a YAML scalar/list)."""
    if '=' not in text:
        raise ConfigError(f'override {text!r} is not of the form key=value')
    key, raw = text.split('=', 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f'override {text!r}: value is not valid YAML') from None
    obj, parts = cfg, key.strip().split('.')
    for i, part in enumerate(parts[:-1]):
        cur = getattr(obj, part, None) if not isinstance(obj, dict) else obj.get(part)
        if dataclasses.is_dataclass(cur):
            obj = cur
            continue
        # a free-form mapping (data.real, model): set the rest of the path inside it
        nested = {parts[-1]: value}
        for p in reversed(parts[i + 1:-1]):
            nested = {p: nested}
        base = cur if isinstance(cur, dict) else None
        if base is None:
            _set(obj, part, nested, '.'.join(parts[:i]) + ('.' if i else ''),
                 f'override {text!r}')
            return cfg
        _deep_merge(base, nested)
        return cfg
    _set(obj, parts[-1], value, '.'.join(parts[:-1]) + ('.' if len(parts) > 1 else ''),
         f'override {text!r}')
    return cfg


def _deep_merge(base, new):
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v)
        else:
            base[k] = v


def load_config(path=None, overrides=()):
    """Build a validated :class:`TrainConfig` from an optional YAML file and overrides."""
    cfg = TrainConfig()
    if path is not None:
        path = os.fspath(path)
        data = read_yaml(path, 'config file', ConfigError)
        apply_mapping(cfg, data, f'config file {path}')
    for text in overrides:
        apply_override(cfg, text)
    return cfg.validate()


def config_from_dict(data, source='config'):
    """Rebuild a validated :class:`TrainConfig` from :meth:`TrainConfig.to_dict` output."""
    return apply_mapping(TrainConfig(), data, source).validate()


def dump_config(cfg):
    """YAML text of the resolved config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
