"""Shared pytest set-up: an isolated ROS domain per test run and real node processes."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One ROS domain per test run (loopback only), so parallel runs on one machine never cross-talk.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('PYTHONUNBUFFERED', '1')
if not os.environ.get('ROS_DISTRO'):
    venv = os.path.dirname(os.path.dirname(sys.executable))
    if venv not in os.environ.get('AMENT_PREFIX_PATH', '').split(':'):
        os.environ['AMENT_PREFIX_PATH'] = ':'.join(
            p for p in (venv, os.environ.get('AMENT_PREFIX_PATH')) if p)


class Processes:
    """Starts real processes (``python -m module ...``) and stops them all at teardown."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def start(self, *args, name=None, env=None):
        """Start ``sys.executable *args``; stdout+stderr go to ``<tmp>/<name>.log``."""
        name = name or f'proc{len(self.procs)}'
        log_path = self.tmp_path / f'{name}.log'
        full_env = dict(os.environ, **(env or {}))
        log = open(log_path, 'w')
        proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                                env=full_env, cwd=REPO, start_new_session=True)
        proc.log_path = log_path
        proc.log_file = log
        self.procs.append(proc)
        return proc

    @staticmethod
    def output(proc):
        """Everything the process printed so far."""
        if not proc.log_file.closed:
            proc.log_file.flush()
        return proc.log_path.read_text(errors='replace')

    @staticmethod
    def stop(proc, sig=signal.SIGINT, timeout=10.0):
        """Send ``sig`` and wait; returns the exit code (kills after ``timeout``)."""
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        proc.log_file.close()
        return proc.returncode

    def stop_all(self):
        for proc in reversed(self.procs):
            if not proc.log_file.closed:
                self.stop(proc)


@pytest.fixture
def processes(tmp_path):
    """Real processes for integration tests; all are stopped when the test ends."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def wait_until(predicate, timeout, interval=0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


FAST_MODEL_CLASSES = ['bg', 'a', 'b']


@pytest.fixture(scope='session')
def fast_onnx_model(tmp_path_factory):
    """One random-weight ``fast`` ONNX model (classes bg, a, b) shared by the node tests."""
    from sam2real_ros.inference import export
    path = tmp_path_factory.mktemp('model') / 'fast.onnx'
    rc = export.main(['--random', '--profile', 'fast', '--no-verify',
                      '--classes', ','.join(FAST_MODEL_CLASSES), '--out', str(path)])
    assert rc in (0, None) and path.is_file()
    return path


@pytest.fixture(scope='session')
def tiny_models(tmp_path_factory):
    """
    Two small random-weight ONNX models with different class counts: ``{3: path, 5: path}``.

    ConvNeXt-atto with a narrow decoder at 96x128 (quick to export and to run); classes
    ``c0..c2`` and ``c0..c4``. For hot reload and class-map tests.
    """
    import torch

    from sam2real_ros.inference import export
    from sam2real_ros.modeling import model as mdl
    out = {}
    folder = tmp_path_factory.mktemp('tiny_models')
    for n in (3, 5):
        cfg = mdl.ModelConfig(backbone='convnext_atto', pretrained=False, num_classes=n,
                              fpn_channels=16, fusion_channels=32, feature_hidden=24,
                              fusion_stride=8, fusion_kernel=1, input_size=(96, 128),
                              name='tiny')
        torch.manual_seed(n)
        out[n] = folder / f'tiny{n}.onnx'
        export.export_onnx(mdl.build_model(cfg), cfg, [f'c{i}' for i in range(n)],
                           str(out[n]), verify=False)
    return out
