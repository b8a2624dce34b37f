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
Every YAML file sam2real reads (configs, profiles, parameter files, mappings) fails alike (#20).

One helper, ``io_utils.read_yaml``: one line naming what the file is, the path and the problem.
"""
import pytest

from sam2real_ros.common import io_utils


def test_read_yaml_names_the_file_and_the_problem(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('a: [1, 2\n')
    with pytest.raises(ValueError) as e:
        io_utils.read_yaml(bad, 'config file')
    assert str(e.value).startswith(f'config file {bad}: not valid YAML (') and \
        '\n' not in str(e.value)
    with pytest.raises(ValueError, match=f'^profile {tmp_path / "x.yaml"}: no such file$'):
        io_utils.read_yaml(tmp_path / 'x.yaml', 'profile')
    with pytest.raises(ValueError, match=f'^profile {tmp_path}: cannot read it'):
        io_utils.read_yaml(tmp_path, 'profile')
    good = tmp_path / 'good.yaml'
    good.write_text('a: 1\n')
    assert io_utils.read_yaml(good, 'x') == {'a': 1}


def _callers():
    from sam2real_ros.data import bop
    from sam2real_ros.modeling import model
    from sam2real_ros.sam import segment_cli
    from sam2real_ros.training import config, evaluate
    return [
        ('config file', config.load_config),
        ('model profile', model.load_profile),
        ('--data', evaluate.resolve_data),
        ('--class-map', evaluate.parse_class_map),
        ('config', segment_cli.load_config),
        ('obj_to_class file', bop.read_obj_to_class),
    ]


def test_every_reader_gives_the_same_one_line_for_broken_yaml(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('a: [1, 2\n')
    for what, read in _callers():
        with pytest.raises(Exception) as e:
            read(str(bad))
        text = str(e.value)
        assert text.startswith(f'{what} {bad}: not valid YAML (') and '\n' not in text, \
            (read, text)
