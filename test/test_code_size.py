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
Room sizes: no module of ``sam2real_ros/`` over 600 lines, no function over 80 lines.

A module that grows past 600 lines holds more than one concern (split it along them); a
function past 80 lines (docstring included) does more than one step. Text that code generates
is not code and is not counted (there is none in ``sam2real_ros/`` today).
"""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def modules():
    """Return the ``.py`` files of ``sam2real_ros/``, relative to the repository, sorted."""
    return sorted(os.path.relpath(os.path.join(d, f), REPO)
                  for d, _, files in os.walk(os.path.join(REPO, 'sam2real_ros'))
                  for f in files if f.endswith('.py'))


def long_functions(source, limit=MAX_FUNCTION_LINES):
    """Return ``(name, first line, lines)`` of each function in ``source`` over ``limit`` lines."""
    return [(node.name, node.lineno, node.end_lineno - node.lineno + 1)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_long_functions_are_found():
    body = ''.join(f'        x{i} = {i}\n' for i in range(80))
    source = f'def f():\n    pass\n\n\nclass A:\n    def m(self):\n{body}'
    assert long_functions(source) == [('m', 6, 81)]
    assert long_functions(source, limit=81) == []


def test_no_module_over_600_lines_and_no_function_over_80():
    big, long = [], []
    for path in modules():
        with open(os.path.join(REPO, path)) as f:
            source = f.read()
        n = source.count('\n')
        if n > MAX_MODULE_LINES:
            big.append(f'{path}: {n} lines')
        long += [f'{path}:{line}: {name}() {lines} lines'
                 for name, line, lines in long_functions(source)]
    assert not big, f'modules over {MAX_MODULE_LINES} lines (split them):\n' + '\n'.join(big)
    assert not long, f'functions over {MAX_FUNCTION_LINES} lines:\n' + '\n'.join(long)
