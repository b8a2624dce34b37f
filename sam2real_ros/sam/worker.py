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
Background SAM worker: segment every new frame of a dataset into the mask store, resumably.

:class:`SamWorker` (one pass over the pending frames) and :class:`WorkerLoop` (the ``sam_worker``
node's thread); the ``sam2real segment`` CLI is :mod:`sam2real_ros.sam.segment_cli`. Frames
come from the recorder's episodes (``complete`` or ``interrupted`` ones only, never an episode
still ``recording``; ``episode_store.iter_frames`` lists them) and from plain image folders below
the dataset root. Frames with masks are skipped, each frame's masks are written atomically,
unreadable images are recorded as failed (retried later only with ``retry_failed``); a shard
``(i, n)`` takes the keys of a stable hash. Usage: docs/sam_worker.md.
"""
import hashlib
import os
import sys
import threading
import time

from sam2real_ros.common import io_utils
from sam2real_ros.common.accelerator import free_accelerator_memory
from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.recording import episode_store
from sam2real_ros.sam.mask_store import MaskStore

MAX_CONSECUTIVE_ERRORS = 5
KEEP_FAILURES = 100  # (key, reason) pairs a worker keeps for its summary


class WorkerError(Sam2realError, RuntimeError):
    """A user error (bad dataset root, bad shard spec, ...) or a systematic failure."""


def find_frames(dataset_root, store_root=None, skipped=None):
    """
    Return all frames below ``dataset_root``: finished episodes first, then plain image files.

    Plain images are those :func:`sam2real_ros.common.io_utils.list_images` lists (the image
    lister the image-folder dataset uses too), leaving out the mask store. Returns a list of
    ``episode_store.FrameRef`` (a plain image has no stamp, phase or episode); ``skipped``,
    when a list, receives ``(episode_id, reason)`` for each episode folder left out (still
    recording, or unreadable).
    """
    root = os.path.abspath(os.fspath(dataset_root))
    if not os.path.isdir(root):
        raise WorkerError(f'dataset root is not a folder: {root}')
    store_root = os.path.abspath(store_root or os.path.join(root, 'masks'))
    frames = list(episode_store.iter_frames(root, states=('complete', 'interrupted'),
                                            skipped=skipped))
    for key in io_utils.list_images(root, exclude=[store_root]):
        frames.append(episode_store.FrameRef(os.path.join(root, *key.split('/')), key))
    return frames


def parse_shard(text):
    """Parse ``'i/n'`` into ``(i, n)`` with ``0 <= i < n``; raises :class:`WorkerError`."""
    try:
        i, n = (int(v) for v in str(text).split('/'))
    except ValueError:
        raise WorkerError(f'--shard must look like i/n (e.g. 0/4), got {text!r}') from None
    if n < 1 or not 0 <= i < n:
        raise WorkerError(f'--shard {text}: need 0 <= i < n')
    return i, n


def shard_from_env(environ=os.environ):
    """Return ``(RANK, WORLD_SIZE)`` as set by torchrun, or ``(0, 1)``."""
    if 'RANK' in environ and 'WORLD_SIZE' in environ:
        return parse_shard(f"{environ['RANK']}/{environ['WORLD_SIZE']}")
    return 0, 1


def in_shard(key, shard):
    """Tell whether ``key`` belongs to shard ``i`` of ``n`` (SHA-1 of the key)."""
    i, n = shard
    return n == 1 or int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) % n == i


class SamWorker:
    """
    Segments the frames of one dataset (one shard of it) into a :class:`MaskStore`.

    Arguments:
    ---------
      dataset_root (str): the recorder's dataset root or any image folder.
      segmenter (callable): ``segmenter(rgb) -> Segments`` with ``.name`` and ``.settings``
        (see :mod:`sam2real_ros.sam.segmenters`); ``segmenter(rgb, depth=...)`` when it has a
        true ``accepts_depth``.
      store_root (str or None): mask store folder (default ``<dataset_root>/masks``).
      shard (tuple(int, int)): ``(i, n)``: only keys with ``in_shard(key, (i, n))``.
      retry_failed (bool): process frames marked failed again.

    """

    def __init__(self, dataset_root, segmenter, store_root=None, shard=(0, 1),
                 retry_failed=False):
        self.root = os.path.abspath(os.fspath(dataset_root))
        self.store_root = os.path.abspath(store_root or os.path.join(self.root, 'masks'))
        self.store = MaskStore(self.store_root)
        self.segmenter = segmenter
        self.shard = tuple(shard)
        self.retry_failed = retry_failed
        self.done = self.failed = 0
        self.failures = []  # (key, reason) of the first KEEP_FAILURES frames that failed
        self.seconds = 0.0
        self.last_seconds = None
        self.queue_length = 0
        self._errors_in_a_row = 0
        self.store.acquire_writer_lock()  # tells other workers our temp files are live
        self.removed_temp_files = self.store.remove_stale_temp_files()

    def close(self):
        """Release the store's writer lock (the process's end releases it too)."""
        self.store.release_writer_lock()

    def pending(self):
        """Return the frames of this shard that still need masks (``episode_store.FrameRef``)."""
        out = []
        for f in find_frames(self.root, self.store_root):
            if in_shard(f.key, self.shard):
                st = self.store.status(f.key)
                if st is None or (st == 'failed' and self.retry_failed):
                    out.append(f)
        self.queue_length = len(out)
        return out

    def load(self, frame):
        """
        Read a frame's RGB and, for a segmenter that takes depth, its depth (or None).

        Raises
        ------
          io_utils.ImageReadError: unreadable image, or a depth file that is broken or does not
          match the image.

        """
        rgb = io_utils.read_rgb(frame.image_path)
        depth = None
        if getattr(self.segmenter, 'accepts_depth', False):
            depth = io_utils.read_depth(frame.image_path, rgb.shape)
        return rgb, depth

    def process(self, frame, rgb=None, depth=None):
        """
        Segment one frame and store the result; returns ``'done'``, ``'failed'`` or ``'skip'``.

        A segmenter that takes depth (``accepts_depth``) gets the frame's registered depth when
        it has one (``io_utils.depth_path``: ``depth/<stem>.png`` beside the image or its
        ``rgb/`` folder); pass ``rgb`` and ``depth`` to skip reading them. Unreadable images or
        depth files and per-frame errors are recorded with :meth:`MaskStore.mark_failed`; after
        several unexpected errors in a row a :class:`WorkerError` stops the run.
        """
        if self.store.status(frame.key) == 'done':
            return 'skip'
        t0 = time.perf_counter()
        try:
            if rgb is None:
                rgb, depth = self.load(frame)
            seg = self.segmenter(rgb, depth=depth) if depth is not None else self.segmenter(rgb)
        except io_utils.ImageReadError as e:
            self._failed(frame.key, str(e))
            return 'failed'
        except Exception as e:
            self._errors_in_a_row += 1
            self._failed(frame.key, f'{type(e).__name__}: {e}')
            if self._errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
                raise WorkerError(f'{self._errors_in_a_row} frames in a row failed, last '
                                  f'{frame.key}: {type(e).__name__}: {e}') from e
            return 'failed'
        dt = time.perf_counter() - t0
        self.store.write(frame.key, seg.masks, seg.scores, seg.bboxes,
                         segmenter=self.segmenter.name, settings=self.segmenter.settings,
                         extra={'timings': seg.timings, 'seconds': dt,
                                'depth': depth is not None})
        self._errors_in_a_row = 0
        self.done += 1
        self.seconds += dt
        self.last_seconds = dt
        self.queue_length = max(0, self.queue_length - 1)
        return 'done'

    def _failed(self, key, reason):
        self.store.mark_failed(key, reason)
        self.failed += 1
        if len(self.failures) < KEEP_FAILURES:
            self.failures.append((key, reason))

    def run(self, frames=None, limit=None, stop=None, progress=False, on_frame=None):
        """
        Process ``frames`` (default: :meth:`pending`) in order, reading the next image ahead.

        Arguments:
        ---------
          limit (int or None): at most this many frames.
          stop (threading.Event or None): checked between frames; set it to stop cleanly.
          progress (bool): show a tqdm progress bar.
          on_frame (callable or None): ``on_frame(frame, status)`` after each frame.

        Returns
        -------
          (int): frames processed (done or failed) in this call.

        """
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm
        frames = self.pending() if frames is None else list(frames)
        if limit is not None:
            frames = frames[:limit]
        stop = stop or threading.Event()
        n = 0

        def load(f):
            try:
                return self.load(f)
            except io_utils.ImageReadError:
                return None, None  # process() reads again and records the reason

        with ThreadPoolExecutor(1) as pool, tqdm(total=len(frames), unit='frame',
                                                 disable=not (progress and frames),
                                                 desc='segment') as bar:
            ahead = pool.submit(load, frames[0]) if frames else None
            for i, frame in enumerate(frames):
                if stop.is_set():
                    break
                rgb, depth = ahead.result()
                ahead = pool.submit(load, frames[i + 1]) if i + 1 < len(frames) else None
                status = self.process(frame, rgb, depth)
                n += status != 'skip'
                bar.update(1)
                bar.set_postfix(done=self.done, failed=self.failed)
                if on_frame is not None:
                    on_frame(frame, status)
        return n


class WorkerLoop:
    """
    The ``sam_worker`` node's work, without ROS: a model that is loaded and freed, and a thread.

    The thread scans the dataset every ``poll_period`` seconds and segments what is pending
    (:meth:`SamWorker.pending`), one frame at a time. The node maps its lifecycle onto it:
    configure -> :meth:`load`, activate -> :meth:`load` (again after a deactivate) and
    :meth:`start`, deactivate -> :meth:`stop` and :meth:`free`, cleanup/shutdown -> :meth:`close`.

    Arguments:
    ---------
      dataset_root (str): the recorder's dataset root.
      make_segmenter (callable): ``make_segmenter() -> segmenter`` (loads the model; may raise).
      store_root, shard, retry_failed: as :class:`SamWorker`.
      poll_period (float): seconds between scans.
      on_frame (callable or None): ``on_frame(frame, status)`` after each frame.
      log (callable): ``log(level, text)`` with level ``'info'``, ``'warning'`` or ``'error'``.
      shutting_down (callable): returns True once the process is shutting down (the node: its
        ROS context is no longer ok); an exception then ends the thread quietly instead of
        being reported as an error (a publisher that is already gone, for instance).

    Attributes
    ----------
      state (str): ``unconfigured``, ``loading``, ``inactive`` (model loaded, not working),
        ``unloaded`` (model freed), ``scanning``, ``working``, ``idle``, ``error``.
      error (str): why the thread stopped, when ``state`` is ``error``.

    """

    def __init__(self, dataset_root, make_segmenter, store_root=None, shard=(0, 1),
                 retry_failed=False, poll_period=5.0, on_frame=None,
                 log=lambda level, text: print(text, file=sys.stderr),
                 shutting_down=lambda: False):
        self.root = dataset_root
        self._make = make_segmenter
        self._store_root, self._shard, self._retry = store_root, shard, retry_failed
        self.poll_period = float(poll_period)
        self._on_frame = on_frame
        self._log = log
        self._shutting_down = shutting_down
        self.state = 'unconfigured'
        self.error = ''
        self.worker = None
        self._thread = None
        self._stop = threading.Event()

    @property
    def segmenter(self):
        """Return the loaded segmenter, or None."""
        return self.worker.segmenter if self.worker is not None else None

    def load(self):
        """Build the segmenter (loads the model) unless it is loaded; exceptions propagate."""
        if self.segmenter is not None:
            return
        self.state = 'loading'
        try:
            seg = self._make()
        except BaseException:
            self.state = 'unloaded' if self.worker is not None else 'unconfigured'
            raise
        if self.worker is None:
            self.worker = SamWorker(self.root, seg, self._store_root, self._shard, self._retry)
            if self.worker.removed_temp_files:
                self._log('info', f'removed {self.worker.removed_temp_files} stale temp files '
                                  f'of killed workers from {self.worker.store_root}')
        else:
            self.worker.segmenter = seg
        self.error = ''
        self.state = 'inactive'

    def start(self):
        """Start the thread (the model must be loaded)."""
        if self.segmenter is None:
            raise RuntimeError('WorkerLoop.start() before load()')
        if self.running():
            return
        self._stop.clear()
        self.error = ''
        self._thread = threading.Thread(target=self._run, name='sam_worker', daemon=True)
        self._thread.start()

    def running(self):
        """Tell whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout=None):
        """
        Stop the thread between two frames; returns True once it has ended.

        The frame in progress finishes (and is stored) first; with a ``timeout`` the call may
        return False before that, leaving the (daemon) thread to end by itself.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        ended = not self.running()
        if ended and self.state != 'error':
            self.state = 'inactive' if self.segmenter is not None else self.state
        return ended

    def free(self):
        """Drop the segmenter and release its memory (GPU memory included); thread stopped."""
        if self.running():
            raise RuntimeError('WorkerLoop.free() while the thread runs: stop() it first')
        if self.worker is not None and self.worker.segmenter is not None:
            self.worker.segmenter = None
            free_accelerator_memory()
            if self.state != 'error':
                self.state = 'unloaded'

    def close(self, timeout=None):
        """Stop, free and release the store's writer lock; returns False if a frame was left."""
        ended = self.stop(timeout)
        if ended:
            self.free()
        if self.worker is not None:
            self.worker.close()
        return ended

    def _run(self):
        w = self.worker
        try:
            while not self._stop.is_set():
                self.state = 'scanning'
                frames = w.pending()
                self.state = 'working' if frames else 'idle'
                w.run(frames, stop=self._stop, on_frame=self._on_frame)
                if not self._stop.is_set():
                    self.state = 'idle'
                self._stop.wait(self.poll_period)
        except Exception as e:
            if self._stop.is_set() or self._shutting_down():
                return  # shutting down: e.g. the node's publisher is already gone
            self.state = 'error'
            self.error = f'{type(e).__name__}: {e}'
            self._log('error', f'worker stopped: {self.error}')
