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
The adaptation manager (sam2real_ros/adaptation) on real files with the tiny CPU config.

A recorder dataset root with complete episodes and oracle SAM masks, a real initial checkpoint
(``sam2real train``, one iteration), real ONNX exports and a real ledger: a better candidate is
deployed, a deliberately worse one (class names shuffled by a test-only config: the model's
outputs no longer mean what their names say) is rejected and the deployed file stays, rollback
restores an earlier version, a kill -9 of a real ``sam2real adapt`` process while it trains
leaves the deployed model and the ledger valid and the next run resumes the candidate.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from sam2real_ros.adaptation import gate
from sam2real_ros.adaptation.config import AdaptConfig, AdaptError
from sam2real_ros.adaptation.ledger import Ledger, sha256_file
from sam2real_ros.adaptation.manager import AdaptationManager
from sam2real_ros.data.procedural import CLASS_NAMES, oracle_segments, TabletopRenderer
from sam2real_ros.recording.episode_store import EpisodeWriter, iter_frames
from sam2real_ros.sam.mask_store import MaskStore

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(REPO, 'training', 'configs', 'tiny_cpu.yaml')
FAST = ['log.progress=false', 'log.tensorboard=false', 'log.images_per_epoch=0']


def record_episodes(root, n_episodes, frames=4, first=0, size=(96, 128), masks=True):
    """Write complete episodes of 'real' procedural frames plus their oracle masks."""
    r = TabletopRenderer('real', size=size)
    store = MaskStore(os.path.join(root, 'masks'))
    for e in range(first, first + n_episodes):
        t0 = (e + 1) * 10**12
        w = EpisodeWriter(str(root), t0, {})
        scenes = []
        for i, phase in enumerate(('before', 'during', 'during', 'after')[:frames]):
            scene = r.render([77, e, i])
            w.add_frame(t0 + i * 10**8, phase, scene['rgb'])
            scenes.append((t0 + i * 10**8, scene))
        w.close()
    if not masks:
        return
    by_stamp = {}
    for e in range(first, first + n_episodes):
        for i in range(frames):
            by_stamp[(e + 1) * 10**12 + i * 10**8] = r.render([77, e, i])
    for ref in iter_frames(str(root)):
        if store.status(ref.key) is None:
            scene = by_stamp[ref.stamp_ns]
            masks = oracle_segments(scene['instances'], np.random.default_rng(ref.stamp_ns))
            store.write(ref.key, masks, np.ones((len(masks), 2)), segmenter='oracle')


def train_initial(out, iterations=1):
    """Train a real ``sam2real train`` checkpoint of the tiny config for ``iterations``."""
    from sam2real_ros.training import train
    code = train.main(['--config', TINY, '--out', str(out), 'max_epochs=1',
                       f'frames_per_epoch={iterations}'] + FAST)
    assert code == 0
    return os.path.join(str(out), 'checkpoint.pt')


def tiny_cfg(tmp_path, **kw):
    base = {'dataset_root': str(tmp_path / 'data'),
            'model_path': str(tmp_path / 'node' / 'model.onnx'),
            'train_config': TINY, 'train_overrides': list(FAST), 'min_new_frames': 4,
            'max_iterations': 12, 'epoch_iterations': 6, 'synthetic_val_frames': 6,
            'gate_data': str(tmp_path / 'gate.yaml'), 'bootstrap_samples': 500,
            'progress': False, 'device': 'cpu'}
    base.update(kw)
    return AdaptConfig(**base)


def write_gate(tmp_path):
    # held-out labeled "real" frames: another seed than any training stream
    (tmp_path / 'gate.yaml').write_text(
        'type: procedural\nappearance: real\nseed: 4242\nsize: [96, 128]\nlength: 8\n')


@pytest.fixture(scope='module')
def weak_checkpoint(tmp_path_factory):
    return train_initial(tmp_path_factory.mktemp('weak'), iterations=1)


def test_paired_bootstrap_and_decision_rule():
    same = {str(i): 0.5 + 0.01 * (i % 3) for i in range(20)}
    better = {k: v + 0.1 for k, v in same.items()}
    worse = {k: v - 0.1 for k, v in same.items()}
    b = gate.paired_bootstrap(better, same, samples=200)
    assert b['frames'] == 20 and b['mean_diff'] == pytest.approx(0.1)
    assert b['lower'] == pytest.approx(0.1)  # constant differences: no spread
    syn = {'synthetic': {'miou': 0.5}}
    ok, reason, info = gate.decide(dict(syn, real={'miou': 0.6, 'frame_scores': better}),
                                   dict(syn, real={'miou': 0.5, 'frame_scores': same}))
    assert ok and 'not worse' in reason and info['real']['frames'] == 20
    ok, reason, _ = gate.decide(dict(syn, real={'miou': 0.4, 'frame_scores': worse}),
                                dict(syn, real={'miou': 0.5, 'frame_scores': same}))
    assert not ok and 'lower bound' in reason
    # within the margin: one frame 0.3 lower, the rest equal, 20 frames -> mean -0.015
    slightly = dict(same, **{'0': same['0'] - 0.3})
    ok, _, info = gate.decide(dict(syn, real={'miou': 0.49, 'frame_scores': slightly}),
                              dict(syn, real={'miou': 0.5, 'frame_scores': same}),
                              real_margin=0.1)
    assert ok and info['real']['lower'] < 0
    # forgetting on synthetic validation alone rejects; a diverged (NaN) candidate too
    ok, reason, _ = gate.decide({'synthetic': {'miou': 0.3}, 'real': None},
                                {'synthetic': {'miou': 0.5}, 'real': None})
    assert not ok and 'forgetting' in reason
    ok, reason, _ = gate.decide({'synthetic': {'miou': float('nan')}, 'real': None},
                                {'synthetic': {'miou': 0.5}, 'real': None})
    assert not ok and 'not finite' in reason


def test_ledger_cuts_a_torn_line_and_names_a_corrupt_one(tmp_path):
    led = Ledger(tmp_path / 'ledger.jsonl')
    led.append({'decision': 'init', 'deployed_version': 'v0001'})
    with open(led.path, 'ab') as f:
        f.write(b'{"decision": "deploy", "deployed_vers')  # killed mid-write
    assert led.deployed_version() == 'v0001'
    assert led.repair() and led.entries() == [{'decision': 'init', 'deployed_version': 'v0001'}]
    with open(led.path, 'ab') as f:
        f.write(b'garbage\n')
    with pytest.raises(ValueError, match='line 2 is not valid JSON'):
        led.entries()


def _node_file(cfg):
    st = os.stat(cfg.model_path)
    return sha256_file(cfg.model_path), st.st_ino


@pytest.mark.slow
def test_better_deployed_worse_rejected_rollback(tmp_path, weak_checkpoint):
    record_episodes(tmp_path / 'data', 2)
    write_gate(tmp_path)
    cfg = tiny_cfg(tmp_path)
    mgr = AdaptationManager(cfg)
    with pytest.raises(AdaptError, match='no deployed model yet'):
        mgr.run_round(force=True)
    init = mgr.init(weak_checkpoint)
    assert init['decision'] == 'init' and _node_file(cfg)[0] == init['sha256']
    waiting = AdaptationManager(tiny_cfg(tmp_path, min_new_frames=9))
    assert waiting.run_round() is None and waiting.state == 'waiting'
    assert waiting.detail == '8 new frames of 9'

    # 1. a better candidate (12 iterations from a 1-iteration model) is deployed
    entry = AdaptationManager(cfg).run_round()  # 8 new frames >= min_new_frames 4
    assert entry['decision'] == 'deploy', entry['reason']
    v2 = entry['candidate_version']
    assert entry['deployed_version'] == v2 and entry['base_version'] == init['candidate_version']
    m = entry['metrics']
    assert m['candidate']['real']['miou'] > m['deployed']['real']['miou']
    assert entry['gate']['real']['frames'] == 8 and entry['data']['frames'] == 8
    assert entry['data']['new_frames'] == 8 and entry['train']['iterations'] == 12
    assert _node_file(cfg)[0] == sha256_file(mgr.versions.model(v2)) == entry['sha256']
    assert not os.path.exists(os.path.join(cfg.work, 'candidate'))
    assert mgr.run_round() is None and 'new frames' in mgr.detail  # nothing new since

    # 2. a deliberately worse candidate: a test-only config names the classes shuffled, so
    # its labels no longer mean what the deployed model's do -> rejected, node file untouched
    record_episodes(tmp_path / 'data', 1, first=2)
    names = list(CLASS_NAMES[1:]) + [CLASS_NAMES[0]]
    shuffled = tmp_path / 'shuffled_labels.yaml'
    shuffled.write_text(open(TINY).read() + f'class_names: {json.dumps(names)}\n')
    before = _node_file(cfg)
    bad = AdaptationManager(tiny_cfg(tmp_path, train_config=str(shuffled))).run_round()
    assert bad['decision'] == 'reject', bad['reason']
    assert 'kept the deployed model' in bad['reason'] and 'lower bound' in bad['reason']
    assert bad['deployed_version'] == v2 and bad['data']['new_frames'] == 4
    assert _node_file(cfg) == before  # not even rewritten: the node does not reload
    v3 = bad['candidate_version']
    assert os.path.isfile(mgr.versions.model(v3))  # kept with its metrics
    assert mgr.versions.info(v3)['metrics']['real']['miou'] < m['candidate']['real']['miou']

    # 3. rollback: to the previous deployed version, never to a rejected one; atomic replace
    with pytest.raises(AdaptError, match='never deployed'):
        mgr.rollback(v3)
    back = mgr.rollback()
    assert back['decision'] == 'rollback' and back['deployed_version'] == 'v0001'
    assert _node_file(cfg)[0] == init['sha256'] and _node_file(cfg)[1] != before[1]
    assert AdaptationManager(cfg).rollback(v2)['deployed_version'] == v2
    lines = Ledger(os.path.join(cfg.work, 'ledger.jsonl')).entries()
    assert [e['decision'] for e in lines] == ['init', 'deploy', 'reject', 'rollback',
                                              'rollback']
    for e in lines:
        assert {'time', 'reason', 'metrics', 'deployed_version', 'sha256'} <= set(e)

    # 4. recovery: a deploy cut short between its ledger line and the copy is completed;
    # versions that no line names are removed; a file the ledger does not know is refused
    with open(mgr.versions.model('v0001'), 'rb') as f:
        open(cfg.model_path, 'wb').write(f.read())
    os.makedirs(os.path.join(cfg.work, 'versions', 'v0009'))
    os.makedirs(os.path.join(cfg.work, 'versions', '.tmp-1'))
    notes = AdaptationManager(cfg).recover()
    assert len(notes) == 2 and _node_file(cfg)[0] == sha256_file(mgr.versions.model(v2))
    assert mgr.versions.ids() == ['v0001', 'v0002', 'v0003']
    open(cfg.model_path, 'wb').write(b"someone else's model")
    with pytest.raises(AdaptError, match='no version in'):
        AdaptationManager(cfg).recover()


def _cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.Popen([sys.executable, '-m', 'sam2real_ros.cli', 'adapt', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=REPO, **kw)


def test_the_work_lock_waits_for_a_short_holder_then_names_a_long_one(tmp_path):
    # the node's watch thread holds .lock for a moment every poll; a rollback that comes in
    # that moment (node service or CLI) waits for it instead of failing at once
    import threading
    mgr, other = AdaptationManager(tiny_cfg(tmp_path)), AdaptationManager(tiny_cfg(tmp_path))
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.locked():
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert held.wait(10)
    with pytest.raises(AdaptError, match=r'another adaptation manager .* holds \.lock'):
        with mgr.locked(wait_s=0.3):
            pass
    threading.Timer(0.3, release.set).start()
    t0 = time.monotonic()
    with mgr.locked(wait_s=20):
        waited = time.monotonic() - t0
    t.join(10)
    assert 0.2 < waited < 20


def test_cli_errors_are_one_line(tmp_path):
    from sam2real_ros.adaptation.adapt import main
    cases = [
        (['--dataset-root', str(tmp_path), '--model-path', str(tmp_path / 'm.onnx')],
         'no deployed model yet'),
        (['rollback', '--dataset-root', str(tmp_path)], '--model-path is required'),
        (['--dataset-root', str(tmp_path), '--model-path', 'm.onnx', '--init-checkpoint',
          str(tmp_path / 'nope.pt')], 'checkpoint file not found'),
        (['--dataset-root', str(tmp_path), '--model-path', 'm.onnx', '--confidence', '2'],
         'confidence must be in'),
    ]
    for argv, want in cases:
        p = _cli(*argv)
        out, err = p.communicate(timeout=600)
        assert p.returncode == 2, err
        assert err.count('\n') == 1 and want in err and 'Traceback' not in err, err
    assert main(['status', '--dataset-root', str(tmp_path), '--model-path', 'm.onnx']) == 0


@pytest.mark.slow
def test_kill_9_while_training_keeps_model_and_ledger(tmp_path, weak_checkpoint):
    record_episodes(tmp_path / 'data', 2)
    write_gate(tmp_path)
    cfg = tiny_cfg(tmp_path)
    init = AdaptationManager(cfg).init(weak_checkpoint)
    common = ['--dataset-root', cfg.dataset_root, '--model-path', cfg.model_path, '--config',
              TINY, '--gate', cfg.gate_data, '--synthetic-val-frames', '6', '--device', 'cpu',
              '--bootstrap-samples', '200', '--epoch-iterations', '2', '--no-progress', *FAST]
    p = _cli(*common, '--max-iterations', '400', '--force')
    ckpt = os.path.join(cfg.work, 'candidate', 'run', 'checkpoint.pt')
    deadline = time.monotonic() + 900
    while not os.path.isfile(ckpt):  # the candidate's first epoch is on disk: mid-training
        assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    led = Ledger(os.path.join(cfg.work, 'ledger.jsonl'))
    assert led.entries() == [init]  # valid, and no decision was made
    assert sha256_file(cfg.model_path) == init['sha256']  # the deployed model is intact
    # the next run resumes the half-trained candidate (same round) and decides
    p = _cli(*common, '--max-iterations', '4')
    out, err = p.communicate(timeout=900)
    assert p.returncode == 0, err
    entry = json.loads(out.strip().splitlines()[-1])
    assert 'resuming the candidate' in err
    assert entry['train']['resumed'] == 1 and entry['decision'] in ('deploy', 'reject')
    assert [e['decision'] for e in led.entries()] == ['init', entry['decision']]
    assert sha256_file(cfg.model_path) == entry['sha256']


def test_training_stops_when_asked_and_resumes(tmp_path):
    from sam2real_ros.training import train
    from sam2real_ros.training.config import load_config
    cfg = load_config(TINY, ['max_epochs=3', 'frames_per_epoch=1', 'data.eval_frames=1']
                      + FAST)
    asked = []
    out = train.run(cfg, str(tmp_path / 'run'), stop=lambda: asked.append(1) or True)
    assert out['epochs'] == 1 and out['stopped_early'] and asked == [1]
    out = train.run(cfg, str(tmp_path / 'run'), resume=True, stop=lambda: False)
    assert out['epochs'] == 3 and not out['stopped_early'] and out['iterations'] == 3
