"""
``grasp_recorder``: records camera frames before, during and after each grasp.

Thin ROS adapter around :mod:`sam2real_ros.recording.grasp_episodes` (which frames form which
episode) and :mod:`sam2real_ros.recording.episode_store` (crash-safe files). Parameters,
triggers, QoS and diagnostics are documented in docs/grasp_recorder.md.
"""
from collections import Counter, deque
from dataclasses import asdict
import os
import re
import sys

from action_msgs.msg import GoalStatusArray
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import qos_profile_action_status_default, QoSProfile, ReliabilityPolicy
from sam2real_ros.common import conversions
from sam2real_ros.nodes.runner import declare_parameters, run_node
from sam2real_ros.recording import episode_store
from sam2real_ros.recording import grasp_episodes
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

_FLOAT = {  # name: (default, description, min, max)
    'before_s': (2.0, 'seconds of frames kept in the ring buffer for the "before" phase',
                 0.0, 600.0),
    'during_rate_hz': (2.0, 'frame rate recorded while a grasp runs', 0.01, 1000.0),
    'max_during_s': (120.0, 'a grasp whose end is never reported ends after this many seconds '
                     '(outcome timeout)', 0.1, 86400.0),
    'after_s': (2.0, 'seconds recorded after the last grasp trigger ended', 0.0, 600.0),
    'after_rate_hz': (2.0, 'frame rate recorded after the grasp', 0.01, 1000.0),
    'dedup_threshold': (0.0, 'skip a frame whose mean absolute grey difference (0-255, 32x24 '
                        'thumbnail) to the last kept frame is below this; 0 keeps all',
                        0.0, 255.0),
    'stale_tolerance_s': (0.5, 'goals stamped more than this before the node started are stale '
                          '(latched status) and never start an episode', 0.0, 3600.0),
    'max_disk_gb': (0.0, 'stop recording when output_dir holds this many GB (0: no limit)',
                    0.0, 1e6),
    'min_free_gb': (1.0, 'stop recording when the file system has less free space (0: off)',
                    0.0, 1e6),
    'depth_max_dt_s': (0.05, 'largest stamp difference for pairing a depth image with an RGB '
                       'frame', 0.0, 10.0),
    'diagnostics_period_s': (1.0, 'period of /diagnostics messages', 0.05, 60.0),
}
_INT = {
    'before_max_frames': (4, 'most frames stored in the "before" phase (0: none)', 0, 1000),
    'queue_size': (32, 'frames queued for the disk writer before new ones are dropped', 1, 10000),
}
_STR = {
    'image_topic': ('/head_front_camera/rgb/image_raw', 'RGB image topic (sensor_msgs/Image)'),
    'camera_info_topic': ('', 'camera_info topic; empty: <image topic namespace>/camera_info'),
    'depth_topic': ('', 'registered depth image (16UC1 mm, mono16 or 32FC1 m); empty: no depth'),
    'output_dir': ('~/sam2real_data', 'dataset root; episodes go to <output_dir>/episodes'),
    'image_reliability': ('reliable', 'QoS reliability of the image subscriptions: reliable '
                          '(no loss; needs a reliable publisher) or best_effort (matches any)'),
}


class RecorderNode(Node):
    """The grasp recorder node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('grasp_recorder', **kwargs)
        p = declare_parameters(self, {**_FLOAT, **_INT, **_STR}, read_only=False)
        p['action_names'] = list(self.declare_parameter(
            'action_names', ['/grasp_server/grasp'], ParameterDescriptor(
                type=ParameterType.PARAMETER_STRING_ARRAY,
                description='grasp actions whose <action>/_action/status starts and ends '
                            'episodes')).value or [])
        p['action_names'] = [a for a in p['action_names'] if a]
        if p['image_reliability'] not in ('reliable', 'best_effort'):
            raise ValueError(f'parameter image_reliability={p["image_reliability"]!r} must be '
                             'reliable or best_effort')
        if not p['image_topic']:
            raise ValueError('parameter image_topic must not be empty')
        cfg = grasp_episodes.EpisodeConfig.from_mapping(p)
        self.p = p
        self.root = os.path.abspath(os.path.expanduser(p['output_dir']))
        os.makedirs(self.root, exist_ok=True)
        recovered = episode_store.recover_interrupted(self.root)
        if recovered:
            self.get_logger().warning(recovered.summary())
        self.logic = grasp_episodes.EpisodeLogic(cfg, self._now())
        self.sink = episode_store.EpisodeSink(self.root, p['max_disk_gb'], p['min_free_gb'],
                                              warn=self.get_logger().warning)
        self.writer = grasp_episodes.BackgroundWriter(self.sink.handle, p['queue_size'])
        self.extra = {'recorder': {'node': self.get_fully_qualified_name(),
                                   'image_topic': p['image_topic'],
                                   'depth_topic': p['depth_topic'] or None,
                                   'config': asdict(cfg)}}
        self.camera = None
        self.counts = Counter()
        self._bad_causes = set()
        self._depth = deque(maxlen=8)
        self._quota_logged = False

        rel = (ReliabilityPolicy.RELIABLE if p['image_reliability'] == 'reliable'
               else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(depth=5, reliability=rel)
        info_topic = p['camera_info_topic'] or (
            p['image_topic'].rsplit('/', 1)[0] + '/camera_info')
        self.create_subscription(Image, p['image_topic'], self._on_image, qos)
        self.create_subscription(CameraInfo, info_topic, self._on_info, qos)
        if p['depth_topic']:
            self.create_subscription(Image, p['depth_topic'], self._depth.append, qos)
        for action in p['action_names']:
            self.create_subscription(
                GoalStatusArray, action.rstrip('/') + '/_action/status',
                lambda msg, a=action: self._on_status(a, msg), qos_profile_action_status_default)
        self.create_service(Trigger, '~/start', self._srv_start)
        self.create_service(Trigger, '~/stop', self._srv_stop)
        self.diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(0.1, lambda: self._submit(self.logic.tick(self._now())))
        self.create_timer(p['diagnostics_period_s'], self._publish_diagnostics)
        self.get_logger().info(
            f'recording grasp episodes from {p["image_topic"]} to {self.root} '
            f'(actions: {", ".join(p["action_names"]) or "none"}; services ~/start, ~/stop)')

    def _now(self):
        return self.get_clock().now().nanoseconds

    def _submit(self, events):
        for ev in events:
            self.writer.submit(ev, camera=self.camera, extra=self.extra)

    def _bad(self, cause):
        self.counts['frames_bad'] += 1
        key = re.sub(r'\d+', 'N', cause)
        if key not in self._bad_causes:
            self._bad_causes.add(key)
            self.get_logger().warning(f'skipping bad image message(s): {cause} (logged once per '
                                      'cause; counted in /diagnostics)')

    def _on_info(self, msg):
        self.camera = episode_store.camera_meta(msg)

    def _on_image(self, msg):
        t = self._now()
        self.counts['frames_received'] += 1
        try:
            rgb = conversions.image_to_rgb8(msg).copy()
        except (ValueError, TypeError) as exc:
            self._bad(f'{self.p["image_topic"]}: {exc}')
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
            self._bad(f'{self.p["depth_topic"]}: {exc}')
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

    def _publish_diagnostics(self):
        st = DiagnosticStatus(name='grasp_recorder: episodes', hardware_id=self.root)
        values = dict(self.counts, **self.sink.stats, **self.logic.counts,
                      frames_dropped_queue=self.writer.dropped,
                      queue_length=self.writer.pending(), state=self.logic.state,
                      quota_reached=self.sink.quota_reached or '',
                      writer_error=self.writer.error or '')
        if self.writer.error or self.sink.stats['write_errors']:
            st.level, st.message = DiagnosticStatus.ERROR, 'episode writes failed'
        elif self.sink.quota_reached:
            st.level, st.message = DiagnosticStatus.WARN, 'disk quota reached, not recording'
        elif self.writer.dropped or self.counts['frames_bad']:
            st.level, st.message = DiagnosticStatus.WARN, 'frames dropped or bad'
        else:
            st.level, st.message = DiagnosticStatus.OK, f'{self.logic.state}'
        st.values = [KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)

    def shutdown(self):
        """Close an open episode (end_reason 'shutdown') and flush the writer."""
        self._submit(self.logic.finish(self._now(), 'shutdown'))
        self.writer.close()


def main(argv=None):
    """Run ``grasp_recorder`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    return run_node('grasp_recorder', RecorderNode, argv)


if __name__ == '__main__':
    sys.exit(main())
