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
from sam2real_ros.data.tabletop import (apply_camera, camera_gain, cast_shadow, clutter_over_wall,
                                        draw_background, light_vector, object_colour,
                                        paint_object, render_depth, shape_mask)
from sam2real_ros.sam.mask_layers import MaskLayers

CLASS_NAMES = ('background', 'box', 'can', 'ball', 'banana', 'mug', 'bottle', 'block')
"""Label ``i`` is ``CLASS_NAMES[i]``; 0 is the table, wall and clutter."""


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
