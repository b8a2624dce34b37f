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
The adaptation_manager node with real processes over real DDS (issue #19, item 3).

The simulated robot records its own data: the sim_camera (world source: a tabletop the grasps
clear) and the sim grasp server, two grasps sent to it -> the grasp_recorder writes an episode
around each -> the sam_worker node segments them (fallback segmenter) -> the adaptation_manager
node (registered the weak initial checkpoint as version 1, real gate = a folder of labeled
frames) trains a candidate while it pauses the SAM worker, gates it and deploys it -> the
segmentation_node, fed by the same camera, hot-reloads the new model; the ~/rollback service
brings the previous version back, and the segmentation node reloads that one too; a kill -9 of
the manager while a round triggered by ~/trigger trains leaves the deployed model and the
ledger valid; the restarted node (with a test-only config that shuffles the class names)
resumes the candidate, the gate rejects it and the segmentation node keeps its model.
"""
import json
import os
import signal
import time

import pytest
from sam2real_ros.adaptation.ledger import Ledger, sha256_file
from sam2real_ros.data.procedural import CLASS_NAMES
from sam2real_ros.nodes.graph import GRASP_ACTION, node_command
from sam2real_ros.recording.episode_store import iter_frames
from sam2real_ros.sam.mask_store import MaskStore

from conftest import (call_service, grasp_until_recorded, send_grasp, wait_until,  # noqa: I100
                      write_labeled_folder)
from test_adaptation import TINY, train_initial  # noqa: I100

# the real gate: held-out labeled frames as an image+label folder (another seed than any
# training stream), never inside the recorder's dataset root
GATE = {'type': 'procedural', 'appearance': 'real', 'seed': 4242, 'size': [96, 128],
        'length': 8}


class Listener:
    """A test node: /diagnostics of every node, and the manager's services."""

    def __init__(self):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.action import ActionClient
        from sam2real_ros.nodes.runner import BackgroundNode
        from std_srvs.srv import Trigger
        from test_msgs.action import Fibonacci
        self.bg = BackgroundNode('adaptation_test')
        self.node = self.bg.node
        self.diag = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 50)
        self.rollback = self.node.create_client(Trigger, '/adaptation_manager/rollback')
        self.trigger = self.node.create_client(Trigger, '/adaptation_manager/trigger')
        self.request = Trigger.Request
        self.grasp_client = ActionClient(self.node, Fibonacci, GRASP_ACTION)
        self.goal = Fibonacci.Goal

    def grasp(self, timeout=120):
        """Send one grasp to the simulated grasp server and wait until it succeeded."""
        from action_msgs.msg import GoalStatus
        _, status = send_grasp(self.grasp_client, self.goal(order=2), timeout)
        assert status == GoalStatus.STATUS_SUCCEEDED

    def _on_diag(self, msg):
        for st in msg.status:
            name = st.name.split(':')[0]
            self.diag[name] = dict({kv.key: kv.value for kv in st.values}, _message=st.message)

    def value(self, node, key):
        return self.diag.get(node, {}).get(key)

    def call(self, client, timeout=60):
        assert client.wait_for_service(timeout_sec=timeout)
        return call_service(client, self.request(), timeout)  # one try: rollback is not idempotent

    def close(self):
        self.bg.close()


@pytest.mark.rostest
@pytest.mark.slow
def test_loop_deploys_pauses_sam_and_rolls_back(tmp_path, processes):
    weak = train_initial(tmp_path / 'weak', iterations=1)
    root = tmp_path / 'data'
    write_labeled_folder(GATE, tmp_path / 'gate')
    model = tmp_path / 'node' / 'model.onnx'
    lis = Listener()
    try:
        cam = processes.start(*node_command('sim_camera', {
            'source': 'world', 'rate_hz': 2.0, 'width': 128, 'height': 96,
            'grasp_motion_s': 0.5}, params_file=False), name='camera')
        grasp = processes.start(*node_command('grasp_server', {'grasp_duration_s': 1.0},
                                              params_file=False), name='grasp_server')
        rec = processes.start(*node_command('grasp_recorder', {
            'dataset_root': str(root), 'min_free_gb': 0.0, 'before_s': 1.0, 'after_s': 1.0,
            'diagnostics_period_s': 0.5}, params_file=False), name='grasp_recorder')
        sam = processes.start(*node_command('sam_worker', {
            'dataset_root': str(root), 'segmenter': 'fallback', 'poll_period_s': 0.2,
            'nice': 0, 'fallback.min_area_fraction': 0.003, 'diagnostics_period_s': 0.5},
            params_file=False), name='sam_worker')
        seg = processes.start(*node_command('segmentation_node', {
            'model_path': str(model), 'diagnostics_period_s': 0.5}, params_file=False),
            name='segmentation_node')
        sim = (cam, grasp, rec, sam, seg)

        def sim_alive():
            return all(p.poll() is None for p in sim) or \
                pytest.fail('\n'.join(processes.output(p) for p in sim))

        # the robot grasps twice; the recorder writes an episode around each grasp (the second
        # grasp starts once the first episode is complete, so they are two episodes)
        store = MaskStore(str(root / 'masks'))

        def episodes():
            sim_alive()
            return {f.episode_id for f in iter_frames(str(root), complete_only=True)}

        # grasp once the recorder's status reader has matched the grasp server (its own count)
        assert wait_until(lambda: sim_alive()
                          and lis.value('grasp_recorder', 'actions_unmatched') == ''
                          and float(lis.value('grasp_recorder', 'camera_rate_hz') or 0) > 0,
                          120), processes.output(rec)
        for n in (1, 2):
            # on failure, the recorder's counters say whether it saw the goal and whether an
            # episode was not written
            assert grasp_until_recorded(
                lis.grasp, lambda: len(episodes()) >= n,
                lambda: int(lis.value('grasp_recorder', 'terminal_goals_ignored') or 0)), \
                (f'grasp {n}', lis.diag.get('grasp_recorder'), processes.output(rec),
                 processes.output(grasp))
        assert len(episodes()) == 2
        frames = list(iter_frames(str(root), complete_only=True))
        assert {'before', 'during', 'after'} <= {f.phase for f in frames}
        # the SAM worker segments them; the frames with masks are the round's training data
        assert wait_until(lambda: sim_alive() and all(store.status(f.key) is not None
                                                      for f in frames), 600), \
            processes.output(sam)
        masked = sum(store.status(f.key) == 'done' for f in frames)
        assert masked >= 4, [store.status(f.key) for f in frames]
        settings = {
            'dataset_root': str(root), 'model_path': str(model), 'init_checkpoint': weak,
            'train_config': TINY, 'gate_data': str(tmp_path / 'gate'),
            'min_new_frames': masked, 'max_iterations': 12, 'epoch_iterations': 6,
            'synthetic_val_frames': 6, 'bootstrap_samples': 200, 'device': 'cpu',
            'poll_period_s': 0.5, 'diagnostics_period_s': 0.5}
        manager = node_command('adaptation_manager', settings, params_file=False)
        mgr = processes.start(*manager, name='adaptation_manager')
        procs = sim + (mgr,)
        led = Ledger(root / 'adaptation' / 'ledger.jsonl')

        def alive():
            return all(p.poll() is None for p in procs) or \
                pytest.fail('\n'.join(processes.output(p) for p in procs))

        def installed(n):
            # the ledger line comes first (the commit point), then model_path is replaced
            entries = led.entries()
            return alive() and len(entries) >= n and model.is_file() and \
                sha256_file(model) == entries[n - 1]['sha256']

        # version 1 is deployed at configure; the segmentation node loads it and labels frames
        assert wait_until(lambda: installed(1), 300), processes.output(mgr)
        v1 = led.entries()[0]
        assert v1['decision'] == 'init'
        assert wait_until(lambda: alive() and int(lis.value('segmentation_node', 'frames_out')
                                                  or 0) > 0, 300), processes.output(seg)
        loads = int(lis.value('segmentation_node', 'model_loads'))

        # the recorded, masked frames start a round; the candidate is deployed
        assert wait_until(lambda: installed(2), 900), processes.output(mgr)
        entry = led.entries()[1]
        assert entry['decision'] == 'deploy', entry['reason']
        assert entry['data']['frames'] == masked and entry['data']['new_frames'] == masked
        assert sorted(entry['data']['episodes']) == sorted(episodes())
        assert entry['gate']['real']['frames'] == GATE['length']
        assert wait_until(lambda: alive() and int(lis.value('segmentation_node', 'model_loads'))
                          > loads, 120), processes.output(seg)
        assert wait_until(lambda: lis.value('adaptation_manager', 'deployed_version')
                          == entry['deployed_version'], 30)
        assert lis.value('adaptation_manager', 'last_decision') == 'deploy'
        # the SAM worker was paused while the candidate trained, and resumed afterwards
        sam_log = processes.output(sam)
        assert 'inactive: worker stopped, model freed' in sam_log, sam_log
        assert wait_until(lambda: lis.value('sam_worker', 'lifecycle_state') == 'active', 60)

        # rollback service: version 1 again, and the segmentation node reloads it
        loads = int(lis.value('segmentation_node', 'model_loads'))
        resp = lis.call(lis.rollback)
        assert resp.success, resp.message
        assert led.entries()[-1]['decision'] == 'rollback'
        assert sha256_file(model) == v1['sha256']
        assert wait_until(lambda: alive() and int(lis.value('segmentation_node', 'model_loads'))
                          > loads, 120), processes.output(seg)
        # a second rollback goes back to the deployed candidate
        loads = int(lis.value('segmentation_node', 'model_loads'))
        resp = lis.call(lis.rollback)
        assert resp.success and sha256_file(model) == entry['sha256'], resp.message
        assert wait_until(lambda: alive() and int(lis.value('segmentation_node', 'model_loads'))
                          > loads, 120), processes.output(seg)
        assert lis.value('adaptation_manager', 'lifecycle_state') == 'active'

        # kill -9 of the manager while a triggered round trains: the deployed model and the
        # ledger stay valid; the node restarted with a test-only training config that names
        # the classes shuffled (the candidate's outputs no longer mean what their names say)
        # resumes the candidate, which the gate rejects: the segmentation node keeps its model
        deployed = led.entries()[-1]
        loads = int(lis.value('segmentation_node', 'model_loads'))
        assert lis.call(lis.trigger).success
        ckpt = root / 'adaptation' / 'candidate' / 'run' / 'checkpoint.pt'
        assert wait_until(lambda: alive() and ckpt.is_file(), 600), processes.output(mgr)
        os.kill(mgr.pid, signal.SIGKILL)
        assert mgr.wait(60) == -signal.SIGKILL
        assert led.entries()[-1] == deployed and sha256_file(model) == deployed['sha256']
        shuffled = tmp_path / 'shuffled_labels.yaml'
        names = list(CLASS_NAMES[1:]) + [CLASS_NAMES[0]]
        shuffled.write_text(open(TINY).read() + f'class_names: {json.dumps(names)}\n')
        mgr = processes.start(*node_command('adaptation_manager', dict(
            settings, train_config=str(shuffled)), params_file=False),
            name='adaptation_manager_restarted')
        procs = sim + (mgr,)
        assert wait_until(lambda: installed(5), 900), processes.output(mgr)
        resumed = led.entries()[-1]
        assert resumed['train']['resumed'] == 1 and resumed['base_version'] == \
            deployed['deployed_version']
        assert 'resuming the candidate' in processes.output(mgr)
        assert resumed['decision'] == 'reject' and len(led.entries()) == 5, resumed['reason']
        assert resumed['deployed_version'] == deployed['deployed_version']
        assert sha256_file(model) == deployed['sha256']
        assert wait_until(lambda: lis.value('adaptation_manager', 'last_decision') == 'reject',
                          30)
        assert int(lis.value('segmentation_node', 'model_loads')) == loads
    finally:
        lis.close()
    for p in (mgr, seg, sam, rec, grasp, cam):
        assert processes.stop(p) == 0, processes.output(p)
    assert 'Traceback' not in mgr.log_path.read_text()


@pytest.mark.rostest
@pytest.mark.slow
def test_sigint_while_a_round_trains_exits_0(tmp_path, processes):
    """
    SIGINT while a candidate trains: exit 0 within seconds, never SIGABRT (#21).

    The round's thread is inside torch (which hands the GIL back in a C++ destructor): left to
    Python's finalization it would be ended there, "terminate called without an active
    exception". The candidate stays on disk for the next round, as after a kill -9.
    """
    from test_adaptation import record_episodes, write_gate
    weak = train_initial(tmp_path / 'weak', iterations=1)
    root = tmp_path / 'data'
    record_episodes(root, 2)
    write_gate(tmp_path)
    model = tmp_path / 'node' / 'model.onnx'
    settings = {'dataset_root': str(root), 'model_path': str(model), 'init_checkpoint': weak,
                'train_config': TINY, 'gate_data': str(tmp_path / 'gate.yaml'),
                'min_new_frames': 8, 'max_iterations': 100000, 'epoch_iterations': 100000,
                'synthetic_val_frames': 6, 'bootstrap_samples': 200, 'device': 'cpu',
                'poll_period_s': 0.5, 'diagnostics_period_s': 0.5}
    mgr = processes.start(*node_command('adaptation_manager', settings, params_file=False),
                          name='adaptation_manager')
    run = root / 'adaptation' / 'candidate' / 'run'
    assert wait_until(lambda: mgr.poll() is None and 'candidate from' in processes.output(mgr)
                      and run.is_dir(), 300), processes.output(mgr)
    time.sleep(3.0)  # into the training iterations
    led = Ledger(root / 'adaptation' / 'ledger.jsonl').entries()
    code = processes.stop(mgr, timeout=60)
    log = processes.output(mgr)
    assert code == 0, log
    assert 'terminate called' not in log and 'Traceback' not in log, log
    assert 'a round was still training' in log, log
    assert Ledger(root / 'adaptation' / 'ledger.jsonl').entries() == led
    assert sha256_file(model) == led[-1]['sha256']
