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
``grasp_recorder``: records camera frames before, during and after each grasp.

Thin ROS adapter around :mod:`sam2real_ros.recording.grasp_episodes` (which frames form which
episode) and :mod:`sam2real_ros.recording.episode_store` (crash-safe files). Parameters,
triggers, QoS and diagnostics are documented in docs/grasp_recorder.md.
"""
from collections import Counter
from dataclasses import asdict
import faulthandler
import functools
import os
import signal
import sys
import time

from action_msgs.msg import GoalStatusArray
from rclpy.node import Node
from sam2real_ros.common import conversions
from sam2real_ros.common import shm_ports
from sam2real_ros.common.rejects import fault_kind
from sam2real_ros.common.watchdog import Watchdog
from sam2real_ros.inference.runtime import RateWindow, reuse_large_buffers
from sam2real_ros.nodes import params
from sam2real_ros.nodes.diagnostics import Diagnostics
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.qos import camera_qos_parameters, CameraSubscription, goal_status_qos
from sam2real_ros.nodes.runner import run_node
from sam2real_ros.recording import episode_recovery, episode_sink, episode_store
from sam2real_ros.recording import event_order, grasp_episodes
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
          'stale and never start an episode (so is every goal first seen in a status array '
          'published before the start, whatever its stamp)', bounds=(0.0, 3600.0)),
    Param('reorder_s', 0.5, 'frames and goal statuses are held this long and handed to the '
          'episode logic in stamp order (capture stamps, send times), so that a status and a '
          'frame arriving in either order give the same phases, live and from a bag; a stamp '
          'further than this from the arrival is not trusted; 0: arrival order',
          bounds=(0.0, 10.0)),
    Param('max_disk_gb', 0.0, 'store no frame while dataset_root holds this many GB (0: no '
          'limit)', bounds=(0.0, 1e6)),
    Param('min_free_gb', 1.0, 'store no frame while the file system has less free space '
          '(0: off)', bounds=(0.0, 1e6)),
    Param('queue_size', 32, 'frames queued for the disk writer before new ones are dropped',
          bounds=(1, 10000)),
    Param('depth_max_dt_s', 0.05, 'largest stamp difference for pairing a depth image with an '
          'RGB frame', bounds=(0.0, 10.0)),
    params.camera_timeout_parameter(3.0),
    Param('diagnostics_period_s', 1.0, 'period of /diagnostics messages', bounds=(0.05, 60.0)),
    Param('watchdog_s', 30.0, 'exit with code 3, so a supervisor restarts the node, when its '
          'timers have not run for this long (a stuck executor; logged with the stack of every '
          'thread; twice this long with the GIL held: exit 1) or no camera frame arrived for '
          'twice this long while a camera publisher is matched, or at once when a Fast DDS '
          'shared-memory port it listens on was removed, or when another process still sends '
          'into an older segment of such a port and no frame came for 5 s (the node cannot '
          'receive); 0: off',
          bounds=(0.0, 3600.0)),
)
WATCHDOG_EXIT = 3  # exit code of a recorder whose watchdog found its executor stuck
SHM_CHECK_S = 0.5  # how often the watchdog checks that the node's shared-memory ports exist
DEAF_CHECK_S = 5.0  # no frame this long from a matched camera: look for senders into old ports
UNHEARD_WARN_S = 10.0  # an action's status reader matched to no server this long: WARN once
RECENT_S = 10.0  # bad or dropped frames make the diagnostics WARN for this long
# (level, message): the diagnostics states, the first that applies wins (docs/grasp_recorder.md)
DIAGNOSTIC_STATES = (
    ('error', 'episode writes failing: {error}'),
    ('warn', 'disk quota reached, not recording: {reason}'),
    ('warn', 'no camera frames for {age:.0f} s{since}'),
    ('warn', 'bad or dropped frames in the last {recent:g} s'),
    ('ok', 'idle'),
    ('ok', 'recording ({state})'),
)
CONFIG_HEADER = """grasp_recorder parameters (docs/grasp_recorder.md). Topics image, camera_info
and depth are remapped to the camera (TIAGo++: perception.launch.py does it)."""


class RecorderNode(Node):
    """The grasp recorder node; raises ValueError on invalid parameters."""

    def __init__(self, **kwargs):
        super().__init__('grasp_recorder', **kwargs)
        # Status arrays published before this moment are the latched past (stale goals).
        self._wall_start_ns = time.time_ns()
        p = params.declare(self, PARAMETERS)
        p['action_names'] = [a for a in p['action_names'] if a]
        cfg = grasp_episodes.EpisodeConfig.from_mapping(p)
        self.p = p
        self.root = os.path.abspath(os.path.expanduser(p['dataset_root']))
        params.ensure_folder('dataset_root', self.root)
        self.root_lock = episode_store.DatasetLock(self.root, 'grasp_recorder')  # or exit 2
        if self.root_lock.stale.get('pid'):
            stale = self.root_lock.stale
            self.get_logger().info(f'took over the dataset root lock of a dead writer '
                                   f'({stale.get("program")} pid {stale["pid"]} on host '
                                   f'{stale.get("host")})')
        self.recovery = episode_recovery.recover_interrupted(self.root)
        if self.recovery:
            self.get_logger().warning(self.recovery.summary())
        self.logic = grasp_episodes.EpisodeLogic(cfg, self._now())
        self.order = event_order.EventOrder(self.logic)  # feeds the logic in stamp order
        self._bad_images = 0  # bad messages on the image topic (an episode without frames says)
        self.sink = episode_sink.EpisodeSink(self.root, p['max_disk_gb'], p['min_free_gb'],
                                             warn=self.get_logger().warning,
                                             rejected=lambda: self._bad_images)
        self.writer = grasp_episodes.BackgroundWriter(self.sink.handle, p['queue_size'])
        self.camera = None
        self.counts = Counter()
        self.bad = Counter()  # kind of bad message -> count (each kind is logged once)
        self.frames = RateWindow(5.0)  # image arrivals: rate and age up to now
        self._recent_trouble = None  # monotonic time of the last bad or dropped frame
        self._dropped_seen = 0
        self._depth = grasp_episodes.DepthPairing(p['depth_max_dt_s'])
        self._status_seen = set()  # actions whose first status array arrived
        self._terminal_warned = 0  # terminal_goals_ignored already logged
        self._unheard_since, self._unheard_warned = {}, set()  # per action: unmatched since

        def camera(msg_type, topic, callback):
            return CameraSubscription(self, msg_type, topic, callback, p['qos_reliability'],
                                      p['qos_depth'])
        self.image_sub = camera(Image, 'image', self._on_image)
        self.info_sub = camera(CameraInfo, 'camera_info', self._on_info)
        # a lambda: rclpy inspects the callback's signature, which a builtin method has none of
        self.depth_sub = camera(Image, 'depth', lambda msg: self._depth.add(
            conversions.stamp_to_ns(msg.header.stamp), msg)) \
            if p['record_depth'] else None
        self.extra = {'recorder': {'node': self.get_fully_qualified_name(),
                                   'image_topic': self.image_sub.topic,
                                   'depth_topic': self.depth_sub.topic if self.depth_sub
                                   else None,
                                   'config': asdict(cfg)}}
        self.status_subs = {action: self.create_subscription(
            GoalStatusArray, action.rstrip('/') + '/_action/status',
            functools.partial(self._on_status, action), goal_status_qos())
            for action in p['action_names']}
        self.create_service(Trigger, '~/start', self._srv_start)
        self.create_service(Trigger, '~/stop', self._srv_stop)
        self.diagnostics = Diagnostics(self, 'grasp_recorder: episodes',
                                       p['diagnostics_period_s'], self._status, self.root)
        self._deaf_since = None  # since when a matched camera sends nothing (watchdog)
        self._shm_checked, self._unreachable = 0.0, {}  # own Fast DDS ports nobody can reach
        self._senders_checked, self._old_senders = 0.0, {}  # others that send into old ports
        for port, why in shm_ports.held_ports().items():
            self.get_logger().warn(
                f'Fast DDS shared-memory port {port} is not ours to take: {why} (its listener '
                'died, seen after a kill -9 and a fast restart); holding its lock so that this '
                'node listens on another port')
        self.watchdog = Watchdog(p['watchdog_s'], self._stalled,
                                 hard_exit_s=2 * p['watchdog_s']) if p['watchdog_s'] else None
        self.create_timer(0.1, self._tick)
        # retry failed writes, re-check the quota (on the writer thread, which owns the sink)
        self.create_timer(1.0, lambda: self.writer.submit(episode_sink.Tick()))
        self.get_logger().info(
            f'recording grasp episodes from {self.image_sub.topic} to {self.root} '
            f'(actions: {", ".join(p["action_names"]) or "none"}; services ~/start, ~/stop)')

    def _now(self):
        return self.get_clock().now().nanoseconds

    def _tick(self):
        if self.watchdog is not None:
            self.watchdog.beat()
            self._check_deaf()
            self._check_reachable()
        self._submit(self.order.tick(self._now()))
        self._warn_terminal_goals()
        self._warn_unheard_actions()

    def _warn_unheard_actions(self):
        """Log once per action whose status reader has matched no server for a while."""
        now, unmatched = time.monotonic(), self._actions_unmatched()
        for action in self.status_subs:
            if action not in unmatched:  # heard: a later loss of its server is warned anew
                self._unheard_since.pop(action, None)
                self._unheard_warned.discard(action)
            elif now - self._unheard_since.setdefault(action, now) >= UNHEARD_WARN_S and \
                    action not in self._unheard_warned:
                self._unheard_warned.add(action)
                self.get_logger().warning(
                    f'no server of {action} heard for {UNHEARD_WARN_S:g} s (its goal status '
                    'topic has no matched publisher): grasps on it are not recorded until one '
                    'appears; is the action name in action_names right? (diagnostics: '
                    'actions_unmatched)')

    def _warn_terminal_goals(self):
        """Log each goal first heard already ended (no episode), never a silent no-op (#21)."""
        n = self.logic.counts['terminal_goals_ignored']
        if n > self._terminal_warned:
            action, gid, outcome = self.logic.last_terminal_ignored
            more = f' (and {n - self._terminal_warned - 1} more)' if \
                n - self._terminal_warned > 1 else ''
            self.get_logger().warning(
                f'goal {gid} of {action}{more} first heard already {outcome}: no episode for it '
                '(its active statuses never reached this recorder: under load an action server '
                'can match a new status reader only after a short grasp ended; counted as '
                'terminal_goals_ignored)')
            self._terminal_warned = n

    def _check_deaf(self):
        """Exit when the node cannot hear a camera: senders into an old port, or 2 x watchdog_s."""
        age = self.frames.age_s()
        if age >= DEAF_CHECK_S:
            self._check_old_senders(time.monotonic())
        if age < self.p['watchdog_s']:
            self._deaf_since = None
            return
        topic = self.image_sub.topic
        matched = self.count_publishers(topic)
        now = time.monotonic()
        if not matched or self._deaf_since is None:
            self._deaf_since = now if matched else None
        elif now - self._deaf_since >= self.p['watchdog_s']:
            self.get_logger().error(
                f'no camera frame for {age:.0f} s although {matched} publisher(s) of {topic} '
                f'are matched (watchdog_s {self.p["watchdog_s"]:g}): this node cannot receive '
                '(its DDS participant is unreachable, seen after a kill -9 and a fast restart) '
                f'or the camera stalled; exiting with code {WATCHDOG_EXIT} so that a restart '
                'rejoins')
            self.shutdown()
            os._exit(WATCHDOG_EXIT)

    def _check_old_senders(self, now):
        """Exit when other processes send into an older segment of our port (twice, 2 s apart)."""
        if now - self._senders_checked < 4 * SHM_CHECK_S:
            return
        self._senders_checked = now
        old, seen = shm_ports.old_segment_senders(), self._old_senders
        self._old_senders = old
        if not old or not set(old) & set(seen):
            return
        self.get_logger().error(
            f'no camera frame for {self.frames.age_s():.0f} s: other processes still send into '
            'an older segment of the Fast DDS shared-memory port(s) this node listens on '
            f'({"; ".join(f"{port}: {why}" for port, why in old.items())}; the port of a '
            f'killed process, taken over at once); exiting with code {WATCHDOG_EXIT} so that a '
            'restart listens on another port')
        self.shutdown()
        os._exit(WATCHDOG_EXIT)

    def _check_reachable(self):
        """Exit when a shared-memory port this node listens on was removed (twice in a row)."""
        now = time.monotonic()
        if now - self._shm_checked < SHM_CHECK_S:
            return
        self._shm_checked = now
        gone, seen = shm_ports.unreachable_shm_ports(), self._unreachable
        self._unreachable = gone
        if not gone or not set(gone) & set(seen):
            return
        self.get_logger().error(
            'no other node can send to this one: its Fast DDS shared-memory port(s) '
            f'{"; ".join(f"{port}: {why}" for port, why in gone.items())} (seen after a kill -9 '
            'and a fast restart under load: another process removed the port the dead recorder '
            f'had used); exiting with code {WATCHDOG_EXIT} so that a restart rejoins')
        self.shutdown()
        os._exit(WATCHDOG_EXIT)

    def _stalled(self, age_s):
        """Watchdog thread: the executor ran no timer for ``age_s``; say so, then exit."""
        self.get_logger().error(
            f'timers have not run for {age_s:.1f} s (watchdog_s {self.p["watchdog_s"]:g}): the '
            f'executor is stuck; exiting with code {WATCHDOG_EXIT} (the next start repairs the '
            'open episode); stacks of all threads follow')
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(WATCHDOG_EXIT)

    def _submit(self, events):
        for ev in events:
            self.writer.submit(ev, camera=self.camera, extra=self.extra)

    def _bad(self, cause):
        """Count a bad message by kind (numbers left out); log the first of each kind."""
        self.counts['frames_bad'] += 1
        self._recent_trouble = time.monotonic()
        kind = fault_kind(cause)
        self.bad[kind] += 1
        if self.bad[kind] == 1:
            self.get_logger().warning(f'skipping bad image message(s): {cause} (each kind '
                                      'logged once; counted in /diagnostics)')

    def _on_info(self, msg):
        self.camera = episode_store.camera_meta(msg)

    def _on_image(self, msg):
        t = self._now()
        self.counts['frames_received'] += 1
        self.frames.add()
        try:
            rgb = conversions.image_to_rgb8(msg).copy()
        except (ValueError, TypeError, OverflowError) as exc:
            self._bad_images += 1
            self._bad(f'{self.image_sub.topic}: {exc}')
            return
        stamp = conversions.stamp_to_ns(msg.header.stamp) or t
        depth = self._match_depth(stamp, rgb.shape[:2])
        self._submit(self.order.on_frame(grasp_episodes.Frame(t, stamp, rgb, depth)))

    def _match_depth(self, stamp, shape):
        try:
            return self._depth.match_mm(stamp, shape)
        except (ValueError, TypeError, OverflowError) as exc:
            self._bad(f'{self.depth_sub.topic}: {exc}')
            return None

    def _on_status(self, action, msg, info):
        statuses = grasp_episodes.status_tuples(msg)
        # The latched sample (published before we started) can only be the first one received;
        # later samples are never taken for it, even from a publisher whose clock lags.
        latched = (action not in self._status_seen
                   and info['source_timestamp'] < self._wall_start_ns)
        self._status_seen.add(action)
        self._submit(self.order.on_goal_statuses(action, statuses, self._now(),
                                                 sent_ns=info['source_timestamp'],
                                                 before_start=latched))

    def _not_recording(self):
        """Return why ~/start would record nothing, or None."""
        if self.sink.quota_reached:
            return f'disk quota reached: {self.sink.quota_reached}'
        error = self.sink.write_error or self.writer.error
        if error:
            return f'episode writes failing: {error}'
        return None

    def _srv_start(self, request, response):
        why = self._not_recording()
        if self.order.is_active('service', 'service'):
            response.success, response.message = True, 'service trigger already active'
        elif why:
            response.success, response.message = False, f'not recording: {why}'
        else:
            self._submit(self.order.start('service', 'service', self._now()))
            response.success, response.message = True, 'service trigger started'
        return response

    def _srv_stop(self, request, response):
        if not self.order.is_active('service', 'service'):
            response.success, response.message = False, 'no service trigger is active'
        else:
            self._submit(self.order.stop('service', 'service', self._now(), 'stopped'))
            response.success, response.message = True, 'service trigger stopped'
        return response

    def _actions_unmatched(self):
        """Name the actions whose goal status reader has matched no writer yet (unheard)."""
        return [a for a, sub in self.status_subs.items()
                if not (sub.get_publisher_count() if hasattr(sub, 'get_publisher_count')
                        else self.count_publishers(sub.topic_name))]

    def _status(self):
        """Return ``(level, message, values)``; the states are listed in the docs."""
        cam = self.frames.summary()
        if self.writer.dropped != self._dropped_seen:
            self._dropped_seen, self._recent_trouble = self.writer.dropped, time.monotonic()
        rep = self.recovery
        values = dict(self.counts, **self.sink.stats, **self.logic.counts,
                      frames_dropped_queue=self.writer.dropped,
                      queue_length=self.writer.pending(), state=self.logic.state,
                      quota_reached=self.sink.quota_reached or '',
                      write_error=self.sink.write_error or self.writer.error or '',
                      episodes_closing=len(self.sink.closing),
                      episodes_recovered=len(rep.interrupted), episodes_rebuilt=len(rep.rebuilt),
                      episodes_finished=len(rep.finished),
                      episodes_repair_failed=len(rep.failed),
                      episodes_removed_empty=len(rep.removed),
                      episodes_unreadable=len(rep.unreadable),
                      camera_rate_hz=f'{cam["rate_hz"]:.1f}', camera_age_s=f'{cam["age_s"]:.1f}',
                      last_episode_not_written=self.sink.last_not_written or '',
                      actions_unmatched=' '.join(self._actions_unmatched()))
        values.update({f'frames_bad: {kind}': n for kind, n in self.bad.items()})
        error = self.sink.write_error or self.writer.error
        recent = (self._recent_trouble is not None
                  and time.monotonic() - self._recent_trouble < RECENT_S)
        which = (0 if error else 1 if self.sink.quota_reached
                 else 2 if cam['age_s'] >= self.p['camera_timeout_s'] else 3 if recent
                 else 4 if self.logic.state == 'idle' else 5)
        level, template = DIAGNOSTIC_STATES[which]
        message = template.format(error=error, reason=self.sink.quota_reached, age=cam['age_s'],
                                  since='' if cam['count'] else ' since start', recent=RECENT_S,
                                  state=self.logic.state)
        return level, message, dict(sorted(values.items()))

    def shutdown(self):
        """Close an open episode (end_reason 'shutdown') and flush the writer."""
        if self.watchdog is not None:
            self.watchdog.stop()  # a long flush on a slow disk is no stall
        self._submit(self.order.finish(self._now(), 'shutdown'))
        self.writer.close()
        left = self.sink.close()
        if left:
            self.get_logger().warning(
                f'episode.json of {", ".join(left)} could not be written (disk full?): they stay '
                '"recording" until the next start repairs them')
        self.root_lock.release()


def main(argv=None):
    """Run ``grasp_recorder`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    reuse_large_buffers()  # camera frames: half the CPU per received frame
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: stacks on stderr
    # before the DDS participant exists: ports others still send into are not ours to take
    shm_ports.reserve_stale_ports()
    return run_node('grasp_recorder', RecorderNode, argv)


if __name__ == '__main__':
    sys.exit(main())
