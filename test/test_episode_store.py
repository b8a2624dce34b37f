"""Tests of the episode store: layout, readers, crash recovery, quota (real files)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sam2real_ros.common.io_utils import read_image_unchanged, read_rgb
from sam2real_ros.recording import episode_store
from sam2real_ros.recording.episode_store import EpisodeError, EpisodeSink, EpisodeWriter
from sam2real_ros.recording.grasp_episodes import EpisodeEnd, EpisodeStart, Frame, FrameOut

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
        assert episode_store.recover_interrupted(tmp_path) == []  # writer alive: untouched
        assert len(json.load(open(os.path.join(ep_dir, 'episode.json')))['frames']) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert episode_store.recover_interrupted(tmp_path) == [os.path.basename(ep_dir)]
    meta = episode_store.load_episode(ep_dir)
    assert meta['state'] == 'interrupted' and len(meta['frames']) == 5
    for i, f in enumerate(episode_store.iter_frames(tmp_path, complete_only=False)):
        assert read_rgb(f.image_path)[0, 0, 0] == i
    assert episode_store.recover_interrupted(tmp_path) == []  # idempotent


def test_sink_quota_closes_episode_cleanly(tmp_path):
    warnings = []
    sink = EpisodeSink(tmp_path, max_disk_gb=20e-9, warn=warnings.append)  # 20 bytes
    sink.handle(EpisodeStart(T0, {'source': 'service', 'goal_id': 'service'}), camera=CAM)
    for i in range(4):
        sink.handle(FrameOut(Frame(T0 + i, T0 + i, image(i)), 'during'))
    sink.handle(EpisodeEnd(T0 + 9, 'succeeded', 'after_elapsed', []))
    sink.handle(EpisodeStart(T0 + 10, {'source': 'service', 'goal_id': 'service'}))
    eps = episode_store.list_episodes(tmp_path)
    assert len(eps) == 1 and eps[0]['state'] == 'complete' and eps[0]['end_reason'] == 'quota'
    assert len(eps[0]['frames']) >= 1 and sink.stats['frames_skipped_quota'] >= 1
    assert len(warnings) == 1 and 'max_disk_gb' in warnings[0]
