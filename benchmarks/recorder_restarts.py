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
Kill/restart stress loop of ``grasp_recorder``: silent restarts and mislabelled episodes.

``python -m benchmarks.recorder_restarts [--cycles 50] [--grasp-s 3] [--camera-hz 30]
[--kill-delay-s 0.5] [--silent-s 60] [--seed 0] [--recorder-udp]``

Real processes: ``sim_camera`` (640x480 at ``--camera-hz``), ``sim_grasp_server`` (each grasp
executes ``--grasp-s``) and ``grasp_recorder`` on a fresh dataset root. Each cycle sends a
grasp, kills the recorder with SIGKILL at a random moment up to ``--kill-delay-s`` after the
grasp's episode folder appears (timed by watching the folder), restarts it at once and checks:

* ``silent``: a recorder sent no ``/diagnostics`` for ``--silent-s`` (after a restart, or
  later) and did not exit by itself: it hung quietly;
* ``watchdog_exits``: a recorder that went quiet (no diagnostics for 5 s before a cycle, no
  episode for the cycle's grasp, or none after a restart) and then exited by itself with code
  3 (its watchdog thread) or 1 (faulthandler: a hang holding the GIL), docs/grasp_recorder.md,
  "Watchdog"; ``other_exits``: any other exit; the loop restarts it;
* ``not_recorded``: a recorder that was up, and stayed up, did not open an episode for the
  cycle's grasp within ``--silent-s``;
* ``mislabelled``: an episode of the killed grasp written by the restarted recorder that is
  not marked ``joined_late`` (a grasp first heard terminal must open none);
* ``end_before_start``: any episode with ``end_ns < start_ns``; ``not_repaired``: the killed
  episode was not ``interrupted`` once the restarted recorder is up;
  ``killed_before_first_frame``: the kill came between the folder and its first frame, and
  the restart removed the empty folder (no episode without frames), as it should.

Prints one line per cycle; the last line is JSON with the counts, the seconds from restart to
the first diagnostics (min / median / max), the cycles run, the 1-minute load average at the
start and the end, and the wall time.
"""
import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time


def _wait(predicate, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


class Loop:
    """The processes, the listener and the checks of one stress run."""

    def __init__(self, args, workdir):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.action import ActionClient
        from test_msgs.action import Fibonacci

        from sam2real_ros.common.processes import ProcessGroup
        from sam2real_ros.nodes.runner import BackgroundNode
        self.args, self.root = args, os.path.join(workdir, 'data')
        self.procs = ProcessGroup(os.path.join(workdir, 'logs'))
        self.ros = BackgroundNode('recorder_restarts')
        self.Goal = Fibonacci.Goal
        self.client = ActionClient(self.ros.node, Fibonacci, '/grasp_server/grasp')
        self.diag_at = 0.0  # monotonic time of the recorder's latest diagnostics
        self.ros.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.rec = None
        self.n_started = 0

    def _on_diag(self, msg):
        if any(st.hardware_id == self.root for st in msg.status):
            self.diag_at = time.monotonic()

    def start_system(self):
        from sam2real_ros.nodes.graph import node_command
        self.procs.start(*node_command('sim_camera', {'rate_hz': self.args.camera_hz},
                                       params_file=False), name='camera')
        self.procs.start('-m', 'sam2real_ros.nodes.sim_grasp_server', '--ros-args', '-p',
                         f'grasp_duration_s:={self.args.grasp_s}', name='server')
        assert self.client.wait_for_server(timeout_sec=60), 'grasp server not up'

    def start_recorder(self):
        """Start a recorder; returns the seconds to its first diagnostics, or None (silent)."""
        from sam2real_ros.nodes.graph import node_command
        params = {'dataset_root': self.root, 'before_s': 1.0, 'after_s': 1.0,
                  'during_rate_hz': 4.0, 'after_rate_hz': 4.0, 'min_free_gb': 0.0,
                  'diagnostics_period_s': 0.5}
        self.n_started += 1
        t0 = time.monotonic()
        env = {'FASTDDS_BUILTIN_TRANSPORTS': 'UDPv4'} if self.args.recorder_udp else None
        self.rec = self.procs.start(*node_command('grasp_recorder', params, params_file=False),
                                    name=f'recorder{self.n_started}', env=env)
        up = _wait(lambda: self.diag_at > t0 or self.rec.poll() is not None,
                   self.args.silent_s, 0.01)
        return time.monotonic() - t0 if up and self.rec.poll() is None else None

    def episodes(self):
        from sam2real_ros.recording import episode_store
        return episode_store.list_episodes(self.root)

    def episode_of(self, goal):
        return [ep for ep in self.episodes() if (ep.get('trigger') or {}).get('goal_id') == goal]

    def send_goal(self):
        fut = self.client.send_goal_async(self.Goal(order=1))
        handle = _wait(lambda: fut.done() and fut.result(), 30)
        assert handle and handle.accepted, 'goal not accepted'
        return handle, bytes(handle.goal_id.uuid).hex()

    def inspect(self, rec):
        """Return what a quiet recorder looks like from outside: graph, ports, stacks."""
        from sam2real_ros.common.shm_ports import unreachable_shm_ports
        names = [n for n, _ in self.ros.node.get_node_names_and_namespaces()]
        ports = unreachable_shm_ports(rec.pid)
        pubs = [i.node_name for i in self.ros.node.get_publishers_info_by_topic('/diagnostics')]
        rec.send_signal(signal.SIGUSR1)  # the recorder dumps every thread's stack
        time.sleep(2.0)
        main = self.procs.output(rec).split('most recent call first', 1)
        stack = [ln.strip() for ln in main[-1].splitlines() if ln.strip().startswith('File')]
        return (f'in the graph: {"grasp_recorder" in names}; /diagnostics publishers: {pubs}; '
                f'unreachable shared-memory ports: {ports or "none"}; '
                f'stacks: {" <- ".join(stack[:4]) if len(main) > 1 else "none"}')

    def close(self):
        self.procs.stop_all()
        self.ros.close()


def result_of(handle):
    """Return the result future of a goal handle."""
    return handle.get_result_async()


def quiet(loop, counts, what):
    """Wait for the watchdog of a quiet recorder, count it, restart it; returns a note."""
    rec = loop.rec
    _wait(lambda: rec.poll() is not None, loop.args.silent_s, 0.1)
    tail = loop.procs.tail(rec, 3).replace('\n', ' | ')
    if rec.poll() in (1, 3):  # 3: the watchdog thread; 1: faulthandler (GIL held)
        counts['watchdog_exits'] += 1
        note = f'{what}; its watchdog exited {rec.poll()}: {tail}'
    elif rec.poll() is not None:
        counts['other_exits'] += 1
        note = f'{what}; it exited {rec.poll()}: {tail}'
    else:
        counts['silent'] += 1
        note = f'SILENT ({what}; still running after {loop.args.silent_s:g} s): {tail}; ' \
            + loop.inspect(rec)
        loop.procs.stop(rec, sig=signal.SIGKILL)
    loop.start_recorder()
    return note


def cycle(loop, rng, counts, restart_s):
    """One grasp, one kill -9 timed by the episode folder, one restart; updates ``counts``."""
    if loop.rec.poll() is not None or time.monotonic() - loop.diag_at > 5.0:
        return quiet(loop, counts, f'recorder {loop.rec.pid}: no diagnostics for 5 s')
    handle, goal = loop.send_goal()
    rec_pid = loop.rec.pid
    if not _wait(lambda: loop.episode_of(goal) or loop.rec.poll() is not None,
                 loop.args.silent_s) or not loop.episode_of(goal):
        if loop.rec.poll() is not None or time.monotonic() - loop.diag_at > 5.0:
            _wait(result_of(handle).done, loop.args.grasp_s + 30)
            return quiet(loop, counts, f'grasp {goal[:8]} not recorded (recorder {rec_pid})')
        counts['not_recorded'] += 1
        return f'grasp {goal[:8]} not recorded (recorder {rec_pid}, diagnostics fresh)'
    time.sleep(rng.uniform(0.0, loop.args.kill_delay_s))
    loop.procs.stop(loop.rec, sig=signal.SIGKILL)
    took = loop.start_recorder()
    if took is None:
        return quiet(loop, counts, f'restart: no diagnostics in {loop.args.silent_s:g} s')
    restart_s.append(took)
    _wait(result_of(handle).done, loop.args.grasp_s + 30)
    time.sleep(1.0 + 1.0)  # after_s of the recorder, and its diagnostics period x 2
    eps = loop.episode_of(goal)
    killed = [ep for ep in eps if ep['writer']['pid'] == rec_pid]
    later = [ep for ep in eps if ep['writer']['pid'] != rec_pid]
    bad = [ep for ep in later if not ep['trigger'].get('joined_late')]
    counts['mislabelled'] += len(bad)
    counts['joined_late'] += len(later) - len(bad)
    counts['not_repaired'] += sum(ep['state'] != 'interrupted' for ep in killed)
    counts['killed_before_first_frame'] += not killed  # its folder held no frame: removed
    counts['end_before_start'] = sum(ep['end_ns'] < ep['start_ns'] for ep in loop.episodes())
    state = ','.join(f'{ep["state"]}/{ep["end_reason"]}/{ep["outcome"]}' for ep in eps)
    return f'grasp {goal[:8]}: restart {took:.2f} s to diagnostics; episodes {state}'


def main(argv=None):
    """Run the loop; returns 0 when no restart was silent and no episode mislabelled, else 1."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument('--cycles', type=int, default=50, help='kill/restart cycles (50)')
    ap.add_argument('--grasp-s', type=float, default=3.0, help='grasp duration (3)')
    ap.add_argument('--camera-hz', type=float, default=30.0, help='camera rate (30)')
    ap.add_argument('--kill-delay-s', type=float, default=0.5,
                    help='kill at a random moment up to this long after the folder appears')
    ap.add_argument('--silent-s', type=float, default=60.0,
                    help='a restarted recorder without diagnostics this long is silent (60)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--recorder-udp', action='store_true',
                    help='recorder without Fast DDS shared memory (FASTDDS_BUILTIN_TRANSPORTS)')
    args = ap.parse_args(argv)
    from tqdm import tqdm
    rng, counts, restart_s = random.Random(args.seed), dict.fromkeys(
        ('silent', 'watchdog_exits', 'other_exits', 'not_recorded', 'mislabelled', 'joined_late',
         'not_repaired', 'killed_before_first_frame', 'end_before_start'), 0), []
    t0, load0 = time.monotonic(), os.getloadavg()[0]
    loop = Loop(args, tempfile.mkdtemp(prefix='sam2real_recorder_restarts_'))
    done = 0
    try:
        loop.start_system()
        if loop.start_recorder() is None:
            raise SystemExit('the first recorder sent no diagnostics: '
                             + loop.procs.tail(loop.rec, 10))
        for i in tqdm(range(args.cycles), unit='cycle'):
            print(f'cycle {i + 1}: {cycle(loop, rng, counts, restart_s)}', flush=True)
            done += 1
    except KeyboardInterrupt:
        print(f'interrupted after {done} cycle(s)', flush=True)
    finally:
        loop.close()
    q = sorted(restart_s) or [float('nan')]
    out = dict(counts, cycles=done, recorder_udp=args.recorder_udp, restart_to_diagnostics_s={
        'min': round(q[0], 2), 'median': round(statistics.median(q), 2),
        'max': round(q[-1], 2)}, load_1m_start=round(load0, 2),
        load_1m_end=round(os.getloadavg()[0], 2), wall_s=round(time.monotonic() - t0, 1))
    print(json.dumps(out))
    return 0 if not (counts['silent'] or counts['mislabelled']) else 1


if __name__ == '__main__':
    sys.exit(main())
