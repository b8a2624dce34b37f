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
A watchdog for a node's executor: a thread that acts when the heartbeat stops.

A ROS node whose executor is stuck (a callback that never returns, a deadlock in a
middleware call) runs no timer: it publishes no diagnostics and records nothing, yet the
process lives and looks healthy to ``ros2 launch``. :class:`Watchdog` runs outside the
executor: the node calls :meth:`Watchdog.beat` from a timer, and when no beat came for
``timeout_s`` the watchdog calls ``on_stall(age_s)`` once (the recorder logs it, dumps every
thread's stack and exits, so a supervisor restarts it). A hang that holds the GIL stops that
thread too; for it, ``hard_exit_s`` arms :func:`faulthandler.dump_traceback_later`, whose C
thread needs no GIL: no beat for ``hard_exit_s`` dumps every thread's stack to stderr and
exits the process with code 1.

A node that cannot receive although its timers run (a Fast DDS shared-memory port taken over
after a ``kill -9``) is found by :mod:`sam2real_ros.common.shm_ports`.
"""
import faulthandler
import threading
import time


class Watchdog:
    """
    Call ``on_stall(age_s)`` once when :meth:`beat` was not called for ``timeout_s``.

    Arguments:
    ---------
      timeout_s (float): seconds without a beat that count as a stall (> 0).
      on_stall (callable): ``on_stall(age_s)``, run on the watchdog thread.
      clock (callable): monotonic seconds.
      hard_exit_s (float | None): also exit (code 1, stacks on stderr) after this long without
        a beat (the first counts from here), even when the GIL is held (re-armed at most once a
        second; > ``timeout_s``).

    """

    def __init__(self, timeout_s, on_stall, clock=time.monotonic, hard_exit_s=None):
        if timeout_s <= 0:
            raise ValueError(f'watchdog timeout must be > 0, got {timeout_s!r}')
        self.timeout_s = float(timeout_s)
        self._on_stall = on_stall
        self._clock = clock
        self._last = clock()
        self._stop = threading.Event()
        self.stalled = False
        self.hard_exit_s = hard_exit_s
        self._armed_at = None
        if hard_exit_s:  # armed at once: a hang before the first beat holds the GIL too
            self._armed_at = self._last
            faulthandler.dump_traceback_later(hard_exit_s, exit=True)
        self._thread = threading.Thread(target=self._run, name='watchdog', daemon=True)
        self._thread.start()

    def beat(self):
        """Record that the executor is alive (call it from a timer)."""
        self._last = now = self._clock()
        if self.hard_exit_s and (self._armed_at is None or now - self._armed_at >= 1.0):
            self._armed_at = now
            faulthandler.dump_traceback_later(self.hard_exit_s, exit=True)

    def age_s(self):
        """Return the seconds since the last beat."""
        return self._clock() - self._last

    def _run(self):
        while not self._stop.wait(min(1.0, self.timeout_s / 4)):
            age = self.age_s()
            if age >= self.timeout_s and not self.stalled:
                self.stalled = True
                self._on_stall(age)

    def stop(self):
        """Stop the thread and disarm the hard exit (no stall is reported after this)."""
        if self.hard_exit_s:
            faulthandler.cancel_dump_traceback_later()
        self._stop.set()
        self._thread.join(5.0)
