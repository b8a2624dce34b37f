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
Demo stages 1-3: a simulated robot, the grasp recorder and the SAM worker as real processes.

:class:`RobotGraph` starts ``sim_camera`` (``source: world``: one persistent tabletop whose
objects the grasps take away, with registered depth, :mod:`sam2real_ros.data.sim_world`),
``sim_grasp_server``, ``grasp_recorder`` (with depth) and the ``sam_worker`` node, each a ROS
process with its log file in ``<run>/logs/``. The demo plays the grasp pipeline:
:meth:`RobotGraph.grasp` sends one goal with a real ActionClient and waits until the recorder
has closed the episode;
:meth:`RobotGraph.wait_for_masks` waits until the SAM worker has segmented every recorded frame.
Errors are :class:`StageError` with the log file of the process that failed.
"""
import os
import time

from sam2real_ros.common.processes import ProcessDied, ProcessGroup
from sam2real_ros.nodes.graph import GRASP_ACTION as ACTION, node_command, TIAGO_CAMERA
from sam2real_ros.recording import episode_store
from sam2real_ros.sam.mask_store import MaskStore

CAMERA, CAMERA_INFO = TIAGO_CAMERA['image'], TIAGO_CAMERA['camera_info']


class StageError(RuntimeError):
    """
    An expected failure of a demo stage.

    ``log`` names the log file to read (or None), ``detail`` holds extra lines (a log tail).
    """

    def __init__(self, message, log=None, detail=''):
        super().__init__(message)
        self.log, self.detail = log, detail


class RobotGraph:
    """
    The simulated robot, the recorder and the SAM worker node, plus the demo's own rclpy node.

    Arguments:
    ---------
        data_root (str): the recorder's dataset root (episodes + ``masks/``).
        logdir (str): process logs.
        scene (int): seed of the simulated tabletop.
        camera_rate (float): camera rate, Hz.
        grasp_s (float): how long each simulated grasp (and the gripper's motion) runs, s.
        before_s (float), after_s (float): recorder's before/after windows, seconds.
        segmenter (str): SAM worker segmenter (``fallback``, ``auto`` or ``sam``).

    """

    def __init__(self, data_root, logdir, scene=0, camera_rate=10.0, grasp_s=1.5,
                 before_s=1.0, after_s=1.0, segmenter='fallback'):
        self.data_root, self.before_s, self.after_s = data_root, before_s, after_s
        self.procs = ProcessGroup(logdir)
        self.spec = [
            ('sim_camera', node_command('sim_camera', {
                'source': 'world', 'rate_hz': float(camera_rate), 'seed': int(scene),
                'grasp_action': ACTION, 'grasp_motion_s': float(grasp_s)}, params_file=False)),
            ('sim_grasp_server', node_command('grasp_server', {
                'action_name': ACTION, 'grasp_duration_s': float(grasp_s)}, params_file=False)),
            ('grasp_recorder', node_command('grasp_recorder', {
                'dataset_root': data_root, 'min_free_gb': 0.0, 'before_s': float(before_s),
                'before_max_frames': 3, 'during_rate_hz': 2.0, 'after_s': float(after_s),
                'after_rate_hz': 2.0, 'action_names': [ACTION], 'record_depth': True,
                # the recorder pairs an image with a depth image it already has: one that
                # arrives before its own depth gets the previous one (a camera period earlier)
                'depth_max_dt_s': 1.1 / camera_rate}, params_file=False)),
            ('sam_worker', node_command('sam_worker', {
                'dataset_root': data_root, 'segmenter': segmenter, 'poll_period_s': 0.5,
                'nice': 0}, params_file=False)),
        ]
        self.node = None

    def start(self, timeout=120.0, progress=print):
        """Start the processes and wait until camera, action server and recorder are up."""
        from rclpy.action import ActionClient
        from sensor_msgs.msg import CameraInfo
        from test_msgs.action import Fibonacci

        from sam2real_ros.nodes.runner import BackgroundNode
        for name, args in self.spec:
            self.procs.start(*args, name=name)
        self._ros = BackgroundNode('sam2real_demo_grasp_pipeline')
        self.node = self._ros.node
        self.infos = []
        self.node.create_subscription(CameraInfo, CAMERA_INFO, self.infos.append, 10)
        self.client = ActionClient(self.node, Fibonacci, ACTION)
        self.goal_cls = Fibonacci.Goal
        checks = [('the camera publishes', lambda: bool(self.infos)),
                  ('the grasp action server answers', lambda: self.client.server_is_ready()),
                  ('the recorder subscribed to the camera',
                   lambda: self.node.count_subscribers(CAMERA) >= 1),
                  ('the SAM worker node is up',
                   lambda: self.node.count_publishers('/sam_worker/frame_done') >= 1)]
        for what, ok in checks:
            self._wait(ok, timeout, f'not ready after {timeout:g} s: {what}')
            progress(f'ready: {what}')

    def check_alive(self):
        """Raise :class:`StageError` (with the log tail and path) if a process has exited."""
        try:
            self.procs.check_alive()
        except ProcessDied as exc:
            raise StageError(str(exc), log=exc.log, detail=exc.tail) from None

    def _wait(self, predicate, timeout, message, log=None):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > deadline:
                raise StageError(message, log=log)
            time.sleep(0.1)

    def grasp(self, index, timeout=60.0):
        """
        Run grasp ``index`` (0-based) and wait until the recorder has closed its episode.

        Returns
        -------
            (dict): the episode's metadata (:func:`episode_store.list_episodes` entry).

        """
        from action_msgs.msg import GoalStatus

        # The head moves to its next pose 2.5 s after a grasp ended (sim_world.GraspWorld): late
        # enough for the "after" window even when the recorder sees the end late on a busy CPU.
        # The episode closed >= after_s after the end: wait for the move, then let the
        # recorder's ring buffer fill with "before" frames.
        time.sleep(self.before_s + (max(0.0, 2.8 - self.after_s) if index else 0.0))
        goal = self.client.send_goal_async(self.goal_cls(order=3))
        self._wait(goal.done, timeout, 'the grasp server did not answer the goal')
        if not goal.result().accepted:
            raise StageError('the grasp server rejected the goal',
                             log=self.procs.log_path('sim_grasp_server'))
        result = goal.result().get_result_async()
        self._wait(result.done, timeout, 'the grasp did not finish',
                   log=self.procs.log_path('sim_grasp_server'))
        if result.result().status != GoalStatus.STATUS_SUCCEEDED:
            raise StageError(f'grasp {index + 1} ended with status {result.result().status}',
                             log=self.procs.log_path('sim_grasp_server'))

        def closed():
            return len(episode_store.list_episodes(self.data_root, complete_only=True)) > index
        self._wait(closed, self.after_s + timeout, f'the recorder did not close episode '
                   f'{index + 1}', log=self.procs.log_path('grasp_recorder'))
        return episode_store.list_episodes(self.data_root, complete_only=True)[index]

    def mask_status(self):
        """``(done, failed, total)`` over the recorded frames of complete episodes."""
        store = MaskStore(os.path.join(self.data_root, 'masks'))
        states = [store.status(f.key) for f in episode_store.iter_frames(self.data_root)]
        return states.count('done'), states.count('failed'), len(states)

    def wait_for_masks(self, timeout=900.0, report=None):
        """Wait until every recorded frame has masks; ``report(done, total)`` on changes."""
        deadline, last = time.monotonic() + timeout, None
        while True:
            self.check_alive()
            done, failed, total = self.mask_status()
            if (done, total) != last and report is not None:
                report(done, total)
                last = (done, total)
            if failed:
                raise StageError(f'the SAM worker failed on {failed} of {total} frames',
                                 log=self.procs.log_path('sam_worker'))
            if done == total:
                return done
            if time.monotonic() > deadline:
                raise StageError(f'the SAM worker segmented {done} of {total} frames in '
                                 f'{timeout:g} s', log=self.procs.log_path('sam_worker'))
            time.sleep(0.2)

    def close(self):
        """Stop the processes (SIGINT) and the demo's node; returns ``{name: exit code}``."""
        if self.node is not None:
            self._ros.close()
            self.node = None
        return self.procs.stop_all()
