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
A rosbag-driven training run through the user-facing commands, on a real rosbag2 file.

rosbag2 (mcap) with procedurally rendered "real" frames -> ``sam2real extract-frames`` ->
``sam2real segment`` (fallback segmenter) -> ``sam2real train`` with
``data.real={type: image_folder}`` -> ``sam2real evaluate`` and ``sam2real export``.
"""
import json
import os
import subprocess
import sys

from conftest import REPO
import numpy as np
import pytest
from sam2real_ros.data.procedural import TabletopRenderer
from sam2real_ros.sam.mask_store import MaskStore


RGB_TOPIC = '/head_front_camera/rgb/image_raw'
DEPTH_TOPIC = '/head_front_camera/depth_registered/image_raw'


def _write_bag(path, frames, depths=()):
    """Write one frame per second; depth image k (if any) 10 ms after frame k, logged first."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_KILTED)
    Image, Header, Time = (ts.types[n] for n in (
        'sensor_msgs/msg/Image', 'std_msgs/msg/Header', 'builtin_interfaces/msg/Time'))

    def image(ns, array, encoding, bpp):
        h, w = array.shape[:2]
        return Image(header=Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                                   frame_id='cam'), height=h, width=w, encoding=encoding,
                     is_bigendian=0, step=w * bpp,
                     data=np.ascontiguousarray(array).view(np.uint8).reshape(-1))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(RGB_TOPIC, Image.__msgtype__, typestore=ts)
        dconn = writer.add_connection(DEPTH_TOPIC, Image.__msgtype__, typestore=ts)
        for k, rgb in enumerate(frames):
            ns = 10**9 * (1000 + k)
            if k < len(depths):
                msg = image(ns + 10_000_000, depths[k].astype('<u2'), '16UC1', 2)
                writer.write(dconn, ns - 1, ts.serialize_cdr(msg, Image.__msgtype__))
            writer.write(conn, ns, ts.serialize_cdr(image(ns, rgb, 'rgb8', 3),
                                                    Image.__msgtype__))


def _sam2real(*args, timeout=600):
    res = subprocess.run([sys.executable, '-m', 'sam2real_ros.cli', *args], cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f'sam2real {args[0]} failed:\n{res.stdout}\n{res.stderr}'
    return res.stdout


@pytest.mark.slow
def test_rosbag_to_masks_to_training_to_onnx(tmp_path):
    renderer = TabletopRenderer(appearance='real', size=(96, 128))
    _write_bag(tmp_path / 'bag', [renderer.render(seed)['rgb'] for seed in range(6)])

    data = tmp_path / 'robot_frames'
    stats = json.loads(_sam2real('extract-frames', str(tmp_path / 'bag'), '--image-topic',
                                 RGB_TOPIC, '--out', str(data),
                                 '--min-period-s', '1.5', '--no-progress').splitlines()[-1])
    assert stats['messages'] == 6 and stats['written'] == 3  # one frame per 1.5 s kept

    _sam2real('segment', str(data), '--segmenter', 'fallback')
    store = MaskStore(data / 'masks')
    keys = sorted(f'frames/{n}' for n in os.listdir(data / 'frames'))
    assert [store.status(k) for k in keys] == ['done'] * 3
    assert store.read(keys[0]).masks().shape[1:] == (96, 128)

    run = tmp_path / 'run'
    _sam2real('train', '--config', 'training/configs/tiny_cpu.yaml', '--out', str(run),
              'max_epochs=1', 'frames_per_epoch=4', 'log.progress=false',
              f'data.real={{type: image_folder, root: {data}}}')
    assert (run / 'checkpoint.pt').is_file() and (run / 'metrics.csv').is_file()

    out = _sam2real('evaluate', str(run / 'checkpoint.pt'), '--data',
                    'training/configs/tiny_cpu.yaml', '--no-progress')
    assert 0.0 <= json.loads(out.splitlines()[-1])['miou'] <= 1.0
    _sam2real('export', str(run / 'checkpoint.pt'), '--out', str(run / 'model.onnx'))
    assert (run / 'model.onnx').is_file()


def test_extract_frames_stores_paired_depth_that_segment_uses(tmp_path):
    from sam2real_ros.common import io_utils
    renderer = TabletopRenderer(appearance='real', size=(96, 128))
    scenes = [renderer.render(seed) for seed in range(3)]
    # the last frame's depth is missing from the bag: that frame is kept without depth
    _write_bag(tmp_path / 'bag', [sc['rgb'] for sc in scenes], [sc['depth'] for sc in scenes[:2]])
    data = tmp_path / 'robot_frames'
    stats = json.loads(_sam2real(
        'extract-frames', str(tmp_path / 'bag'), '--image-topic', RGB_TOPIC, '--depth-topic',
        DEPTH_TOPIC, '--out', str(data), '--min-period-s', '0', '--no-progress').splitlines()[-1])
    assert (stats['written'], stats['depth_written'], stats['depth_missing']) == (3, 2, 1)
    frames = sorted(n for n in os.listdir(data / 'frames') if n.endswith('.png'))
    assert len(frames) == 3
    for name, sc in zip(frames, scenes):
        path = os.path.join(data, 'frames', name)
        depth = io_utils.read_depth(path, (96, 128))
        if sc is scenes[-1]:
            assert depth is None
        else:
            np.testing.assert_array_equal(depth, sc['depth'])  # stored as uint16 mm
    _sam2real('segment', str(data), '--segmenter', 'fallback', '--no-progress')
    store = MaskStore(data / 'masks')
    used = [store.read(f'frames/{n}').extra['depth'] for n in frames]
    assert used == [True, True, False]
    # a depth topic that is not an image topic of the bag: one line, exit 2
    res = subprocess.run([sys.executable, '-m', 'sam2real_ros.cli', 'extract-frames',
                          str(tmp_path / 'bag'), '--image-topic', RGB_TOPIC, '--depth-topic',
                          '/nope', '--out', str(tmp_path / 'x')], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2 and "topic '/nope' not in rosbag" in res.stderr
