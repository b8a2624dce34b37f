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
The ``sam2real`` command as a new user meets it, run as a subprocess.

No command, --version, --help of every subcommand, ``export`` with a bad ``--out``, and files
that are not checkpoints.
"""
import ast
import os
import re
import subprocess
import sys
import types

from conftest import REPO
import pytest
from sam2real_ros import cli, version
from sam2real_ros.cli import SUBCOMMANDS
from sam2real_ros.common.errors import Sam2realError
import torch


def sam2real(*args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'sam2real_ros.cli', *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_no_command_is_an_error_and_version_works():
    res = sam2real()
    assert res.returncode == 2 and res.stdout == ''
    assert res.stderr.startswith('sam2real: no command given') and 'commands:' in res.stderr
    res = sam2real('--version')
    assert res.returncode == 0 and res.stdout == f'sam2real {version()}\n'
    res = sam2real('--help')
    assert res.returncode == 0 and 'extract-episodes' in res.stdout


def test_an_input_error_a_subcommand_lets_through_is_one_line_and_exit_2(monkeypatch, capsys):
    def main(argv):
        from sam2real_ros.training.config import ConfigError
        raise ConfigError(f'bad value {argv[0]}')
    monkeypatch.setitem(sys.modules, 'fake_subcommand', types.SimpleNamespace(main=main))
    monkeypatch.setitem(cli.SUBCOMMANDS, 'fake', ('fake_subcommand', 'a test command'))
    assert cli.main(['fake', 'x=1']) == 2
    assert capsys.readouterr().err == 'sam2real fake: error: bad value x=1\n'


# Failures that are not bad input (exit 1): a demo stage that failed.
NOT_INPUT_ERRORS = {'StageError'}


def test_every_error_class_is_a_sam2real_error():
    bases = {}
    for dirpath, _, files in os.walk(os.path.join(REPO, 'sam2real_ros')):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(dirpath, name)) as f:
                    tree = ast.parse(f.read())
                bases.update({c.name: [ast.unparse(b).split('.')[-1] for b in c.bases]
                              for c in ast.walk(tree) if isinstance(c, ast.ClassDef)})

    def derives(name):
        return name == 'Sam2realError' or any(derives(b) for b in bases.get(name, ()))
    errors = {n for n in bases if n.endswith('Error') and n != 'Sam2realError'}
    assert len(errors) >= 14 and NOT_INPUT_ERRORS <= errors
    assert sorted(n for n in errors - NOT_INPUT_ERRORS if not derives(n)) == []
    assert Sam2realError.exit_code == 2


@pytest.mark.parametrize('command', sorted(SUBCOMMANDS))
def test_help_has_a_description_and_no_empty_defaults(command):
    res = sam2real(command, '--help', timeout=120)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    paragraphs = [p for p in text.split('\n\n') if p.strip()]
    assert paragraphs[0].startswith(f'usage: sam2real {command}')
    assert not paragraphs[1].startswith(('positional arguments:', 'options:')), \
        f'sam2real {command} --help has no description line'
    flat = ' '.join(text.split())
    assert '(default: None)' not in flat and '(default: )' not in flat
    assert '(default: [])' not in flat and '(default: False)' not in flat
    assert not re.search(r'\(default[^()]*\)\s*\(default', flat), flat  # stated twice


def test_export_checks_out_before_any_work(tmp_path):
    res = sam2real('export', '--random', '--out', str(tmp_path / 'missing' / 'x.onnx'))
    assert res.returncode == 2 and res.stdout == ''
    assert res.stderr.splitlines() == [
        f'sam2real export: error: --out {tmp_path / "missing" / "x.onnx"}: folder '
        f'{tmp_path / "missing"} does not exist (create it first)']
    (tmp_path / 'dir').mkdir()
    for out in (f'{tmp_path / "dir"}/', str(tmp_path / 'dir')):
        res = sam2real('export', '--random', '--out', out)
        assert res.returncode == 2
        assert res.stderr.splitlines() == [
            f'sam2real export: error: --out {out} is a folder; give the file to write, e.g. '
            f'{tmp_path / "dir" / "model.onnx"}']
    assert list((tmp_path / 'dir').iterdir()) == []


def test_export_refuses_duplicate_class_names(tmp_path):
    """``--classes bg,a,a`` would give two labels one name: refused before any work (#21)."""
    out = tmp_path / 'x.onnx'
    res = sam2real('export', '--random', '--classes', 'bg,a,a', '--out', str(out))
    assert res.returncode == 2 and res.stdout == ''
    assert res.stderr.splitlines() == [
        "sam2real export: error: --classes: class name 'a' given twice"], res.stderr
    assert not out.exists()


def test_export_keeps_the_exporters_output_off_the_terminal(tmp_path):
    out = tmp_path / 'model.onnx'
    res = sam2real('export', '--random', '--size', '64x64', '--classes', 'bg,a', '--out',
                   str(out))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ''
    lines = res.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f'wrote {out}')
    assert lines[1].startswith('onnxruntime vs torch')


def test_a_file_that_is_not_a_checkpoint_says_what_was_expected(tmp_path):
    text = tmp_path / 'notes.pt'
    text.write_text('hello')
    pickled = tmp_path / 'objects.pt'
    torch.save({'weights': torch.zeros(2), 'kind': torch.nn.Linear}, pickled)
    bare = tmp_path / 'state_dict.pt'
    torch.save({'weight': torch.zeros(2)}, bare)
    onnx = tmp_path / 'model.onnx'
    onnx.write_bytes(b'\x08\x07')
    for path, why in ((text, 'not a torch checkpoint file'),
                      (pickled, 'it holds Python objects besides tensors and plain values'),
                      (bare, 'a torch file without model and model_cfg entries'),
                      (onnx, 'it is an exported ONNX model')):
        res = sam2real('export', str(path), '--out', str(tmp_path / 'x.onnx'))
        assert res.returncode == 2
        (line,) = res.stderr.splitlines()
        assert line.startswith(f'sam2real export: error: {path} is not a sam2real checkpoint: '
                               f'{why}')
        assert line.endswith('expected the checkpoint.pt that "sam2real train" writes (a torch '
                             'file with model and EMA weights, model_cfg and class_names)')
        assert 'weights_only' not in res.stderr
    res = sam2real('evaluate', str(pickled), '--no-progress')
    assert res.returncode == 2 and 'weights_only' not in res.stderr
    assert 'is not a sam2real checkpoint' in res.stderr
