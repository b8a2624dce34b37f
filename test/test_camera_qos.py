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

"""The camera QoS helper (nodes/qos.py) against best-effort and reliable publishers."""
import threading

from conftest import wait_until
import pytest

rclpy = pytest.importorskip('rclpy')
# I100: these must follow the importorskip, so they cannot all sort after pytest.
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402, I100
from sam2real_ros.nodes import qos  # noqa: E402
from sam2real_ros.nodes.qos import CameraSubscription  # noqa: E402
from sam2real_ros.nodes.runner import BackgroundNode  # noqa: E402
from std_msgs.msg import String  # noqa: E402


class Subscriber:
    """A node with one CameraSubscription on ``topic``, spun in its own context."""

    def __init__(self, topic, reliability):
        self.ros = BackgroundNode('qos_test_sub')
        self.got = []
        self.lock = threading.Lock()
        # create it on the spinning thread's node; its timers run there too
        self.cam = CameraSubscription(self.ros.node, String, topic, self._on_msg, reliability,
                                      depth=5, poll_s=0.05)

    def _on_msg(self, msg):
        with self.lock:
            self.got.append(msg.data)

    def received(self, prefix):
        with self.lock:
            return [d for d in self.got if d.startswith(prefix)]


def _publisher(node, topic, policy):
    pub = node.create_publisher(String, topic, QoSProfile(depth=5, reliability=policy))
    return lambda text: pub.publish(String(data=text))


@pytest.fixture(params=[True, False], ids=['best_available', 'first_publisher'])
def publisher_node(request, monkeypatch):
    """
    Yield a publishing node; the subscriber's ``auto`` runs with and without BEST_AVAILABLE.

    Distros before Iron have no BEST_AVAILABLE: ``auto`` then matches the reliability the first
    publishers offer (the fallback), which this rclpy would never use by itself.
    """
    if not request.param:
        monkeypatch.setattr(qos, 'HAS_BEST_AVAILABLE', False)
    elif not qos.HAS_BEST_AVAILABLE:
        pytest.skip('this rclpy has no ReliabilityPolicy.BEST_AVAILABLE (before Iron)')
    ros = BackgroundNode('qos_test_pub')
    yield ros.node
    ros.close()


@pytest.mark.rostest
@pytest.mark.parametrize('policy,expected', [(ReliabilityPolicy.BEST_EFFORT, 'best_effort'),
                                             (ReliabilityPolicy.RELIABLE, 'reliable')])
def test_auto_matches_a_best_effort_or_a_reliable_publisher(publisher_node, policy, expected):
    topic = f'/qos_test/{expected}'
    publish = _publisher(publisher_node, topic, policy)
    sub = Subscriber(topic, 'auto')
    try:
        assert wait_until(lambda: sub.cam.sub is not None, 15)
        assert sub.cam.reliability == expected
        # BEST_AVAILABLE itself where rclpy has it, else the publisher's own reliability
        want = ReliabilityPolicy.BEST_AVAILABLE if qos.HAS_BEST_AVAILABLE else policy
        assert sub.cam.sub.qos_profile.reliability == want
        assert wait_until(lambda: (publish('a'), sub.received('a'))[1], 15)
    finally:
        sub.ros.close()


@pytest.mark.rostest
def test_auto_waits_for_the_first_publisher_then_follows_a_best_effort_one(publisher_node):
    topic = '/qos_test/late'
    sub = Subscriber(topic, 'auto')  # no publisher yet: waits instead of guessing
    try:
        assert sub.cam.sub is None and sub.cam.reliability is None
        publish_reliable = _publisher(publisher_node, topic, ReliabilityPolicy.RELIABLE)
        assert wait_until(lambda: sub.cam.reliability == 'reliable', 15)
        assert wait_until(lambda: (publish_reliable('r'), sub.received('r'))[1], 15)
        # a best-effort-only publisher appears: the reliable subscription cannot match it
        publish_best_effort = _publisher(publisher_node, topic, ReliabilityPolicy.BEST_EFFORT)
        assert wait_until(lambda: sub.cam.reliability == 'best_effort', 15)
        assert wait_until(lambda: (publish_best_effort('b'), sub.received('b'))[1], 15)
        assert wait_until(lambda: (publish_reliable('r2'), sub.received('r2'))[1], 15)
    finally:
        sub.ros.close()


@pytest.mark.rostest
def test_explicit_reliable_does_not_match_a_best_effort_publisher(publisher_node):
    topic = '/qos_test/explicit'
    publish = _publisher(publisher_node, topic, ReliabilityPolicy.BEST_EFFORT)
    sub = Subscriber(topic, 'reliable')
    try:
        assert sub.cam.reliability == 'reliable'
        for _ in range(20):
            publish('x')
            wait_until(lambda: False, 0.05)
        assert sub.received('x') == []
    finally:
        sub.ros.close()


def test_unknown_reliability_is_refused():
    with pytest.raises(ValueError, match='qos_reliability'):
        CameraSubscription(None, String, 'image', print, 'sometimes')
