"""
Extract camera frames from a rosbag2 (sqlite3 or mcap) into an image-folder cache.

Pure Python (the ``rosbags`` package), no ROS install needed. Frames are subsampled by time
(at most one every ``min_period_s``) and written atomically as
``<out_dir>/<stamp_ns:019d>.png``; running it again skips frames already written, so an
interrupted extraction resumes and a finished one is a no-op.
"""
import os

import cv2
import numpy as np

from sam2real_ros.common.io_utils import atomic_write_png
from sam2real_ros.data.base import DatasetError

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


def image_from_msg(msg, msgtype):
    """
    Decode a sensor_msgs Image or CompressedImage into HxWx3 uint8 RGB.

    Supported raw encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16 (scaled to 8 bit).
    """
    if msgtype.endswith('CompressedImage'):
        img = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'undecodable {msg.format!r} compressed image')
        return np.ascontiguousarray(img[:, :, ::-1])
    enc, h, w, step = msg.encoding.lower(), int(msg.height), int(msg.width), int(msg.step)
    chans = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, '8uc1': 1, '8uc3': 3,
             'mono16': 2, '16uc1': 2}.get(enc)
    if chans is None:
        raise ValueError(f'unsupported image encoding {msg.encoding!r}')
    data = np.frombuffer(msg.data, np.uint8)
    if step < w * chans or len(data) < step * h:
        raise ValueError(f'image data too short for {w}x{h} {enc} (step {step}, '
                         f'{len(data)} bytes)')
    rows = data[:step * h].reshape(h, step)[:, :w * chans]
    if chans == 2:
        big = bool(msg.is_bigendian)
        px = rows.copy().view('>u2' if big else '<u2').reshape(h, w)
        gray = (px >> 8).astype(np.uint8) if px.max() > 255 else px.astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    img = rows.reshape(h, w, chans)
    if chans == 1:
        return np.repeat(img, 3, axis=2)
    if enc.startswith('bgr'):
        img = img[:, :, 2::-1]
    return np.ascontiguousarray(img[:, :, :3])


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
      ``failed`` (undecodable), ``messages`` (on the topic) and ``out_dir``.

    """
    from rosbags.highlevel import AnyReader
    from tqdm import tqdm

    bag = os.fspath(bag)
    if not os.path.exists(bag):
        raise DatasetError(f'rosbag not found: {bag}')
    if min_period_s < 0:
        raise DatasetError(f'min_period_s must be >= 0, got {min_period_s}')
    stats = {'written': 0, 'existing': 0, 'dropped': 0, 'failed': 0, 'messages': 0,
             'out_dir': out_dir}
    period_ns = int(round(min_period_s * 1e9))
    try:
        reader = AnyReader([_bag_path(bag)])
        reader.open()
    except Exception as e:  # rosbags raises its own error types for broken bags
        raise DatasetError(f'cannot open rosbag {bag}: {type(e).__name__}: {e}') from None
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
            raise DatasetError(f'topic {topic!r} not in rosbag {bag}; image topics there: '
                               f'{images or "none"}')
        if conns[0].msgtype not in IMAGE_TYPES:
            raise DatasetError(f'topic {topic!r} in {bag} has type {conns[0].msgtype}, '
                               f'expected one of {IMAGE_TYPES}')
        os.makedirs(out_dir, exist_ok=True)
        last = None
        bar = tqdm(total=sum(c.msgcount for c in conns), desc=f'extract {topic}',
                   unit='msg', disable=not progress)
        for conn, log_ns, raw in reader.messages(connections=conns):
            bar.update(1)
            stats['messages'] += 1
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            stamp = stamp or int(log_ns)
            if last is not None and stamp - last < period_ns:
                stats['dropped'] += 1
                continue
            last = stamp
            path = os.path.join(out_dir, f'{stamp:019d}.png')
            if os.path.exists(path):
                stats['existing'] += 1
                continue
            try:
                rgb = image_from_msg(msg, conn.msgtype)
            except ValueError as e:
                stats['failed'] += 1
                bar.write(f'{bag}: {topic} message at {stamp} ns skipped: {e}')
                continue
            atomic_write_png(path, rgb)
            stats['written'] += 1
        bar.close()
    finally:
        reader.close()
    return stats


def _bag_path(bag):
    """Return the bag folder AnyReader wants; accept the .db3/.mcap file or metadata.yaml too."""
    from pathlib import Path
    p = Path(bag)
    if p.is_file() and (p.parent / 'metadata.yaml').is_file():
        return p.parent
    return p


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
                    'root: DIR}.')
    ap.add_argument('bag', help='rosbag2 folder (or .db3/.mcap file)')
    ap.add_argument('--image-topic', required=True,
                    help='sensor_msgs/Image or CompressedImage topic')
    ap.add_argument('--out', required=True, help='dataset folder; frames go to <out>/frames')
    ap.add_argument('--min-period-s', type=float, default=0.5,
                    help='minimum time between kept frames (0.5; 0 keeps all)')
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = ap.parse_args(argv)
    try:
        stats = extract_bag_frames(args.bag, args.image_topic, os.path.join(args.out, 'frames'),
                                   args.min_period_s, progress=not args.no_progress)
    except DatasetError as exc:
        print(f'sam2real extract-frames: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(stats))
    return 0
