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

"""Unit tests of the pure episode logic with synthetic timestamps."""
import numpy as np
import pytest

from sam2real_ros.recording.event_order import EventOrder
from sam2real_ros.recording.grasp_episodes import (DepthPairing, EpisodeConfig, EpisodeEnd,
                                                   EpisodeLogic, EpisodeStart, Frame, FrameOut)

S = 1_000_000_000
T0 = 1000 * S


def frame(t_s, value=None):
    t = T0 + int(round(t_s * S))
    rgb = np.full((24, 32, 3), int(t_s * 10) % 256 if value is None else value, np.uint8)
    return Frame(t, t, rgb)


def run(logic, script):
    """Feed ('frame', t) / ('start'|'stop', key, t[, outcome]) items; return all events."""
    events = []
    for item in script:
        if item[0] == 'frame':
            events += logic.on_frame(frame(item[1], *item[2:]))
        elif item[0] == 'start':
            events += logic.start('service', item[1], T0 + int(item[2] * S))
        elif item[0] == 'stop':
            events += logic.stop('service', item[1], T0 + int(item[2] * S), *item[3:])
        elif item[0] == 'status':
            events += logic.on_goal_statuses('/grasp', item[2], T0 + int(item[1] * S))
    return events


def frames_at(step, t_from, t_to):
    n = int(round((t_to - t_from) / step))
    return [('frame', round(t_from + i * step, 6)) for i in range(n)]


def episodes(events):
    out, cur = [], None
    for ev in events:
        if isinstance(ev, EpisodeStart):
            cur = {'start': ev, 'frames': []}
        elif isinstance(ev, FrameOut):
            cur['frames'].append((ev.phase, (ev.frame.stamp_ns - T0) / S))
        elif isinstance(ev, EpisodeEnd):
            cur['end'] = ev
            out.append(cur)
            cur = None
    return out


def test_phases_rates_and_end():
    cfg = EpisodeConfig(before_s=1.0, before_max_frames=3, during_rate_hz=2.0, after_s=1.0,
                        after_rate_hz=4.0)
    logic = EpisodeLogic(cfg, T0)
    script = frames_at(0.1, 0.0, 3.0) + [('start', 'a', 3.0)] + frames_at(0.1, 3.0, 5.0)
    script += [('stop', 'a', 5.0, 'succeeded')] + frames_at(0.1, 5.0, 7.0)
    eps = episodes(run(logic, script))
    assert len(eps) == 1
    ph = eps[0]['frames']
    before = [t for p, t in ph if p == 'before']
    during = [t for p, t in ph if p == 'during']
    after = [t for p, t in ph if p == 'after']
    # ring buffer thinned to 3 frames / 1 s (one per 0.3 s on a 0.1 s grid), last 3 kept
    assert before == pytest.approx([2.1, 2.4, 2.7])
    assert during == pytest.approx([3.0, 3.5, 4.0, 4.5])  # 2 Hz from the start
    assert after == pytest.approx([5.0, 5.3, 5.6, 5.9])  # 4 Hz on a 0.1 s grid, for 1 s
    stamps = [t for _, t in ph]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert eps[0]['end'].outcome == 'succeeded' and eps[0]['end'].end_reason == 'after_elapsed'
    assert logic.state == 'idle'


def test_overlapping_triggers_merge_and_end_when_all_ended():
    logic = EpisodeLogic(EpisodeConfig(before_s=0.5, after_s=0.5), T0)
    script = [('start', 'a', 1.0)] + frames_at(0.1, 1.0, 2.0) + [('start', 'b', 2.0)]
    script += frames_at(0.1, 2.0, 3.0) + [('stop', 'a', 3.0, 'aborted')]
    script += frames_at(0.1, 3.0, 4.0) + [('stop', 'b', 4.0, 'succeeded')]
    script += frames_at(0.1, 4.0, 5.0)
    events = run(logic, script)
    eps = episodes(events)
    assert len(eps) == 1
    phases = [p for p, _ in eps[0]['frames']]
    assert phases == sorted(phases, key=['before', 'during', 'after'].index)
    assert max(t for p, t in eps[0]['frames'] if p == 'during') >= 3.5  # b kept it going
    assert min(t for p, t in eps[0]['frames'] if p == 'after') >= 4.0
    assert [t['outcome'] for t in eps[0]['end'].triggers] == ['aborted', 'succeeded']
    assert eps[0]['end'].outcome == 'succeeded'
    assert logic.counts['merged_triggers'] == 1


def test_start_during_after_phase_opens_new_episode_without_sharing_frames():
    logic = EpisodeLogic(EpisodeConfig(before_s=2.0, before_max_frames=10, after_s=3.0), T0)
    script = frames_at(0.1, 0.0, 1.0) + [('start', 'a', 1.0)] + frames_at(0.1, 1.0, 2.0)
    script += [('stop', 'a', 2.0)] + frames_at(0.1, 2.0, 3.0) + [('start', 'b', 3.0)]
    script += frames_at(0.1, 3.0, 4.0) + [('stop', 'b', 4.0)] + frames_at(0.1, 4.0, 8.0)
    eps = episodes(run(logic, script))
    assert len(eps) == 2
    assert eps[0]['end'].end_reason == 'next_grasp'
    first = {t for _, t in eps[0]['frames']}
    second = {t for _, t in eps[1]['frames']}
    assert not first & second
    assert min(second) > max(first)


def test_thinning_skips_near_duplicates():
    cfg = EpisodeConfig(before_s=1.0, during_rate_hz=10.0, after_s=0.0, dedup_threshold=2.0)
    logic = EpisodeLogic(cfg, T0)
    script = [('start', 'a', 0.0)]
    script += [('frame', 0.1 * i, 100) for i in range(10)]  # robot still: identical frames
    script += [('frame', 1.0 + 0.1 * i, 100 + 10 * (i + 1)) for i in range(5)]  # moving
    script += [('stop', 'a', 1.5), ('frame', 1.6, 0), ('frame', 1.7, 0)]
    eps = episodes(run(logic, script))
    during = [t for p, t in eps[0]['frames'] if p == 'during']
    assert during[0] == pytest.approx(0.0) and len(during) == 1 + 5
    assert logic.counts['dedup_skipped'] == 9
    eps_off = episodes(run(EpisodeLogic(EpisodeConfig(before_s=1.0, during_rate_hz=10.0,
                                                      after_s=0.0), T0), script))
    assert len([1 for p, _ in eps_off[0]['frames'] if p == 'during']) == 15


def test_stale_and_late_goal_statuses():
    logic = EpisodeLogic(EpisodeConfig(before_s=0.0, after_s=0.5), T0 + 10 * S)
    old, new = 'aa' * 16, 'bb' * 16
    # latched at start-up: an old terminal goal and an old goal still executing
    script = [('status', 10.1, [(old, T0 + 5 * S, 4), ('cc' * 16, T0 + 6 * S, 2)])]
    script += frames_at(0.1, 10.1, 11.0)
    script += [('status', 11.0, [(old, T0 + 5 * S, 4), ('cc' * 16, T0 + 6 * S, 4)])]
    script += frames_at(0.1, 11.0, 12.0)
    assert episodes(run(logic, script)) == []
    assert logic.counts['stale_goals_ignored'] == 2
    script = [('status', 12.0, [(new, T0 + 12 * S, 2)])] + frames_at(0.1, 12.0, 13.0)
    script += [('status', 13.0, [(new, T0 + 12 * S, 6)])] + frames_at(0.1, 13.0, 14.0)
    script += [('status', 14.0, [(new, T0 + 12 * S, 6)])]  # repeated terminal: no effect
    eps = episodes(run(logic, script))
    assert len(eps) == 1 and eps[0]['end'].outcome == 'aborted'
    assert eps[0]['start'].trigger == {'source': 'action:/grasp', 'goal_id': new}


def test_never_ending_grasp_times_out_and_finish_closes():
    logic = EpisodeLogic(EpisodeConfig(max_during_s=1.0, after_s=0.2), T0)
    eps = episodes(run(logic, [('start', 'a', 0.0)] + frames_at(0.1, 0.0, 2.0)))
    assert len(eps) == 1 and eps[0]['end'].outcome == 'timeout'
    assert run(logic, [('stop', 'a', 2.5)]) == []  # its late end changes nothing
    events = run(logic, [('start', 'b', 3.0), ('frame', 3.1)])
    events += logic.finish(T0 + 4 * S)
    eps = episodes(events)
    assert eps[0]['end'].end_reason == 'end_of_input' and eps[0]['end'].outcome == 'unknown'


def test_non_increasing_stamps_are_skipped():
    logic = EpisodeLogic(EpisodeConfig(during_rate_hz=100.0), T0)
    events = logic.start('service', 'service', T0)
    for t_s, stamp_s in [(0.1, 0.1), (0.2, 0.05), (0.3, 0.1), (0.4, 0.4)]:
        f = frame(t_s)
        f.stamp_ns = T0 + int(stamp_s * S)
        events += logic.on_frame(f)
    stamps = [ev.frame.stamp_ns for ev in events if isinstance(ev, FrameOut)]
    assert stamps == [T0 + S // 10, T0 + 4 * S // 10]
    assert logic.counts['non_increasing_stamp'] == 2


def test_invalid_config_names_field():
    with pytest.raises(ValueError, match='during_rate_hz'):
        EpisodeLogic(EpisodeConfig(during_rate_hz=0.0), T0)


def test_goal_in_a_status_published_before_start_is_stale_whatever_its_stamp():
    # A restart 0.2 s after a goal was accepted: its stamp is within stale_tolerance_s of the
    # start, but the latched status that shows it was published before the start.
    logic = EpisodeLogic(EpisodeConfig(before_s=0.5, after_s=0.5), T0 + 10 * S)
    running = 'dd' * 16
    assert logic.on_goal_statuses('/grasp', [(running, T0 + 9_800_000_000, 2)], T0 + 10 * S,
                                  before_start=True) == []
    events = run(logic, frames_at(0.1, 10.0, 11.0) + [
        ('status', 11.0, [(running, T0 + 9_800_000_000, 4)])] + frames_at(0.1, 11.0, 12.0))
    assert episodes(events) == [] and logic.counts['stale_goals_ignored'] == 1
    # without the publication time, the stamp rule alone would have taken it for a new grasp
    logic = EpisodeLogic(EpisodeConfig(before_s=0.5, after_s=0.5), T0 + 10 * S)
    assert logic.on_goal_statuses('/grasp', [(running, T0 + 9_800_000_000, 2)], T0 + 10 * S)


def test_grasp_running_at_end_of_input_has_agreeing_outcomes():
    logic = EpisodeLogic(EpisodeConfig(after_s=0.5), T0)
    events = run(logic, [('start', 'a', 0.0), ('start', 'b', 0.2), ('stop', 'a', 0.5)]
                 + frames_at(0.1, 0.0, 1.0))
    events += logic.finish(T0 + 2 * S)
    (ep,) = episodes(events)
    outcomes = {t['goal_id']: t['outcome'] for t in ep['end'].triggers}
    assert outcomes == {'a': 'succeeded', 'b': 'unknown'}
    assert ep['end'].outcome == 'unknown' and ep['end'].end_reason == 'end_of_input'
    assert all(t['end_ns'] for t in ep['end'].triggers)


def test_goal_first_seen_terminal_never_opens_an_episode():
    """A fast restart hears only the SUCCEEDED status of a running grasp (#22 item 1)."""
    logic = EpisodeLogic(EpisodeConfig(before_s=1.0, after_s=0.5), T0 + 10 * S)
    gid = 'ee' * 16
    events = run(logic, frames_at(0.1, 10.0, 13.0) + [
        ('status', 13.0, [(gid, T0 + 9_700_000_000, 4)])] + frames_at(0.1, 13.0, 15.0))
    assert episodes(events) == []
    assert logic.counts['terminal_goals_ignored'] == 1 and logic.state == 'idle'
    # also when it is stamped after the start: without its active statuses it is not a grasp
    events = run(logic, [('status', 15.0, [(gid, T0 + 9_700_000_000, 4),
                                           ('ff' * 16, T0 + 14 * S, 6)])])
    events += run(logic, frames_at(0.1, 15.0, 16.0))
    assert episodes(events) == [] and logic.counts['terminal_goals_ignored'] == 2


def test_goal_accepted_before_the_start_but_first_seen_active_joins_late():
    logic = EpisodeLogic(EpisodeConfig(before_s=1.0, after_s=0.5), T0 + 10 * S)
    late, fresh = 'a1' * 16, 'b2' * 16
    script = frames_at(0.1, 10.0, 11.0) + [('status', 11.0, [(late, T0 + 9_800_000_000, 2)])]
    script += frames_at(0.1, 11.0, 12.0) + [('status', 12.0, [(late, T0 + 9_800_000_000, 4)])]
    script += frames_at(0.1, 12.0, 13.0) + [('status', 13.0, [(fresh, T0 + 13 * S, 2)])]
    script += frames_at(0.1, 13.0, 14.0) + [('status', 14.0, [(fresh, T0 + 13 * S, 4)])]
    script += frames_at(0.1, 14.0, 15.0)
    first, second = episodes(run(logic, script))
    assert first['start'].trigger == {'source': 'action:/grasp', 'goal_id': late,
                                      'joined_late': True}
    assert first['end'].triggers[0]['joined_late'] is True
    assert first['end'].outcome == 'succeeded'
    assert second['start'].trigger == {'source': 'action:/grasp', 'goal_id': fresh}
    assert 'joined_late' not in second['end'].triggers[0]
    assert logic.counts['goals_joined_late'] == 1


def test_phase_rate_follows_capture_stamps_not_a_burst_arrival():
    """
    Frames captured at 4 Hz but delivered in a burst (a loaded machine) are all kept (#21).

    The phase rate limit compares the camera's capture stamps; with arrival times the burst
    (1 ms apart) was thinned to one frame.
    """
    cfg = EpisodeConfig(before_s=1.0, before_max_frames=0, during_rate_hz=4.0, after_s=0.5,
                        after_rate_hz=4.0, dedup_threshold=0.0)
    logic = EpisodeLogic(cfg, T0)
    events = logic.start('service', 'a', T0 + S)
    for i in range(4):  # captured 0.25 s apart, all arriving within 4 ms
        stamp = T0 + S + i * S // 4
        arrival = T0 + 2 * S + i * 1_000_000
        events += logic.on_frame(Frame(arrival, stamp, np.full((24, 32, 3), 10 * i, np.uint8)))
    events += logic.stop('service', 'a', T0 + 2 * S + 5_000_000)
    events += logic.finish(T0 + 3 * S)
    kept = [(ev.phase, ev.frame.stamp_ns) for ev in events if isinstance(ev, FrameOut)]
    assert kept == [('during', T0 + S + i * S // 4) for i in range(4)]


def test_before_buffer_rate_follows_capture_stamps_not_a_late_arrival():
    """
    One frame delivered 80 ms late does not shift the ``before`` frames (#21).

    The buffer's rate (before_max_frames / before_s: 2 Hz here) compared arrival times: the
    late first frame made the next kept frames 0.6, 1.1, 1.6 s instead of the camera's 0.5, 1.0,
    1.5, 2.0 s (test_live_vs_bag.py saw it: live and bag episodes differed under load).
    """
    cfg = EpisodeConfig(before_s=2.0, before_max_frames=4, during_rate_hz=2.0, after_s=0.5,
                        after_rate_hz=2.0, dedup_threshold=0.0)
    logic = EpisodeLogic(cfg, T0)
    events = []
    for i in range(21):  # 10 Hz, 0.0 .. 2.0 s; the first one arrives 80 ms late
        stamp = T0 + i * S // 10
        arrival = stamp + (80_000_000 if i == 0 else 0)
        events += logic.on_frame(Frame(arrival, stamp, np.full((24, 32, 3), 10 * i, np.uint8)))
    events += logic.start('service', 'a', T0 + 2 * S + 50_000_000)
    before = [ev.frame.stamp_ns for ev in events
              if isinstance(ev, FrameOut) and ev.phase == 'before']
    assert before == [T0 + k * S // 2 for k in (1, 2, 3, 4)]


def test_depth_pairing_takes_the_nearest_stamp_within_the_limit():
    ms = 1_000_000
    pairing = DepthPairing(max_dt_s=0.05, keep=3)
    for stamp in (0, 100, 130, 170):
        pairing.add(stamp * ms, stamp)
    assert pairing.match(120 * ms) == 130   # nearest, not latest
    assert pairing.match(215 * ms) == 170   # 45 ms: within the limit
    assert pairing.match(225 * ms) is None  # 55 ms: too far
    assert pairing.match(20 * ms) is None   # 0 was pushed out by the newer three


def _stream_with_latency(frame_delay_s, status_delay_s):
    """
    Frames at 10 Hz and a grasp accepted at 2.55 s, succeeded at 4.55 s (test_live_vs_bag's).

    Return ``[(arrival_ns, kind, payload, sent_ns)]`` in arrival order: frames arrive
    ``frame_delay_s`` after their capture stamp, statuses ``status_delay_s`` after sending.
    """
    out = []
    for i in range(80):
        stamp = T0 + i * S // 10
        out.append((stamp + int(frame_delay_s * S), 'frame', i, stamp))
    for sent_s, status in ((2.55, 1), (4.55, 4)):
        sent = T0 + int(sent_s * S)
        out.append((sent + int(status_delay_s * S), 'status', [('g1', T0 + int(2.55 * S), status)],
                    sent))
    return sorted(out, key=lambda m: (m[0], m[1]))


def _phases_in_event_order(stream, reorder_s):
    cfg = EpisodeConfig(before_s=2.0, before_max_frames=4, during_rate_hz=2.0, after_s=2.0,
                        after_rate_hz=2.0, reorder_s=reorder_s)
    order = EventOrder(EpisodeLogic(cfg, T0 - S))
    events = []
    for arrival, kind, payload, sent in stream:
        if kind == 'frame':
            rgb = np.full((24, 32, 3), payload, np.uint8)
            events += order.on_frame(Frame(arrival, sent, rgb))
        else:
            events += order.on_goal_statuses('/grasp', payload, arrival, sent_ns=sent)
        events += order.tick(arrival)
    events += order.finish(stream[-1][0])
    return {phase: [int(ev.frame.rgb[0, 0, 0]) for ev in events
                    if isinstance(ev, FrameOut) and ev.phase == phase]
            for phase in ('before', 'during', 'after')}


def test_phases_follow_capture_stamps_and_send_times_not_arrival_order():
    """
    A frame and a status arriving in either order give the same phases (#21, live vs bag).

    Seen under load: frame 25 (captured 50 ms before the grasp was accepted) arrived after the
    ACCEPTED status and went to "during" live, to "before" from the bag, where it came first.
    """
    in_time = _phases_in_event_order(_stream_with_latency(0.0, 0.0), reorder_s=0.5)
    assert in_time == {'before': [10, 15, 20, 25], 'during': [26, 31, 36, 41],
                       'after': [46, 51, 56, 61]}
    # frames 120 ms late: frame 25 arrives after ACCEPTED, frame 45 after SUCCEEDED
    assert _phases_in_event_order(_stream_with_latency(0.12, 0.0), reorder_s=0.5) == in_time
    # statuses 120 ms late: frame 26 arrives before ACCEPTED, frame 46 before SUCCEEDED
    assert _phases_in_event_order(_stream_with_latency(0.0, 0.12), reorder_s=0.5) == in_time
    # reorder_s=0 is arrival order: the late frame 25 is "during", as the live recorder had it
    arrival_order = _phases_in_event_order(_stream_with_latency(0.12, 0.0), reorder_s=0.0)
    assert arrival_order['during'][0] == 25 and 25 not in arrival_order['before']


def test_event_order_distrusts_stamps_of_another_clock_and_a_clock_going_back():
    order = EventOrder(EpisodeLogic(EpisodeConfig(reorder_s=0.5), T0))
    # a camera stamping with its own clock (1 h off): ordered by its arrival instead
    assert order.event_ns(T0 - 3600 * S, T0 + S) == T0 + S
    assert order.event_ns(T0 + S - S // 10, T0 + S) == T0 + S - S // 10
    assert order.event_ns(0, T0 + S) == T0 + S  # no stamp
    assert order.start('service', 'service', T0 + 2 * S) == []  # held
    assert order.tick(T0 + 2 * S) == []
    released = order.tick(T0 + 2 * S + S // 2)
    assert isinstance(released[0], EpisodeStart) and released[0].t_ns == T0 + 2 * S
    assert order.stop('service', 'service', T0 + 3 * S) == []  # held
    # sim time restarted: the held stop is handed on before the frame of the new clock
    events = order.on_frame(Frame(T0, T0, np.zeros((24, 32, 3), np.uint8)))
    assert events and events[0].triggers[0]['end_ns'] == T0 + 3 * S
    assert not order.logic.is_active('service', 'service')


def test_one_topic_keeps_its_order_when_a_late_message_is_distrusted():
    """
    A status array taken at its late arrival never goes to the logic after the next one (#21).

    The recorder's executor stalled 0.6 s: ACCEPTED (sent at 1 s) was taken at 1.6 s, beyond
    the 0.5 s hold, so at its arrival; SUCCEEDED (sent at 1.2 s) was taken at once after it, by
    its send time. Ordered by those times, SUCCEEDED came first and the goal was first seen
    terminal: no episode. Frames of one camera keep their order the same way.
    """
    order = EventOrder(EpisodeLogic(EpisodeConfig(reorder_s=0.5), T0 - S))
    sent = T0 + S
    events = order.on_goal_statuses('/grasp', [('g1', sent, 1)], sent + 6 * S // 10,
                                    sent_ns=sent)
    events += order.on_goal_statuses('/grasp', [('g1', sent, 4)], sent + 61 * S // 100,
                                     sent_ns=sent + 2 * S // 10)
    events += order.tick(sent + 2 * S)
    assert order.logic.counts['terminal_goals_ignored'] == 0
    assert [type(ev).__name__ for ev in events][:1] == ['EpisodeStart']
    assert order.logic.triggers[0]['outcome'] == 'succeeded'
    late = Frame(T0 + 3 * S + 6 * S // 10, T0 + 3 * S, np.zeros((24, 32, 3), np.uint8))
    next_one = Frame(T0 + 3 * S + 61 * S // 100, T0 + 3 * S + 2 * S // 10,
                     np.ones((24, 32, 3), np.uint8))
    order.on_frame(late)
    order.on_frame(next_one)
    assert late.t_ns == T0 + 3 * S + 6 * S // 10 == next_one.t_ns  # the arrival of the first
    assert order.logic.counts['non_increasing_stamp'] == 0


def test_held_service_calls_answer_is_active_at_once():
    order = EventOrder(EpisodeLogic(EpisodeConfig(reorder_s=0.5), T0))
    assert not order.is_active('service', 'service')
    order.start('service', 'service', T0 + S)
    assert order.is_active('service', 'service')  # still held, not yet in the logic
    assert not order.logic.is_active('service', 'service')
    order.stop('service', 'service', T0 + S + S // 10, 'stopped')
    assert not order.is_active('service', 'service')
    events = order.tick(T0 + 2 * S)
    assert [type(ev).__name__ for ev in events][:2] == ['EpisodeStart', 'EpisodeUpdate']
    assert not order.is_active('service', 'service')
