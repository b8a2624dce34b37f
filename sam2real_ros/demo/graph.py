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
Process graphs for the demo and benchmarks: sim_camera + segmentation_node + a listener.

:class:`NodeGraph` starts ``sim_camera`` and ``segmentation_node`` as real processes and measures
the label rate at a :class:`Listener`; used by the demo's stage 6
(``sam2real_ros/demo/pipeline.py``) and by ``benchmarks/segmentation_node.py``.
:func:`run_node_demo` is the node-only demo (a random-weight or given model on the simulated
camera).
"""
import os
import sys
import tempfile
import threading
import time

import numpy as np
from sam2real_ros.common.conversions import stamp_to_ns
from sam2real_ros.common.processes import ProcessDied, ProcessGroup
from sam2real_ros.inference import export
from sam2real_ros.nodes.graph import node_command, TIAGO_CAMERA

LABELS = '/segmentation_node/labels'
CAMERA_INFO = TIAGO_CAMERA['camera_info']  # where NodeGraph's sim_camera publishes


class Listener:
    """
    An rclpy node in its own context, spun in a thread; records label stamps and status.

    ``self.labels`` holds ``(receipt_ns, stamp_ns)`` per label message; ``self.status`` the
    latest ``segmentation_node`` diagnostic values (dict of str), ``self.diags`` every one as
    ``(stamp_ns, values)``; ``self.camera`` the stamps of the camera's camera_info messages (one
    per published frame), to count the frames the camera sent.
    """

    def __init__(self, labels_topic=LABELS, camera_info_topic=CAMERA_INFO):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image

        from sam2real_ros.nodes.runner import BackgroundNode
        self._stamp_to_ns = stamp_to_ns
        self.labels, self.status, self.lock = [], {}, threading.Lock()
        self.diags, self.camera = [], []
        self._ros = BackgroundNode('sam2real_demo_listener')
        self.node = self._ros.node
        self.node.create_subscription(Image, labels_topic, self._on_labels, 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        # best effort: matches a reliable and a best-effort camera alike, and a missed ACK can
        # never stall the count; deep, so a slow spin loses none
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        info_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                              reliability=ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(CameraInfo, camera_info_topic, self._on_info, info_qos)

    def _on_labels(self, msg):
        now = time.time_ns()
        with self.lock:
            self.labels.append((now, self._stamp_to_ns(msg.header.stamp)))

    def _on_diag(self, msg):
        for st in msg.status:
            if st.name.startswith('segmentation_node'):
                with self.lock:
                    self.status = {kv.key: kv.value for kv in st.values}
                    self.diags.append((self._stamp_to_ns(msg.header.stamp), self.status))

    def _on_info(self, msg):
        with self.lock:
            self.camera.append(self._stamp_to_ns(msg.header.stamp))

    def drops(self, t0_ns, t1_ns):
        """
        Count what happened to the camera's frames between two node diagnostics in a window.

        Returns
        -------
            (dict | None): ``camera_frames`` (published, by their camera_info), ``delivered``
            (frames the node's subscription received), ``undelivered`` (published, never
            received), ``replaced`` (received, then replaced in the newest-frame slot before the
            model took them), ``window_s``; None without two diagnostics in the window.
            ``camera_frames`` and ``undelivered`` are None (unknown, not 0) when the node received
            frames in the window but this listener got none of their camera_info messages.

        """
        with self.lock:
            diags = [(t, d) for t, d in self.diags if t0_ns <= t <= t1_ns]
            camera = list(self.camera)
        if len(diags) < 2 or 'frames_in' not in diags[0][1]:
            return None
        (ta, a), (tb, b) = diags[0], diags[-1]
        published = sum(ta < t <= tb for t in camera)
        delivered = int(b['frames_in']) - int(a['frames_in'])
        if published == 0 and delivered > 0:
            published = None  # the listener missed the camera_info stream: unknown, not 0
        return {'camera_frames': published, 'delivered': delivered,
                'undelivered': None if published is None else max(0, published - delivered),
                'replaced': int(b['dropped_frames']) - int(a['dropped_frames']),
                'window_s': (tb - ta) / 1e9}

    def snapshot(self):
        """Return ``(labels copy, status copy)``."""
        with self.lock:
            return list(self.labels), dict(self.status)

    def close(self):
        """Stop spinning and shut the context down."""
        self._ros.close()


class NodeGraph:
    """
    Context manager: sim_camera + segmentation_node processes and a :class:`Listener`.

    Arguments:
    ---------
        model_path (str): model for the node.
        workdir (str): where the processes' logs go (``camera.log``, ``node.log``).
        rate_hz (float): camera rate.
        source (str): sim_camera source (``pattern``, ``procedural`` or ``world``).
        node_params (dict): extra node parameters (``name: value``).
        camera_params (dict): extra sim_camera parameters (e.g. ``num_frames``).

    """

    def __init__(self, model_path, workdir, rate_hz=30.0, source='pattern', node_params=None,
                 camera_params=None):
        self.workdir = workdir
        self.camera_args = node_command('sim_camera', dict(
            {'rate_hz': float(rate_hz), 'source': source}, **(camera_params or {})),
            params_file=False)
        self.node_args = node_command('segmentation_node', dict(
            {'model_path': model_path}, **(node_params or {})), params_file=False)
        self.procs = ProcessGroup(workdir)

    def log(self, name):
        """Everything process ``name`` printed so far."""
        return self.procs.output(name)

    def check_alive(self):
        """Raise RuntimeError with the log tail when a process has exited."""
        try:
            self.procs.check_alive()
        except ProcessDied as exc:
            raise RuntimeError(f'{exc}:\n{exc.tail}') from None

    def __enter__(self):
        self.listener = Listener()
        self.procs.start(*self.camera_args, name='camera')
        self.procs.start(*self.node_args, name='node')
        return self

    def wait_for_labels(self, timeout=120.0, camera_timeout=15.0):
        """
        Block until the first label arrives; RuntimeError on timeout or a dead process.

        Then wait up to ``camera_timeout`` s for the listener's first camera_info: the listener
        exists before the camera, and discovery can match it seconds after the node (with a
        camera whose Fast DDS profile replaces the built-in transports, loopback-only
        discovery waits for the next periodic announcement), so frames published before then
        would not be counted. Without one the camera count is reported unknown.
        """
        deadline = time.monotonic() + timeout
        while not self.listener.snapshot()[0]:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f'no labels within {timeout:g} s; node log:\n'
                                   + self.log('node')[-2000:])
            time.sleep(0.1)
        deadline = time.monotonic() + camera_timeout
        while time.monotonic() < deadline:
            with self.listener.lock:
                if self.listener.camera:
                    return
            self.check_alive()
            time.sleep(0.1)

    def measure(self, seconds, progress=True):
        """
        Measure labels received during ``seconds``.

        Returns
        -------
            (dict): ``hz`` (labels/s at the listener), ``latency_ms_p50``/``_p95`` (camera
            stamp -> label received), ``frames`` (labels), ``dropped`` (frames replaced in the
            node's newest-frame slot during the window), ``camera_frames`` and ``undelivered``
            (frames the camera published, and those of them the node never received, between
            the first and last diagnostics of the window; None when unknown), ``node`` (the
            node's last diagnostic values).

        """
        from tqdm import tqdm
        start_labels, start_status = self.listener.snapshot()
        t0 = time.time_ns()
        bar = tqdm(total=int(round(seconds)), disable=not progress, desc='segmentation_node',
                   bar_format='{desc}: {n}/{total} s |{bar:20}|{postfix}', leave=True)
        for _ in range(int(round(seconds))):
            time.sleep(1.0)
            self.check_alive()
            labels, status = self.listener.snapshot()
            recent = [r for r, _ in labels if r >= time.time_ns() - 1_000_000_000]
            bar.set_postfix_str(f'{len(recent)} Hz, node {status.get("rate_hz", "?")} Hz, '
                                f'latency p50 {status.get("latency_ms_p50", "?")} ms, '
                                f'dropped {status.get("dropped_frames", "?")}')
            bar.update(1)
        bar.close()
        t1 = time.time_ns()
        labels, status = self.listener.snapshot()
        window = [(r, s) for r, s in labels[len(start_labels):] if t0 <= r <= t1]
        lat = np.array([(r - s) / 1e6 for r, s in window]) if window else np.array([np.nan])
        drops = self.listener.drops(t0, t1)
        dropped = (int(status.get('dropped_frames', 0))
                   - int(start_status.get('dropped_frames', 0)))
        return {
            'camera_frames': drops['camera_frames'] if drops else None,
            'undelivered': drops['undelivered'] if drops else None,
            'drops': drops,
            'hz': len(window) / ((t1 - t0) / 1e9),
            'latency_ms_p50': float(np.percentile(lat, 50)),
            'latency_ms_p95': float(np.percentile(lat, 95)),
            'frames': len(window),
            'dropped': drops['replaced'] if drops else dropped,
            'node': status,
        }

    def __exit__(self, *exc):
        self.procs.stop_all()
        self.listener.close()
        return False


def export_random_model(profile, out_path, classes='background,object_a,object_b'):
    """Export a random-weight model of ``profile`` to ``out_path``; raises RuntimeError."""
    rc = export.main(['--random', '--profile', profile, '--classes', classes,
                      '--out', out_path])
    if rc not in (0, None):
        raise RuntimeError(f'export of a random {profile!r} model failed (exit code {rc})')
    return out_path


def run_node_demo(profile='fast', seconds=10.0, rate_hz=30.0, workdir=None, model_path=None,
                  source='pattern'):
    """
    Run the node demo; returns an exit code (0: labels flowed, 1: they did not).

    Arguments:
    ---------
        profile (str): model profile for the random-weight export (when no ``model_path``).
        seconds (float): how long to measure after the first label.
        rate_hz (float): simulated camera rate.
        workdir (str | None): for the model and the process logs (a temporary dir if None).
        model_path (str | None): an existing model to use instead of a random export.
        source (str): sim_camera frame source (``pattern`` or ``procedural``).

    Returns
    -------
        int: the exit code.

    """
    workdir = workdir or tempfile.mkdtemp(prefix='sam2real_demo_')
    os.makedirs(workdir, exist_ok=True)
    if model_path is None:
        print(f'exporting a random-weight {profile!r} model ...', flush=True)
        model_path = export_random_model(profile, os.path.join(workdir, f'{profile}.onnx'))
    print(f'starting sim_camera ({rate_hz:g} Hz, {source}) and segmentation_node; logs in '
          f'{workdir}', flush=True)
    try:
        with NodeGraph(model_path, workdir, rate_hz=rate_hz, source=source) as graph:
            graph.wait_for_labels()
            res = graph.measure(seconds, progress=sys.stderr.isatty())
    except RuntimeError as exc:
        print(f'sam2real demo: {exc}', file=sys.stderr)
        return 1
    node = res['node']
    print(f'segmentation_node: {res["hz"]:.1f} Hz end to end at the listener '
          f'({res["frames"]} label images in {seconds:g} s), latency camera->listener p50 '
          f'{res["latency_ms_p50"]:.0f} ms / p95 {res["latency_ms_p95"]:.0f} ms, inference p50 '
          f'{node.get("inference_ms_p50", "?")} ms, dropped {res["dropped"]} camera frames, '
          f'backend {node.get("backend", "?")}')
    return 0
