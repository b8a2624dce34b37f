"""
One ``main()`` for every sam2real node: init, spin, clean exit codes.

SIGINT (Ctrl-C, ``ros2 launch`` shutdown) and an external shutdown end the node with exit code
0; a configuration error raised while the node is built (invalid parameter, missing folder,
unknown segmenter, ...) prints one line ``<name>: <problem>`` to stderr and exits with 2 --
never a traceback. The node's optional ``shutdown()`` (stop worker threads) runs before
``destroy_node()``.
"""
import sys

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
import rclpy
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import ExternalShutdownException

CONFIG_ERRORS = (ValueError, ParameterException, InvalidParameterValueException, OSError)


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
    rclpy.init(args=args)
    node = None
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
        return 2
    finally:
        if node is not None:
            if hasattr(node, 'shutdown'):
                node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


class ParamValues(dict):
    """Declared parameter values: ``p['name']`` or ``p.name``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def declare_parameters(node, specs, read_only=True):
    """
    Declare every parameter of ``specs`` with a description and a range; return the values.

    Arguments:
    ---------
      node (rclpy.node.Node): the node to declare on.
      specs (dict): name -> ``(default, description)``, ``(default, description, (lo, hi))``
        or ``(default, description, lo, hi)``; a range on an ``int`` default becomes an
        ``IntegerRange``, on a ``float`` a ``FloatingPointRange``. rclpy refuses an out-of-range
        override at start (``InvalidParameterValueException``, a configuration error for
        :func:`run_node`).
      read_only (bool): the nodes read their parameters once at start.

    Returns
    -------
      ParamValues: name -> value (after overrides from YAML / ``-p``).

    """
    values = ParamValues()
    for name, spec in specs.items():
        default, text = spec[0], spec[1]
        bounds = spec[2] if len(spec) == 3 else (spec[2:4] if len(spec) == 4 else None)
        desc = ParameterDescriptor(description=text, read_only=read_only)
        if bounds is not None and isinstance(default, int) and not isinstance(default, bool):
            desc.integer_range = [IntegerRange(from_value=int(bounds[0]),
                                               to_value=int(bounds[1]), step=1)]
        elif bounds is not None:
            desc.floating_point_range = [FloatingPointRange(
                from_value=float(bounds[0]), to_value=float(bounds[1]), step=0.0)]
        values[name] = node.declare_parameter(name, default, desc).value
    return values


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
