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
The training loop (Fig. 4): alternating synthetic (Eq. 1) and real (Eq. 6/9) steps.

One iteration = one synthetic batch (forward, Eq. 1, backward, AdamW step) followed by one real
batch (its own forward/backward/step): Eq. 6/9 on SAM masks (``full``), Eq. 1 on SAM
pseudolabels from the EMA model (``pseudolabel``). ``synthetic_only`` and ``real_labels`` do
one supervised step per iteration on synthetic resp. labeled real frames. The learning rate
follows warmup + cosine per iteration; the EMA copy is updated after every iteration and is the
model that is evaluated (mIoU, Eq. 8) and exported. Rank 0 evaluates, logs and checkpoints.

``precision: bf16`` runs the network's forward passes under bfloat16 autocast; its outputs are
cast back to float32 before the losses (Eq. 1, Eq. 6/9), the parameters, gradients, optimizer
state and EMA stay float32, and evaluation runs in float32 like the exported engine, so
checkpoints are the same as with ``fp32``. ``channels_last`` stores the network's weights and
input as NHWC (a memory format only; same values).
"""
import copy
import io
import math
import os
import random
import time

import numpy as np
from sam2real_ros.common.io_utils import atomic_write_bytes
from sam2real_ros.data import datasets
from sam2real_ros.modeling import model as mdl
from sam2real_ros.modeling import preprocessing
from sam2real_ros.training import batching
from sam2real_ros.training import losses
from sam2real_ros.training.config import ConfigError
from sam2real_ros.training.metrics import MeanIoU
import torch

CKPT_NAME = 'checkpoint.pt'
AMP_DTYPES = {'fp32': None, 'bf16': torch.bfloat16}


def lr_factor(it, warmup, total, min_ratio):
    """Warmup (linear from 1/warmup) then cosine from 1 to ``min_ratio`` at ``total``."""
    if warmup > 0 and it < warmup:
        return (it + 1) / warmup
    progress = min(1.0, (it - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def rng_state():
    """Python, numpy and torch RNG states as checkpoint-safe (weights_only) values."""
    np_state = np.random.get_state()
    state = {'python': random.getstate(), 'torch': torch.get_rng_state(),
             'numpy': [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]]}
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore :func:`rng_state` output."""
    py = state['python']
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state['numpy']
    np.random.set_state((n[0], n[1].numpy(), *n[2:]))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def seed_everything(seed):
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


class _OneHead(torch.nn.Module):
    """Returns only the output a step trains, so DDP sees the other head as unused."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, output):
        """``x`` Bx3xHxW -> logits BxCxHxW (``'logits'``) or features BxDxHxW."""
        return self.net.head(self.net.decode(x), output, x.shape[-2:])


class Trainer:
    """
    Builds data, model, EMA, optimizer and schedule from a TrainConfig and runs epochs.

    Arguments:
    ---------
      cfg (TrainConfig): validated config.
      out_dir (str): run folder (config.yaml, checkpoint.pt, metrics.csv, images/, tb/).
      resume (bool): continue from ``out_dir/checkpoint.pt``.
      rank, world_size (int): distributed position (1 process: 0, 1).
      device (torch.device): compute device.

    """

    def __init__(self, cfg, out_dir, resume=False, rank=0, world_size=1, device=None):
        self.cfg, self.out, self.rank, self.world = cfg, out_dir, rank, world_size
        self.device = device or torch.device('cpu')
        seed_everything(cfg.seed * 1000 + rank)
        v = cfg.variant
        self.syn = datasets.build_labeled(cfg.data.synthetic) if v != 'real_labels' else None
        self.real = datasets.build_unlabeled(cfg.data.real) if v in ('full', 'pseudolabel') \
            else None
        self.real_lab = (datasets.build_labeled(cfg.data.real_labeled or cfg.data.real)
                         if v == 'real_labels' else None)
        self.eval_ds = datasets.build_labeled(cfg.data.eval) if rank == 0 else None
        names = cfg.class_names or getattr(self.syn or self.real_lab, 'class_names', None)
        if not names:
            raise ConfigError('config: class_names not given and the dataset does not define '
                              'class_names')
        self.class_names = [str(n) for n in names]
        overrides = dict(cfg.model, num_classes=len(self.class_names))
        self.model_cfg = mdl.load_profile(cfg.model_profile, **overrides)
        self.size = tuple(cfg.image_size) if cfg.image_size else self.model_cfg.input_size
        self.model = mdl.build_model(self.model_cfg).to(self.device)
        if cfg.init_checkpoint and not resume:
            ck = mdl.load_checkpoint(cfg.init_checkpoint)
            self.model.load_state_dict(ck.get('ema') or ck['model'])
        self.memory_format = (torch.channels_last if cfg.channels_last
                              else torch.contiguous_format)
        self.model.to(memory_format=self.memory_format)
        self.amp_dtype = AMP_DTYPES[cfg.precision]
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.net = _OneHead(self.model)
        if world_size > 1:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=ids, find_unused_parameters=True)
        o = cfg.optim
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=o.lr,
                                     weight_decay=o.weight_decay, betas=tuple(o.betas))
        self.iters = max(1, cfg.frames_per_epoch // (cfg.batch_size * world_size))
        total = self.iters * cfg.max_epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda it: lr_factor(it, o.warmup_iters, total, o.min_lr_ratio))
        self.epoch, self.history = 0, []
        if resume:
            self._load(os.path.join(out_dir, CKPT_NAME))

    # ----------------------------------------------------------------------------- state
    def state(self):
        """Checkpoint dict (``model_from_checkpoint`` / export compatible, plus resume state)."""
        return mdl.checkpoint_payload(
            self.model, self.model_cfg, self.class_names, ema_state=self.ema.state_dict(),
            optimizer=self.opt.state_dict(), scheduler=self.sched.state_dict(),
            epoch=self.epoch, iteration=self.epoch * self.iters, rng=rng_state(),
            history=self.history, train_cfg=self.cfg.to_dict(), variant=self.cfg.variant)

    def save(self):
        """Write ``checkpoint.pt`` atomically (rank 0 only)."""
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        atomic_write_bytes(os.path.join(self.out, CKPT_NAME), buf.getbuffer())

    def _load(self, path):
        if not os.path.isfile(path):
            raise ConfigError(f'--resume: no checkpoint to resume from: {path}')
        try:
            ck = torch.load(path, map_location='cpu', weights_only=True)
            self.model.load_state_dict(ck['model'])
            self.ema.load_state_dict(ck['ema'])
            self.opt.load_state_dict(ck['optimizer'])
            self.sched.load_state_dict(ck['scheduler'])
        except (KeyError, RuntimeError, ValueError) as e:
            raise ConfigError(f'--resume: {path} does not match this config '
                              f'({type(e).__name__}: {str(e).splitlines()[0]})') from None
        self.epoch, self.history = int(ck['epoch']), list(ck['history'])
        set_rng_state(ck['rng'])

    # ----------------------------------------------------------------------------- steps
    def _input(self, x):
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    def _autocast(self):
        """Autocast context of the training forward passes (a no-op for fp32)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                              enabled=self.amp_dtype is not None)

    def forward(self, x, output):
        """Training forward pass of one head; returns float32 logits or features."""
        with self._autocast():
            out = self.net(self._input(x), output)
        return out.float()

    def _step(self, loss):
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()

    def supervised_step(self, batch):
        """Forward + Eq. 1 + AdamW step on a labeled batch; returns the loss value."""
        logits = self.forward(batch['x'], 'logits')
        loss = losses.supervised_loss(logits, batch['labels'], self.cfg.loss.ignore_index)
        self._step(loss)
        return float(loss.detach())

    def real_step(self, batch):
        """Forward + Eq. 6/9 on SAM masks + AdamW step; returns dict of values."""
        feats = self.forward(batch['x'], 'features')
        c = self.cfg.loss
        out = losses.real_loss(feats, batch['masks'], alpha=c.alpha, beta=c.beta,
                               margin=c.margin, pairs=c.pairs)
        self._step(out['loss'])
        return {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in out.items()}

    def pseudolabel_step(self, batch):
        """EMA prediction -> best-IoU SAM mask per class -> Eq. 1 step (Sec. IV-E-b)."""
        with torch.no_grad(), self._autocast():
            pred = self.ema(self._input(batch['x']))[0].argmax(1).cpu().numpy()
        labels = [losses.sam_pseudolabels(p, m, ignore_index=self.cfg.loss.ignore_index)
                  for p, m in zip(pred, batch['masks'])]
        batch = dict(batch, labels=torch.from_numpy(np.stack(labels).astype(np.int64)))
        return self.supervised_step(batch)

    @torch.no_grad()
    def update_ema(self):
        """EMA of parameters (decay ``ema_decay``); buffers (BN statistics) are copied."""
        d = self.cfg.ema_decay
        for e, p in zip(self.ema.parameters(), self.model.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1.0 - d)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    # ----------------------------------------------------------------------------- epochs
    def loader(self, name, ds, epoch):
        """Return the batches of one stream (`name`) for `epoch`, at that stream's batch size."""
        if hasattr(ds, 'set_epoch'):
            ds.set_epoch(epoch)
        batch = self.cfg.batch_size
        if name != 'synthetic' and self.cfg.real_batch_size:
            batch = self.cfg.real_batch_size
        idx = batching.epoch_indices(len(ds), self.iters * batch, self.cfg.seed, name, self.rank,
                                     epoch)
        return batching.make_loader(ds, idx, batch, self.cfg.data.num_workers)

    def prepare(self, samples, need, name):
        """
        Turn dataset samples into a batch at this trainer's input size and normalization.

        ``need`` names the targets the step uses (``('labels',)`` or ``('masks',)``), ``name``
        the dataset (for error messages); see ``batching.prepare_batch``.
        """
        return batching.prepare_batch(samples, self.size, self.model_cfg.mean,
                                      self.model_cfg.std, need, f'{name} dataset')

    def train_epoch(self, progress=None, log_fn=None):
        """
        One epoch of ``self.iters`` iterations; returns mean losses.

        ``log_fn(iteration, values)`` (optional) gets every iteration's loss values.
        """
        self.model.train()
        epoch, v = self.epoch, self.cfg.variant
        seed_everything((self.cfg.seed * 1000 + self.rank) * 100003 + epoch)
        streams = []
        if self.syn is not None:
            streams.append(('synthetic', self.loader('synthetic', self.syn, epoch)))
        if self.real is not None:
            streams.append(('real', self.loader('real', self.real, epoch)))
        if self.real_lab is not None:
            streams.append(('real_labeled', self.loader('real_labeled', self.real_lab, epoch)))
        sums, counts = {}, {}

        def add(key, value):
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
            last[key] = value

        for it, batches in enumerate(zip(*(loader for _, loader in streams))):
            last = {}
            for (name, _), samples in zip(streams, batches):
                if name in ('synthetic', 'real_labeled'):
                    add('sup_loss', self.supervised_step(self.prepare(samples, ('labels',), name)))
                elif v == 'full':
                    out = self.real_step(self.prepare(samples, ('masks',), name))
                    for k in ('loss', 'inv', 'var', 'n'):
                        add('real_' + k if k != 'loss' else 'real_loss', out[k])
                else:
                    add('pseudo_loss',
                        self.pseudolabel_step(self.prepare(samples, ('masks',), name)))
            if log_fn is not None:
                log_fn(epoch * self.iters + it, dict(last, lr=self.sched.get_last_lr()[0]))
            self.sched.step()
            self.update_ema()
            if progress is not None:
                progress.update(1)
                progress.set_postfix({k: f'{sums[k] / counts[k]:.4f}' for k in sums
                                      if k.endswith('loss')})
        self.epoch += 1
        return {k: sums[k] / counts[k] for k in sums}

    @torch.no_grad()
    def evaluate(self, keep_images=0):
        """Compute the EMA model's mIoU (Eq. 8) on the eval set; return (summary, image tuples)."""
        acc = MeanIoU(include_background=self.cfg.include_background,
                      ignore_index=self.cfg.loss.ignore_index)
        n = len(self.eval_ds)
        if self.cfg.data.eval_frames:
            n = min(n, self.cfg.data.eval_frames)
        images = []
        self.ema.eval()
        for i in range(n):
            s = self.eval_ds[i]
            # as the deployed engine: the model's input size (not image_size), argmax at that
            # resolution, labels nearest-resized to the frame size
            b = batching.prepare_batch([s], self.model_cfg.input_size, self.model_cfg.mean,
                                       self.model_cfg.std, ('labels',), 'eval dataset')
            logits, feats = self.ema(self._input(b['x']))
            gt = np.asarray(s['labels'])
            pred = preprocessing.resize_labels(
                logits.argmax(1)[0].cpu().numpy().astype(np.uint8), gt.shape)
            acc.update(pred, gt)
            if i < keep_images:
                images.append((s['rgb'], pred, gt, feats[0].permute(1, 2, 0).cpu().numpy()))
        return acc.summary(), images

    def timed_epoch(self, progress=None, log_fn=None):
        """:meth:`train_epoch` plus wall time."""
        t0 = time.monotonic()
        out = self.train_epoch(progress, log_fn)
        out['time_s'] = time.monotonic() - t0
        return out
