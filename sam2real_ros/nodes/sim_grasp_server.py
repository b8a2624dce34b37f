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
Simulated grasp action server: a real rclpy ActionServer that "grasps" for a while.

``python -m sam2real_ros.nodes.sim_grasp_server`` serves ``test_msgs/action/Fibonacci`` on
``/grasp_server/grasp`` (parameter ``action_name``). Each goal executes for
``grasp_duration_s`` seconds, publishing feedback, then succeeds; a goal with a negative
``order`` aborts instead, and a cancel request cancels it. Goals run one after another.
"""
import sys
import time

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from sam2real_ros.nodes import params
from sam2real_ros.nodes.params import Param
from sam2real_ros.nodes.runner import run_node
from test_msgs.action import Fibonacci

PARAMETERS = params.schema(
    Param('action_name', '/grasp_server/grasp', 'name of the simulated grasp action '
          '(test_msgs/action/Fibonacci)', required=True),
    Param('grasp_duration_s', 2.0, 'how long each grasp executes before it ends, seconds',
          bounds=(0.0, 3600.0)),
)


class SimGraspServer(Node):
    """Action server node; see the module docstring."""

    def __init__(self):
        super().__init__('grasp_server')
        p = params.declare(self, PARAMETERS)
        name, self.duration = p.action_name, p.grasp_duration_s
        self._server = ActionServer(
            self, Fibonacci, name, execute_callback=self._execute,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda handle: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup())
        self.get_logger().info(f'simulated grasp server on {name} ({self.duration:g} s per grasp)')

    def _execute(self, handle):
        order = int(handle.request.order)
        fb = Fibonacci.Feedback()
        t_end = time.monotonic() + self.duration
        while time.monotonic() < t_end:
            if handle.is_cancel_requested:
                handle.canceled()
                self.get_logger().info('grasp canceled')
                return Fibonacci.Result(sequence=fb.sequence)
            fb.sequence = list(fb.sequence) + [len(fb.sequence)]
            handle.publish_feedback(fb)
            time.sleep(min(0.1, max(0.0, t_end - time.monotonic())))
        if order < 0:
            handle.abort()
            self.get_logger().info('grasp aborted')
        else:
            handle.succeed()
            self.get_logger().info('grasp succeeded')
        return Fibonacci.Result(sequence=fb.sequence)


def main(argv=None):
    """Run ``sim_grasp_server`` until SIGINT; returns the exit code (2 on invalid parameters)."""
    return run_node('sim_grasp_server', SimGraspServer, argv,
                    make_executor=lambda: MultiThreadedExecutor(num_threads=2))


if __name__ == '__main__':
    sys.exit(main())
