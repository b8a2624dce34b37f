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
The import rules of docs/ARCHITECTURE.md, checked with import-linter (contracts in setup.cfg).

* ``layers``: each folder of ``sam2real_ros/`` imports only the folders below it (data path
  order), so there is no import cycle between folders;
* ``acyclic``: no import cycles between the modules (or subpackages) of one package, at any
  depth, in ``sam2real_ros`` and ``benchmarks`` (e.g. the dataset registry imports the datasets,
  which import only ``data/base.py``; ``benchmarks/sim2real_report.py`` imports no
  ``benchmarks/sim2real.py``);
* ``ros``: only ``nodes/`` and ``demo/`` import rclpy or ROS message packages.

The same check runs by hand as ``lint-imports`` from the repository root. A third rule, that no
code (package, tests, benchmarks) uses a private ``_name`` of another sam2real module, either
imported (``P._camera``) or as an attribute of its objects (``trainer._prep()``), is checked
here with the ``ast`` module, as is a fourth: no code edits ``sys.path`` (the package,
the tests and ``benchmarks``, a package run as ``python -m benchmarks.<name>``, import by their
names). Module names say what runs: each ROS executable is ``sam2real_ros/nodes/<name>.py``.
"""
import ast
import configparser
import os
import re
import shutil
import subprocess
import sys

import grimp
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'sam2real_ros'
ROS_FOLDERS = {'nodes', 'demo'}
# Top-level names of ROS 2 Python packages: message/service/action packages and client libs.
ROS_NAME = re.compile(r'(_msgs|_srvs|_interfaces|_actions)$|^(rcl|rclpy|rmw|rosidl|rosbag2|'
                      r'launch|ament_|ros2|tf2|cv_bridge|image_|message_filters|rpyutils)')
LINT = ('import sys\nfrom importlinter.cli import lint_imports\n'
        'sys.exit(lint_imports(config_filename="setup.cfg", no_cache=True, no_logo=True))')


def lint(root):
    """Run import-linter on the package and setup.cfg in ``root``; return the process."""
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([sys.executable, '-c', LINT], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def contracts():
    """Return setup.cfg's import-linter sections."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, 'setup.cfg'))
    return cfg


@pytest.mark.linter
def test_import_contracts_are_kept():
    proc = lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Contracts: 3 kept, 0 broken.' in proc.stdout


@pytest.mark.linter
def test_a_ros_import_or_an_upward_import_breaks_the_contracts(tmp_path):
    shutil.copytree(os.path.join(REPO, PACKAGE), tmp_path / PACKAGE,
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(os.path.join(REPO, 'benchmarks'), tmp_path / 'benchmarks',
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(os.path.join(REPO, 'setup.cfg'), tmp_path / 'setup.cfg')
    with open(tmp_path / PACKAGE / 'data' / 'base.py', 'a') as f:
        f.write('\n\ndef _ros():\n    import sensor_msgs.msg  # noqa\n'
                '    from sam2real_ros.data import datasets  # noqa\n')
    with open(tmp_path / PACKAGE / 'common' / 'labels.py', 'a') as f:
        f.write('\nfrom sam2real_ros.training import losses  # noqa\n')
    proc = lint(str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Contracts: 0 kept, 3 broken.' in proc.stdout
    assert 'sam2real_ros.data.base -> sensor_msgs' in proc.stdout
    assert 'No cycles are allowed in sam2real_ros.data.' in proc.stdout
    assert 'sam2real_ros.common.labels -> sam2real_ros.training.losses' in proc.stdout


@pytest.mark.linter
def test_contracts_name_every_folder_and_every_ros_package_the_code_imports():
    cfg = contracts()
    folders = {name[:-3] if name.endswith('.py') else name
               for name in os.listdir(os.path.join(REPO, PACKAGE))
               if not name.startswith(('_', '.')) and (name.endswith('.py') or os.path.isfile(
                   os.path.join(REPO, PACKAGE, name, '__init__.py')))}
    layers = {part.strip() for line in cfg['importlinter:contract:layers']['layers'].split('\n')
              for part in line.split('|') if part.strip()}
    assert layers == folders
    sources = set(cfg['importlinter:contract:ros']['source_modules'].split())
    assert sources == {f'{PACKAGE}.{f}' for f in folders - ROS_FOLDERS}
    forbidden = set(cfg['importlinter:contract:ros']['forbidden_modules'].split())
    graph = grimp.build_graph(PACKAGE, include_external_packages=True, cache_dir=None)
    ros = {m for m in graph.modules if '.' not in m and m != PACKAGE and ROS_NAME.search(m)}
    assert {'rclpy', 'sensor_msgs'} <= ros  # the nodes import them: the scan sees ROS imports
    assert ros <= forbidden, f'add {sorted(ros - forbidden)} to forbidden_modules in setup.cfg'


def private_uses(path):
    """Return ``(line, text)`` for each ``_name`` of a sam2real module that ``path`` uses."""
    tree = ast.parse(open(path).read(), path)
    ours = ('sam2real_ros', 'benchmarks', 'conftest')
    modules, out = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith(ours):
            for a in node.names:
                if a.name.startswith('_') and not a.name.startswith('__'):
                    out.append((node.lineno, f'from {node.module} import {a.name}'))
                modules.add(a.asname or a.name)  # may be a module (from pkg import mod)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name.split('.')[0] for a in node.names
                           if a.name.startswith(ours))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith('_')
                and not node.attr.startswith('__')):
            out.append((node.lineno, f'{node.value.id}.{node.attr}'))
    return out


@pytest.mark.linter
def test_no_code_uses_a_private_name_of_another_module(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('from sam2real_ros.data import procedural as P\n'
                   'from sam2real_ros.data.base import _x\nP._camera(1)\n')
    assert private_uses(str(bad)) == [(2, 'from sam2real_ros.data.base import _x'),
                                      (3, 'P._camera')]
    found = []
    for folder in (PACKAGE, 'test', 'benchmarks'):
        for dirpath, _, files in os.walk(os.path.join(REPO, folder)):
            for name in sorted(files):
                if name.endswith('.py'):
                    path = os.path.join(dirpath, name)
                    found += [f'{os.path.relpath(path, REPO)}:{line}: {text}'
                              for line, text in private_uses(path)]
    assert not found, 'private names used across modules (make them public or move them):\n' \
        + '\n'.join(found)


def test_the_architecture_doc_names_every_module_of_its_folder():
    with open(os.path.join(REPO, 'docs', 'ARCHITECTURE.md')) as f:
        rows = {m.group(1): line for line in f
                for m in [re.match(r'\| `(\w+)/` \|', line)] if m}
    missing = []
    for folder in sorted(os.listdir(os.path.join(REPO, PACKAGE))):
        path = os.path.join(REPO, PACKAGE, folder)
        if not os.path.isfile(os.path.join(path, '__init__.py')):
            continue
        assert folder in rows, f'docs/ARCHITECTURE.md has no row for {folder}/'
        missing += [f'{folder}/{name}' for name in sorted(os.listdir(path))
                    if name.endswith('.py') and not name.startswith('__')
                    and f'`{name[:-3]}`' not in rows[folder]
                    and f'`{name[:-3]} (' not in rows[folder]]
    assert not missing, 'docs/ARCHITECTURE.md does not name these modules:\n' + \
        '\n'.join(missing)


def is_private(name):
    """Return whether ``name`` is private (``_x``, not ``__x__``)."""
    return name.startswith('_') and not name.startswith('__')


def is_own(expr):
    """Return whether ``expr`` is ``self``, ``cls`` or ``super()`` (an object's own names)."""
    return (isinstance(expr, ast.Name) and expr.id in ('self', 'cls')) or (
        isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name)
        and expr.func.id == 'super')


def private_definitions(tree):
    """Return the private names a module defines: defs, classes, variables, own attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and is_own(node.value)):
            names.add(node.attr)
    return {name for name in names if is_private(name)}


def private_attribute_uses(paths, owners):
    """
    Return ``path:line: expr`` for each ``obj._name`` whose ``_name`` another module defines.

    ``obj`` is anything but ``self``, ``cls`` and ``super()``; ``_name`` counts when a module
    of ``owners`` other than ``path`` defines it (a method, a function, an attribute it sets on
    ``self``) and ``path`` itself does not: e.g. ``tr._prep(...)`` outside ``trainer.py``.
    """
    trees = {p: ast.parse(open(p).read(), p) for p in set(paths) | set(owners)}
    defined = {p: private_definitions(trees[p]) for p in trees}
    found = []
    for path in paths:
        elsewhere = set().union(*(defined[p] for p in owners if p != path))
        for node in ast.walk(trees[path]):
            if (isinstance(node, ast.Attribute) and is_private(node.attr)
                    and not is_own(node.value) and node.attr not in defined[path]
                    and node.attr in elsewhere):
                found.append(f'{os.path.relpath(path, REPO)}:{node.lineno}: '
                             f'{ast.unparse(node)}')
    return found


def python_files(*folders):
    """Return the ``.py`` files under the repository's ``folders``, sorted."""
    return [os.path.join(dirpath, name) for folder in folders
            for dirpath, _, files in sorted(os.walk(os.path.join(REPO, folder)))
            for name in sorted(files) if name.endswith('.py')]


@pytest.mark.linter
def test_no_code_uses_a_private_attribute_of_another_modules_object(tmp_path):
    owner, user = tmp_path / 'owner.py', tmp_path / 'user.py'
    owner.write_text('class T:\n    def _prep(self):\n        self._n = 1\n')
    user.write_text('class U:\n    def _own(self):\n        return self._prep\n\n\n'
                    'def f(t, u):\n    t._n = 2\n    return t._prep(), u._own(), t._replace\n')
    assert private_attribute_uses([str(user)], [str(owner), str(user)]) == [
        f'{os.path.relpath(str(user), REPO)}:7: t._n',
        f'{os.path.relpath(str(user), REPO)}:8: t._prep']
    owners = python_files(PACKAGE, 'benchmarks')
    found = private_attribute_uses(python_files(PACKAGE, 'test', 'benchmarks'), owners)
    assert not found, 'private attributes of another module used (make them public):\n' \
        + '\n'.join(found)


def sys_path_edits(path):
    """Return the line numbers where ``path`` touches ``sys.path`` (``sys.path.insert`` etc.)."""
    tree = ast.parse(open(path).read(), path)
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == 'path'
            and isinstance(node.value, ast.Name) and node.value.id == 'sys']


@pytest.mark.linter
def test_no_code_edits_sys_path(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import sys\nsys.path.insert(0, ".")\n')
    assert sys_path_edits(str(bad)) == [2]
    found = []
    for folder in (PACKAGE, 'test', 'benchmarks', 'launch', 'tools'):
        for dirpath, _, files in os.walk(os.path.join(REPO, folder)):
            for name in sorted(files):
                if name.endswith('.py'):
                    path = os.path.join(dirpath, name)
                    found += [f'{os.path.relpath(path, REPO)}:{line}'
                              for line in sys_path_edits(path)]
    assert not found, 'sys.path edited (import by package name instead):\n' + '\n'.join(found)
    assert os.path.isfile(os.path.join(REPO, 'benchmarks', '__init__.py'))


@pytest.mark.linter
def test_each_ros_executable_is_the_node_module_of_its_name():
    setup = ast.parse(open(os.path.join(REPO, 'setup.py')).read())
    scripts = dict(
        (part.strip() for part in node.value.split('='))
        for node in ast.walk(setup) if isinstance(node, ast.Constant)
        and isinstance(node.value, str) and re.match(r'^[a-z0-9_]+ = sam2real_ros\.', node.value))
    folder = os.path.join(REPO, PACKAGE, 'nodes')
    nodes = {name[:-3] for name in os.listdir(folder)  # modules whose main() runs a node
             if name.endswith('.py')
             and 'return run_node(' in open(os.path.join(folder, name)).read()}
    assert len(nodes) >= 5
    assert scripts.pop('sam2real') == f'{PACKAGE}.cli:main'
    # the ros2launch option extension (the launch's exit code), no executable
    assert scripts.pop('sam2real_node_exit_code') == f'{PACKAGE}.nodes.launch_exit:NodeExitCode'
    assert scripts == {name: f'{PACKAGE}.nodes.{name}:main' for name in nodes}
