"""One ``main()`` for every sam2real node: init, spin, clean exit codes.

SIGINT (Ctrl-C, ``ros2 launch`` shutdown) and an external shutdown end the node with exit code
0; a configuration error raised while the node is built (invalid parameter, missing folder,
unknown segmenter, ...) prints one line ``<name>: <problem>`` to stderr and exits with 2 --
never a traceback. The node's optional ``shutdown()`` (stop worker threads) runs before
``destroy_node()``.
"""
import sys

import rclpy
from rclpy.exceptions import InvalidParameterValueException, ParameterException
from rclpy.executors import ExternalShutdownException

CONFIG_ERRORS = (ValueError, ParameterException, InvalidParameterValueException, OSError)


def run_node(name, make_node, args=None, config_errors=(), make_executor=None):
    """Build the node with ``make_node()`` and spin it until shutdown.

    Arguments:
      name (str): the executable's name, used in error lines.
      make_node (callable): returns the ``rclpy.node.Node`` to spin.
      args (list or None): command-line arguments for ``rclpy.init`` (None: ``sys.argv``).
      config_errors (tuple): further exception types that mean "bad configuration".
      make_executor (callable or None): returns the executor to spin with, called after
        ``rclpy.init`` (e.g. ``MultiThreadedExecutor`` for action servers); None spins
        single-threaded.

    Returns:
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
