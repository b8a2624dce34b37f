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

Core (:class:`SamWorker`, used by the ``sam_worker`` node too) and the ``sam2real segment`` CLI.
Frames come from the recorder's episodes (``complete`` or ``interrupted`` ones only, never an
episode still ``recording``) and from plain image folders below the dataset root. Frames with
masks are skipped, each frame's masks are written atomically, unreadable images are recorded as
failed (retried only with ``--retry-failed``); ``--shard i/n`` splits the work by a stable hash
of the key. Usage: docs/sam_worker.md.
"""
import argparse
import hashlib
import os
import signal
import sys
import threading
import time

from sam2real_ros.common import io_utils
from sam2real_ros.common.accelerator import free_accelerator_memory
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.recording import episode_store
from sam2real_ros.sam.mask_store import MaskStore

MAX_CONSECUTIVE_ERRORS = 5
KEEP_FAILURES = 100  # (key, reason) pairs a worker keeps for its summary
SHOW_FAILURES = 10  # failed frames ``sam2real segment`` names on screen


class WorkerError(RuntimeError):
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


def load_config(path):
    """Read the parameters of ``config/sam_worker.yaml`` (the ROS parameter file)."""
    import yaml
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise WorkerError(f'cannot read config {path}: {e}') from None
    for node in doc.values() if isinstance(doc, dict) else []:
        if isinstance(node, dict) and isinstance(node.get('ros__parameters'), dict):
            return node['ros__parameters']
    raise WorkerError(f'{path}: no "<node>: ros__parameters:" section')


def build_parser():
    """Build the argument parser of ``sam2real segment``."""
    p = argparse.ArgumentParser(
        prog='sam2real segment', formatter_class=HelpFormatter,
        description='Segment every frame of a dataset (recorder episodes and image folders '
        'below it) with SAM or the fallback into its mask store, resumably: frames with masks '
        'are skipped, failed frames are named and make the exit status 1. docs/sam_worker.md')
    p.add_argument('dataset', help='dataset root (recorder layout) or image folder')
    p.add_argument('--store', help='mask store folder (default DATASET/masks)')
    p.add_argument('--config', help='parameter file (config/sam_worker.yaml layout)')
    p.add_argument('--segmenter', choices=('sam', 'fallback', 'auto'), default=None,
                   help='sam: SAM only; fallback: depth + colour segments; auto (default): '
                   'SAM when the checkpoint exists, else the fallback')
    p.add_argument('--model-type', default=None, help='SAM backbone (default vit_h)')
    p.add_argument('--checkpoint', default=None,
                   help='SAM checkpoint (default $SAM_CHECKPOINT or ~/.cache/sam2real/)')
    p.add_argument('--points-per-side', type=int, default=None, help='default 24 (paper)')
    p.add_argument('--points-per-batch', type=int, default=None, help='default 64')
    p.add_argument('--device', default=None, help='auto (default), cpu, cuda, cuda:1, ...')
    p.add_argument('--shard', default=None, help='i/n: process shard i of n (default from '
                   'torchrun RANK/WORLD_SIZE, else 0/1)')
    p.add_argument('--limit', type=int, default=None, help='at most this many frames')
    p.add_argument('--watch', action='store_true', help='keep polling for new frames')
    p.add_argument('--poll', type=float, default=None, help='seconds between scans (--watch)')
    p.add_argument('--retry-failed', action='store_true', help='try failed frames again')
    p.add_argument('--nice', type=int, default=None, help='CPU niceness increment (default 10)')
    p.add_argument('--naive', action='store_true',
                   help="use segment_anything's own generator (slower, same masks)")
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def _options(args):
    cfg = load_config(args.config) if args.config else {}
    sam = dict(cfg.get('sam') or {})
    for name in ('points_per_side', 'points_per_batch'):
        if getattr(args, name) is not None:
            sam[name] = getattr(args, name)
    return {
        'segmenter': args.segmenter or cfg.get('segmenter', 'auto'),
        'model_type': args.model_type or cfg.get('model_type', 'vit_h'),
        'checkpoint': args.checkpoint or cfg.get('checkpoint') or None,
        'device': args.device or cfg.get('device', 'auto'),
        'nice': args.nice if args.nice is not None else int(cfg.get('nice', 10)),
        'poll': args.poll if args.poll is not None else float(cfg.get('poll_period_s', 5.0)),
        'sam': sam, 'fallback': dict(cfg.get('fallback') or {}),
        'upsample_chunk': int(cfg.get('upsample_chunk', 32)),
        'encoder_dtype': cfg.get('encoder_dtype', 'float32')}


def main(argv=None):
    """Run ``sam2real segment``; returns the exit code."""
    from sam2real_ros.sam import segmenters
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print('stopping after the current frame (again to abort)', file=sys.stderr)
        stop.set()

    try:
        opt = _options(args)
        shard = parse_shard(args.shard) if args.shard else shard_from_env()
        if not os.path.isdir(args.dataset):
            raise WorkerError(f'dataset root is not a folder: {args.dataset}')
        skipped = []
        found = find_frames(args.dataset, args.store, skipped)
        left_out = (f'{len(skipped)} episode folder(s) left out: '
                    + '; '.join(f'{eid}: {why}' for eid, why in skipped[:SHOW_FAILURES])
                    + (f'; ... and {len(skipped) - SHOW_FAILURES} more'
                       if len(skipped) > SHOW_FAILURES else '')) if skipped else ''
        if not found and not args.watch:
            raise WorkerError(f'no images found under {args.dataset} (image files '
                              f'{" ".join(io_utils.IMAGE_EXTS)} or finished recorder episodes)'
                              + (f'; {left_out}' if left_out else ''))
        if opt['nice'] > 0:
            os.nice(opt['nice'])
        device = opt['device']
        if device == 'auto' and 'LOCAL_RANK' in os.environ:
            import torch
            if torch.cuda.is_available():
                device = f"cuda:{os.environ['LOCAL_RANK']}"
        seg = segmenters.make_segmenter(
            opt['segmenter'], opt['model_type'], opt['checkpoint'], device, opt['sam'],
            opt['fallback'], fast=not args.naive, upsample_chunk=opt['upsample_chunk'],
            encoder_dtype=opt['encoder_dtype'], log=lambda m: print(m, file=sys.stderr))
        worker = SamWorker(args.dataset, seg, args.store, shard, args.retry_failed)
    except (WorkerError, segmenters.SegmenterError, OSError) as e:
        print(f'sam2real segment: {e}', file=sys.stderr)
        return 2
    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if left_out:
        print(f'sam2real segment: {left_out}', file=sys.stderr)
    print(f'segmenter {seg.name}, store {worker.store_root}, shard {shard[0]}/{shard[1]}'
          + (f', removed {worker.removed_temp_files} stale temp files'
             if worker.removed_temp_files else ''), file=sys.stderr)
    left = args.limit
    try:
        while not stop.is_set():
            n = worker.run(limit=left, stop=stop, progress=not args.no_progress)
            if left is not None:
                left -= n
            if not args.watch or (left is not None and left <= 0):
                break
            stop.wait(opt['poll'])
    except WorkerError as e:
        print(f'sam2real segment: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('aborted', file=sys.stderr)
        return 130
    finally:
        worker.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    per = f', {worker.seconds / worker.done:.2f} s/frame' if worker.done else ''
    report_failures(worker)
    print(f'done {worker.done}, failed {worker.failed}{per}; '
          f'{len(worker.store.failed_keys())} failed frames in the store', file=sys.stderr)
    return 1 if worker.failed else 0


def report_failures(worker, out=sys.stderr, show=SHOW_FAILURES):
    """Print the frames that failed in this run with their reasons (the first ``show``)."""
    if not worker.failed:
        return
    print(f'sam2real segment: {worker.failed} frame(s) failed (each reason is also in '
          f'{worker.store_root}/<frame>.failed.json; --retry-failed tries them again):',
          file=out)
    for key, reason in worker.failures[:show]:
        print(f'  {key}: {reason}', file=out)
    if worker.failed > show:
        print(f'  ... and {worker.failed - show} more', file=out)


if __name__ == '__main__':
    sys.exit(main())
