"""benchmarks/gpu_check.sh in its cpu mode: every step runs and the summary holds its figures."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.rostest
def test_gpu_check_cpu_mode_writes_the_summary(tmp_path):
    # The same script and steps as on the GPU machine, with tiny sizes on the CPU: the node
    # benchmark (fast profile, real node processes over DDS), the SAM benchmark (tiny SAM, onnx
    # and torch backends, then SDPA), the training-iteration benchmark (tiny model).
    out = tmp_path / 'out'
    env = dict(os.environ, PY=sys.executable, GPU_CHECK_BUDGET='900')
    proc = subprocess.run(['bash', os.path.join(REPO, 'benchmarks', 'gpu_check.sh'), str(out),
                           'cpu'], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1000)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = json.loads((out / 'summary.json').read_text())
    assert last['ok'] and summary['ok'], json.dumps(summary, indent=1)[:4000]
    steps = summary['steps']
    assert list(steps) == ['node', 'sam', 'train', 'sam_compile']
    node = steps['node']['result']
    assert node['profile'] == 'fast' and node['device'] == 'cpu' and node['hz'] > 0
    sam = steps['sam']['result']
    assert set(sam['variants']) == {'onnx', 'torch'}
    for v in sam['variants'].values():
        assert v['count_diff'] == 0 and v['min_mask_iou'] >= 0.99 and v['s_per_frame'] > 0
    assert sam['naive_s_per_frame'] > 0 and sam['naive_masks_per_frame'] > 0
    assert (out / 'onnx_cache').is_dir()
    train = steps['train']['result']
    assert set(train['timings']) == {'fp32', 'fp32+channels_last', 'bf16',
                                     'bf16+channels_last'}
    assert len(train['curves']['sup_loss']['bf16']) == 4
    assert steps['sam_compile']['result']['variants']['torch+sdpa']['min_mask_iou'] >= 0.99
    assert summary['machine'].startswith('no GPU')
