"""
Code style as `colcon test` checks it on a robot: ament_flake8 (ROS 2's flake8 config).

ament_flake8 comes with a ROS 2 install, or from PyPI (requirements-ros.txt) without one.
"""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.linter
def test_flake8():
    main = pytest.importorskip('ament_flake8.main', reason='ament_flake8 is not installed')
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        rc, errors = main.main_with_errors(argv=[])
    finally:
        os.chdir(cwd)
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
