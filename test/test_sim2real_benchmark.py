"""Smoke test of ``python -m benchmarks.sim2real`` at its minuscule size (real subprocess)."""
import csv
import json
import os
import subprocess
import sys

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
    # a second invocation reuses the masks and the finished runs
    again = _run('--quick', '--config', str(cfg), '--out', str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert 'segmenting' not in again.stderr + again.stdout
    assert again.stdout.count('(reused)') + again.stderr.count('(reused)') == 2
    assert json.loads(again.stdout.strip().splitlines()[-1])['results'] == summary['results']
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
    cfg = _small_config(tmp_path, ('narrow/synthetic_only', 'narrow/full'))
    tables = []
    for name in ('first', 'second'):
        out = tmp_path / name
        proc = _run('--quick', '--config', str(cfg), '--out', str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary['threads'] == 1 and summary['cpu_capability'] and summary['torch']
        runs = {}
        for variant in ('synthetic_only', 'full'):
            with open(out / 'runs' / 'tiny' / 'narrow' / variant / 'seed0' / 'metrics.csv') as f:
                # every number but the wall time, at full precision
                runs[variant] = [{k: v for k, v in row.items() if k != 'time_s'}
                                 for row in csv.DictReader(f)]
        tables.append((summary['results'], runs))
    assert tables[0] == tables[1]
    assert float(tables[0][1]['full'][-1]['real_n']) > 0  # the runs did use segments
