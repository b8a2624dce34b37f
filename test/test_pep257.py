"""Docstring style as `colcon test` checks it on a robot (ament_pep257)."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.linter
def test_pep257():
    main = pytest.importorskip('ament_pep257.main', reason='ament_pep257 is not installed')
    rc = main.main(argv=[os.path.join(REPO, d) for d in ('sam2real_ros', 'test', 'benchmarks',
                                                         'launch')])
    assert rc == 0, 'Found code style errors / warnings'
