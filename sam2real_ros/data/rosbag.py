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
interrupted extraction resumes and a finished one is a no-op.
"""
import os

from sam2real_ros.common import bags
from sam2real_ros.common import conversions
from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.io_utils import atomic_write_png
from sam2real_ros.common.rejects import exit_code, Rejects
from sam2real_ros.data.base import DatasetError

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


def extract_bag_frames(bag, topic, out_dir, min_period_s=0.5, progress=True):
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

    Returns
    -------
      dict: ``written``, ``existing`` (already there), ``dropped`` (subsampled out),
      ``failed`` (undecodable), ``failures`` (each decoding problem -> how many frames had
      it), ``messages`` (on the topic) and ``out_dir``.

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
    period_ns = int(round(min_period_s * 1e9))
    reasons = Rejects()  # each distinct decoding problem -> count (printed once)
    try:
        with bags.open_bag(bag) as reader:
            conns = image_connections(reader, bag, topic)
            os.makedirs(out_dir, exist_ok=True)
            last = None
            bar = tqdm(total=sum(c.msgcount for c in conns), desc=f'extract {topic}',
                       unit='msg', disable=not progress)
            for conn, log_ns, raw in reader.messages(connections=conns):
                bar.update(1)
                stats['messages'] += 1
                msg = reader.deserialize(raw, conn.msgtype)
                stamp = conversions.stamp_to_ns(msg.header.stamp) or int(log_ns)
                if last is not None and stamp - last < period_ns:
                    stats['dropped'] += 1
                    continue
                last = stamp
                path = os.path.join(out_dir, f'{stamp:019d}.png')
                if os.path.exists(path):
                    stats['existing'] += 1
                    continue
                try:
                    rgb = conversions.image_to_rgb8(msg)
                except ValueError as e:
                    stats['failed'] += 1
                    if reasons.add(e):
                        bar.write(f'{bag}: {topic} message at {stamp} ns skipped: {e} '
                                  '(each problem is reported once, counted in "failures")')
                    continue
                atomic_write_png(path, rgb)
                stats['written'] += 1
            bar.close()
    except bags.BagError as e:
        raise DatasetError(str(e)) from None
    stats['failures'] = reasons.causes
    if stats['failed'] and not stats['written'] + stats['existing']:
        first = next(iter(reasons.causes))
        raise DatasetError(f'none of the {stats["failed"]} frames of {topic!r} in {bag} could '
                           f'be decoded: {first}')
    return stats


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
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = ap.parse_args(argv)
    try:
        stats = extract_bag_frames(args.bag, args.image_topic, os.path.join(args.out, 'frames'),
                                   args.min_period_s, progress=not args.no_progress)
    except DatasetError as exc:
        print(f'sam2real extract-frames: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(stats))
    return exit_code(stats['failed'])
