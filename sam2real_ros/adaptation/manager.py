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
The adaptation manager without ROS: watch, fine-tune, gate, deploy, roll back.

One round (:meth:`AdaptationManager.run_round`):

1. **watch**: the frames of complete episodes under ``dataset_root`` that have masks in the
   mask store (``recording.episode_store.iter_frames`` + ``sam.mask_store.MaskStore``); a
   round starts when ``min_new_frames`` of them are new since the last round (or on request);
2. **fine-tune** a candidate from the deployed version's checkpoint with the ``full`` variant
   (synthetic steps continue, so classes are not forgotten) on every real frame so far, within
   ``max_iterations`` and ``max_wall_s`` (``training.train.run``, checkpoint every epoch);
3. **export** it to ONNX (``inference.export.export_onnx``, verified against PyTorch) and
   **evaluate** both models' ONNX files on the gate: labeled real frames (``gate_data``, any
   labeled dataset ``sam2real evaluate --data`` takes, e.g. a BOP test split) and a synthetic
   validation set that always exists; neither is ever trained on;
4. **decide** with :func:`sam2real_ros.adaptation.gate.decide`, write one ledger line, and on
   deploy replace ``model_path`` (the segmentation node's model file) atomically: the node's
   hot reload takes the new model from its next frame.

Crash safety (kill -9 at any point): versions are renamed into place complete; the ledger
line is the commit point and is written before ``model_path`` is replaced; at every start
:meth:`recover` cuts a torn ledger line, removes versions no line names, and puts the version
the ledger says is deployed back into ``model_path`` if the copy was cut short. A candidate
whose training was killed is resumed from its last epoch's checkpoint when the deployed
version is still its base, else discarded.
"""
import contextlib
import datetime
import fcntl
import json
import math
import os
import shutil
import time
import uuid

from sam2real_ros.adaptation import gate
from sam2real_ros.adaptation.config import AdaptError
from sam2real_ros.adaptation.ledger import Ledger, LedgerError, sha256_file, Versions
from sam2real_ros.common.io_utils import atomic_write_bytes, atomic_write_json
from sam2real_ros.data import datasets
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.inference.export import export_onnx
from sam2real_ros.recording.episode_store import iter_frames
from sam2real_ros.sam.mask_store import MaskStore
from sam2real_ros.training import evaluate
from sam2real_ros.training.config import apply_override, config_from_dict, load_config

CANDIDATE_DIR = 'candidate'
ROUND_FILE = 'round.json'
LOCK_NAME = '.lock'
LOCK_WAIT_S = 30.0  # how long locked() waits for a short holder (a poll, a rollback)
STATES = ('idle', 'waiting', 'training', 'evaluating', 'deploying', 'rolling back', 'error')


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')


def _brief(summary):
    """Metrics of one evaluation for the ledger (without per-frame scores)."""
    if summary is None:
        return None
    return {'miou': summary['miou'], 'frames': summary['frames'],
            'per_class': summary.get('per_class', {})}


class AdaptationManager:
    """
    Watches a dataset root, fine-tunes, gates, deploys and rolls back models (ROS-free).

    Arguments:
    ---------
      cfg (AdaptConfig): settings (validated here).
      log (callable): ``log(level, text)``, level ``'info'``, ``'warn'`` or ``'error'``.
      hooks (dict): optional callables ``before_train()`` / ``after_train()`` (the node
        pauses and resumes the SAM worker with them when both share a device).

    ``state`` is one of :data:`STATES`; ``detail`` says what it does now.

    """

    def __init__(self, cfg, log=None, hooks=None):
        self.cfg = cfg.validate()
        self.work = os.path.abspath(cfg.work)
        self.root = os.path.abspath(cfg.dataset_root)
        self.model_path = os.path.abspath(os.path.expanduser(cfg.model_path))
        self.ledger = Ledger(os.path.join(self.work, 'ledger.jsonl'))
        self.versions = Versions(os.path.join(self.work, 'versions'))
        self._log = log or (lambda level, text: None)
        self.hooks = dict(hooks or {})
        self.state, self.detail = 'idle', ''

    # ------------------------------------------------------------------------ bookkeeping
    def _set(self, state, detail=''):
        self.state, self.detail = state, detail

    @contextlib.contextmanager
    def locked(self, wait_s=LOCK_WAIT_S):
        """
        Hold ``<work_dir>/.lock`` (one manager per work folder) and run :meth:`recover`.

        A holder that lets go within ``wait_s`` seconds (a watch loop's check for new frames, a
        rollback) is waited for; one that holds it longer (a round training) is named in an
        :class:`AdaptError`.
        """
        os.makedirs(self.work, exist_ok=True)
        fd = os.open(os.path.join(self.work, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + max(0.0, float(wait_s))
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise AdaptError(
                            f'another adaptation manager is working in {self.work} (it holds '
                            f'{LOCK_NAME}); wait for it or stop it') from None
                    time.sleep(0.05)
            self.recover()
            yield
        finally:
            os.close(fd)

    def recover(self):
        """
        Make the work folder and ``model_path`` consistent after a crash (call under the lock).

        Returns
        -------
          list of str: what was repaired (empty when nothing was).

        """
        notes = []
        if self.ledger.repair():
            notes.append(f'cut a torn last line off {self.ledger.path}')
        entries = self.ledger.entries()
        known = set()
        for e in entries:
            known.update(v for v in (e.get('candidate_version'), e.get('deployed_version'),
                                     e.get('base_version')) if v)
        for vid in self.versions.remove_stale(known):
            notes.append(f'removed version {vid}: made but never decided (killed before its '
                         f'ledger line)')
        dep = entries[-1].get('deployed_version') if entries else None
        if dep:
            want = self.versions.info(dep)['sha256']
            have = sha256_file(self.model_path) if os.path.isfile(self.model_path) else None
            if have != want:
                shas = {self.versions.info(v)['sha256'] for v in self.versions.ids()}
                if have is not None and have not in shas:
                    raise AdaptError(
                        f'{self.model_path} holds a model that no version in {self.work} has '
                        f'(the ledger says {dep} is deployed); move the file away to let the '
                        f'manager put {dep} back, or use another work_dir')
                self._install(dep)
                notes.append(f'put the deployed version {dep} back into {self.model_path} '
                             f'(its copy had been cut short)')
        for n in notes:
            self._log('warn', f'recovered: {n}')
        return notes

    def _install(self, vid):
        """Replace ``model_path`` with version ``vid``'s model (atomic; the node hot-reloads)."""
        with open(self.versions.model(vid), 'rb') as f:
            atomic_write_bytes(self.model_path, f.read())

    def deployed(self):
        """Return the deployed version id, or None before :meth:`init`."""
        return self.ledger.deployed_version()

    def usable_frames(self):
        """
        Count the frames a round can train on, per episode.

        Returns
        -------
          dict: episode id -> number of frames of that complete episode with masks.

        """
        store = MaskStore(os.path.join(self.root, 'masks'))
        counts = {}
        for ref in iter_frames(self.root, complete_only=True):
            if store.status(ref.key) == 'done':
                counts[ref.episode_id] = counts.get(ref.episode_id, 0) + 1
        return counts

    def new_frames(self, counts=None, entries=None):
        """Return how many usable frames arrived since the last round's data."""
        counts = self.usable_frames() if counts is None else counts
        entries = self.ledger.entries() if entries is None else entries
        seen = {}
        for e in reversed(entries):
            if e.get('decision') in ('deploy', 'reject'):
                seen = e.get('data', {}).get('episodes', {})
                break
        return sum(max(0, n - int(seen.get(ep, 0))) for ep, n in counts.items())

    def status(self):
        """Return a JSON-ready summary: deployed version, versions, new frames, last line."""
        entries = self.ledger.entries()
        counts = self.usable_frames() if os.path.isdir(self.root) else {}
        return {'state': self.state, 'detail': self.detail,
                'deployed_version': entries[-1].get('deployed_version') if entries else None,
                'versions': self.versions.ids(), 'frames': sum(counts.values()),
                'new_frames': self.new_frames(counts, entries),
                'min_new_frames': self.cfg.min_new_frames,
                'last_decision': entries[-1] if entries else None}

    # ------------------------------------------------------------------------ data and gate
    def _base_config(self, checkpoint):
        from sam2real_ros.modeling.model import load_checkpoint
        if self.cfg.train_config:
            return load_config(self.cfg.train_config, self.cfg.train_overrides)
        ck = load_checkpoint(checkpoint)
        if not isinstance(ck.get('train_cfg'), dict):
            raise AdaptError(f'{checkpoint} carries no training config (not written by '
                             f'"sam2real train"): set train_config to the YAML it was '
                             f'trained with')
        cfg = config_from_dict(ck['train_cfg'], f'training config in {checkpoint}')
        for text in self.cfg.train_overrides:
            apply_override(cfg, text)
        return cfg.validate()

    def _synthetic_val(self, cfg):
        spec = dict(cfg.data.synthetic)
        if spec.get('type') == 'procedural':
            # another seed than the training stream: rendered frames never seen in training
            spec['seed'] = int(spec.get('seed', 0)) + 100_003
            spec['length'] = self.cfg.synthetic_val_frames
            return spec
        return dict(cfg.data.eval)  # the labeled set the training config holds out

    def _real_gate(self):
        if not self.cfg.gate_data:
            return None, {}
        spec, fixed = evaluate.resolve_data(self.cfg.gate_data)
        root = spec.get('root')
        if root:
            r = os.path.abspath(os.fspath(root))
            eps = os.path.join(self.root, 'episodes')
            if r == self.root or r == eps or r.startswith(eps + os.sep):
                raise AdaptError(f'gate_data {root} lies in the training frames '
                                 f'({self.root}): the gate must be frames never trained on')
        return spec, fixed

    def _evaluate(self, model, spec, frames, cfg, fixed=None):
        fixed = fixed or {}
        ds = datasets.build_labeled(spec)
        engine = SegmentationEngine.load(model, backend='onnxruntime', device='cpu')
        cmap = (evaluate.parse_class_map(self.cfg.gate_class_map) if self.cfg.gate_class_map
                else None)
        ignore = fixed.get('ignore_index', cfg.loss.ignore_index)
        lut = evaluate.class_lut(engine.class_names, ds.class_names, cmap, ignore)
        background = fixed.get('include_background', cfg.include_background)
        return evaluate.evaluate(engine, ds, frames, background, progress=self.cfg.progress,
                                 lut=lut, ignore_index=ignore, keep_frames=True)

    def _evaluate_both(self, models, cfg):
        """Evaluate each ONNX file of ``models`` (name -> path) on the gate sets."""
        syn = self._synthetic_val(cfg)
        real, fixed = self._real_gate()
        out = {}
        for name, path in models.items():
            out[name] = {
                'synthetic': self._evaluate(path, syn, 0, cfg),
                'real': (self._evaluate(path, real, self.cfg.gate_frames or
                                        fixed.get('frames', 0), cfg, fixed)
                         if real is not None else None)}
        return out, syn, real

    def _export(self, checkpoint, staging):
        from sam2real_ros.modeling.model import model_from_checkpoint
        net, mcfg, names = model_from_checkpoint(checkpoint)
        res = export_onnx(net, mcfg, names, os.path.join(staging, 'model.onnx'), verify=True)
        shutil.copyfile(checkpoint, os.path.join(staging, 'checkpoint.pt'))
        return res

    # ------------------------------------------------------------------------ operations
    def init(self, checkpoint):
        """
        Register ``checkpoint`` as version 1, deploy it and write the first ledger line.

        Returns
        -------
          dict: the ledger line.

        """
        with self.locked():
            if self.ledger.entries():
                raise AdaptError(f'{self.work} is initialized already (deployed: '
                                 f'{self.deployed()}); use rollback, or another work_dir')
            t0 = _now()
            base = self._base_config(checkpoint) if self.cfg.train_config else None
            staging = self.versions.staging()
            self._set('deploying', f'exporting {checkpoint}')
            exp = self._export(checkpoint, staging)
            if base is None:
                base = self._base_config(os.path.join(staging, 'checkpoint.pt'))
            self._set('evaluating', 'initial model on the gate')
            metrics, syn, real = self._evaluate_both(
                {'deployed': os.path.join(staging, 'model.onnx')}, base)
            m = {'synthetic': _brief(metrics['deployed']['synthetic']),
                 'real': _brief(metrics['deployed']['real'])}
            vid = self.versions.commit(staging, {
                'parent': None, 'source': os.path.abspath(checkpoint), 'created': _now(),
                'metrics': m, 'export': exp})
            entry = {'time': _now(), 'round': uuid.uuid4().hex, 'decision': 'init',
                     'reason': f'initial model from {os.path.abspath(checkpoint)}',
                     'candidate_version': vid, 'base_version': None, 'deployed_version': vid,
                     'model_path': self.model_path, 'sha256': self.versions.info(vid)['sha256'],
                     'data': {'synthetic_val': syn, 'real_gate': real},
                     'metrics': {'deployed': m}, 'times': {'started': t0, 'decided': _now()}}
            self.ledger.append(entry)
            self._install(vid)
            self._set('idle', f'deployed {vid}')
            self._log('info', f'initialized: {vid} deployed to {self.model_path}')
            return entry

    def rollback(self, to=None):
        """
        Deploy an earlier version again (atomic; one ledger line).

        Arguments:
        ---------
          to (str | None): a version that was deployed before; None = the one deployed before
            the current one.

        Returns
        -------
          dict: the ledger line.

        """
        with self.locked():
            entries = self.ledger.entries()
            if not entries:
                raise AdaptError(f'nothing to roll back: no ledger in {self.work}')
            cur = entries[-1]['deployed_version']
            served = [e['deployed_version'] for e in entries if e.get('deployed_version')]
            if to is None:
                earlier = [v for v in reversed(served) if v != cur]
                if not earlier:
                    raise AdaptError(f'nothing to roll back to: {cur} is the only version '
                                     f'ever deployed')
                to = earlier[0]
            else:
                self.versions.info(to)  # exists?
                if to not in served:
                    raise AdaptError(f'{to} was never deployed (the gate rejected it); '
                                     f'roll back to one of: {", ".join(sorted(set(served)))}')
                if to == cur:
                    raise AdaptError(f'{to} is deployed already')
            self._set('rolling back', f'{cur} -> {to}')
            info = self.versions.info(to)
            entry = {'time': _now(), 'round': uuid.uuid4().hex, 'decision': 'rollback',
                     'reason': f'rollback requested: {cur} -> {to}', 'candidate_version': to,
                     'base_version': cur, 'deployed_version': to,
                     'model_path': self.model_path, 'sha256': info['sha256'],
                     'metrics': {'deployed': info.get('metrics')},
                     'times': {'started': _now(), 'decided': _now()}}
            self.ledger.append(entry)
            self._install(to)
            self._set('idle', f'rolled back to {to}')
            self._log('info', f'rolled back from {cur} to {to} ({self.model_path})')
            return entry

    def run_round(self, force=False, stop=None):
        """
        Run one round if enough new frames arrived (or ``force``), or resume a killed one.

        Arguments:
        ---------
          force (bool): train now, however few frames are new.
          stop (callable | None): asked after every epoch; True stops the round (the
            candidate stays and is resumed by the next round).

        Returns
        -------
          dict | None: the ledger line of the decision, or None when no round ran (too few new
          frames, or stopped).

        """
        with self.locked():
            entries = self.ledger.entries()
            dep = entries[-1].get('deployed_version') if entries else None
            if not dep:
                raise AdaptError(f'no deployed model yet in {self.work}: start with '
                                 f'"sam2real adapt --init-checkpoint CHECKPOINT" (the '
                                 f'checkpoint of the model the robot runs now)')
            cand = os.path.join(self.work, CANDIDATE_DIR)
            rnd = self._resumable(cand, dep, entries)
            if rnd is None:
                counts = self.usable_frames()
                new = self.new_frames(counts, entries)
                if not counts:
                    if force:
                        raise AdaptError(f'no complete episodes with masks under {self.root} '
                                         f'(record grasps, and run the SAM worker on them)')
                    self._set('waiting', f'0 new frames of {self.cfg.min_new_frames}')
                    return None
                if new < self.cfg.min_new_frames and not force:
                    self._set('waiting', f'{new} new frames of {self.cfg.min_new_frames}')
                    return None
                rnd = {'round': uuid.uuid4().hex, 'base_version': dep, 'episodes': counts,
                       'new_frames': new, 'started': _now(), 'resumed': 0}
                shutil.rmtree(cand, ignore_errors=True)
                os.makedirs(cand)
                atomic_write_json(os.path.join(cand, ROUND_FILE), rnd)
            else:
                rnd['resumed'] = int(rnd.get('resumed', 0)) + 1
                atomic_write_json(os.path.join(cand, ROUND_FILE), rnd)
                self._log('info', f'resuming the candidate of round {rnd["round"][:8]} '
                                  f'(base {dep})')
            return self._round(rnd, cand, dep, stop)

    def _resumable(self, cand, dep, entries):
        path = os.path.join(cand, ROUND_FILE)
        if not os.path.isdir(cand):
            return None
        try:
            with open(path) as f:
                rnd = json.load(f)
        except (OSError, ValueError):
            rnd = None
        why = None
        if rnd is None:
            why = 'no readable round.json'
        elif rnd['round'] in {e.get('round') for e in entries}:
            why = 'its decision is in the ledger already'
        elif rnd['base_version'] != dep:
            why = f'it started from {rnd["base_version"]}, {dep} is deployed now'
        if why:
            shutil.rmtree(cand, ignore_errors=True)
            self._log('warn', f'discarded the unfinished candidate: {why}')
            return None
        return rnd

    def _train_config(self, rnd, dep):
        cfg = self._base_config(self.versions.checkpoint(dep))
        cfg.variant = 'full'
        cfg.init_checkpoint = self.versions.checkpoint(dep)
        cfg.data.real = {'type': 'episodes', 'root': self.root,
                         'episodes': sorted(rnd['episodes'])}
        cfg.data.eval = self._synthetic_val(cfg)
        cfg.data.eval_frames = min(cfg.data.eval_frames or self.cfg.synthetic_val_frames,
                                   self.cfg.synthetic_val_frames)
        per_epoch = max(1, min(self.cfg.epoch_iterations, self.cfg.max_iterations))
        cfg.frames_per_epoch = per_epoch * cfg.batch_size
        cfg.max_epochs = max(1, math.ceil(self.cfg.max_iterations / per_epoch))
        cfg.log.tensorboard = False
        cfg.log.images_per_epoch = 0
        cfg.log.progress = self.cfg.progress
        if self.cfg.device != 'auto':
            cfg.device = self.cfg.device
        return cfg.validate()

    def _round(self, rnd, cand, dep, stop):
        from sam2real_ros.training import train
        cfg = self._train_config(rnd, dep)
        resume = os.path.isfile(os.path.join(cand, 'run', 'checkpoint.pt'))
        deadline = time.monotonic() + self.cfg.max_wall_s
        stopped = {'by': None}

        def should_stop():
            if stop is not None and stop():
                stopped['by'] = 'request'
            elif time.monotonic() > deadline:
                stopped['by'] = 'wall_time'
            return stopped['by'] is not None

        n = sum(rnd['episodes'].values())
        self._set('training', f'candidate from {dep} on {n} real frames '
                              f'({rnd["new_frames"]} new)')
        self._log('info', self.detail)
        t0 = time.monotonic()
        if self.hooks.get('before_train'):
            self.hooks['before_train']()
        try:
            summary = train.run(cfg, os.path.join(cand, 'run'), resume=resume, stop=should_stop)
        finally:
            if self.hooks.get('after_train'):
                self.hooks['after_train']()
        train_s = time.monotonic() - t0
        if stopped['by'] == 'request':
            self._set('idle', 'stopped; the candidate is resumed by the next round')
            return None
        trained = _now()
        self._set('evaluating', 'exporting and evaluating the candidate')
        staging = self.versions.staging()
        exp = self._export(summary['checkpoint'], staging)
        metrics, syn, real = self._evaluate_both(
            {'candidate': os.path.join(staging, 'model.onnx'),
             'deployed': self.versions.model(dep)}, cfg)
        ok, reason, info = gate.decide(
            metrics['candidate'], metrics['deployed'], self.cfg.real_margin,
            self.cfg.synthetic_margin, self.cfg.bootstrap_samples, self.cfg.confidence,
            self.cfg.seed)
        if exp.get('labels_agree') is not None and exp['labels_agree'] < 0.99:
            ok, reason = False, (f'export verification failed: ONNX labels agree with PyTorch '
                                 f'on {exp["labels_agree"]:.1%} of the pixels; ' + reason)
        brief = {k: {s: _brief(v[s]) for s in ('synthetic', 'real')}
                 for k, v in metrics.items()}
        evaluated = _now()
        train_info = {'iterations': summary['iterations'], 'epochs': summary['epochs'],
                      'stopped_by': stopped['by'], 'wall_s': round(train_s, 1),
                      'resumed': rnd.get('resumed', 0), 'variant': cfg.variant}
        vid = self.versions.commit(staging, {
            'parent': dep, 'round': rnd['round'], 'created': _now(),
            'metrics': brief['candidate'], 'train': train_info, 'export': exp,
            'frame_scores': {k: {s: (v[s] or {}).get('frame_scores')
                                 for s in ('synthetic', 'real')}
                             for k, v in metrics.items()}})
        after = vid if ok else dep
        entry = {
            'time': _now(), 'round': rnd['round'], 'decision': 'deploy' if ok else 'reject',
            'reason': reason, 'candidate_version': vid, 'base_version': dep,
            'deployed_version': after, 'model_path': self.model_path,
            'sha256': self.versions.info(after)['sha256'],
            'data': {'episodes': rnd['episodes'], 'frames': n, 'new_frames': rnd['new_frames'],
                     'synthetic_train': cfg.data.synthetic, 'synthetic_val': syn,
                     'real_gate': real},
            'metrics': brief, 'gate': info, 'train': train_info,
            'times': {'started': rnd['started'], 'trained': trained, 'evaluated': evaluated,
                      'decided': _now()}}
        self._set('deploying' if ok else 'idle', reason)
        self.ledger.append(entry)  # the commit point
        if ok:
            self._install(vid)
        shutil.rmtree(cand, ignore_errors=True)
        self._set('idle', f'{"deployed" if ok else "rejected"} {vid}: {reason}')
        self._log('info' if ok else 'warn', f'{entry["decision"]} {vid}: {reason}')
        return entry


def read_ledger(work_dir):
    """Return the ledger lines of a work folder (for reports); [] when there is none."""
    try:
        return Ledger(os.path.join(work_dir, 'ledger.jsonl')).entries()
    except LedgerError:
        return []
