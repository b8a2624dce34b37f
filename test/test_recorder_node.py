"""Integration tests of grasp_recorder: real processes, real DDS, real action server."""
import os
import signal
import threading

from conftest import wait_until
import numpy as np
import pytest
from sam2real_ros.common.io_utils import read_rgb
from sam2real_ros.nodes.graph import node_command
from sam2real_ros.recording import episode_store

rclpy = pytest.importorskip('rclpy')

IMAGE_TOPIC = '/test_cam/image_raw'
CAMERA = {'image': IMAGE_TOPIC, 'camera_info': '/test_cam/camera_info'}
ACTION = '/grasp_server/grasp'
K = [100.0, 0.0, 80.0, 0.0, 100.0, 60.0, 0.0, 0.0, 1.0]


class RosHarness:
    """An in-test ROS node: camera publisher (10 Hz), action client, diagnostics listener."""

    def __init__(self, bad_every=0):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import CameraInfo, Image
        from test_msgs.action import Fibonacci

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node('recorder_test', context=self.ctx)
        self.img_pub = self.node.create_publisher(Image, IMAGE_TOPIC, 5)
        self.info_pub = self.node.create_publisher(CameraInfo, CAMERA['camera_info'], 5)
        self.client = ActionClient(self.node, Fibonacci, ACTION)
        self.Fibonacci, self.Image, self.CameraInfo = Fibonacci, Image, CameraInfo
        self.diag = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.n, self.bad_every = 0, bad_every
        self.node.create_timer(0.1, self._publish)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_diag(self, msg):
        for st in msg.status:
            self.diag[st.hardware_id] = {kv.key: kv.value for kv in st.values}

    def _publish(self):
        from sam2real_ros.nodes.messages import numpy_to_image
        self.n += 1
        header = self.node.get_clock().now().to_msg()
        if self.bad_every and self.n % self.bad_every == 0:
            bad = self.Image(height=120, width=160, encoding='yuv422', step=320)
            bad.header.stamp = header
            self.img_pub.publish(bad)
            return
        rgb = np.zeros((120, 160, 3), np.uint8)
        rgb[..., 0] = self.n % 256
        rgb[(self.n * 3) % 120, :, 1] = 255
        msg = numpy_to_image(rgb, 'rgb8')
        msg.header.stamp, msg.header.frame_id = header, 'test_cam'
        info = self.CameraInfo(width=160, height=120, distortion_model='plumb_bob',
                               d=[0.1, 0.0, 0.0, 0.0, 0.0], k=K)
        info.header = msg.header
        self.info_pub.publish(info)
        self.img_pub.publish(msg)

    def diag_value(self, root, key, default=0):
        """Latest diagnostics value of the recorder writing to ``root``."""
        return self.diag.get(str(root), {}).get(key, default)

    def grasp(self, order, timeout=20.0):
        """Send one goal, wait for the result; returns (goal id hex, status)."""
        assert self.client.wait_for_server(timeout_sec=15.0), 'grasp server not up'
        fut = self.client.send_goal_async(self.Fibonacci.Goal(order=order))
        handle = wait_until(lambda: fut.done() and fut.result(), timeout)
        assert handle and handle.accepted
        res = handle.get_result_async()
        assert wait_until(res.done, timeout)
        return bytes(handle.goal_id.uuid).hex(), res.result().status

    def call(self, srv, timeout=15.0):
        from std_srvs.srv import Trigger
        cli = self.node.create_client(Trigger, srv)
        assert cli.wait_for_service(timeout_sec=timeout), f'{srv} not available'
        fut = cli.call_async(Trigger.Request())
        assert wait_until(fut.done, timeout)
        return fut.result()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def harness(request):
    h = RosHarness(**getattr(request, 'param', {}))
    yield h
    h.close()


def start_recorder(processes, root, name='recorder', **params):
    base = {'dataset_root': str(root), 'before_s': 1.0, 'before_max_frames': 3,
            'during_rate_hz': 4.0, 'after_s': 1.0, 'after_rate_hz': 4.0,
            'diagnostics_period_s': 0.3, 'min_free_gb': 0.0}
    base.update(params)
    return processes.start(*node_command('grasp_recorder', base, camera=CAMERA,
                                         params_file=False), name=name)


def check_episode(ep):
    phases = [f['phase'] for f in ep['frames']]
    order = ['before', 'during', 'after']
    assert phases == sorted(phases, key=order.index), phases
    stamps = [f['stamp_ns'] for f in ep['frames']]
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    for f in ep['frames']:
        img = read_rgb(os.path.join(ep['dir'], f['rgb']))
        assert img.shape == (120, 160, 3)


@pytest.mark.rostest
def test_grasps_become_episodes_and_latched_status_starts_nothing(processes, harness, tmp_path):
    server = processes.start('-m', 'sam2real_ros.nodes.sim_grasp_server', '--ros-args', '-p',
                             'grasp_duration_s:=1.5', name='server')
    root = tmp_path / 'data'
    rec = start_recorder(processes, root)
    assert wait_until(lambda: int(harness.diag_value(root, 'frames_received')) >= 15, 30), \
        processes.output(rec)
    ids = [harness.grasp(1)]
    assert wait_until(lambda: len(episode_store.list_episodes(root, complete_only=True)), 10)
    n = int(harness.diag_value(root, 'frames_received'))  # let the ring buffer refill
    assert wait_until(lambda: int(harness.diag_value(root, 'frames_received')) >= n + 10, 10)
    ids.append(harness.grasp(-1))
    eps = wait_until(lambda: (lambda e: len(e) == 2 and e)(
        episode_store.list_episodes(root, complete_only=True)), 10)
    assert eps, processes.output(rec)
    for ep, (gid, status), outcome in zip(eps, ids, ['succeeded', 'aborted']):
        check_episode(ep)
        assert ep['outcome'] == outcome
        assert ep['trigger'] == {'source': 'action:' + ACTION, 'goal_id': gid}
        assert ep['camera']['K'] == K and ep['camera']['frame_id'] == 'test_cam'
        assert ep['camera']['width'] == 160 and ep['camera']['distortion_model'] == 'plumb_bob'
        c = ep['counts']
        assert 1 <= c['before'] <= 3 and c['during'] >= 3 and c['after'] >= 2, c
    assert ids[1][1] == 6 and ids[0][1] == 4  # aborted, succeeded

    # A second recorder started now sees both goals latched (TRANSIENT_LOCAL): stale.
    root2 = tmp_path / 'late'
    rec2 = start_recorder(processes, root2, name='late')
    assert wait_until(lambda: int(harness.diag_value(root2, 'stale_goals_ignored')) == 2, 30), \
        processes.output(rec2)
    assert wait_until(lambda: int(harness.diag_value(root2, 'frames_received')) >= 20, 10)
    assert harness.diag_value(root2, 'state') == 'idle'
    assert episode_store.list_episodes(root2) == []
    assert processes.stop(rec2) == 0
    assert processes.stop(rec) == 0
    assert processes.stop(server) == 0


@pytest.mark.rostest
def test_kill9_mid_episode_then_restart_marks_interrupted(processes, harness, tmp_path):
    root = tmp_path / 'data'
    rec = start_recorder(processes, root, during_rate_hz=10.0, action_names='[""]')
    assert harness.call('/grasp_recorder/start').success
    rgb_files = lambda: list(root.glob('episodes/*/rgb/*.png'))  # noqa: E731
    assert wait_until(lambda: len(rgb_files()) >= 6, 20), processes.output(rec)
    processes.stop(rec, sig=signal.SIGKILL)
    written = sorted(p.name for p in rgb_files())
    ep_dir = episode_store.list_episodes(root)[0]['dir']
    assert episode_store.load_episode(ep_dir)['state'] == 'recording'
    rec2 = start_recorder(processes, root, name='restarted', action_names='[""]')
    meta = wait_until(lambda: (lambda m: m['state'] == 'interrupted' and m)(
        episode_store.load_episode(ep_dir)), 20)
    assert meta, processes.output(rec2)
    assert sorted(os.path.basename(f['rgb']) for f in meta['frames']) == written
    check_episode(meta)
    assert wait_until(lambda: 'interrupted' in processes.output(rec2), 10)
    assert processes.stop(rec2) == 0


@pytest.mark.rostest
@pytest.mark.parametrize('harness', [{'bad_every': 3}], indirect=True)
def test_bad_encoding_skipped_and_quota_stops_recording(processes, harness, tmp_path):
    root = tmp_path / 'data'
    rec = start_recorder(processes, root, max_disk_gb=1e-7, action_names='[""]')  # 100 bytes
    assert wait_until(lambda: int(harness.diag_value(root, 'frames_bad')) >= 3, 30), \
        processes.output(rec)
    assert harness.call('/grasp_recorder/start').success
    assert wait_until(lambda: harness.diag_value(root, 'quota_reached'), 10)
    assert harness.call('/grasp_recorder/stop').success  # the episode closes with its grasp
    eps = wait_until(lambda: episode_store.list_episodes(root, complete_only=True), 10)
    assert eps and eps[0]['end_reason'] == 'quota', processes.output(rec)
    assert eps[0]['outcome'] == 'stopped' and eps[0]['frames_lost_by_reason']['quota'] >= 1
    check_episode(eps[0])
    assert 1 <= len(eps[0]['frames']) <= 2
    res = harness.call('/grasp_recorder/start')
    assert not res.success and 'max_disk_gb' in res.message
    assert wait_until(lambda: harness.diag_value(root, 'quota_reached'), 5)
    assert int(harness.diag_value(root, 'frames_received')) > int(
        harness.diag_value(root, 'frames_bad')) >= 3
    assert processes.stop(rec) == 0
    log = rec.log_path.read_text()
    assert log.count('disk quota reached') == 1
    assert log.count('unsupported image encoding') == 1, log
    assert len(episode_store.list_episodes(root)) == 1
