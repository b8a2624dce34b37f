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
One image decoder and one bag opener for both bag commands, on real rosbag2 files.

``sam2real extract-frames`` and ``sam2real extract-episodes`` used to decode mono16 and 16UC1
differently from each other and from the nodes, and only one of them read bags without
embedded type definitions. Each test runs the real commands on a bag written with ``rosbags``.
"""
import json
import os
import sqlite3
import subprocess
import sys

from conftest import REPO
import numpy as np
import pytest
from sam2real_ros.common import conversions
from sam2real_ros.common.io_utils import read_rgb
from sam2real_ros.recording import episode_store

rosbags = pytest.importorskip('rosbags')

S = 1_000_000_000
T0 = 1_700_000_000 * S
IMG, STATUS = '/cam/image', '/grasp/_action/status'
H, W = 12, 16
GOAL = bytes(range(16))


def _image(ts, encoding, arr, t_ns):
    T = ts.types
    header = T['std_msgs/msg/Header'](
        stamp=T['builtin_interfaces/msg/Time'](sec=t_ns // S, nanosec=t_ns % S), frame_id='cam')
    arr = np.ascontiguousarray(arr)
    return T['sensor_msgs/msg/Image'](
        header=header, height=arr.shape[0], width=arr.shape[1], encoding=encoding,
        is_bigendian=0, step=arr.strides[0], data=arr.view(np.uint8).reshape(-1))


def _status(ts, t_ns, status):
    T = ts.types
    goal = T['action_msgs/msg/GoalStatus'](goal_info=T['action_msgs/msg/GoalInfo'](
        goal_id=T['unique_identifier_msgs/msg/UUID'](uuid=np.frombuffer(GOAL, np.uint8)),
        stamp=T['builtin_interfaces/msg/Time'](sec=(T0 + 2 * S) // S, nanosec=0)),
        status=status)
    return T['action_msgs/msg/GoalStatusArray'](status_list=[goal])


def write_bag(path, encoding, frames, without_type_definitions=False):
    """
    Write a sqlite3 bag: ``frames`` (arrays) on IMG at 0.5 s, one grasp from 2 s to 3 s.

    ``without_type_definitions`` rewrites it as ROS 2 before Iron wrote sqlite3 bags: schema
    version 3 and no ``message_definitions`` table.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        img = w.add_connection(IMG, 'sensor_msgs/msg/Image', typestore=ts)
        st = w.add_connection(STATUS, 'action_msgs/msg/GoalStatusArray', typestore=ts)
        for k, arr in enumerate(frames):
            t = T0 + k * S // 2
            w.write(img, t, ts.serialize_cdr(_image(ts, encoding, arr, t),
                                             'sensor_msgs/msg/Image'))
        for t, status in ((T0 + 2 * S + 1, 2), (T0 + 3 * S + 1, 4)):
            w.write(st, t, ts.serialize_cdr(_status(ts, t, status),
                                            'action_msgs/msg/GoalStatusArray'))
    if without_type_definitions:
        (db,) = path.glob('*.db3')
        con = sqlite3.connect(db)
        con.execute('DROP TABLE message_definitions')
        con.execute('UPDATE schema SET schema_version = 3')
        con.commit()
        con.close()


def sam2real(*args):
    return subprocess.run([sys.executable, '-m', 'sam2real_ros.cli', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def extract_frames(bag, out):
    res = sam2real('extract-frames', str(bag), '--image-topic', IMG, '--out', str(out),
                   '--min-period-s', '0', '--no-progress')
    frames = sorted((out / 'frames').iterdir()) if (out / 'frames').is_dir() else []
    return res, {int(p.stem): read_rgb(p) for p in frames}


def extract_episodes(bag, out):
    res = sam2real('extract-episodes', str(bag), '--image-topic', IMG, '--action', '/grasp',
                   '--out', str(out), '--no-progress')
    frames = {}
    for ep in episode_store.list_episodes(out, complete_only=False):
        for f in ep['frames']:
            frames[f['stamp_ns']] = read_rgb(os.path.join(ep['dir'], f['rgb']))
    return res, frames


def mono16_frames():
    """Frames whose maximum is <= 255 (dark) and > 255 (bright), alternating."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(10):
        top = 255 if k % 2 == 0 else 65535
        out.append(rng.integers(0, top, (H, W), endpoint=True).astype(np.uint16))
    return out


def test_mono16_decodes_the_same_in_both_bag_commands_and_the_nodes(tmp_path):
    frames = mono16_frames()
    write_bag(tmp_path / 'bag', 'mono16', frames)
    res, by_frames = extract_frames(tmp_path / 'bag', tmp_path / 'f')
    assert res.returncode == 0, res.stderr
    res, by_episodes = extract_episodes(tmp_path / 'bag', tmp_path / 'e')
    assert res.returncode == 0, res.stderr
    assert len(by_frames) == 10 and 3 <= len(by_episodes) < 10
    for k, arr in enumerate(frames):
        t = T0 + k * S // 2
        want = np.repeat((arr >> 8).astype(np.uint8)[..., None], 3, axis=2)  # high byte always
        np.testing.assert_array_equal(by_frames[t], want)
        if t in by_episodes:
            np.testing.assert_array_equal(by_episodes[t], want)
    dark = [T0 + k * S // 2 for k in range(0, 10, 2)]
    assert all(by_frames[t].max() == 0 for t in dark)  # not stretched per frame


def test_mono16_rclpy_message_decodes_like_the_bag(tmp_path):
    messages = pytest.importorskip('sam2real_ros.nodes.messages')
    for arr in mono16_frames()[:2]:
        np.testing.assert_array_equal(
            conversions.image_to_rgb8(messages.numpy_to_image(arr, 'mono16')),
            np.repeat((arr >> 8).astype(np.uint8)[..., None], 3, axis=2))


def test_16uc1_is_refused_as_colour_by_both_bag_commands(tmp_path):
    depth = [np.full((H, W), 500 + k, np.uint16) for k in range(10)]
    write_bag(tmp_path / 'bag', '16UC1', depth)
    res, by_frames = extract_frames(tmp_path / 'bag', tmp_path / 'f')
    assert res.returncode == 2 and not by_frames
    assert "'16UC1' is a depth/measurement encoding" in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2  # the reason once, not once per frame
    res, by_episodes = extract_episodes(tmp_path / 'bag', tmp_path / 'e')
    assert not by_episodes
    assert "'16UC1' is a depth/measurement encoding" in res.stderr


def test_bag_without_type_definitions_reads_in_both_commands(tmp_path):
    from rosbags.highlevel import AnyReader
    rgb = [np.full((H, W), 20 * k, np.uint8) for k in range(10)]
    write_bag(tmp_path / 'bag', 'mono8', rgb, without_type_definitions=True)
    reader = AnyReader([tmp_path / 'bag'])
    with pytest.raises(Exception, match='no type definitions'):
        reader.open()  # really a bag without definitions: rosbags alone cannot read it
    res, by_frames = extract_frames(tmp_path / 'bag', tmp_path / 'f')
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[-1])['written'] == 10
    res, by_episodes = extract_episodes(tmp_path / 'bag', tmp_path / 'e')
    assert res.returncode == 0, res.stderr
    assert by_episodes and set(by_episodes) < set(by_frames)
    for t, img in by_episodes.items():
        np.testing.assert_array_equal(img, by_frames[t])


def test_bag_opener_accepts_the_db3_file_and_names_a_missing_bag(tmp_path):
    from sam2real_ros.common import bags
    write_bag(tmp_path / 'bag', 'mono8', [np.zeros((H, W), np.uint8)])
    (db,) = (tmp_path / 'bag').glob('*.db3')
    with bags.open_bag(db) as reader:
        assert {c.topic for c in reader.connections} == {IMG, STATUS}
    with pytest.raises(bags.BagError, match='rosbag not found: .*nowhere'):
        bags.open_reader(tmp_path / 'nowhere')
    (tmp_path / 'junk').mkdir()
    with pytest.raises(bags.BagError, match='cannot open rosbag .*junk'):
        bags.open_reader(tmp_path / 'junk')


YCBV = os.environ.get('SAM2REAL_YCBV_SAMPLE') or os.path.join(
    os.path.dirname(REPO), 'shared', 'data', 'ycbv_bop_sample')
YCBV_SCENE = os.path.join(YCBV, 'train_real', '000001')


@pytest.mark.skipif(not os.path.isdir(YCBV_SCENE),
                    reason=f'YCB-V BOP sample not found at {YCBV} (set SAM2REAL_YCBV_SAMPLE)')
def test_real_ycbv_frames_through_a_bag_without_type_definitions(tmp_path):
    """Real 640x480 YCB-Video colour (as bgr8) and depth (16UC1) frames in a pre-Iron bag."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    from sam2real_ros.common.io_utils import read_image_unchanged
    ts = get_typestore(Stores.ROS2_HUMBLE)
    rgbs = []
    bag = tmp_path / 'bag'
    with Writer(bag, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        c_rgb = w.add_connection('/xtion/rgb/image_raw', 'sensor_msgs/msg/Image', typestore=ts)
        c_depth = w.add_connection('/xtion/depth/image_raw', 'sensor_msgs/msg/Image',
                                   typestore=ts)
        for k in range(3):
            name = f'{k + 1:06d}.png'
            rgb = read_rgb(os.path.join(YCBV_SCENE, 'rgb', name))
            depth = read_image_unchanged(os.path.join(YCBV_SCENE, 'depth', name))
            assert depth.dtype == np.uint16 and depth.shape == rgb.shape[:2] == (480, 640)
            t = T0 + k * S
            for conn, enc, arr in ((c_rgb, 'bgr8', rgb[:, :, ::-1]), (c_depth, '16UC1', depth)):
                msg = _image(ts, enc, arr, t)
                assert conversions.image_to_numpy(msg).shape == arr.shape  # rosbags message
                w.write(conn, t, ts.serialize_cdr(msg, 'sensor_msgs/msg/Image'))
                if enc == '16UC1':
                    np.testing.assert_array_equal(conversions.image_to_depth_mm(msg), depth)
            rgbs.append(rgb)
    (db,) = bag.glob('*.db3')
    con = sqlite3.connect(db)
    con.execute('DROP TABLE message_definitions')
    con.execute('UPDATE schema SET schema_version = 3')
    con.commit()
    con.close()
    res = sam2real('extract-frames', str(bag), '--image-topic', '/xtion/rgb/image_raw', '--out',
                   str(tmp_path / 'f'), '--min-period-s', '0', '--no-progress')
    assert res.returncode == 0, res.stderr
    frames = sorted((tmp_path / 'f' / 'frames').iterdir())
    assert len(frames) == 3
    for path, rgb in zip(frames, rgbs):
        np.testing.assert_array_equal(read_rgb(path), rgb)  # bit-exact real colours
    res = sam2real('extract-frames', str(bag), '--image-topic', '/xtion/depth/image_raw',
                   '--out', str(tmp_path / 'd'), '--no-progress')
    assert res.returncode == 2 and "'16UC1' is a depth/measurement encoding" in res.stderr
