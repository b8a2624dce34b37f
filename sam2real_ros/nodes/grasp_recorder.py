"""
``grasp_recorder``: records camera frames before, during and after each grasp.

Thin ROS adapter around :mod:`sam2real_ros.recording.grasp_episodes` (which frames form which
episode) and :mod:`sam2real_ros.recording.episode_store` (crash-safe files). Parameters,
triggers, QoS and diagnostics are documented in docs/grasp_recorder.md.
"""
from collections import Counter, deque
from dataclasses import asdict
import os
import sys

from action_msgs.msg import GoalStatusArray
from rclpy.node import Node
from rclpy.qos import qos_profile_action_status_default
from sam2real_ros.common import conversions
from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.qos import camera_qos_parameters, CameraSubscription
from sam2real_ros.nodes.runner import run_node
from sam2real_ros.recording import episode_store
from sam2real_ros.recording import grasp_episodes
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

PARAMETERS = params.schema(
    Param('dataset_root', '~/sam2real_data', 'dataset root; episodes go to '
          '<dataset_root>/episodes'),
    Param('action_names', ['/grasp_server/grasp'], 'grasp actions whose '
          '<action>/_action/status starts and ends episodes', array=params.STRING_ARRAY),
    Param('record_depth', False, 'also subscribe to depth (registered 16UC1/mono16 mm or '
          '32FC1 m) and store it with each frame'),
    *camera_qos_parameters('auto', 5),
    Param('before_s', 2.0, 'seconds of frames kept in the ring buffer for the "before" phase',
          bounds=(0.0, 600.0)),
    Param('before_max_frames', 4, 'most frames stored in the "before" phase (0: none)',
          bounds=(0, 1000)),
    Param('during_rate_hz', 2.0, 'frame rate recorded while a grasp runs',
          bounds=(0.01, 1000.0)),
    Param('max_during_s', 120.0, 'a grasp whose end is never reported ends after this many '
          'seconds (outcome timeout)', bounds=(0.1, 86400.0)),
    Param('after_s', 2.0, 'seconds recorded after the last grasp trigger ended',
          bounds=(0.0, 600.0)),
    Param('after_rate_hz', 2.0, 'frame rate recorded after the grasp', bounds=(0.01, 1000.0)),
    Param('dedup_threshold', 0.0, 'skip a frame whose mean absolute grey difference (0-255, '
          '32x24 thumbnail) to the last kept frame is below this; 0 keeps all',
          bounds=(0.0, 255.0)),
    Param('stale_tolerance_s', 0.5, 'goals stamped more than this before the node started are '
          'stale (latched status) and never start an episode', bounds=(0.0, 3600.0)),
    Param('max_disk_gb', 0.0, 'stop recording when dataset_root holds this many GB (0: no '
          'limit)', bounds=(0.0, 1e6)),
    Param('min_free_gb', 1.0, 'stop recording when the file system has less free space '
          '(0: off)', bounds=(0.0, 1e6)),
    Param('queue_size', 32, 'frames queued for the disk writer before new ones are dropped',
          bounds=(1, 10000)),
    Param('depth_max_dt_s', 0.05, 'largest stamp difference for pairing a depth image with an '
          'RGB frame', bounds=(0.0, 10.0)),
    Param('diagnostics_period_s', 1.0, 'period of /diagnostics messages', bounds=(0.05, 60.0)),
)
CONFIG_HEADER = """grasp_recorder parameters (docs/grasp_recorder.md). Topics image, camera_info
and depth are remapped to the camera (TIAGo++: perception.launch.py does it)."""


class RecorderNode(Node):
    """The grasp recorder node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('grasp_recorder', **kwargs)
        p = params.declare(self, PARAMETERS)
        p['action_names'] = [a for a in p['action_names'] if a]
        cfg = grasp_episodes.EpisodeConfig.from_mapping(p)
        self.p = p
        self.root = os.path.abspath(os.path.expanduser(p['dataset_root']))
        os.makedirs(self.root, exist_ok=True)
        recovered = episode_store.recover_interrupted(self.root)
        if recovered:
            self.get_logger().warning(recovered.summary())
        self.logic = grasp_episodes.EpisodeLogic(cfg, self._now())
        self.sink = episode_store.EpisodeSink(self.root, p['max_disk_gb'], p['min_free_gb'],
                                              warn=self.get_logger().warning)
        self.writer = grasp_episodes.BackgroundWriter(self.sink.handle, p['queue_size'])
        self.camera = None
        self.counts = Counter()
        self._depth = deque(maxlen=8)

        def camera(msg_type, topic, callback):
            return CameraSubscription(self, msg_type, topic, callback, p['qos_reliability'],
                                      p['qos_depth'])
        self.image_sub = camera(Image, 'image', self._on_image)
        self.info_sub = camera(CameraInfo, 'camera_info', self._on_info)
        self.depth_sub = camera(Image, 'depth', self._depth.append) if p['record_depth'] \
            else None
        self.extra = {'recorder': {'node': self.get_fully_qualified_name(),
                                   'image_topic': self.image_sub.topic,
                                   'depth_topic': self.depth_sub.topic if self.depth_sub
                                   else None,
                                   'config': asdict(cfg)}}
        for action in p['action_names']:
            self.create_subscription(
                GoalStatusArray, action.rstrip('/') + '/_action/status',
                lambda msg, a=action: self._on_status(a, msg), qos_profile_action_status_default)
        self.create_service(Trigger, '~/start', self._srv_start)
        self.create_service(Trigger, '~/stop', self._srv_stop)
        self.diagnostics = Diagnostics(self, 'grasp_recorder: episodes',
                                       p['diagnostics_period_s'], self._status, self.root)
        self.create_timer(0.1, lambda: self._submit(self.logic.tick(self._now())))
        self.get_logger().info(
            f'recording grasp episodes from {self.image_sub.topic} to {self.root} '
            f'(actions: {", ".join(p["action_names"]) or "none"}; services ~/start, ~/stop)')

    def _now(self):
        return self.get_clock().now().nanoseconds

    def _submit(self, events):
        for ev in events:
            self.writer.submit(ev, camera=self.camera, extra=self.extra)

    def _bad(self, cause):
        self.counts['frames_bad'] += 1
        self.get_logger().warning(f'skipping bad image message(s): {cause} (counted in '
                                  '/diagnostics; logged at most once a minute)',
                                  throttle_duration_sec=60.0)

    def _on_info(self, msg):
        self.camera = episode_store.camera_meta(msg)

    def _on_image(self, msg):
        t = self._now()
        self.counts['frames_received'] += 1
        try:
            rgb = conversions.image_to_rgb8(msg).copy()
        except (ValueError, TypeError) as exc:
            self._bad(f'{self.image_sub.topic}: {exc}')
            return
        if self.sink.quota_reached:
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp) or t
        depth = self._match_depth(stamp, rgb.shape[:2])
        self._submit(self.logic.on_frame(grasp_episodes.Frame(t, stamp, rgb, depth)))

    def _match_depth(self, stamp, shape):
        best = None
        for msg in self._depth:
            dt = abs(conversions.stamp_to_ns(msg.header.stamp) - stamp)
            if dt <= self.p['depth_max_dt_s'] * 1e9 and (best is None or dt < best[0]):
                best = (dt, msg)
        if best is None:
            return None
        try:
            depth = conversions.image_to_depth_mm(best[1])
            if depth.shape != shape:
                raise ValueError(f'depth image {depth.shape[1]}x{depth.shape[0]} does not match '
                                 f'the {shape[1]}x{shape[0]} RGB image')
            return depth
        except ValueError as exc:
            self._bad(f'{self.depth_sub.topic}: {exc}')
            return None

    def _on_status(self, action, msg):
        statuses = grasp_episodes.status_tuples(msg)
        if not self.sink.quota_reached:
            self._submit(self.logic.on_goal_statuses(action, statuses, self._now()))

    def _srv_start(self, request, response):
        if self.sink.quota_reached:
            response.success, response.message = False, f'quota: {self.sink.quota_reached}'
        elif self.logic.is_active('service', 'service'):
            response.success, response.message = True, 'service trigger already active'
        else:
            self._submit(self.logic.start('service', 'service', self._now()))
            response.success, response.message = True, 'service trigger started'
        return response

    def _srv_stop(self, request, response):
        if not self.logic.is_active('service', 'service'):
            response.success, response.message = False, 'no service trigger is active'
        else:
            self._submit(self.logic.stop('service', 'service', self._now(), 'stopped'))
            response.success, response.message = True, 'service trigger stopped'
        return response

    def _status(self):
        values = dict(self.counts, **self.sink.stats, **self.logic.counts,
                      frames_dropped_queue=self.writer.dropped,
                      queue_length=self.writer.pending(), state=self.logic.state,
                      quota_reached=self.sink.quota_reached or '',
                      writer_error=self.writer.error or '')
        if self.writer.error or self.sink.stats['write_errors']:
            level, message = 'error', 'episode writes failed'
        elif self.sink.quota_reached:
            level, message = 'warn', 'disk quota reached, not recording'
        elif self.writer.dropped or self.counts['frames_bad']:
            level, message = 'warn', 'frames dropped or bad'
        else:
            level, message = 'ok', f'{self.logic.state}'
        return level, message, dict(sorted(values.items()))

    def shutdown(self):
        """Close an open episode (end_reason 'shutdown') and flush the writer."""
        self._submit(self.logic.finish(self._now(), 'shutdown'))
        self.writer.close()


def main(argv=None):
    """Run ``grasp_recorder`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    return run_node('grasp_recorder', RecorderNode, argv)


if __name__ == '__main__':
    sys.exit(main())
