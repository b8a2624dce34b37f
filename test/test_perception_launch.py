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
launch_testing: the installed perception.launch.py (sim:=true, namespace:=perception).

Runs the launch file of the package installed in an ament prefix (``make build``: colcon into
build/install; on a robot: colcon build and source install/setup.bash) with the simulated camera
and grasp server, a random-weight ``fast`` model and a temporary dataset root, then asserts:
labels arrive as 640x480 mono8 in the namespace, a grasp leaves a complete episode on disk, the
SAM worker writes masks for a frame of it, the nodes read their parameter files from the installed
``share/sam2real/config``, and every process exits cleanly. Where sam2real is not installed in
an ament prefix the test is skipped with that reason; test_perception_system.py covers the same
scenario with plain processes.
"""
import atexit
import os
import shutil
import sys
import tempfile
import time
import unittest

from conftest import installed_package, REPO, send_grasp
import pytest

# Check launch_testing first: the repo's own launch/ folder would import as a namespace package.
launch_testing = pytest.importorskip(
    'launch_testing', reason='launch_testing is missing: no ROS 2 distro sourced and the launch '
    'wheels of ../shared/ros2-launch not installed (make setup installs them)')
launch_ros = pytest.importorskip('launch_ros', reason='launch_ros is missing (see launch_testing)')
# I100: these must follow the importorskip calls, so they cannot sort after pytest.
import launch  # noqa: E402, I100
from launch.actions import IncludeLaunchDescription, SetEnvironmentVariable  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402

NAMESPACE = 'perception'
# No module-level pytest.skip here: launch_testing's plugin imports every test module while
# collecting the folder, and a module-level skip would skip the whole folder.
SHARE, PYTHONPATH = installed_package()


_WORKDIR = []


def _workdir():
    """
    Return the test's temporary folder with a random-weight model, removed at exit.

    launch_testing may call generate_test_description more than once; all calls share it.
    """
    if not _WORKDIR:
        tmp = tempfile.mkdtemp(prefix='sam2real_launch_test_')
        atexit.register(shutil.rmtree, tmp, True)
        from sam2real_ros.inference import export
        assert export.main(['--random', '--profile', 'fast', '--no-verify', '--classes',
                            'bg,a,b,c', '--out', os.path.join(tmp, 'model.onnx')]) == 0
        _WORKDIR.append(tmp)
    return _WORKDIR[0]


@pytest.mark.launch_test
@pytest.mark.rostest
@pytest.mark.skipif(SHARE is None, reason=str(PYTHONPATH))
def generate_test_description():
    tmp = _workdir()
    model = os.path.join(tmp, 'model.onnx')
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(SHARE, 'launch', 'perception.launch.py')),
        launch_arguments={'sim': 'true', 'namespace': NAMESPACE,
                          'dataset_root': os.path.join(tmp, 'data'),
                          'model_path': model}.items())
    return launch.LaunchDescription([
        # the installed executables import the installed package, as after sourcing its prefix
        SetEnvironmentVariable('PYTHONPATH', PYTHONPATH),
        include, launch_testing.actions.ReadyToTest()]), {'tmp': tmp}


class TestPerception(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        import rclpy
        rclpy.init()
        cls.node = rclpy.create_node('perception_launch_test')

    @classmethod
    def tearDownClass(cls):
        import rclpy
        cls.node.destroy_node()
        rclpy.try_shutdown()

    def _spin_until(self, predicate, timeout):
        import rclpy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            rclpy.spin_once(self.node, timeout_sec=0.1)
        return predicate()

    def test_labels_episode_and_masks(self, tmp):
        from action_msgs.msg import GoalStatus
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.action import ActionClient
        from sam2real_ros.nodes.graph import GRASP_ACTION
        from sensor_msgs.msg import Image
        from test_msgs.action import Fibonacci

        labels = []
        self.node.create_subscription(Image, f'/{NAMESPACE}/segmentation_node/labels',
                                      labels.append, 10)
        self.assertTrue(self._spin_until(lambda: labels, 120.0), 'no label image arrived')
        self.assertEqual((labels[0].width, labels[0].height, labels[0].encoding),
                         (640, 480, 'mono8'))

        # The recorder must hear the grasp: wait until its status reader has matched the grasp
        # server (its own diagnostics; under load that takes seconds, and a grasp sent before is
        # heard late or, once ended, not at all).
        unmatched = []

        def on_diagnostics(msg):
            unmatched.extend(kv.value for st in msg.status if st.name.startswith('grasp_recorder')
                             for kv in st.values if kv.key == 'actions_unmatched')
        self.node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
        self.assertTrue(self._spin_until(lambda: unmatched and unmatched[-1] == '', 60.0),
                        f'the recorder does not hear the grasp server: {unmatched[-1:]}')
        client = ActionClient(self.node, Fibonacci, GRASP_ACTION)
        _, status = send_grasp(client, Fibonacci.Goal(order=3), wait=self._spin_until)
        self.assertEqual(status, GoalStatus.STATUS_SUCCEEDED)

        from sam2real_ros.recording import episode_store
        from sam2real_ros.sam.mask_store import MaskStore
        data = os.path.join(tmp, 'data')

        def frames():
            return list(episode_store.iter_frames(data, complete_only=True))
        self.assertTrue(self._spin_until(frames, 60.0), 'no complete episode was recorded')
        store = MaskStore(os.path.join(data, 'masks'))

        def segmented():  # one frame is enough (each takes ~1 s of CPU at nice 10)
            return [f.key for f in frames() if store.status(f.key) == 'done']
        self.assertTrue(self._spin_until(segmented, 300.0),
                        'the SAM worker segmented no frame of the episode')
        record = store.read(segmented()[0])
        self.assertEqual(record.masks().shape[1:], (480, 640))

    def test_pause_stays_paused_until_resumed(self):
        """
        Deactivate under ros2 launch is a pause that lasts (#21): no labels, still inactive.

        The launch's autostart once re-activated a node ~35 ms after every deactivate.
        """
        from sam2real_ros.nodes.lifecycle import LifecycleClient
        from sensor_msgs.msg import Image

        labels = []
        self.node.create_subscription(Image, f'/{NAMESPACE}/segmentation_node/labels',
                                      labels.append, 10)
        self.assertTrue(self._spin_until(lambda: labels, 120.0), 'no label image arrived')
        clients = [LifecycleClient(self.node, f'/{NAMESPACE}/{name}')
                   for name in ('segmentation_node', 'sam_worker')]

        def call(future, timeout=120.0):
            self.assertTrue(self._spin_until(future.done, timeout), 'no service response')
            return future.result()

        def states():
            return [call(c.state_async(), 30.0).current_state.label for c in clients]

        for client in clients:
            self.assertTrue(call(client.transition_async('deactivate')).success, client.target)
        self.assertEqual(states(), ['inactive', 'inactive'])
        self._spin_until(lambda: False, 0.5)  # a label published before the pause may arrive
        count = len(labels)
        self._spin_until(lambda: len(labels) > count, 3.0)
        self.assertEqual(len(labels), count, 'labels arrived while segmentation_node was paused')
        self.assertEqual(states(), ['inactive', 'inactive'], 'a paused node became active')

        for client in clients:
            self.assertTrue(call(client.transition_async('activate')).success, client.target)
        self.assertEqual(states(), ['active', 'active'])
        self.assertTrue(self._spin_until(lambda: len(labels) > count, 120.0),
                        'no label image after resume')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_exit_codes(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0])

    def test_installed_parameter_files_were_used(self, proc_info):
        from sam2real_ros.nodes import graph, param_docs
        started = [n for n in graph.NODES if n.switch != 'adaptation']  # off by default
        commands = [' '.join(info.cmd) for info in proc_info]
        config = os.path.join(SHARE, 'config')
        for node in started:
            if node.params_file:
                path = os.path.join(config, node.params_file)
                self.assertTrue(any(f'--params-file {path}' in c for c in commands),
                                f'{node.name} did not read {path}: {commands}')
        # the installed files are the ones the PARAMETERS tables generate
        expected = param_docs.generated_files(REPO)
        for node in started:
            if node.params_file:
                with open(os.path.join(config, node.params_file)) as f:
                    self.assertEqual(f.read(),
                                     expected[os.path.join(REPO, 'config', node.params_file)])


if __name__ == '__main__':  # pragma: no cover
    sys.exit(pytest.main([__file__]))
