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
One ``main()`` for every sam2real node: init, spin, clean exit codes.

SIGINT (Ctrl-C, ``ros2 launch`` shutdown) and an external shutdown end the node with exit code
0 and no traceback, also when the SIGINT arrives twice (Ctrl-C in a terminal signals the
whole process group, and ``ros2 launch`` forwards it once more): further SIGINTs are ignored
while the node cleans up (SIGTERM and SIGKILL still end it). A configuration error raised
while the node is built (invalid parameter, missing folder, unknown segmenter, ...) or a bad
``--params-file`` prints one line ``<name>: <problem>`` to stderr and exits with 2 -- never a
traceback. ``--help`` (before ``--ros-args``) prints the node's parameter table and exits 0.

The node's optional ``shutdown()`` (stop worker threads) runs before ``destroy_node()``; when
it returns False (a worker thread is still in its work, e.g. a long SAM frame), the process
ends with ``os._exit`` after the ROS clean-up, never through Python's finalization (which
aborts a thread that is inside C++ code: SIGABRT).
Shutdown is bounded: once the clean-up starts, SIGTERM ends the process at once (rclpy's own
handler would only request a shutdown again), and a clean-up that has not finished after
:data:`CLEANUP_LIMIT_S` (a call blocked in DDS or in a worker) prints one line and where it was
stuck, then ends the process with exit code 1 (``ros2 launch`` escalates to SIGTERM later).
"""
import faulthandler
import os
import re
import signal
import sys
import threading
import time

import rclpy
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import ExternalShutdownException
from sam2real_ros.common.io_utils import read_yaml
from sam2real_ros.nodes.param_docs import help_text
try:
    from rclpy.exceptions import RCLError
except ImportError:  # older rclpy: the pybind11 module's exception
    from rclpy._rclpy_pybind11 import RCLError
try:  # rclpy exports it only from its pybind11 module
    from rclpy._rclpy_pybind11 import UnknownROSArgsError
except ImportError:
    UnknownROSArgsError = RCLError

CLEANUP_LIMIT_S = 10.0
# rclpy's SIGINT handler shuts the contexts down from a thread of its own, so the context may
# still be ok for a moment after the KeyboardInterrupt: wait up to this long for it (#21)
SIGINT_SHUTDOWN_WAIT_S = 3.0
CONFIG_ERRORS = (ValueError, ParameterException, InvalidParameterValueException, OSError)


def _rcl_problem(exc):
    """Return the first line of an RCLError without rcl's source locations."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r',? at \S+:\d+', '', text)


def _has_ros_parameters(doc):
    return isinstance(doc, dict) and any(
        key == 'ros__parameters' or _has_ros_parameters(value) for key, value in doc.items())


def params_file_problem(argv):
    """
    Check every ``--params-file`` of ``argv``; return the first problem as one line, or None.

    rcl reports a missing file with a log line plus a long error and accepts a file that is not
    a parameter file at all; this check names the file and the problem before rcl reads it.
    """
    argv = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg != '--params-file':
            continue
        path = argv[i + 1]
        try:
            doc = read_yaml(path, '--params-file')
        except ValueError as exc:
            return str(exc)
        if not _has_ros_parameters(doc):
            return f'--params-file {path}: not a ROS 2 parameter file (no ' \
                '"<node name>: ros__parameters:" section)'
    return None


def _bound_cleanup(name, limit_s=None):
    """From now on SIGTERM ends the process, and so does a clean-up longer than ``limit_s``."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit_s = CLEANUP_LIMIT_S if limit_s is None else limit_s

    def expire():
        print(f'{name}: clean-up did not finish within {limit_s:g} s; exiting (stacks below)',
              file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(1)
    timer = threading.Timer(limit_s, expire)
    timer.daemon = True
    timer.start()


def _context_shuts_down(timeout_s):
    """Return True once the default context is shut down, False if still ok after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while rclpy.ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run_node(name, make_node, args=None, config_errors=(), make_executor=None):
    """
    Build the node with ``make_node()`` and spin it until shutdown.

    Arguments:
    ---------
      name (str): the executable's name, used in error lines.
      make_node (callable): returns the ``rclpy.node.Node`` to spin.
      args (list or None): command-line arguments for ``rclpy.init`` (None: ``sys.argv``).
      config_errors (tuple): further exception types that mean "bad configuration".
      make_executor (callable or None): returns the executor to spin with, called after
        ``rclpy.init`` (e.g. ``MultiThreadedExecutor`` for action servers); None spins
        single-threaded.

    Returns
    -------
      int: the exit code, 0 after a normal shutdown, 2 after a configuration error.

    """
    argv = sys.argv[1:] if args is None else list(args)
    own = argv[:argv.index('--ros-args')] if '--ros-args' in argv else argv
    if '--help' in own or '-h' in own:
        # the table: PARAMETERS of the module that defines the node
        table = getattr(sys.modules.get(getattr(make_node, '__module__', '')), 'PARAMETERS',
                        None)
        if table is not None:
            print(help_text(name, table), end='')
            return 0
    problem = params_file_problem(sys.argv if args is None else args)
    if problem:
        print(f'{name}: {problem}', file=sys.stderr)
        return 2
    try:
        rclpy.init(args=args)
    except RCLError as exc:  # e.g. a missing or malformed --params-file, a bad -p or -r rule
        print(f'{name}: {_rcl_problem(exc)}', file=sys.stderr)
        return 2
    except UnknownROSArgsError as exc:  # str(exc) is the list of the unknown flags
        flags = ', '.join(repr(a) for a in re.findall(r"'([^']*)'", str(exc))) or str(exc)
        print(f'{name}: unknown ROS argument {flags} (after --ros-args: -p, -r, '
              '--params-file, --log-level, ...; end them with --)', file=sys.stderr)
        return 2
    node, code, left = None, 0, False
    try:
        node = make_node()
        if make_executor is None:
            rclpy.spin(node)
        else:
            executor = make_executor()
            executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except CONFIG_ERRORS + tuple(config_errors) as exc:
        print(f'{name}: {exc}', file=sys.stderr)
        code = 2
    except RuntimeError:
        # A SIGINT while rclpy converts a taken message to Python: pybind11 turns the
        # KeyboardInterrupt into "RuntimeError: Unable to convert call argument". rclpy's signal
        # handler shuts the context down from its own thread, at once or, under load, a moment
        # later (seen 1 in 48 Ctrl-Cs at load 10: exit 1 with a traceback); anything else is a
        # real error.
        if not _context_shuts_down(SIGINT_SHUTDOWN_WAIT_S):
            raise
    finally:
        # a second Ctrl-C must not interrupt the clean-up with a KeyboardInterrupt traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _bound_cleanup(name)
        if node is not None:
            if hasattr(node, 'shutdown'):
                left = node.shutdown() is False
            node.destroy_node()
        rclpy.try_shutdown()
    if left:
        _exit_now(code)
    return code


def _exit_now(code):
    """
    End the process with ``code`` without Python's finalization.

    For a node whose ``shutdown()`` left a worker thread in its work (returned False): Python's
    finalization ends a daemon thread when it next takes the GIL, and inside C++ code (OpenCV,
    torch, onnxruntime hand the GIL back in a destructor) that is ``std::terminate``: SIGABRT,
    exit -6, "terminate called without an active exception" (#21). The thread's work must be
    safe to cut (atomic writes, redone at the next start).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class BackgroundNode:
    """
    An rclpy node in a context of its own, spun by a daemon thread.

    For programs that talk to the nodes from outside (the demo, benchmarks, tests): create
    subscriptions and clients on ``self.node``; callbacks run on the spinning thread. ``close()``
    stops the thread and shuts the context down; the process's default context is untouched.
    """

    def __init__(self, name):
        from rclpy.executors import SingleThreadedExecutor
        import threading
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # the context was shut down while spinning
                break

    def close(self):
        """Stop spinning, destroy the node and shut its context down."""
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self.thread.join(2.0)
