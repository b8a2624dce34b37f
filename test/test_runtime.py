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

"""The segmentation node's ROS-free parts: newest-frame slot, rate window, model hot reload."""
import os
import shutil
import threading
import time

from conftest import wait_until
import numpy as np
import pytest
from sam2real_ros.inference.engine import SegmentationEngine
from sam2real_ros.inference.runtime import (can_restore_priority, file_signature, HotModel,
                                            LatestFrame, RateWindow)


class FakeClock:
    """A hand-moved monotonic clock (seconds)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_latest_frame_keeps_only_the_newest():
    slot = LatestFrame()
    assert slot.take(timeout=0.01) is None
    for i in range(5):
        slot.put(i)
    assert slot.take(timeout=0.01) == 4 and slot.dropped == 4
    assert slot.take(timeout=0.01) is None
    got = []
    taker = threading.Thread(target=lambda: got.append(slot.take(timeout=10.0)))
    taker.start()
    slot.put('late')  # wakes the waiting worker
    taker.join(10.0)
    assert got == ['late'] and slot.dropped == 4
    slot.put('stale')
    slot.clear()
    assert slot.take(timeout=0.01) is None and slot.dropped == 4


def test_rate_window_measures_up_to_now():
    clock = FakeClock()
    win = RateWindow(5.0, clock=clock)
    s = win.summary()
    assert s['rate_hz'] == 0.0 and s['count'] == 0 and s['age_s'] == 0.0
    clock.now += 3.0
    assert win.age_s() == pytest.approx(3.0)  # nothing yet: counted from the reset
    for i in range(300):  # 30 Hz for 10 s
        clock.now += 1 / 30
        win.add(latency_ms=float(i % 10))
    s = win.summary()
    assert s['rate_hz'] == pytest.approx(30.0, abs=0.3)
    assert s['age_s'] == pytest.approx(0.0) and s['count'] == 300
    assert 4.0 <= s['latency_ms_p50'] <= 5.0 and s['latency_ms_p95'] >= 8.0
    # The camera dies: the rate falls with time, the age grows (a first-to-last-frame rate
    # would still say 30 Hz here).
    clock.now += 1.0
    s = win.summary()
    assert s['rate_hz'] == pytest.approx(24.0, abs=0.3) and s['age_s'] == pytest.approx(1.0)
    clock.now += 5.0
    s = win.summary()
    assert s['rate_hz'] == 0.0 and s['age_s'] == pytest.approx(6.0)
    assert 'latency_ms_p50' not in s and s['count'] == 300
    # A fresh start does not show a huge rate from its first few frames.
    win.reset()
    for _ in range(10):
        clock.now += 0.01
        win.add()
    assert win.summary()['rate_hz'] == pytest.approx(10.0)
    clock.now += 1.9  # 2 s since the reset: 10 frames in 2 s
    assert win.summary()['rate_hz'] == pytest.approx(5.0)
    with pytest.raises(ValueError):
        RateWindow(0)


@pytest.fixture(scope='module')
def two_models(tiny_models):
    """Return the paths of two models with 3 and 5 classes (conftest)."""
    return tiny_models[3], tiny_models[5]


def replace_atomically(src, dst):
    """Copy ``src`` next to ``dst`` and rename it over ``dst`` (as ``sam2real export`` does)."""
    tmp = f'{dst}.tmp'
    if isinstance(src, bytes):
        with open(tmp, 'wb') as f:
            f.write(src)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Reports:
    """Collect ``HotModel`` reports (level, text)."""

    def __init__(self):
        self.items = []

    def __call__(self, level, text):
        self.items.append((level, text))

    def count(self, word):
        return sum(word in text for _, text in self.items)


def test_hot_reload_swaps_between_frames_and_keeps_the_old_model(two_models, tmp_path):
    three, five = two_models
    path = tmp_path / 'model.onnx'
    replace_atomically(three, path)
    reports = Reports()
    hot = HotModel(str(path), lambda p: SegmentationEngine.load(p, threads=1), poll_s=0.05,
                   settle_s=0.05, report=reports)
    engine = hot.load_now()
    assert engine.num_classes == 3 and hot.state == 'loaded' and hot.loads == 1
    assert hot.take() == (engine, False)

    # A worker serving frames the whole time: every frame gets a model, none waits for a load.
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    served, stop = [], threading.Event()

    def worker():
        while not stop.is_set():
            eng, swapped = hot.take()
            labels = eng.predict(rgb, want_features=False).labels
            served.append((eng.num_classes, swapped, int(labels.max())))
    thread = threading.Thread(target=worker)
    thread.start()
    hot.start()
    try:
        assert wait_until(lambda: len(served) >= 3, 30)
        replace_atomically(five, path)
        assert wait_until(lambda: any(n == 5 for n, _, _ in served), 60), hot.state
        # A broken new version: reported once, the 5-class model keeps serving.
        replace_atomically(b'not an onnx model', path)
        assert wait_until(lambda: hot.state == 'reload failed', 30)
        count = len(served)
        assert wait_until(lambda: len(served) > count + 3, 30)
        assert 'not a readable ONNX model' in hot.error
        # The file disappears: warned once, the model in memory stays.
        os.unlink(path)
        assert wait_until(lambda: reports.count('disappeared') == 1, 10)
        count = len(served)
        assert wait_until(lambda: len(served) > count + 3, 30)
        # And the 3-class model comes back.
        replace_atomically(three, path)
        assert wait_until(lambda: served[-1][0] == 3, 60), hot.state
    finally:
        stop.set()
        thread.join(30)
        hot.stop()
    classes = [n for n, _, _ in served]
    assert classes[0] == 3 and 5 in classes and classes[-1] == 3
    # One swap per version, on the first frame of the new model, never back and forth.
    changes = [i for i in range(1, len(served)) if classes[i] != classes[i - 1]]
    assert len(changes) == 2 and all(served[i][1] for i in changes)
    assert sum(swapped for _, swapped, _ in served) == 2 and hot.loads == 3
    assert all(top < n for n, _, top in served)  # labels fit the model that made them
    assert hot.state == 'loaded' and hot.error == ''
    assert reports.count('cannot load the new model') == 1
    assert reports.count('previous model stays in use') == 1
    assert reports.count('loaded a new version') == 2
    hot.release()
    assert hot.engine is None and hot.take() == (None, False) and hot.state == 'not loaded'
    assert hot.load_now().num_classes == 3  # after a release, loading works again


class WarmupRecorder(SegmentationEngine):
    """A real engine that notes which thread warmed it up."""

    warm_thread = None

    def warmup(self, runs=2):
        self.warm_thread = threading.get_ident()
        super().warmup(runs)


def test_hot_reload_warms_the_new_model_up_and_frees_the_old_one_off_the_worker(
        two_models, tmp_path):
    """No gap at a swap (#19): the worker never loads, warms up or frees a model itself."""
    import gc
    import weakref
    three, five = two_models
    path = tmp_path / 'model.onnx'
    replace_atomically(three, path)
    reports = Reports()
    hot = HotModel(str(path), lambda p: WarmupRecorder.load(p, threads=1), poll_s=0.05,
                   settle_s=0.05, report=reports)
    first = hot.load_now()
    assert first.warm_thread == threading.get_ident()  # load_now: this thread loads
    old = weakref.ref(first)
    del first
    hot.start()
    try:
        replace_atomically(five, path)
        assert wait_until(lambda: reports.count('loaded a new version') == 1, 60)
        engine, swapped = hot.take()  # the worker's side of the swap
        assert swapped and engine.num_classes == 5
        # warmed up before it was offered, by the watcher thread
        assert engine.warm_thread not in (None, threading.get_ident())
        assert old() is not None  # the replaced model is not freed on the worker's frame
        gc.collect()
        assert wait_until(lambda: old() is None, 30)  # the watcher thread freed it
    finally:
        hot.stop()
    # warm-up can be switched off (the benchmark's baseline)
    cold = HotModel(str(path), lambda p: WarmupRecorder.load(p, threads=1), warmup=False)
    assert cold.load_now().warm_thread is None


def test_a_swap_drops_no_frame_and_the_swap_frame_is_the_new_models(two_models, tmp_path):
    """
    No gap at a swap (#19), as the node runs it: camera -> one-slot buffer -> worker.

    The new version takes a second to load (a sleep: a slow load, without taking the CPU the
    worker needs). Meanwhile the old model labels every frame; the first frame the worker takes
    after the new model is ready is labeled by it; and no frame is dropped across the swap.
    """
    three, five = two_models
    path = tmp_path / 'model.onnx'
    replace_atomically(three, path)
    ready = []

    def slow_load(p):
        time.sleep(1.0)
        return SegmentationEngine.load(p, threads=1)

    def report(level, text):
        if 'loaded a new version' in text:
            ready.append(time.monotonic())
    hot = HotModel(str(path), slow_load, poll_s=0.05, settle_s=0.05, report=report)
    hot.load_now()
    slot, stop = LatestFrame(), threading.Event()
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    served = []  # (seq, time taken, classes, swapped)

    def camera():  # 4 frames/s: the worker (a few ms per frame) is far from saturated
        seq = 0
        while not stop.wait(0.25):
            slot.put(seq)
            seq += 1

    def worker():
        swapped = False  # as in the node, the swap may come on a take without a frame
        while not stop.is_set():
            seq = slot.take(timeout=0.1)
            engine, new = hot.take()
            swapped |= new
            if seq is None:
                continue
            taken = time.monotonic()
            engine.predict(rgb, want_features=False)
            served.append((seq, taken, engine.num_classes, swapped))
            swapped = False
    threads = [threading.Thread(target=camera), threading.Thread(target=worker)]
    for t in threads:
        t.start()
    hot.start()
    try:
        assert wait_until(lambda: len(served) >= 3, 30)
        replaced = time.monotonic()
        replace_atomically(five, path)
        assert wait_until(lambda: ready and any(n == 5 for _, _, n, _ in served), 60)
        count = len(served)
        assert wait_until(lambda: len(served) >= count + 2, 30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        hot.stop()
    swap = next(i for i, s in enumerate(served) if s[2] == 5)
    seq, taken, _, swapped = served[swap]
    assert swapped and taken >= ready[0]  # the swap frame is the new model's...
    before = [s for s in served if replaced <= s[1] < ready[0]]
    assert len(before) >= 2 and all(n == 3 for _, _, n, _ in before)  # ...the old one served
    assert all(s[1] < ready[0] for s in served[:swap])  # the first frame after it was ready
    assert all(n == 5 for _, _, n, _ in served[swap:])
    seqs = [s[0] for s in served]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no frame dropped, ever
    assert slot.dropped == 0


def _nice(tid=None):
    return os.getpriority(os.PRIO_PROCESS, tid or threading.get_native_id())


def _nice_of_threads():
    return {int(t): _nice(int(t)) for t in os.listdir('/proc/self/task')}


@pytest.mark.skipif(not os.path.isdir('/proc/self/task') or not can_restore_priority(_nice()),
                    reason='needs Linux and the right to lower a nice value again')
def test_a_background_load_runs_at_lower_priority_and_the_engine_does_not(two_models,
                                                                          tmp_path):
    """The watcher loads at load_nice more; the engine's threads are put back, then warmed."""
    three, five = two_models
    path = tmp_path / 'model.onnx'
    replace_atomically(three, path)
    seen = []

    def load(p):  # threads=2: onnxruntime starts a thread pool with the session
        seen.append(_nice())
        engine = SegmentationEngine.load(p, threads=2)
        seen.append(_nice_of_threads())

        def warmup(runs=2):  # at the priority the engine serves at
            warm.append(_nice())
            SegmentationEngine.warmup(engine, runs)
        engine.warmup = warmup
        return engine
    warm = []
    base = _nice()
    hot = HotModel(str(path), load, poll_s=0.05, settle_s=0.05, load_nice=7)
    hot.load_now()
    assert seen[0] == base  # at start (no worker serving yet): the caller's priority
    before = set(_nice_of_threads())
    hot.start()
    try:
        replace_atomically(five, path)
        assert wait_until(lambda: hot.take()[1], 60)
        assert seen[2] == min(base + 7, 19)  # loaded at lower priority
        assert warm == [base, base]  # warmed up at the normal one
        watcher = next(t.native_id for t in threading.enumerate() if t.name == 'model-watcher')
        pool = set(seen[3]) - before - {watcher}
        assert pool and all(seen[3][t] == seen[2] for t in pool)  # the pool inherited it
        now = _nice_of_threads()
        assert all(now[t] == base for t in pool if t in now) and pool & set(now)  # put back
        assert now[watcher] == base  # and the watcher itself
    finally:
        hot.stop()


def test_hot_model_waits_for_a_missing_file_and_reports_once(two_models, tmp_path):
    three, _ = two_models
    path = tmp_path / 'later.onnx'
    reports = Reports()
    hot = HotModel(str(path), SegmentationEngine.load, poll_s=0.05, settle_s=0.05,
                   report=reports)
    assert hot.load_now() is None and hot.state == 'missing'
    hot.start()
    try:
        assert wait_until(lambda: hot.check() is False and reports.count('does not exist'), 5)
        replace_atomically(b'garbage', path)
        assert wait_until(lambda: hot.state == 'failed', 30)
        assert hot.take() == (None, False)
        replace_atomically(three, path)
        assert wait_until(lambda: hot.take()[1], 60)
    finally:
        hot.stop()
    assert hot.engine.num_classes == 3 and hot.state == 'loaded'
    assert reports.count('does not exist') == 1 and reports.count('cannot load model') == 1

    empty = HotModel('', SegmentationEngine.load, report=reports)
    assert empty.load_now() is None and empty.state == 'missing'
    empty.check()
    assert reports.count('model_path is empty') == 1


def test_file_signature_sees_an_atomic_replace(tmp_path):
    path = tmp_path / 'f'
    assert file_signature(path) is None
    path.write_bytes(b'abc')
    first = file_signature(path)
    replace_atomically(b'abc', path)  # same size, maybe the same mtime: a new inode
    assert file_signature(path) != first


FRAME_LIFE = """
import resource, sys
from sam2real_ros.inference.runtime import reuse_large_buffers
applied = reuse_large_buffers() if sys.argv[1] == 'on' else None
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(100):  # a received frame's life: a 640x480 rgb8 buffer filled, copied, freed
    a = bytearray(921600)
    b = bytes(a)
    del a, b
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def test_reuse_large_buffers_stops_page_faults_per_frame():
    """Each frame-sized buffer costs ~225 fresh pages by default, none once reused."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
    out = {}
    for mode in ('off', 'on'):
        res = subprocess.run([sys.executable, '-c', FRAME_LIFE, mode], env=env, check=True,
                             capture_output=True, text=True)
        applied, faults = res.stdout.split()
        out[mode] = (applied, int(faults))
    if out['on'][0] != 'True':
        pytest.skip('not glibc: mallopt is not available')
    assert out['on'][1] < 100 * 225 / 10 < out['off'][1], out
    assert subprocess.run([sys.executable, '-c', FRAME_LIFE, 'on'], capture_output=True,
                          text=True, env=dict(env, MALLOC_TRIM_THRESHOLD_='1000'),
                          check=True).stdout.startswith('False')  # the user's setting wins
