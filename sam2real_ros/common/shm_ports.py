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
Fast DDS shared-memory ports: who listens, who sends, and which ports a restart must not take.

Fast DDS's shared-memory transport receives on ports: a segment ``/dev/shm/fastdds_port<N>``
whose one listening process holds an exclusive ``flock`` on ``fastdds_port<N>_el``; senders map
the segment. A participant takes the first port of its range whose lock is free; the lock of a
process killed with ``kill -9`` is free at once, so a node restarted right after the kill takes
the dead one's port number and Fast DDS replaces the segment it finds there (a "zombie port").
A process that had opened the old segment to send into it keeps it mapped, and keeps sending
into it, until its own Fast DDS health check marks the port dead; that check fires only for a
listener that died while waiting, not for one killed while it processed a message. The
restarted node then hears nothing from that process (docs/benchmarks.md, "Recorder under
kill -9 and fast restarts", run G), and every later restart took the same port again.

* :func:`unreachable_shm_ports`: ports a process listens on whose segment file was removed or
  replaced (nobody can send to it any more).
* :func:`old_segment_senders`: ports a process listens on that others map an older segment of
  (they send where nobody reads): such a node must exit, so that a restart listens elsewhere.
* :func:`reserve_stale_ports`, called before a node creates its DDS participant: takes the
  ``_el`` lock of every port whose old segment another live process still maps while no live
  process listens on it, for the life of the process. Fast DDS then finds those ports in use and
  takes the next free one; the other processes learn it through discovery and send there. A
  port that a killed process left behind but that nobody maps an old segment of is left alone
  (the ordinary fast restart: the senders notice the replaced segment, as the loop shows).

Linux only (``/proc``, ``flock``); elsewhere, or with another middleware, every function finds
nothing and nothing is reserved.
"""
import fcntl
import os
import re

SHM_DIR = '/dev/shm'
_held = {}  # port -> (file descriptor of its _el lock, why it is held); for the process's life


def _segment_pattern(shm_dir):
    """Match a mapped port segment in ``/proc/<pid>/maps``: port number, `` (deleted)``."""
    return re.compile(r'^' + re.escape(shm_dir) + r'/fastdds_port(\d+)( \(deleted\))?$')


def _maps(pid, shm_dir, proc):
    """Return ``[(port, inode, deleted)]``: the port segments process ``pid`` maps (OSError)."""
    pattern, out = _segment_pattern(shm_dir), []
    with open(os.path.join(proc, str(pid), 'maps')) as f:
        for line in f:
            if '/fastdds_port' not in line:
                continue
            fields = line.split(None, 5)
            match = pattern.match(fields[5].rstrip('\n')) if len(fields) == 6 else None
            if match:
                out.append((int(match.group(1)), int(fields[4]), bool(match.group(2))))
    return out


def _inode(shm_dir, port):
    """Return the inode of port ``port``'s segment file now, or None when there is none."""
    try:
        return os.stat(os.path.join(shm_dir, f'fastdds_port{port}')).st_ino
    except OSError:
        return None


def listened_ports(pid='self', shm_dir=SHM_DIR, proc='/proc'):
    """
    Return ``{port: {(inode, deleted)}}``: the ports process ``pid`` listens on, as it maps them.

    A listened port is one whose ``_el`` lock file the process has open and whose segment it
    maps (``reserve_stale_ports``'s held locks come without a mapping: they are left out).
    """
    lock = re.compile(r'^' + re.escape(shm_dir) + r'/fastdds_port(\d+)_el$')
    try:
        fds = os.listdir(os.path.join(proc, str(pid), 'fd'))
    except OSError:
        return {}
    owned = set()
    for fd in fds:
        try:
            match = lock.match(os.readlink(os.path.join(proc, str(pid), 'fd', fd)))
        except OSError:  # closed meanwhile
            continue
        if match:
            owned.add(int(match.group(1)))
    if not owned:
        return {}
    try:
        maps = _maps(pid, shm_dir, proc)
    except OSError:
        return {}
    out = {}
    for port, inode, deleted in maps:
        if port in owned:
            out.setdefault(port, set()).add((inode, deleted))
    return out


def mapped_ports(proc='/proc', exclude=None, shm_dir=SHM_DIR):
    """
    Return ``{port: {(pid, inode, deleted)}}``: the Fast DDS port segments processes map.

    Every readable ``/proc/<pid>/maps`` but those of the pids in ``exclude`` (default: this
    process) is read; ``deleted``: the segment's file was removed since it was mapped.
    """
    exclude = {os.getpid()} if exclude is None else set(exclude)
    try:
        pids = [int(p) for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return {}
    out = {}
    for pid in pids:
        if pid in exclude:
            continue
        try:
            maps = _maps(pid, shm_dir, proc)
        except OSError:  # gone meanwhile, or another user's process
            continue
        for port, inode, deleted in maps:
            out.setdefault(port, set()).add((pid, inode, deleted))
    return out


def unreachable_shm_ports(pid='self', shm_dir=SHM_DIR, proc='/proc'):
    """
    Return ``{port: why}`` for the shared-memory ports of ``pid`` that nobody else can reach.

    Those are the ports process ``pid`` listens on whose segment it maps was removed, or
    replaced by another file: every other process sends into the new file, unheard.
    """
    out = {}
    for port, maps in sorted(listened_ports(pid, shm_dir, proc).items()):
        path = os.path.join(shm_dir, f'fastdds_port{port}')
        inode = _inode(shm_dir, port)
        if any(deleted for _, deleted in maps):
            out[port] = f'{path} was removed while this process listens on it' + (
                ' (another file of that name exists now)' if inode is not None else '')
        elif inode is None:
            out[port] = f'{path} is missing'
        elif inode not in {i for i, _ in maps}:
            out[port] = f'{path} was replaced by another file'
    return out


def old_segment_senders(pid='self', shm_dir=SHM_DIR, proc='/proc'):
    """
    Return ``{port: why}``: ports process ``pid`` listens on that others map an older segment of.

    Such a process sends into a segment nobody reads any more (its Fast DDS has not noticed
    that the port's listener died and was replaced), so ``pid`` hears nothing from it.
    """
    own = {port: {inode for inode, _ in maps}
           for port, maps in listened_ports(pid, shm_dir, proc).items()}
    if not own:
        return {}
    me = os.getpid() if pid == 'self' else int(pid)
    out = {}
    for port, maps in sorted(mapped_ports(proc, {me}, shm_dir).items()):
        others = sorted({p for p, inode, _ in maps if port in own and inode not in own[port]})
        if others:
            out[port] = f'pid(s) {", ".join(map(str, others))} map an older segment of it'
    return out


def stale_ports(shm_dir=SHM_DIR, proc='/proc'):
    """
    Return ``{port: why}``: ports whose old segment another process still maps, and sends into.

    The segment a process maps was removed, or replaced by another file since it mapped it: it
    sends where the port's next listener will not read. Shared (multicast) ports, which have a
    ``_sl`` lock, are left out. Whether the port's listener lives is not checked here.
    """
    out = {}
    for port, maps in sorted(mapped_ports(proc, shm_dir=shm_dir).items()):
        if os.path.exists(os.path.join(shm_dir, f'fastdds_port{port}_sl')):
            continue
        inode = _inode(shm_dir, port)
        old = sorted({pid for pid, ino, deleted in maps if deleted or ino != inode})
        if old:
            out[port] = f'pid(s) {", ".join(map(str, old))} still map its old segment'
    return out


def reserve_stale_ports(shm_dir=SHM_DIR, proc='/proc'):
    """
    Hold the listener lock of every :func:`stale_ports` port that no live process listens on.

    Call it before the process creates its DDS participant. A port whose ``_el`` lock another
    process holds is alive and left alone; the others are locked (the lock file created where
    missing, as Fast DDS does) and stay locked until the process ends. Returns ``{port: why}``
    of the ports held now (also those of an earlier call); :func:`held_ports` returns the same.
    """
    for port, why in stale_ports(shm_dir, proc).items():
        if port in _held:
            continue
        try:
            fd = os.open(os.path.join(shm_dir, f'fastdds_port{port}_el'),
                         os.O_CREAT | os.O_RDONLY, 0o666)
        except OSError:  # another user's file, or no /dev/shm
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live listener holds it: the port is in use
            os.close(fd)
            continue
        _held[port] = (fd, why)
    return held_ports()


def held_ports():
    """Return ``{port: why}`` of the ports :func:`reserve_stale_ports` holds in this process."""
    return {port: why for port, (_, why) in sorted(_held.items())}


def release_ports():
    """Release every port lock :func:`reserve_stale_ports` took (for tests; exit releases)."""
    while _held:
        _, (fd, _) = _held.popitem()
        os.close(fd)
