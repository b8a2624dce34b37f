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

"""Tests of the episode store: layout, readers, crash recovery, quota (real files)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sam2real_ros.common import io_utils
from sam2real_ros.common.io_utils import read_image_unchanged, read_rgb
from sam2real_ros.recording import episode_recovery, episode_store
from sam2real_ros.recording.episode_sink import EpisodeSink, Tick
from sam2real_ros.recording.episode_store import EpisodeError, EpisodeWriter
from sam2real_ros.recording.grasp_episodes import (EpisodeConfig, EpisodeEnd, EpisodeLogic,
                                                   EpisodeStart, Frame, FrameLost, FrameOut)
from small_fs import fill, small_filesystem

T0 = 1_790_000_000 * 10**9
CAM = {'width': 32, 'height': 24, 'K': [1.0] * 9, 'D': [0.0] * 5,
       'distortion_model': 'plumb_bob', 'frame_id': 'cam'}


def image(i):
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_write_read_roundtrip(tmp_path):
    w = EpisodeWriter(tmp_path, T0, {'trigger': {'source': 'service', 'goal_id': 'service'},
                                     'camera': CAM})
    depth = np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 50
    for i, phase in enumerate(['before', 'during', 'during', 'after']):
        w.add_frame(T0 + i, phase, image(i), depth if i == 1 else None)
    w.close(outcome='succeeded', end_ns=T0 + 9, end_reason='after_elapsed')
    eps = episode_store.list_episodes(tmp_path)
    assert len(eps) == 1 and eps[0]['state'] == 'complete'
    assert eps[0]['camera'] == CAM and eps[0]['outcome'] == 'succeeded'
    assert eps[0]['counts'] == {'before': 1, 'during': 2, 'after': 1}
    frames = list(episode_store.iter_frames(tmp_path))
    assert [f.phase for f in frames] == ['before', 'during', 'during', 'after']
    for i, f in enumerate(frames):
        assert f.key == f'episodes/{eps[0]["episode_id"]}/rgb/{T0 + i}_{f.phase}.png'
        assert os.path.join(str(tmp_path), *f.key.split('/')) == f.image_path
        assert np.array_equal(read_rgb(f.image_path), image(i))  # lossless, RGB order
    d = read_image_unchanged(os.path.join(eps[0]['dir'], eps[0]['frames'][1]['depth']))
    assert d.dtype == np.uint16 and np.array_equal(d, depth)


def test_readers_skip_incomplete_and_reject_bad_json(tmp_path):
    w = EpisodeWriter(tmp_path, T0, {})
    w.add_frame(T0, 'during', image(0))
    assert list(episode_store.iter_frames(tmp_path)) == []  # still recording
    assert len(list(episode_store.iter_frames(tmp_path, complete_only=False))) == 1
    bad = tmp_path / 'episodes' / 'broken'
    bad.mkdir()
    (bad / 'episode.json').write_text('{"format": "sam2real-episode", "state": "nope"')
    with pytest.raises(EpisodeError, match='broken.*episode.json'):
        episode_store.load_episode(bad)
    w.close()


CRASHING_WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    from sam2real_ros.recording.episode_store import EpisodeWriter
    w = EpisodeWriter(sys.argv[1], 10**18, {'trigger': {'source': 'service'}})
    for i in range(5):  # episode.json is rewritten only on phase changes
        w.add_frame(10**18 + i, 'during', np.full((24, 32, 3), i, np.uint8))
    print('written', flush=True)
    sys.stdin.readline()
""")


def test_recovery_after_kill9_keeps_every_frame(tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', CRASHING_WRITER, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'written'
        ep_dir = episode_store.list_episodes(tmp_path)[0]['dir']
        assert not episode_recovery.recover_interrupted(tmp_path)  # writer alive: untouched
        assert len(json.load(open(os.path.join(ep_dir, 'episode.json')))['frames']) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    rep = episode_recovery.recover_interrupted(tmp_path)
    assert rep.interrupted == [os.path.basename(ep_dir)] and not rep.removed
    meta = episode_store.load_episode(ep_dir)
    assert meta['state'] == 'interrupted' and len(meta['frames']) == 5
    assert meta['end_reason'] == 'writer_died'
    for i, f in enumerate(episode_store.iter_frames(tmp_path, complete_only=False)):
        assert read_rgb(f.image_path)[0, 0, 0] == i
    assert not episode_recovery.recover_interrupted(tmp_path)  # idempotent


# A writer killed at a chosen point: its first episode.json never gets renamed into place (the
# temporary file stays, as after a kill during that write); with FRAMES > 0 it writes frames
# after that, as the writer thread of a recorder would while its json write hangs.
KILLED_BEFORE_FIRST_JSON = textwrap.dedent("""
    import sys
    import numpy as np
    from sam2real_ros.common import io_utils
    from sam2real_ros.recording import episode_recovery, episode_store
    real_replace = io_utils.os.replace

    def replace(src, dst):
        if dst.endswith('episode.json'):
            return  # "killed" between writing the temp file and renaming it
        real_replace(src, dst)

    io_utils.os.replace = replace
    w = episode_store.EpisodeWriter(sys.argv[1], 10**18, {
        'trigger': {'source': 'action:/grasp', 'goal_id': 'ab' * 16}})
    for i in range(int(sys.argv[2])):
        w.add_frame(10**18 + i, 'before' if i == 0 else 'during',
                    np.full((24, 32, 3), i, np.uint8))
    print('written', flush=True)
    sys.stdin.readline()
""")


@pytest.mark.parametrize('frames', [0, 3])
def test_killed_before_first_episode_json_is_repaired_and_reported(tmp_path, frames):
    proc = subprocess.Popen([sys.executable, '-c', KILLED_BEFORE_FIRST_JSON, str(tmp_path),
                             str(frames)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == 'written'
        (folder,) = (tmp_path / 'episodes').iterdir()
        assert not (folder / 'episode.json').exists()
        assert (folder / '.writer.lock').exists()
        assert [n for n in os.listdir(folder) if io_utils.is_temp_file(n)]
        assert not episode_recovery.recover_interrupted(tmp_path)  # live writer: left alone
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    problems = []
    assert episode_store.list_episodes(tmp_path, problems=problems) == []
    assert problems and 'episode.json: missing' in problems[0][1]  # readers say why they skip
    rep = episode_recovery.recover_interrupted(tmp_path)
    if frames == 0:  # nothing worth keeping: removed, and said so
        assert rep.removed == [folder.name] and not rep.interrupted and not folder.exists()
        assert 'held no frame' in rep.summary()
        return
    assert rep.interrupted == rep.rebuilt == [folder.name]
    assert 'rebuilt from their frames' in rep.summary() and rep.temp_files >= 1
    meta = episode_store.load_episode(folder)
    assert meta['state'] == 'interrupted' and meta['end_reason'] == 'writer_died'
    assert [f['phase'] for f in meta['frames']] == ['before', 'during', 'during']
    assert meta['trigger'] == {'source': 'action:/grasp', 'goal_id': 'ab' * 16}  # temp json
    assert meta['start_ns'] == 10**18
    assert not [n for n in os.listdir(folder) if io_utils.is_temp_file(n)]
    assert not episode_recovery.recover_interrupted(tmp_path)


# A writer killed right after it created the episode folder, before its rgb/ folder and lock.
KILLED_AFTER_MKDIR = textwrap.dedent("""
    import os
    import sys
    from sam2real_ros.recording import episode_recovery, episode_store
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kw):
        real_mkdir(path, *args, **kw)
        if os.path.basename(os.path.dirname(path)) == 'episodes':
            print('created', flush=True)
            sys.stdin.readline()  # killed here

    episode_store.os.mkdir = mkdir
    episode_store.EpisodeWriter(sys.argv[1], 10**18, {})
""")


def test_killed_right_after_creating_the_folder_is_removed_and_reported(tmp_path):
    proc = subprocess.Popen([sys.executable, '-c', KILLED_AFTER_MKDIR, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'created'
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    (folder,) = (tmp_path / 'episodes').iterdir()
    assert os.listdir(folder) == []
    rep = episode_recovery.recover_interrupted(tmp_path)
    assert rep.removed == [folder.name] and not rep.unreadable, rep
    assert 'held no frame' in rep.summary() and not folder.exists()
    # an empty folder that is not named like an episode is not ours: reported, left alone
    (tmp_path / 'episodes' / 'mine').mkdir()
    rep = episode_recovery.recover_interrupted(tmp_path)
    assert [i for i, _ in rep.unreadable] == ['mine'] and not rep.removed


def test_unreadable_episode_json_is_reported_not_touched(tmp_path):
    bad = tmp_path / 'episodes' / 'broken'
    bad.mkdir(parents=True)
    (bad / 'episode.json').write_text('{"format": "sam2real-episode", "state": "nope"')
    rep = episode_recovery.recover_interrupted(tmp_path)
    assert [i for i, _ in rep.unreadable] == ['broken'] and 'broken' in rep.summary()
    assert (bad / 'episode.json').exists()


def run_logic(sink, script, cfg=None):
    """Feed ``(kind, t_s[, outcome])``, ``('tick',)`` and ``('call', f)`` items to a new logic."""
    logic = EpisodeLogic(cfg or EpisodeConfig(before_s=0.5, before_max_frames=2,
                                              during_rate_hz=10.0, after_s=0.5,
                                              after_rate_hz=10.0), T0)
    for item in script:
        if item[0] == 'call':
            item[1]()
            continue
        t = T0 + int(round(item[1] * 1e9)) if len(item) > 1 else None
        if item[0] == 'frame':
            events = logic.on_frame(Frame(t, t, image(int(item[1] * 10))))
        elif item[0] == 'start':
            events = logic.start('service', 'service', t)
        elif item[0] == 'stop':
            events = logic.stop('service', 'service', t, *item[2:])
        elif item[0] == 'finish':
            events = logic.finish(t, 'shutdown')
        else:
            events = [Tick()]
        for ev in events:
            sink.handle(ev, camera=CAM, extra={'image_topic': '/cam'})
    return logic


def frames(t_from, t_to, step=0.1):
    n = int(round((t_to - t_from) / step))
    return [('frame', round(t_from + i * step, 3)) for i in range(n)]


def grasp(t0, t1, t2, outcome='succeeded'):
    """Frames from t0, a grasp from t1 to t2, frames for 1 s after."""
    return frames(t0, t1) + [('start', t1)] + frames(t1, t2) + [('stop', t2, outcome)] + \
        frames(t2, t2 + 1.0)


class FlakyDisk:
    """Make ``io_utils.atomic_write_bytes`` fail with a real ENOSPC OSError while ``full``."""

    def __init__(self, monkeypatch):
        self.full = False
        self.failures = 0
        real = io_utils.atomic_write_bytes

        def write(path, data):
            if self.full:
                self.failures += 1
                raise OSError(28, os.strerror(28), str(path))
            return real(path, data)

        monkeypatch.setattr(io_utils, 'atomic_write_bytes', write)

    def set_full(self, full):
        self.full = full


def test_simulated_disk_full_mid_grasp_is_recorded_truthfully(tmp_path, monkeypatch):
    disk = FlakyDisk(monkeypatch)
    warnings = []
    sink = EpisodeSink(tmp_path, warn=warnings.append)
    # The disk fills up during the grasp and is freed during the next one's before phase.
    script = grasp(0.0, 1.0, 2.0)[:18] + [('call', lambda: disk.set_full(True))] + \
        grasp(0.0, 1.0, 2.0)[18:] + [('tick',)]
    script += [('tick',), ('call', lambda: disk.set_full(False))] + frames(3.0, 3.5) + [('tick',)]
    run_logic(sink, script)
    assert disk.failures and sink.stats['write_errors'] >= disk.failures - 1
    eps = episode_store.list_episodes(tmp_path)
    assert len(eps) == 1, warnings
    ep = eps[0]
    assert ep['state'] == 'complete' and ep['outcome'] == 'succeeded'
    assert ep['end_reason'] == 'write_failed' and episode_store.END_REASONS['write_failed']
    lost = ep['frames_lost_by_reason']['write_failed']
    assert ep['frames_lost'] == lost > 0 and 'No space left on device' in ep['write_error']
    assert ep['counts']['after'] == 0 and ep['counts']['during'] >= 1  # the after phase lost
    assert ep['triggers'][0]['outcome'] == 'succeeded' and ep['end_ns']
    assert sink.stats['frames_lost_write_failed'] == lost
    # one report for the run of failures, one when writes succeed again; the error is cleared
    assert sum('episode write failed' in w for w in warnings) == 1, warnings
    assert sum('succeed again' in w for w in warnings) == 1, warnings
    assert sink.write_error is None
    # the next grasp is recorded normally
    run_logic(sink, grasp(4.0, 5.0, 6.0))
    ep2 = episode_store.list_episodes(tmp_path)[1]
    assert ep2['end_reason'] == 'after_elapsed' and ep2['frames_lost'] == 0


def test_each_lasting_run_of_failed_writes_is_reported(tmp_path, monkeypatch):
    """A second run of failures soon after the first is reported once 30 s have passed."""
    disk = FlakyDisk(monkeypatch)
    warnings, clock = [], [0.0]
    sink = EpisodeSink(tmp_path, warn=warnings.append, clock=lambda: clock[0])

    def reports():
        return (sum('episode write failed' in w for w in warnings),
                sum('succeed again' in w for w in warnings))

    disk.set_full(True)
    run_logic(sink, grasp(0.0, 1.0, 2.0))
    assert reports() == (1, 0) and sink.write_error
    disk.set_full(False)
    sink.handle(Tick())
    assert reports() == (1, 1) and sink.write_error is None
    clock[0] = 10.0  # the disk fills up again 10 s after the first report: not reported yet
    disk.set_full(True)
    run_logic(sink, grasp(0.0, 1.0, 2.0))
    clock[0] = 20.0
    sink.handle(Tick())
    assert reports() == (1, 1) and sink.write_error
    clock[0] = 31.0  # still full 30 s after the last report: reported now, once
    sink.handle(Tick())
    sink.handle(Tick())
    assert reports() == (2, 1)
    disk.set_full(False)
    sink.handle(Tick())
    assert reports() == (2, 2) and sink.write_error is None


def test_no_episode_without_frames(tmp_path, monkeypatch):
    disk = FlakyDisk(monkeypatch)
    warnings = []
    sink = EpisodeSink(tmp_path, warn=warnings.append)
    # a grasp while the camera sends nothing (outage), then one on a full disk
    run_logic(sink, [('start', 1.0), ('stop', 2.0), ('tick', 3.5), ('frame', 3.6)])
    disk.set_full(True)
    run_logic(sink, grasp(0.0, 1.0, 2.0))
    assert sink.stats['episodes_without_frames'] == 2 and sink.stats['episodes_complete'] == 0
    assert os.listdir(tmp_path / 'episodes') == []  # nothing written, not even a folder
    nw = [w for w in warnings if 'not written (no_frames)' in w]
    assert 'no camera frame arrived' in nw[0] and 'write_failed' in nw[1], warnings
    # a write that fails only after the folder exists leaves nothing either
    disk.set_full(False)
    real = io_utils.atomic_write_bytes

    def fail_png(path, data):
        if str(path).endswith('.png'):
            raise OSError(28, os.strerror(28), str(path))
        return real(path, data)

    monkeypatch.setattr(io_utils, 'atomic_write_bytes', fail_png)
    run_logic(sink, grasp(0.0, 1.0, 2.0))
    assert os.listdir(tmp_path / 'episodes') == [] and sink.stats['episodes_without_frames'] == 3


def test_full_queue_losses_are_counted_in_their_episode(tmp_path):
    sink = EpisodeSink(tmp_path, warn=lambda m: None)
    sink.handle(EpisodeStart(T0, {'source': 'service', 'goal_id': 'service'}), camera=CAM)
    sink.handle(FrameOut(Frame(T0 + 1, T0 + 1, image(1)), 'during'))
    sink.handle(FrameLost(T0 + 2, 'during', 'queue_full'))
    sink.handle(EpisodeEnd(T0 + 9, 'stopped', 'after_elapsed', []))
    (ep,) = episode_store.list_episodes(tmp_path)
    assert ep['end_reason'] == 'queue_full' and ep['frames_lost_by_reason'] == {'queue_full': 1}


def test_quota_cut_episode_keeps_its_grasp_outcome_and_triggers(tmp_path):
    warnings = []
    sink = EpisodeSink(tmp_path, max_disk_gb=20e-9, warn=warnings.append)  # 20 bytes
    run_logic(sink, grasp(0.0, 1.0, 2.0, 'aborted') + grasp(3.0, 4.0, 5.0))
    eps = episode_store.list_episodes(tmp_path)
    assert len(eps) == 1 and eps[0]['state'] == 'complete' and eps[0]['end_reason'] == 'quota'
    ep = eps[0]
    assert ep['outcome'] == 'aborted' and ep['end_ns'] == T0 + 25 * 10**8  # stop + after_s
    assert [t['outcome'] for t in ep['triggers']] == ['aborted']
    assert len(ep['frames']) == 1 and ep['frames_lost_by_reason']['quota'] > 0
    assert sink.stats['episodes_without_frames'] == 1  # the second grasp: every frame lost
    assert sum('disk quota reached' in w for w in warnings) == 1, warnings
    assert 'max_disk_gb' in sink.quota_reached


def test_quota_is_checked_at_start_and_clears_when_space_is_freed(tmp_path):
    (tmp_path / 'old').write_bytes(b'x' * 1000)
    warnings = []
    clock = [0.0]
    sink = EpisodeSink(tmp_path, max_disk_gb=500e-9, warn=warnings.append,
                       clock=lambda: clock[0])
    assert 'max_disk_gb' in sink.quota_reached and 'quota reached' in warnings[0]
    (tmp_path / 'old').unlink()
    sink.handle(Tick())
    assert sink.quota_reached  # re-measured every 30 s only
    clock[0] = 31.0
    sink.handle(Tick())
    assert sink.quota_reached is None and 'no longer reached' in warnings[-1]


def test_real_full_filesystem(tmp_path):
    """A real tmpfs fills up during a grasp, then space is freed (needs mount: else skips)."""
    with small_filesystem(tmp_path / 'fs', 1024) as root:
        warnings = []
        sink = EpisodeSink(root, warn=warnings.append)

        def fill_up():
            fill(root)

        def free():
            os.unlink(os.path.join(root, 'filler'))

        script = grasp(0.0, 1.0, 2.0)
        script = script[:15] + [('call', fill_up)] + script[15:] + [('tick',)]
        run_logic(sink, script)
        assert sink.write_error and 'No space left' in sink.write_error
        run_logic(sink, [('call', free), ('tick',)])
        assert sink.write_error is None
        (ep,) = episode_store.list_episodes(root)
        assert ep['end_reason'] == 'write_failed' and ep['frames_lost'] > 0
        assert ep['outcome'] == 'succeeded' and ep['counts']['after'] == 0
        for f in episode_store.iter_frames(root):
            assert read_rgb(f.image_path).shape == (24, 32, 3)
        assert sum('episode write failed' in w for w in warnings) == 1


def test_docs_list_every_end_reason():
    doc = open(os.path.join(os.path.dirname(__file__), '..', 'docs', 'episode_store.md')).read()
    table = doc.split('## end_reason', 1)[1].split('\n## ', 1)[0]
    rows = {line.split('|')[1].strip().strip('`'): line.split('|')[2].strip()
            for line in table.splitlines() if line.startswith('| `')}
    assert rows == {r: 'yes' if cut else 'no' for r, cut in episode_store.END_REASONS.items()}
    # and the recorder's docs name every one too
    doc = open(os.path.join(os.path.dirname(__file__), '..', 'docs', 'grasp_recorder.md')).read()
    listed = doc.split('**Why an episode ended**', 1)[1].split('\n* ', 1)[0]
    assert [r for r in episode_store.END_REASONS if f'`{r}`' not in listed] == []


def test_sink_refuses_what_is_not_an_episode_event(tmp_path):
    """Events are told apart by type (isinstance); a foreign object is an error, not a no-op."""
    sink = EpisodeSink(tmp_path, warn=lambda m: None)
    with pytest.raises(TypeError, match='not an episode event: dict'):
        sink.handle({'t_ns': 0})


def test_sidecar_keeps_the_newest_whole_slot(tmp_path):
    """A torn sidecar write leaves the previous state readable; updates need no new block."""
    side = episode_store.Sidecar(str(tmp_path))
    assert side.write({'outcome': None, 'last_ns': 1}) and side.write({'outcome': 'ok',
                                                                      'last_ns': 2})
    sizes = [os.path.getsize(p) for p in side.paths]
    newest = episode_store.read_sidecar(str(tmp_path))
    assert newest == {'outcome': 'ok', 'last_ns': 2, 'seq': 2}
    with open(side.paths[0], 'r+b') as f:  # slot of seq 2 (seq alternates 1, 0, 1, ...)
        f.write(b'{"triggers": [{"source": "service", "goal_id"')  # torn midway
    assert episode_store.read_sidecar(str(tmp_path))['seq'] == 1
    assert side.write({'outcome': 'x' * 5000, 'triggers': []})  # too big: cut, not grown
    assert [os.path.getsize(p) for p in side.paths] == sizes == [episode_store.SIDECAR_BYTES] * 2
    side.close(remove=True)
    assert episode_store.read_sidecar(str(tmp_path)) == {} and not os.listdir(tmp_path)
