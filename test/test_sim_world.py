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

"""The demo robot's persistent grasp scene (sam2real_ros.data.sim_world), ROS-free."""
import numpy as np
import pytest

from sam2real_ros.data.sim_world import EXECUTING, GraspWorld, SUCCEEDED


def _world(**kw):
    kw.setdefault('render_scale', 1.0)
    return GraspWorld(seed=kw.pop('seed', 3), size=(120, 160), **kw)


def test_a_grasp_lifts_the_nearest_object_and_takes_it_away():
    w = _world(grasp_s=1.0, view_delay_s=0.5)
    before = w.frame(0.0)
    objs = sorted(int(i) for i in np.unique(before['instances']) if i)
    assert len(objs) >= 4  # the objects are spread out: (almost) all visible
    target = w.start_grasp(1.0) + 1
    assert target in objs

    def centre_y(f, inst):
        return np.nonzero(f['instances'] == inst)[0].mean()
    lifting = w.frame(1.8)  # 80% of the motion: lifted, held by the gripper
    assert centre_y(lifting, target) < centre_y(before, target) - 5
    grey = np.abs(lifting['rgb'].astype(int) - before['rgb'].astype(int)).sum(2) > 60
    assert grey[:10].any()  # the gripper's arm enters from the top edge
    # the other objects did not move
    for i in objs:
        if i != target:
            assert np.array_equal(lifting['instances'] == i, before['instances'] == i)
    w.end_grasp(2.0)
    after = w.frame(2.2)
    assert target not in np.unique(after['instances'])
    assert sorted(set(np.unique(after['instances'])) - {0}) == [i for i in objs if i != target]
    # the head moves after view_delay_s: same objects, seen from another pose
    moved = w.frame(2.6)
    assert set(np.unique(moved['instances'])) == set(np.unique(after['instances']))
    assert not np.array_equal(moved['instances'], after['instances'])
    # the next grasp takes the next nearest object
    assert w.start_grasp(3.0) + 1 != target


def test_frames_are_deterministic_and_cached():
    a, b = _world(), _world()
    for w in (a, b):
        w.start_grasp(0.0)
    fa, fb = a.frame(0.7), b.frame(0.7)
    for k in ('rgb', 'depth', 'labels', 'instances'):
        assert np.array_equal(fa[k], fb[k]), k
    assert a.frame(0.7) is fa  # unchanged state: the same frame, not rendered again
    assert not np.array_equal(_world(seed=4).frame(0.0)['rgb'], _world().frame(0.0)['rgb'])


def test_depth_is_registered_and_objects_stand_in_front_of_the_table():
    f = _world().frame(0.0)
    d, inst = f['depth'], f['instances']
    assert d.dtype == np.uint16 and d.shape == inst.shape and d.min() > 0
    assert 500 <= d.min() and d.max() <= 1800  # millimetres, a table-top camera
    for i in np.unique(inst[inst > 0]):
        ys, xs = np.nonzero(inst == i)
        foot = ys.max()
        # the table just below an object's foot is farther away than the object's surface
        below = d[min(foot + 3, d.shape[0] - 1), xs.min():xs.max() + 1]
        assert np.median(d[inst == i]) < np.median(below)


def test_goal_status_drives_the_grasps():
    w = _world()
    n = len(w.present)
    w.on_goal_statuses([('old', SUCCEEDED, -5.0)], 0.0)  # latched from before: no change
    assert w.active is None and len(w.present) == n
    w.on_goal_statuses([('g1', EXECUTING, None)], 1.0)
    target = w.active
    assert target is not None and w.t_start == 1.0
    w.on_goal_statuses([('g1', 6, None)], 2.0)  # aborted: the object stays on the table
    assert w.active is None and target in w.present
    # a status that arrives late: the motion runs from the goal's stamp
    w.on_goal_statuses([('g1', 6, 0.5), ('g2', EXECUTING, 2.6)], 3.0)
    assert w.t_start == 2.6
    w.on_goal_statuses([('g2', SUCCEEDED, 2.6)], 4.0)
    assert len(w.present) == n - 1 and w.grasps == 2


def test_an_empty_table_is_restocked():
    w = _world(objects=2)
    for k in range(2):
        w.start_grasp(k)
        w.end_grasp(k + 0.5)
    assert w.present == []
    w.start_grasp(5.0)
    assert w.cycle == 1 and len(w.present) == 2


@pytest.mark.parametrize('kw', [{'objects': 1}, {'grasp_s': 0}, {'render_scale': 0}])
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError):
        _world(**kw)
