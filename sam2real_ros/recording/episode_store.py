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
On-disk grasp episodes: crash-safe writer, recovery, readers (layout: docs/episode_store.md).

``<root>/episodes/<episode_id>/episode.json`` + ``rgb/<stamp_ns>_<phase>.png`` (+ optional
``depth/<stamp_ns>_<phase>.png``, uint16 mm). Every file is written atomically; the writer holds
an ``fcntl`` lock on ``.writer.lock`` while the episode is ``recording``, so a restart can tell
a live writer from a crashed one.

:class:`EpisodeSink` is the one owner of what reaches the disk, live (``grasp_recorder``) and
offline (``sam2real extract-episodes``) alike: an episode folder is created with its first
stored frame, so an episode that stored no frame is not written at all; frames an open episode
loses (quota, failed writes, a full queue) are counted in it, and ``end_reason`` says why it was
cut short. Stored frames are never deleted; only folders that hold no frame and the temporary
files of dead writers are.
"""
from collections import Counter
from dataclasses import dataclass, field
import fcntl
import json
import os
import re
import shutil
import socket
import time

from sam2real_ros import version
from sam2real_ros.common import io_utils

FORMAT = 'sam2real-episode'
FORMAT_VERSION = 1
STATES = ('recording', 'complete', 'interrupted')
PHASES = ('before', 'during', 'after')
# end_reason -> True when the episode was cut short (it lacks frames its grasp would have had)
END_REASONS = {
    'after_elapsed': False,  # the after phase ran its full after_s
    'next_grasp': False,     # the next grasp started during the after phase
    'end_of_input': True,    # the bag ended while the episode was open (extract-episodes)
    'shutdown': True,        # the recorder was stopped while the episode was open
    'quota': True,           # max_disk_gb / min_free_gb reached: later frames not stored
    'write_failed': True,    # frames lost to failed writes (disk full, I/O error)
    'queue_full': True,      # frames lost because the disk writer fell behind
    'writer_died': True,     # the writer was killed; rebuilt by recover_interrupted()
    'superseded': True,      # a start arrived before the open episode ended (not from the logic)
}
# Why an open episode lost frames; the first one becomes its end_reason.
LOSS_REASONS = ('quota', 'write_failed', 'queue_full')
_FRAME_RE = re.compile(r'^(\d+)_(before|during|after)\.png$')
_ID_RE = re.compile(r'^(\d{8}-\d{6})-(\d{3})(?:_\d+)?$')
_REMEASURE_S = 30.0  # max_disk_gb: re-measure the dataset root this often (other writers)
_WARN_EVERY_S = 30.0  # a new run of failed writes is reported at most this often


class EpisodeError(ValueError):
    """An episode folder or its episode.json is missing or malformed (message names the file)."""


@dataclass(frozen=True)
class FrameRef:
    """
    One stored frame.

    Attributes
    ----------
      image_path (str): absolute path of the RGB PNG.
      key (str): ``image_path`` relative to the dataset root, ``/`` separators (mask-store key).
      stamp_ns (int): image header stamp in nanoseconds.
      phase (str): ``'before'``, ``'during'`` or ``'after'``.
      episode_id (str): folder name of the episode.

    """

    image_path: str
    key: str
    stamp_ns: int
    phase: str
    episode_id: str


def episodes_dir(root):
    """Return ``<root>/episodes``."""
    return os.path.join(os.fspath(root), 'episodes')


def new_episode_id(start_ns):
    """Return a sortable id from a start time in ns, e.g. ``20261127-101619-123``."""
    sec, ns = divmod(int(start_ns), 1_000_000_000)
    return time.strftime('%Y%m%d-%H%M%S', time.gmtime(sec)) + f'-{ns // 1_000_000:03d}'


def camera_meta(info):
    """Intrinsics dict from a sensor_msgs/CameraInfo (rclpy or rosbags message), or None."""
    if info is None:
        return None
    return {'width': int(info.width), 'height': int(info.height),
            'K': [float(v) for v in info.k], 'D': [float(v) for v in info.d],
            'distortion_model': str(info.distortion_model),
            'frame_id': str(info.header.frame_id)}


def episode_id_to_ns(episode_id):
    """Return the start time (ns, millisecond precision) an episode id encodes, or None."""
    m = _ID_RE.match(episode_id)
    if not m:
        return None
    import calendar
    try:
        sec = calendar.timegm(time.strptime(m.group(1), '%Y%m%d-%H%M%S'))
    except ValueError:
        return None
    return sec * 1_000_000_000 + int(m.group(2)) * 1_000_000


def _frame_names(stamp_ns, phase):
    name = f'{int(stamp_ns)}_{phase}.png'
    return 'rgb/' + name, 'depth/' + name


class EpisodeWriter:
    """
    Write one episode; ``episode.json`` is rewritten at start, on phase changes and at close.

    The constructor either leaves a folder with its writer lock and a valid ``episode.json``
    or, when a write fails, nothing at all (it removes what it created and raises ``OSError``).

    Arguments:
    ---------
      root (str): dataset root (``<root>/episodes/<id>`` is created; the id gets a ``_N``
        suffix when it already exists).
      start_ns (int): episode start time (ns since the epoch).
      meta (dict): extra fields for episode.json (trigger, camera, ...).
      episode_id (str or None): use exactly this id (its folder must not exist).

    """

    def __init__(self, root, start_ns, meta, episode_id=None):
        os.makedirs(episodes_dir(root), exist_ok=True)
        base = episode_id or new_episode_id(start_ns)
        for n in range(1000):
            self.episode_id = base if n == 0 else f'{base}_{n}'
            self.dir = os.path.join(episodes_dir(root), self.episode_id)
            try:
                os.mkdir(self.dir)
                break
            except FileExistsError:
                if episode_id is not None:
                    raise
        self._lock = None
        try:
            os.mkdir(os.path.join(self.dir, 'rgb'))
            self._lock = open(os.path.join(self.dir, '.writer.lock'), 'w')
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.meta = {'format': FORMAT, 'format_version': FORMAT_VERSION,
                         'episode_id': self.episode_id, 'state': 'recording',
                         'start_ns': int(start_ns), 'end_ns': None, 'outcome': None,
                         'end_reason': None, 'camera': None, 'frames': [],
                         'software': {'package': 'sam2real', 'version': version()},
                         'writer': {'pid': os.getpid(), 'host': socket.gethostname()}}
            self.meta.update(meta)
            self._phase = None
            self.json_due = False
            self.bytes_written = 0
            self.size = 0  # bytes of the files in the folder: frames + the current episode.json
            self._json_size = 0
            self.write_json()
        except BaseException:
            self.discard()
            raise

    def write_json(self):
        """Rewrite episode.json atomically with the frames written so far."""
        self.meta['counts'] = {p: sum(f['phase'] == p for f in self.meta['frames'])
                               for p in PHASES}
        self.meta['updated_ns'] = time.time_ns()
        n = io_utils.atomic_write_json(os.path.join(self.dir, 'episode.json'), self.meta)
        self.size += n - self._json_size
        self._json_size = n
        self.json_due = False

    def add_frame(self, stamp_ns, phase, rgb, depth=None, sync=True):
        """
        Write one frame (depth first, then RGB); returns the bytes written.

        A frame is listed only once its RGB file is written; on ``OSError`` nothing is listed.

        Arguments:
        ---------
          rgb (np.ndarray): HxWx3 uint8 RGB. depth (np.ndarray | None): HxW uint16 mm.
          sync (bool): rewrite episode.json now when the phase changed; with False the caller
            does it (``json_due`` tells) and a failure there does not unlist the frame.

        Returns
        -------
          int: bytes written.

        """
        if phase not in PHASES:
            raise ValueError(f'unknown phase {phase!r}')
        rgb_rel, depth_rel = _frame_names(stamp_ns, phase)
        n = 0
        if depth is not None:
            data = io_utils.encode_png(depth)
            io_utils.atomic_write_bytes(os.path.join(self.dir, depth_rel), data)
            n += len(data)
        data = io_utils.encode_png(rgb)
        io_utils.atomic_write_bytes(os.path.join(self.dir, rgb_rel), data)
        n += len(data)
        self.meta['frames'].append({'stamp_ns': int(stamp_ns), 'phase': phase, 'rgb': rgb_rel,
                                    'depth': depth_rel if depth is not None else None})
        if phase != self._phase:
            self._phase = phase
            self.json_due = True
        self.bytes_written += n
        self.size += n
        if sync and self.json_due:
            self.write_json()
        return n

    @property
    def n_frames(self):
        """Return the number of frames written."""
        return len(self.meta['frames'])

    def close(self, state='complete', **meta):
        """
        Write the final episode.json (after every frame) and release the writer lock.

        On ``OSError`` the lock stays held and ``close`` may be called again.
        """
        if state not in STATES:
            raise ValueError(f'unknown episode state {state!r}')
        self.meta.update(meta)
        self.meta['state'] = state
        self.write_json()
        self._release()

    def discard(self):
        """Remove the episode folder (it must hold no frame worth keeping) and the lock."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self._release()

    def _release(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def load_episode(path):
    """
    Read and check ``<episode dir>/episode.json``; returns its dict plus ``'dir'``.

    Raises
    ------
      EpisodeError: missing file, invalid JSON or a missing/invalid field (named).

    """
    path = os.fspath(path)
    jpath = os.path.join(path, 'episode.json')
    try:
        with open(jpath) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise EpisodeError(f'{jpath}: missing (not an episode folder)') from None
    except (OSError, ValueError) as exc:
        raise EpisodeError(f'{jpath}: unreadable or not valid JSON ({exc})') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise EpisodeError(f'{jpath}: not a {FORMAT} file')
    if meta.get('state') not in STATES:
        raise EpisodeError(f'{jpath}: invalid state {meta.get("state")!r}')
    frames = meta.get('frames')
    if not isinstance(frames, list) or not all(
            isinstance(fr, dict) and isinstance(fr.get('stamp_ns'), int)
            and fr.get('phase') in PHASES and isinstance(fr.get('rgb'), str) for fr in frames):
        raise EpisodeError(f'{jpath}: field "frames" must be a list of '
                           '{stamp_ns: int, phase: before|during|after, rgb: str}')
    meta['dir'] = path
    return meta


def list_episodes(root, complete_only=False, problems=None):
    """
    Return the episodes below ``root`` sorted by id (dicts of :func:`load_episode`).

    Folders whose episode.json is missing or unreadable are skipped, and so is an episode
    without frames (older versions could write one); ``problems``, when a list, receives one
    ``(episode_id, reason)`` per skipped folder. ``complete_only`` keeps state ``complete``.
    """
    d = episodes_dir(root)
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        if not os.path.isdir(os.path.join(d, name)) or name.startswith('.'):
            continue
        try:
            meta = load_episode(os.path.join(d, name))
        except EpisodeError as exc:
            if problems is not None:
                problems.append((name, str(exc)))
            continue
        if not meta['frames'] and meta['state'] != 'recording':
            if problems is not None:
                problems.append((name, 'episode has no frames (no_frames)'))
            continue
        if not complete_only or meta['state'] == 'complete':
            out.append(meta)
    return out


def iter_frames(root, complete_only=True):
    """Yield a :class:`FrameRef` per stored frame, episodes by id, frames by stamp."""
    root = os.path.abspath(os.fspath(root))
    for meta in list_episodes(root, complete_only=complete_only):
        for fr in sorted(meta['frames'], key=lambda f: f['stamp_ns']):
            path = os.path.join(meta['dir'], *fr['rgb'].split('/'))
            key = os.path.relpath(path, root).replace(os.sep, '/')
            yield FrameRef(path, key, fr['stamp_ns'], fr['phase'], meta['episode_id'])


def scan_frames(episode_dir):
    """Rebuild the frame list of an episode from its ``rgb/`` (and ``depth/``) files."""
    frames = []
    rgb_dir = os.path.join(episode_dir, 'rgb')
    for name in sorted(os.listdir(rgb_dir)) if os.path.isdir(rgb_dir) else []:
        m = _FRAME_RE.match(name)
        if m:
            has_depth = os.path.isfile(os.path.join(episode_dir, 'depth', name))
            frames.append({'stamp_ns': int(m.group(1)), 'phase': m.group(2),
                           'rgb': 'rgb/' + name, 'depth': 'depth/' + name if has_depth else None})
    frames.sort(key=lambda f: f['stamp_ns'])
    return frames


def writer_alive(episode_dir):
    """Return True when a process holds the episode's writer lock."""
    try:
        fd = os.open(os.path.join(episode_dir, '.writer.lock'), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@dataclass
class Recovery:
    """
    What :func:`recover_interrupted` did.

    Attributes
    ----------
      interrupted (list): ids of episodes left by a dead writer, now ``interrupted``
        (``rebuilt`` ones included).
      rebuilt (list): of those, the ids whose episode.json was missing (killed before the
        first one was written) and was rebuilt from the frames.
      removed (list): ids of folders of dead writers that held no frame, removed.
      unreadable (list): ``(id, reason)`` of folders left alone (not written by a recorder,
        or an episode.json that is not valid); readers skip them.
      temp_files (int): temporary files of dead writers removed.

    """

    interrupted: list = field(default_factory=list)
    rebuilt: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    temp_files: int = 0

    def __bool__(self):
        return bool(self.interrupted or self.removed or self.unreadable)

    def summary(self):
        """Return one line saying what was found and done (empty when nothing)."""
        parts = []
        if self.interrupted:
            rebuilt = f' ({len(self.rebuilt)} rebuilt from their frames)' if self.rebuilt else ''
            parts.append(f'marked {len(self.interrupted)} episode(s) of a dead writer as '
                         f'interrupted{rebuilt}: {", ".join(self.interrupted)}')
        if self.removed:
            parts.append(f'removed {len(self.removed)} episode folder(s) of a dead writer that '
                         f'held no frame: {", ".join(self.removed)}')
        if self.unreadable:
            parts.append(f'left {len(self.unreadable)} unreadable folder(s) alone (readers skip '
                         'them): ' + '; '.join(f'{i}: {r}' for i, r in self.unreadable))
        return '; '.join(parts)


def _temp_meta(path):
    """Return the newest readable episode.json a dead writer left as a temporary file, or {}."""
    best = {}
    for name in os.listdir(path):
        if name.startswith('.episode.json') and io_utils.is_temp_file(name):
            try:
                with open(os.path.join(path, name)) as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                continue
            if (isinstance(meta, dict) and meta.get('format') == FORMAT
                    and meta.get('updated_ns', 0) >= best.get('updated_ns', 0)):
                best = meta
    return best


def recover_interrupted(root):
    """
    Repair what dead writers left below ``<root>/episodes``; returns a :class:`Recovery`.

    An episode left ``recording`` by a dead writer (its lock is free) is marked
    ``interrupted`` (``end_reason: writer_died``) with its frame list rebuilt from the files,
    frames written after the last episode.json update included. A folder a writer was killed
    in before its first episode.json is rebuilt the same way from its frames (and from the
    half-written episode.json, when that is readable). Either kind without any frame is
    removed: no episode without frames; so is an empty folder named like an episode (a writer
    killed between creating it and its ``rgb/`` folder). Temporary files of the dead writer
    are removed; an episode whose lock is held (live writer) is left alone.
    """
    rep = Recovery()
    d = episodes_dir(root)
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        path = os.path.join(d, name)
        if name.startswith('.') or not os.path.isdir(path) or writer_alive(path):
            continue
        try:
            meta = load_episode(path)
        except EpisodeError as exc:
            if os.path.exists(os.path.join(path, 'episode.json')) or not (
                    os.path.exists(os.path.join(path, '.writer.lock'))
                    or os.path.isdir(os.path.join(path, 'rgb'))
                    or (_ID_RE.match(name) and not os.listdir(path))):
                rep.unreadable.append((name, str(exc)))
                continue
            meta = _temp_meta(path)  # killed before its first episode.json
            meta.update(format=FORMAT, format_version=FORMAT_VERSION, episode_id=name,
                        state='recording')
            meta.setdefault('start_ns', episode_id_to_ns(name))
            rep.rebuilt.append(name)
        if meta['state'] != 'recording':
            continue
        rep.temp_files += io_utils.remove_stale_temp_files(path)
        frames = scan_frames(path)
        if not frames:
            shutil.rmtree(path, ignore_errors=True)
            rep.removed.append(name)
            if name in rep.rebuilt:
                rep.rebuilt.remove(name)
            continue
        meta.pop('dir', None)
        meta['frames'] = frames
        meta['counts'] = {p: sum(f['phase'] == p for f in frames) for p in PHASES}
        meta['state'] = 'interrupted'
        meta['end_reason'] = 'writer_died'
        meta['end_ns'] = meta.get('end_ns') or frames[-1]['stamp_ns']
        if meta.get('start_ns') is None:
            meta['start_ns'] = frames[0]['stamp_ns']
        meta['recovered_ns'] = time.time_ns()
        io_utils.atomic_write_json(os.path.join(path, 'episode.json'), meta)
        rep.interrupted.append(name)
    return rep


def dir_size_bytes(root):
    """Total size in bytes of the files below ``root`` (0 when it does not exist)."""
    total = 0
    for dirpath, _, files in os.walk(os.fspath(root)):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class Tick:
    """Event for :meth:`EpisodeSink.handle`: retry pending writes, re-check the quota."""


def _error_text(exc):
    """Return ``[Errno N] <strerror>: <file>`` for an OSError (the file when known)."""
    if getattr(exc, 'errno', None) and getattr(exc, 'strerror', None):
        text = f'[Errno {exc.errno}] {exc.strerror}'
        return f'{text}: {exc.filename}' if exc.filename else text
    return f'{type(exc).__name__}: {exc}'


class _Open:
    """The episode the logic has open, as the sink sees it."""

    def __init__(self, start, meta):
        self.start = start
        self.meta = meta
        self.writer = None
        self.lost = Counter()
        self.skip = False  # resume: already complete on disk
        self.episode_id = None  # resume: write exactly this id
        self.error = None  # first failed write of this episode
        self.rejected_at_start = 0  # the writer's count of bad camera images when it opened


class EpisodeSink:
    """
    Apply grasp_episodes events (start / frame / lost frame / end) to the store.

    The one place that decides what reaches the disk (docs/episode_store.md, "Cut short and
    lost frames"): the folder of an episode is created with its first stored frame, so an
    episode that stores none is not written (``stats['episodes_without_frames']``); an episode
    stays open until the logic ends it, also when the quota or a failed write stops it from
    storing frames, so its ``outcome``, ``end_ns`` and ``triggers`` are always those of its
    grasp, and its ``end_reason`` is the first cause of loss (``quota``, ``write_failed``,
    ``queue_full``) when it lost frames, with ``frames_lost`` and ``frames_lost_by_reason``.

    Not thread-safe: call it from one thread (the node's :class:`BackgroundWriter`); other
    threads may read ``stats``, ``quota_reached`` and ``write_error``.

    Arguments:
    ---------
      root (str): dataset root.
      max_disk_gb (float): store no frame once the root holds this much (0: no limit); the
        root is measured at start and every 30 s (:class:`Tick`), and counted as files are
        written in between.
      min_free_gb (float): store no frame while the file system has less free space (0: off).
      warn (callable): ``warn(str)`` for problems: each quota change, each new run of failed
        writes (at most every 30 s; later when it still lasts) and its end, each episode not
        written.
      resume (bool): an episode whose folder already holds the same episode (same start,
        trigger and image topic) is kept when complete (``episodes_existing``) and replaced when
        half-written or when it lost frames (quota, failed writes: ``episodes_replaced``), so
        the same input gives the same episodes again.
      rejected (callable | None): ``rejected() -> int``, how many camera images the caller has
        rejected as bad so far; an episode without frames then says whether bad images were
        all that arrived while it was open.

    """

    def __init__(self, root, max_disk_gb=0.0, min_free_gb=0.0, warn=print, resume=False,
                 clock=time.monotonic, rejected=None):
        self.root = os.fspath(root)
        os.makedirs(episodes_dir(self.root), exist_ok=True)
        self.max_bytes = int(max_disk_gb * 1e9)
        self.min_free = int(min_free_gb * 1e9)
        self.warn = warn
        self.resume = resume
        self._clock = clock
        self._rejected = rejected or (lambda: 0)
        self.used = dir_size_bytes(self.root) if self.max_bytes else 0
        self._measured_at = clock()
        self.episode = None
        self.closing = []  # writers whose final episode.json could not be written yet
        self.quota_reached = None  # the reason, while the quota is reached
        self.write_error = None  # the last failed write, until a write succeeds again
        self.last_not_written = None  # why the last episode without frames was not written
        self._error_run = 0
        self._error_reported = False  # the current run of failed writes was reported
        self._warned_error_at = None
        self.stats = Counter(dict.fromkeys((
            'episodes_started', 'episodes_complete', 'episodes_cut_short',
            'episodes_without_frames', 'frames_written', 'bytes_written', 'frames_lost',
            *(f'frames_lost_{r}' for r in LOSS_REASONS), 'write_errors'), 0))
        if resume:
            self.stats.update(episodes_existing=0, episodes_replaced=0)
        self.check_quota()

    # ------------------------------------------------------------------ status
    def check_quota(self, remeasure=False):
        """Re-evaluate ``max_disk_gb`` and ``min_free_gb``; returns the reason or None."""
        reason = None
        if self.max_bytes:
            if remeasure:
                self.used = dir_size_bytes(self.root)
                self._measured_at = self._clock()
            if self.used >= self.max_bytes:
                reason = (f'dataset root {self.root} holds {self.used / 1e9:.6f} GB >= '
                          f'max_disk_gb {self.max_bytes / 1e9:g}')
        if reason is None and self.min_free:
            try:
                free = shutil.disk_usage(self.root).free
            except OSError as exc:
                free, reason = None, f'cannot read the free space of {self.root}: {exc}'
            if free is not None and free < self.min_free:
                reason = (f'free space under {self.root} is {free / 1e9:.3f} GB < min_free_gb '
                          f'{self.min_free / 1e9:g}')
        if reason and not self.quota_reached:
            self.warn(f'disk quota reached, not recording: {reason}')
        elif self.quota_reached and not reason:
            self.warn(f'disk quota no longer reached, recording again '
                      f'(was: {self.quota_reached})')
        self.quota_reached = reason
        return reason

    def _write_ok(self):
        if self.write_error is not None:
            self.warn(f'episode writes succeed again after {self._error_run} failed write(s) '
                      f'(last: {self.write_error})')
        self.write_error, self._error_run, self._error_reported = None, 0, False

    def _write_failed(self, exc, what):
        text = f'{what}: {_error_text(exc)}'
        self.stats['write_errors'] += 1
        self._error_run += 1
        now = self._clock()
        # once per run of failures, at most every 30 s: a run that starts sooner after the
        # last report is reported when the 30 s are over, if it still lasts (the probe of
        # maintain() keeps failing meanwhile)
        if not self._error_reported and (self._warned_error_at is None
                                         or now - self._warned_error_at >= _WARN_EVERY_S):
            self._warned_error_at, self._error_reported = now, True
            self.warn(f'episode write failed (reported once per run of failures; frames are '
                      f'lost meanwhile): {text}')
        self.write_error = text
        return text

    # ------------------------------------------------------------------ events
    def handle(self, event, camera=None, extra=None):
        """Apply one event of the episode logic (``camera``: intrinsics) or a :class:`Tick`."""
        kind = type(event).__name__
        if kind == 'EpisodeStart':
            self._start(event, camera, extra or {})
        elif kind == 'FrameOut':
            self._frame(event)
        elif kind == 'FrameLost':
            self._lose(event.reason)
        elif kind == 'EpisodeEnd':
            self._end(event, camera)
        elif kind == 'Tick':
            self.maintain()
        self._retry_closing()

    def _start(self, ev, camera, extra):
        if self.episode is not None:  # never happens with EpisodeLogic; keep the data anyway
            self._finish(self.episode, {'end_reason': 'superseded', 'outcome': 'unknown',
                                        'end_ns': int(ev.t_ns)})
        self.stats['episodes_started'] += 1
        self.episode = ep = _Open(ev, dict(extra, trigger=ev.trigger, camera=camera))
        ep.rejected_at_start = self._rejected()
        if self.resume:
            self._resume(ep)

    def _same(self, meta, ep):
        return (meta.get('start_ns') == int(ep.start.t_ns)
                and meta.get('trigger') == ep.meta.get('trigger')
                and meta.get('image_topic') == ep.meta.get('image_topic'))

    def _resume(self, ep):
        base = new_episode_id(ep.start.t_ns)
        for n in range(1000):
            eid = base if n == 0 else f'{base}_{n}'
            path = os.path.join(episodes_dir(self.root), eid)
            if not os.path.isdir(path):
                return
            try:
                meta = load_episode(path)
            except EpisodeError:
                continue
            if not self._same(meta, ep):
                continue
            if (meta['state'] == 'complete' and not meta.get('frames_lost')) \
                    or writer_alive(path):
                ep.skip = True
                self.stats['episodes_existing'] += 1
            else:
                if self.max_bytes:
                    self.used -= dir_size_bytes(path)
                shutil.rmtree(path)
                ep.episode_id = eid
                self.stats['episodes_replaced'] += 1
            return

    def _lose(self, reason, error=None):
        ep = self.episode
        if ep is None or ep.skip:
            return
        ep.lost[reason] += 1
        self.stats['frames_lost'] += 1
        self.stats[f'frames_lost_{reason}'] += 1
        if error and ep.error is None:
            ep.error = error

    def _frame(self, ev):
        ep = self.episode
        if ep is None or ep.skip:
            return
        if self.check_quota():
            self._lose('quota')
            return
        f = ev.frame
        size = ep.writer.size if ep.writer is not None else 0
        try:
            if ep.writer is None:
                ep.writer = EpisodeWriter(self.root, ep.start.t_ns, ep.meta, ep.episode_id)
                ep.meta = ep.writer.meta
            n = ep.writer.add_frame(f.stamp_ns, ev.phase, f.rgb, f.depth, sync=False)
        except OSError as exc:
            self.used += (ep.writer.size if ep.writer is not None else 0) - size
            self._lose('write_failed', self._write_failed(exc, 'frame'))
            return
        self._write_ok()
        self.used += ep.writer.size - size
        self.stats['frames_written'] += 1
        self.stats['bytes_written'] += n
        self._sync_json(ep.writer)

    def _sync_json(self, writer):
        if writer.json_due:
            size = writer.size
            try:
                writer.write_json()
            except OSError as exc:
                self._write_failed(exc, 'episode.json')
            else:
                self._write_ok()
                self.used += writer.size - size

    def _end(self, ev, camera):
        ep, self.episode = self.episode, None
        if ep is None or ep.skip:
            return
        meta = {'end_ns': int(ev.t_ns), 'outcome': ev.outcome, 'end_reason': ev.end_reason,
                'triggers': ev.triggers}
        if ep.meta.get('camera') is None and camera is not None:
            meta['camera'] = camera
        self._finish(ep, meta)

    def _finish(self, ep, meta):
        lost = {r: n for r, n in ep.lost.items() if n}  # in the order the causes appeared
        if lost:
            meta['end_reason'] = next(iter(lost))  # the first cause of loss
        if ep.writer is None or ep.writer.n_frames == 0:
            self._not_written(ep, meta, lost)
            return
        meta.update(frames_lost=sum(lost.values()), frames_lost_by_reason=lost)
        if ep.error:
            meta['write_error'] = ep.error
        self.stats['episodes_complete'] += 1
        self.stats['episodes_cut_short'] += bool(END_REASONS.get(meta['end_reason']))
        ep.writer.meta.update(meta)
        ep.writer.meta['state'] = 'complete'
        self.closing.append(ep.writer)

    def _not_written(self, ep, meta, lost):
        if ep.writer is not None:
            ep.writer.discard()
            self.used -= ep.writer.size
        self.stats['episodes_without_frames'] += 1
        bad = self._rejected() - ep.rejected_at_start
        if lost:
            why = 'every frame was lost (' + ', '.join(f'{r}: {n}' for r, n in lost.items()) + ')'
        elif bad:
            why = (f'no good camera frame arrived while it was open ({bad} bad image message(s) '
                   'rejected meanwhile)')
        else:
            why = 'no camera frame arrived while it was open'
        trig = ep.meta.get('trigger') or {}
        self.last_not_written = why
        self.warn(f'grasp episode {new_episode_id(ep.start.t_ns)} ({trig.get("source")}, '
                  f'outcome {meta.get("outcome")}) stored no frame and is not written '
                  f'(no_frames): {why}')

    def _retry_closing(self):
        while self.closing:
            w = self.closing[0]
            size = w.size
            try:
                w.close('complete')
            except OSError as exc:
                self._write_failed(exc, 'episode.json')
                return
            self._write_ok()
            self.used += w.size - size
            self.closing.pop(0)

    def maintain(self):
        """Retry pending episode.json writes, re-check the quota, probe a failed disk."""
        if self.episode is not None and self.episode.writer is not None:
            self._sync_json(self.episode.writer)
        self._retry_closing()
        self.check_quota(remeasure=bool(self.max_bytes)
                         and self._clock() - self._measured_at >= _REMEASURE_S)
        if self.write_error is not None and not self.closing:
            probe = os.path.join(episodes_dir(self.root), '.write-probe')
            try:
                io_utils.atomic_write_bytes(probe, b'probe\n')
                os.unlink(probe)
            except OSError as exc:
                self._write_failed(exc, 'write probe')
            else:
                self._write_ok()

    def close(self, **meta):
        """
        Close the open episode, if any (``meta`` e.g. ``end_reason='shutdown'``).

        Returns the ids of episodes whose final episode.json still could not be written (they
        stay ``recording``; the next start's :func:`recover_interrupted` repairs them).
        """
        if self.episode is not None:
            ep, self.episode = self.episode, None
            if not ep.skip:
                meta.setdefault('end_reason', 'shutdown')
                meta.setdefault('outcome', 'unknown')
                meta.setdefault('end_ns', time.time_ns())
                self._finish(ep, meta)
        self._retry_closing()
        left = [w.episode_id for w in self.closing]
        for w in self.closing:
            w._release()
        self.closing = []
        return left
