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

"""``sam2real extract-episodes`` on real rosbag2 files (sqlite3 and mcap) written with rosbags."""
import os
import signal
import subprocess
import sys
import textwrap

from conftest import REPO
import numpy as np
import pytest

from sam2real_ros.common import io_utils
from sam2real_ros.common.io_utils import read_rgb
from sam2real_ros.recording import episode_store
from sam2real_ros.recording import extract
from sam2real_ros.recording import grasp_episodes
from sam2real_ros.recording.event_order import EventOrder

rosbags = pytest.importorskip('rosbags')

S = 1_000_000_000
T0 = 1_790_000_000 * S
IMG, INFO, STATUS = '/cam/rgb/image_raw', '/cam/rgb/camera_info', '/grasp/_action/status'
DEPTH = '/cam/depth_registered/image_raw'
DEPTH_TOO_LATE, DEPTH_WRONG_SIZE = 30, 35  # frames whose depth has no usable pair
OLD, A, B = bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))


def make_stream(all_bad=False, end_s=None, short_frames=(), depth=False):
    """
    Return ``(typestore, [(topic, msgtype, log_time_ns, msg)])`` in log-time order.

    Two grasps (A succeeds, B aborts) and a corrupt frame; ``all_bad``: every image has an
    unsupported encoding; ``end_s``: the bag ends that many seconds after its start;
    ``short_frames``: ``{i: n}`` image ``i`` carries only ``n`` bytes of data. ``depth``:
    a 16UC1 depth image (all pixels ``1000 + i`` mm) 20 ms after frame ``i``'s stamp, logged
    just before it, except frame DEPTH_TOO_LATE's (55 ms off) and DEPTH_WRONG_SIZE's (16x12).
    """
    from rosbags.typesys import get_typestore, Stores
    ts = get_typestore(Stores.ROS2_KILTED)
    T = ts.types
    Time, Header = T['builtin_interfaces/msg/Time'], T['std_msgs/msg/Header']

    def time(ns):
        return Time(sec=ns // S, nanosec=ns % S)

    def status(t, goals):
        lst = [T['action_msgs/msg/GoalStatus'](goal_info=T['action_msgs/msg/GoalInfo'](
            goal_id=T['unique_identifier_msgs/msg/UUID'](uuid=np.frombuffer(g, np.uint8)),
            stamp=time(stamp)), status=st) for g, stamp, st in goals]
        return (STATUS, 'action_msgs/msg/GoalStatusArray', t,
                T['action_msgs/msg/GoalStatusArray'](status_list=lst))

    old = (OLD, T0 - 10 * S, 4)  # a grasp that ended before recording: latched, stale
    out = [status(T0, [old])]
    roi = T['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                do_rectify=False)
    k = np.array([50.0, 0, 16, 0, 50.0, 12, 0, 0, 1])
    for i in range(1, 80):
        t = T0 + i * S // 10
        header = Header(stamp=time(t - 5_000_000), frame_id='cam')
        if i == 11 or all_bad:  # a corrupt frame: unsupported encoding
            out.append((IMG, 'sensor_msgs/msg/Image', t, T['sensor_msgs/msg/Image'](
                header=header, height=24, width=32, encoding='yuv422', is_bigendian=0,
                step=64, data=np.zeros(24 * 64, np.uint8))))
            continue
        rgb = np.zeros((24, 32, 3), np.uint8)
        rgb[..., 0], rgb[i % 24, :, 1] = i, 255
        if depth:
            off = 55_000_000 if i == DEPTH_TOO_LATE else 20_000_000
            h, w = (12, 16) if i == DEPTH_WRONG_SIZE else (24, 32)
            mm = np.full((h, w), 1000 + i, '<u2')
            out.append((DEPTH, 'sensor_msgs/msg/Image', t - 1, T['sensor_msgs/msg/Image'](
                header=Header(stamp=time(t - 5_000_000 + off), frame_id='cam'), height=h,
                width=w, encoding='16UC1', is_bigendian=0, step=2 * w,
                data=mm.view(np.uint8).ravel())))
        out.append((INFO, 'sensor_msgs/msg/CameraInfo', t, T['sensor_msgs/msg/CameraInfo'](
            header=header, height=24, width=32, distortion_model='plumb_bob',
            d=np.zeros(5), k=k, r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0,
            binning_y=0, roi=roi)))
        data = rgb.ravel()[:dict(short_frames).get(i)]
        out.append((IMG, 'sensor_msgs/msg/Image', t + 1, T['sensor_msgs/msg/Image'](
            header=header, height=24, width=32, encoding='rgb8', is_bigendian=0, step=96,
            data=data)))
    a, b = T0 + 2 * S + 5, T0 + 5 * S + 5
    out += [status(a, [old, (A, a, 2)]), status(T0 + 35 * S // 10, [old, (A, a, 4)]),
            status(b, [old, (A, a, 4), (B, b, 1)]),
            status(b + S // 2, [old, (A, a, 4), (B, b, 2)]),
            status(b + S + S // 2, [old, (A, a, 4), (B, b, 6)])]
    out.sort(key=lambda m: m[2])
    if end_s is not None:
        out = [m for m in out if m[2] <= T0 + end_s * S]
    return ts, out


def write_bag(path, plugin, **kw):
    from rosbags.rosbag2 import StoragePlugin, Writer
    ts, stream = make_stream(**kw)
    with Writer(path, version=9, storage_plugin=getattr(StoragePlugin, plugin)) as w:
        conns = {}
        for topic, msgtype, t, msg in stream:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=ts)
            w.write(conns[topic], t, ts.serialize_cdr(msg, msgtype))
    return stream


def expected_episodes(stream, cfg):
    """Feed the pure logic the same messages at the same log times; return its episodes."""
    order = EventOrder(grasp_episodes.EpisodeLogic(cfg, stream[0][2]))
    events = []
    for topic, _, t, msg in stream:
        events += extract.feed(order, topic, msg, t, IMG, {STATUS: '/grasp'})[0]
    events += order.finish(stream[-1][2])
    eps = []
    for ev in events:
        if isinstance(ev, grasp_episodes.EpisodeStart):
            eps.append([])
        elif isinstance(ev, grasp_episodes.FrameOut):
            eps[-1].append((ev.frame.stamp_ns, ev.phase))
    return eps


@pytest.mark.parametrize('plugin', ['SQLITE3', 'MCAP'])
def test_extraction_matches_live_logic(tmp_path, plugin, capsys):
    stream = write_bag(tmp_path / 'bag', plugin)
    out = tmp_path / 'data'
    argv = [str(tmp_path / 'bag'), '--image-topic', IMG, '--action', '/grasp', '--out', str(out),
            '--before-s', '1.0', '--before-max-frames', '3', '--during-rate-hz', '4',
            '--after-s', '1.0', '--after-rate-hz', '4', '--no-progress']
    assert extract.main(argv) == 1  # finished, but a message was rejected
    text = capsys.readouterr()
    assert text.err.count('unsupported image encoding') == 1
    assert 'rejected 1 bad message(s):\n  1 x /cam/rgb/image_raw: unsupported image ' in text.out
    cfg = grasp_episodes.EpisodeConfig(before_s=1.0, before_max_frames=3, during_rate_hz=4.0,
                                       after_s=1.0, after_rate_hz=4.0)
    want = expected_episodes(stream, cfg)
    eps = episode_store.list_episodes(out, complete_only=True)
    assert len(eps) == len(want) == 2
    assert [[(f['stamp_ns'], f['phase']) for f in ep['frames']] for ep in eps] == want
    assert [ep['outcome'] for ep in eps] == ['succeeded', 'aborted']
    assert [ep['trigger']['goal_id'] for ep in eps] == [A.hex(), B.hex()]
    for ep in eps:
        assert {f['phase'] for f in ep['frames']} == {'before', 'during', 'after'}
        assert ep['camera']['K'][0] == 50.0 and ep['camera']['frame_id'] == 'cam'
        i = ep['frames'][0]['stamp_ns']
        img = read_rgb(f'{ep["dir"]}/{ep["frames"][0]["rgb"]}')
        assert img[0, 0, 0] == round((i + 5_000_000 - T0) / (S // 10))  # the frame it names


def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys):
    write_bag(tmp_path / 'bag', 'SQLITE3')
    assert extract.main([str(tmp_path / 'bag'), '--image-topic', '/nope', '--out',
                         str(tmp_path / 'o')]) == 2
    assert '/nope not in bag' in capsys.readouterr().err
    assert extract.main([str(tmp_path / 'missing'), '--image-topic', IMG, '--out',
                         str(tmp_path / 'o')]) == 2
    assert 'bag not found' in capsys.readouterr().err
    assert extract.main([str(tmp_path / 'bag'), '--image-topic', IMG, '--out',
                         str(tmp_path / 'o'), '--during-rate-hz', '0']) == 2
    assert 'during-rate-hz' in capsys.readouterr().err


def argv_for(bag, out, *extra):
    return [str(bag), '--image-topic', IMG, '--action', '/grasp', '--out', str(out),
            '--before-s', '1.0', '--before-max-frames', '3', '--during-rate-hz', '4',
            '--after-s', '1.0', '--after-rate-hz', '4', '--no-progress', *extra]


def episode_frames(root):
    return {ep['episode_id']: [(f['stamp_ns'], f['phase']) for f in ep['frames']]
            for ep in episode_store.list_episodes(root)}


# extract-episodes in a real process that freezes before its N-th frame write, to be killed -9
FREEZING_EXTRACT = textwrap.dedent("""
    import sys
    from sam2real_ros.recording import episode_store, extract
    real, n = episode_store.EpisodeWriter.add_frame, [0]

    def add_frame(self, *args, **kw):
        n[0] += 1
        if n[0] == int(sys.argv[1]):
            print('frozen', flush=True)
            sys.stdin.readline()
        return real(self, *args, **kw)

    episode_store.EpisodeWriter.add_frame = add_frame
    extract.main(sys.argv[2:])
""")


def test_second_run_keeps_episodes_and_resumes_a_killed_run(tmp_path, capsys):
    write_bag(tmp_path / 'bag', 'SQLITE3')
    clean = tmp_path / 'clean'
    assert extract.main(argv_for(tmp_path / 'bag', clean)) == 1
    want = episode_frames(clean)
    assert len(want) == 2 and len(next(iter(want.values()))) < 16
    capsys.readouterr()
    # kill -9 in the middle of the second episode
    out = tmp_path / 'data'
    proc = subprocess.Popen([sys.executable, '-c', FREEZING_EXTRACT, '16',
                             *argv_for(tmp_path / 'bag', out)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == 'frozen'
        assert extract.main(argv_for(tmp_path / 'bag', out)) == 2  # one writer per root
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f'in use by sam2real extract-episodes pid {proc.pid} on host' \
            in err[0], err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    states = sorted(ep['state'] for ep in episode_store.list_episodes(out))
    assert states == ['complete', 'recording']
    assert extract.main(argv_for(tmp_path / 'bag', out)) == 1
    text = capsys.readouterr()
    assert '2 episode(s) in ' in text.out
    assert '1 new (1 replacing half-written or cut-short ones), 1 existing kept' in text.out, \
        text.out
    assert 'interrupted' in text.err  # the recovery at start says what it found
    assert episode_frames(out) == want  # same ids, same frames: as one uninterrupted run
    assert all(ep['state'] == 'complete' for ep in episode_store.list_episodes(out))
    # and once more: nothing new, nothing doubled
    assert extract.main(argv_for(tmp_path / 'bag', out)) == 1
    text = capsys.readouterr().out
    assert '0 new (0 replacing half-written or cut-short ones), 2 existing kept' in text, text
    assert sorted(os.listdir(out / 'episodes')) == sorted(want)


def test_every_image_bad_gives_no_episode_and_exit_1(tmp_path, capsys):
    write_bag(tmp_path / 'bag', 'MCAP', all_bad=True)
    assert extract.main(argv_for(tmp_path / 'bag', tmp_path / 'o')) == 1
    out, err = capsys.readouterr()
    # each episode says that frames came but were all bad, not that none arrived
    why = [line for line in err.splitlines() if 'not written (no_frames)' in line]
    assert len(why) == 2 and all('no good camera frame arrived while it was open (' in w
                                 and 'bad image message(s) rejected meanwhile)' in w
                                 for w in why), err
    assert episode_store.list_episodes(tmp_path / 'o') == []
    assert os.listdir(tmp_path / 'o' / 'episodes') == []
    assert '2 episode(s) stored no frame and were not written (no_frames)' in out, out
    assert ('rejected 79 bad message(s):\n  79 x /cam/rgb/image_raw: unsupported image '
            "encoding 'yuv422'") in out, out


def test_grasp_running_at_end_of_bag_has_agreeing_outcomes(tmp_path, capsys):
    write_bag(tmp_path / 'bag', 'SQLITE3', end_s=6.0)  # B started at 5 s, never ends
    extract.main(argv_for(tmp_path / 'bag', tmp_path / 'o'))
    eps = episode_store.list_episodes(tmp_path / 'o')
    assert [ep['end_reason'] for ep in eps] == ['after_elapsed', 'end_of_input']
    last = eps[-1]
    assert last['outcome'] == 'unknown' and last['triggers'][0]['outcome'] == 'unknown'
    assert last['triggers'][0]['end_ns'] == last['end_ns']


def test_action_not_in_bag_is_a_user_error(tmp_path, capsys):
    write_bag(tmp_path / 'bag', 'SQLITE3')
    argv = argv_for(tmp_path / 'bag', tmp_path / 'o', '--action', '/arm/pick')
    assert extract.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and '/arm/pick not in bag' in err[0], err
    assert err[0].endswith('actions in the bag: /grasp'), err
    assert not (tmp_path / 'o').exists()


def test_image_topic_of_another_type_is_a_user_error(tmp_path, capsys):
    """--image-topic on a camera_info topic: one line naming its type, no traceback (#21)."""
    write_bag(tmp_path / 'bag', 'SQLITE3')
    argv = argv_for(tmp_path / 'bag', tmp_path / 'o')
    argv[argv.index(IMG)] = INFO
    assert extract.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f'sam2real extract-episodes: --image-topic {INFO} carries '
                   'sensor_msgs/msg/CameraInfo, not sensor_msgs/msg/Image (image topics in the '
                   f'bag: {IMG})'], err


def test_no_action_is_a_user_error_listing_the_bags_actions(tmp_path, capsys):
    """Without --action nothing can trigger an episode: say so instead of '0 episode(s)'."""
    write_bag(tmp_path / 'bag', 'SQLITE3')
    argv = [str(tmp_path / 'bag'), '--image-topic', IMG, '--out', str(tmp_path / 'o')]
    assert extract.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['sam2real extract-episodes: no --action given: name the grasp action(s) '
                   'whose status starts an episode; actions in the bag: /grasp'], err
    assert not (tmp_path / 'o').exists()


def test_reject_summary_keeps_different_causes_apart(tmp_path, capsys):
    """Two size errors with different numbers are two lines, each with its own numbers (#21)."""
    write_bag(tmp_path / 'bag', 'SQLITE3', short_frames={13: 100, 17: 200})
    assert extract.main(argv_for(tmp_path / 'bag', tmp_path / 'o')) == 1
    out = capsys.readouterr().out
    assert 'rejected 3 bad message(s):' in out, out
    lines = [line.strip() for line in out.splitlines() if line.startswith('  ')]
    assert '1 x /cam/rgb/image_raw: rgb8 image data has 100 bytes, expected step x height = ' \
        '96 x 24 = 2304' in lines, lines
    assert '1 x /cam/rgb/image_raw: rgb8 image data has 200 bytes, expected step x height = ' \
        '96 x 24 = 2304' in lines, lines


def test_a_second_bag_into_the_same_out_is_not_taken_for_the_first(tmp_path, capsys):
    """Two bags with the same stamps and goal ids are two sets of episodes (#21)."""
    write_bag(tmp_path / 'bag_a', 'SQLITE3')
    write_bag(tmp_path / 'bag_b', 'MCAP')
    out = tmp_path / 'o'
    assert extract.main(argv_for(tmp_path / 'bag_a', out)) == 1
    capsys.readouterr()
    assert extract.main(argv_for(tmp_path / 'bag_b', out)) == 1
    text = capsys.readouterr().out
    assert '2 new (0 replacing half-written or cut-short ones), 0 existing kept' in text, text
    sources = sorted(os.path.basename(ep['source_bag'])
                     for ep in episode_store.list_episodes(out))
    assert sources == ['bag_a', 'bag_a', 'bag_b', 'bag_b'], sources
    assert extract.main(argv_for(tmp_path / 'bag_b', out)) == 1  # the same bag again: kept
    assert '0 new (0 replacing half-written or cut-short ones), 2 existing kept' in \
        capsys.readouterr().out


def test_extract_frames_and_episodes_share_one_exit_code_rule(tmp_path, capsys):
    """
    Some messages rejected: both bag commands finish and exit 1 (docs: the exit-code rule).

    0: all input used; 1: done, but messages were rejected or frames lost (the summary says);
    2: nothing done (bad arguments or bag).
    """
    from sam2real_ros.data import rosbag
    write_bag(tmp_path / 'bag', 'SQLITE3')  # one corrupt frame (yuv422) among 79
    assert rosbag.main([str(tmp_path / 'bag'), '--image-topic', IMG, '--out',
                        str(tmp_path / 'f'), '--min-period-s', '0', '--no-progress']) == 1
    assert extract.main(argv_for(tmp_path / 'bag', tmp_path / 'e')) == 1
    clean = tmp_path / 'clean'
    write_bag(clean, 'SQLITE3', end_s=1.0)  # before the corrupt frame
    assert rosbag.main([str(clean), '--image-topic', IMG, '--out', str(tmp_path / 'g'),
                        '--min-period-s', '0', '--no-progress']) == 0


def test_episode_timing_has_one_field_list_and_one_set_of_defaults():
    # EpisodeConfig owns the episode timing; the recorder's parameters and extract-episodes'
    # options are its fields with its defaults, so a bag and the live robot cut alike
    from dataclasses import asdict
    from sam2real_ros.nodes import grasp_recorder
    defaults = asdict(grasp_episodes.EpisodeConfig())
    params = {name: p.default for name, p in grasp_recorder.PARAMETERS.items()}
    assert {name: params.get(name) for name in defaults} == defaults
    args = extract.build_parser().parse_args(['bag', '--image-topic', IMG, '--out', 'x'])
    assert {name: getattr(args, name) for name in defaults} == defaults


def test_quota_counts_every_file_and_a_rerun_completes_cut_episodes(tmp_path, capsys):
    """--max-disk-gb counts episode.json too; a rerun with space replaces a quota-cut episode."""
    write_bag(tmp_path / 'bag', 'SQLITE3')
    clean = tmp_path / 'clean'
    extract.main(argv_for(tmp_path / 'bag', clean))
    want = episode_frames(clean)
    out = tmp_path / 'o'
    assert extract.main(argv_for(tmp_path / 'bag', out, '--max-disk-gb', '0.000002')) == 1
    eps = episode_store.list_episodes(out)
    assert [ep['end_reason'] for ep in eps] == ['quota'] and eps[0]['frames_lost'] > 0
    largest_png = max(os.path.getsize(f.image_path) for f in episode_store.iter_frames(out))
    json_size = os.path.getsize(os.path.join(eps[0]['dir'], 'episode.json'))
    # the overshoot is at most one frame and the final episode.json
    assert episode_store.dir_size_bytes(out) <= 2000 + largest_png + json_size
    capsys.readouterr()
    assert extract.main(argv_for(tmp_path / 'bag', out)) == 1  # (the bag's one bad image)
    text = capsys.readouterr().out
    assert '2 new (1 replacing half-written or cut-short ones), 0 existing kept' in text, text
    assert episode_frames(out) == want
    assert [ep['frames_lost'] for ep in episode_store.list_episodes(out)] == [0, 0]


def test_depth_topic_pairs_by_stamp_and_is_stored_like_the_recorder(tmp_path, capsys):
    write_bag(tmp_path / 'bag', 'SQLITE3', depth=True)
    out = tmp_path / 'data'
    argv = [str(tmp_path / 'bag'), '--image-topic', IMG, '--depth-topic', DEPTH, '--action',
            '/grasp', '--out', str(out), '--before-s', '1.0', '--during-rate-hz', '10',
            '--after-s', '1.0', '--after-rate-hz', '10', '--no-progress']
    assert extract.main(argv) == 1  # the corrupt RGB frame and the wrong-size depth image
    text = capsys.readouterr().out
    assert f'1 x {DEPTH}: depth image 16x12 does not match the 32x24 RGB image' in text
    assert f'1 x {IMG}: unsupported image encoding' in text
    frames = list(episode_store.iter_frames(out))
    seen = set()
    for ref in frames:
        i = int(read_rgb(ref.image_path)[0, 0, 0])  # the frame number is in the red channel
        seen.add(i)
        path = io_utils.depth_path(ref.image_path)
        if i in (DEPTH_TOO_LATE, DEPTH_WRONG_SIZE):
            assert not os.path.exists(path), i
            continue
        depth = io_utils.read_depth(ref.image_path, (24, 32))
        assert depth.dtype == np.uint16 and (depth == 1000 + i).all(), i
        assert path.endswith(os.path.join('depth', os.path.basename(ref.image_path)))
    assert {DEPTH_TOO_LATE, DEPTH_WRONG_SIZE} <= seen and len(seen) > 10
    meta = episode_store.list_episodes(out)[0]
    assert meta['depth_topic'] == DEPTH and meta['image_topic'] == IMG
    # a depth topic that is not in the bag is a user error naming the image topics there
    bad = argv[:]
    bad[bad.index(DEPTH)] = '/nope/depth'
    assert extract.main(bad) == 2
    err = capsys.readouterr().err
    assert '--depth-topic /nope/depth not in bag' in err and DEPTH in err
