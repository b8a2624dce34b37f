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

"""Smoke test of ``python -m benchmarks.sim2real`` at its minuscule size (real subprocess)."""
import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, 'training', 'configs', 'sim2real_cpu.yaml')


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, '-m', 'benchmarks.sim2real', '--no-progress', *args],
                          cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=300)


def _small_config(tmp_path, ids=('narrow/synthetic_only', 'narrow/pseudolabel')):
    """Write a tiny copy of the CPU config with experiments ``ids`` (default two)."""
    with open(CONFIG) as f:
        bench = yaml.safe_load(f)
    bench['experiments'] = [e for e in bench['experiments'] if e['id'] in ids]
    bench['quick'] = [e['id'] for e in bench['experiments']]
    bench['segmenter'] = 'fallback'
    bench['sizes']['tiny']['pool_frames'] = 3
    bench['sizes']['tiny']['overrides'] += ['data.eval.size=[48,64]', 'image_size=[48,64]',
                                            'model.input_size=[48,64]']
    path = tmp_path / 'bench.yaml'
    path.write_text(yaml.safe_dump(bench))
    return path


def test_quick_run_writes_tables_plots_and_reuses_pool_and_runs(tmp_path):
    cfg = _small_config(tmp_path)
    out = tmp_path / 'out'
    proc = _run('--quick', '--config', str(cfg), '--out', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary['results']) == {'narrow/synthetic_only', 'narrow/pseudolabel'}
    for res in summary['results'].values():
        assert res['n'] == 1 and 0.0 <= res['mean'] <= 1.0
    assert summary['segmenter'] == 'fallback'
    # the pool: 3 rendered frames, each with stored masks, and the same frames as BOP ground truth
    pool = out / 'pool' / '3'
    names = ['000000.png', '000001.png', '000002.png']
    assert sorted(os.listdir(pool / 'real' / 'frames')) == names + ['depth']
    assert sorted(os.listdir(pool / 'real' / 'frames' / 'depth')) == names  # registered depth
    from sam2real_ros.sam.mask_store import MaskStore
    store = MaskStore(str(pool / 'real' / 'masks'))
    assert store.keys() == ['frames/000000.png', 'frames/000001.png', 'frames/000002.png']
    assert all(len(store.read(k)) > 0 and store.read(k).extra['depth'] for k in store.keys())
    gt = json.loads((pool / 'real_bop' / 'train' / '000000' / 'scene_gt.json').read_text())
    assert len(gt) == 3 and all(gt[k] for k in gt)
    # the pseudolabel run starts from the synthetic-only checkpoint of the same seed
    run = out / 'runs' / 'tiny' / 'narrow'
    pseudo_cfg = yaml.safe_load((run / 'pseudolabel' / 'seed0' / 'config.yaml').read_text())
    assert pseudo_cfg['init_checkpoint'] == str(run / 'synthetic_only' / 'seed0' /
                                                'checkpoint.pt')
    # tables agree with the runs' own metrics.csv
    with open(out / 'results.csv') as f:
        rows = {r['experiment']: r for r in csv.DictReader(f)}
    with open(run / 'pseudolabel' / 'seed0' / 'metrics.csv') as f:
        last = list(csv.DictReader(f))[-1]
    assert abs(float(rows['narrow/pseudolabel']['miou']) - float(last['miou_last_k'])) < 1e-4
    assert abs(summary['results']['narrow/pseudolabel']['mean']
               - float(last['miou_last_k'])) < 1e-4
    assert 'SAM pseudolabels' in (out / 'results.md').read_text()
    assert (out / 'curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # each run records the sources that trained it
    code = json.loads((run / 'synthetic_only' / 'seed0' / 'code.json').read_text())
    assert code == {'source_digest': summary['source_digest']}
    assert summary['runs_by_other_code'] is None
    # a second invocation reuses the masks and the finished runs, and says which of them other
    # code trained (here: one whose record was altered)
    (run / 'pseudolabel' / 'seed0' / 'code.json').write_text('{"source_digest": "older"}')
    again = _run('--quick', '--config', str(cfg), '--out', str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'segmenting' not in again.stderr + again.stdout
    assert again.stdout.count('(reused)') + again.stderr.count('(reused)') == 2
    said = again.stdout + again.stderr
    assert said.count('by other code') == 1
    assert 'warning: narrow/pseudolabel seed 0 was trained by other code (source digest older' \
        in said
    again_summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert again_summary['results'] == summary['results']
    assert again_summary['runs_by_other_code'] == ['narrow/pseudolabel seed 0']
    # --report-only rewrites the tables from the run folders alone and ends with the JSON
    (out / 'results.md').unlink()
    report = _run('--report-only', '--quick', '--config', str(cfg), '--out', str(out))
    assert report.returncode == 0, report.stderr[-2000:]
    assert json.loads(report.stdout.strip().splitlines()[-1])['results'] == summary['results']
    assert 'SAM pseudolabels' in (out / 'results.md').read_text()


def test_user_errors_are_one_line(tmp_path):
    proc = _run('--config', str(tmp_path / 'missing.yaml'), '--out', str(tmp_path / 'o'))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f'sim2real: error: benchmark config not found: {tmp_path / "missing.yaml"}']
    proc = _run('--size', 'huge', '--out', str(tmp_path / 'o'))
    assert proc.returncode == 2 and 'unknown --size' in proc.stderr
    assert 'Traceback' not in proc.stderr
    bad = tmp_path / 'bad.yaml'
    bad.write_text(yaml.safe_dump({'train': {'max_epoch': 3}, 'sizes': {'tiny': {}},
                                   'experiments': [{'id': 'a/b', 'variant': 'full'}]}))
    proc = _run('--config', str(bad), '--size', 'tiny', '--out', str(tmp_path / 'o'))
    assert proc.returncode == 2 and "'max_epoch'" in proc.stderr, proc.stderr


def test_dry_run_plans_the_gpu_config_without_touching_data(tmp_path):
    gpu = os.path.join(ROOT, 'training', 'configs', 'sim2real_ycbv_gpu.yaml')
    out = tmp_path / 'o'
    proc = _run('--config', gpu, '--size', 'paper', '--dry-run', '--out', str(out))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout.strip().splitlines()[-1])
    with open(gpu) as f:
        bench = yaml.safe_load(f)
    assert plan['launcher'] == 'torchrun'
    assert len(plan['runs']) == 3 * len(bench['experiments'])
    assert {r['epochs'] for r in plan['runs']} == {bench['train']['max_epochs']}
    pseudo = [r for r in plan['runs'] if r['variant'] == 'pseudolabel']
    assert [r['init_checkpoint'] for r in pseudo] == [
        str(out / 'runs' / 'paper' / 'ycbv' / 'synthetic_only' / f'seed{s}' / 'checkpoint.pt')
        for s in range(3)]
    assert not out.exists()


def test_a_rerun_into_a_new_folder_gives_the_same_table(tmp_path):
    """Same code, config and thread count: the pool, its segments and every run repeat exactly."""
    cfg = _small_config(tmp_path, ('narrow/full',))  # the runs that use the pool's segments
    tables = []
    for name in ('first', 'second'):
        out = tmp_path / name
        proc = _run('--quick', '--config', str(cfg), '--out', str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary['threads'] == 1 and summary['cpu_capability'] and summary['torch']
        with open(out / 'runs' / 'tiny' / 'narrow' / 'full' / 'seed0' / 'metrics.csv') as f:
            # every number but the wall time, at full precision
            rows = [{k: v for k, v in row.items() if k != 'time_s'} for row in csv.DictReader(f)]
        table = (out / 'results.md').read_text().splitlines()
        tables.append((summary['results'], summary['pool_segments'], rows,
                       [ln for ln in table if 'wall_s' not in ln]))
    assert tables[0] == tables[1]
    assert float(tables[0][2][-1]['real_n']) > 0  # the run did use segments
    quality = tables[0][1]
    assert quality['frames'] == 3 and quality['with_depth'] == 3
    assert 0.0 < quality['mean_best_iou'] <= 1.0 and quality['segments_per_frame'] > 0
    assert any(ln.startswith('Segments of the pool (fallback, 3 frames') for ln in tables[0][3])


def test_a_pool_from_other_code_or_settings_is_refused(tmp_path, capsys):
    """A pool left by older code (frames, depth, segments) would change the table silently."""
    from benchmarks import sim2real_pool as sp
    from sam2real_ros.common.io_utils import atomic_write_png, read_rgb
    from sam2real_ros.sam.mask_store import MaskStore
    root = str(tmp_path / 'pool')
    spec = {'seed': 11, 'frames': 2, 'size': (48, 64)}
    sp.render_pool(root, **spec)
    first = sp.segment_pool(os.path.join(root, 'real'), 'fallback', log=lambda m: None)
    assert (first['segmented'], first['reused'], first['failed']) == (2, 0, 0)
    # the same code and settings: everything is reused and checked, nothing is redone
    sp.render_pool(root, **spec)
    again = sp.segment_pool(os.path.join(root, 'real'), 'fallback', log=lambda m: None)
    assert (again['segmented'], again['reused']) == (0, 2)
    # other segmenter settings
    other = {'kind': 'fallback', 'fallback_settings': {'max_segments': 5}}
    with pytest.raises(sp.StalePoolError, match='max_segments 200 vs 5'):
        sp.segment_pool(os.path.join(root, 'real'), other, log=lambda m: None)
    # masks that today's segmenter does not give for the first frame
    store = MaskStore(os.path.join(root, 'real', 'masks'))
    rec = store.read('frames/000000.png')
    store.write(rec.key, rec.masks()[:-1], rec.scores[:-1], segmenter=rec.segmenter,
                settings=rec.settings, extra=rec.extra)
    with pytest.raises(sp.StalePoolError, match='segments frames/000000.png differently'):
        sp.segment_pool(os.path.join(root, 'real'), 'fallback', log=lambda m: None)
    # a frame that the renderer draws differently now
    path = os.path.join(root, 'real', 'frames', '000001.png')
    atomic_write_png(path, 255 - read_rgb(path))
    with pytest.raises(sp.StalePoolError, match='real/frames/000001.png differs'):
        sp.render_pool(root, **spec)
    # a pool from before depth: its segments were made from colour alone
    os.unlink(os.path.join(root, 'real', 'frames', 'depth', '000000.png'))
    with pytest.raises(sp.StalePoolError, match='has no depth'):
        sp.render_pool(root, **spec)
    # through the benchmark (in-process: no second interpreter): one line, exit 2
    from benchmarks import sim2real
    cfg = _small_config(tmp_path, ('narrow/full',))
    out = tmp_path / 'out'
    os.makedirs(out / 'pool')
    os.rename(root, out / 'pool' / '3')
    import torch
    threads = torch.get_num_threads()
    try:
        assert sim2real.main(['--quick', '--no-progress', '--config', str(cfg),
                              '--out', str(out)]) == 2
    finally:
        torch.set_num_threads(threads)  # main sets the benchmark's thread count
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f'sim2real: error: the pool {out / "pool" / "3"} was made by '
                              'other code or settings'), err


def test_parallel_runs_start_a_child_as_soon_as_its_parent_is_done():
    """``--jobs``: a pseudolabel run waits only for its own synthetic-only run (#18)."""
    import threading

    from benchmarks.sim2real import run_with_parents
    # runs 0-2 are parents of 6-8 (synthetic only -> pseudolabel); 3-5 stand alone (full)
    parents = [None, None, None, None, None, None, 0, 1, 2]
    log, lock, gate = [], threading.Lock(), threading.Event()

    def work(i):
        with lock:
            log.append(('start', i))
        if i == 3:
            gate.wait(10)  # a long independent run: children must not wait for it
        with lock:
            log.append(('end', i))

    def watch():  # release run 3 once every child has started
        while True:
            with lock:
                if sum(1 for e in log if e[0] == 'start' and e[1] >= 6) == 3:
                    break
            threading.Event().wait(0.01)
        gate.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    run_with_parents(parents, 2, work)
    watcher.join(5)
    assert sorted(i for kind, i in log if kind == 'end') == list(range(9))
    for child, parent in ((6, 0), (7, 1), (8, 2)):
        assert log.index(('end', parent)) < log.index(('start', child))
    assert gate.is_set() and log.index(('start', 8)) < log.index(('end', 3))
    assert [i for kind, i in log if kind == 'start'][:3] == [0, 1, 2]  # parents first


def test_parallel_runs_stop_at_the_first_error_and_raise_it():
    from benchmarks.sim2real import run_with_parents
    started = []

    def work(i):
        started.append(i)
        if i == 0:
            raise ValueError('run 0 failed')

    with pytest.raises(ValueError, match='run 0 failed'):
        run_with_parents([None, 0, None, None], 1, work)
    assert started == [0]  # its child and the others are not started
