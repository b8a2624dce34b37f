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
Drawing the procedural tabletop: background, object shapes, shadows, paint, depth, camera.

The pieces :class:`procedural.TabletopRenderer` (random scenes) and :mod:`sim_world` (the
demo robot's persistent scene) both paint with. Every function takes the scene's
:class:`procedural.Appearance` as ``app`` and a numpy ``rng``, so a frame is fully determined by
its seed.
"""
import math

import cv2
import numpy as np

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

# Depth camera of the scene: the table is a plane whose inverse depth is linear in the row
# (1.2 m at the wall, 0.6 m at the bottom row, matching the 0.6-1.2 size scaling of objects in
# procedural.TabletopRenderer's placement); focal length in pixels = DEPTH_FOCAL * width.
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
