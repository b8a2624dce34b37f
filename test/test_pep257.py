"""Docstring style (ament_pep257), where a ROS 2 install provides it."""
import pytest


@pytest.mark.linter
def test_pep257():
    main = pytest.importorskip('ament_pep257.main', reason='ament_pep257 needs a ROS 2 install')
    rc = main.main(argv=['.', 'test'])
    assert rc == 0, 'Found code style errors / warnings'
