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
Repair what dead episode writers left: :func:`recover_interrupted` (docs/episode_store.md).

Run by ``grasp_recorder`` at start-up and by ``sam2real extract-episodes`` before it writes,
while they hold the dataset root's lock. The layout and the sidecar are
:mod:`sam2real_ros.recording.episode_store`'s.
"""
import contextlib
from dataclasses import dataclass, field
import json
import os
import shutil
import time

from sam2real_ros.common import io_utils
from sam2real_ros.recording.episode_store import (
    episode_id_to_ns, EpisodeError, episodes_dir, FORMAT, FORMAT_VERSION, load_episode, PHASES,
    read_sidecar, scan_frames, SIDECAR_FIELDS, SIDECAR_NAMES, writer_alive)


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
      finished (list): ids of episodes their writer had closed (its sidecar says so) but whose
        final episode.json it could not write (full disk), now ``complete`` as it closed them.
      failed (list): ``(id, reason)`` of episodes whose repair could not be written (full
        disk); they stay ``recording`` until the next start.

    """

    interrupted: list = field(default_factory=list)
    rebuilt: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    temp_files: int = 0
    finished: list = field(default_factory=list)
    failed: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.interrupted or self.removed or self.unreadable or self.finished
                    or self.failed)

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
        if self.finished:
            parts.append(f'completed {len(self.finished)} episode(s) closed by a writer that '
                         f'could not write their final episode.json: {", ".join(self.finished)}')
        if self.failed:
            parts.append(f'could not repair {len(self.failed)} episode(s) (they stay recording '
                         'until the next start): '
                         + '; '.join(f'{i}: {r}' for i, r in self.failed))
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
                    or (episode_id_to_ns(name) is not None and not os.listdir(path))):
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
        side = read_sidecar(path)
        _restore(meta, side, frames)
        try:
            io_utils.atomic_write_json(os.path.join(path, 'episode.json'), meta)
        except OSError as exc:
            rep.failed.append((name, f'[Errno {exc.errno}] {exc.strerror}'))
            continue
        for side_name in SIDECAR_NAMES:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(path, side_name))
        (rep.finished if side.get('closed') else rep.interrupted).append(name)
    return rep


def _restore(meta, side, frames):
    """Finish a dead writer's episode with its frames on disk and its sidecar (in place)."""
    meta.update((k, side[k]) for k in SIDECAR_FIELDS if k in side and k not in (
        'last_ns', 'closed'))
    meta['frames'] = frames
    meta['counts'] = {p: sum(f['phase'] == p for f in frames) for p in PHASES}
    if meta.get('start_ns') is None:
        meta['start_ns'] = frames[0]['stamp_ns']
    start = meta['start_ns']
    if side.get('closed'):  # closed by its writer, which could not write episode.json
        meta['state'] = 'complete'
    else:
        meta['state'], meta['end_reason'] = 'interrupted', 'writer_died'
        known = (meta.get('end_ns'), side.get('last_ns'), frames[-1]['stamp_ns'], start)
        meta['end_ns'] = max(v for v in known if v is not None)
        for trig in meta.get('triggers') or []:
            if trig.get('end_ns') is None:  # still running when the writer died
                trig['end_ns'], trig['outcome'] = meta['end_ns'], 'unknown'
        if meta.get('outcome') is None:
            meta['outcome'] = 'unknown'
    meta['end_ns'] = max(meta.get('end_ns') or start, start)
    meta['recovered_ns'] = time.time_ns()
