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
Results of the sim2real benchmark: tables (markdown, CSV), mIoU curves (PNG), JSON summary.

Used by ``benchmarks/sim2real.py`` (which it does not import); to rewrite the report of an
existing output folder without training anything, run
``python -m benchmarks.sim2real --report-only --out runs/sim2real [--size ...]``.
"""
import csv
import io
import math
import os

import numpy as np

from sam2real_ros.common.io_utils import atomic_write_bytes


def run_metrics(run_dir):
    """Rows of a run's ``metrics.csv`` as the trainer's reader gives them ([] when absent)."""
    from sam2real_ros.training.train import read_metrics
    return read_metrics(os.path.join(run_dir, 'metrics.csv'))


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float('nan')


def _mean_std(values):
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return float('nan'), float('nan')
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def collect(runs):
    """
    Per-run rows and per-experiment aggregates.

    Returns
    -------
      (list[dict], list[dict]): run rows (experiment, label, variant, seed, miou = the final
      ``miou_last_k``, miou_final = last epoch's mIoU, epochs, train_s, curve = per-epoch
      mIoU list, offset = epochs of the run it started from) and experiment rows
      (experiment, label, variant, mean, std, n, seeds).

    """
    rows, order = [], []
    for run in runs:
        hist = run_metrics(run['dir'])
        exp = run['exp']
        init = run['cfg'].init_checkpoint
        offset = len(run_metrics(os.path.dirname(init))) if init else 0
        rows.append({'offset': offset, 'experiment': exp['id'],
                     'label': exp.get('label', exp['id']), 'variant': exp['variant'],
                     'seed': run['seed'],
                     'miou': _float(hist[-1]['miou_last_k']) if hist else float('nan'),
                     'miou_final': _float(hist[-1]['miou']) if hist else float('nan'),
                     'epochs': len(hist),
                     'train_s': round(sum(_float(h['time_s']) for h in hist), 1),
                     'curve': [_float(h['miou']) for h in hist]})
        if exp['id'] not in order:
            order.append(exp['id'])
    baselines = {run['exp']['id']: baseline_of(run['exp'], order) for run in runs}
    agg = []
    for eid in order:
        mine = [r for r in rows if r['experiment'] == eid]
        mean, std = _mean_std([r['miou'] for r in mine])
        base = {r['seed']: r['miou'] for r in rows if r['experiment'] == baselines[eid]}
        diffs = [r['miou'] - base[r['seed']] for r in mine if r['seed'] in base]
        dmean, dstd = _mean_std(diffs) if baselines[eid] else (float('nan'), float('nan'))
        agg.append({'experiment': eid, 'label': mine[0]['label'], 'variant': mine[0]['variant'],
                    'mean': mean, 'std': std, 'n': len(mine), 'seeds': [r['miou'] for r in mine],
                    'baseline': baselines[eid], 'delta': dmean, 'delta_std': dstd,
                    'delta_n': len(diffs)})
    return rows, agg


def baseline_of(exp, ids):
    """
    Experiment id an experiment is compared with, seed by seed (None for itself).

    ``baseline`` in the experiment, else the ``synthetic_only`` experiment of its group, else
    the first ``synthetic_only`` experiment (the sweeps compare against the narrow gap's).
    """
    group = exp['id'].split('/')[0]
    cands = [exp.get('baseline'), f'{group}/synthetic_only'] + [
        i for i in ids if i.endswith('/synthetic_only')]
    base = next((c for c in cands if c and c in ids), None)
    return None if base == exp['id'] else base


def _csv(rows, fields):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction='ignore')
    w.writeheader()
    for r in rows:
        w.writerow({k: (f'{r[k]:.4f}' if isinstance(r[k], float) else r[k]) for k in fields})
    return buf.getvalue().encode()


def markdown(agg, meta):
    """Markdown table grouped like the paper's Table II (group = experiment id prefix)."""
    k = meta.get('miou_last_k')
    lines = [f'mIoU (Eq. 8) on held-out target-domain frames, mean ± std over seeds '
             f'(each run: mean of its last {k} epochs).', '',
             'Δ: mIoU minus the synthetic-only run of the same seed (same initialization and '
             'synthetic stream), mean ± std over seeds.', '',
             '| group | variant | mIoU | ± std | Δ vs synthetic only | seeds | per seed |',
             '|---|---|---|---|---|---|---|']
    last = None
    for a in agg:
        group = a['experiment'].split('/')[0]
        per = ', '.join(f'{v:.3f}' for v in a['seeds'])
        delta = '' if math.isnan(a['delta']) else f'{a["delta"]:+.3f} ± {a["delta_std"]:.3f}'
        lines.append(f'| {group if group != last else ""} | {a["label"]} | {a["mean"]:.3f} | '
                     f'{a["std"]:.3f} | {delta} | {a["n"]} | {per} |')
        last = group
    if meta.get('background_only') is not None:  # a reference, e.g. benchmarks/ycbv_sim2real
        lines.append(f'| reference | background everywhere | {meta["background_only"]:.3f} | '
                     '| | | |')
    for key, what in (('real_segments', 'Segments of the unlabeled real frames'),
                      ('pool_segments', 'Segments of the pool'),
                      ('oracle_segments', 'Oracle segments (diagnostic)')):
        q = meta.get(key)
        if q:
            depth = ('' if q['segmenter'] == 'oracle'
                     else f', {q["with_depth"]} segmented with depth')
            lines += ['', f'{what} ({q["segmenter"]}, {q["frames"]} frames{depth}): '
                      f'{q["segments_per_frame"]} segments per frame '
                      f'({q["segments_min"]}-{q["segments_max"]}); best IoU per object '
                      f'(largest IoU of any segment with each of {q["objects"]} visible '
                      f'objects): mean {q["mean_best_iou"]:.3f}, '
                      f'{100 * q["frac_iou_gt_0.5"]:.0f}% > 0.5, '
                      f'{100 * q["frac_iou_gt_0.75"]:.0f}% > 0.75.']
    lines += ['', ' '.join(f'{key}: {val}' for key, val in meta.items()
                           if val is not None and not isinstance(val, dict))]
    return '\n'.join(lines) + '\n'


def plot_curves(path, rows):
    """
    ``curves.png``: mIoU per epoch per experiment (mean over seeds, min-max band), by group.

    A run started from another run's checkpoint (``init_from``) is drawn after that run's epochs.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups = []
    for r in rows:
        g = r['experiment'].split('/')[0]
        if g not in groups:
            groups.append(g)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    for ax, g in zip(axes[0], groups):
        exps = []
        for r in rows:
            if r['experiment'].split('/')[0] == g and r['experiment'] not in exps:
                exps.append(r['experiment'])
        if g in ('alpha', 'dim'):  # the sweeps' reference point is the narrow-gap full run
            exps = [e for e in ('narrow/full',) if any(r['experiment'] == e for r in rows)] \
                + exps
        for eid in exps:
            curves = [r['curve'] for r in rows if r['experiment'] == eid and r['curve']]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            arr = np.array([c[:n] for c in curves])
            first = next(r for r in rows if r['experiment'] == eid)
            x = np.arange(1, n + 1) + first['offset']  # pseudolabel continues a run
            label = first['label']
            if eid == 'narrow/full' and g != 'narrow':
                label = 'alpha = 0.05, D = 3 (full)'
            ax.plot(x, arr.mean(0), marker='o', ms=3, label=label)
            ax.fill_between(x, arr.min(0), arr.max(0), alpha=0.15)
        ax.set_title(g)
        ax.set_xlabel('epoch')
        ax.set_ylabel('mIoU (target domain)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_report(out, runs, meta):
    """Write results.md, results.csv, summary.csv and curves.png; returns the JSON summary."""
    rows, agg = collect(runs)
    if runs:
        meta = dict(meta, miou_last_k=runs[0]['cfg'].miou_last_k,
                    epochs=runs[0]['cfg'].max_epochs,
                    frames_per_epoch=runs[0]['cfg'].frames_per_epoch)
    atomic_write_bytes(os.path.join(out, 'results.csv'), _csv(
        rows, ['experiment', 'label', 'variant', 'seed', 'miou', 'miou_final', 'epochs',
               'train_s']))
    atomic_write_bytes(os.path.join(out, 'summary.csv'), _csv(
        agg, ['experiment', 'label', 'variant', 'mean', 'std', 'n', 'baseline', 'delta',
              'delta_std']))
    atomic_write_bytes(os.path.join(out, 'results.md'), markdown(agg, meta).encode())
    if rows:
        plot_curves(os.path.join(out, 'curves.png'), rows)

    def num(v):
        return None if math.isnan(v) else round(v, 4)
    return dict(meta, results={a['experiment']: {
        'mean': num(a['mean']), 'std': num(a['std']), 'n': a['n'], 'delta_vs': a['baseline'],
        'delta': num(a['delta']), 'delta_std': num(a['delta_std'])} for a in agg})
