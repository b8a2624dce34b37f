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
Geometry of the YCB objects and the Xtion camera: the scene generator's and the BOP tools'.

The object set (``YcbModels``: class ids, URDFs, and each URDF link's transform into the frame of
the BOP ycbv models), object poses (BOP convention: model -> camera, t in mm), the Xtion
intrinsics of YCB-Video scaled to any image size, and OpenCV -> OpenGL camera matrices for
PyBullet. The meshes are the YCB Object and Model Set (Calli et al., 2015; CC BY 4.0).
"""
from dataclasses import dataclass
import json
import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from sam2real_ros.data.base import DatasetError

XTION_K = np.array([[1066.8, 0.0, 313.0], [0.0, 1067.5, 241.3], [0.0, 0.0, 1.0]])
"""Asus Xtion intrinsics of YCB-Video at 640x480 (pixel centres at integer coordinates)."""

NEAR, FAR = 0.05, 6.0
"""Clip planes of the renderer (m)."""
_GL_FROM_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def scaled_intrinsics(height: int, width: int, k: np.ndarray = XTION_K) -> np.ndarray:
    """
    Intrinsics ``k`` (given at 640x480) for an image of ``height`` x ``width``.

    Arguments:
    ---------
      height (int): target image height.
      width (int): target image width.
      k (np.ndarray): 3x3 intrinsics at 640x480.

    Returns
    -------
      np.ndarray: 3x3 intrinsics for the new size (pixel centres kept aligned).

    """
    sx, sy = width / 640.0, height / 480.0
    out = np.array(k, np.float64).copy()
    out[0, 0], out[1, 1] = k[0, 0] * sx, k[1, 1] * sy
    out[0, 2], out[1, 2] = (k[0, 2] + 0.5) * sx - 0.5, (k[1, 2] + 0.5) * sy - 0.5
    return out


@dataclass
class ObjectPose:
    """One object of a frame: BOP ``obj_id`` (= class id), model-to-camera R and t (mm)."""

    obj_id: int
    R: np.ndarray
    t: np.ndarray


class YcbModels:
    """
    The object set: class ids, URDFs and the transform from each URDF link to the BOP frame.

    Arguments:
    ---------
      root (str): the ycb_models folder (``objects.json`` + ``<NNN_name>/model.urdf``).

    """

    def __init__(self, root: str):
        self.root = os.fspath(root)
        path = os.path.join(self.root, 'objects.json')
        try:
            with open(path) as f:
                meta = json.load(f)
            ids = meta['class_ids']
            to_bop = meta['google16k_to_bop_model_frame']
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DatasetError(f'cannot read the YCB object list {path}: {e}') from None
        self.names = {int(cid): name for name, cid in ids.items()}
        self.class_names = ['background'] + [self.names[i] for i in sorted(self.names)]
        self.urdf, self.link_to_bop, self.mass = {}, {}, {}
        for cid, name in self.names.items():
            urdf = os.path.join(self.root, name, 'model.urdf')
            offset, self.mass[cid] = read_urdf(urdf)
            mesh_from_link = np.eye(4)
            mesh_from_link[:3, 3] = -offset
            bop = np.array(to_bop[name], np.float64)
            u, _, vt = np.linalg.svd(bop[:3, :3])  # drop the 0.05 % scale of the fit
            bop[:3, :3] = u @ vt
            self.urdf[cid] = urdf
            self.link_to_bop[cid] = bop @ mesh_from_link


def read_urdf(path: str) -> tuple:
    """Read the visual origin (mesh offset in the link frame) and the mass of a model.urdf."""
    try:
        root = ElementTree.parse(path).getroot()
        origin = root.find('./link/visual/origin')
        xyz = [float(v) for v in origin.get('xyz', '0 0 0').split()] if origin is not None \
            else [0.0, 0.0, 0.0]
        mass = float(root.find('./link/inertial/mass').get('value'))
        meshes = [m.get('filename') for m in root.iter('mesh')]
    except (OSError, ElementTree.ParseError, AttributeError, TypeError, ValueError) as e:
        raise DatasetError(f'cannot read the object model {path}: {e}') from None
    for mesh in meshes:
        full = os.path.join(os.path.dirname(path), mesh or '')
        if not os.path.isfile(full):
            raise DatasetError(f'{path}: mesh file {mesh!r} not found ({full})')
    return np.array(xyz, np.float64), mass


def gl_matrices(k: np.ndarray, height: int, width: int, cam_from_world: np.ndarray) -> tuple:
    """
    Return the PyBullet (OpenGL, column-major) view and projection of an OpenCV camera.

    Arguments:
    ---------
      k (np.ndarray): 3x3 intrinsics.
      height (int): image height.
      width (int): image width.
      cam_from_world (np.ndarray): 4x4 rigid transform (OpenCV axes: x right, y down, z ahead).

    Returns
    -------
      tuple: ``(view, projection)``, each a list of 16 floats.

    """
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5
    proj = np.array([
        [2 * fx / width, 0, 1 - 2 * cx / width, 0],
        [0, 2 * fy / height, 2 * cy / height - 1, 0],
        [0, 0, -(FAR + NEAR) / (FAR - NEAR), -2 * FAR * NEAR / (FAR - NEAR)],
        [0, 0, -1, 0]])
    view = _GL_FROM_CV @ cam_from_world
    return view.T.reshape(-1).tolist(), proj.T.reshape(-1).tolist()


def quat_from_matrix(r: np.ndarray) -> list:
    """Rotation matrix -> PyBullet quaternion ``[x, y, z, w]``."""
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(r).as_quat().tolist()


def matrix_from_pose(pos, quat) -> np.ndarray:
    """Return the 4x4 matrix of a PyBullet position and ``[x, y, z, w]`` quaternion."""
    from scipy.spatial.transform import Rotation
    out = np.eye(4)
    out[:3, :3] = Rotation.from_quat(quat).as_matrix()
    out[:3, 3] = pos
    return out


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """
    Return the 4x4 ``cam_from_world`` of an OpenCV camera at ``eye`` looking at ``target``.

    Arguments:
    ---------
      eye (np.ndarray): camera position (m, world frame, z up).
      target (np.ndarray): the point it looks at (m).
      roll (float): rotation about the optical axis (radians).

    Returns
    -------
      np.ndarray: 4x4 rigid transform, world -> camera.

    """
    z = np.asarray(target, np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0.0, 0.0])
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    world_from_cam = np.eye(4)
    world_from_cam[:3, :3] = np.stack([x, y, z], axis=1)
    world_from_cam[:3, 3] = eye
    return np.linalg.inv(world_from_cam)
