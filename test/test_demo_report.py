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

"""The demo report's numbers (ROS-free) and the figures the docs quote for the demo."""
import os
import re

from conftest import REPO
import numpy as np
import pytest

from sam2real_ros.demo import pipeline, report, report_html, report_images

REFERENCE = {'delta': 0.025, 'std': 0.018, 'seeds': 3, 'iterations': 200, 'doc': 'a.md'}


def test_paired_differences_and_their_spread():
    runs = {('synthetic_only', 0): {'miou_last_k': 0.20}, ('full', 0): {'miou_last_k': 0.23},
            ('synthetic_only', 1): {'miou_last_k': 0.30}, ('full', 1): {'miou_last_k': 0.29}}
    p = report.paired(runs, [0, 1])
    assert p['diffs'] == pytest.approx([0.03, -0.01])
    assert p['mean'] == pytest.approx(0.01)
    assert p['std'] == pytest.approx(np.std([0.03, -0.01], ddof=1))
    assert p['n'] == 2 and p['full_higher'] == 1


def _p(diffs):
    n = len(diffs)
    return {'diffs': diffs, 'mean': float(np.mean(diffs)), 'n': n,
            'std': float(np.std(diffs, ddof=1)) if n > 1 else float('nan'),
            'full_higher': sum(d > 0 for d in diffs)}


def verdict(p):
    return report.verdict(p, REFERENCE)


def test_the_verdict_does_not_overclaim_in_either_direction():
    bench = '+0.025 +- 0.018'
    mixed = verdict(_p([0.015, -0.007]))
    assert mixed.startswith('No clear difference') and 'helps or hurts' in mixed
    assert bench in mixed
    for diffs in ([0.004, 0.006], [-0.004, -0.006]):  # two seeds agreeing: still not evidence
        text = verdict(_p(diffs))
        assert 'not evidence either way' in text and bench in text
        assert ('SAM regularization' if diffs[0] > 0 else 'synthetic-only') in text
    one = verdict(_p([-0.02]))
    assert 'One seed' in one and 'hurt' not in one
    strong = verdict(_p([0.020, 0.018, 0.022]))
    assert strong.startswith('SAM regularization scored higher in all 3 seeds')
    assert 'small sample' in strong
    weak = verdict(_p([0.001, 0.030, 0.0005]))  # same sign but mean within 2 SE
    assert 'not evidence either way' in weak


def test_the_verdict_quotes_the_reference_it_is_given_and_no_other():
    p = _p([0.015, -0.007])
    alone = report.verdict(p)
    assert 'For scale' not in alone and alone.endswith('helps or hurts.')
    other = dict(REFERENCE, delta=-0.1, std=0.05, seeds=5, doc='b.md')
    assert report.verdict(p, other) == (
        f'{alone} For scale: the sim2real benchmark (b.md: 5 seeds, 200 iterations each, paired '
        'the same way) measures -0.100 +- 0.050 for this comparison.')


def test_the_benchmark_figure_quoted_by_the_demo_is_the_documented_one():
    with open(os.path.join(REPO, 'docs', 'sim2real.md')) as f:
        doc = f.read()
    row = re.search(r'^\|[^|\n]*\| SAM regularization \(full\) \|[^|]*\|[^|]*\| '
                    r'([-+][0-9.]+) ± ([0-9.]+) \| (\d+) \|', doc, re.M)
    assert row, 'docs/sim2real.md has no table row for SAM regularization (full)'
    b = pipeline.SIM2REAL_REFERENCE
    assert (float(row.group(1)), float(row.group(2)), int(row.group(3))) == \
        (b['delta'], b['std'], b['seeds'])


def _summary(camera_frames=300, images=True):
    """Return a demo summary as :func:`report.build` makes it (two seeds, made-up numbers)."""
    runs = [{'variant': v, 'seed': sd, 'iterations': 200, 'epochs': 8, 'k': 2, 'miou': 0.21,
             'miou_last_k': 0.2 + 0.01 * sd + (0.005 if v == 'full' else 0)}
            for sd in (0, 1) for v in ('synthetic_only', 'full')]
    p = report.paired({(r['variant'], r['seed']): r for r in runs}, [0, 1])
    node = {'hz': 28.0, 'frames': 280, 'latency_ms_p50': 40.0, 'latency_ms_p95': float('nan'),
            'node': {'inference_ms_p50': 12.0, 'backend': 'onnxruntime'},
            'camera_frames': camera_frames, 'undelivered': 3, 'dropped': 5}
    separation = [{'variant': 'full', 'seed': 0, 'segments': (1.0, 2.0, 2.0),
                   'objects': (1.0, float('nan'), float('nan'))}] if images else []
    return {'out': '/runs/<x>', 'started': 'now', 'machine': '2 CPU cores',
            'episodes': [{'image': 'episode_1.png', 'id': 'ep&1', 'frames': 6,
                          'phases': {'before': 2, 'after': 4}, 'segments': [40, 50]}],
            'segmenter': 'fallback', 'eval_frames': 16,
            'train': {'seeds': [0, 1], 'paired': p, 'verdict': report.verdict(p, REFERENCE),
                      'mean': {'synthetic_only': 0.205, 'full': 0.21}, 'runs': runs,
                      'separation': separation},
            'separation_frames': 4, 'predictions': 'predictions.png' if images else None,
            'curves': 'curves.png' if images else None, 'model': 'm.onnx',
            'background_miou': 0.18, 'background_fraction': 0.7,
            'classes': [('bg', [0, 0, 0]), ('a', [255, 0, 0])], 'node': node,
            'stages': [('robot', 4.0), ('training', 120.0)],
            'config': {'scene': 0, 'camera_rate': 10.0, 'node_camera_rate': 30.0,
                       'seconds': 10.0, 'grasps': 3, 'seeds': [0, 1]}}


def test_the_page_has_every_section_and_reads_back_its_numbers(tmp_path):
    report_html.write_html(str(tmp_path / 'full.html'), _summary())
    page = (tmp_path / 'full.html').read_text()
    for title in ('1. Captured grasp episodes', '2. Synthetic only vs SAM-regularized',
                  'Predictions on held-out', 'Do the features do what', '3. The segmentation',
                  'Stages'):
        assert title in page
    assert re.search(r'id="paired-mean">\+0\.0050<', page)
    assert 'data-variant="full" data-seed="1">0.2150<' in page
    assert 'id="camera-frames">300<' in page and 'id="replaced">5<' in page
    assert 'data-run="full_s0" data-kind="objects">n/a<' in page
    assert 'ep&amp;1' in page and '/runs/&lt;x&gt;' in page  # escaped
    assert 'For scale: the sim2real benchmark (a.md' in page
    assert page.rstrip().endswith('</body></html>')
    report_html.write_html(str(tmp_path / 'bare.html'),
                           _summary(camera_frames=None, images=False))
    bare = (tmp_path / 'bare.html').read_text()
    assert 'Predictions on held-out' not in bare and 'Do the features' not in bare
    assert '<img src="curves.png"' not in bare and 'id="camera-frames-unknown"' in bare


def test_feature_separation_measures_spread_and_distance():
    feats = np.zeros((10, 20, 2), np.float32)
    feats[:, 10:] = (3.0, 4.0)  # two constant halves, 5 apart
    masks = np.zeros((2, 10, 20), bool)
    masks[0, :, :10], masks[1, :, 10:] = True, True
    spread, dist, n = report.feature_separation(feats, masks)
    assert (spread, dist, n) == (pytest.approx(0.0), pytest.approx(5.0), 2)
    noisy = feats + np.random.default_rng(0).normal(0, 0.5, feats.shape).astype(np.float32)
    spread, dist, _ = report.feature_separation(noisy, masks)
    assert 0.5 < spread < 0.9 and 4.5 < dist < 5.5
    # a segment spanning both halves: the spread grows to the half-distance
    assert report.feature_separation(feats, np.ones((2, 10, 20), bool))[0] == \
        pytest.approx(2.5)
    assert np.isnan(report.feature_separation(feats, masks[:1])[1])


def test_label_segments_split_each_class_into_connected_objects():
    labels = np.zeros((20, 30), np.uint8)
    labels[2:8, 2:8] = 3
    labels[2:8, 20:28] = 3  # a second object of the same class
    labels[12:18, 5:25] = 5
    labels[0, 29] = 5  # a speck below min_pixels
    masks = report.label_segments(labels)
    assert sorted(int(m.sum()) for m in masks) == [36, 48, 120]


def test_segment_outlines_show_only_the_largest_segments():
    rgb = np.full((60, 80, 3), 200, np.uint8)
    masks = np.zeros((20, 60, 80), bool)
    for i in range(20):  # 20 nested squares, the largest first
        masks[i, i:60 - i, i:80 - i] = True
    out = report_images.segment_outlines(rgb, masks, count=3)
    changed = np.any(out != (rgb * 0.55).astype(np.uint8), axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.min() == 0 and xs.min() == 0  # the largest segment's outline
    assert not changed[10:50, 10:70].any()  # the small inner segments are not drawn


def test_the_documented_training_figure_is_what_the_code_gives(tmp_path):
    """docs/demo.md quotes a small deterministic run; one thread must reproduce it exactly."""
    import torch

    from sam2real_ros.training import train
    from sam2real_ros.training.config import load_config
    with open(os.path.join(REPO, 'docs', 'demo.md')) as f:
        doc = f.read()
    m = re.search(r'OMP_NUM_THREADS=1 tools/venv-run python -m sam2real_ros\.training\.train '
                  r'--config (\S+) --out \S+ ([^\n`]+)\n```\n+ends with mIoU \*\*([0-9.]+)\*\* '
                  r'\(torch ([0-9.]+), CPU capability (\w+), one thread', doc)
    assert m, 'docs/demo.md lost its reproducibility figure'
    config, overrides, figure, version, capability = m.groups()
    here = (torch.__version__.split('+')[0], torch.backends.cpu.get_cpu_capability())
    if here != (version, capability):
        pytest.skip(f'the figure was measured with torch {version} on {capability}; this is '
                    f'torch {here[0]} on {here[1]} (floating-point results differ)')
    cfg = load_config(os.path.join(REPO, config), overrides.split())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = train.run(cfg, str(tmp_path / 'run'), progress=False)
    finally:
        torch.set_num_threads(threads)
    decimals = len(figure.split('.')[1])
    assert f'{summary["miou"]:.{decimals}f}' == figure, (
        f'docs/demo.md says {figure}, the code gives {summary["miou"]:.{decimals}f}: update '
        'the figure (and the measured runs beside it) if the change of numbers is intended')
