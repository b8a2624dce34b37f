"""Style checks: ament_flake8 where ROS 2 provides it, PyPI flake8 everywhere."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.linter
def test_flake8_pypi():
    res = subprocess.run([sys.executable, '-m', 'flake8', 'sam2real_ros', 'training', 'benchmarks',
                          'test', 'launch', 'setup.py'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, 'flake8 found problems:\n' + res.stdout + res.stderr


@pytest.mark.linter
def test_ament_flake8():
    main = pytest.importorskip('ament_flake8.main', reason='ament_flake8 needs a ROS 2 install')
    rc, errors = main.main_with_errors(argv=[])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
