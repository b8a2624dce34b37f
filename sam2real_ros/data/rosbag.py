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
Extract camera frames from a rosbag2 (sqlite3 or mcap) into an image-folder cache.

Pure Python (the ``rosbags`` package), no ROS install needed. Frames are subsampled by time
(at most one every ``min_period_s``) and written atomically as
``<out_dir>/<stamp_ns:019d>.png``; running it again skips frames already written, so an
interrupted extraction resumes and a finished one is a no-op. With a depth topic each frame
gets the depth image nearest in stamp (paired as the grasp recorder pairs it), stored as
``<out_dir>/depth/<stamp_ns:019d>.png`` (uint16 millimetres, ``io_utils.depth_path``), where
the SAM worker finds it.
"""
import os

from sam2real_ros.common import bags
from sam2real_ros.common import conversions
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.io_utils import atomic_write_png, depth_path
from sam2real_ros.common.rejects import exit_code, Rejects
from sam2real_ros.data.base import DatasetError
from sam2real_ros.recording.grasp_episodes import DepthPairing

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


def image_connections(reader, bag, topic):
    """Return the bag's connections of image ``topic``; raises :class:`DatasetError` if none."""
    conns = [c for c in reader.connections if c.topic == topic]
    if not conns:
        images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
        raise DatasetError(f'topic {topic!r} not in rosbag {bag}; image topics there: '
                           f'{images or "none"}')
    if conns[0].msgtype not in IMAGE_TYPES:
        raise DatasetError(f'topic {topic!r} in {bag} has type {conns[0].msgtype}, '
                           f'expected one of {IMAGE_TYPES}')
    return conns


def extract_bag_frames(bag, topic, out_dir, min_period_s=0.5, progress=True, depth_topic=None,
                       depth_max_dt_s=0.05):
    """
    Write the frames of ``topic`` in ``bag`` as PNG files, subsampled by time.

    Arguments:
    ---------
      bag (str): rosbag2 folder (or file) in sqlite3 or mcap storage.
      topic (str): image topic (sensor_msgs/msg/Image or CompressedImage).
      out_dir (str): output folder, e.g. ``<cache>/frames``.
      min_period_s (float): minimum time between kept frames (header stamps; the bag's
        receive time when a header stamp is zero). 0 keeps every frame.
      progress (bool): show a tqdm bar.
      depth_topic (str or None): registered depth image topic (16UC1/mono16 mm, 32FC1 m):
        each kept frame gets the depth image nearest in stamp within ``depth_max_dt_s``,
        paired as the grasp recorder pairs it (``grasp_episodes.DepthPairing``), written as
        uint16 millimetres at ``io_utils.depth_path(frame)`` (``<out_dir>/depth/<stamp>.png``).

    Returns
    -------
      dict: ``written``, ``existing`` (already there), ``dropped`` (subsampled out),
      ``failed`` (undecodable), ``failures`` (each decoding problem -> how many frames had
      it), ``messages`` (on the topic), ``out_dir``; with a depth topic also ``depth_written``,
      ``depth_missing`` (written frames without a usable depth pair) and ``depth_failed``
      (paired depth images that did not decode or fit; in ``failures`` too).

    Raises
    ------
      DatasetError: the bag is missing or unreadable, the topic is not an image topic in it,
      or not one of its frames decodes (e.g. a depth topic: ``16UC1`` is not a colour image).

    """
    from tqdm import tqdm

    bag = os.fspath(bag)
    if min_period_s < 0:
        raise DatasetError(f'min_period_s must be >= 0, got {min_period_s}')
    stats = {'written': 0, 'existing': 0, 'dropped': 0, 'failed': 0, 'messages': 0,
             'out_dir': out_dir}
    if depth_topic:
        stats.update(depth_written=0, depth_missing=0, depth_failed=0)
    period_ns = int(round(min_period_s * 1e9))
    reasons = Rejects()  # each distinct decoding problem -> count (printed once)
    pairing = DepthPairing(depth_max_dt_s) if depth_topic else None
    try:
        with bags.open_bag(bag) as reader:
            conns = image_connections(reader, bag, topic)
            depth_conns = image_connections(reader, bag, depth_topic) if depth_topic else []
            os.makedirs(out_dir, exist_ok=True)
            last = None
            bar = tqdm(total=sum(c.msgcount for c in conns + depth_conns),
                       desc=f'extract {topic}', unit='msg', disable=not progress)
            for conn, log_ns, raw in reader.messages(connections=conns + depth_conns):
                bar.update(1)
                msg = reader.deserialize(raw, conn.msgtype)
                stamp = conversions.stamp_to_ns(msg.header.stamp) or int(log_ns)
                if conn.topic != topic:
                    pairing.add(stamp, msg)
                    continue
                stats['messages'] += 1
                if last is not None and stamp - last < period_ns:
                    stats['dropped'] += 1
                    continue
                last = stamp
                problem = _write_frame(msg, stamp, out_dir, pairing, stats)
                if problem and reasons.add(problem):
                    bar.write(f'{bag}: {topic} message at {stamp} ns '
                              f'{"" if problem.startswith("depth") else "skipped: "}'
                              f'{problem} (each problem is reported once, counted in '
                              '"failures")')
            bar.close()
    except bags.BagError as e:
        raise DatasetError(str(e)) from None
    stats['failures'] = reasons.causes
    if stats['failed'] and not stats['written'] + stats['existing']:
        first = next(iter(reasons.causes))
        raise DatasetError(f'none of the {stats["failed"]} frames of {topic!r} in {bag} could '
                           f'be decoded: {first}')
    return stats


def _write_frame(msg, stamp, out_dir, pairing, stats):
    """Write one kept frame (its paired depth first); returns a problem line or None."""
    path = os.path.join(out_dir, f'{stamp:019d}.png')
    if os.path.exists(path):
        stats['existing'] += 1
        return None
    try:
        rgb = conversions.image_to_rgb8(msg)
    except ValueError as e:
        stats['failed'] += 1
        return str(e)
    problem = None
    if pairing is not None:
        try:
            depth = pairing.match_mm(stamp, rgb.shape[:2])
        except (ValueError, TypeError, OverflowError) as e:
            depth, problem = None, f'depth not stored: {e}'
            stats['depth_failed'] += 1
        if depth is None:
            stats['depth_missing'] += 1
        else:  # depth first: a frame on disk always has its depth (a rerun skips the frame)
            atomic_write_png(depth_path(path), depth)
            stats['depth_written'] += 1
    atomic_write_png(path, rgb)
    stats['written'] += 1
    return problem


def main(argv=None):
    """``sam2real extract-frames BAG --image-topic T --out DIR``: image folder from a rosbag2."""
    import argparse
    import json
    import sys

    ap = argparse.ArgumentParser(
        prog='sam2real extract-frames',
        description='Write the frames of one image topic of a rosbag2 (sqlite3 or mcap) as PNG '
                    'files, at most one per --min-period-s; resumable. Then run '
                    '`sam2real segment DIR` and train with data.real={type: image_folder, '
                    'root: DIR}. Exit code 0: every frame used; 1: done, some frames could not '
                    'be decoded (listed); 2: nothing done.', formatter_class=HelpFormatter)
    ap.add_argument('bag', help='rosbag2 folder (or .db3/.mcap file)')
    ap.add_argument('--image-topic', required=True,
                    help='sensor_msgs/Image or CompressedImage topic')
    ap.add_argument('--out', required=True, help='dataset folder; frames go to <out>/frames')
    ap.add_argument('--min-period-s', type=float, default=0.5,
                    help='minimum time between kept frames; 0 keeps all')
    ap.add_argument('--depth-topic', default=None,
                    help='registered depth sensor_msgs/Image topic (16UC1/mono16 mm or 32FC1 m): '
                    'each frame gets the depth nearest in stamp (as the grasp_recorder pairs '
                    'it), stored in <out>/frames/depth/')
    ap.add_argument('--depth-max-dt-s', type=float, default=0.05,
                    help='largest stamp difference of an RGB / depth pair')
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = ap.parse_args(argv)
    try:
        stats = extract_bag_frames(args.bag, args.image_topic, os.path.join(args.out, 'frames'),
                                   args.min_period_s, progress=not args.no_progress,
                                   depth_topic=args.depth_topic,
                                   depth_max_dt_s=args.depth_max_dt_s)
    except DatasetError as exc:
        print(f'sam2real extract-frames: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(stats))
    return exit_code(stats['failed'] + stats.get('depth_failed', 0))
