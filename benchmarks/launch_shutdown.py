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
Ctrl-C loop of ``ros2 launch sam2real perception.launch.py sim:=true``: does every node end.

``python -m benchmarks.launch_shutdown [--cycles 16] [--settle-s 2] [--hang-s 8]
[--dumps DIR]`` (after ``make build``; ``tools/venv-run`` puts the ament prefix on the path)

Each cycle starts the whole simulated graph under ``ros2 launch`` in a session of its own, waits
until every node is up, lets frames flow ``--settle-s`` and sends SIGINT to the process group
(what a terminal's Ctrl-C does). It then watches each node's process until it is gone:

* ``hangs``: a node still running ``--hang-s`` after the SIGINT (issue #21: sim_camera once
  ignored SIGINT and SIGTERM until SIGKILL). Its Python stacks (``py-spy dump``, where py-spy is
  on the PATH or given with ``--py-spy``), its signal masks and thread states go to ``--dumps``;
* ``escalated``: launch had to send SIGTERM or SIGKILL; ``bad_codes``: a node that did not end
  with 0 (``process has died``), or ``ros2 launch`` that did not exit 0;
* per node, seconds from the SIGINT to its end (min / median / max).

Prints one line per cycle; the last line is JSON with the counts, the seconds, the cycles run,
the 1-minute load average at the start and the end, and the wall time. Returns 1 if any node hung
or any exit code was not 0.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

READY = ('loaded model', 'segmenter fallback', 'recording grasp episodes',
         'simulated grasp server', 'publishing 640x480')
STARTED = re.compile(r'\[INFO\] \[([a-z_]+)-\d+\]: process started with pid \[(\d+)\]')


def _wait(predicate, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def _running(pid):
    """Return True while ``pid`` exists and is no zombie (launch reaps its children)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _dump(pid, name, py_spy, folder):
    """Write what a hung process is doing: py-spy stacks, signal masks, each thread's wchan."""
    lines = [f'{name} pid {pid}']
    try:
        with open(f'/proc/{pid}/status') as f:
            lines += [ln.rstrip() for ln in f if ln.startswith(('State', 'Sig', 'Threads'))]
        for tid in sorted(os.listdir(f'/proc/{pid}/task')):
            with open(f'/proc/{pid}/task/{tid}/comm') as c, \
                    open(f'/proc/{pid}/task/{tid}/wchan') as w:
                lines.append(f'thread {tid} {c.read().strip()}: wchan {w.read().strip()}')
    except OSError as exc:
        lines.append(f'/proc: {exc}')
    if py_spy:
        res = subprocess.run([py_spy, 'dump', '--pid', str(pid)], capture_output=True,
                             text=True, timeout=60)
        lines += [res.stdout, res.stderr]
    path = os.path.join(folder, f'{name}_{pid}.txt')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def cycle(i, args, procs, model, workdir):
    """Run one launch, Ctrl-C it; return the cycle's record."""
    proc = procs.start(
        'ros2', 'launch', 'sam2real', 'perception.launch.py', 'sim:=true',
        f'namespace:=shutdown{i}', f'model_path:={model}',
        f'dataset_root:={os.path.join(workdir, f"data{i}")}', name=f'launch{i}', python=False)
    if not _wait(lambda: all(r in procs.output(proc) for r in READY) or proc.poll() is not None,
                 args.ready_s):
        procs.stop(proc, group=True)
        return {'cycle': i, 'error': 'not ready', 'tail': procs.tail(proc, 5)}
    if proc.poll() is not None:
        return {'cycle': i, 'error': f'launch exited {proc.returncode}',
                'tail': procs.tail(proc, 5)}
    time.sleep(args.settle_s)  # frames flow through the graph, as when an operator stops it
    nodes = {name: int(pid) for name, pid in STARTED.findall(procs.output(proc))}
    os.killpg(proc.pid, signal.SIGINT)
    t0, ended, hung = time.monotonic(), {}, []
    while proc.poll() is None or any(n not in ended for n in nodes):
        now = time.monotonic() - t0
        for name, pid in nodes.items():
            if name not in ended and not _running(pid):
                ended[name] = round(now, 2)
            elif name not in ended and name not in hung and now > args.hang_s:
                hung.append(name)
                print(f'cycle {i}: {name} (pid {pid}) still running {now:.1f} s after SIGINT: '
                      f'{_dump(pid, name, args.py_spy, args.dumps)}', flush=True)
        if now > args.timeout_s:
            procs.stop(proc, sig=signal.SIGKILL, group=True)
            break
        time.sleep(0.05)
    code = proc.wait()
    out = procs.output(proc)
    died = re.findall(r'\[ERROR\] \[([a-z_]+)-\d+\]: process has died \[pid \d+, exit code '
                      r'(-?\d+)', out)
    return {'cycle': i, 'launch_code': code, 'ended_s': ended, 'hung': hung,
            'died': {n: int(c) for n, c in died},
            'escalated': [n for n in nodes if _escalated(n, out)],
            'traceback': 'Traceback' in out}


def _escalated(node, out):
    """Whether launch had to escalate (SIGTERM / SIGKILL) to end `node`."""
    if re.search(r'\[%s-\d+\]: process\[%s-\d+\] failed to terminate' % (node, node), out):
        return True
    return any('sending signal %r to process[%s' % (sig, node) in out
               for sig in ('SIGKILL', 'SIGTERM'))


def main(argv=None):
    """Run the loop; returns 0 when every node of every cycle ended in time with code 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument('--cycles', type=int, default=16, help='launches to Ctrl-C (16)')
    ap.add_argument('--settle-s', type=float, default=2.0,
                    help='seconds between "every node up" and the SIGINT (2)')
    ap.add_argument('--hang-s', type=float, default=8.0,
                    help='a node still running this long after the SIGINT hangs (8)')
    ap.add_argument('--ready-s', type=float, default=240.0, help='start-up limit (240)')
    ap.add_argument('--timeout-s', type=float, default=60.0,
                    help='SIGKILL the launch this long after the SIGINT (60)')
    ap.add_argument('--py-spy', default=shutil.which('py-spy'),
                    help='py-spy executable for the stacks of a hung node (default: on PATH)')
    ap.add_argument('--dumps', default=None, help='folder for the stacks of the hung nodes')
    args = ap.parse_args(argv)
    from sam2real_ros.common.processes import ProcessGroup
    from sam2real_ros.inference import export
    from tqdm import tqdm
    workdir = tempfile.mkdtemp(prefix='sam2real_launch_shutdown_')
    args.dumps = args.dumps or os.path.join(workdir, 'dumps')
    os.makedirs(args.dumps, exist_ok=True)
    model = os.path.join(workdir, 'model.onnx')
    export.main(['--random', '--profile', 'fast', '--no-verify', '--classes', 'bg,a,b',
                 '--out', model])
    t0, load0, records = time.monotonic(), os.getloadavg()[0], []
    with ProcessGroup(os.path.join(workdir, 'logs')) as procs:
        try:
            for i in tqdm(range(args.cycles), unit='cycle'):
                records.append(cycle(i, args, procs, model, workdir))
                print(f'cycle {i}: {json.dumps(records[-1])}', flush=True)
        except KeyboardInterrupt:
            print(f'interrupted after {len(records)} cycle(s)', flush=True)
    ok = [r for r in records if 'error' not in r]
    per_node = {}
    for r in ok:
        for name, s in r['ended_s'].items():
            per_node.setdefault(name, []).append(s)
    out = {
        'cycles': len(ok), 'errors': len(records) - len(ok),
        'hangs': sum(len(r['hung']) for r in ok),
        'hung_nodes': sorted({n for r in ok for n in r['hung']}),
        'escalated': sum(len(r['escalated']) for r in ok),
        'bad_codes': sum(len(r['died']) + (r['launch_code'] != 0) for r in ok),
        'tracebacks': sum(r['traceback'] for r in ok),
        'ended_s': {n: {'min': min(v), 'median': statistics.median(v), 'max': max(v)}
                    for n, v in sorted(per_node.items())},
        'dumps': args.dumps, 'logs': os.path.join(workdir, 'logs'),
        'load_1m_start': round(load0, 2), 'load_1m_end': round(os.getloadavg()[0], 2),
        'wall_s': round(time.monotonic() - t0, 1)}
    print(json.dumps(out))
    return 0 if not (out['hangs'] or out['bad_codes'] or out['errors']) else 1


if __name__ == '__main__':
    raise SystemExit(main())
