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
Camera subscriptions that work with best-effort and reliable camera drivers alike.

Every camera subscription of every node goes through :class:`CameraSubscription`, configured by
the same two parameters (:func:`camera_qos_parameters`): ``qos_reliability`` and ``qos_depth``.

``qos_reliability``:

- ``auto`` (no configuration needed): the subscription is created once the first publisher of
  the topic is seen, with ``BEST_AVAILABLE`` reliability where the distro's rclpy has it
  (Iron and newer; it matches reliable publishers reliably and best-effort ones best-effort)
  and otherwise with the reliability the publishers offer (best-effort if any offers only
  that). Should a best-effort-only publisher appear later while the subscription is reliable,
  the requested-incompatible-QoS event re-creates it best-effort.
- ``best_effort``: matches every publisher; the newest-frame choice (no retransmissions). Over
  Fast DDS defaults, best-effort 640x480 rgb8 loses frames unless the shared-memory segment is
  raised (/work/shared/MEASURED.md, docs/segmentation_node.md).
- ``reliable``: no loss, but does not match a best-effort-only publisher.

Goal-status subscriptions (:func:`goal_status_qos`) keep what an action server offers
(reliable, transient local) but a deeper reader history than its depth 1.
"""
from rclpy.qos import HistoryPolicy, qos_profile_action_status_default, QoSProfile
from rclpy.qos import ReliabilityPolicy
from sam2real_ros.nodes.params import Param

RELIABILITIES = ('auto', 'best_effort', 'reliable')
HAS_BEST_AVAILABLE = hasattr(ReliabilityPolicy, 'BEST_AVAILABLE')
GOAL_STATUS_DEPTH = 100


def goal_status_qos(depth=GOAL_STATUS_DEPTH):
    """
    Return the QoS of a subscription to ``<action>/_action/status``.

    The action server's status writer is reliable and transient local with depth 1 (rcl's
    default): a late joiner gets the newest array only. A reader of depth 1 as well loses every
    array but the newest one that arrived while its executor was busy, so a grasp that ended
    within one stall (a loaded machine) was first seen already SUCCEEDED and ignored (#21). The
    reader keeps ``depth`` arrays until its callback takes them; durability and reliability stay
    the server's, so it matches every action server.
    """
    base = qos_profile_action_status_default
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=base.reliability, durability=base.durability)


def camera_qos_parameters(reliability='auto', depth=1):
    """
    Return the two camera QoS parameters with a node's defaults (one name in every node).

    Arguments:
    ---------
      reliability (str): default of ``qos_reliability`` (one of :data:`RELIABILITIES`).
      depth (int): default of ``qos_depth`` (keep-last queue depth).

    Returns
    -------
      tuple: the two :class:`~sam2real_ros.nodes.params.Param` entries.

    """
    return (
        Param('qos_reliability', reliability,
              'camera subscriptions: auto (match the publishers: BEST_AVAILABLE where rclpy '
              'has it), best_effort (matches any publisher) or reliable',
              one_of=RELIABILITIES),
        Param('qos_depth', depth, 'keep-last queue depth of the camera subscriptions',
              bounds=(1, 100)),
    )


def _policy(name):
    return ReliabilityPolicy.RELIABLE if name == 'reliable' else ReliabilityPolicy.BEST_EFFORT


class CameraSubscription:
    """
    A camera subscription with the QoS chosen by ``qos_reliability`` (see the module docstring).

    Arguments:
    ---------
      node (rclpy.node.Node): the subscribing node.
      msg_type: message class (``sensor_msgs.msg.Image``, ``CameraInfo``, ...).
      topic (str): topic name, relative (``image``) so that it is remapped.
      callback (callable): message callback.
      reliability (str): ``auto``, ``best_effort`` or ``reliable``.
      depth (int): keep-last depth.
      poll_s (float): how often ``auto`` looks for the first publisher.

    ``self.reliability`` is ``None`` until subscribed, then the reliability in effect,
    ``'reliable'`` or ``'best_effort'``; ``self.topic`` is the resolved (remapped) topic name.

    """

    def __init__(self, node, msg_type, topic, callback, reliability='auto', depth=1,
                 poll_s=0.2):
        if reliability not in RELIABILITIES:
            raise ValueError(f'parameter qos_reliability={reliability!r} must be one of '
                             f'{", ".join(RELIABILITIES)}')
        self.node, self.msg_type, self.callback, self.depth = node, msg_type, callback, depth
        self.topic = node.resolve_topic_name(topic)
        self.reliability = None
        self.sub = None
        self._timer = None
        self._auto = reliability == 'auto'
        if reliability != 'auto':
            self._subscribe(reliability)
        elif self._publishers():
            self._subscribe_auto()
        else:
            node.get_logger().info(f'qos_reliability=auto: waiting for a publisher on '
                                   f'{self.topic} to match its reliability')
            self._timer = node.create_timer(poll_s, self._poll)

    def _publishers(self):
        return self.node.get_publishers_info_by_topic(self.topic)

    def _poll(self):
        if self.sub is None and self._publishers():
            self.node.destroy_timer(self._timer)
            self._timer = None
            self._subscribe_auto()

    def _offered(self):
        """Return the reliability the current publishers allow: best_effort if any needs it."""
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for i in self._publishers())
        return 'best_effort' if best_effort else 'reliable'

    def _subscribe_auto(self):
        self._subscribe('best_available' if HAS_BEST_AVAILABLE else self._offered())

    def _subscribe(self, mode):
        from rclpy.event_handler import SubscriptionEventCallbacks
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
        if mode == 'best_available':
            policy = ReliabilityPolicy.BEST_AVAILABLE
            self.reliability = self._offered()  # what BEST_AVAILABLE resolves to now
        else:
            policy, self.reliability = _policy(mode), mode
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.depth, reliability=policy)
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible)
        self.sub = self.node.create_subscription(self.msg_type, self.topic, self.callback, qos,
                                                 event_callbacks=events)
        how = f'{mode} -> {self.reliability}' if mode != self.reliability else mode
        self.node.get_logger().info(f'subscribed to {self.topic} ({how}, depth {self.depth})')

    def _on_incompatible(self, info):
        # Only 'auto' follows the publishers; an explicit choice is kept (rclpy warns).
        # The subscription is re-created from a timer, not inside its own event callback.
        if self._auto and self.reliability == 'reliable' and self._timer is None:
            self.node.get_logger().warning(
                f'a publisher on {self.topic} offers an incompatible QoS (best-effort only): '
                're-subscribing best_effort')
            self._timer = self.node.create_timer(0.0, self._downgrade)
        elif not self._auto:
            self.node.get_logger().warning(
                f'a publisher on {self.topic} offers a QoS incompatible with '
                f'qos_reliability={self.reliability}: no messages from it (set qos_reliability '
                'to auto or best_effort)', throttle_duration_sec=60.0)

    def _downgrade(self):
        self.node.destroy_timer(self._timer)
        self._timer = None
        self._subscribe('best_effort')

    def destroy(self):
        """Destroy the subscription (and the waiting timer)."""
        if self._timer is not None:
            self.node.destroy_timer(self._timer)
            self._timer = None
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
            self.sub = None
