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
Groups of real child processes with one log file each: the demo, the benchmarks and the tests.

:class:`ProcessGroup` starts ``python -m ...`` (or any command) in a session of its own, sends
stdout and stderr to ``<logdir>/<name>.log``, reports a process that died
(:class:`ProcessDied`, with the log's tail) and stops everything with SIGINT, as Ctrl-C would,
escalating to SIGKILL after a timeout. No ROS imports: what the processes run is their business.
"""
import os
import pathlib
import signal
import subprocess
import sys


class ProcessDied(RuntimeError):
    """A process of the group exited while it should run; ``name``, ``code``, ``log``, ``tail``."""

    def __init__(self, name, code, log, tail):
        super().__init__(f'{name} exited with code {code}')
        self.name, self.code, self.log, self.tail = name, code, log, tail


def _default_sigint():
    """In a child before exec: SIGINT back to its default action (see ProcessGroup.start)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ProcessGroup:
    """
    Child processes with one log file each, stopped together.

    Arguments:
    ---------
      logdir (str or path): where ``<name>.log`` files go (created).
      cwd (str or None): working directory of the processes.
      env (dict or None): extra environment variables for every process.

    ``procs`` maps name -> ``subprocess.Popen`` (each with ``log_path``), in start order.

    """

    def __init__(self, logdir, cwd=None, env=None):
        self.logdir, self.cwd = str(logdir), cwd
        self.env = dict(env or {})
        self.procs = {}
        self._logs = {}
        os.makedirs(self.logdir, exist_ok=True)

    def start(self, *args, name=None, env=None, python=True):
        """
        Start ``sys.executable *args`` (``python=False``: ``args`` is the whole command).

        Returns
        -------
          subprocess.Popen: with ``log_path`` (pathlib.Path) and ``name`` attributes.

        """
        name = name or f'proc{len(self.procs)}'
        if name in self.procs and self.procs[name].poll() is None:
            raise ValueError(f'a process named {name!r} is already running')
        log_path = pathlib.Path(self.logdir, f'{name}.log')
        log = open(log_path, 'w')
        cmd = [sys.executable, *map(str, args)] if python else [str(a) for a in args]
        full_env = dict(os.environ, PYTHONUNBUFFERED='1', **self.env, **(env or {}))
        # a shell without job control starts background commands with SIGINT ignored, and
        # exec keeps that: the child would ignore the SIGINT that stop() and Ctrl-C send
        # (ros2 launch then respawns nodes during its own shutdown and never ends)
        reset = _default_sigint if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else None
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                cwd=self.cwd, start_new_session=True, preexec_fn=reset)
        proc.log_path, proc.name = log_path, name
        self.procs[name], self._logs[name] = proc, log
        return proc

    def _proc(self, proc_or_name):
        return self.procs[proc_or_name] if isinstance(proc_or_name, str) else proc_or_name

    def output(self, proc_or_name):
        """Return everything the process printed so far."""
        proc = self._proc(proc_or_name)
        log = self._logs.get(proc.name)
        if log is not None and not log.closed:
            log.flush()
        with open(proc.log_path, errors='replace') as f:
            return f.read()

    def tail(self, proc_or_name, lines=15):
        """Return the last ``lines`` lines the process printed."""
        return '\n'.join(self.output(proc_or_name).splitlines()[-lines:])

    def log_path(self, name):
        """Return the log file of process ``name``."""
        return self.procs[name].log_path

    def check_alive(self):
        """Raise :class:`ProcessDied` for the first process that has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ProcessDied(name, proc.returncode, proc.log_path, self.tail(name))

    def stop(self, proc_or_name, sig=signal.SIGINT, timeout=10.0, group=False):
        """
        Send ``sig`` (to the process, or its whole session with ``group``) and wait.

        Returns
        -------
          int: the exit code (negative: killed by that signal); SIGKILL after ``timeout``.

        """
        proc = self._proc(proc_or_name)
        if proc.poll() is None:
            try:
                if group:
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill(proc)
            except ProcessLookupError:
                proc.wait(timeout)
        log = self._logs.get(proc.name)
        if log is not None:
            log.close()
        return proc.returncode

    @staticmethod
    def _kill(proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the process and anything it started
        except ProcessLookupError:
            pass
        proc.wait(5)

    def stop_all(self, timeout=10.0):
        """SIGINT every process still running (last started first); return ``{name: code}``."""
        return {name: self.stop(proc, timeout=timeout)
                for name, proc in reversed(list(self.procs.items()))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_all()
        return False
