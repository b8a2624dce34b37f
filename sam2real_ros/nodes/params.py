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
Node parameters: one declaration per node, in the style of generate_parameter_library.

Each node module holds ONE table, ``PARAMETERS = params.schema(Param(...), ...)``: name, default
(its type is the parameter's type), description, validation (``one_of``, ``bounds``,
``pattern``) and ``read_only``. That table is the only place defaults live:
``config/<node>.yaml``, the parameter tables in ``docs/<node>.md`` and each node's ``--help``
are generated from it (:mod:`sam2real_ros.nodes.param_docs`; ``python -m
sam2real_ros.nodes.param_docs --write``) and test/test_node_parameters.py checks that they are
up to date.

:func:`declare` declares every parameter with a ``ParameterDescriptor`` (description,
``additional_constraints`` naming the allowed values, integer/floating-point ranges,
``read_only``) and validates every value at start: a value outside ``one_of``/``pattern`` raises
``ValueError`` (one line; :func:`sam2real_ros.nodes.runner.run_node` prints it and exits 2),
rclpy itself refuses an out-of-range number or a wrong type. A parameter read once is
``read_only`` (``ros2 param set`` is refused); a parameter declared ``read_only=False`` is
re-validated by an on-set-parameters callback and its new value lands in the returned
:class:`ParamValues`, which the node reads at each use, so a successful ``ros2 param set``
always takes effect.

The module imports rclpy only inside :func:`declare`, so the tables (and the generators)
work without ROS.
"""
from dataclasses import dataclass
import difflib
import math
import re


STRING_ARRAY, DOUBLE_ARRAY = 'string_array', 'double_array'


@dataclass(frozen=True)
class Param:
    """
    One parameter of a node.

    Arguments:
    ---------
      name (str): parameter name (``group.name`` for nested YAML).
      default: the default value; its Python type is the parameter type (``bool``, ``int``,
        ``float``, ``str``), or a list with ``array`` set.
      description (str): one line for ``ros2 param describe`` and the docs.
      one_of (tuple or None): the allowed values (strings).
      bounds (tuple or None): ``(lo, hi)`` inclusive, for ``int`` and ``float``.
      pattern (str or None): regular expression a string value must match in full.
      read_only (bool): True when the node reads the value once at start.
      required (bool): a string that must not be empty.
      array (str or None): ``'string_array'`` or ``'double_array'`` for list parameters.

    """

    name: str
    default: object
    description: str
    one_of: tuple = None
    bounds: tuple = None
    pattern: str = None
    read_only: bool = True
    required: bool = False
    array: str = None

    @property
    def type_name(self):
        """Return the type as written in the docs (bool, int, double, string, ...)."""
        if self.array:
            return self.array.replace('_array', '[]')
        return {bool: 'bool', int: 'int', float: 'double', str: 'string'}[type(self.default)]

    def check(self, value):
        """Return ``None`` when ``value`` is valid, else the one-line problem."""
        if self.required and not value:
            return f'parameter {self.name} must not be empty ({self.description})'
        if self.one_of is not None and value not in self.one_of:
            return (f'parameter {self.name}={value!r} must be one of '
                    f'{", ".join(map(str, self.one_of))}')
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            return f'parameter {self.name}={value!r} must be {self.constraint_text}'
        if self.bounds is not None and isinstance(value, (int, float)) and not (
                self.bounds[0] <= value <= self.bounds[1]):
            return f'parameter {self.name}={value!r} must be in [{self.bounds[0]}, ' \
                   f'{self.bounds[1]}]'
        if self.array == DOUBLE_ARRAY and not all(math.isfinite(v) for v in value):
            return f'parameter {self.name} must hold finite numbers'
        return None

    @property
    def constraint_text(self):
        """Return the validation as one phrase (``one of a, b``, ``0..1``), or ``''``."""
        if self.one_of is not None:
            return 'one of ' + ', '.join(f'{v}' for v in self.one_of)
        if self.pattern is not None:
            return f'matching {self.pattern}'
        if self.bounds is not None:
            return f'{self.bounds[0]:g}..{self.bounds[1]:g}'
        if self.required:
            return 'not empty'
        return ''


def schema(*params):
    """Return ``{name: Param}`` in declaration order; refuses duplicates and bad defaults."""
    out = {}
    for p in params:
        if p.name in out:
            raise ValueError(f'parameter {p.name} declared twice')
        problem = p.check(p.default) if not p.required else None
        if problem:
            raise ValueError(f'default of {problem}')
        out[p.name] = p
    return out


def camera_timeout_parameter(default=3.0):
    """
    Return the ``camera_timeout_s`` parameter: one name and meaning in every camera node.

    A node that subscribes to a camera reports WARN ``no camera frames for N s`` on
    ``/diagnostics`` once no frame arrived for this long (a stopped or unplugged camera), and
    measures its camera rate up to now (:class:`sam2real_ros.inference.runtime.RateWindow`).

    Arguments:
    ---------
      default (float): the node's default, in seconds.

    Returns
    -------
      Param: the parameter (can be changed at run time).

    """
    return Param('camera_timeout_s', default, 'diagnostics WARN "no camera frames for N s" '
                 'once no camera frame arrived for this long while subscribed',
                 bounds=(0.1, 3600.0), read_only=False)


def ensure_folder(name, path):
    """
    Create the folder ``path`` given by parameter ``name`` if it is missing.

    Returns
    -------
      bool: True when it had to be created.

    Raises
    ------
      ValueError: it cannot be created (one line naming the parameter and the reason).

    """
    import os
    if os.path.isdir(path):
        return False
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ValueError(f'parameter {name}: cannot create {path!r} '
                         f'({exc.strerror or exc})') from None
    return True


class ParamValues(dict):
    """Declared parameter values: ``p['name']`` or ``p.name`` (updated by ``ros2 param set``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _descriptor(p):
    from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                    ParameterType)
    desc = ParameterDescriptor(description=p.description, read_only=p.read_only,
                               additional_constraints=p.constraint_text)
    if p.array == STRING_ARRAY:
        desc.type = ParameterType.PARAMETER_STRING_ARRAY
    elif p.array == DOUBLE_ARRAY:
        desc.type = ParameterType.PARAMETER_DOUBLE_ARRAY
    if p.bounds is not None and isinstance(p.default, bool):
        raise ValueError(f'parameter {p.name}: bounds on a bool')
    if p.bounds is not None and isinstance(p.default, int):
        desc.integer_range = [IntegerRange(from_value=int(p.bounds[0]),
                                           to_value=int(p.bounds[1]), step=1)]
    elif p.bounds is not None:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(p.bounds[0]), to_value=float(p.bounds[1]), step=0.0)]
    return desc


def unknown_parameter(names, table, declared_by_ros):
    """
    Return the problem with the first name of ``names`` that is no parameter, or None.

    Arguments:
    ---------
      names (iterable): the parameter names a node was given (``-p``, ``--params-file``).
      table (dict): the node's ``{name: Param}``.
      declared_by_ros (callable): True for a name rclpy declared itself (``use_sim_time``).

    Returns
    -------
      str or None: ``unknown parameter 'x' (did you mean y? ...)``.

    """
    builtin = ('use_sim_time', 'start_type_description_service')
    for name in names:
        if name in table or name in builtin or name.startswith('qos_overrides.') or \
                declared_by_ros(name):
            continue
        hint = ''
        if name.endswith('_topic'):
            hint = 'topics are remappings, e.g. -r image:=/camera/image; '
        close = difflib.get_close_matches(name, list(table), n=1, cutoff=0.0)
        if close:
            hint += f'did you mean {close[0]}? '
        return f'unknown parameter {name!r} ({hint}--help lists the parameters)'
    return None


def declare(node, table, on_change=None):
    """
    Declare every parameter of ``table`` on ``node``, validate the values and return them.

    Arguments:
    ---------
      node (rclpy.node.Node): the node to declare on.
      table (dict): ``{name: Param}`` from :func:`schema`.
      on_change (callable or None): ``on_change(name, value)`` after a change of a
        ``read_only=False`` parameter was accepted (the new value is already in the result).

    Returns
    -------
      ParamValues: name -> value (after overrides from YAML / ``-p``).

    Raises
    ------
      ValueError: a parameter given to the node (``-p``, ``--params-file``) is not in ``table``
        (:func:`unknown_parameter`), or a value breaks ``one_of``/``pattern`` (rclpy raises
        its own exceptions for ranges and types; :func:`sam2real_ros.nodes.runner.run_node`
        reports all of them).

    """
    # rclpy has no public accessor for the overrides (-p, --params-file) of a node
    overrides = getattr(node, '_parameter_overrides', {})
    problem = unknown_parameter(overrides, table, node.has_parameter)
    if problem:
        raise ValueError(problem)
    values = ParamValues()
    for name, p in table.items():
        default = list(p.default) if p.array else p.default
        value = node.declare_parameter(name, default, _descriptor(p)).value
        if p.array == STRING_ARRAY:
            value = [str(v) for v in value]
        elif p.array == DOUBLE_ARRAY:
            value = [float(v) for v in value]
        problem = p.check(value)
        if problem:
            raise ValueError(problem)
        values[name] = value

    if any(not p.read_only for p in table.values()):
        from rcl_interfaces.msg import SetParametersResult

        def on_set(changes):
            for change in changes:
                p = table.get(change.name)
                problem = p.check(change.value) if p is not None else None
                if problem:
                    return SetParametersResult(successful=False, reason=problem)
            for change in changes:
                if change.name in table:
                    values[change.name] = change.value
                    if on_change is not None:
                        on_change(change.name, change.value)
            return SetParametersResult(successful=True)
        node.add_on_set_parameters_callback(on_set)
    return values
