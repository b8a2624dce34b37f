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
Stillleben-like tabletop scenes of the 21 YCB-Video objects, rendered on the CPU by PyBullet.

Per scene (all drawn from one seed): a random subset of the objects is dropped onto a table and
simulated until it rests (stacked and lying objects, no interpenetration), a camera with the
Asus Xtion intrinsics of YCB-Video looks at it from YCB-Video-like distances and angles, the
light (direction, colour, intensity, shadows), the table texture and the background are random,
and a camera model adds exposure, colour shift, blur and noise. ``ER_TINY_RENDERER`` draws the
frame with per-pixel object ids, so labels, instances and depth are exact.

The meshes are the YCB Object and Model Set (Calli et al., 2015; CC BY 4.0) in
``../shared/data/ycb_models`` (README there); poses are returned in the frame of the BOP ycbv
models (``objects.json``: ``google16k_to_bop_model_frame``), translations in mm as in BOP.
"""
from dataclasses import dataclass, field, fields
import os
import time

import numpy as np

from sam2real_ros.data.base import DatasetError
from sam2real_ros.data.ycb_appearance import apply_camera_model, Camera, paint_table
from sam2real_ros.data.ycb_models import (FAR, gl_matrices, look_at, matrix_from_pose, NEAR,
                                          ObjectPose, quat_from_matrix, scaled_intrinsics,
                                          YcbModels)


@dataclass(frozen=True)
class YcbSceneConfig:
    """
    What a scene may look like; every range is ``(min, max)``, sampled uniformly per scene.

    Arguments:
    ---------
      models (str): the ycb_models folder (``objects.json`` + one folder per object).
      height, width (int): image size; K is the Xtion's scaled to it.
      objects (tuple): number of objects per scene (distinct objects, as in YCB-Video).
      object_ids (tuple | None): class ids (1..21) to draw from; None = all 21.
      distance (tuple): camera distance to the look-at point (m).
      elevation_deg (tuple): camera elevation above the table plane (deg).
      roll_deg (float): maximum camera roll about the optical axis (deg).
      light_elevation_deg (tuple): light elevation (deg); its azimuth is uniform.
      light_colour (float): maximum deviation of each light colour channel from white.
      ambient, diffuse, specular (tuple): TinyRenderer light coefficients.
      shadow_prob (float): probability that the light casts shadows.
      table_size (tuple): visible table half extent (m); beyond it is background.
      floor (float): probability of a carpet-like floor in the table's plane beyond the
        table (YCB-Video's tables stand on carpets); 0 = never.
      distractors (tuple): static boxes, cylinders and balls of random colours around the
        objects (label 0: not every thing on a table is a YCB object).
      exposure (tuple): global gain of the camera. colour_shift (float): max white-balance gain
        deviation per channel. gamma (tuple): tone curve exponent.
      blur_sigma (tuple): Gaussian blur sigma (pixels). noise_std (tuple): Gaussian noise std
        (0..255 units). depth_noise (float): depth noise std at 1 m (m), growing with z^2.
      upright_prob (float): probability that an object is put down standing (random yaw);
        the others start in a random orientation.
      max_settle_steps (int): physics steps (240 Hz) at most until the objects rest.
      views (int): frames drawn of one settled scene (``render(seed, view)``): each view has
        its own camera, light, table, background and camera noise. Physics is two thirds of
        a frame's CPU time, so 4 views make a frame ~2x cheaper. 1 = one frame per scene.

    """

    models: str
    height: int = 480
    width: int = 640
    objects: tuple = (3, 8)
    object_ids: tuple | None = None
    distance: tuple = (0.55, 1.1)
    elevation_deg: tuple = (25.0, 75.0)
    roll_deg: float = 10.0
    light_elevation_deg: tuple = (25.0, 85.0)
    light_colour: float = 0.15
    ambient: tuple = (0.35, 0.7)
    diffuse: tuple = (0.3, 0.7)
    specular: tuple = (0.0, 0.3)
    shadow_prob: float = 0.8
    table_size: tuple = (0.35, 1.2)
    floor: float = 0.0
    distractors: tuple = (0, 4)
    exposure: tuple = (0.75, 1.25)
    colour_shift: float = 0.1
    gamma: tuple = (0.85, 1.15)
    blur_sigma: tuple = (0.0, 1.2)
    noise_std: tuple = (1.0, 6.0)
    depth_noise: float = 0.002
    upright_prob: float = 0.4
    max_settle_steps: int = 720
    views: int = 1

    def __post_init__(self):
        if self.height < 16 or self.width < 16:
            raise ValueError(f'image size must be at least 16x16, got {self.height}x{self.width}')
        if self.views < 1:
            raise ValueError(f'views must be >= 1, got {self.views}')
        if not 1 <= self.objects[0] <= self.objects[1]:
            raise ValueError(f'objects must be (min, max) with 1 <= min <= max, '
                             f'got {self.objects}')
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ('objects', 'object_ids') and isinstance(value, tuple) and (
                    len(value) != 2 or value[0] > value[1]):
                raise ValueError(f'{f.name} must be a (min, max) pair, got {value}')

    @classmethod
    def from_dict(cls, models: str, size: tuple | None = None, **kw) -> 'YcbSceneConfig':
        """
        Build a config from plain values (lists become tuples).

        Arguments:
        ---------
          models (str): the ycb_models folder.
          size (tuple | None): ``(height, width)``.
          kw: further fields; unknown names raise ``ValueError``.

        Returns
        -------
          YcbSceneConfig: the checked config.

        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kw) - known)
        if unknown:
            raise ValueError(f'unknown scene field(s) {unknown}; known: {sorted(known)}')
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
        if size is not None:
            kw['height'], kw['width'] = int(size[0]), int(size[1])
        return cls(models=os.fspath(models), **kw)


@dataclass
class YcbFrame:
    """
    One rendered frame.

    Arguments:
    ---------
      rgb (np.ndarray): HxWx3 uint8. depth (np.ndarray): HxW float32 metres, 0 = none.
      label (np.ndarray): HxW uint8 class id (1..21), 0 = background.
      instance (np.ndarray): HxW uint16, ``i + 1`` = ``poses[i]``, 0 = none.
      K (np.ndarray): 3x3 intrinsics. poses (list): :class:`ObjectPose` per instance.
      seed (int): the seed that drew it.

    """

    rgb: np.ndarray
    depth: np.ndarray
    label: np.ndarray
    instance: np.ndarray
    K: np.ndarray
    poses: list = field(default_factory=list)
    seed: int = 0


class YcbSceneRenderer:
    """
    Renders random YCB tabletop scenes (:meth:`render`) or objects at given poses.

    The PyBullet client (``p.DIRECT``, one per process) is created on first use, so the
    renderer can be built in a parent process and used in DataLoader workers.

    Arguments:
    ---------
      config (YcbSceneConfig): what the scenes may look like.

    """

    def __init__(self, config: YcbSceneConfig):
        self.config = config
        self.models = YcbModels(config.models)
        pool = sorted(self.models.names) if config.object_ids is None else \
            [int(i) for i in config.object_ids]
        unknown = sorted(set(pool) - set(self.models.names))
        if unknown or not pool:
            raise DatasetError(f'object_ids {unknown or pool} are not among the class ids '
                               f'{sorted(self.models.names)} of {self.models.root}')
        self.pool = pool
        self.K = scaled_intrinsics(config.height, config.width)
        self._pb, self._cid, self._pid = None, None, None
        self._table, self._bodies, self._rays = -2, [], None
        self._settled = None  # (seed, chosen objects, bodies) of the scene in the world now
        self.last_timings = {}  # wall seconds of the last render: physics_s, render_s, post_s

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_pb'], state['_cid'], state['_pid'] = None, None, None
        state['_settled'] = None
        return state

    def _client(self):
        """``(pybullet module, client id)`` of this process, connected on first use."""
        if self._pid != os.getpid():
            try:
                import pybullet
            except ImportError:
                raise DatasetError('the YCB scene renderer needs pybullet: pip install '
                                   'pybullet (requirements.txt pins it)') from None
            self._pb, self._pid = pybullet, os.getpid()
            self._cid = pybullet.connect(pybullet.DIRECT)
        return self._pb, self._cid

    def close(self):
        """Disconnect this process's PyBullet client (it reconnects on the next render)."""
        if self._pb is not None and self._pid == os.getpid():
            self._pb.disconnect(physicsClientId=self._cid)
        self._pb, self._cid, self._pid, self._settled = None, None, None, None

    def preload(self) -> float:
        """
        Load every object's meshes once (PyBullet caches them per process); returns seconds.

        The first scene with an object pays for parsing its mesh and texture (about 0.1-0.2 s
        per object); call this in a benchmark to measure the steady state.

        Returns
        -------
          float: wall seconds it took.

        """
        start = time.perf_counter()
        pb, cid = self._client()
        self._reset_world(table=False)
        for obj_id in self.pool:
            pb.loadURDF(self.models.urdf[obj_id], [0, 0, 0], physicsClientId=cid)
        self._reset_world(table=False)
        return time.perf_counter() - start

    def render(self, seed: int, view: int = 0) -> YcbFrame:
        """
        Render the scene of ``seed``: drop, settle, light, shoot, add camera effects.

        Arguments:
        ---------
          seed (int): everything about the frame follows from it (same seed, same frame).
          view (int): which of the config's ``views`` of the scene (``0 <= view < views``);
            the settled scene is kept, so the views of one seed cost one physics run when
            they are rendered one after the other.

        Returns
        -------
          YcbFrame: the frame.

        """
        pb, _ = self._client()
        try:
            return self._render_scene(int(seed), int(view))
        except pb.error as e:
            raise DatasetError(f'ycb_scenes: PyBullet failed on the scene of seed {seed}: '
                               f'{e}') from None

    def _render_scene(self, seed: int, view: int) -> YcbFrame:
        cfg, rng = self.config, np.random.default_rng(seed)
        if not 0 <= view < cfg.views:
            raise DatasetError(f'ycb_scenes: view {view} out of range for views={cfg.views}')
        start = time.perf_counter()
        pb, cid = self._client()
        if cfg.views > 1 and self._settled is not None and self._settled[0] == seed:
            chosen, bodies = self._settled[1], self._settled[2]
        else:
            most = min(cfg.objects[1], len(self.pool))  # object_ids may hold fewer than objects
            count = int(rng.integers(min(cfg.objects[0], most), most + 1))
            chosen = [int(c) for c in rng.choice(self.pool, count, replace=False)]
            bodies = self._drop(rng, chosen)
            self._settled = (seed, chosen, bodies)
        if cfg.views > 1:  # the view's own stream, whether the scene was settled just now
            rng = np.random.default_rng([seed, view])
        links = [matrix_from_pose(*pb.getBasePositionAndOrientation(b, physicsClientId=cid))
                 for b in bodies]
        centre = np.median([m[:3, 3] for m in links], axis=0)  # not pulled by a rolled can
        cam_from_world = self._sample_camera(rng, centre)
        physics = time.perf_counter()
        light = self._sample_light(rng)
        # The table is drawn below in 2D (texture, light, shadows): TinyRenderer would spend
        # half its time on the table's pixels.
        pb.resetBasePositionAndOrientation(self._table, [0, 0, -100], [0, 0, 0, 1],
                                           physicsClientId=cid)
        rgb, depth, seg = self._draw(self.K, (cfg.height, cfg.width), cam_from_world, light)
        pb.resetBasePositionAndOrientation(self._table, [0, 0, -0.02], [0, 0, 0, 1],
                                           physicsClientId=cid)
        drawn = time.perf_counter()
        label, instance = _label_images(seg, bodies, chosen)
        rgb, depth = self._paint_surroundings(rng, rgb, depth, seg >= 0, cam_from_world, light)
        rgb = apply_camera_model(rgb, rng, cfg)
        if cfg.depth_noise > 0:
            noise = rng.standard_normal(depth.shape, dtype=np.float32)
            noisy = np.maximum(depth + noise * np.float32(cfg.depth_noise) * depth ** 2, 0)
            depth = np.where(depth > 0, noisy, np.float32(0))
        poses = [self._pose(c, cam_from_world @ m) for c, m in zip(chosen, links)]
        self.last_timings = {'physics_s': physics - start, 'render_s': drawn - physics,
                             'post_s': time.perf_counter() - drawn}
        return YcbFrame(rgb=rgb, depth=depth.astype(np.float32), label=label,
                        instance=instance, K=self.K.copy(), poses=poses, seed=int(seed))

    def _pose(self, obj_id: int, cam_from_link: np.ndarray) -> ObjectPose:
        cam_from_bop = cam_from_link @ np.linalg.inv(self.models.link_to_bop[obj_id])
        return ObjectPose(obj_id, cam_from_bop[:3, :3].copy(), cam_from_bop[:3, 3] * 1000.0)

    def _reset_world(self, table: bool) -> None:
        pb, cid = self._client()
        pb.resetSimulation(physicsClientId=cid)
        # contactERP 0.8 (default 0.2) pushes resting objects apart within a few steps:
        # interpenetration at rest <= 0.5 mm instead of up to 5 mm (seeds 0-29).
        pb.setPhysicsEngineParameter(deterministicOverlappingPairs=1, contactERP=0.8,
                                     physicsClientId=cid)
        pb.setGravity(0, 0, -9.81, physicsClientId=cid)
        self._table, self._bodies, self._settled = -2, [], None
        if table:
            half = [2.0, 2.0, 0.02]
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=cid)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=[1, 1, 1, 1],
                                       physicsClientId=cid)
            self._table = pb.createMultiBody(0, col, vis, [0, 0, -0.02], physicsClientId=cid)

    def _drop(self, rng: np.random.Generator, chosen: list) -> list:
        """
        Place ``chosen`` objects and let them rest.

        Each object stands upright (with ``upright_prob``, random yaw) or has a random
        orientation; it is put just above the table where its bounding box overlaps no object
        placed before, else above all of them (it falls onto them: stacks, leaning objects).
        """
        pb, cid = self._client()
        self._reset_world(table=True)
        bodies, boxes, top = [], [], 0.01
        for obj_id in chosen:
            quat = rng.normal(size=4)
            if rng.random() < self.config.upright_prob:
                yaw = rng.uniform(0, 2 * np.pi)
                quat = np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])
            quat /= np.linalg.norm(quat)
            xy = np.clip(rng.normal(0, 0.07, 2), -0.15, 0.15)
            body = pb.loadURDF(self.models.urdf[obj_id], [xy[0], xy[1], 5.0], quat.tolist(),
                               physicsClientId=cid)
            low, high = pb.getAABB(body, -1, physicsClientId=cid)
            free = not any(low[0] < b[1][0] and b[0][0] < high[0] and low[1] < b[1][1]
                           and b[0][1] < high[1] for b in boxes)
            bottom = 0.002 if free else top
            pb.resetBasePositionAndOrientation(body, [xy[0], xy[1], 5.0 - low[2] + bottom],
                                               quat, physicsClientId=cid)
            boxes.append((low, high))
            top = max(top, bottom + high[2] - low[2] + 0.005)
            pb.changeDynamics(body, -1, lateralFriction=0.7, rollingFriction=0.01,
                              spinningFriction=0.005, linearDamping=0.1, angularDamping=0.3,
                              physicsClientId=cid)
            bodies.append(body)
        self._bodies = bodies
        self._add_distractors(rng)
        self.settle(bodies)
        return bodies

    def _add_distractors(self, rng: np.random.Generator) -> None:
        """Put static clutter that is no YCB object (label 0) around the objects."""
        pb, cid = self._client()
        low, high = self.config.distractors
        for _ in range(int(rng.integers(low, high + 1))):
            kind, size = int(rng.integers(3)), rng.uniform(0.015, 0.1, 3)
            colour = rng.uniform(0.05, 0.95, 3).tolist() + [1.0]
            angle, radius, yaw = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.6), \
                rng.uniform(0, 2 * np.pi)
            if kind == 0:
                col = {'shapeType': pb.GEOM_BOX, 'halfExtents': size.tolist()}
                vis, z = dict(col), size[2]
            elif kind == 1:
                col = {'shapeType': pb.GEOM_CYLINDER, 'radius': size[0], 'height': 2 * size[2]}
                vis = {'shapeType': pb.GEOM_CYLINDER, 'radius': size[0], 'length': 2 * size[2]}
                z = size[2]
            else:
                col = {'shapeType': pb.GEOM_SPHERE, 'radius': size[0]}
                vis, z = dict(col), size[0]
            pb.createMultiBody(
                0, pb.createCollisionShape(physicsClientId=cid, **col),
                pb.createVisualShape(rgbaColor=colour, physicsClientId=cid, **vis),
                [radius * np.cos(angle), radius * np.sin(angle), z],
                [0, 0, np.sin(yaw / 2), np.cos(yaw / 2)], physicsClientId=cid)

    def settle(self, bodies: list) -> int:
        """
        Step the physics until every body rests (or ``max_settle_steps``); returns the steps.

        Arguments:
        ---------
          bodies (list): PyBullet body ids to watch.

        Returns
        -------
          int: physics steps taken.

        """
        pb, cid = self._client()
        steps = 0
        while steps < self.config.max_settle_steps:
            for _ in range(24):
                pb.stepSimulation(physicsClientId=cid)
            steps += 24
            speeds = [pb.getBaseVelocity(b, physicsClientId=cid) for b in bodies]
            if steps >= 120 and max(max(np.abs(lin).max(), 0.2 * np.abs(ang).max())
                                    for lin, ang in speeds) < 0.01:
                break
        return steps

    def physics_report(self) -> dict:
        """
        Report the state of the last scene's objects (do they rest where they should?).

        Returns
        -------
          dict: ``max_speed`` (m/s, linear), ``min_contact_distance`` (m, negative =
          interpenetration, the table included), ``lowest_z`` (m, the lowest object centre;
          the table top is 0),
          ``object_contacts`` (object pairs touching: stacked objects), ``max_xy`` (m).

        """
        pb, cid = self._client()
        bodies = [b for b in self._bodies if b != self._table]
        speeds = [np.abs(pb.getBaseVelocity(b, physicsClientId=cid)[0]).max() for b in bodies]
        pb.performCollisionDetection(physicsClientId=cid)
        contacts = pb.getContactPoints(physicsClientId=cid)
        pairs = {tuple(sorted((c[1], c[2]))) for c in contacts
                 if self._table not in (c[1], c[2])}
        centres = [pb.getBasePositionAndOrientation(b, physicsClientId=cid)[0] for b in bodies]
        return {'max_speed': float(max(speeds, default=0.0)),
                'min_contact_distance': float(min((c[8] for c in contacts), default=0.0)),
                'lowest_z': float(min((c[2] for c in centres), default=0.0)),
                'object_contacts': len(pairs),
                'max_xy': float(max((max(abs(c[0]), abs(c[1])) for c in centres), default=0.0))}

    def _sample_camera(self, rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
        cfg = self.config
        target = np.array([centre[0], centre[1], 0.0]) + rng.normal(0, [0.03, 0.03, 0.01])
        target[2] = max(target[2] + 0.04, 0.0)
        dist = rng.uniform(*cfg.distance)
        elev, azim = np.radians(rng.uniform(*cfg.elevation_deg)), rng.uniform(0, 2 * np.pi)
        eye = target + dist * np.array([np.cos(elev) * np.cos(azim),
                                        np.cos(elev) * np.sin(azim), np.sin(elev)])
        return look_at(eye, target, np.radians(rng.uniform(-cfg.roll_deg, cfg.roll_deg)))

    def _sample_light(self, rng: np.random.Generator) -> dict:
        cfg = self.config
        elev, azim = np.radians(rng.uniform(*cfg.light_elevation_deg)), rng.uniform(0, 2 * np.pi)
        direction = [np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)]
        colour = 1.0 - rng.uniform(0, cfg.light_colour, 3)
        return {'lightDirection': direction, 'lightColor': (colour / colour.max()).tolist(),
                'lightDistance': 2.0, 'shadow': int(rng.random() < cfg.shadow_prob),
                'lightAmbientCoeff': rng.uniform(*cfg.ambient),
                'lightDiffuseCoeff': rng.uniform(*cfg.diffuse),
                'lightSpecularCoeff': rng.uniform(*cfg.specular)}

    def _draw(self, k: np.ndarray, size: tuple, cam_from_world: np.ndarray,
              light: dict) -> tuple:
        """Draw with TinyRenderer: ``(rgb float32 0..1, depth m, seg int64 body id / -1)``."""
        pb, cid = self._client()
        h, w = size
        view, proj = gl_matrices(k, h, w, cam_from_world)
        _, _, rgba, zbuf, seg = pb.getCameraImage(w, h, view, proj,
                                                  renderer=pb.ER_TINY_RENDERER,
                                                  physicsClientId=cid, **light)
        rgb = np.asarray(rgba, np.uint8).reshape(h, w, 4)[..., :3].astype(np.float32) / 255
        zbuf = np.asarray(zbuf, np.float32).reshape(h, w)
        depth = FAR * NEAR / (FAR - (FAR - NEAR) * zbuf)
        return rgb, depth, np.asarray(seg, np.int64).reshape(h, w)

    def _paint_surroundings(self, rng: np.random.Generator, rgb: np.ndarray, depth: np.ndarray,
                            objects: np.ndarray, cam_from_world: np.ndarray,
                            light: dict) -> tuple:
        """Draw the table and the background around the objects (:func:`paint_table`)."""
        h, w = rgb.shape[:2]
        if self._rays is None or self._rays.shape[1] != h * w:
            v, u = np.mgrid[0:h, 0:w].astype(np.float32)
            pix = np.stack([u.ravel(), v.ravel(), np.ones(h * w, np.float32)])
            self._rays = np.linalg.inv(self.K).astype(np.float32) @ pix  # z = 1: t = depth
        return paint_table(rng, rgb, depth, objects, Camera(self.K, self._rays, cam_from_world),
                           light, self.config.table_size, self.config.floor)

    def render_at_poses(self, poses: list, k: np.ndarray, height: int, width: int) -> YcbFrame:
        """
        Render objects at known model-to-camera poses (no table, neutral light, no noise).

        Arguments:
        ---------
          poses (list): :class:`ObjectPose` (t in mm, BOP model frame).
          k (np.ndarray): 3x3 intrinsics.
          height (int): image height.
          width (int): image width.

        Returns
        -------
          YcbFrame: rgb, depth, label and instance (``i + 1`` = ``poses[i]``).

        """
        pb, cid = self._client()
        self._reset_world(table=False)
        bodies = []
        for pose in poses:
            cam_from_bop = np.eye(4)
            cam_from_bop[:3, :3], cam_from_bop[:3, 3] = pose.R, np.asarray(pose.t) / 1000.0
            link = cam_from_bop @ self.models.link_to_bop[pose.obj_id]
            bodies.append(pb.loadURDF(self.models.urdf[pose.obj_id], link[:3, 3].tolist(),
                                      quat_from_matrix(link[:3, :3]), useFixedBase=True,
                                      physicsClientId=cid))
        light = {'lightDirection': [0, -1, -1], 'shadow': 0, 'lightAmbientCoeff': 0.6,
                 'lightDiffuseCoeff': 0.4, 'lightSpecularCoeff': 0.0}
        rgb, depth, seg = self._draw(np.asarray(k, np.float64), (int(height), int(width)),
                                     np.eye(4), light)
        self._bodies = bodies
        label, instance = _label_images(seg, bodies, [p.obj_id for p in poses])
        return YcbFrame(rgb=(rgb * 255).round().astype(np.uint8),
                        depth=np.where(seg >= 0, depth, 0).astype(np.float32), label=label,
                        instance=instance, K=np.asarray(k, np.float64), poses=list(poses))


def _label_images(seg: np.ndarray, bodies: list, class_ids: list) -> tuple:
    """Body-id image -> (class label uint8, instance uint16 ``i + 1``)."""
    top = max(max(bodies, default=0), int(seg.max()), 0) + 2
    to_class = np.zeros(top, np.uint8)
    to_instance = np.zeros(top, np.uint16)
    for i, (body, cid) in enumerate(zip(bodies, class_ids)):
        to_class[body + 1], to_instance[body + 1] = cid, i + 1
    return to_class[seg + 1], to_instance[seg + 1]


def frame_seed(seed: int, index: int) -> int:
    """
    Return the render seed of frame ``index`` of a run with ``seed`` (distinct per index).

    Arguments:
    ---------
      seed (int): the run's seed.
      index (int): the global frame index (the dataset's ``epoch * length + i``).

    Returns
    -------
      int: a 63-bit seed for :meth:`YcbSceneRenderer.render`.

    """
    hi, lo = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return (int(hi) << 31) ^ int(lo)
