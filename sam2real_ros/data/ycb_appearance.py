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
How a YCB scene looks around its objects: the table, its shadows, backgrounds, the camera model.

Drawn with numpy and OpenCV from the scene's random generator (``ycb_scenes.py`` calls them in
a fixed order, so a seed fixes every draw). TinyRenderer draws only the objects: the table's
pixels took half of its time, so the table is drawn here in its plane, lit like the objects.
"""
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass
class Camera:
    """
    A pinhole camera over the table (OpenCV axes).

    Arguments:
    ---------
      K (np.ndarray): 3x3 intrinsics.
      rays (np.ndarray): 3x(H*W) float32 ``K^-1 [u, v, 1]`` of every pixel (z = 1).
      cam_from_world (np.ndarray): 4x4 world -> camera (world z up, table top at z = 0).

    """

    K: np.ndarray
    rays: np.ndarray
    cam_from_world: np.ndarray


def paint_table(rng: np.random.Generator, rgb: np.ndarray, depth: np.ndarray,
                objects: np.ndarray, camera: Camera, light: dict, table_size: tuple,
                floor: float = 0.0) -> tuple:
    """
    Draw a textured, lit table with the objects' shadows, and a background beyond it.

    With probability ``floor`` the table stands on a floor (a fine-grained, carpet-like
    :func:`floor_texture` in the table's plane, as the carpets beyond the tables of YCB-Video):
    it is drawn where the rays that miss the table meet the plane, the background above.

    Arguments:
    ---------
      rng (np.random.Generator): the scene's generator.
      rgb (np.ndarray): HxWx3 float 0..1, the objects as rendered.
      depth (np.ndarray): HxW metres of the objects.
      objects (np.ndarray): HxW bool, pixels of rendered objects (kept as they are).
      camera (Camera): the camera.
      light (dict): the TinyRenderer light (``lightDirection``, ``lightColor``, ``shadow``,
        ``lightAmbientCoeff``, ``lightDiffuseCoeff``).
      table_size (tuple): ``(min, max)`` visible table half extent (m).
      floor (float): probability of a floor beyond the table (0: never, no draw).

    Returns
    -------
      tuple: ``(rgb HxWx3 float32, depth HxW float32 m, 0 = none)``.

    """
    h, w = rgb.shape[:2]
    world_from_cam = np.linalg.inv(camera.cam_from_world)
    eye = world_from_cam[:3, 3].astype(np.float32)
    d = world_from_cam[:3, :3].astype(np.float32) @ camera.rays
    t = -eye[2] / np.minimum(d[2], np.float32(-1e-6))  # ray -> table plane z = 0
    x, y = eye[0] + t * d[0], eye[1] + t * d[1]
    half = rng.uniform(*table_size, 2)
    table = ((np.abs(x) < half[0]) & (np.abs(y) < half[1]) & (d[2] < 0)).reshape(h, w)
    table &= ~objects
    tex, period, angle = table_texture(rng), rng.uniform(0.15, 0.6), rng.uniform(0, np.pi)
    c, s = np.float32(np.cos(angle) / period), np.float32(np.sin(angle) / period)
    size = np.float32(tex.shape[0])
    painted = cv2.remap(tex, ((c * x + s * y) * size).reshape(h, w),
                        ((c * y - s * x) * size).reshape(h, w), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_WRAP)  # wraps around: a tiled texture
    to_light = np.asarray(light['lightDirection'], np.float32)
    to_light /= np.linalg.norm(to_light)
    lit = np.full((h, w), light['lightDiffuseCoeff'] * max(float(to_light[2]), 0.0), np.float32)
    if light['shadow']:
        lit *= 1 - 0.85 * table_shadow(depth, objects, camera, to_light)
    shade = light['lightAmbientCoeff'] + lit[..., None] * np.asarray(light['lightColor'],
                                                                     np.float32)
    beyond = background_image(rng, h, w)
    if floor > 0 and rng.random() < floor:
        ground = ((d[2] < 0).reshape(h, w)) & ~table & ~objects
        tex, period, angle = floor_texture(rng), rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
        c, s = np.float32(np.cos(angle) / period), np.float32(np.sin(angle) / period)
        size = np.float32(tex.shape[0])
        carpet = cv2.remap(tex, ((c * x + s * y) * size).reshape(h, w),
                           ((c * y - s * x) * size).reshape(h, w), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_WRAP)
        floor_shade = light['lightAmbientCoeff'] + light['lightDiffuseCoeff'] * max(
            float(to_light[2]), 0.0) * np.asarray(light['lightColor'], np.float32)
        beyond = np.where(ground[..., None], carpet * floor_shade, beyond)
    out = np.where(table[..., None], painted * shade, beyond)
    out[objects] = rgb[objects]
    depth = np.where(objects, depth, np.where(table, t.reshape(h, w), np.float32(0)))
    return out, depth.astype(np.float32)


def table_shadow(depth: np.ndarray, objects: np.ndarray, camera: Camera,
                 to_light: np.ndarray) -> np.ndarray:
    """
    Cast the visible object points along the light onto the table: a soft shadow mask.

    Arguments:
    ---------
      depth (np.ndarray): HxW metres of the objects.
      objects (np.ndarray): HxW bool object pixels.
      camera (Camera): the camera.
      to_light (np.ndarray): unit vector towards the light (world, z > 0).

    Returns
    -------
      np.ndarray: HxW float32 in 0..1 (1 = in shadow).

    """
    h, w = depth.shape
    idx = np.flatnonzero(objects.ravel()[::2]) * 2  # every other object pixel is enough
    if len(idx) == 0:
        return np.zeros((h, w), np.float32)
    cam_from_world = camera.cam_from_world.astype(np.float32)
    world_from_cam = np.linalg.inv(camera.cam_from_world).astype(np.float32)
    pts = world_from_cam[:3, :3] @ (camera.rays[:, idx] * depth.ravel()[idx])
    pts += world_from_cam[:3, 3:]
    pts -= (pts[2] / to_light[2]) * to_light[:, None]  # along the light onto z = 0
    cam = cam_from_world[:3, :3] @ pts + cam_from_world[:3, 3:]
    keep = cam[2] > 0.01
    q = camera.K.astype(np.float32) @ cam[:, keep]
    u, v = (q[0] / q[2] / 4).astype(np.int64), (q[1] / q[2] / 4).astype(np.int64)
    hs, ws = (h + 3) // 4, (w + 3) // 4
    inside = (u >= 0) & (u < ws) & (v >= 0) & (v < hs)
    grid = np.zeros(hs * ws, np.float32)
    grid[v[inside] * ws + u[inside]] = 1.0
    grid = cv2.dilate(grid.reshape(hs, ws), np.ones((3, 3), np.uint8))
    grid = cv2.GaussianBlur(grid, (0, 0), 1.0)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)


def table_texture(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """
    Draw a random tileable table texture: wood grain, speckle, checker or plain (RGB 0..1).

    Arguments:
    ---------
      rng (np.random.Generator): the scene's generator.
      size (int): tile size in pixels.

    Returns
    -------
      np.ndarray: size x size x 3 float32.

    """
    if rng.random() < 0.7:  # natural: grey, white, beige, wood tones
        base = rng.uniform(0.25, 0.95) * (1 + rng.uniform(-0.25, 0.25, 3))
        second = base * rng.uniform(0.6, 1.0)
    else:
        base, second = rng.uniform(0.15, 1.0, 3), rng.uniform(0.15, 1.0, 3)
    base, second = np.clip(base, 0, 1), np.clip(second, 0, 1)
    kind = int(rng.integers(4))
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == 0:  # wood grain
        f = int(rng.integers(3, 12))
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (f * yy + 0.15 * np.sin(2 * np.pi * 2 * xx)))
    elif kind == 1:  # mottled / speckle: periodic low-frequency noise (tiles without seams)
        spectrum = np.zeros((size, size), np.complex128)
        spectrum[:8, :8] = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
        spectrum[0, 0] = 0
        t = np.real(np.fft.ifft2(spectrum))
        t = (t - t.min()) / max(np.ptp(t), 1e-9)
        t = np.clip(t + 0.3 * rng.random((size, size)), 0, 1)
    elif kind == 2:  # checker / cloth
        n = int(rng.integers(2, 9))
        t = ((np.floor(yy * n) + np.floor(xx * n)) % 2).astype(np.float64)
    else:  # plain, slightly mottled
        t = 0.1 * rng.random((size, size))
    return (base * (1 - t[..., None]) + second * t[..., None]).astype(np.float32)


def floor_texture(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """
    Draw a random tileable carpet-like texture: fine grain over a mottled base (RGB 0..1).

    Arguments:
    ---------
      rng (np.random.Generator): the scene's generator.
      size (int): tile size in pixels.

    Returns
    -------
      np.ndarray: size x size x 3 float32.

    """
    base = np.clip(rng.uniform(0.1, 0.7) * (1 + rng.uniform(-0.3, 0.3, 3)), 0, 1)
    second = base * rng.uniform(0.3, 0.8)
    spectrum = np.zeros((size, size), np.complex128)
    spectrum[:6, :6] = rng.normal(size=(6, 6)) + 1j * rng.normal(size=(6, 6))
    spectrum[0, 0] = 0
    mottle = np.real(np.fft.ifft2(spectrum))
    mottle = (mottle - mottle.min()) / max(np.ptp(mottle), 1e-9)
    grain = rng.random((size, size))
    t = np.clip(0.3 * mottle + rng.uniform(0.4, 0.9) * grain, 0, 1)
    return (base * (1 - t[..., None]) + second * t[..., None]).astype(np.float32)


def background_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """
    Draw what lies beyond the table: a random gradient, blobs and boxes (RGB 0..1).

    Arguments:
    ---------
      rng (np.random.Generator): the scene's generator.
      h (int): image height.
      w (int): image width.

    Returns
    -------
      np.ndarray: HxWx3 float32.

    """
    top, bottom = rng.uniform(0.05, 0.9, 3), rng.uniform(0.05, 0.9, 3)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3)).astype(np.float32)
    blobs = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    img = np.clip(img * 0.7 + blobs * 0.3, 0, 1)
    for _ in range(int(rng.integers(0, 6))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 20, w // 2)), y0 + int(rng.integers(h // 20, h // 2))
        img[y0:y1, x0:x1] = rng.uniform(0.05, 0.95, 3)
    return img


def apply_camera_model(rgb: np.ndarray, rng: np.random.Generator, cfg: Any) -> np.ndarray:
    """
    Exposure, white balance, tone curve, blur and sensor noise: float RGB 0..1 -> uint8.

    Arguments:
    ---------
      rgb (np.ndarray): HxWx3 float in 0..1.
      rng (np.random.Generator): the scene's generator.
      cfg (YcbSceneConfig): the ranges to draw from (``exposure``, ``colour_shift``, ``gamma``,
        ``blur_sigma``, ``noise_std``).

    Returns
    -------
      np.ndarray: HxWx3 uint8.

    """
    gains = rng.uniform(*cfg.exposure) * (1 + rng.uniform(-cfg.colour_shift, cfg.colour_shift, 3))
    img = np.clip(rgb * gains.astype(np.float32), 0, 1) ** rng.uniform(*cfg.gamma)
    sigma = rng.uniform(*cfg.blur_sigma)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    img = img * 255 + noise * np.float32(rng.uniform(*cfg.noise_std))
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
