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

"""A real small file system for disk-full tests: a size-limited tmpfs mounted on a folder."""
import contextlib
import os
import subprocess

import pytest


@contextlib.contextmanager
def small_filesystem(path, size_kb):
    """
    Mount a tmpfs of ``size_kb`` KiB on ``path`` (created) for the ``with`` block.

    Skips the test, naming the reason, where mounting is not allowed (not root, a container
    without CAP_SYS_ADMIN, no ``mount``): the simulated-ENOSPC tests cover those machines.
    """
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    try:
        res = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={int(size_kb)}k', 'tmpfs',
                              path], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f'cannot mount a small tmpfs for a real disk-full test: {exc}')
    if res.returncode != 0:
        pytest.skip('cannot mount a small tmpfs for a real disk-full test: '
                    f'{(res.stderr or res.stdout).strip() or "mount exit " + str(res.returncode)}')
    try:
        yield path
    finally:
        subprocess.run(['umount', '-l', path], capture_output=True, timeout=30)


def fill(path, name='filler'):
    """Write ``path/name`` until the file system is full; returns its size in bytes."""
    fd = os.open(os.path.join(path, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, b'\0' * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return os.path.getsize(os.path.join(path, name))
