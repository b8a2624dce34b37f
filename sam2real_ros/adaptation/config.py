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

"""The adaptation manager's settings (:class:`AdaptConfig`) and its input error."""
import dataclasses
import os

from sam2real_ros.common.errors import Sam2realError


class AdaptError(Sam2realError, ValueError):
    """A user error or a state the manager refuses to act on (one clear line)."""


@dataclasses.dataclass
class AdaptConfig:
    """The manager's settings (the ``adaptation_manager`` node's parameters, the CLI's flags)."""

    dataset_root: str = ''         # the recorder's dataset root (episodes/ and masks/)
    model_path: str = ''           # the ONNX file the segmentation node watches
    work_dir: str = ''             # versions + ledger; '' = <dataset_root>/adaptation
    train_config: str = ''         # training YAML; '' = the deployed checkpoint's own config
    train_overrides: list = dataclasses.field(default_factory=list)  # key=value
    min_new_frames: int = 200      # new masked frames that start a round
    max_iterations: int = 2000     # training budget of a round (iterations)
    max_wall_s: float = 7200.0     # training budget of a round (wall time, checked per epoch)
    epoch_iterations: int = 200    # iterations between checkpoints (resume granularity)
    gate_data: str = ''            # labeled real gate frames ('' = none)
    gate_class_map: str = 'by-name'  # how gate classes map to model classes
    gate_frames: int = 0           # gate frames evaluated (0 = all)
    synthetic_val_frames: int = 100  # synthetic validation frames
    real_margin: float = 0.02      # real-gate mIoU the candidate may lose (bootstrap bound)
    synthetic_margin: float = 0.02  # synthetic validation mIoU the candidate may lose
    confidence: float = 0.95       # of the paired bootstrap's lower bound
    bootstrap_samples: int = 1000  # resamples of the paired bootstrap
    seed: int = 0                  # bootstrap seed
    device: str = 'auto'           # training device: auto | cpu | cuda
    progress: bool = True          # tqdm bars

    def validate(self):
        """Raise :class:`AdaptError` for a value out of range; return self."""
        checks = [
            (bool(self.dataset_root), 'dataset_root', "set (the recorder's dataset root)"),
            (bool(self.model_path), 'model_path', 'set (the file the segmentation node '
                                                  'watches)'),
            (self.min_new_frames >= 1, 'min_new_frames', '>= 1'),
            (self.max_iterations >= 1, 'max_iterations', '>= 1'),
            (self.max_wall_s > 0, 'max_wall_s', '> 0'),
            (self.epoch_iterations >= 1, 'epoch_iterations', '>= 1'),
            (self.gate_frames >= 0, 'gate_frames', '>= 0'),
            (self.synthetic_val_frames >= 1, 'synthetic_val_frames', '>= 1'),
            (self.real_margin >= 0, 'real_margin', '>= 0'),
            (self.synthetic_margin >= 0, 'synthetic_margin', '>= 0'),
            (0.5 <= self.confidence < 1, 'confidence', 'in [0.5, 1)'),
            (self.bootstrap_samples >= 1, 'bootstrap_samples', '>= 1'),
            (self.device in ('auto', 'cpu', 'cuda'), 'device', 'auto, cpu or cuda'),
        ]
        for ok, key, want in checks:
            if not ok:
                raise AdaptError(f'{key} must be {want}, got {getattr(self, key)!r}')
        return self

    @property
    def work(self):
        """Return the work folder (versions, ledger, candidate)."""
        return self.work_dir or os.path.join(self.dataset_root, 'adaptation')
