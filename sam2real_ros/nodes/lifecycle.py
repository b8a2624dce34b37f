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
sam2real's lifecycle nodes: their one base class, and a client that pauses and resumes them.

:class:`ManagedNode` is the base of ``sam_worker`` and ``segmentation_node`` (the pattern of
yolo_ros' ``yolo_node``): parameters are declared in ``__init__`` (from the node's
``PARAMETERS`` table), the model is loaded in ``configure``/``activate`` and freed in
``deactivate``. The base owns the lifecycle state shown in ``/diagnostics``, the log line
around each transition, the failure rule (a transition that raises is logged in one line,
undone, and returns FAILURE: the node stays in the state it was in), the ``autostart``
parameter (configure and activate right after start, without a lifecycle manager) and one
level-dispatch logger :meth:`ManagedNode.log` (``'error'``, ``'warn'``/``'warning'``,
``'info'``).

Driving a lifecycle node from another node is the simple way for a grasp pipeline to pause the
SAM.

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
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from sam2real_ros.nodes import params

TRANSITIONS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'cleanup': Transition.TRANSITION_CLEANUP,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
}


AUTOSTART = params.Param(
    'autostart', False, 'lifecycle node: configure and activate right after start, without a '
    'lifecycle manager (plain processes; the launch file does the transitions itself unless its '
    'autostart:=false)')
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class ManagedNode(LifecycleNode):
    """
    Base of the sam2real lifecycle nodes: state, transitions, autostart and logging.

    A subclass passes its parameter table (which holds :data:`AUTOSTART`) and implements the
    hooks :meth:`configure`, :meth:`activate`, :meth:`deactivate` and :meth:`cleanup`; each
    returns the line logged after it succeeded (or None for the default) and raises on failure.
    It calls :meth:`start_lifecycle` at the end of its ``__init__``.

    Arguments:
    ---------
      name (str): the node name.
      table (dict): the node's ``PARAMETERS`` (:func:`sam2real_ros.nodes.params.schema`).
      **kwargs: passed to ``rclpy.lifecycle.LifecycleNode``.

    """

    def __init__(self, name, table, **kwargs):
        super().__init__(name, **kwargs)
        self.p = params.declare(self, table, on_change=self.on_parameter)
        self.lifecycle_state = 'unconfigured'
        self.error = ''  # the last failed transition, '' after a successful one
        self._autostart = None

    def start_lifecycle(self):
        """With ``autostart``, configure and activate at the first spin; else say it waits."""
        if self.p.autostart:
            self._autostart = self.create_timer(0.0, self._start_now)
        else:
            self.log('info', 'unconfigured: waiting for the lifecycle transitions configure '
                     'and activate (or set autostart:=true)')

    def _start_now(self):
        self.destroy_timer(self._autostart)
        self._autostart = None
        if self.trigger_configure() == SUCCESS:
            self.trigger_activate()

    def log(self, level, text):
        """Log ``text`` at ``level`` (``error``, ``warn`` or ``warning``, else info)."""
        # one call site per severity: rclpy's logger refuses a new severity at the same site
        logger = self.get_logger()
        if level == 'error':
            logger.error(text)
        elif level in ('warn', 'warning'):
            logger.warning(text)
        else:
            logger.info(text)

    # --- the subclass's hooks ------------------------------------------------------------------
    def on_parameter(self, name, value):
        """Accept the new value of a ``read_only=False`` parameter (already in ``self.p``)."""

    def configure(self):
        """Load what the node needs and create its publishers."""

    def activate(self):
        """Load what deactivate freed and start working."""

    def deactivate(self):
        """Stop working and free the model (GPU memory too)."""

    def cleanup(self):
        """Release everything configure made (also after a failed configure)."""

    # --- rclpy's transition callbacks ----------------------------------------------------------
    def _run(self, what, hook, undo, state, default_line):
        try:
            line = hook()
        except Exception as exc:  # rclpy swallows exceptions in transitions: say what failed
            self.error = f'{what} failed: {type(exc).__name__}: {exc}'
            self.log('error', self.error)
            try:
                undo()
            except Exception as undo_exc:
                self.log('error', f'undoing {what}: {type(undo_exc).__name__}: {undo_exc}')
            return FAILURE
        self.error = ''
        self.lifecycle_state = state
        self.log('info', line or default_line)
        return SUCCESS

    def on_configure(self, state):
        """Run :meth:`configure`; inactive after it, unconfigured (cleaned up) if it fails."""
        return self._run('configure', self.configure, self.cleanup, 'inactive', 'configured')

    def on_activate(self, state):
        """Run :meth:`activate`, then activate the lifecycle publishers."""
        result = self._run('activate', self.activate, self.deactivate, 'active', 'active')
        return super().on_activate(state) if result == SUCCESS else result

    def on_deactivate(self, state):
        """Run :meth:`deactivate`, then deactivate the lifecycle publishers."""
        result = self._run('deactivate', self.deactivate, lambda: None, 'inactive', 'inactive')
        return super().on_deactivate(state) if result == SUCCESS else result

    def on_cleanup(self, state):
        """Run :meth:`cleanup` (back to unconfigured)."""
        return self._run('cleanup', self.cleanup, lambda: None, 'unconfigured', 'cleaned up')

    def on_shutdown(self, state):
        """Release everything (the process goes on until it is ended)."""
        self.cleanup()
        self.lifecycle_state = 'finalized'
        return SUCCESS

    def on_error(self, state):
        """Release everything after an error; the node goes back to unconfigured."""
        self.cleanup()
        self.lifecycle_state = 'unconfigured'
        return SUCCESS


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

    def state_async(self):
        """Request the target's state; returns the future (``result().current_state.label``)."""
        return self._get.call_async(GetState.Request())

    def state(self, timeout_s=10.0):
        """Return the target's state label (``unconfigured``, ``inactive``, ``active``, ...)."""
        if not self._get.wait_for_service(timeout_sec=timeout_s):
            return None
        resp = _wait(self.state_async(), timeout_s)
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
