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
``sam2real extract-episodes``: cut grasp episodes out of a rosbag2 (sqlite3 or mcap).

Replays the bag through the same trigger, ring-buffer and phase logic as the live
``grasp_recorder`` (:mod:`sam2real_ros.recording.grasp_episodes`), driven by each message's log
time (the time the recorder received it) instead of the wall clock, and writes the same episodes
(:mod:`sam2real_ros.recording.episode_store`). With ``--depth-topic`` each frame gets the depth
image nearest in stamp, paired as the recorder pairs it (``grasp_episodes.DepthPairing``) and
stored the same way (``depth/<stamp>_<phase>.png``, uint16 millimetres). Reads bags with the
pure-Python ``rosbags`` package.

Idempotent: the same bag gives the same episode ids, so a second run into the same ``--out``
keeps the complete episodes, replaces half-written ones and those that lost frames (quota,
failed writes) and writes only what is missing; episodes are keyed by the bag too, so another
bag with the same stamps and goal ids adds its own. Exit codes: the rule of all bag commands,
:data:`sam2real_ros.common.rejects.EXIT_CODES`.
"""
import argparse
import os
import sys

from sam2real_ros.common import bags
from sam2real_ros.common import conversions
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.common.rejects import exit_code, Rejects
from sam2real_ros.recording import episode_recovery, episode_sink, episode_store
from sam2real_ros.recording import event_order, grasp_episodes


def build_parser():
    """Return the argparse parser of ``sam2real extract-episodes``."""
    ap = argparse.ArgumentParser(
        prog='sam2real extract-episodes', formatter_class=HelpFormatter,
        description='Cut grasp episodes out of a rosbag2 (sqlite3 or mcap) with the same '
        'trigger, ring buffer and phases as the live grasp_recorder, into OUT/episodes. '
        'Exit code 0: every message used; 1: done, some messages rejected or frames lost '
        '(listed); 2: nothing done. docs/grasp_recorder.md')
    ap.add_argument('bag', help='rosbag2 folder (or a .db3/.mcap file)')
    ap.add_argument('--image-topic', required=True, help='RGB sensor_msgs/Image topic')
    ap.add_argument('--action', action='append', default=[],
                    help='grasp action name (its <action>/_action/status triggers); repeatable')
    ap.add_argument('--depth-topic', default='',
                    help='registered depth sensor_msgs/Image topic (16UC1/mono16 mm or 32FC1 m), '
                    'paired with each frame by stamp as the grasp_recorder does (default: none)')
    ap.add_argument('--depth-max-dt-s', type=float, default=0.05,
                    help='largest stamp difference of an RGB / depth pair (grasp_recorder '
                    'parameter depth_max_dt_s)')
    ap.add_argument('--camera-info-topic', default='',
                    help='camera_info topic (default: <image topic namespace>/camera_info)')
    ap.add_argument('--out', required=True, help='dataset root (episodes go to OUT/episodes)')
    d = grasp_episodes.EpisodeConfig()
    for name in grasp_episodes.EpisodeConfig.names():
        default = getattr(d, name)
        ap.add_argument('--' + name.replace('_', '-'), type=type(default), default=default,
                        help='as the grasp_recorder parameter of the same name')
    ap.add_argument('--max-disk-gb', type=float, default=0.0,
                    help='stop when the dataset root reaches this size in GB (default 0: no '
                    'limit)')
    ap.add_argument('--min-free-gb', type=float, default=0.0,
                    help='stop when the disk has less free space in GB (default 0: no limit)')
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    return ap


class UserError(Sam2realError):
    """A problem with the command line or the bag (printed as one line)."""


STATUS_SUFFIX = '/_action/status'
IMAGE_TYPE = 'sensor_msgs/msg/Image'


def extract(args, warn=print):
    """
    Run the extraction.

    Returns
    -------
      tuple: ``(sink stats, logic counts, rejected, recovery)``: ``rejected`` is the
        :class:`~sam2real_ros.common.rejects.Rejects` of the bad messages.

    """
    cfg = grasp_episodes.EpisodeConfig.from_mapping(vars(args))
    try:
        cfg.validate()
    except ValueError as exc:
        raise UserError(str(exc).replace('episode parameter ', 'option --').replace('_', '-'))
    if not os.path.exists(args.bag):
        raise UserError(f'bag not found: {args.bag}')
    info_topic = args.camera_info_topic or args.image_topic.rsplit('/', 1)[0] + '/camera_info'
    status_topics = {a.rstrip('/') + STATUS_SUFFIX: a for a in args.action}
    try:
        reader = bags.open_reader(args.bag)
    except bags.BagError as exc:
        raise UserError(str(exc))
    lock = None
    try:
        topics = {c.topic for c in reader.connections}
        if args.image_topic not in topics:
            raise UserError(f'image topic {args.image_topic} not in bag {args.bag} '
                            f'(topics: {", ".join(sorted(topics))})')
        types = {c.topic: c.msgtype for c in reader.connections}
        images = sorted(t for t, m in types.items() if m == IMAGE_TYPE)
        for flag, topic in (('--image-topic', args.image_topic),
                            ('--depth-topic', args.depth_topic)):
            if topic and types.get(topic) != IMAGE_TYPE:
                raise UserError(f'{flag} {topic} ' + (
                    f'carries {types[topic]}, not {IMAGE_TYPE}' if topic in types else
                    f'not in bag {args.bag}') + f' (image topics in the bag: '
                    f'{", ".join(images) or "none"})')
        have = sorted(t[:-len(STATUS_SUFFIX)] for t in topics if t.endswith(STATUS_SUFFIX))
        if not status_topics:
            raise UserError('no --action given: name the grasp action(s) whose status starts '
                            f'an episode; actions in the bag: {", ".join(have) or "none"}')
        missing = [status_topics[t] for t in status_topics if t not in topics]
        if missing:
            raise UserError(f'action {", ".join(missing)} not in bag {args.bag} (no '
                            f'<action>{STATUS_SUFFIX} topic); actions in the bag: '
                            f'{", ".join(have) or "none"}')
        wanted = {args.image_topic, args.depth_topic, info_topic, *status_topics} - {''}
        conns = [c for c in reader.connections if c.topic in wanted]
        bad_images = [0]
        lock = _lock(args.out)
        try:
            sink = episode_sink.EpisodeSink(args.out, args.max_disk_gb, args.min_free_gb,
                                            warn=lambda m: warn('warning: ' + m), resume=True,
                                            rejected=lambda: bad_images[0])
            recovery = episode_recovery.recover_interrupted(args.out)
        except OSError as exc:
            raise UserError(f'cannot write to --out {args.out}: {exc}')
        if recovery:
            warn(f'warning: {recovery.summary()}')
        logic, rejected = _cut_episodes(args, cfg, reader, conns, sink, info_topic,
                                        status_topics, bad_images, warn)
        return sink.stats, dict(logic.counts), rejected, recovery
    finally:
        reader.close()
        if lock is not None:
            lock.release()


def _cut_episodes(args, cfg, reader, conns, sink, info_topic, status_topics, bad_images, warn):
    """Feed the bag's messages to the episode logic and its events to the store."""
    from tqdm import tqdm

    logic = grasp_episodes.EpisodeLogic(cfg, reader.start_time)
    order = event_order.EventOrder(logic)  # as the node: stamp order, not log time order
    pairing = grasp_episodes.DepthPairing(args.depth_max_dt_s) if args.depth_topic else None
    camera = None
    extra = {'source_bag': os.path.abspath(args.bag), 'image_topic': args.image_topic,
             'depth_topic': args.depth_topic or None}
    rejected = Rejects()
    total = sum(c.msgcount for c in conns)
    t = reader.start_time
    for conn, t, raw in tqdm(reader.messages(connections=conns), total=total,
                             unit='msg', disable=args.no_progress):
        try:
            msg = reader.deserialize(raw, conn.msgtype)
        except Exception as exc:
            events, cause = [], f'{conn.topic}: cannot deserialize ({exc})'
        else:
            events, cause = feed(order, conn.topic, msg, t, args.image_topic, status_topics,
                                 args.depth_topic, pairing)
        if conn.topic == info_topic and cause is None:
            camera = episode_store.camera_meta(msg)
        if cause:
            logic.counts['frames_bad'] += 1
            bad_images[0] += cause.startswith(args.image_topic + ':')
            if rejected.add(cause):
                warn(f'warning: skipping bad message(s): {cause}')
        for ev in events:
            sink.handle(ev, camera=camera, extra=extra)
        if sink.quota_reached and logic.state == 'idle':
            break  # the episode the quota cut short is closed with its grasp's outcome
    cut = bool(sink.quota_reached)  # the loop stopped at the quota: the rest is not read
    for ev in order.finish(t if cut else reader.end_time, drop_held=cut):
        sink.handle(ev, camera=camera, extra=extra)
    left = sink.close()
    if left:
        warn(f'warning: episode.json of {", ".join(left)} could not be written; they stay '
             f'"recording" until the next run repairs them')
    return logic, rejected


def _lock(out):
    """Take the dataset root's writer lock (one writer per root); UserError when taken."""
    try:
        return episode_store.DatasetLock(out, 'sam2real extract-episodes')
    except episode_store.DatasetBusy as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f'cannot write to --out {out}: {exc}') from None


def feed(order, topic, msg, t_ns, image_topic, status_topics, depth_topic='', pairing=None):
    """
    Feed one deserialized message at log time ``t_ns``; returns ``(events, bad cause)``.

    ``order`` is the ``event_order.EventOrder`` of the logic: frames go in by capture stamp,
    status arrays by log time (a bag keeps no send time).

    Depth messages (``depth_topic``) go to ``pairing`` (a ``grasp_episodes.DepthPairing``);
    a frame whose paired depth does not decode or fit is kept without depth, the cause naming
    the depth topic.
    """
    if topic == depth_topic and pairing is not None:
        pairing.add(conversions.stamp_to_ns(msg.header.stamp) or t_ns, msg)
        return [], None
    if topic == image_topic:
        try:
            rgb = conversions.image_to_rgb8(msg).copy()
        except ValueError as exc:
            return [], f'{topic}: {exc}'
        stamp = conversions.stamp_to_ns(msg.header.stamp) or t_ns
        depth, cause = None, None
        if pairing is not None:
            try:
                depth = pairing.match_mm(stamp, rgb.shape[:2])
            except (ValueError, TypeError, OverflowError) as exc:
                cause = f'{depth_topic}: {exc}'
        return order.on_frame(grasp_episodes.Frame(t_ns, stamp, rgb, depth)), cause
    if topic in status_topics:
        return order.on_goal_statuses(status_topics[topic],
                                      grasp_episodes.status_tuples(msg), t_ns), None
    return [], None


def summary(args, stats, counts, rejected):
    """Return the lines of the final summary and the exit code (0 or 1)."""
    new = stats['episodes_complete']
    lines = [f'{new + stats["episodes_existing"]} episode(s) in '
             f'{os.path.join(args.out, "episodes")}: {new} new '
             f'({stats["episodes_replaced"]} replacing half-written or cut-short ones), '
             f'{stats["episodes_existing"]} existing kept; {stats["frames_written"]} frame(s) '
             f'written; stale goals ignored: {counts.get("stale_goals_ignored", 0)}']
    if stats['episodes_without_frames']:
        lines.append(f'{stats["episodes_without_frames"]} episode(s) stored no frame and were '
                     'not written (no_frames)')
    lost = {k[len('frames_lost_'):]: v for k, v in stats.items()
            if k.startswith('frames_lost_') and v}
    if lost:
        lines.append(f'{stats["frames_lost"]} frame(s) of episodes lost: '
                     + ', '.join(f'{r} {n}' for r, n in lost.items()))
    if rejected.total:
        lines.append(f'rejected {rejected.total} bad message(s):')
        lines += rejected.lines()
    return lines, exit_code(rejected.total, lost)


def main(argv=None):
    """Entry point of ``sam2real extract-episodes``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        stats, counts, rejected, _ = extract(args, warn=lambda m: print(m, file=sys.stderr))
    except UserError as exc:
        print(f'sam2real extract-episodes: {exc}', file=sys.stderr)
        return 2
    lines, code = summary(args, stats, counts, rejected)
    print('\n'.join(lines))
    return code


if __name__ == '__main__':
    sys.exit(main())
