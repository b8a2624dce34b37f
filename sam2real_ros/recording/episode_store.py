"""
On-disk grasp episodes: crash-safe writer, recovery, readers (layout: docs/episode_store.md).

``<root>/episodes/<episode_id>/episode.json`` + ``rgb/<stamp_ns>_<phase>.png`` (+ optional
``depth/<stamp_ns>_<phase>.png``, uint16 mm). Every file is written atomically; the writer holds
an ``fcntl`` lock on ``.writer.lock`` while the episode is ``recording``, so a restart can tell
a live writer from a crashed one. Nothing written is ever deleted.
"""
from dataclasses import dataclass
import fcntl
import json
import os
import re
import socket
import time

from sam2real_ros import version
from sam2real_ros.common import io_utils

FORMAT = 'sam2real-episode'
FORMAT_VERSION = 1
STATES = ('recording', 'complete', 'interrupted')
PHASES = ('before', 'during', 'after')
_FRAME_RE = re.compile(r'^(\d+)_(before|during|after)\.png$')


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


def _frame_names(stamp_ns, phase):
    name = f'{int(stamp_ns)}_{phase}.png'
    return 'rgb/' + name, 'depth/' + name


class EpisodeWriter:
    """
    Write one episode; ``episode.json`` is rewritten at start, on phase changes and at close.

    Arguments:
    ---------
      root (str): dataset root (``<root>/episodes/<id>`` is created; the id gets a suffix
        when it already exists).
      start_ns (int): episode start time (ns since the epoch).
      meta (dict): extra fields for episode.json (trigger, camera, ...).

    """

    def __init__(self, root, start_ns, meta):
        base = new_episode_id(start_ns)
        os.makedirs(episodes_dir(root), exist_ok=True)
        for n in range(1000):
            self.episode_id = base if n == 0 else f'{base}_{n}'
            self.dir = os.path.join(episodes_dir(root), self.episode_id)
            try:
                os.makedirs(os.path.join(self.dir, 'rgb'))
                break
            except FileExistsError:
                continue
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
        self.bytes_written = 0
        self.write_json()

    def write_json(self):
        """Rewrite episode.json atomically with the frames written so far."""
        self.meta['counts'] = {p: sum(f['phase'] == p for f in self.meta['frames'])
                               for p in PHASES}
        self.meta['updated_ns'] = time.time_ns()
        io_utils.atomic_write_json(os.path.join(self.dir, 'episode.json'), self.meta)

    def add_frame(self, stamp_ns, phase, rgb, depth=None):
        """
        Write one frame (depth first, then RGB); returns the bytes written.

        Arguments:
        ---------
          rgb (np.ndarray): HxWx3 uint8 RGB. depth (np.ndarray | None): HxW uint16 mm.

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
            self.write_json()
        self.bytes_written += n
        return n

    def close(self, state='complete', **meta):
        """Write the final episode.json (after every frame) and release the writer lock."""
        if state not in STATES:
            raise ValueError(f'unknown episode state {state!r}')
        self.meta.update(meta)
        self.meta['state'] = state
        self.write_json()
        self._lock.close()


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


def list_episodes(root, complete_only=False):
    """
    Return the episodes below ``root`` sorted by id (dicts of :func:`load_episode`).

    Folders whose episode.json is unreadable are skipped (use :func:`load_episode` on one
    folder to see why); ``complete_only`` keeps state ``complete`` only.
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
        except EpisodeError:
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


def recover_interrupted(root):
    """
    Mark episodes left ``recording`` by a dead writer as ``interrupted``; returns their ids.

    The frame list is rebuilt from the files (frames written after the last episode.json
    update are kept); only half-written temporary files of the dead writer are removed.
    """
    recovered = []
    d = episodes_dir(root)
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        path = os.path.join(d, name)
        try:
            meta = load_episode(path)
        except EpisodeError:
            continue
        if meta['state'] != 'recording' or writer_alive(path):
            continue
        io_utils.remove_stale_temp_files(path)
        meta.pop('dir')
        meta['frames'] = scan_frames(path)
        meta['counts'] = {p: sum(f['phase'] == p for f in meta['frames']) for p in PHASES}
        meta['state'] = 'interrupted'
        meta['end_reason'] = 'writer_died'
        if meta['frames']:
            meta['end_ns'] = meta['end_ns'] or meta['frames'][-1]['stamp_ns']
        meta['recovered_ns'] = time.time_ns()
        io_utils.atomic_write_json(os.path.join(path, 'episode.json'), meta)
        recovered.append(name)
    return recovered


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


class EpisodeSink:
    """
    Apply grasp_episodes events (start / frame / end) to the store, with a disk quota.

    Arguments:
    ---------
      root (str): dataset root.
      max_disk_gb (float): stop recording once the root holds this much (0: no limit); the
        root is measured once at start, then counted as files are written.
      min_free_gb (float): stop recording once the file system has less free space (0: off).
      warn (callable): ``warn(str)`` for problems; each distinct cause is reported once.

    """

    def __init__(self, root, max_disk_gb=0.0, min_free_gb=0.0, warn=print):
        self.root = os.fspath(root)
        os.makedirs(episodes_dir(self.root), exist_ok=True)
        self.max_bytes = int(max_disk_gb * 1e9)
        self.min_free = int(min_free_gb * 1e9)
        self.used = dir_size_bytes(self.root) if self.max_bytes else 0
        self.warn = warn
        self.writer = None
        self.quota_reached = None  # reason string once reached
        self.stats = {'episodes_started': 0, 'episodes_complete': 0, 'frames_written': 0,
                      'bytes_written': 0, 'write_errors': 0, 'frames_skipped_quota': 0}
        self._warned = set()

    def _warn_once(self, cause, msg):
        if cause not in self._warned:
            self._warned.add(cause)
            self.warn(msg)

    def _check_quota(self):
        if self.quota_reached:
            return False
        reason = None
        if self.max_bytes and self.used >= self.max_bytes:
            reason = (f'dataset root {self.root} holds {self.used / 1e9:.6f} GB >= max_disk_gb '
                      f'{self.max_bytes / 1e9:g}')
        elif self.min_free:
            import shutil
            free = shutil.disk_usage(self.root).free
            if free < self.min_free:
                reason = (f'free space under {self.root} is {free / 1e9:.3f} GB < min_free_gb '
                          f'{self.min_free / 1e9:g}')
        if reason:
            self.quota_reached = reason
            self._warn_once('quota', f'disk quota reached, recording stopped: {reason}')
        return reason is None

    def handle(self, event, camera=None, extra=None):
        """Apply one event of the episode logic (``camera``: intrinsics)."""
        kind = type(event).__name__
        try:
            if kind == 'EpisodeStart':
                self._start(event, camera, extra or {})
            elif kind == 'FrameOut':
                self._frame(event)
            elif kind == 'EpisodeEnd':
                self._end(event, camera)
        except OSError as exc:
            self.stats['write_errors'] += 1
            self._warn_once(('oserror', kind, exc.errno), f'episode write failed ({kind}): {exc}')

    def _start(self, ev, camera, extra):
        if self.writer is not None:  # never happens with EpisodeLogic; keep the data anyway
            self.writer.close('complete', end_reason='superseded')
        if not self._check_quota():
            return
        meta = dict(extra, trigger=ev.trigger, camera=camera)
        self.writer = EpisodeWriter(self.root, ev.t_ns, meta)
        self.stats['episodes_started'] += 1

    def _frame(self, ev):
        if self.writer is None:
            if self.quota_reached:
                self.stats['frames_skipped_quota'] += 1
            return
        if not self._check_quota():
            self.stats['frames_skipped_quota'] += 1
            self.close('complete', end_reason='quota')
            return
        f = ev.frame
        n = self.writer.add_frame(f.stamp_ns, ev.phase, f.rgb, f.depth)
        self.used += n
        self.stats['frames_written'] += 1
        self.stats['bytes_written'] += n

    def _end(self, ev, camera):
        if self.writer is None:
            return
        meta = {'end_ns': ev.t_ns, 'outcome': ev.outcome, 'end_reason': ev.end_reason,
                'triggers': ev.triggers}
        if self.writer.meta.get('camera') is None and camera is not None:
            meta['camera'] = camera
        self.close('complete', **meta)

    def close(self, state='complete', **meta):
        """Close the open episode, if any."""
        if self.writer is not None:
            w, self.writer = self.writer, None
            w.meta.setdefault('outcome', None)
            w.close(state, **meta)
            self.stats['episodes_complete'] += state == 'complete'
