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
The order in which a grasp recorder's messages reach the episode logic: when things happened.

Used by the live ``grasp_recorder`` node and by ``sam2real extract-episodes`` alike (see
``grasp_episodes`` and docs/grasp_recorder.md, "Time and order"). Nothing here does I/O.
"""
import heapq

_NS = 1_000_000_000


class EventOrder:
    """
    Feed a ``grasp_episodes.EpisodeLogic`` in the order things happened, not of arrival.

    Frames and goal statuses come on separate topics, so a status can arrive before a frame
    captured earlier, or after a later one, and a live recorder and a bag recorder see different
    interleavings (#21: a frame stamped 50 ms before a grasp was accepted went to "during" live
    and to "before" from the bag). Each message gets an event time: a frame its capture stamp, a
    status array the time it was sent (the DDS source timestamp live, the log time in a bag), a
    service call its arrival. It is held until ``cfg.reorder_s`` of arrival time have passed
    beyond its event time, and held messages reach the logic sorted by event time, which becomes
    their ``t_ns``. An event time more than ``reorder_s`` away from the arrival is not trusted
    (another clock: sim time, a camera without synchronised stamps; a message later than that):
    the arrival time stands in. So no event time lies more than the hold before its arrival,
    and the logic gets every message in event-time order while the arrival clock runs forward;
    when it goes back (sim time restarted), everything held is released first. One topic keeps
    its publisher's order: an event time is never earlier than that of the topic's previous
    message (a status array taken at its late arrival, and the next one by its send time, went
    to the logic the wrong way round: a goal first seen SUCCEEDED, #21).
    ``reorder_s=0`` is arrival order.

    Every method returns the logic's events, as the ``EpisodeLogic`` methods do.
    """

    def __init__(self, logic):
        self.logic = logic
        self.hold_ns = int(round(logic.cfg.reorder_s * _NS))
        self._held = []  # heap of (event time, sequence, call(t_ns), service (key, active))
        self._seq = 0
        self._released_ns = None  # the latest event time handed to the logic
        self._topic_ns = {}  # the latest event time of each topic (frames, an action's status)

    def event_ns(self, own_ns, arrival_ns):
        """Return ``own_ns`` (a stamp, a send time) when it is within the hold of the arrival."""
        if own_ns and abs(int(own_ns) - int(arrival_ns)) <= self.hold_ns:
            return int(own_ns)
        return int(arrival_ns)

    def on_frame(self, frame):
        """Offer a frame whose ``t_ns`` is its arrival time (set to its event time here)."""
        arrival = frame.t_ns
        events = self._clock_check(arrival)
        frame.t_ns = self._in_topic_order('frames', self.event_ns(frame.stamp_ns, arrival))
        return events + self._add(frame.t_ns, arrival, lambda t: self.logic.on_frame(frame))

    def on_goal_statuses(self, action, statuses, arrival_ns, sent_ns=None, before_start=False):
        """Feed a status array received at ``arrival_ns`` and sent at ``sent_ns`` (if known)."""
        statuses = list(statuses)
        events = self._clock_check(arrival_ns)
        t_ns = self._in_topic_order(('status', action), self.event_ns(sent_ns, arrival_ns))
        return events + self._add(t_ns, arrival_ns,
                                  lambda t: self.logic.on_goal_statuses(
                                      action, statuses, t, before_start=before_start))

    def start(self, source, goal_id, arrival_ns):
        """Start a trigger (a service call) at its arrival."""
        return self._clock_check(arrival_ns) + self._add(
            int(arrival_ns), arrival_ns, lambda t: self.logic.start(source, goal_id, t),
            ((source, goal_id), True))

    def stop(self, source, goal_id, arrival_ns, outcome='succeeded'):
        """End a trigger (a service call) at its arrival."""
        return self._clock_check(arrival_ns) + self._add(
            int(arrival_ns), arrival_ns, lambda t: self.logic.stop(source, goal_id, t, outcome),
            ((source, goal_id), False))

    def is_active(self, source, goal_id):
        """Tell whether the trigger is active once the held start/stop calls are applied."""
        held = [(seq, service[1]) for _, seq, _, service in self._held
                if service is not None and service[0] == (source, goal_id)]
        return max(held)[1] if held else self.logic.is_active(source, goal_id)

    def tick(self, now_ns):
        """Release what is due at ``now_ns`` (arrival clock); the logic's time is the hold ago."""
        return self._release(now_ns - self.hold_ns) + self.logic.tick(now_ns - self.hold_ns)

    def finish(self, now_ns, reason='end_of_input', drop_held=False):
        """
        Release everything held (``drop_held``: drop it, input cut short), close an open episode.

        ``drop_held`` is for an input that stops early (``extract-episodes`` at its disk quota):
        the held messages are what comes after the stop, as the messages not yet read are.
        """
        if drop_held:
            self._held.clear()
        events = self._release(None)
        return events + self.logic.finish(max(int(now_ns), self._released_ns or now_ns), reason)

    def _clock_check(self, arrival_ns):
        """Release everything held when the arrival clock went back (sim time restarted)."""
        if self._released_ns is None or arrival_ns >= self._released_ns:
            return []
        events = self._release(None)
        self._released_ns, self._topic_ns = None, {}
        return events

    def _in_topic_order(self, topic, t_ns):
        """Return ``t_ns``, or the topic's previous event time when that is later."""
        t_ns = max(t_ns, self._topic_ns.get(topic, t_ns))
        self._topic_ns[topic] = t_ns
        return t_ns

    def _add(self, t_ns, arrival_ns, call, service=None):
        heapq.heappush(self._held, (t_ns, self._seq, call, service))
        self._seq += 1
        return self._release(arrival_ns - self.hold_ns)

    def _release(self, upto_ns):
        events = []
        while self._held and (upto_ns is None or self._held[0][0] <= upto_ns):
            t_ns, _, call, _ = heapq.heappop(self._held)
            self._released_ns = max(t_ns, self._released_ns or t_ns)
            events += call(t_ns)
        return events
