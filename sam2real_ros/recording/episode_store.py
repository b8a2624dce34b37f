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

What reaches the disk, and when, is decided by
:class:`sam2real_ros.recording.episode_sink.EpisodeSink`; this module owns the format.
"""
import contextlib
from dataclasses import dataclass
import fcntl
import json
import os
import re
import shutil
import socket
import time
from typing import Optional

from sam2real_ros import version
from sam2real_ros.common import io_utils
from sam2real_ros.common.errors import Sam2realError

FORMAT = 'sam2real-episode'
FORMAT_VERSION = 1
STATES = ('recording', 'complete', 'interrupted')
# why a reader that wants finished episodes leaves one out (iter_frames(skipped=...))
STATE_SKIPPED = {'recording': 'still recording, or its writer died (the recorder repairs it at '
                              'its next start)'}
DATASET_LOCK = '.writer.lock'  # in the dataset root: one writer per root (DatasetLock)
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
SIDECAR_NAMES = ('.last_meta.0', '.last_meta.1')
SIDECAR_BYTES = 4096
# what changes while an episode is open: kept in its Sidecar, restored by recover_interrupted
SIDECAR_FIELDS = ('outcome', 'triggers', 'end_ns', 'end_reason', 'frames_lost',
                  'frames_lost_by_reason', 'write_error', 'camera', 'last_ns', 'closed')
_FRAME_RE = re.compile(r'^(\d+)_(' + '|'.join(PHASES) + r')\.png$')
_ID_RE = re.compile(r'^(\d{8}-\d{6})-(\d{3})(?:_\d+)?$')


class EpisodeError(Sam2realError, ValueError):
    """An episode folder or its episode.json is missing or malformed (message names the file)."""


@dataclass(frozen=True)
class FrameRef:
    """
    One stored frame: of an episode, or a plain image file below a dataset root.

    The one on-disk frame type (the SAM worker segments them; ``grasp_episodes.Frame`` is a
    camera frame in memory, with its pixels).

    Attributes
    ----------
      image_path (str): absolute path of the RGB PNG.
      key (str): ``image_path`` relative to the dataset root, ``/`` separators (mask-store key).
      stamp_ns (int | None): image header stamp in nanoseconds (None: not an episode frame).
      phase (str | None): ``'before'``, ``'during'`` or ``'after'`` (None: not an episode frame).
      episode_id (str | None): folder name of the episode (None: not an episode frame).

    """

    image_path: str
    key: str
    stamp_ns: Optional[int] = None
    phase: Optional[str] = None
    episode_id: Optional[str] = None


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


class Sidecar:
    """
    The last known metadata of an open episode, kept where a full disk cannot stop it.

    Two preallocated slots (``.last_meta.0`` / ``.last_meta.1``, :data:`SIDECAR_BYTES` each)
    are overwritten in place in turn, each write numbered (``seq``) and padded to the slot
    size, so an update needs no new disk block and a torn write leaves the other slot
    readable. Created when the disk allows (a failed creation is retried with the next
    write); :func:`read_sidecar` returns the newest valid slot.
    """

    def __init__(self, folder):
        self.paths = [os.path.join(folder, name) for name in SIDECAR_NAMES]
        self._fds = []
        self.seq = 0

    @property
    def ready(self):
        """Return True once the slots exist (and are held open)."""
        return bool(self._fds)

    def _open(self):
        try:
            for path in self.paths:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                self._fds.append(fd)
                os.posix_fallocate(fd, 0, SIDECAR_BYTES)
        except OSError:
            self.close()
            return False
        return True

    def write(self, meta):
        """Store ``meta`` (a small dict) in the older slot; returns False when it could not."""
        if not self._fds and not self._open():
            return False
        data = json.dumps(dict(meta, seq=self.seq + 1)).encode()
        if len(data) >= SIDECAR_BYTES:  # many merged triggers: keep the first and the last
            meta = dict(meta, triggers=meta['triggers'][:1] + meta['triggers'][-1:])
            data = json.dumps(dict(meta, seq=self.seq + 1)).encode()[:SIDECAR_BYTES - 1]
        try:
            os.pwrite(self._fds[(self.seq + 1) % 2],
                      data + b'\n' + b' ' * (SIDECAR_BYTES - len(data) - 1), 0)
        except OSError:
            return False
        self.seq += 1
        return True

    def close(self, remove=False):
        """Close the slots; ``remove``: delete them (the final episode.json is written)."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        for path in self.paths if remove else []:
            with contextlib.suppress(OSError):
                os.unlink(path)


def read_sidecar(folder):
    """Return the newest valid :class:`Sidecar` slot of an episode folder, or ``{}``."""
    best = {}
    for name in SIDECAR_NAMES:
        try:
            with open(os.path.join(folder, name), 'rb') as f:
                meta = json.loads(f.read(SIDECAR_BYTES))
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and isinstance(meta.get('seq'), int) \
                and meta['seq'] > best.get('seq', 0):
            best = meta
    return best


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
            self.sidecar = Sidecar(self.dir)
            self.json_due = False
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
        if self.sidecar.ready:
            self.size -= len(SIDECAR_NAMES) * SIDECAR_BYTES
        self.sidecar.close(remove=True)
        self.release()

    def remember(self, **known):
        """
        Keep what is known so far (``SIDECAR_FIELDS``) in the sidecar; no episode.json write.

        Returns False when the sidecar could not be written (the disk did not allow it yet).
        """
        self.meta.update({k: v for k, v in known.items() if k != 'last_ns' and k != 'closed'})
        side = {k: self.meta.get(k) for k in SIDECAR_FIELDS if self.meta.get(k) is not None}
        side.update((k, v) for k, v in known.items() if k in ('last_ns', 'closed'))
        had = self.sidecar.ready
        ok = self.sidecar.write(side)
        if self.sidecar.ready and not had:
            self.size += len(SIDECAR_NAMES) * SIDECAR_BYTES
        return ok

    def discard(self):
        """Remove the episode folder (it must hold no frame worth keeping) and the lock."""
        if hasattr(self, 'sidecar'):
            self.sidecar.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.release()

    def release(self):
        """Release the writer lock (the folder stays as it is)."""
        if getattr(self, 'sidecar', None) is not None:
            self.sidecar.close()
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


def iter_frames(root, complete_only=True, states=None, skipped=None):
    """
    Yield a :class:`FrameRef` per stored frame, episodes by id, frames by stamp.

    ``states`` (e.g. ``('complete', 'interrupted')``) keeps episodes in these states instead
    of ``complete_only``; ``skipped``, when a list, then receives ``(episode_id, reason)`` for
    each episode folder left out (another state, or unreadable: :func:`list_episodes`).
    """
    root = os.path.abspath(os.fspath(root))
    problems = [] if skipped is not None else None
    for meta in list_episodes(root, complete_only=complete_only and states is None,
                              problems=problems):
        if states is not None and meta['state'] not in states:
            if skipped is not None:
                skipped.append((meta['episode_id'], STATE_SKIPPED.get(
                    meta['state'], f'state {meta["state"]}')))
            continue
        for fr in sorted(meta['frames'], key=lambda f: f['stamp_ns']):
            path = os.path.join(meta['dir'], *fr['rgb'].split('/'))
            key = os.path.relpath(path, root).replace(os.sep, '/')
            yield FrameRef(path, key, fr['stamp_ns'], fr['phase'], meta['episode_id'])
    if skipped is not None:
        skipped.extend(problems)


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


class DatasetBusy(EpisodeError):
    """Another live process holds the dataset root's writer lock (the message names it)."""


class DatasetLock:
    """
    One writer per dataset root: an exclusive ``fcntl`` lock on ``<root>/.writer.lock``.

    The file holds ``{pid, host, program, started_ns}`` of the holder, so a refused writer can
    name it; :meth:`release` empties it. As with the episode locks, the kernel frees the lock
    when its process dies, so the lock file of a killed writer is stale and taken over
    (``stale`` holds what it said; ``{}`` after a clean exit).

    Arguments:
    ---------
      root (str): dataset root (created).
      program (str): who writes, named to a refused second writer.

    Raises
    ------
      DatasetBusy: a live process holds the lock; one line naming it.

    """

    def __init__(self, root, program):
        self.path = os.path.join(os.fspath(root), DATASET_LOCK)
        os.makedirs(os.fspath(root), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _lock_owner(fd)
            os.close(fd)
            who = (f'{owner.get("program", "a writer")} pid {owner.get("pid", "?")} on host '
                   f'{owner.get("host", "?")}') if owner else 'a writer'
            raise DatasetBusy(f'dataset root {os.fspath(root)} is in use by {who} (lock '
                              f'{self.path}): one writer per dataset root') from None
        self._fd = fd
        self.stale = _lock_owner(fd)  # what a dead holder left, or {}
        data = json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                           'program': program, 'started_ns': time.time_ns()}).encode()
        try:  # the lock holds without it (a full disk): the file only names the holder
            os.ftruncate(fd, 0)
            os.pwrite(fd, data + b'\n', 0)
        except OSError:
            pass

    def release(self):
        """Release the lock (idempotent); the emptied file stays (a killed holder's is not)."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


def _lock_owner(fd):
    try:
        meta = json.loads(os.pread(fd, 4096, 0) or b'{}')
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


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
