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
A real camera process stopped and restarted under both camera nodes, Ctrl-C to each (#14, #11).

sim_camera, segmentation_node and grasp_recorder run as separate processes over real DDS (each
in its own process group, as a terminal or ``ros2 launch`` starts them). The camera is ended
with SIGINT to its process group: both nodes must report WARN ``no camera frames for N s``
after ``camera_timeout_s`` (the same parameter in both) with their camera rate measured up to
now falling to 0, and OK again once a new camera process publishes. Then SIGINT goes to the
process group of the segmentation node while it segments and of the recorder while it records
an episode: every process exits 0 and prints no traceback.
"""
import signal

from conftest import wait_until
import pytest

rclpy = pytest.importorskip('rclpy')
# I100: the ROS imports must follow the importorskip.
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402, I100
from sam2real_ros.nodes.graph import node_command  # noqa: E402
from sam2real_ros.recording import episode_store  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from test_segmentation_node import Listener  # noqa: E402

OK, WARN = DiagnosticStatus.OK, DiagnosticStatus.WARN
TIMEOUT_S = 1.5


def ctrl_c(processes, proc, timeout=20.0):
    """SIGINT to the process group (a terminal's Ctrl-C); return (exit code, log)."""
    code = processes.stop(proc, sig=signal.SIGINT, timeout=timeout, group=True)
    return code, processes.output(proc)


def assert_clean(code, log):
    assert code == 0 and 'Traceback' not in log and 'RCLError' not in log, (code, log)


@pytest.mark.rostest
def test_camera_stopped_and_restarted_then_ctrl_c_to_each_node(processes, tiny_models,
                                                               tmp_path):
    lis = Listener()
    try:
        lis.listen(DiagnosticArray, '/diagnostics')
        lis.listen(Image, '/segmentation_node/labels')

        def camera():
            return processes.start(*node_command('sim_camera', {'rate_hz': 15.0},
                                                 params_file=False), name='camera')

        def seg():
            return lis.status('segmentation_node')

        def rec():
            return lis.status('grasp_recorder')

        cam = camera()
        node = processes.start(*node_command(
            'segmentation_node', {'model_path': str(tiny_models[3]),
                                  'camera_timeout_s': TIMEOUT_S, 'diagnostics_period_s': 0.2},
            params_file=False), name='node')
        recorder = processes.start(*node_command(
            'grasp_recorder', {'dataset_root': str(tmp_path / 'data'), 'action_names': [''],
                               'camera_timeout_s': TIMEOUT_S, 'diagnostics_period_s': 0.2,
                               'min_free_gb': 0.0, 'before_s': 0.5, 'after_s': 0.5},
            params_file=False), name='recorder')
        assert wait_until(lambda: seg()[0] == OK and float(seg()[2].get('rate_hz', 0)) > 2, 90), \
            (seg(), processes.output(node))
        assert wait_until(lambda: rec()[:2] == (OK, 'idle')
                          and float(rec()[2]['camera_rate_hz']) > 2, 30), \
            (rec(), processes.output(recorder))

        # The camera process gets Ctrl-C: it ends cleanly, both nodes notice.
        assert_clean(*ctrl_c(processes, cam))
        for status in (seg, rec):
            assert wait_until(lambda: status()[0] == WARN, 20), status()
            level, message, _ = status()
            assert message.startswith('no camera frames for ') and message.endswith(' s'), \
                message
        assert float(seg()[2]['last_frame_age_s']) >= TIMEOUT_S
        assert float(rec()[2]['camera_age_s']) >= TIMEOUT_S
        # Rates measured up to now: both fall to 0 within their 5 s window, still WARN.
        assert wait_until(lambda: float(seg()[2]['rate_hz']) == 0.0
                          and float(seg()[2]['camera_hz']) == 0.0
                          and float(rec()[2]['camera_rate_hz']) == 0.0, 20), (seg(), rec())
        assert seg()[0] == WARN and rec()[0] == WARN

        cam = camera()  # a new camera process: both back to OK
        assert wait_until(lambda: seg()[0] == OK and rec()[:2] == (OK, 'idle'), 60), \
            (seg(), rec(), processes.output(node), processes.output(recorder))

        # Ctrl-C while segmenting: labels are flowing right now.
        count = len(lis.got('/segmentation_node/labels'))
        assert wait_until(lambda: len(lis.got('/segmentation_node/labels')) > count + 2, 30)
        assert_clean(*ctrl_c(processes, node))
        # Ctrl-C while recording an episode: it is closed (end_reason shutdown), exit 0.
        resp = lis.call(Trigger, '/grasp_recorder/start', Trigger.Request())
        assert resp is not None and resp.success, resp
        assert wait_until(lambda: rec()[1].startswith('recording'), 10), rec()
        assert_clean(*ctrl_c(processes, recorder))
        episodes = episode_store.list_episodes(tmp_path / 'data')
        assert [ep['end_reason'] for ep in episodes] == ['shutdown'], episodes
        assert_clean(*ctrl_c(processes, cam))
    finally:
        lis.close()
