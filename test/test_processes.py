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

"""common/processes.py: the child processes that tests, the demo and benchmarks start."""
import signal
import time

from conftest import wait_until

from sam2real_ros.common.processes import ProcessGroup


def test_sigint_stops_a_child_even_when_the_parent_ignores_sigint(tmp_path):
    """
    A parent started in the background by a shell without job control ignores SIGINT.

    exec keeps an ignored signal ignored, so its children ignored the SIGINT of ``stop`` (and of
    Ctrl-C): ``ros2 launch`` started that way never ended after a Ctrl-C (it respawned the
    recorder instead). Children of a ProcessGroup get SIGINT back to its default.
    """
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ProcessGroup(tmp_path) as group:
            proc = group.start('-c', 'import time; print("up", flush=True); time.sleep(60)',
                               name='sleeper')
            assert wait_until(lambda: 'up' in group.output(proc), 30), group.output(proc)
            t0 = time.monotonic()
            code = group.stop(proc, sig=signal.SIGINT, timeout=20)
            took = time.monotonic() - t0
    finally:
        signal.signal(signal.SIGINT, old)
    assert code != -signal.SIGKILL, group.output(proc)  # not escalated: SIGINT ended it
    assert 'KeyboardInterrupt' in group.output(proc) and took < 20, (code, took)
