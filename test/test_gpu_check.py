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

"""benchmarks/gpu_check.sh: the cpu mode runs every step; without a GPU the default mode stops."""
import json
import os
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'benchmarks', 'gpu_check.sh')


def _run(args, cwd, timeout, **env):
    return subprocess.run(['bash', SCRIPT] + args, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PY=sys.executable, **env), timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_without_a_gpu_the_gpu_mode_stops_with_one_line(tmp_path):
    # `bash benchmarks/gpu_check.sh OUT` (the GPU command) on a machine without a GPU: exit 2
    # at once, one line naming the cause and the cpu mode, a summary that says so, no step run
    out = tmp_path / 'out'
    proc = _run([str(out)], tmp_path, 600)   # one python start (torch import); loaded CI
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and 'no CUDA GPU' in err[0] and f'gpu_check.sh {out} cpu' in err[0]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['ok'] is False and 'no CUDA GPU' in summary['error']
    assert not summary['steps'] and not list(out.glob('*.log'))
    # an unknown mode is refused before anything runs
    proc = _run([str(tmp_path / 'other'), 'gpu'], tmp_path, 600)
    assert proc.returncode == 2 and 'mode must be cuda or cpu' in proc.stderr
    assert not (tmp_path / 'other').exists()


@pytest.mark.slow
@pytest.mark.rostest
def test_gpu_check_cpu_mode_writes_the_summary(tmp_path):
    # The same script and steps as on the GPU machine, with small sizes on the CPU: the node
    # benchmark (fast profile, real node processes over DDS), the SAM benchmark (the tests'
    # micro SAM, onnx and torch backends, then SDPA), the training-iteration benchmark (tiny
    # model). Run from another folder: the script finds the repository itself. About 30 s of
    # CPU time; the limits are generous because the wall time on a shared 2-core machine is
    # mostly waiting (process starts, imports).
    out = tmp_path / 'out'
    proc = _run([str(out), 'cpu'], tmp_path, 3700, GPU_CHECK_BUDGET='3600', GPU_CHECK_SLACK='5')
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = json.loads((out / 'summary.json').read_text())
    assert last['ok'] and summary['ok'], json.dumps(summary, indent=1)[:4000]
    steps = summary['steps']
    assert list(steps) == ['node', 'sam', 'train', 'sam_compile']
    node = steps['node']['result']
    assert node['profile'] == 'fast' and node['device'] == 'cpu' and node['hz'] > 0
    sam = steps['sam']['result']
    assert sam['model_type'] == 'micro' and set(sam['variants']) == {'onnx', 'torch'}
    for v in sam['variants'].values():
        assert v['count_diff'] == 0 and v['min_mask_iou'] >= 0.99 and v['s_per_frame'] > 0
    assert sam['naive_s_per_frame'] > 0 and sam['naive_masks_per_frame'] >= 3
    assert (out / 'onnx_cache').is_dir()
    train = steps['train']['result']
    assert set(train['timings']) == {'fp32', 'fp32+channels_last', 'bf16',
                                     'bf16+channels_last'}
    assert len(train['curves']['sup_loss']['bf16']) == 4
    assert steps['sam_compile']['result']['variants']['torch+sdpa']['min_mask_iou'] >= 0.99
    assert summary['machine'].startswith('no GPU') and summary['wall_s'] <= 3600
