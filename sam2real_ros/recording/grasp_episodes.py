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
Pure grasp-episode logic: triggers, a ring buffer and phases, driven by timestamps.

Shared by the live ``grasp_recorder`` node (messages as they arrive, the node clock) and by
``sam2real extract-episodes`` (messages in rosbag2 log time order), so that both cut the same
episodes out of the same stream: ``event_order.EventOrder`` hands both to :class:`EpisodeLogic`
in the order things happened (capture stamps, send times), which two subscribers to the same
topics agree on, not in the order they arrived, which they do not. Nothing here does I/O or
imports rclpy.

Rules (see docs/grasp_recorder.md):
  * One episode at a time. A trigger start while idle opens an episode; its "before" frames are
    the buffered frames of the last ``before_s`` seconds (at most ``before_max_frames``). Further
    starts while "during" join the episode; the episode goes to "after" when all active triggers
    have ended, and closes ``after_s`` later. A start during "after" closes that episode
    (``end_reason='next_grasp'``) and opens a new one. A frame goes to at most one episode.
  * ``max_during_s`` bounds a grasp whose end is never reported (outcome ``'timeout'``).
  * Action goals: a goal first seen in a status array published before the logic started (the
    latched TRANSIENT_LOCAL sample; ``before_start=True``) or whose stamp is older than the
    logic's start time (minus ``stale_tolerance_s``) is ignored for good, and so is a goal first
    seen already terminal (its "during" was missed: its frames would be mislabelled). A goal
    first seen active whose accept stamp is older than the start (within the tolerance) opens
    an episode marked ``joined_late`` (its trigger says so; its "before" frames may show the
    grasp).
  * A trigger still active when the input ends (:meth:`EpisodeLogic.finish`) ends with outcome
    ``'unknown'``, and so does its episode: trigger and episode outcomes always agree.
"""
from collections import Counter, deque
from dataclasses import dataclass, field, fields
import threading
from typing import Optional

import numpy as np

from sam2real_ros.common.conversions import image_to_depth_mm, stamp_to_ns
ACTIVE_STATUSES = (1, 2, 3)  # action_msgs/GoalStatus ACCEPTED, EXECUTING, CANCELING
TERMINAL_STATUSES = {4: 'succeeded', 5: 'canceled', 6: 'aborted'}
_NS = 1_000_000_000
_RATE_SLACK = 0.1  # a frame up to 10% early for the next rate slot still counts


@dataclass
class EpisodeConfig:
    """Timing of an episode; all durations in seconds, rates in Hz."""

    before_s: float = 2.0
    before_max_frames: int = 4
    during_rate_hz: float = 2.0
    max_during_s: float = 120.0
    after_s: float = 2.0
    after_rate_hz: float = 2.0
    dedup_threshold: float = 0.0
    stale_tolerance_s: float = 0.5
    reorder_s: float = 0.5

    @classmethod
    def names(cls):
        """Return the field names: grasp_recorder parameters, extract-episodes options."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values):
        """Build from a mapping that holds every field (node parameters, ``vars(args)``)."""
        return cls(**{name: values[name] for name in cls.names()})

    def validate(self):
        """Raise ValueError naming the first field with an invalid value."""
        checks = [('before_s', self.before_s >= 0),
                  ('before_max_frames', self.before_max_frames >= 0),
                  ('during_rate_hz', self.during_rate_hz > 0),
                  ('max_during_s', self.max_during_s > 0),
                  ('after_s', self.after_s >= 0), ('after_rate_hz', self.after_rate_hz > 0),
                  ('dedup_threshold', 0 <= self.dedup_threshold <= 255),
                  ('stale_tolerance_s', self.stale_tolerance_s >= 0),
                  ('reorder_s', self.reorder_s >= 0)]
        for name, ok in checks:
            if not ok:
                raise ValueError(f'invalid episode parameter {name}={getattr(self, name)!r}')
        return self


@dataclass
class Frame:
    """
    One camera frame. ``t_ns`` orders it, ``stamp_ns`` names the file and paces the phases.

    The rates (``during_rate_hz``, ``after_rate_hz`` and the ``before`` buffer's
    ``before_max_frames / before_s``) compare capture stamps, so frames that arrive late or in a
    burst on a loaded machine are kept as the camera took them; a caller
    without a header stamp passes the arrival time as ``stamp_ns`` (the fallback).

    Attributes
    ----------
      t_ns (int): arrival time (live node clock) or bag log time, nanoseconds;
        ``event_order.EventOrder.on_frame`` replaces it by the frame's event time.
      stamp_ns (int): header stamp of the image (arrival time when it has none), nanoseconds.
      rgb (np.ndarray): HxWx3 uint8 RGB (owned, not a view of a message buffer).
      depth (np.ndarray | None): HxW uint16 millimetres registered to ``rgb``.

    """

    t_ns: int
    stamp_ns: int
    rgb: np.ndarray
    depth: Optional[np.ndarray] = None
    thumb: Optional[np.ndarray] = field(default=None, repr=False)


@dataclass
class EpisodeStart:
    """An episode opens at ``t_ns``; ``trigger`` is ``{'source', 'goal_id'}``."""

    t_ns: int
    trigger: dict


class DepthPairing:
    """
    Pairs each RGB frame with the depth image nearest to it in stamp, live and from bags alike.

    Keeps the last ``keep`` depth images (:meth:`add`, in arrival order: a depth image that
    arrives after its RGB frame is not waited for) and returns, for an RGB stamp, the one whose
    stamp is nearest within ``max_dt_s`` (:meth:`match`). The ``grasp_recorder`` node and
    ``sam2real extract-episodes`` both pair with it, so a bag replay pairs as the robot did.

    Arguments:
    ---------
      max_dt_s (float): largest stamp difference of a pair (the ``depth_max_dt_s`` parameter).
      keep (int): depth images kept.

    """

    def __init__(self, max_dt_s=0.05, keep=8):
        self.max_dt_ns = int(round(float(max_dt_s) * 1e9))
        self._recent = deque(maxlen=keep)

    def add(self, stamp_ns, depth):
        """Keep a depth image (any payload: a message or an array) with its stamp."""
        self._recent.append((int(stamp_ns), depth))

    def match(self, stamp_ns):
        """Return the kept depth payload nearest to ``stamp_ns`` within the limit, or None."""
        best = None
        for stamp, depth in self._recent:
            dt = abs(stamp - stamp_ns)
            if dt <= self.max_dt_ns and (best is None or dt < best[0]):
                best = (dt, depth)
        return None if best is None else best[1]

    def match_mm(self, stamp_ns, shape):
        """
        Return the paired depth *message* as HxW uint16 millimetres, or None without a pair.

        Raises
        ------
          ValueError: the message does not decode as depth, or its size is not the RGB
          frame's ``shape`` (H, W).

        """
        msg = self.match(stamp_ns)
        if msg is None:
            return None
        depth = image_to_depth_mm(msg)
        if depth.shape != tuple(shape):
            raise ValueError(f'depth image {depth.shape[1]}x{depth.shape[0]} does not match the '
                             f'{shape[1]}x{shape[0]} RGB image')
        return depth


@dataclass
class FrameOut:
    """``frame`` belongs to the open episode; ``phase`` is one of ``episode_store.PHASES``."""

    frame: Frame
    phase: str


@dataclass
class FrameLost:
    """
    A frame the logic gave to the open episode was lost before it reached the store.

    Sent instead of a :class:`FrameOut` (without the image) by :class:`BackgroundWriter` when
    its queue is full, so the store can count the loss in the episode it belongs to.
    """

    stamp_ns: int
    phase: str
    reason: str


@dataclass
class EpisodeUpdate:
    """
    The open episode's triggers changed at ``t_ns``: one joined, ended or timed out.

    ``outcome`` is the episode's outcome were it to end now (None while a trigger runs);
    ``triggers`` as in :class:`EpisodeEnd`. The store keeps it, so a crash loses none of it.
    """

    t_ns: int
    outcome: Optional[str]
    triggers: list


@dataclass
class EpisodeEnd:
    """The open episode closes; ``triggers`` lists every trigger that took part."""

    t_ns: int
    outcome: str
    end_reason: str
    triggers: list


def thumbnail(rgb):
    """Return a 32x24 float32 grey thumbnail of an HxWx3 uint8 RGB image (for thinning)."""
    import cv2
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return cv2.resize(grey, (32, 24), interpolation=cv2.INTER_AREA)


def goal_id_hex(uuid):
    """Return a unique_identifier_msgs/UUID (16 bytes, any sequence of ints) as hex."""
    return bytes(bytearray(int(b) & 0xFF for b in uuid)).hex()


def status_tuples(msg):
    """
    ``(goal_id_hex, stamp_ns, status)`` per goal of an action_msgs/GoalStatusArray.

    Works for rclpy and rosbags messages alike (attribute access only).
    """
    return [(goal_id_hex(s.goal_info.goal_id.uuid), stamp_to_ns(s.goal_info.stamp), int(s.status))
            for s in msg.status_list]


class EpisodeLogic:
    """
    Decide which frames form which episode; every method returns a list of events.

    Arguments:
    ---------
      cfg (EpisodeConfig): timing.
      start_ns (int): when recording started, in the clock of the ``t_ns`` values (the node
        clock live, the first log time of a bag); goals stamped before it are stale.

    """

    def __init__(self, cfg, start_ns):
        self.cfg = cfg.validate()
        self.start_ns = int(start_ns)
        self.state = 'idle'
        self.active = {}
        self.triggers = []
        self.buffer = deque()
        self.counts = Counter()
        self.goals = {}  # (action, goal id) -> 'active' | 'done' | 'ignored'
        self.last_terminal_ignored = None  # (action, goal id, outcome) of the last such goal
        self._last_out = None  # last frame given to an episode
        self._last_phase_t = None
        self._phase_t0 = 0
        self._outcome = 'unknown'

    # ----------------------------------------------------------------- triggers
    def start(self, source, goal_id, t_ns, joined_late=False):
        """
        Start a trigger (``source`` e.g. ``'action:/grasp'`` or ``'service'``) at ``t_ns``.

        ``joined_late``: the trigger began before the logic started (recorder restart); its
        trigger dicts carry ``'joined_late': True``.
        """
        events = self.tick(t_ns)
        key = (source, goal_id)
        if key in self.active:
            return events
        trig = {'source': source, 'goal_id': goal_id, 'start_ns': int(t_ns), 'end_ns': None,
                'outcome': None}
        late = {'joined_late': True} if joined_late else {}
        trig.update(late)
        if self.state == 'after':
            events += self._end(t_ns, 'next_grasp')
        self.active[key] = trig
        self.triggers.append(trig)
        if self.state == 'during':
            self.counts['merged_triggers'] += 1
            return events + self._update(t_ns)
        events.append(EpisodeStart(int(t_ns), {'source': source, 'goal_id': goal_id, **late}))
        lo = t_ns - self.cfg.before_s * _NS
        last_t = self._last_out.t_ns if self._last_out is not None else -1
        before = [f for f in self.buffer if lo <= f.t_ns <= t_ns and f.t_ns > last_t]
        n = self.cfg.before_max_frames
        for f in (before[-n:] if n > 0 else []):
            events += self._emit(f, 'before')
        self.buffer.clear()
        self.state, self._phase_t0, self._last_phase_t = 'during', int(t_ns), None
        return events + self._update(t_ns)

    def stop(self, source, goal_id, t_ns, outcome='succeeded'):
        """End a trigger at ``t_ns``; returns ``[]`` when it was not active."""
        events = self.tick(t_ns)
        trig = self.active.pop((source, goal_id), None)
        if trig is None:
            return events
        trig['end_ns'], trig['outcome'] = int(t_ns), outcome
        self._outcome = outcome
        if not self.active and self.state == 'during':
            self.state, self._phase_t0, self._last_phase_t = 'after', int(t_ns), None
        return events + self._update(t_ns)

    def is_active(self, source, goal_id):
        """Return True while the trigger ``(source, goal_id)`` is active."""
        return (source, goal_id) in self.active

    def on_goal_statuses(self, action, statuses, t_ns, before_start=False):
        """
        Feed one action_msgs/GoalStatusArray of ``action`` received at ``t_ns``.

        Arguments:
        ---------
          statuses (iterable): ``(goal_id_hex, goal_stamp_ns, status_int)`` for every goal in
            the array (the server lists all goals it still retains).
          before_start (bool): the array was published before the logic started (the latched
            sample a TRANSIENT_LOCAL subscription receives first): every goal first seen in it
            was accepted before recording started and is stale, whatever its stamp.

        Returns
        -------
          list: the events this update caused (may be empty).

        """
        source = f'action:{action}'
        events = []
        present = set()
        for gid, stamp_ns, status in sorted(statuses, key=lambda s: (s[1], s[0])):
            key = (action, gid)
            present.add(key)
            seen = self.goals.get(key)
            if seen is None:
                if status not in ACTIVE_STATUSES and status not in TERMINAL_STATUSES:
                    continue  # UNKNOWN: decide on the next message
                if before_start or stamp_ns < self.start_ns - self.cfg.stale_tolerance_s * _NS:
                    self.goals[key] = 'ignored'
                    self.counts['stale_goals_ignored'] += 1
                    continue
                if status in TERMINAL_STATUSES:  # its whole "during" was missed
                    self.goals[key] = 'ignored'
                    self.counts['terminal_goals_ignored'] += 1
                    self.last_terminal_ignored = (action, gid, TERMINAL_STATUSES[status])
                    continue
                late = stamp_ns < self.start_ns
                if late:
                    self.counts['goals_joined_late'] += 1
                self.goals[key] = 'active'
                events += self.start(source, gid, t_ns, joined_late=late)
                seen = 'active'
            if seen == 'active' and status in TERMINAL_STATUSES:
                self.goals[key] = 'done'
                events += self.stop(source, gid, t_ns, TERMINAL_STATUSES[status])
        for key in [k for k in self.goals if k[0] == action and k not in present]:
            if self.goals.pop(key) == 'active':  # the server forgot it (restart): ended, unknown
                events += self.stop(source, key[1], t_ns, 'lost')
        return events

    # ----------------------------------------------------------------- frames and time
    def on_frame(self, frame):
        """Offer a frame; returns the events (its :class:`FrameOut` when it is kept)."""
        t = frame.t_ns
        events = self.tick(t)
        if self._last_out is not None and frame.stamp_ns <= self._last_out.stamp_ns:
            self.counts['non_increasing_stamp'] += 1
            return events
        if self.state in ('during', 'after'):
            rate = self.cfg.during_rate_hz if self.state == 'during' else self.cfg.after_rate_hz
            # the rate follows capture stamps: frames delivered in a burst are not thinned
            if self._due(frame.stamp_ns, self._last_phase_t, rate) and \
                    not self._duplicate(frame, self._last_out):
                self._last_phase_t = frame.stamp_ns
                return events + self._emit(frame, self.state)
        self._buffer(frame)  # frames no episode took may be "before" of the next one
        return events

    def tick(self, t_ns):
        """Advance time to ``t_ns`` without a frame (ends timed-out phases)."""
        events = []
        if self.state == 'during' and t_ns - self._phase_t0 > self.cfg.max_during_s * _NS:
            for trig in self.active.values():
                trig['end_ns'], trig['outcome'] = int(t_ns), 'timeout'
            for key, seen in self.goals.items():
                if seen == 'active':
                    self.goals[key] = 'done'  # its late terminal status changes nothing
            self.active.clear()
            self._outcome = 'timeout'
            self.state, self._phase_t0, self._last_phase_t = 'after', int(t_ns), None
            events = self._update(t_ns)
        if self.state == 'after' and t_ns - self._phase_t0 > self.cfg.after_s * _NS:
            return events + self._end(self._phase_t0 + int(self.cfg.after_s * _NS),
                                      'after_elapsed')
        return events

    def finish(self, t_ns, reason='end_of_input'):
        """Close an open episode at the end of the input (or at shutdown)."""
        if self.state == 'idle':
            return []
        for trig in self.active.values():
            trig['end_ns'], trig['outcome'] = int(t_ns), 'unknown'
        if self.active:
            self._outcome = 'unknown'  # a grasp still running: its outcome is not known
        for key, seen in self.goals.items():
            if seen == 'active':
                self.goals[key] = 'done'
        self.active.clear()
        return self._end(t_ns, reason)

    # ----------------------------------------------------------------- internals
    def _update(self, t_ns):
        return [EpisodeUpdate(int(t_ns), None if self.active else self._outcome,
                              [dict(t) for t in self.triggers])]

    def _end(self, t_ns, reason):
        outcome = self._outcome if not self.active else 'unknown'
        ev = EpisodeEnd(int(t_ns), outcome, reason, [dict(t) for t in self.triggers])
        self.state, self.triggers, self._outcome = 'idle', [], 'unknown'
        self.active.clear()
        return [ev]

    def _emit(self, frame, phase):
        if self._last_out is not None and frame.stamp_ns <= self._last_out.stamp_ns:
            self.counts['non_increasing_stamp'] += 1
            return []
        self._last_out = frame
        self.buffer.clear()  # older frames can never be "before" of a later episode
        self.counts[f'frames_{phase}'] += 1
        return [FrameOut(frame, phase)]

    @staticmethod
    def _due(t, last_t, rate):
        return last_t is None or t - last_t >= (1.0 - _RATE_SLACK) * _NS / rate

    def _duplicate(self, frame, ref, counter='dedup_skipped'):
        """Tell whether ``frame`` looks like ``ref`` (mean abs grey difference below threshold)."""
        if self.cfg.dedup_threshold <= 0 or ref is None:
            return False
        if frame.thumb is None:
            frame.thumb = thumbnail(frame.rgb)
        if ref.thumb is None:
            ref.thumb = thumbnail(ref.rgb)
        if float(np.abs(frame.thumb - ref.thumb).mean()) < self.cfg.dedup_threshold:
            self.counts[counter] += 1
            return True
        return False

    def _buffer(self, frame):
        cfg = self.cfg
        if cfg.before_max_frames <= 0:
            return
        lo = frame.t_ns - cfg.before_s * _NS
        while self.buffer and self.buffer[0].t_ns < lo:
            self.buffer.popleft()
        last = self.buffer[-1] if self.buffer else None
        # the rate follows capture stamps, as in the phases: a late frame shifts nothing (#21)
        if last is not None and not self._due(frame.stamp_ns, last.stamp_ns,
                                              cfg.before_max_frames / max(cfg.before_s, 1e-9)):
            return
        if self._duplicate(frame, last, 'dedup_skipped_buffer'):
            return
        self.buffer.append(frame)
        while len(self.buffer) > cfg.before_max_frames:
            self.buffer.popleft()


class BackgroundWriter:
    """
    Run ``handle(event, **kw)`` (e.g. ``EpisodeSink.handle``) on a thread behind a queue.

    A frame event beyond ``max_frames`` queued frames is not queued: a :class:`FrameLost`
    marker (no image) takes its place, so the store counts the loss in its episode and the
    caller never blocks on disk; other events are never dropped, so episodes stay whole.
    ``error`` holds the last exception ``handle`` raised and is cleared by the next event it
    handles without one.
    """

    def __init__(self, handle, max_frames=32):
        self._handle = handle
        self.max_frames = int(max_frames)
        self._q = deque()
        self._frames = 0
        self._cv = threading.Condition()
        self._stop = False
        self.dropped = 0
        self.error = None
        self._thread = threading.Thread(target=self._run, name='episode-writer', daemon=True)
        self._thread.start()

    def submit(self, event, **kw):
        """Queue one event; returns False when a frame event was replaced by a loss marker."""
        with self._cv:
            is_frame = isinstance(event, FrameOut)
            if is_frame and self._frames >= self.max_frames:
                self.dropped += 1
                self._q.append((FrameLost(event.frame.stamp_ns, event.phase, 'queue_full'), {}))
                self._cv.notify()
                return False
            self._frames += is_frame
            self._q.append((event, kw))
            self._cv.notify()
        return True

    def pending(self):
        """Return the number of queued events."""
        with self._cv:
            return len(self._q)

    def _run(self):
        while True:
            with self._cv:
                while not self._q and not self._stop:
                    self._cv.wait()
                if not self._q:
                    return
                event, kw = self._q.popleft()
                self._frames -= isinstance(event, FrameOut)
            try:
                self._handle(event, **kw)
                self.error = None
            except Exception as exc:  # keep writing later episodes; the node reports it
                self.error = f'{type(exc).__name__}: {exc}'

    def close(self, timeout=30.0):
        """Write everything queued, then stop the thread."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout)
