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
Drive a lifecycle node from another node: the simple way for a grasp pipeline to pause the SAM.

The ``sam_worker`` (and the ``segmentation_node``) are rclpy lifecycle nodes. Pausing the SAM
worker is its ``deactivate`` transition: it finishes the frame in progress, stops and frees its
model (GPU memory too), so the robot's own GPU work has the device; ``activate`` loads the model
again and goes on where it stopped. From a grasp pipeline::

    from sam2real_ros.nodes.lifecycle import LifecycleClient
    sam = LifecycleClient(node, '/sam_worker')   # node: spun by an executor in another thread
    sam.pause()                                  # deactivate; True once it is inactive
    ...                                          # grasp
    sam.resume()                                 # activate

or from a shell (lifecycle_msgs/Transition ids: 3 activate, 4 deactivate)::

    ros2 service call /sam_worker/change_state lifecycle_msgs/srv/ChangeState \
        "{transition: {id: 4}}"

The blocking calls wait for the service responses, so the client's node must be spun by an
executor on another thread (not from inside one of its own callbacks on a single-threaded
executor); the ``*_async`` variants return the future instead.
"""
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

TRANSITIONS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'cleanup': Transition.TRANSITION_CLEANUP,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
}


def _wait(future, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    return future.result() if future.done() else None


class LifecycleClient:
    """
    ``get_state`` and ``change_state`` of the lifecycle node ``target``.

    Arguments:
    ---------
      node (rclpy.node.Node): the calling node (spun elsewhere, see the module docstring).
      target (str): the lifecycle node's full name, e.g. ``/sam_worker``.

    """

    def __init__(self, node, target):
        self.node = node
        self.target = target.rstrip('/')
        self._get = node.create_client(GetState, f'{self.target}/get_state')
        self._change = node.create_client(ChangeState, f'{self.target}/change_state')

    def state(self, timeout_s=10.0):
        """Return the target's state label (``unconfigured``, ``inactive``, ``active``, ...)."""
        if not self._get.wait_for_service(timeout_sec=timeout_s):
            return None
        resp = _wait(self._get.call_async(GetState.Request()), timeout_s)
        return resp.current_state.label if resp is not None else None

    def transition_async(self, name):
        """Request transition ``name`` (a key of :data:`TRANSITIONS`); returns the future."""
        req = ChangeState.Request()
        req.transition.id = TRANSITIONS[name]
        return self._change.call_async(req)

    def transition(self, name, timeout_s=120.0):
        """
        Request transition ``name`` and wait; returns True when the node made it.

        ``deactivate`` of the SAM worker returns once the frame in progress is stored (seconds
        with the fallback or SAM on a GPU, up to a minute with SAM on a CPU).
        """
        if not self._change.wait_for_service(timeout_sec=min(timeout_s, 10.0)):
            return False
        resp = _wait(self.transition_async(name), timeout_s)
        return bool(resp is not None and resp.success)

    def pause(self, timeout_s=120.0):
        """Deactivate the target (True when it is inactive afterwards, also if it was)."""
        return self.transition('deactivate', timeout_s) or self.state() == 'inactive'

    def resume(self, timeout_s=120.0):
        """Activate the target (True when it is active afterwards, also if it was)."""
        return self.transition('activate', timeout_s) or self.state() == 'active'

    def destroy(self):
        """Destroy the two service clients."""
        self.node.destroy_client(self._get)
        self.node.destroy_client(self._change)
