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

"""Fast DDS shared-memory port inspection (common/shm_ports.py) on a fake /proc and /dev/shm."""
import fcntl
import os

import pytest
from sam2real_ros.common import shm_ports


def fake_process(proc, pid, maps, locks=()):
    """
    Write a fake ``/proc/<pid>``: ``maps`` one mapping per ``(path, inode, deleted)``.

    ``locks``: paths the process has open (``fd/<n>`` links), as a listener its ``_el`` lock.
    """
    fd_dir = os.path.join(proc, str(pid), 'fd')
    os.makedirs(fd_dir, exist_ok=True)
    with open(os.path.join(proc, str(pid), 'maps'), 'w') as f:
        for path, inode, deleted in maps:
            f.write(f'7f00-7f10 rw-s 00000000 00:1a {inode}    {path}'
                    + (' (deleted)\n' if deleted else '\n'))
    for n, path in enumerate(locks, start=3):
        os.symlink(path, os.path.join(fd_dir, str(n)))


@pytest.fixture
def shm(tmp_path):
    """Return ``(shm_dir, proc_dir, segment)``: ``segment(port)`` writes a segment, its inode."""
    shm_dir, proc = tmp_path / 'shm', tmp_path / 'proc'
    shm_dir.mkdir()
    proc.mkdir()

    def segment(port):
        path = shm_dir / f'fastdds_port{port}'
        path.write_bytes(b'x')
        return str(path), os.stat(path).st_ino

    yield str(shm_dir), str(proc), segment
    shm_ports.release_ports()


def locked_elsewhere(path):
    """Return True when an exclusive flock on ``path`` cannot be taken (someone holds it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_only_ports_others_send_into_an_old_segment_of_are_held(shm):
    """
    A restart holds a dead listener's port only when a sender still maps its old segment (#22).

    Port 1: its old segment is mapped, but a live listener holds the lock: in use. Port 2: a
    killed listener's port that senders map as it is (the ordinary fast restart: taking it over
    is fine, the senders notice the replaced segment). Port 3: a sender maps a removed segment
    (run G's state). Port 4: a shared (multicast) port. Port 5: only this process maps it. Port
    6: a sender maps a segment replaced by another file since.
    """
    shm_dir, proc, segment = shm
    seg = {port: segment(port) for port in (1, 2, 3, 4, 5, 6)}
    for port in (1, 2):
        open(os.path.join(shm_dir, f'fastdds_port{port}_el'), 'w').close()
    open(os.path.join(shm_dir, 'fastdds_port4_sl'), 'w').close()
    live = os.open(os.path.join(shm_dir, 'fastdds_port1_el'), os.O_RDONLY)
    fcntl.flock(live, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        fake_process(proc, 100, [(seg[1][0], seg[1][1] + 7, True), (seg[2][0], seg[2][1], False),
                                 (seg[3][0], seg[3][1] + 1000, True),
                                 (seg[4][0], seg[4][1] + 1, False)])
        fake_process(proc, 101, [(seg[6][0], seg[6][1] + 5, False)])
        fake_process(proc, os.getpid(), [(seg[5][0], seg[5][1] + 1, True)])
        assert shm_ports.stale_ports(shm_dir, proc) == {
            1: 'pid(s) 100 still map its old segment', 3: 'pid(s) 100 still map its old segment',
            6: 'pid(s) 101 still map its old segment'}
        held = shm_ports.reserve_stale_ports(shm_dir, proc)
        assert held == {3: 'pid(s) 100 still map its old segment',
                        6: 'pid(s) 101 still map its old segment'}
        assert shm_ports.held_ports() == held
        assert os.path.exists(os.path.join(shm_dir, 'fastdds_port3_el'))  # made, as Fast DDS does
        for port in (3, 6):  # Fast DDS in any process now finds these ports in use
            assert locked_elsewhere(os.path.join(shm_dir, f'fastdds_port{port}_el'))
        assert not locked_elsewhere(os.path.join(shm_dir, 'fastdds_port2_el'))
        assert shm_ports.reserve_stale_ports(shm_dir, proc) == held  # idempotent
    finally:
        os.close(live)
    shm_ports.release_ports()
    assert shm_ports.held_ports() == {}
    assert not locked_elsewhere(os.path.join(shm_dir, 'fastdds_port3_el'))


def test_senders_into_an_older_segment_of_a_listened_port_are_found(shm):
    """A process mapping another segment of a port we listen on sends where nobody reads."""
    shm_dir, proc, segment = shm
    path, ours = segment(7)
    fake_process(proc, 50, [(path, ours, False)], locks=[path + '_el'])  # the listener
    fake_process(proc, 100, [(path, ours + 1, True)])  # kept the killed listener's segment
    fake_process(proc, 101, [(path, ours, False)])  # sends into ours: fine
    assert shm_ports.listened_ports(50, shm_dir, proc) == {7: {(ours, False)}}
    assert shm_ports.old_segment_senders(50, shm_dir, proc) == {
        7: 'pid(s) 100 map an older segment of it'}
    assert shm_ports.old_segment_senders(101, shm_dir, proc) == {}  # a sender listens on none
    fake_process(proc, 100, [(path, ours, False)])  # it noticed and reopened the port
    assert shm_ports.old_segment_senders(50, shm_dir, proc) == {}


def test_a_listened_port_whose_file_was_removed_or_replaced_is_unreachable(shm):
    """Nobody can reach a port whose segment file is gone or another file now (#22 item 4)."""
    shm_dir, proc, segment = shm
    (p1, i1), (p2, i2), (p3, i3) = segment(1), segment(2), segment(3)
    os.unlink(p1)
    fake_process(proc, 60, [(p1, i1, True), (p2, i2 + 9, False), (p3, i3, False)],
                 locks=[p1 + '_el', p2 + '_el', p3 + '_el'])
    assert shm_ports.unreachable_shm_ports(60, shm_dir, proc) == {
        1: f'{p1} was removed while this process listens on it',
        2: f'{p2} was replaced by another file'}
    assert shm_ports.unreachable_shm_ports(61, shm_dir, proc) == {}  # no such process
