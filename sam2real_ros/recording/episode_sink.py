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
What reaches the disk: :class:`EpisodeSink` applies the grasp-episode events to the store.

The one owner of what reaches the disk, live (``grasp_recorder``) and offline
(``sam2real extract-episodes``) alike: an episode folder is created with its first stored
frame, so an episode that stored no frame is not written at all; frames an open episode loses
(quota, failed writes, a full queue) are counted in it, and ``end_reason`` says why it was cut
short. Stored frames are never deleted; only folders that hold no frame and the temporary files
of dead writers are. The layout is :mod:`sam2real_ros.recording.episode_store`'s.
"""
from collections import Counter
import os
import shutil
import time

from sam2real_ros.common import io_utils
from sam2real_ros.recording.episode_store import (
    dir_size_bytes, END_REASONS, EpisodeError, episodes_dir, EpisodeWriter, load_episode,
    LOSS_REASONS, new_episode_id, writer_alive)
from sam2real_ros.recording.grasp_episodes import (
    EpisodeEnd, EpisodeStart, EpisodeUpdate, FrameLost, FrameOut)

_REMEASURE_S = 30.0  # max_disk_gb: re-measure the dataset root this often (other writers)
_WARN_EVERY_S = 30.0  # a new run of failed writes is reported at most this often


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
        self.last_ns = start.t_ns  # the latest time the episode logic reported


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
        trigger, image topic and source bag) is kept when complete (``episodes_existing``) and
        replaced when half-written or when it lost frames (quota, failed writes:
        ``episodes_replaced``), so the same input gives the same episodes again.
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
        if isinstance(event, EpisodeStart):
            self._start(event, camera, extra or {})
        elif isinstance(event, FrameOut):
            self._frame(event)
        elif isinstance(event, FrameLost):
            self._lose(event.reason)
        elif isinstance(event, EpisodeUpdate):
            self._update(event)
        elif isinstance(event, EpisodeEnd):
            self._end(event, camera)
        elif isinstance(event, Tick):
            self.maintain()
        else:
            raise TypeError(f'not an episode event: {type(event).__name__}')
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
                and meta.get('image_topic') == ep.meta.get('image_topic')
                # another bag with the same stamps and goal ids is other data
                and meta.get('source_bag') == ep.meta.get('source_bag'))

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

    def _update(self, ev):
        ep = self.episode
        if ep is None or ep.skip:
            return
        ep.meta.update(outcome=ev.outcome, triggers=ev.triggers)
        ep.last_ns = max(ep.last_ns, ev.t_ns)
        self._remember(ep)

    def _remember(self, ep, **known):
        """Keep what the episode knows in its sidecar (docs/episode_store.md, "Sidecar")."""
        if ep.writer is None:
            return
        lost = {r: n for r, n in ep.lost.items() if n}
        if lost:
            known.update(frames_lost=sum(lost.values()), frames_lost_by_reason=lost,
                         end_reason=next(iter(lost)))
        if ep.error:
            known['write_error'] = ep.error
        size = ep.writer.size
        ep.writer.remember(last_ns=ep.last_ns, **known)
        self.used += ep.writer.size - size

    def _lose(self, reason, error=None):
        ep = self.episode
        if ep is None or ep.skip:
            return
        ep.lost[reason] += 1
        self.stats['frames_lost'] += 1
        self.stats[f'frames_lost_{reason}'] += 1
        if error and ep.error is None:
            ep.error = error
        self._remember(ep)

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
        ep.last_ns = max(ep.last_ns, f.t_ns)
        self._remember(ep)
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
        ep.writer.meta.update(meta)
        ep.writer.meta['state'] = 'complete'
        size = ep.writer.size
        ep.writer.remember(closed=True)  # so a failed final episode.json loses nothing
        self.used += ep.writer.size - size
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
            # counted once on disk (docs/grasp_recorder.md, "Diagnostics")
            self.stats['episodes_complete'] += 1
            self.stats['episodes_cut_short'] += bool(END_REASONS.get(w.meta['end_reason']))

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
        stay ``recording``; the next start's ``episode_recovery.recover_interrupted`` repairs
        them).
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
            w.release()
        self.closing = []
        return left
