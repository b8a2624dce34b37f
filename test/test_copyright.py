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
Every source file carries the MIT copyright notice, checked by ament_copyright where it exists.

``colcon test`` on a ROS 2 install imports ``ament_copyright``; a Debian machine may have the
``python3-ament-copyright`` command; elsewhere (the pip-only venv) the same rule is checked here:
a ``Copyright <year> <holder>`` line and the MIT permission text in the leading comment block.
"""
import os
import shutil
import subprocess

from conftest import REPO
import pytest

# what ament_copyright checks; build/, install/ and log/ hold colcon's own generated files
PATHS = ['sam2real_ros', 'test', 'benchmarks', 'launch', 'training', 'tools', 'setup.py']
MIT_LINES = [
    'Permission is hereby granted, free of charge, to any person obtaining a copy',
    'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR',
    'THE SOFTWARE.',
]
SCRIPTS = ['Makefile', '.ci/run', 'tools/venv-run']


def _sources():
    for path in PATHS:
        full = os.path.join(REPO, path)
        if os.path.isfile(full):
            yield full
        for folder, dirs, files in os.walk(full):
            dirs[:] = [d for d in dirs if not d.startswith(('.', '__pycache__'))]
            yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith('.py'))


def _leading_comments(path):
    lines = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.startswith('#!') and not lines:
                continue
            if not line.startswith('#'):
                break
            lines.append(line[1:].strip())
    return lines


def _missing_notice(paths):
    bad = []
    for path in paths:
        head = _leading_comments(path)
        has_copyright = any(line.startswith('Copyright ') and line.split()[1].isdigit()
                            for line in head)
        if not has_copyright or not all(m in head for m in MIT_LINES):
            bad.append(os.path.relpath(path, REPO))
    return bad


@pytest.mark.linter
def test_copyright():
    try:
        from ament_copyright.main import main
    except ImportError:
        main = None
    if main is not None:
        cwd = os.getcwd()
        os.chdir(REPO)
        try:
            assert main(argv=PATHS) == 0, 'Found errors'
        finally:
            os.chdir(cwd)
        return
    tool = shutil.which('ament_copyright', path='/usr/bin')
    if tool:  # Debian's python3-ament-copyright: run it with the system Python, not the venv
        proc = subprocess.run([tool, *PATHS], cwd=REPO, capture_output=True, text=True,
                              env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'})
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return
    assert _missing_notice(_sources()) == []


@pytest.mark.linter
def test_the_in_repo_check_finds_a_file_without_the_notice(tmp_path):
    good = os.path.join(REPO, 'setup.py')
    bare = tmp_path / 'bare.py'
    bare.write_text('"""No notice."""\n')
    half = tmp_path / 'half.py'
    half.write_text('# Copyright 2026 someone\n"""Copyright but no licence text."""\n')
    assert _missing_notice([good, str(bare), str(half)]) == [
        os.path.relpath(str(bare), REPO), os.path.relpath(str(half), REPO)]


@pytest.mark.linter
def test_scripts_and_contributing_name_the_licence():
    for script in SCRIPTS:
        with open(os.path.join(REPO, script), encoding='utf-8') as f:
            assert 'SPDX-License-Identifier: MIT' in f.read(600), script
    with open(os.path.join(REPO, 'CONTRIBUTING.md'), encoding='utf-8') as f:
        assert 'will\nbe under the MIT license' in f.read()
    with open(os.path.join(REPO, 'LICENSE'), encoding='utf-8') as f:
        assert f.readline().strip() == 'MIT License'
