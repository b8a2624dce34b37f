"""
``sam2real extract-episodes``: cut grasp episodes out of a rosbag2 (sqlite3 or mcap).

Replays the bag through the same trigger, ring-buffer and phase logic as the live
``grasp_recorder`` (:mod:`sam2real_ros.recording.grasp_episodes`), driven by each message's log
time (the time the recorder received it) instead of the wall clock, and writes the same episodes
(:mod:`sam2real_ros.recording.episode_store`). Reads bags with the pure-Python ``rosbags`` package.
"""
import argparse
import os
import sys

from sam2real_ros.common import bags
from sam2real_ros.common import conversions
from sam2real_ros.recording import episode_store
from sam2real_ros.recording import grasp_episodes


def build_parser():
    """Return the argparse parser of ``sam2real extract-episodes``."""
    ap = argparse.ArgumentParser(prog='sam2real extract-episodes', description=__doc__.split(
        '\n')[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('bag', help='rosbag2 folder (or a .db3/.mcap file)')
    ap.add_argument('--image-topic', required=True, help='RGB sensor_msgs/Image topic')
    ap.add_argument('--action', action='append', default=[],
                    help='grasp action name (its <action>/_action/status triggers); repeatable')
    ap.add_argument('--camera-info-topic', default='',
                    help='camera_info topic (default: <image topic namespace>/camera_info)')
    ap.add_argument('--out', required=True, help='dataset root (episodes go to OUT/episodes)')
    d = grasp_episodes.EpisodeConfig()
    for name in grasp_episodes.EpisodeConfig.names():
        default = getattr(d, name)
        ap.add_argument('--' + name.replace('_', '-'), type=type(default), default=default,
                        help='as the grasp_recorder parameter of the same name')
    ap.add_argument('--max-disk-gb', type=float, default=0.0, help='stop at this root size')
    ap.add_argument('--min-free-gb', type=float, default=0.0, help='stop below this free space')
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    return ap


class UserError(Exception):
    """A problem with the command line or the bag (printed as one line)."""


def extract(args, warn=print):
    """Run the extraction; returns ``(stats dict, logic counts)``."""
    from tqdm import tqdm

    cfg = grasp_episodes.EpisodeConfig.from_mapping(vars(args))
    try:
        cfg.validate()
    except ValueError as exc:
        raise UserError(str(exc).replace('episode parameter ', 'option --').replace('_', '-'))
    if not os.path.exists(args.bag):
        raise UserError(f'bag not found: {args.bag}')
    info_topic = args.camera_info_topic or args.image_topic.rsplit('/', 1)[0] + '/camera_info'
    status_topics = {a.rstrip('/') + '/_action/status': a for a in args.action}
    try:
        reader = bags.open_reader(args.bag)
    except bags.BagError as exc:
        raise UserError(str(exc))
    try:
        topics = {c.topic for c in reader.connections}
        if args.image_topic not in topics:
            raise UserError(f'image topic {args.image_topic} not in bag {args.bag} '
                            f'(topics: {", ".join(sorted(topics))})')
        for t in status_topics:
            if t not in topics:
                warn(f'warning: {t} not in bag {args.bag}; that action triggers nothing')
        wanted = {args.image_topic, info_topic, *status_topics}
        conns = [c for c in reader.connections if c.topic in wanted]
        logic = grasp_episodes.EpisodeLogic(cfg, reader.start_time)
        sink = episode_store.EpisodeSink(args.out, args.max_disk_gb, args.min_free_gb, warn=warn)
        camera = None
        extra = {'source_bag': os.path.abspath(args.bag), 'image_topic': args.image_topic}
        bad = set()
        total = sum(c.msgcount for c in conns)
        for conn, t, raw in tqdm(reader.messages(connections=conns), total=total,
                                 unit='msg', disable=args.no_progress):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:
                events, cause = [], f'{conn.topic}: cannot deserialize ({exc})'
            else:
                events, cause = feed(logic, conn.topic, msg, t, args.image_topic, status_topics)
            if conn.topic == info_topic and cause is None:
                camera = episode_store.camera_meta(msg)
            if cause:
                logic.counts['frames_bad'] += 1
                if cause not in bad:
                    bad.add(cause)
                    warn(f'warning: skipping bad message(s): {cause}')
            for ev in events:
                sink.handle(ev, camera=camera, extra=extra)
            if sink.quota_reached:
                break
        for ev in logic.finish(reader.end_time):
            sink.handle(ev, camera=camera, extra=extra)
        sink.close()
        return sink.stats, dict(logic.counts)
    finally:
        reader.close()


def feed(logic, topic, msg, t_ns, image_topic, status_topics):
    """Feed one deserialized message at log time ``t_ns``; returns ``(events, bad cause)``."""
    if topic == image_topic:
        try:
            rgb = conversions.image_to_rgb8(msg).copy()
        except ValueError as exc:
            return [], f'{topic}: {exc}'
        stamp = conversions.stamp_to_ns(msg.header.stamp) or t_ns
        return logic.on_frame(grasp_episodes.Frame(t_ns, stamp, rgb)), None
    if topic in status_topics:
        return logic.on_goal_statuses(status_topics[topic],
                                      grasp_episodes.status_tuples(msg), t_ns), None
    return [], None


def main(argv=None):
    """Entry point of ``sam2real extract-episodes``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        stats, counts = extract(args, warn=lambda m: print(m, file=sys.stderr))
    except UserError as exc:
        print(f'sam2real extract-episodes: {exc}', file=sys.stderr)
        return 2
    print(f'{stats["episodes_started"]} episode(s), {stats["frames_written"]} frame(s) written '
          f'to {os.path.join(args.out, "episodes")}; stale goals ignored: '
          f'{counts.get("stale_goals_ignored", 0)}, bad messages: {counts.get("frames_bad", 0)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
