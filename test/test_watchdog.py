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

"""The executor watchdog (common/watchdog.py) with a clock the test moves."""
import threading

from conftest import wait_until
import pytest
from sam2real_ros.common.watchdog import Watchdog


def test_stall_is_reported_once_and_beats_keep_it_quiet():
    now = [0.0]
    stalls, called = [], threading.Event()

    def on_stall(age):
        stalls.append(age)
        called.set()

    dog = Watchdog(0.2, on_stall, clock=lambda: now[0])
    try:
        for _ in range(5):  # beats in time: nothing, however long the wall time
            now[0] += 0.1
            dog.beat()
            assert not called.wait(0.1)
        now[0] += 0.5  # no beat for 0.5 s of its clock
        assert called.wait(5.0) and stalls[0] >= 0.2
        now[0] += 10.0
        assert not wait_until(lambda: len(stalls) > 1, 0.5)  # once
        assert dog.stalled
    finally:
        dog.stop()


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match='watchdog timeout must be > 0'):
        Watchdog(0, print)


HANG_BEFORE_THE_FIRST_BEAT = """
import ctypes
from sam2real_ros.common.watchdog import Watchdog
dog = Watchdog(30.0, print, hard_exit_s=2.0)
ctypes.PyDLL(None).sleep(60)  # PyDLL: the GIL stays held; no beat ever came
"""


def test_a_hang_before_the_first_beat_still_exits():
    """The hard exit counts from the watchdog's start, not from a first beat (#22, run H)."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-c', HANG_BEFORE_THE_FIRST_BEAT],
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 1, proc.stderr
    assert 'Timeout (0:00:02)!' in proc.stderr, proc.stderr
