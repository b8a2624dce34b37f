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
``adaptation_manager`` lifecycle node: the robot fine-tunes, gates and deploys its own model.

A thin ROS adapter around :class:`sam2real_ros.adaptation.manager.AdaptationManager`
(docs/adaptation.md): ``configure`` checks the work folder (and with ``init_checkpoint``
registers the model the robot runs now as version 1); ``activate`` starts a thread that checks
``dataset_root`` every ``poll_period_s`` seconds and runs a round (fine-tune a candidate, gate
it, deploy it if it is not worse) when ``min_new_frames`` new masked frames are there;
``deactivate`` stops it at the end of the epoch in progress (the candidate is resumed later).
Services ``~/trigger`` (a round now, however few frames are new) and ``~/rollback`` (deploy the
version deployed before the current one; ``sam2real adapt rollback --to`` picks any). While a
candidate trains, the SAM worker is paused with
:class:`sam2real_ros.nodes.lifecycle.LifecycleClient` when ``pause_sam_worker`` is set (they
share the robot's GPU). ``/diagnostics`` carries the state, the deployed version, the new frames
and the last decision. Parameters: config/adaptation_manager.yaml.
"""
import sys
import threading

from sam2real_ros.adaptation.config import AdaptConfig, AdaptError
from sam2real_ros.adaptation.manager import AdaptationManager
from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.lifecycle import AUTOSTART, LifecycleClient, ManagedNode
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.runner import run_node
from std_srvs.srv import Trigger

_D = AdaptConfig()
SHUTDOWN_WAIT_S = 3.0  # at SIGINT, wait this long for the round thread, then leave it
PARAMETERS = params.schema(
    Param('dataset_root', '', "the recorder's dataset root (episodes/ and masks/)",
          required=True),
    Param('model_path', '', 'the ONNX file the segmentation node watches (its model_path); '
          'replaced atomically on deploy', required=True),
    Param('work_dir', '', 'model versions, ledger.jsonl and the candidate; empty: '
          '<dataset_root>/adaptation'),
    Param('init_checkpoint', '', 'checkpoint of the model the robot runs now: registered as '
          'version 1 at configure when the work folder has no ledger yet'),
    Param('train_config', '', "training YAML of the candidates; empty: the deployed checkpoint's "
          'own'),
    Param('min_new_frames', _D.min_new_frames, 'new masked frames that start a round',
          bounds=(1, 10_000_000), read_only=False),
    Param('poll_period_s', 60.0, 'seconds between checks for new frames',
          bounds=(0.1, 86400.0), read_only=False),
    Param('max_iterations', _D.max_iterations, 'training iterations of a round (budget)',
          bounds=(1, 100_000_000)),
    Param('max_wall_s', _D.max_wall_s, 'training wall time of a round in seconds (budget, '
          'checked at the end of each epoch)', bounds=(1.0, 1e7)),
    Param('epoch_iterations', _D.epoch_iterations, 'iterations between candidate checkpoints '
          '(where a killed round resumes)', bounds=(1, 1_000_000)),
    Param('gate_data', '', 'held-out labeled real frames: a folder (images/ + labels/ class-id '
          'PNGs, or a BOP folder), a dataset spec YAML (e.g. a BOP test split) or a sam2real '
          'evaluate preset; never trained on. Empty: synthetic validation only'),
    Param('gate_class_map', _D.gate_class_map, "how gate classes map to the model's (as "
          'sam2real evaluate --class-map)'),
    Param('gate_frames', _D.gate_frames, 'real gate frames evaluated (0: all)',
          bounds=(0, 10_000_000)),
    Param('synthetic_val_frames', _D.synthetic_val_frames, 'synthetic validation frames (the '
          'forgetting check)', bounds=(1, 1_000_000)),
    Param('real_margin', _D.real_margin, 'real-gate mIoU the candidate may lose (lower bound of '
          'the paired bootstrap)', bounds=(0.0, 1.0)),
    Param('synthetic_margin', _D.synthetic_margin, 'synthetic validation mIoU the candidate '
          'may lose', bounds=(0.0, 1.0)),
    Param('confidence', _D.confidence, "confidence of the paired bootstrap's lower bound",
          bounds=(0.5, 0.999)),
    Param('bootstrap_samples', _D.bootstrap_samples, 'paired bootstrap resamples',
          bounds=(1, 1_000_000)),
    Param('seed', _D.seed, 'bootstrap seed', bounds=(0, 2**31 - 1)),
    Param('device', _D.device, 'training device', one_of=('auto', 'cpu', 'cuda')),
    Param('pause_sam_worker', True, 'pause the SAM worker (lifecycle deactivate) while a '
          'candidate trains: they share the device'),
    Param('sam_worker_node', '/sam_worker', 'the SAM worker lifecycle node to pause'),
    Param('diagnostics_period_s', 1.0, 'seconds between /diagnostics messages',
          bounds=(0.1, 60.0)),
    AUTOSTART,
)
CONFIG_HEADER = """Parameters of the adaptation_manager node (docs/adaptation.md):
ros2 run sam2real adaptation_manager --ros-args --params-file config/adaptation_manager.yaml
`sam2real adapt` takes the same settings as flags."""


class AdaptationManagerNode(ManagedNode):
    """The adaptation_manager lifecycle node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('adaptation_manager', PARAMETERS, **kwargs)
        self.mgr = None
        self._thread = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._force = False
        self.sam = None
        self.last = None  # the last ledger line this node wrote
        self.create_service(Trigger, '~/trigger', self._srv_trigger)
        self.create_service(Trigger, '~/rollback', self._srv_rollback)
        self.diagnostics = Diagnostics(self, 'adaptation_manager: fine-tune, gate, deploy',
                                       self.p['diagnostics_period_s'], self._status,
                                       self.p['dataset_root'])
        self.start_lifecycle()

    def on_parameter(self, name, value):
        """Apply ``min_new_frames`` / ``poll_period_s`` at the next check."""
        if name == 'min_new_frames' and self.mgr is not None:
            self.mgr.cfg.min_new_frames = int(value)
        self._wake.set()

    # --- lifecycle ---------------------------------------------------------------------------
    def configure(self):
        """Build the manager, repair its work folder, register ``init_checkpoint`` if new."""
        p = self.p
        keys = [k for k in vars(_D) if k not in ('train_overrides', 'progress')]
        cfg = AdaptConfig(**{k: p[k] for k in keys}, progress=False)
        hooks = {}
        if p['pause_sam_worker'] and p['sam_worker_node']:
            self.sam = LifecycleClient(self, p['sam_worker_node'])
            hooks = {'before_train': self._pause_sam, 'after_train': self._resume_sam}
        self.mgr = AdaptationManager(cfg, log=self.log, hooks=hooks)
        with self.mgr.locked():  # recover after a crash; one manager per work folder
            deployed = self.mgr.deployed()
        if deployed is None and p['init_checkpoint']:
            deployed = self.mgr.init(p['init_checkpoint'])['deployed_version']
        if deployed is None:
            raise AdaptError(f'no deployed model in {self.mgr.work}: set init_checkpoint (the '
                             f'checkpoint of the model the robot runs now) or run "sam2real '
                             f'adapt --init-checkpoint"')
        return f'configured: {deployed} deployed at {self.mgr.model_path}'

    def activate(self):
        """Start the watch thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='adaptation_manager')
        self._thread.start()
        return (f'active: a round when {self.mgr.cfg.min_new_frames} new masked frames are in '
                f'{self.mgr.root}')

    def deactivate(self):
        """Stop the watch thread (a round in progress stops at its epoch's end)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        return 'inactive: not watching (an unfinished candidate is resumed at activate)'

    def cleanup(self):
        """Drop the manager and the lifecycle client."""
        if self.sam is not None:
            self.sam.destroy()
            self.sam = None
        self.mgr = None

    def shutdown(self):
        """
        Stop the thread at SIGINT (run_node calls this before destroy_node).

        Waits ``SHUTDOWN_WAIT_S`` for the thread; a round still training then is left: returns
        False, and run_node ends the process at once (the candidate is resumed by the next
        round, as after a kill -9).
        """
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(SHUTDOWN_WAIT_S)
        if self._thread.is_alive():
            self.log('warning', f'a round was still training after {SHUTDOWN_WAIT_S:g} s: '
                     'left (the next round resumes its candidate)')
            return False
        return True

    # --- work --------------------------------------------------------------------------------
    def _loop(self):
        while not self._stop.is_set():
            force, self._force = self._force, False
            try:
                entry = self.mgr.run_round(force=force, stop=self._stop.is_set)
                if entry is not None:
                    self.last = entry
            except Exception as exc:  # one line; the node keeps watching
                self.mgr.state, self.mgr.detail = 'error', f'{type(exc).__name__}: {exc}'
                self.log('error', f'round failed: {self.mgr.detail}')
            self._wake.wait(self.p['poll_period_s'])
            self._wake.clear()

    def _pause_sam(self):
        if not self.sam.pause(timeout_s=120.0):
            self.log('warn', f'could not pause {self.p["sam_worker_node"]} (not running?); '
                     'training anyway')

    def _resume_sam(self):
        if not self.sam.resume(timeout_s=120.0):
            self.log('warn', f'could not resume {self.p["sam_worker_node"]}')

    def _srv_trigger(self, request, response):
        if self.lifecycle_state != 'active':
            response.success = False
            response.message = f'{self.lifecycle_state}: activate the node first'
            return response
        busy = self.mgr.state in ('training', 'evaluating', 'deploying')
        self._force = True
        self._wake.set()
        response.success = True
        response.message = ('a round is running; another one follows it' if busy
                            else 'round started')
        return response

    def _srv_rollback(self, request, response):
        if self.mgr is None:
            response.success, response.message = False, 'unconfigured: configure the node first'
            return response
        if self.mgr.state in ('training', 'evaluating', 'deploying'):
            response.success = False
            response.message = (f'a round is {self.mgr.state} ({self.mgr.detail}): roll back '
                                f'after it, or deactivate the node first')
            return response
        try:
            entry = self.mgr.rollback()
        except (AdaptError, ValueError) as exc:
            response.success, response.message = False, str(exc).splitlines()[0]
            return response
        self.last = entry
        response.success, response.message = True, entry['reason']
        return response

    def _status(self):
        mgr = self.mgr
        values = {'lifecycle_state': self.lifecycle_state,
                  'state': mgr.state if mgr else 'unconfigured',
                  'detail': mgr.detail if mgr else ''}
        if mgr is not None:
            try:
                entries = mgr.ledger.entries()
            except ValueError as exc:
                entries, values['ledger_error'] = [], str(exc)
            last = entries[-1] if entries else {}
            values.update(deployed_version=last.get('deployed_version') or '',
                          versions=len(mgr.versions.ids()),
                          last_decision=last.get('decision', ''),
                          last_reason=last.get('reason', ''),
                          model_path=mgr.model_path, work_dir=mgr.work)
        error = self.error or (mgr.detail if mgr is not None and mgr.state == 'error' else '')
        if error:
            return 'error', error, values
        if self.lifecycle_state != 'active':
            return 'ok', f'{self.lifecycle_state} (lifecycle): not watching', values
        return 'ok', f'{values["state"]}: {values["detail"]}', values


def main(argv=None):
    """Run ``adaptation_manager`` until SIGINT; returns the exit code (2 on bad parameters)."""
    return run_node('adaptation_manager', AdaptationManagerNode, argv, (AdaptError,))


if __name__ == '__main__':
    sys.exit(main())
