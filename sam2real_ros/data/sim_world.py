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
A persistent simulated tabletop for the demo's robot: objects are grasped one after another.

:class:`GraspWorld` holds one scene (table, wall, clutter and a few objects, drawn with the
procedural renderer's appearance, shapes and camera model, :mod:`sam2real_ros.data.procedural`)
that stays put between grasps. A grasp is a gripper that comes down over the nearest object
still on the table, closes and lifts it out of view; when the grasp succeeds the object is gone
for good, and a moment later the head camera looks at the table from a slightly different pose
(a small pan, tilt, roll and zoom), as a robot's head does between grasps. When every object is
gone a new set is put on the table. Frames come with ground truth and a registered depth image.

The world is driven by time and two events, :meth:`GraspWorld.start_grasp` and
:meth:`GraspWorld.end_grasp` (the simulated camera node calls them from the grasp action's
status); :meth:`GraspWorld.frame` renders the view at a given time. Everything is plain numpy and
OpenCV, deterministic given the seed and the event times, and ROS-free.
"""
from collections import OrderedDict
import math

import cv2
import numpy as np

from sam2real_ros.data import procedural
from sam2real_ros.data import tabletop

# action_msgs/GoalStatus values (the world reads the grasp action's status as plain tuples)
EXECUTING, SUCCEEDED, TERMINAL = 2, 4, (4, 5, 6)  # 5 canceled, 6 aborted
# Depth model (metres): a camera ~0.6 m from the table edge in front of it, the table plane
# receding to the wall; objects stand on the table.
NEAR_M, FAR_M, WALL_M = 0.6, 1.5, 1.7
GRIPPER_GREY = (0.32, 0.33, 0.36)


class GraspWorld:
    """
    One persistent scene, its grasps and the head camera's views of it.

    Arguments:
    ---------
      seed (int): the scene (and every later one) follows from it.
      size (tuple): ``(height, width)`` of the camera frames.
      objects (int): objects on the table (2..10).
      appearance (str | dict): renderer appearance (:func:`procedural.get_appearance`).
      grasp_s (float): how long a grasp's motion takes: descend, close, lift out of view.
      view_delay_s (float): after a grasp ends, the head moves to its next pose this much later.
      margin (float): fraction of the frame the head may pan beyond it on each side.
      render_scale (float): the scene is drawn at this fraction of ``size`` and resized (a
        640x480 frame costs ~25 ms at 0.5 on one core instead of ~100 ms).

    """

    def __init__(self, seed=0, size=(480, 640), objects=5, appearance='real', grasp_s=1.5,
                 view_delay_s=2.5, margin=0.08, render_scale=0.5):
        self.seed, self.out_size = int(seed), (int(size[0]), int(size[1]))
        if not 0 < render_scale <= 1:
            raise ValueError(f'render_scale must be in (0, 1], got {render_scale}')
        self.size = tuple(max(32, int(round(v * render_scale))) for v in self.out_size)
        if min(self.out_size) < 32:
            raise ValueError(f'size must be at least 32x32 pixels, got {self.out_size}')
        if not 2 <= int(objects) <= 10:
            raise ValueError(f'objects must be 2..10, got {objects}')
        if grasp_s <= 0 or view_delay_s < 0 or not 0 <= margin < 0.3:
            raise ValueError(f'need grasp_s > 0, view_delay_s >= 0, 0 <= margin < 0.3; got '
                             f'{grasp_s}, {view_delay_s}, {margin}')
        self.n_objects, self.grasp_s, self.view_delay_s = int(objects), grasp_s, view_delay_s
        self.appearance = procedural.get_appearance(appearance)
        h, w = self.size
        self.margin = margin
        self.canvas = (int(round(h * (1 + 2 * margin))), int(round(w * (1 + 2 * margin))))
        self._gain = tabletop.camera_gain(self.appearance, h, w)
        self._scenes = {}
        self._cache = OrderedDict()
        # state: scene cycle, objects still on the table, current grasp, completed grasps
        self.cycle, self.present = 0, list(range(self.n_objects))
        self.active, self.t_start = None, None
        self.grasps, self.t_end = 0, None
        self._seen, self._goal = set(), None

    # ------------------------------------------------------------------ events
    def start_grasp(self, now):
        """Begin a grasp at time ``now`` (seconds) on the nearest object still on the table."""
        if self.active is not None:
            return self.active
        if not self.present:  # everything was taken: a new set of objects is on the table
            self.cycle += 1
            self.present = list(range(self.n_objects))
        objs = self._scene(self.cycle)['objects']
        self.active = max(self.present, key=lambda i: objs[i]['base_y'])
        self.t_start = float(now)
        return self.active

    def end_grasp(self, now, succeeded=True):
        """End the current grasp at ``now``: a success takes the object away, else it drops."""
        if self.active is None:
            return
        if succeeded:
            self.present.remove(self.active)
        self.active, self.t_start = None, None
        self.grasps += 1
        self.t_end = float(now)

    def on_goal_statuses(self, statuses, now):
        """
        Follow a grasp action's goals: ``statuses`` holds ``(goal_id, status, stamp)`` tuples.

        A goal seen executing starts a grasp at its ``stamp`` (when the server accepted it, in
        the clock of ``now``; a status that reaches a busy camera late does not delay the
        motion), or at ``now`` when the stamp is None or in the future; the same goal reaching
        a terminal status ends it (succeeded: the object is taken). Goals that ended before the
        world saw them run (a latched status from before the camera started) change nothing.
        """
        for gid, status, stamp in statuses:
            if status == EXECUTING and gid not in self._seen and self.active is None:
                self._seen.add(gid)
                self._goal = gid
                self.start_grasp(now if stamp is None else min(stamp, now))
            elif gid == self._goal and status in TERMINAL:
                self._goal = None
                self.end_grasp(now, succeeded=status == SUCCEEDED)

    def state(self, now):
        """
        Return what the camera sees at ``now``.

        Returns
        -------
          dict: ``cycle``, ``present`` (tuple of object indices on the table), ``active``
          (object being grasped or None), ``progress`` (0..1 along the grasp motion) and
          ``view`` (head pose index).

        """
        view = self.grasps
        if self.t_end is not None and now < self.t_end + self.view_delay_s:
            view -= 1  # the head moves a moment after a grasp ended
        progress = 0.0
        if self.active is not None:
            progress = float(np.clip((now - self.t_start) / self.grasp_s, 0.0, 1.0))
        return {'cycle': self.cycle, 'present': tuple(self.present), 'active': self.active,
                'progress': progress, 'view': max(view, 0)}

    def frame(self, now):
        """Render the camera frame at ``now``; see :meth:`render`."""
        s = self.state(now)
        return self.render(s['cycle'], s['present'], s['active'], s['progress'], s['view'])

    # ------------------------------------------------------------------ rendering
    def render(self, cycle, present, active=None, progress=0.0, view=0):
        """
        Render one camera frame (cached: an unchanged state returns the same frame).

        Arguments:
        ---------
          cycle (int): which set of objects is on the table.
          present (sequence of int): objects on the table (``active`` among them or not).
          active (int | None): the object the gripper is taking.
          progress (float): 0..1 along the grasp motion (descend, close, lift out of view).
          view (int): head pose index (0: the first pose).

        Returns
        -------
          dict: ``rgb`` HxWx3 uint8, ``depth`` HxW uint16 (mm, registered to ``rgb``),
          ``labels`` HxW uint8 (class, ``procedural.CLASS_NAMES``), ``instances`` HxW int32
          (object index + 1, 0 = table, wall, clutter and gripper).

        """
        step = round(float(progress) * 40) / 40  # the motion in 40 steps: frames can be cached
        key = (int(cycle), tuple(sorted(int(i) for i in present)),
               None if active is None else int(active), step, int(view))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        out = self._render(*key)
        self._cache[key] = out
        if len(self._cache) > 16:
            self._cache.popitem(last=False)
        return out

    def _render(self, cycle, present, active, progress, view):
        sc = self._scene(cycle)
        img = sc['background'].copy()
        depth = sc['table_depth'].copy()
        inst = np.zeros(self.canvas, np.int32)
        lift_px, lift_frac, grip = _motion(progress, sc, active)
        for i, o in enumerate(sc['objects']):
            if i not in present and i != active:
                continue
            fade = 1.0 - lift_frac if i == active else 1.0
            if fade > 0:
                ys, xs = o['shadow_box']
                img[ys, xs] *= 1.0 - (1.0 - o['shadow']) * fade
            if i != active:
                _paste(img, depth, inst, o, i + 1, 0, 0.0)
        if active is not None:
            o = sc['objects'][active]
            _paste(img, depth, inst, o, active + 1, -lift_px, lift_frac * 0.12)
            if grip is not None:  # it enters at the top of the view (the canvas is larger)
                _gripper(img, depth, inst, o, lift_px, *grip,
                         top=(self.canvas[0] - self.size[0]) // 2)
        h, w = self.size
        m = self._view_matrix(view)
        flags = cv2.WARP_INVERSE_MAP
        rgb = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR | flags,
                             borderMode=cv2.BORDER_REFLECT)
        inst = cv2.warpAffine(inst, m, (w, h), flags=cv2.INTER_NEAREST | flags,
                              borderMode=cv2.BORDER_REFLECT)
        depth = cv2.warpAffine(depth, m, (w, h), flags=cv2.INTER_NEAREST | flags,
                               borderMode=cv2.BORDER_REFLECT)
        rng = np.random.default_rng([self.seed, 9, cycle, len(present),
                                     0 if active is None else active + 1,
                                     int(progress * 40), view])
        rgb = tabletop.apply_camera(rgb, self.appearance, rng, self._gain)
        if self.size != self.out_size:
            oh, ow = self.out_size
            rgb = cv2.resize(rgb, (ow, oh), interpolation=cv2.INTER_LINEAR)
            inst = cv2.resize(inst, (ow, oh), interpolation=cv2.INTER_NEAREST)
            depth = cv2.resize(depth, (ow, oh), interpolation=cv2.INTER_NEAREST)
        lut = np.array([0] + [o['class'] for o in sc['objects']], np.uint8)
        return {'rgb': rgb, 'depth': np.round(depth * 1000.0).astype(np.uint16),
                'labels': lut[inst], 'instances': inst}

    def _view_matrix(self, view):
        """2x3 affine from camera pixels to canvas pixels for head pose ``view``."""
        h, w = self.size
        ch, cw = self.canvas
        if view == 0:
            dx = dy = ang = 0.0
            zoom = 1.0
        else:
            rng = np.random.default_rng([self.seed, 5, int(view)])
            dx, dy = rng.uniform(-0.8, 0.8, 2) * self.margin
            ang, zoom = math.radians(rng.uniform(-2.5, 2.5)), rng.uniform(0.96, 1.03)
        c, s = math.cos(ang) / zoom, math.sin(ang) / zoom
        cx_out, cy_out = (w - 1) / 2.0, (h - 1) / 2.0
        cx_in, cy_in = (cw - 1) / 2.0 + dx * w, (ch - 1) / 2.0 + dy * h
        return np.array([[c, -s, cx_in - c * cx_out + s * cy_out],
                         [s, c, cy_in - s * cx_out - c * cy_out]], np.float64)

    def _scene(self, cycle):
        if cycle not in self._scenes:
            self._scenes = {cycle: _build_scene(self.appearance, self.canvas, self.n_objects,
                                                [self.seed, cycle])}
        return self._scenes[cycle]


def _table_depth(ch, cw, horizon):
    """Depth (m) of the table plane (inverse depth linear in the row) and the wall above it."""
    rows = np.arange(ch, dtype=np.float32)
    t = np.clip((rows - horizon) / max(ch - 1 - horizon, 1), 0.0, 1.0)
    inv = 1.0 / FAR_M + t * (1.0 / NEAR_M - 1.0 / FAR_M)
    col = np.where(rows < horizon, WALL_M, 1.0 / inv).astype(np.float32)
    return np.repeat(col[:, None], cw, axis=1), col


def _build_scene(app, canvas, n, seed):
    """Background, depth and object sprites (rgb, mask, depth, shadow) of one scene."""
    rng = np.random.default_rng(seed)
    ch, cw = canvas
    light = tabletop.light_vector(app, rng)
    img, horizon = tabletop.draw_background(app, rng, ch, cw)
    tabletop.clutter_over_wall(img, app, rng, horizon)
    depth, col = _table_depth(ch, cw, horizon)
    scale = min(ch, cw) / 480.0
    # Spread the objects over the table (a row of slots with jitter), far ones first.
    slots = (np.arange(n) + 0.5) / n
    rng.shuffle(slots)
    # different classes, repeated only beyond 7
    names = rng.permutation(procedural.CLASS_NAMES[1:])
    objects = []
    for k in range(n):
        cx = cw * (0.14 + 0.72 * slots[k] + rng.uniform(-0.03, 0.03))
        cy = horizon + (ch - horizon) * rng.uniform(0.35, 0.78)
        near = (cy - horizon) / max(ch - horizon, 1)
        r = scale * rng.uniform(55, 80) * (0.6 + 0.6 * near)
        name = str(names[k % len(names)])
        angle = float(rng.uniform(-math.pi, math.pi))
        objects.append((name, float(cx), float(cy), float(r), angle))
    objects.sort(key=lambda o: o[2])
    out = []
    for name, cx, cy, r, angle in objects:
        m = tabletop.shape_mask(name, rng, ch, cw, cx, cy, r, angle)
        x0, y0, bw, bh = cv2.boundingRect(m)
        if bw == 0 or bh == 0:
            continue
        box = (slice(y0, y0 + bh), slice(x0, x0 + bw))
        ones = np.ones((ch, cw, 3), np.float32)
        tabletop.cast_shadow(ones, m, light, r, app.shadows)
        dark = np.flatnonzero(ones[..., 0].min(0) < 1.0), np.flatnonzero(ones[..., 0].min(1) < 1.0)
        if len(dark[0]):
            sbox = (slice(dark[1][0], dark[1][-1] + 1), slice(dark[0][0], dark[0][-1] + 1))
        else:
            sbox = (slice(0, 0), slice(0, 0))
        colour = tabletop.object_colour(name, app, rng)
        sprite = np.zeros((ch, cw, 3), np.float32)
        sub = tabletop.paint_object(
            sprite, m, box, colour, name, app, rng, light, cx, cy, r, angle)
        base_y = y0 + bh - 1
        # depth: the table at the object's foot, minus a rounded relief up to ~0.6 r
        dt = cv2.distanceTransform(m[box], cv2.DIST_L2, 3)
        relief = np.sqrt(dt / max(float(dt.max()), 1.0))
        metres_per_px = col[min(base_y, ch - 1)] / (cw / (2.0 * math.tan(math.radians(30.0))))
        obj_depth = col[min(base_y, ch - 1)] - 0.6 * r * metres_per_px * relief
        out.append({'name': name, 'class': procedural.CLASS_NAMES.index(name), 'cx': cx, 'cy': cy,
                    'r': r, 'box': (y0, x0, bh, bw), 'base_y': base_y,
                    'rgb': sprite[box].copy(), 'mask': sub.copy(),
                    'depth': obj_depth.astype(np.float32),
                    'shadow': ones[sbox].copy(), 'shadow_box': sbox})
    return {'background': img, 'table_depth': depth, 'objects': out, 'horizon': horizon}


def _motion(progress, scene, active):
    """Return ``(lift in canvas px, lift fraction 0..1, gripper (descent, opening) or None)``."""
    if active is None:
        return 0, 0.0, None
    o = scene['objects'][active]
    y0, _, bh, _ = o['box']
    if progress < 0.3:  # the gripper comes down, open
        return 0, 0.0, (progress / 0.3, 1.0)
    if progress < 0.45:  # it closes on the object
        return 0, 0.0, (1.0, 1.0 - (progress - 0.3) / 0.15)
    frac = (progress - 0.45) / 0.55  # lifted up and out of view
    lift = int(round(frac * (y0 + bh + 0.1 * scene['background'].shape[0])))
    return lift, frac, (1.0, 0.0)


def _paste(img, depth, inst, o, label, dy, closer_m):
    """Draw object sprite ``o`` shifted by ``dy`` rows (and ``closer_m`` towards the camera)."""
    y0, x0, bh, bw = o['box']
    ch = img.shape[0]
    top, bot = y0 + dy, y0 + dy + bh
    a, b = max(top, 0), min(bot, ch)
    if a >= b:
        return
    src = slice(a - top, b - top)
    mask = o['mask'][src]
    region = (slice(a, b), slice(x0, x0 + bw))
    img[region][mask] = o['rgb'][src][mask]
    depth[region][mask] = o['depth'][src][mask] - closer_m
    inst[region][mask] = label


def _gripper(img, depth, inst, o, lift_px, descent, opening, top=0):
    """Draw the gripper: an arm from the top edge, a palm and two fingers around object ``o``."""
    y0, x0, bh, bw = o['box']
    ch, cw = img.shape[:2]
    cx = x0 + bw // 2
    t = max(2, int(round(0.012 * cw)))  # bar thickness
    top_target = y0 - lift_px
    finger_len = int(round(0.55 * bh))
    start = top - finger_len // 2  # the fingertips just in view when the grasp starts
    palm_y = int(round(start + descent * (top_target - t - start)))  # ends just above the top
    half = int(round(bw / 2 + t + opening * 0.35 * bw))
    d = float(np.median(o['depth'])) - 0.05
    parts = [(cx - t, 0, cx + t, palm_y),  # arm
             (cx - half - t, palm_y - t, cx + half + t, palm_y + t),  # palm
             (cx - half - t, palm_y, cx - half + t, palm_y + finger_len),  # fingers
             (cx + half - t, palm_y, cx + half + t, palm_y + finger_len)]
    for xa, ya, xb, yb in parts:
        xa, xb = max(xa, 0), min(xb, cw)
        ya, yb = max(ya, 0), min(yb, ch)
        if xa >= xb or ya >= yb:
            continue
        shade = np.linspace(1.15, 0.85, xb - xa, dtype=np.float32)[None, :, None]
        img[ya:yb, xa:xb] = np.asarray(GRIPPER_GREY, np.float32) * shade
        depth[ya:yb, xa:xb] = d
        inst[ya:yb, xa:xb] = 0
