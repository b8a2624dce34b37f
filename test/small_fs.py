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
