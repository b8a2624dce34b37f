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
Procedural tabletop renderer: labeled scenes with a controllable domain gap, no downloads.

A scene is a table (optionally with a wall behind it and unlabeled background clutter) and
several objects of ``CLASS_NAMES[1:]`` placed with occlusion. Everything is drawn with numpy and
OpenCV in a few milliseconds per 480x640 frame and is fully determined by the seed. How the scene
*looks* (lighting, shading, shadows, texture, colours, camera noise, blur, JPEG) is set by an
:class:`Appearance`; the presets ``synthetic`` (the "simulator"), ``real`` (the "robot camera")
and ``synthetic_wide_gap`` (flat render, most options off) build a narrow and a wide domain gap.
"""
from dataclasses import dataclass, fields, replace
import math

import cv2
import numpy as np

from sam2real_ros.data.base import BaseDataset, DatasetError, resolve_segmenter, segment_frame
from sam2real_ros.sam.mask_layers import MaskLayers

CLASS_NAMES = ('background', 'box', 'can', 'ball', 'banana', 'mug', 'bottle', 'block')
"""Label ``i`` is ``CLASS_NAMES[i]``; 0 is the table, wall and clutter."""

# Base colour (RGB 0..1) and a second (pattern) colour per class.
_PALETTE = {
    'box': ((0.80, 0.22, 0.16), (0.95, 0.90, 0.75)),
    'can': ((0.20, 0.35, 0.80), (0.85, 0.85, 0.88)),
    'ball': ((0.95, 0.55, 0.10), (0.20, 0.15, 0.10)),
    'banana': ((0.95, 0.85, 0.20), (0.45, 0.30, 0.10)),
    'mug': ((0.25, 0.65, 0.35), (0.95, 0.95, 0.95)),
    'bottle': ((0.55, 0.25, 0.65), (0.95, 0.85, 0.30)),
    'block': ((0.78, 0.60, 0.38), (0.55, 0.38, 0.20)),
}


@dataclass(frozen=True)
class Appearance:
    """
    Rendering options; each one widens or narrows the gap to another appearance.

    Arguments:
    ---------
      light_azimuth_deg (float): light direction around the camera axis (0 = from the right).
      light_elevation_deg (float): light elevation above the table plane (90 = from the camera).
      light_jitter_deg (float): per-scene random jitter of both light angles.
      light_intensity (float): diffuse light strength; ambient (float): ambient light level.
      shading (float): 0 = flat colours, 1 = full Lambertian shading of the object relief.
      specular (float): strength of specular highlights.
      shadows (float): opacity of the objects' cast shadows on the table (0 = none).
      texture_detail (float): 0 = one flat colour per object, 1 = full printed patterns.
      hue_shift_deg (float): constant hue shift of the object palette (a colour domain gap).
      saturation_scale (float): saturation factor of the object palette.
      colour_jitter (float): per-object random hue/value jitter (0..1).
      white_balance (tuple): RGB gains of the camera.
      background (str): ``plain``, ``wood`` or ``textured`` table surface.
      wall (bool): draw a wall above a random horizon line.
      clutter (int): maximum number of unlabeled background shapes (label 0).
      noise_std (float): Gaussian camera noise, in 0..255 units.
      blur_sigma (float): Gaussian blur sigma in pixels (0 = off).
      jpeg_quality (int): JPEG re-encoding quality 1..100 (0 = off).
      vignetting (float): darkening of the image corners (0..1).

    """

    light_azimuth_deg: float = 60.0
    light_elevation_deg: float = 60.0
    light_jitter_deg: float = 10.0
    light_intensity: float = 0.75
    ambient: float = 0.35
    shading: float = 1.0
    specular: float = 0.0
    shadows: float = 0.3
    texture_detail: float = 1.0
    hue_shift_deg: float = 0.0
    saturation_scale: float = 1.0
    colour_jitter: float = 0.05
    white_balance: tuple = (1.0, 1.0, 1.0)
    background: str = 'plain'
    wall: bool = True
    clutter: int = 0
    noise_std: float = 0.0
    blur_sigma: float = 0.0
    jpeg_quality: int = 0
    vignetting: float = 0.0

    def __post_init__(self):
        if self.background not in ('plain', 'wood', 'textured'):
            raise ValueError(f'Appearance.background must be plain, wood or textured, '
                             f'got {self.background!r}')
        for name in ('light_intensity', 'ambient', 'shading', 'specular', 'shadows',
                     'texture_detail', 'saturation_scale', 'colour_jitter', 'noise_std',
                     'blur_sigma', 'vignetting', 'clutter'):
            if getattr(self, name) < 0:
                raise ValueError(f'Appearance.{name} must be >= 0, got {getattr(self, name)}')
        if not 0 <= self.jpeg_quality <= 100:
            raise ValueError(f'Appearance.jpeg_quality must be 0..100, got {self.jpeg_quality}')
        if len(self.white_balance) != 3:
            raise ValueError(f'Appearance.white_balance needs 3 gains, got {self.white_balance}')


PRESETS = {
    # The "simulator": clean, softly lit, full textures, no camera effects.
    'synthetic': Appearance(),
    # The "robot camera": side light, warm white balance, shifted colours, textured table,
    # clutter, specular highlights, noise, blur and JPEG artefacts.
    'real': Appearance(light_azimuth_deg=160.0, light_elevation_deg=35.0, light_jitter_deg=20.0,
                       light_intensity=0.9, ambient=0.25, specular=0.35, shadows=0.6,
                       hue_shift_deg=12.0, saturation_scale=0.75, colour_jitter=0.12,
                       white_balance=(1.08, 1.0, 0.85), background='textured', clutter=5,
                       noise_std=6.0, blur_sigma=1.0, jpeg_quality=70, vignetting=0.35),
    # Like the paper's Fig. 9 ablation: most rendering options off, flat colours.
    'synthetic_wide_gap': Appearance(light_jitter_deg=0.0, shading=0.0, shadows=0.0,
                                     texture_detail=0.0, colour_jitter=0.0, wall=False),
}


def get_appearance(spec='synthetic', **overrides):
    """
    Resolve an appearance.

    Arguments:
    ---------
      spec (str | dict | Appearance): a preset name, a dict ``{preset: name, <field>: value}``
        (fields override the preset, default preset ``synthetic``) or an :class:`Appearance`.
      overrides: further field overrides.

    Returns
    -------
      Appearance: the resolved (validated) appearance.

    """
    if isinstance(spec, Appearance):
        base, extra = spec, {}
    elif isinstance(spec, str):
        base, extra = _preset(spec), {}
    elif isinstance(spec, dict):
        extra = dict(spec)
        base = _preset(extra.pop('preset', 'synthetic'))
    else:
        raise ValueError(f'appearance must be a preset name, a dict or an Appearance, '
                         f'got {type(spec).__name__}')
    extra.update(overrides)
    known = {f.name for f in fields(Appearance)}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise ValueError(f'unknown appearance field(s) {unknown}; known: {sorted(known)}')
    if 'white_balance' in extra:
        extra['white_balance'] = tuple(extra['white_balance'])
    return replace(base, **extra)


def _preset(name):
    if name not in PRESETS:
        raise ValueError(f'unknown appearance preset {name!r}; known: {sorted(PRESETS)}')
    return PRESETS[name]


class TabletopRenderer:
    """
    Deterministic procedural tabletop renderer.

    Arguments:
    ---------
      appearance (str | dict | Appearance): see :func:`get_appearance`.
      size (tuple): output ``(height, width)`` in pixels.
      objects (tuple): inclusive ``(min, max)`` number of objects per scene.

    """

    class_names = CLASS_NAMES

    def __init__(self, appearance='synthetic', size=(480, 640), objects=(4, 8)):
        self.appearance = get_appearance(appearance)
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 32:
            raise ValueError(f'size must be at least 32x32 pixels, got {self.size}')
        self.objects = (int(objects[0]), int(objects[1]))
        if not 1 <= self.objects[0] <= self.objects[1]:
            raise ValueError(f'objects must be (min, max) with 1 <= min <= max, got {objects}')
        self._gain = None  # camera gain map, computed on first use

    def render(self, seed):
        """
        Render the scene for ``seed``.

        Arguments:
        ---------
          seed (int | sequence of int): the same seed always gives the same frame.

        Returns
        -------
          dict: ``rgb`` HxWx3 uint8 (RGB), ``labels`` HxW uint8 (class index into
          ``CLASS_NAMES``, 0 = background), ``instances`` HxW int32 (visible object instance,
          1..n, 0 = none), ``instance_classes`` int64 (n,) (class of instance ``i + 1``) and
          ``full_areas`` int64 (n,) (pixels of each silhouette before occlusion) and
          ``depth`` HxW uint16 registered depth in millimetres (see :func:`render_depth`).

        """
        rng = np.random.default_rng(seed)
        app = self.appearance
        h, w = self.size
        light = light_vector(app, rng)
        img, horizon = draw_background(app, rng, h, w)
        instances = np.zeros((h, w), np.int32)
        classes, full_areas, painted = [], [], []
        scale = min(h, w) / 480.0
        placed = _place_objects(rng, self.objects, h, w, horizon, scale)
        for name, cx, cy, r, angle in placed:
            m = shape_mask(name, rng, h, w, cx, cy, r, angle)
            x0, y0, bw, bh = cv2.boundingRect(m)
            if bw == 0:
                continue
            box = (slice(y0, y0 + bh), slice(x0, x0 + bw))
            if app.shadows > 0:
                cast_shadow(img, m, light, r, app.shadows)
            colour = object_colour(name, app, rng)
            mask = paint_object(img, m, box, colour, name, app, rng, light, cx, cy, r, angle)
            classes.append(CLASS_NAMES.index(name))
            full_areas.append(int(np.count_nonzero(mask)))
            painted.append((name, box, mask))
            instances[box][mask] = len(classes)
        clutter_over_wall(img, app, rng, horizon)
        if self._gain is None:
            self._gain = camera_gain(app, h, w)
        rgb = apply_camera(img, app, rng, self._gain)
        # after the last draw for the colour image: adding depth changes no RGB frame
        depth = render_depth(h, w, horizon, painted, app, rng)
        lut = np.array([0] + classes, np.uint8)
        return {'rgb': rgb, 'labels': lut[instances], 'instances': instances,
                'instance_classes': np.array(classes, np.int64),
                'full_areas': np.array(full_areas, np.int64), 'depth': depth}


# Depth camera of the scene: the table is a plane whose inverse depth is linear in the row
# (1.2 m at the wall, 0.6 m at the bottom row, matching the 0.6-1.2 size scaling of objects in
# _place_objects); focal length in pixels = DEPTH_FOCAL * width.
TABLE_NEAR_M, TABLE_FAR_M, DEPTH_FOCAL = 0.6, 1.2, 1.0
_ROUND = ('can', 'ball', 'mug', 'bottle', 'banana')


def render_depth(h, w, horizon, painted, app, rng):
    """
    Render the registered depth (HxW uint16 mm, 0 = no measurement) of a scene.

    The table is a plane (inverse depth linear in the row), the wall above ``horizon`` a plane
    facing the camera at the table's far edge, and every object stands on the table: its front
    face is at the table depth of its lowest visible row, round objects (can, ball, mug,
    bottle, banana) bulge towards the camera by up to their half-width. Objects are painted in
    the renderer's order, so depth agrees with the occlusions of the colour image. Appearances
    with camera noise (``noise_std > 0``) get a structured-light camera's depth noise (std
    1.5 mm x z^2, z in m), a missing band left of each object (the projector's shadow) and
    1-mm quantization; the others are exact up to quantization.

    Arguments:
    ---------
      h (int): image height. w (int): image width.
      horizon (int): first table row (rows above it are the wall).
      painted (list): ``(class name, box slices, HxW-box bool silhouette)`` in painting order.
      app (Appearance): the scene's appearance (``noise_std`` switches depth noise on).
      rng (np.random.Generator): used only for the noise.

    Returns
    -------
      np.ndarray: HxW uint16 millimetres.

    """
    rows = np.arange(h, dtype=np.float64)
    frac = np.clip((rows - horizon) / max(h - 1 - horizon, 1), 0.0, 1.0)
    inv_near, inv_far = 1.0 / TABLE_NEAR_M, 1.0 / TABLE_FAR_M
    table = 1.0 / (inv_far + (inv_near - inv_far) * frac)  # the wall rows get TABLE_FAR_M
    z = np.repeat(table[:, None], w, axis=1)
    focal = DEPTH_FOCAL * w
    shadow = np.zeros((h, w), bool)
    band = max(1, int(round(0.004 * w)))
    for name, box, sil in painted:
        ys = np.nonzero(sil.any(1))[0]
        if not len(ys):
            continue
        z_face = table[box[0].start + ys[-1]]
        face = np.full(sil.shape, z_face)
        if name in _ROUND:
            pad = cv2.copyMakeBorder(sil.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, 0)
            dist = cv2.distanceTransform(pad, cv2.DIST_L2, 3)[1:-1, 1:-1]
            half = max(float(dist.max()), 1.0)
            face = face - np.sqrt(dist / half) * half * z_face / focal
        z[box][sil] = face[sil]
        if app.noise_std > 0:
            left = np.zeros(sil.shape, bool)
            left[:, :-band] = sil[:, band:] & ~sil[:, :-band]
            shadow[box] |= left
    if app.noise_std > 0:
        z = z + rng.standard_normal((h, w)) * 0.0015 * z * z
    out = np.clip(np.round(z * 1000.0), 1, 65535).astype(np.uint16)
    out[shadow] = 0
    return out


def light_vector(app, rng):
    jit = app.light_jitter_deg
    az = math.radians(app.light_azimuth_deg + rng.uniform(-jit, jit))
    el = math.radians(np.clip(app.light_elevation_deg + rng.uniform(-jit, jit), 5.0, 90.0))
    # Image coordinates: x right, y down, z towards the camera.
    return np.array([math.cos(el) * math.cos(az), -math.cos(el) * math.sin(az), math.sin(el)],
                    np.float32)


def draw_background(app, rng, h, w):
    """Table (and wall) as float32 HxWx3 in 0..1; returns ``(image, horizon_row)``."""
    grey, tint = rng.uniform(0.45, 0.8), rng.uniform(-0.08, 0.08, 3)
    table = np.array(grey + tint, np.float32)
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    gain = 0.9 + 0.15 * yy  # the table gets brighter towards the camera
    if app.background == 'wood':
        xx = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
        wave = np.sin(xx * rng.uniform(30, 60) + 3 * np.sin(yy * rng.uniform(3, 8)))
        gain = gain * (1.0 + 0.08 * wave)
    elif app.background == 'textured':
        for cell, amp in ((16, 0.12), (3, 0.06)):
            small = rng.uniform(-amp, amp, (h // cell + 1, w // cell + 1)).astype(np.float32)
            gain = gain * (1.0 + cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    img = gain[:, :, None] * table
    if img.shape[1] != w:  # plain table: one gain per row
        img = np.repeat(img, w, axis=1)
    horizon = int(h * rng.uniform(0.08, 0.28)) if app.wall else 0
    if horizon:
        img[:horizon] = np.array(rng.uniform([0.6, 0.6, 0.6], [0.9, 0.9, 0.85]), np.float32)
    return img, horizon


def _place_objects(rng, count, h, w, horizon, scale):
    n = int(rng.integers(count[0], count[1] + 1))
    out = []
    for _ in range(n):
        # Objects cluster around the table centre, so they often occlude each other.
        cy = np.clip(rng.normal(0.5 * (horizon + h), 0.22 * h), horizon + 0.1 * h, 0.95 * h)
        cx = np.clip(rng.normal(0.5 * w, 0.22 * w), 0.05 * w, 0.95 * w)
        depth = (cy - horizon) / max(h - horizon, 1)  # 0 far .. 1 near
        r = scale * rng.uniform(55, 95) * (0.6 + 0.6 * depth)
        out.append((str(rng.choice(CLASS_NAMES[1:])), float(cx), float(cy), float(r),
                    float(rng.uniform(-math.pi, math.pi))))
    out.sort(key=lambda o: o[2])  # far objects first, near ones occlude them
    return out


def _poly(mask, pts):
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)


def _rot(cx, cy, angle, pts):
    c, s = math.cos(angle), math.sin(angle)
    pts = np.asarray(pts, np.float64)
    return np.stack([cx + c * pts[:, 0] - s * pts[:, 1], cy + s * pts[:, 0] + c * pts[:, 1]], 1)


def shape_mask(name, rng, h, w, cx, cy, r, angle):
    """Object silhouette as an HxW uint8 mask (255 inside)."""
    m = np.zeros((h, w), np.uint8)
    ci, ri = (int(round(cx)), int(round(cy))), max(int(r), 3)
    if name == 'box':
        a, b = r * rng.uniform(0.8, 1.1), r * rng.uniform(0.5, 0.8)
        _poly(m, _rot(cx, cy, angle, [(-a, -b), (a, -b), (a, b), (-a, b)]))
    elif name == 'block':
        a = r * 0.6
        _poly(m, _rot(cx, cy, angle, [(a * math.cos(t), a * math.sin(t))
                                      for t in np.arange(6) * math.pi / 3]))
    elif name == 'ball':
        cv2.circle(m, ci, int(r * 0.6), 255, -1, cv2.LINE_8)
    elif name == 'banana':
        deg = math.degrees(angle)
        cv2.ellipse(m, ci, (ri, int(r * 0.5)), deg, 200, 340, 255, max(int(r * 0.28), 2))
    elif name in ('can', 'mug', 'bottle'):
        a = r * (0.45 if name != 'bottle' else 0.3)
        b = r * (0.7 if name != 'bottle' else 0.9)
        tilt = angle * 0.25  # upright objects only lean a little
        _poly(m, _rot(cx, cy, tilt, [(-a, -b), (a, -b), (a, b), (-a, b)]))
        top = _rot(cx, cy, tilt, [(0, -b)])[0]
        cv2.ellipse(m, (int(top[0]), int(top[1])), (int(a), max(int(a * 0.35), 1)),
                    math.degrees(tilt), 0, 360, 255, -1)
        if name == 'mug':
            side = _rot(cx, cy, tilt, [(a, 0)])[0]
            cv2.ellipse(m, (int(side[0]), int(side[1])), (max(int(a * 0.5), 2), int(b * 0.45)),
                        math.degrees(tilt), -90, 90, 255, max(int(a * 0.22), 2))
        else:
            neck = [(-a * 0.4, -b * 1.45), (a * 0.4, -b * 1.45), (a * 0.4, -b), (-a * 0.4, -b)]
            if name == 'bottle':
                _poly(m, _rot(cx, cy, tilt, neck))
    return m


def cast_shadow(img, m, light, r, opacity):
    """Darken the table where the object's silhouette ``m`` (HxW uint8) falls when shifted."""
    dx, dy = -light[0] / max(light[2], 0.2), -light[1] / max(light[2], 0.2)
    sx, sy, k = dx * r * 0.35, dy * r * 0.35, int(r * 0.3) | 1
    h, w = m.shape
    x0, y0, bw, bh = cv2.boundingRect(m)
    pad = k + 2
    xa, xb = max(int(x0 + min(sx, 0)) - pad, 0), min(int(x0 + bw + max(sx, 0)) + pad, w)
    ya, yb = max(int(y0 + min(sy, 0)) - pad, 0), min(int(y0 + bh + max(sy, 0)) + pad, h)
    if xa >= xb or ya >= yb:
        return
    crop = m[ya:yb, xa:xb].astype(np.float32) * (opacity * 0.7 / 255.0)
    sh = cv2.warpAffine(crop, np.float32([[1, 0, sx], [0, 1, sy]]), (xb - xa, yb - ya))
    sh = cv2.blur(sh, (k, k))
    img[ya:yb, xa:xb] *= (1.0 - sh)[:, :, None]


def object_colour(name, app, rng):
    base, pattern = (np.array(c, np.float32)[None, None] for c in _PALETTE[name])
    jit = app.colour_jitter
    hue = app.hue_shift_deg + rng.uniform(-60, 60) * jit
    val = 1.0 + rng.uniform(-0.5, 0.5) * jit
    return [_shift_hsv(c, hue, app.saturation_scale, val) for c in (base, pattern)]


def _shift_hsv(rgb, hue_deg, sat, val):
    hsv = cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + hue_deg) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * val, 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]


def paint_object(img, m, box, colours, name, app, rng, light, cx, cy, r, angle):
    """Paint one object into ``img`` inside ``box``; returns its silhouette there (bool)."""
    mc = m[box]
    sub = mc > 0
    gy, gx = np.mgrid[box].astype(np.float32)
    c, s = math.cos(angle), math.sin(angle)
    u, v = ((gx - cx) * c + (gy - cy) * s) / r, (-(gx - cx) * s + (gy - cy) * c) / r
    base, second = colours
    pattern = _pattern(name, u, v, gx, gy, cx, cy, r, rng) * app.texture_detail
    col = base + (second - base) * pattern[..., None]
    if app.shading > 0:
        # Relief from the distance to the silhouette border, lit by a Lambertian model.
        if sub.all():
            # The silhouette fills its bounding box, so the box holds no border pixel and
            # distanceTransform would return FLT_MAX everywhere (-> inf -> NaN -> a black
            # rectangle): the border is just outside the box, so measure with a zero frame.
            dist = cv2.distanceTransform(np.pad(mc, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        else:
            dist = cv2.distanceTransform(mc, cv2.DIST_L2, 3)
        hm = np.sqrt(dist * max(r, 1.0) * 0.5)
        nx = cv2.Sobel(hm, cv2.CV_32F, 1, 0, ksize=3) * -0.125
        ny = cv2.Sobel(hm, cv2.CV_32F, 0, 1, ksize=3) * -0.125
        lam = np.clip((nx * light[0] + ny * light[1] + light[2])
                      / np.sqrt(nx * nx + ny * ny + 1.0), 0, 1)
        shade = 1.0 + app.shading * (app.ambient + app.light_intensity * lam - 1.0)
        col = col * shade[..., None]
        if app.specular > 0:
            col = col + app.specular * (lam ** 24)[..., None]
    img[box][sub] = col[sub]
    return sub


def _pattern(name, u, v, gx, gy, cx, cy, r, rng):
    """Per-class printed pattern in 0..1 (weight of the second colour), object coordinates."""
    f = rng.uniform(0.8, 1.2)
    if name == 'box':  # printed label panel with text-like lines
        panel = (np.abs(u) < 0.5) & (np.abs(v) < 0.35)
        lines = (np.sin(v * 40 * f) > 0.3) & (np.abs(u) < 0.4) & (np.abs(v) < 0.25)
        return panel * 0.8 - lines * 0.6 + 0.0
    if name == 'can':  # horizontal label bands
        return (np.abs(np.sin((gy - cy) / r * 6 * f)) > 0.6).astype(np.float32) * 0.9
    if name == 'ball':  # dots
        return ((np.sin(u * 12 * f) * np.sin(v * 12 * f)) > 0.6).astype(np.float32)
    if name == 'banana':  # brown speckles
        return (np.sin(gx * 0.9 * f) * np.sin(gy * 1.1 * f) > 0.85).astype(np.float32)
    if name == 'mug':  # white rim and a logo dot
        rim = (gy - cy) / r < -0.55
        logo = np.hypot((gx - cx) / r, (gy - cy) / r) < 0.2
        return (rim | logo).astype(np.float32)
    if name == 'bottle':  # label band and cap
        band = np.abs((gy - cy) / r) < 0.3
        cap = (gy - cy) / r < -1.15
        return (band | cap).astype(np.float32)
    return (np.sin(u * 25 * f + 2 * np.sin(v * 6)) > 0.2).astype(np.float32) * 0.7  # wood grain


def clutter_over_wall(img, app, rng, horizon):
    """Unlabeled background shapes on the wall and the table border (label stays 0)."""
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(0, app.clutter + 1))):
        colour = tuple(float(c) for c in rng.uniform(0.1, 0.9, 3))
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, max(horizon, 0.08 * h)))
        sz = int(rng.uniform(0.03, 0.1) * w)
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + sz, y + int(sz * rng.uniform(0.5, 2))), colour, -1)
        else:
            cv2.circle(img, (x, y), sz // 2, colour, -1)


def camera_gain(app, h, w):
    """Per-pixel gain HxWx3 float32: white balance x vignetting x 255."""
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    vign = 1.0 - app.vignetting * 0.5 * (xx * xx + yy * yy)
    return (vign * (np.asarray(app.white_balance, np.float32) * 255.0)).astype(np.float32)


def apply_camera(img, app, rng, gain):
    """Gain, blur, noise, quantization and JPEG; returns HxWx3 uint8."""
    h, w = img.shape[:2]
    img *= gain
    if app.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), app.blur_sigma)
    if app.noise_std > 0:
        # Luminance noise, one draw per pixel shared by the channels (cheap and seeded).
        img += (rng.standard_normal((h, w), dtype=np.float32) * app.noise_std)[:, :, None]
    out = np.clip(img, 0, 255, out=img).astype(np.uint8)
    if app.jpeg_quality:
        ok, buf = cv2.imencode('.jpg', out, [cv2.IMWRITE_JPEG_QUALITY, int(app.jpeg_quality)])
        out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # channel order is irrelevant here
    return out


class ProceduralDataset(BaseDataset):
    """
    Procedural tabletop frames rendered on the fly (see :class:`TabletopRenderer`).

    Frame ``i`` of epoch ``e`` is rendered from the seed ``[seed, stream, e, i]``, so every epoch
    brings new scenes ("generated on the fly, a frame never repeats") while a fixed ``seed`` and
    epoch give a fixed evaluation set.

    Arguments:
    ---------
      appearance (str | dict): preset name or dict (see ``procedural.get_appearance``).
      length (int): frames per epoch. size (tuple): ``(height, width)``.
      segments (str | callable | None): unlabeled use only: ``oracle`` (segments derived from
        the ground-truth instances with random over/under-segmentation), ``fallback`` (the
        fallback segmenter, given the renderer's depth) or a callable ``rgb -> NxHxW bool``.
        None gives labeled samples.
      with_labels (bool): also return ``labels`` in unlabeled samples (evaluation only).
      oracle (dict): options of :func:`oracle_segments`.

    """

    def __init__(self, appearance='synthetic', length=1500, size=(480, 640), objects=(4, 8),
                 segments=None, with_labels=False, oracle=None, **kw):
        super().__init__(**kw)
        self.renderer = TabletopRenderer(appearance, size, objects)
        self.appearance_name = appearance if isinstance(appearance, str) else 'custom'
        self.length = int(length)
        if self.length < 1:
            raise DatasetError(f'procedural: length must be >= 1, got {length}')
        self.class_names = list(CLASS_NAMES)
        self.unlabeled = segments is not None
        self.with_labels = bool(with_labels)
        self.oracle = dict(oracle or {})
        self.segmenter = None
        if self.unlabeled and segments != 'oracle':
            self.segmenter = resolve_segmenter(segments)

    def __len__(self):
        return self.length

    def _key(self, index):
        return f'procedural/{self.appearance_name}/{self.seed}-{self.epoch}-{index}'

    def _load(self, index):
        stream = 2 if self.unlabeled else 1
        scene = self.renderer.render([self.seed, stream, self.epoch, index])
        out = {'rgb': scene['rgb'], 'key': self._key(index)}
        if not self.unlabeled:
            out['labels'] = scene['labels']
            return out
        if self.segmenter is None:
            rng = np.random.default_rng([self.seed, 3, self.epoch, index])
            out['masks'] = MaskLayers.from_masks(
                oracle_segments(scene['instances'], rng, **self.oracle))
        else:  # the renderer's registered depth goes to a segmenter that takes depth
            out['masks'] = segment_frame(self.segmenter, scene['rgb'], scene['depth'])
        if self.with_labels:
            out['labels'] = scene['labels']
        return out


def oracle_segments(instances, rng, p_split=0.5, p_keep_whole=0.7, p_merge=0.2,
                    p_background=0.5, min_area=64):
    """
    Make "oracle SAM" segments for tests: overlapping whole/part masks from an instance map.

    Each visible instance gives its whole mask and, with ``p_split``, two parts cut by a random
    line through its centroid (the whole is then kept with ``p_keep_whole``): SAM-like
    over-segmentation. Touching instances are merged into one extra mask with ``p_merge``
    (under-segmentation), and the background is one segment with ``p_background``. This uses
    ground truth, so it is only ever selected explicitly (``segments: oracle``).

    Arguments:
    ---------
      instances (np.ndarray): HxW int instance ids (0 = none).
      rng (np.random.Generator): random source (the result is deterministic given it).

    Returns
    -------
      np.ndarray: NxHxW bool masks in random order (N may be 0).

    """
    h, w = instances.shape
    out = []
    ids = [int(i) for i in np.unique(instances) if i != 0]
    kernel = np.ones((5, 5), np.uint8)
    for i in ids:
        whole = instances == i
        area = int(whole.sum())
        if area < min_area:
            continue
        keep_whole = True
        if rng.random() < p_split:
            ys, xs = np.nonzero(whole)
            t = rng.uniform(0, np.pi)
            side = (xs - xs.mean()) * np.cos(t) + (ys - ys.mean()) * np.sin(t) > 0
            for part in (side, ~side):
                if part.sum() >= min_area:
                    m = np.zeros((h, w), bool)
                    m[ys[part], xs[part]] = True
                    out.append(m)
            keep_whole = rng.random() < p_keep_whole
        if keep_whole:
            out.append(whole)
        if rng.random() < p_merge:
            ring = cv2.dilate(whole.astype(np.uint8), kernel).astype(bool) & ~whole
            touching = [int(j) for j in np.unique(instances[ring]) if j not in (0, i)]
            if touching:
                out.append(whole | (instances == touching[int(rng.integers(len(touching)))]))
    if rng.random() < p_background and (instances == 0).sum() >= min_area:
        out.append(instances == 0)
    order = rng.permutation(len(out))
    return np.stack([out[k] for k in order]) if out else np.zeros((0, h, w), bool)
