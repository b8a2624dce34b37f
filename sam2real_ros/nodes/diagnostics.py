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
``/diagnostics`` for every node: one ``DiagnosticStatus`` per node, published periodically.

The node gives a function returning ``(level, message, values)``; :class:`Diagnostics` builds
the ``diagnostic_msgs/DiagnosticArray`` (stamped, values as strings) and publishes it every
``period_s`` on ``/diagnostics``, where robot diagnostic aggregators listen.
"""
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
          'error': DiagnosticStatus.ERROR, 'stale': DiagnosticStatus.STALE}


def diagnostic_array(stamp, name, level, message, values, hardware_id=''):
    """
    Build a DiagnosticArray holding one status.

    Arguments:
    ---------
      stamp (builtin_interfaces.msg.Time): header stamp.
      name (str): status name (``'<node>: <what>'``).
      level (str): ``'ok'``, ``'warn'``, ``'error'`` or ``'stale'``.
      message (str): one-line summary.
      values (dict): key -> value (converted with ``str``).
      hardware_id (str): what the status is about (a folder, the node's name).

    Returns
    -------
      diagnostic_msgs.msg.DiagnosticArray: stamped, one status.

    """
    status = DiagnosticStatus(level=LEVELS[level], name=name, message=message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=str(k), value=str(v))
                                      for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg


class Diagnostics:
    """
    Publish ``status_fn()`` on ``/diagnostics`` every ``period_s`` seconds.

    Arguments:
    ---------
      node (rclpy.node.Node): the publishing node.
      name (str): status name.
      period_s (float): publishing period.
      status_fn (callable): returns ``(level, message, values)`` (see :func:`diagnostic_array`).
      hardware_id (str): the status's ``hardware_id`` (default: the node's full name).

    """

    def __init__(self, node, name, period_s, status_fn, hardware_id=None):
        self.node, self.name, self.status_fn = node, name, status_fn
        self.hardware_id = node.get_fully_qualified_name() if hardware_id is None \
            else hardware_id
        self.pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.timer = node.create_timer(period_s, self.publish)

    def publish(self):
        """Publish the current status now."""
        level, message, values = self.status_fn()
        self.pub.publish(diagnostic_array(self.node.get_clock().now().to_msg(), self.name,
                                          level, message, values, self.hardware_id))
