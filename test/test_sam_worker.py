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

"""SAM worker: datasets (episodes + image folders), resume after SIGKILL, failures, sharding."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from conftest import own_stderr_lines, REPO, wait_until
import numpy as np
import pytest

from sam2real_ros.common import io_utils
from sam2real_ros.recording.episode_store import EpisodeWriter
from sam2real_ros.sam.mask_store import MaskStore
from sam2real_ros.sam.sam_fast import build_tiny_sam
from sam2real_ros.sam.segment_cli import main
from sam2real_ros.sam.segmenters import FallbackSegmenter, SamOptions, SamSegmenter
from sam2real_ros.sam.worker import find_frames, in_shard, parse_shard, SamWorker, WorkerError, \
    WorkerLoop


def _img(seed, h=48, w=64):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 80, np.uint8)
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    img[y:y + h // 2, x:x + w // 2] = rng.integers(0, 255, 3)
    return img


def make_dataset(root, n_plain=3, h=48, w=64):
    """Write complete, interrupted and still-recording episodes plus an image folder."""
    writers = {}
    for i, state in enumerate(('complete', 'interrupted', 'recording')):
        wr = EpisodeWriter(str(root), 1_700_000_000_000_000_000 + i * 10**9, {})
        for k, phase in enumerate(('before', 'during', 'after')):
            wr.add_frame(1_700_000_000_000_000_000 + i * 10**9 + k, phase, _img(10 * i + k, h, w))
        if state != 'recording':
            wr.close(state)
        writers[state] = wr
    os.makedirs(root / 'plain' / 'sub')
    for i in range(n_plain):
        io_utils.atomic_write_png(root / 'plain' / f'p{i}.png', _img(100 + i, h, w))
    io_utils.atomic_write_png(root / 'plain' / 'sub' / 'q.png', _img(200, h, w))
    return writers


def test_dataset_to_masks_fallback_and_tiny_sam(tmp_path):
    writers = make_dataset(tmp_path)
    frames = find_frames(tmp_path)
    keys = [f.key for f in frames]
    rec_id = writers['recording'].episode_id
    assert len(keys) == 6 + 4 and not any(rec_id in k for k in keys)
    assert all(k.startswith('episodes/') for k in keys[:6])
    fb = SamWorker(tmp_path, FallbackSegmenter(min_area_fraction=0.003))
    assert fb.run() == 10 and fb.done == 10 and fb.pending() == []
    store = MaskStore(tmp_path / 'masks')
    assert store.keys() == sorted(keys)
    rec = store.read(keys[0])
    assert rec.segmenter == 'fallback' and rec.masks().shape[1:] == (48, 64)
    assert rec.masks().dtype == bool and len(rec) > 0
    # the recording episode is picked up once it is complete
    writers['recording'].close('complete')
    assert len(fb.pending()) == 3
    # a tiny random-weight SAM through the same worker, to a second store
    sam = SamSegmenter(build_tiny_sam(0, logit_scale=1000.0), SamOptions(
        model_type='tiny', backend='torch', generator={
            'points_per_side': 4, 'pred_iou_thresh': 0.0, 'stability_score_thresh': 0.5,
            'box_nms_thresh': 1.0}))
    sw = SamWorker(tmp_path, sam, store_root=tmp_path / 'sam_masks')
    assert sw.run(limit=2) == 2
    sam_store = MaskStore(tmp_path / 'sam_masks')
    for key in sam_store.keys():
        r = sam_store.read(key)
        assert r.segmenter == 'sam:tiny' and r.settings['points_per_side'] == 4
        assert r.masks().shape == (len(r), 48, 64) and len(r) > 0
        assert r.bboxes.shape == (len(r), 4) and r.scores.shape == (len(r), 2)


def test_corrupt_image_is_failed_not_retried(tmp_path):
    io_utils.atomic_write_png(tmp_path / 'good.png', _img(1))
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    w = SamWorker(tmp_path, FallbackSegmenter(min_area_fraction=0.003))
    assert w.run() == 2 and w.done == 1 and w.failed == 1
    store = w.store
    assert store.status('bad.png') == 'failed' and 'bad.png' in store.failure_reason('bad.png')
    assert w.pending() == []
    assert [f.key for f in SamWorker(tmp_path, w.segmenter, retry_failed=True).pending()] == [
        'bad.png']


def test_depth_beside_the_image_reaches_the_segmenter(tmp_path):
    from test_segmenters import rgbd_scene
    rgb, depth, _ = rgbd_scene(96, 128)
    # an episode-like rgb/ + depth/ pair, a plain image with depth/ beside it, one without
    io_utils.atomic_write_png(tmp_path / 'cam' / 'rgb' / 'a.png', rgb)
    io_utils.atomic_write_png(tmp_path / 'cam' / 'depth' / 'a.png', depth)
    io_utils.atomic_write_png(tmp_path / 'plain' / 'b.jpg', rgb)
    io_utils.atomic_write_png(tmp_path / 'plain' / 'depth' / 'b.png', depth)
    io_utils.atomic_write_png(tmp_path / 'plain' / 'c.png', rgb)
    io_utils.atomic_write_png(tmp_path / 'bad' / 'd.png', rgb)
    io_utils.atomic_write_png(tmp_path / 'bad' / 'depth' / 'd.png', depth[:50])
    w = SamWorker(tmp_path, FallbackSegmenter())
    assert sorted(f.key for f in w.pending()) == ['bad/d.png', 'cam/rgb/a.png', 'plain/b.jpg',
                                                  'plain/c.png']
    assert w.run() == 4 and w.done == 3 and w.failed == 1
    for key, used in (('cam/rgb/a.png', True), ('plain/b.jpg', True), ('plain/c.png', False)):
        rec = w.store.read(key)
        assert rec.extra['depth'] is used and rec.extra['timings']['depth_used'] == float(used)
    reason = w.store.failure_reason('bad/d.png')
    assert 'depth' in reason and 'bad/depth/d.png' in reason and '128x50' in reason
    # a segmenter that does not take depth never sees it
    calls = []

    def rgb_only(img):
        calls.append(img.shape)
        return FallbackSegmenter()(img)
    rgb_only.name, rgb_only.settings = 'rgb_only', {}
    w2 = SamWorker(tmp_path, rgb_only, store_root=tmp_path / 'masks2')
    assert w2.run() == 4 and w2.done == 4 and len(calls) == 4


# The real YCB-Video scenes live in shared/ beside the checkout (as in test_datasets.py).
YCBV_TRAIN = os.path.join(os.environ.get('SAM2REAL_YCBV_TRAIN') or os.path.join(
    os.path.dirname(REPO), 'shared', 'data', 'ycbv_bop_train'), 'train_real')


@pytest.mark.skipif(not os.path.isdir(os.path.join(YCBV_TRAIN, '000000')),
                    reason=f'real YCB-V BOP scenes not found at {YCBV_TRAIN} '
                    '(set SAM2REAL_YCBV_TRAIN)')
def test_bop_scene_folder_segments_rgb_with_depth_only(tmp_path, capsys):
    """A BOP scene's mask_visib/ (and depth/) PNGs are annotations, never frames."""
    import shutil
    src = os.path.join(YCBV_TRAIN, '000000')
    scene = tmp_path / 'train_real' / '000000'
    for sub in ('rgb', 'depth', 'mask_visib'):
        os.makedirs(scene / sub)
        for name in sorted(os.listdir(os.path.join(src, sub))):
            if name.startswith(('000001', '000002')):
                shutil.copy(os.path.join(src, sub, name), scene / sub / name)
    for name in ('scene_gt.json', 'scene_camera.json'):
        shutil.copy(os.path.join(src, name), scene / name)
    assert len(os.listdir(scene / 'mask_visib')) >= 2
    want = ['rgb/000001.png', 'rgb/000002.png']
    assert io_utils.list_images(scene) == want  # the lister of the image-folder dataset too
    assert [f.key for f in find_frames(tmp_path)] == [f'train_real/000000/{k}' for k in want]
    assert main([str(scene), '--segmenter', 'fallback', '--nice', '0', '--no-progress']) == 0
    store = MaskStore(scene / 'masks')
    assert store.keys() == want
    for key in want:
        rec = store.read(key)
        assert rec.extra['depth'] is True and rec.masks().shape[1:] == (480, 640)
    assert 'done 2, failed 0' in capsys.readouterr().err


def test_bop_depth_is_read_in_millimetres_with_the_scene_depth_scale(tmp_path):
    """BOP depth PNGs are in depth_scale mm units (0.1 in YCB-Video): read_depth gives mm."""
    import json
    scene = tmp_path / '000007'
    raw = np.full((4, 6), 12340, np.uint16)
    raw[0, 0] = 0
    for im_id, scale in ((1, 0.1), (2, 1.0)):
        io_utils.atomic_write_png(scene / 'rgb' / f'{im_id:06d}.png', _img(im_id))
        io_utils.atomic_write_png(scene / 'depth' / f'{im_id:06d}.png', raw)
    (scene / 'scene_camera.json').write_text(json.dumps(
        {'1': {'cam_K': [1, 0, 0, 0, 1, 0, 0, 0, 1], 'depth_scale': 0.1},
         '2': {'cam_K': [1, 0, 0, 0, 1, 0, 0, 0, 1], 'depth_scale': 1.0}}))
    d1 = io_utils.read_depth(scene / 'rgb' / '000001.png')
    assert d1.dtype == np.uint16 and d1[0, 0] == 0 and (d1.ravel()[1:] == 1234).all()
    assert (io_utils.read_depth(scene / 'rgb' / '000002.png') == raw).all()
    # outside a BOP scene (no rgb/ folder or no scene_camera.json) depth files are mm as stored
    io_utils.atomic_write_png(tmp_path / 'plain' / 'a.png', _img(3))
    io_utils.atomic_write_png(tmp_path / 'plain' / 'depth' / 'a.png', raw)
    assert (io_utils.read_depth(tmp_path / 'plain' / 'a.png') == raw).all()
    (scene / 'scene_camera.json').write_text('{not json')
    with pytest.raises(io_utils.ImageReadError, match='scene_camera.json'):
        io_utils.read_depth(scene / 'rgb' / '000001.png')


def test_sharding_covers_every_frame_once(tmp_path):
    make_dataset(tmp_path, n_plain=6)
    keys = {f.key for f in find_frames(tmp_path)}
    parts = [{f.key for f in SamWorker(tmp_path, None, shard=(i, 2)).pending()}
             for i in range(2)]
    assert parts[0] | parts[1] == keys and not parts[0] & parts[1]
    assert parts[0] and parts[1]
    assert all(in_shard(k, (0, 1)) for k in keys)
    assert parse_shard('1/3') == (1, 3)
    for bad in ('3/3', 'x', '1/0'):
        with pytest.raises(WorkerError):
            parse_shard(bad)


def test_cli_user_errors(tmp_path, capsys):
    assert main([str(tmp_path / 'nope'), '--segmenter', 'fallback', '--nice', '0']) == 2
    assert 'dataset root is not a folder' in capsys.readouterr().err
    assert main([str(tmp_path), '--shard', '2/2', '--nice', '0']) == 2
    io_utils.atomic_write_png(tmp_path / 'a.png', _img(0))
    assert main([str(tmp_path), '--segmenter', 'sam', '--checkpoint', str(tmp_path / 'x.pth'),
                 '--nice', '0']) == 2
    assert 'SAM checkpoint not found' in capsys.readouterr().err


def test_cli_refuses_the_devices_the_node_refuses(tmp_path, capsys):
    """One device rule for ``sam2real segment --device`` and the node's ``device`` (#21)."""
    from sam2real_ros.nodes.sam_worker import PARAMETERS
    from sam2real_ros.sam import segmenters
    io_utils.atomic_write_png(tmp_path / 'a.png', _img(0))
    assert main([str(tmp_path), '--segmenter', 'fallback', '--device', 'gpu9', '--nice',
                 '0', '--no-progress']) == 2
    assert capsys.readouterr().err.splitlines() == [
        "sam2real segment: device 'gpu9' must be auto, cpu, cuda or cuda:N"]
    for device in ('gpu9', 'cuda:', 'tpu', 'auto', 'cpu', 'cuda', 'cuda:1'):
        cli_ok = segmenters.device_problem(device) is None
        assert cli_ok == (PARAMETERS['device'].check(device) is None), device
        assert cli_ok == (device in ('auto', 'cpu', 'cuda', 'cuda:1'))


def test_corrupt_image_gives_no_opencv_noise(tmp_path, capfd):
    """A corrupt PNG is one failed frame in the summary, without OpenCV's own log lines."""
    io_utils.atomic_write_png(tmp_path / 'good.png', _img(1))
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    assert main([str(tmp_path), '--segmenter', 'fallback', '--nice', '0',
                 '--no-progress']) == 1  # a failed frame
    err = capfd.readouterr().err
    assert 'done 1, failed 1' in err and '[ERROR' not in err and 'libpng' not in err, err


def test_cli_names_the_episode_folders_it_leaves_out(tmp_path, capsys):
    """A still-recording episode and an unreadable folder are named, not skipped silently."""
    writers = make_dataset(tmp_path, n_plain=0)
    broken = tmp_path / 'episodes' / 'broken'
    broken.mkdir()
    (broken / 'episode.json').write_text('{bad')
    assert main([str(tmp_path), '--segmenter', 'fallback', '--nice', '0', '--no-progress',
                 '--limit', '1']) == 0
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if 'left out' in ln]
    assert line.startswith('sam2real segment: 2 episode folder(s) left out: ')
    assert f'{writers["recording"].episode_id}: still recording, or its writer died' in line
    assert 'broken: ' in line and 'not valid JSON' in line
    writers['recording'].discard()


# ``sam2real segment`` in a real process that freezes in the middle of its 3rd mask write (the
# temp file written, not yet renamed), to be killed -9 there: a chosen point, not a lucky one.
FREEZING_SEGMENT = textwrap.dedent("""
    import sys
    from sam2real_ros.common import io_utils
    from sam2real_ros.sam import segment_cli
    real, n = io_utils.os.replace, [0]

    def replace(src, dst):
        if dst.endswith('.npz'):
            n[0] += 1
            if n[0] == 3:
                print('frozen', flush=True)
                sys.stdin.readline()
        real(src, dst)

    io_utils.os.replace = replace
    sys.exit(segment_cli.main(sys.argv[1:]))
""")


def test_kill_mid_write_and_resume(tmp_path):
    for i in range(16):
        io_utils.atomic_write_png(tmp_path / 'imgs' / f'{i:02d}.png', _img(i, 240, 320))
    store = MaskStore(tmp_path / 'masks')
    args = [str(tmp_path), '--segmenter', 'fallback', '--no-progress', '--nice', '0']
    proc = subprocess.Popen([sys.executable, '-c', FREEZING_SEGMENT, *args], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == 'frozen'
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert store.keys() == ['imgs/00.png', 'imgs/01.png']
    temps = [os.path.join(d, n) for d, _, fs in os.walk(tmp_path / 'masks') for n in fs
             if io_utils.is_temp_file(n)]
    assert len(temps) == 1 and time.time() - os.path.getmtime(temps[0]) < 60  # fresh
    # what another writer killed during a write leaves behind (no live lock for its pid)
    (tmp_path / 'masks' / 'imgs' / '.15.png.npz.tmp-99999-0').write_bytes(b'half-written')
    cmd = [sys.executable, '-m', 'sam2real_ros.sam.segment_cli', *args]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert 'removed 2 stale temp files' in res.stderr
    assert store.keys() == [f'imgs/{i:02d}.png' for i in range(16)]
    files = [n for d, _, fs in os.walk(tmp_path / 'masks') for n in fs if '.writers' not in d]
    assert len(files) == 16 and all(n.endswith('.png.npz') for n in files)
    assert os.listdir(tmp_path / 'masks' / '.writers') == []  # locks gone with their writers
    for key in store.keys():
        assert store.read(key).masks().shape[1:] == (240, 320)
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and 'done 0, failed 0' in res.stderr


def test_worker_loop_loads_starts_stops_and_frees_the_model(tmp_path):
    import gc
    import weakref
    for i in range(3):
        io_utils.atomic_write_png(tmp_path / f'{i}.png', _img(i))
    built, logs, done = [], [], []

    def make():
        seg = FallbackSegmenter(min_area_fraction=0.003)
        built.append(weakref.ref(seg))
        return seg

    loop = WorkerLoop(tmp_path, make, poll_period=0.05, on_frame=lambda f, st: done.append(f.key),
                      log=lambda level, text: logs.append((level, text)))
    store = MaskStore(tmp_path / 'masks')
    loop.load()
    assert loop.state == 'inactive' and loop.segmenter is built[0]() and len(built) == 1
    time.sleep(0.3)
    assert store.keys() == []  # configured, not active: no work
    loop.start()
    assert wait_until(lambda: len(store.keys()) == 3 and loop.state == 'idle', 60), loop.state
    assert sorted(done) == ['0.png', '1.png', '2.png']
    assert loop.stop() and loop.state == 'inactive'
    loop.free()
    gc.collect()
    assert loop.state == 'unloaded' and loop.segmenter is None and built[0]() is None
    io_utils.atomic_write_png(tmp_path / '3.png', _img(3))
    time.sleep(0.3)
    assert len(store.keys()) == 3  # deactivated: the new frame waits
    loop.load()
    loop.start()
    assert wait_until(lambda: len(store.keys()) == 4, 60) and len(built) == 2
    assert loop.close() and loop.segmenter is None
    assert os.listdir(tmp_path / 'masks' / '.writers') == []
    assert not [entry for entry in logs if entry[0] == 'error']


def test_worker_loop_reports_errors_but_not_while_shutting_down(tmp_path):
    for i in range(6):
        io_utils.atomic_write_png(tmp_path / f'{i}.png', _img(i))

    def broken(rgb):
        raise RuntimeError('CUDA error: device lost')

    broken.name, broken.settings = 'broken', {}
    logs = []
    loop = WorkerLoop(tmp_path, lambda: broken, poll_period=0.05,
                      log=lambda level, text: logs.append((level, text)))
    loop.load()
    loop.start()
    assert wait_until(lambda: loop.state == 'error', 60)
    assert 'frames in a row failed' in loop.error and logs[-1][0] == 'error'
    loop.close()
    # a publisher that is gone because the process is shutting down: no error reported
    io_utils.atomic_write_png(tmp_path / 'sub' / 'x.png', _img(9))
    down = threading.Event()

    def publish(frame, status):
        down.set()
        raise RuntimeError("publisher's context is invalid")

    logs.clear()
    loop = WorkerLoop(tmp_path, lambda: FallbackSegmenter(min_area_fraction=0.003),
                      poll_period=0.05,
                      on_frame=publish, log=lambda level, text: logs.append((level, text)),
                      shutting_down=down.is_set)
    loop.load()
    loop.start()
    assert wait_until(lambda: not loop.running(), 60)
    assert down.is_set() and loop.state != 'error' and logs == []
    loop.close()


class WorkerListener:
    """A test node (own context, spun in a thread): diagnostics, frame_done, a lifecycle client."""

    def __init__(self):
        from diagnostic_msgs.msg import DiagnosticArray
        from sam2real_ros.nodes.lifecycle import LifecycleClient
        from sam2real_ros.nodes.runner import BackgroundNode
        from std_msgs.msg import String
        self.bg = BackgroundNode('sam_worker_test')
        self.node = self.bg.node
        self.diag, self.done = {}, []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.node.create_subscription(String, '/sam_worker/frame_done',
                                      lambda m: self.done.append(m.data), 10)
        self.sam = LifecycleClient(self.node, '/sam_worker')

    def _on_diag(self, msg):
        for st in msg.status:
            if st.name.startswith('sam_worker'):
                self.diag = dict({kv.key: kv.value for kv in st.values}, _message=st.message)

    def close(self):
        self.bg.close()


def start_worker(processes, root, **params):
    from sam2real_ros.nodes.graph import node_command
    base = {'dataset_root': str(root), 'segmenter': 'fallback', 'poll_period_s': 0.2,
            'nice': 0, 'fallback.min_area_fraction': 0.003, 'diagnostics_period_s': 0.2}
    base.update(params)
    return processes.start(*node_command('sam_worker', base, params_file=False),
                           name='sam_worker')


@pytest.mark.rostest
def test_node_says_when_its_dataset_root_did_not_exist(tmp_path, processes):
    """A mistyped dataset_root is not a silent 'active: segmenting new frames' (#21)."""
    proc = start_worker(processes, tmp_path / 'nope')
    assert wait_until(lambda: 'active: segmenting' in processes.output(proc), 60), \
        processes.output(proc)
    log = processes.output(proc)
    assert f"dataset_root {tmp_path / 'nope'} did not exist: created it" in log, log
    assert processes.stop(proc) == 0


@pytest.mark.rostest
def test_node_missing_checkpoint_names_the_parameter(tmp_path):
    from sam2real_ros.nodes.graph import node_command
    cmd = node_command('sam_worker', {'dataset_root': str(tmp_path), 'segmenter': 'sam',
                                      'checkpoint': str(tmp_path / 'x.pth')}, params_file=False)
    res = subprocess.run([sys.executable, *cmd], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2, res.stderr
    lines = own_stderr_lines(res.stderr)
    assert len(lines) == 1 and 'SAM checkpoint not found' in lines[0], lines
    assert 'set the parameter checkpoint' in lines[0] and '--checkpoint' not in lines[0], lines


@pytest.mark.rostest
def test_node_lifecycle_transitions_and_pause(tmp_path, processes):
    """Configure loads, activate works, deactivate (the pause) stops and frees the model (#11)."""
    writers = make_dataset(tmp_path, n_plain=1)
    store = MaskStore(tmp_path / 'masks')
    proc = start_worker(processes, tmp_path, autostart=False)
    lis = WorkerListener()
    sam, diag = lis.sam, lambda key: lis.diag.get(key)
    try:
        assert sam.state() == 'unconfigured', processes.output(proc)
        assert wait_until(lambda: diag('lifecycle_state') == 'unconfigured', 20)
        assert diag('model_loaded') == 'False' and store.keys() == []

        assert sam.transition('configure'), processes.output(proc)
        assert sam.state() == 'inactive'
        assert wait_until(lambda: diag('model_loaded') == 'True', 20)
        assert diag('segmenter') == 'fallback'
        assert lis.node.count_publishers('/sam_worker/frame_done') == 1
        time.sleep(1.0)
        assert store.keys() == [] and lis.done == []  # configured, not active: no work

        assert sam.resume() and sam.state() == 'active'
        # the finished episodes and the image folder, never the one still recording
        assert wait_until(lambda: diag('frames_done') == '8' and len(lis.done) == 8, 60), \
            (lis.diag, processes.output(proc))
        rec_id = writers['recording'].episode_id
        assert sorted(lis.done) == store.keys() and not any(rec_id in k for k in lis.done)

        # the grasp pipeline pauses it: no new frame, the model is freed
        assert sam.pause() and sam.state() == 'inactive'
        assert wait_until(lambda: diag('model_loaded') == 'False', 20)
        assert diag('segmenter') == '' and 'not segmenting' in diag('_message')
        writers['recording'].close('complete')
        time.sleep(1.5)
        assert len(store.keys()) == 8
        assert sam.resume()  # loads the model again and picks up the new episode
        assert wait_until(lambda: len(store.keys()) == 11
                          and sum(rec_id in k for k in lis.done) == 3, 60), \
            processes.output(proc)
        assert store.read(lis.done[-1]).segmenter == 'fallback'

        # docs/sam_worker.md names every diagnostics value the node sends
        with open(os.path.join(REPO, 'docs', 'sam_worker.md')) as f:
            row = next(line for line in f if line.startswith('| `/diagnostics` |'))
        keys = [k for k in lis.diag if not k.startswith('_')]
        assert keys and all(f'`{k}`' in row for k in keys), (keys, row)

        assert sam.transition('deactivate') and sam.transition('cleanup')
        assert sam.state() == 'unconfigured'
        assert os.listdir(tmp_path / 'masks' / '.writers') == []  # store released
        assert sam.transition('shutdown') and sam.state() == 'finalized'
    finally:
        lis.close()
    log = processes.output(proc)
    assert log.count('inactive: worker stopped, model freed') == 2, log
    assert processes.stop(proc) == 0, log
    assert 'Traceback' not in proc.log_path.read_text()


@pytest.mark.rostest
def test_ctrl_c_during_segmentation_exits_cleanly(tmp_path, processes):
    """SIGINT to the process group while a frame is segmented: exit 0, no error, no traceback."""
    for i in range(20):
        io_utils.atomic_write_png(tmp_path / f'{i:02d}.png', _img(i, 480, 640))
    for attempt in range(2):
        proc = start_worker(processes, tmp_path)  # autostart (plain process)
        lis = WorkerListener()
        try:
            n = len(MaskStore(tmp_path / 'masks').keys())
            assert wait_until(lambda: len(lis.done) >= 1 and lis.diag.get('state') == 'working',
                              60), (lis.diag, processes.output(proc))
        finally:
            lis.close()
        os.killpg(os.getpgid(proc.pid), signal.SIGINT)  # Ctrl-C in the terminal
        assert processes.stop(proc, timeout=30) == 0, processes.output(proc)
        log = proc.log_path.read_text()
        assert 'ERROR' not in log and 'Traceback' not in log and 'RCLError' not in log, log
        assert len(MaskStore(tmp_path / 'masks').keys()) > n
    store = MaskStore(tmp_path / 'masks')
    for key in store.keys():  # every stored file is whole
        assert store.read(key).masks().shape[1:] == (480, 640)


# Loaded by the worker process (sitecustomize on its PYTHONPATH): while the flag file exists a
# frame takes a minute of OpenCV calls, which release the GIL inside C++ (a RAII guard takes it
# back in a destructor) -- as SAM's torch calls and the PNG codecs do.
SLOW_FRAME = textwrap.dedent("""
    import os
    import time
    import cv2
    import numpy as np
    from sam2real_ros.sam import fallback
    _call, _flag = fallback.FallbackSegmenter.__call__, os.environ['SAM2REAL_TEST_SLOW_FRAME_FLAG']

    def __call__(self, rgb, depth=None):
        img, end = np.zeros((480, 640, 3), np.uint8), time.monotonic() + 60
        while os.path.exists(_flag) and time.monotonic() < end:
            cv2.GaussianBlur(img, (31, 31), 0)
        return _call(self, rgb, depth)

    fallback.FallbackSegmenter.__call__ = __call__
""")


@pytest.mark.rostest
def test_sigint_while_a_frame_outlasts_the_shutdown_wait_exits_0(tmp_path, processes):
    """
    A frame longer than SHUTDOWN_WAIT_S at SIGINT: exit 0 at once, never SIGABRT (#21).

    Under the stress loop ``sam_worker`` died with -6 ("terminate called without an active
    exception") at the launch's shutdown: its worker thread was still in a frame when Python
    finalized, and a daemon thread that takes the GIL back then is ended inside C++.
    """
    from sam2real_ros.nodes.sam_worker import SHUTDOWN_WAIT_S
    site, flag = tmp_path / 'site', tmp_path / 'slow'
    site.mkdir()
    (site / 'sitecustomize.py').write_text(SLOW_FRAME)
    flag.write_text('slow')
    data = tmp_path / 'data'
    data.mkdir()
    io_utils.atomic_write_png(data / '00.png', _img(0, 480, 640))
    env = {'SAM2REAL_TEST_SLOW_FRAME_FLAG': str(flag), 'PYTHONPATH': os.pathsep.join(
        p for p in (str(site), os.environ.get('PYTHONPATH')) if p)}
    from sam2real_ros.nodes.graph import node_command
    cmd = node_command('sam_worker', {'dataset_root': str(data), 'segmenter': 'fallback',
                                      'poll_period_s': 0.2, 'nice': 0,
                                      'diagnostics_period_s': 0.2}, params_file=False)
    proc = processes.start(*cmd, name='sam_worker', env=env)
    lis = WorkerListener()
    try:
        assert wait_until(lambda: lis.diag.get('state') == 'working', 60), \
            (lis.diag, processes.output(proc))
    finally:
        lis.close()
    t0 = time.monotonic()
    code = processes.stop(proc, timeout=30)
    took = time.monotonic() - t0
    log = processes.output(proc)
    assert code == 0, log
    assert took < SHUTDOWN_WAIT_S + 10, (took, log)
    assert 'terminate called' not in log and 'Traceback' not in log, log
    assert 'a frame was still being segmented' in log, log
    assert MaskStore(data / 'masks').keys() == []  # not stored: redone at the next start
    flag.unlink()
    proc = start_worker(processes, data)
    assert wait_until(lambda: len(MaskStore(data / 'masks').keys()) == 1, 60), \
        processes.output(proc)
    assert processes.stop(proc) == 0, processes.output(proc)


def test_cli_with_config_file(tmp_path, capsys):
    for i in range(2):
        io_utils.atomic_write_png(tmp_path / f'{i}.png', _img(i))
    cfg = os.path.join(REPO, 'config', 'sam_worker.yaml')
    assert main([str(tmp_path), '--config', cfg, '--segmenter', 'fallback', '--nice', '0',
                 '--no-progress', '--limit', '1']) == 0
    assert MaskStore(tmp_path / 'masks').keys() == ['0.png']
    assert main([str(tmp_path), '--config', cfg, '--segmenter', 'fallback', '--nice', '0',
                 '--no-progress']) == 0
    rec = MaskStore(tmp_path / 'masks').read('1.png')
    assert rec.segmenter == 'fallback' and rec.settings['work_side'] == 320
    assert 'done 1, failed 0' in capsys.readouterr().err
    (tmp_path / 'bad.yaml').write_text('a: [')
    assert main([str(tmp_path), '--config', str(tmp_path / 'bad.yaml'), '--nice', '0']) == 2


def test_cli_backend_choice_reaches_the_sam_options(tmp_path):
    from sam2real_ros.sam import segment_cli
    cfg = tmp_path / 'w.yaml'
    cfg.write_text('sam_worker:\n  ros__parameters:\n    backend: onnx\n    model_type: vit_b\n'
                   '    sam: {points_per_side: 8}\n')

    def options(*argv):
        args = segment_cli.build_parser().parse_args([str(tmp_path), *argv])
        return segment_cli.run_options(args)
    assert options()['sam'].backend == 'auto'
    opt = options('--config', str(cfg))['sam']
    assert (opt.backend, opt.model_type) == ('onnx', 'vit_b')
    assert opt.generator == {'points_per_side': 8}
    assert options('--config', str(cfg), '--backend', 'torch', '--naive')['sam'].backend == 'torch'
    assert not options('--naive')['sam'].fast
    cfg.write_text('sam_worker:\n  ros__parameters:\n    backend: tensorrt\n')
    assert main([str(tmp_path), '--config', str(cfg), '--nice', '0']) == 2
