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
The exit code of ``ros2 launch sam2real perception.launch.py``: that of the node that ended it.

Every node of the launch is required: one that exits on its own (e.g. 2 on a bad parameter
value) shuts the launch down. ``LaunchService.run`` returns only 0, or 1 after an exception in the
launch, so the node's code would be lost. The launch file records the node and its code here
(:func:`record`) and emits ``Shutdown``; once the launch has ended and every process is gone,
``ros2 launch`` calls the ``postlaunch`` of its option extensions, and :class:`NodeExitCode`
(entry point ``ros2launch.option`` in setup.py) exits with that code. A Ctrl-C records nothing:
``ros2 launch`` ends with its own code (0). Where no ``ros2 launch`` loaded the extension
(launch_testing; sam2real's entry points not on the Python path) :func:`record` says so and the
launch file raises instead: launch stops everything and exits with 1.
"""
import sys

from ros2launch.option import OptionExtension

_ENDED = []  # (node name, exit code) of the nodes that ended the launch, in order
_LOADED = []  # the NodeExitCode that ros2 launch instantiated (none: not under ros2 launch)


def record(name, returncode):
    """
    Remember that node ``name`` ended with ``returncode`` (the first one sets the exit code).

    Returns True where ``ros2 launch`` will exit with that code, False where nothing will.
    """
    if not _LOADED:
        return False
    _ENDED.append((name, returncode))
    return True


def exit_code(returncode):
    """Return the shell's exit status for a process return code (-N: killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode


class NodeExitCode(OptionExtension):
    """``ros2 launch`` option extension: exit with the code of the node that ended the launch."""

    def __init__(self):
        super().__init__()
        _LOADED.append(self)

    def postlaunch(self, launch_return_code, args):
        """Exit with the first recorded node's code (launch is over, every process has ended)."""
        if _ENDED:
            sys.exit(exit_code(_ENDED[0][1]))
