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

"""Shared pytest set-up: an isolated ROS domain per test run and real node processes."""
import os
import random
import re
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


@pytest.fixture
def processes(tmp_path):
    """Real processes for integration tests (logs in ``tmp_path``); stopped when the test ends."""
    from sam2real_ros.common.processes import ProcessGroup
    with ProcessGroup(tmp_path, cwd=REPO) as group:
        yield group


def wait_until(predicate, timeout, interval=0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def send_grasp(client, goal, timeout=60.0, wait=None):
    """
    Send one goal with the action client ``client``; wait for its result.

    Returns ``(goal id hex, status)``. ``wait(predicate, timeout)`` waits for the futures:
    ``wait_until`` (default) when an executor spins the client's node elsewhere, a spin loop
    when the caller spins it itself (launch_testing).
    """
    wait = wait or wait_until
    assert client.wait_for_server(timeout_sec=30.0), 'no grasp server'
    sent = client.send_goal_async(goal)
    assert wait(sent.done, timeout), 'the goal was not answered'
    handle = sent.result()
    assert handle.accepted, 'the goal was rejected'
    result = handle.get_result_async()
    assert wait(result.done, timeout), 'no result'
    return bytes(handle.goal_id.uuid).hex(), result.result().status


def grasp_until_recorded(grasp, recorded, terminal_ignored, timeout=120, tries=3):
    """
    Send a grasp (``grasp()``) until ``recorded()`` is true; returns its last value.

    The graph shows a recorder's goal status reader before the action server has matched it,
    and under load the match can come seconds later: a short grasp has then ended, and the
    recorder hears only the latched SUCCEEDED array, ignores that goal and says so
    (``terminal_ignored()``: its ``terminal_goals_ignored`` count; a WARN names the goal).
    Only then is the grasp sent again; the recorder's own tests check both paths.
    """
    for _ in range(tries):
        before = terminal_ignored()
        grasp()
        wait_until(lambda: recorded() or terminal_ignored() > before, timeout)
        if recorded() or terminal_ignored() == before:
            break
    return recorded()


def call_service(client, request, timeout=15.0, tries=1):
    """
    Call a service whose server ``client`` already sees; returns the response.

    ``tries`` > 1 sends the request again when no answer came within ``timeout``: only for a
    request that does the same when repeated. A request is lost when the server answers before
    it has matched this new client's response reader: ``wait_for_service`` sees only the
    server, and under load matching takes seconds (seen under make test-stress: a
    ``set_parameters`` request and the first ``~/start`` to a fresh recorder, no answer in 15 s).
    """
    for _ in range(tries):
        future = client.call_async(request)
        if wait_until(future.done, timeout):
            return future.result()
    raise AssertionError(f'{client.srv_name}: no answer in {tries} x {timeout:g} s')


def own_stderr_lines(stderr):
    """
    Return the lines of a node's stderr without the DDS library's own diagnostics.

    Fast DDS prints e.g. ``[RTPS_TRANSPORT_SHM Error] Failed init_port ...`` when another
    process left a shared-memory port behind; that is the middleware's line, not the node's.
    """
    return [line for line in stderr.strip().splitlines()
            if line.strip() and not re.search(r'\[RTPS_[A-Z_]+ (Error|Warning|Info)\]', line)]


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


def installed_package():
    """
    Find sam2real installed in an ament prefix (``make build``, ``colcon build``).

    Returns
    -------
      (str or None, str or None): ``share/sam2real`` of the installed package and the
      ``PYTHONPATH`` its executables need, or ``None`` and the reason it is not installed.

    """
    try:
        from ament_index_python.packages import get_package_prefix, get_package_share_directory
        share, prefix = get_package_share_directory('sam2real'), get_package_prefix('sam2real')
    except ImportError as exc:
        return None, f'no ROS 2 distro sourced and no launch tooling installed ({exc})'
    except Exception as exc:  # PackageNotFoundError: not built into an ament prefix
        return None, ('sam2real is not installed in an ament prefix on AMENT_PREFIX_PATH (make '
                      f'build, or colcon build and source install/setup.bash): {exc}')
    site = os.path.join(prefix, 'lib', f'python{sys.version_info[0]}.{sys.version_info[1]}',
                        'site-packages')
    path = os.pathsep.join(p for p in (site, os.environ.get('PYTHONPATH')) if p)
    return share, path


def write_labeled_folder(spec, root, ext='.png'):
    """
    Write the frames of labeled dataset ``spec`` as an image+label folder under ``root``.

    ``root/images/<key stem><ext>``, ``root/labels/<key stem>.png`` (uint8 class ids) and
    ``root/classes.txt``: the layout of dataset type ``labeled_folder`` (docs/datasets.md).
    Returns the samples written.
    """
    from sam2real_ros.common.io_utils import atomic_write_png
    from sam2real_ros.data.datasets import build_labeled
    ds = build_labeled(spec)
    samples = [ds[i] for i in range(len(ds))]
    os.makedirs(root, exist_ok=True)
    for s in samples:
        stem = os.path.splitext(s['key'])[0]
        img = os.path.join(str(root), 'images', stem + ext)
        os.makedirs(os.path.dirname(img), exist_ok=True)
        if ext == '.png':
            atomic_write_png(img, s['rgb'])
        else:
            import cv2
            cv2.imwrite(img, s['rgb'][:, :, ::-1])  # lossy (JPEG): the labels stay exact
        atomic_write_png(os.path.join(str(root), 'labels', stem + '.png'), s['labels'])
    with open(os.path.join(str(root), 'classes.txt'), 'w') as f:
        f.write('\n'.join(ds.class_names[1:]) + '\n')
    return samples
