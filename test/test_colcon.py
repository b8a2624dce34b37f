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
The documented robot commands work with the colcon that ``make setup`` installs (#21).

README: ``colcon build --packages-select sam2real && source install/setup.bash``. Where colcon
is not installed (a ROS 2 distro without colcon) the test is skipped with that reason.
"""
import os
import shutil
import subprocess

from conftest import REPO
import pytest

COLCON = shutil.which('colcon')


@pytest.mark.skipif(COLCON is None, reason='colcon is not installed')
def test_colcon_build_packages_select_writes_setup_bash(tmp_path):
    res = subprocess.run(
        [COLCON, '--log-base', str(tmp_path / 'log'), 'build', '--paths', REPO,
         '--packages-select', 'sam2real', '--build-base', str(tmp_path / 'build'),
         '--install-base', str(tmp_path / 'install')],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'Finished <<< sam2real' in res.stdout, res.stdout
    assert os.path.isfile(tmp_path / 'install' / 'setup.bash'), sorted(
        os.listdir(tmp_path / 'install'))
    # the --packages-select of colcon-package-selection, not two more --paths
    res = subprocess.run([COLCON, 'build', '--help'], capture_output=True, text=True,
                         timeout=60)
    assert '--packages-select' in res.stdout, res.stdout
