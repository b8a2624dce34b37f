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


def _write_bag(path, frames):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_KILTED)
    Image, Header, Time = (ts.types[n] for n in (
        'sensor_msgs/msg/Image', 'std_msgs/msg/Header', 'builtin_interfaces/msg/Time'))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection('/head_front_camera/rgb/image_raw', Image.__msgtype__,
                                     typestore=ts)
        for k, rgb in enumerate(frames):
            ns = 10**9 * (1000 + k)  # one frame per second
            h, w = rgb.shape[:2]
            msg = Image(header=Header(stamp=Time(sec=ns // 10**9, nanosec=0), frame_id='cam'),
                        height=h, width=w, encoding='rgb8', is_bigendian=0, step=w * 3,
                        data=np.ascontiguousarray(rgb).reshape(-1))
            writer.write(conn, ns, ts.serialize_cdr(msg, Image.__msgtype__))


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
                                 '/head_front_camera/rgb/image_raw', '--out', str(data),
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
