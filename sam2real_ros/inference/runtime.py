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
The ROS-free parts of the segmentation node: newest-frame slot, rate window, hot model.

- :class:`LatestFrame`: a one-slot buffer between the camera callback and the worker thread; a
  newer frame replaces an unprocessed one (counted as dropped), so no queue can build up.
- :class:`RateWindow`: per-event figures (rate, percentiles) over the last seconds, measured up
  to the present, so a camera that stops shows a falling rate and a growing age at once.
- :func:`file_signature` and :class:`HotModel`: the engine in use, and a background thread that
  notices when the model file is replaced, loads the new version while the old one keeps
  serving, and hands it over between two frames. A file that fails to load is reported once and
  the model in use stays.
- :func:`lowered_priority`: the loading thread's work at a lower CPU priority than the worker's,
  the threads it starts (onnxruntime's thread pool) put back afterwards.
- :func:`reuse_large_buffers`: keeps the C allocator from handing every camera-frame-sized
  buffer back to the kernel, which made receiving a 640x480 rgb8 frame cost twice the CPU.

Plain Python (threads, ``os.stat``); the node (``sam2real_ros/nodes/segmentation_node.py``) is
the only ROS user. This module never imports rclpy.
"""
import collections
import contextlib
import ctypes
import os
import threading
import time

import numpy as np
from sam2real_ros.common.accelerator import free_accelerator_memory


MALLOC_ENV = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')


def reuse_large_buffers(mmap_threshold=8 << 20, trim_threshold=32 << 20):
    """
    Let glibc's malloc reuse freed frame-sized buffers instead of returning them to the kernel.

    Each received camera frame passes through several ~1 MB buffers (DDS reassembly, CDR,
    the message's ``data`` array). Left to itself glibc serves some of them with ``mmap`` or
    trims the heap after they are freed, so the next frame takes ~250 fresh zeroed pages per
    buffer (page faults). Raising the mmap threshold to ``mmap_threshold`` and the trim
    threshold to ``trim_threshold`` halved the segmentation node's CPU time per received
    640x480 rgb8 frame (docs/segmentation_node.md, "Speed"); the cost is up to
    ``trim_threshold`` bytes of free heap kept for reuse.

    Does nothing where the allocator is not glibc's or where ``MALLOC_MMAP_THRESHOLD_`` /
    ``MALLOC_TRIM_THRESHOLD_`` are set (the user's choice wins).

    Arguments:
    ---------
      mmap_threshold (int): allocations up to this size come from the heap (bytes).
      trim_threshold (int): free heap at the top kept instead of trimmed (bytes).

    Returns
    -------
      bool: whether the settings were applied.

    """
    if any(name in os.environ for name in MALLOC_ENV):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, int(mmap_threshold))) and \
        bool(mallopt(m_trim_threshold, int(trim_threshold)))


def _thread_ids():
    try:
        return {int(t) for t in os.listdir('/proc/self/task')}
    except OSError:  # not Linux
        return None


def can_restore_priority(nice):
    """Return whether this process may set a thread's nice value back down to ``nice``."""
    import resource
    if not hasattr(os, 'setpriority'):
        return False
    if os.geteuid() == 0:
        return True
    soft = resource.getrlimit(resource.RLIMIT_NICE)[0]  # the kernel's can_nice()
    return soft == resource.RLIM_INFINITY or soft >= 20 - nice


@contextlib.contextmanager
def lowered_priority(delta):
    """
    Run the block with this thread's nice value raised by ``delta``; yields whether it was.

    Linux threads have nice values of their own and a new thread inherits its creator's, so the
    threads the block starts (an onnxruntime session's thread pool, created with the session)
    are put back to the thread's own nice value when the block ends, as is the thread itself;
    where the process may not lower a nice value again (no root, RLIMIT_NICE too small) nothing
    is changed, so a model loaded here never infers at the lowered priority.
    """
    tid = threading.get_native_id()
    base = os.getpriority(os.PRIO_PROCESS, tid) if hasattr(os, 'getpriority') else 0
    before = _thread_ids()
    if delta <= 0 or before is None or not can_restore_priority(base):
        yield False
        return
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(base + int(delta), 19))
        low = os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        for other in (_thread_ids() or set()) - before:
            try:  # started in the block: inherited the lowered value
                if os.getpriority(os.PRIO_PROCESS, other) == low:
                    os.setpriority(os.PRIO_PROCESS, other, base)
            except OSError:  # ended meanwhile
                pass
        os.setpriority(os.PRIO_PROCESS, tid, base)


class LatestFrame:
    """A one-slot buffer: ``put`` replaces the unprocessed frame (counted in ``dropped``)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self.dropped = 0

    def put(self, item):
        """Store ``item``, replacing (and counting) a frame nobody took yet."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout):
        """Return the newest item and empty the slot, or ``None`` after ``timeout`` seconds."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def clear(self):
        """Drop the waiting item (not counted: the node stopped taking frames)."""
        with self._cond:
            self._item = None

    def wake(self):
        """Wake a waiting ``take`` (used at shutdown)."""
        with self._cond:
            self._cond.notify_all()


class RateWindow:
    """
    Per-event figures over the last ``seconds``, measured up to the present.

    ``rate_hz`` counts the events in ``(now - seconds, now]`` and divides by the window, or by
    the time since :meth:`reset` while that is shorter (at least 1 s, so the first frames
    after a start cannot show a huge rate). When events stop, the rate falls to 0 within
    ``seconds`` and ``age_s`` grows from the last event -- unlike a first-to-last-event rate,
    which keeps showing the old rate.

    Arguments:
    ---------
      seconds (float): window length.
      clock (callable): monotonic seconds (``time.monotonic``; tests pass their own).

    """

    MIN_SPAN_S = 1.0

    def __init__(self, seconds=5.0, clock=time.monotonic):
        if seconds <= 0:
            raise ValueError(f'window seconds must be > 0, got {seconds}')
        self.seconds = float(seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        """Forget all events; the window and ``age_s`` start now."""
        with self._lock:
            self._items = collections.deque()
            self._started = self._clock()
            self._last = None
            self.count = 0

    def add(self, **values):
        """Record one event now with its figures (e.g. ``latency_ms=12.0``)."""
        now = self._clock()
        with self._lock:
            self._items.append((now, values))
            self._last = now
            self.count += 1
            self._trim(now)

    def _trim(self, now):
        while self._items and now - self._items[0][0] > self.seconds:
            self._items.popleft()

    def age_s(self):
        """Seconds since the last event, or since :meth:`reset` when there was none."""
        now = self._clock()
        with self._lock:
            return now - (self._last if self._last is not None else self._started)

    def summary(self):
        """
        Return the figures of the window, up to now.

        Returns
        -------
          (dict): ``rate_hz`` (float), ``age_s`` (seconds since the last event or the
          reset), ``count`` (events since the reset), and ``<name>_p50`` / ``<name>_p95`` for
          each figure given to :meth:`add` by the events still in the window.

        """
        now = self._clock()
        with self._lock:
            self._trim(now)
            items = [v for _, v in self._items]
            last = self._last if self._last is not None else self._started
            span = max(min(self.seconds, now - self._started), self.MIN_SPAN_S)
            count = self.count
        out = {'rate_hz': len(items) / span, 'age_s': now - last, 'count': count}
        for key in (items[0] if items else {}):
            vals = np.array([v[key] for v in items if key in v], np.float64)
            out[f'{key}_p50'] = float(np.percentile(vals, 50))
            out[f'{key}_p95'] = float(np.percentile(vals, 95))
        return out


def file_signature(path):
    """
    Return what identifies one version of a file, or ``None`` when it does not exist.

    ``(device, inode, mtime_ns, size)``: an atomic replace (``os.replace`` of a temp file, as
    ``sam2real export`` does) changes the inode, an in-place rewrite the mtime or the size.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class HotModel:
    """
    The model in use, reloaded in the background when its file is replaced.

    The worker thread calls :meth:`take` before each frame: it returns the engine to use and
    swaps in a newly loaded one first, so a swap always falls between two frames and labels
    come from the old model until then. A watcher thread (:meth:`start`) checks the file every
    ``poll_s`` seconds; on a change it waits ``settle_s`` for the file to stop changing, then
    loads it (in that thread, while the old model keeps serving). A version that fails to load
    is reported once and not retried until the file changes again.

    No gap at a swap: a new engine is warmed up (``engine.warmup()``, its first runs on a black
    frame, when the engine has that method and ``warmup`` is True) in the loading thread before
    it is offered, and the replaced engine is freed by the watcher thread (or :meth:`stop`),
    never by the worker between two frames. The watcher creates the session at ``load_nice``
    higher nice than its own (:func:`lowered_priority`: the new engine's own threads are put
    back, then it is warmed up), so on a busy CPU the worker keeps its share while a new
    version is parsed and optimized. ``python -m benchmarks.hot_reload`` measures the
    dropped frames and the latency of the swap frame.

    States (``state``): ``not loaded`` (nothing tried yet), ``missing`` (no file and no model),
    ``failed`` (the file does not load and there is no model), ``loaded``, and ``reload failed``
    (a new version failed: the previous model stays in use; ``error`` says why).

    Arguments:
    ---------
      path (str): the model file.
      load (callable): ``load(path) -> engine``; raises on a bad file (its message is reported).
      poll_s (float): seconds between checks of the file.
      settle_s (float): a changed file must keep its signature this long before it is loaded.
      report (callable): ``report(level, text)`` with level ``'info'``, ``'warn'`` or
        ``'error'``; called once per event (file missing, load failed, model loaded, ...).
      warmup (bool): warm a newly loaded engine up before it is swapped in.
      load_nice (int): nice increment of a background load (0: none).

    """

    def __init__(self, path, load, poll_s=2.0, settle_s=0.3, report=None, warmup=True,
                 load_nice=10):
        self.path = os.path.expanduser(os.fspath(path)) if path else ''
        self._load = load
        self.poll_s = float(poll_s)
        self.settle_s = float(settle_s)
        self._report = report or (lambda level, text: None)
        self._lock = threading.Lock()
        self._engine = None
        self._pending = None
        self._tried = None  # signature of the file version last tried (loaded or failed)
        self._missing_reported = False
        self._stop = threading.Event()
        self._thread = None
        self.state = 'not loaded'
        self.error = ''
        self.loads = 0  # versions swapped in since construction
        self.warmup = bool(warmup)
        self.load_nice = int(load_nice)
        self._retired = []  # replaced engines, freed by the watcher thread

    # --- loading ---------------------------------------------------------------------------
    def _try_load(self, sig, nice=0):
        """Load the file version ``sig`` at ``nice`` more; returns the engine or None."""
        self._tried = sig
        try:
            with lowered_priority(nice):
                engine = self._load(self.path)
            # warmed up at the priority it will serve at: threads that had run at the lowered
            # priority would carry that CPU time into the scheduler's fairness accounting and
            # wait on the first frames after the swap
            if self.warmup and hasattr(engine, 'warmup'):
                engine.warmup()
        except Exception as exc:  # any failure: one clear line, the old model stays
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
            reason = text or type(exc).__name__
            with self._lock:
                has_model = self._engine is not None or self._pending is not None
                self.state = 'reload failed' if has_model else 'failed'
                self.error = reason
            if has_model:
                self._report('error', f'cannot load the new model {self.path!r}: {reason}; '
                             'the previous model stays in use')
            else:
                self._report('error', f'cannot load model {self.path!r}: {reason}')
            return None
        return engine

    def check(self, settle=True):
        """
        Check the file once and load a new version (blocking); return True if one loaded.

        The watcher thread calls this every ``poll_s`` (a load then runs at ``load_nice``);
        :meth:`load_now` once at start, with ``settle=False`` (no wait for the file to keep its
        signature, and the caller's priority: no worker is serving yet).
        """
        if not self.path:
            if not self._missing_reported:
                self._missing_reported = True
                self._report('error', 'parameter model_path is empty: set it to an exported '
                             '.onnx (or .pt) model')
            with self._lock:
                if self._engine is None:
                    self.state, self.error = 'missing', 'model_path is empty'
            return False
        sig = file_signature(self.path)
        if sig is None:
            with self._lock:
                has_model = self._engine is not None or self._pending is not None
                if not has_model:
                    self.state, self.error = 'missing', f'{self.path} does not exist'
            if not self._missing_reported:
                self._missing_reported = True
                if has_model:
                    self._report('warn', f'model file {self.path!r} disappeared: the loaded '
                                 'model stays in use')
                else:
                    self._report('error', f'model file {self.path!r} does not exist: no labels '
                                 f'until it appears (checking every {self.poll_s:g} s)')
            return False
        self._missing_reported = False
        if sig == self._tried:
            return False
        if settle and self.settle_s > 0:
            if self._stop.wait(self.settle_s) or file_signature(self.path) != sig:
                return False  # still being written (or stopping): look again next time
        engine = self._try_load(sig, self.load_nice if settle else 0)
        if engine is None:
            return False
        with self._lock:
            replaced, self._pending = self._pending, engine
            first = self._engine is None and replaced is None
        del replaced
        names = getattr(engine, 'class_names', [])
        self._report('info', f'{"loaded" if first else "loaded a new version of"} model '
                     f'{self.path!r} ({len(names)} classes: {", ".join(names)}; backend '
                     f'{getattr(engine, "backend", "?")}'
                     f'{"" if first else "; in use from the next frame"})')
        return True

    def load_now(self):
        """Load the model synchronously if it is not loaded yet; return the engine or None."""
        with self._lock:
            if self._engine is not None or self._pending is not None:
                return self._engine or self._pending
        self.check(settle=False)
        return self.take()[0]

    # --- the worker's side -----------------------------------------------------------------
    def take(self):
        """
        Return ``(engine, swapped)`` for the next frame; a pending new model is swapped in.

        ``engine`` is None while no model could be loaded; ``swapped`` is True on the first
        frame of a newly loaded model (the node publishes its class map then).
        """
        with self._lock:
            new = self._pending
            if new is None:
                return self._engine, False
            old, self._engine, self._pending = self._engine, new, None
            self.state, self.error = 'loaded', ''
            self.loads += 1
            if old is not None:
                self._retired.append(old)  # freed by the watcher thread, not this one
        return new, True

    def free_retired(self):
        """Free the engines that newer versions replaced (the watcher thread calls this)."""
        with self._lock:
            retired, self._retired = self._retired, []
        del retired

    @property
    def engine(self):
        """Return the engine in use (None before the first load)."""
        return self._engine

    # --- watcher thread --------------------------------------------------------------------
    def start(self):
        """Start the watcher thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name='model-watcher', daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.wait(self.poll_s):
            try:
                self.free_retired()
                self.check()
            except Exception as exc:  # never let the watcher die silently
                self._report('error', f'model watcher: {type(exc).__name__}: {exc}')

    def stop(self):
        """Stop the watcher thread (waits for a load in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.free_retired()

    def release(self):
        """Stop watching and free the model (GPU memory too); :meth:`load_now` loads again."""
        self.stop()
        with self._lock:
            self._engine = self._pending = None
            self._tried = None
            self._missing_reported = False
            self.state, self.error = 'not loaded', ''
        free_accelerator_memory()
