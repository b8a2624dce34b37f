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
Labeled frames from BOP-format folders and from the Stillleben renderer.

BOP layout (e.g. BlenderProc4BOP ``train_pbr``, or a real ``test`` split for evaluation)::

  <root>/<split>/<scene>/rgb/<im_id:06d>.jpg|png
  <root>/<split>/<scene>/scene_gt.json            {im_id: [{obj_id, ...}, ...]}
  <root>/<split>/<scene>/mask_visib/<im_id:06d>_<gt_idx:06d>.png

Labels are painted from the visible masks: pixel = class of the object (0 = background).
"""
import glob
import os

import numpy as np

from sam2real_ros.common.io_utils import read_image_unchanged, read_rgb, read_yaml
from sam2real_ros.common.labels import MAX_CLASSES
from sam2real_ros.data.base import BaseDataset, DatasetError

BOP_FIELDS = ('root', 'split', 'scenes', 'obj_to_class', 'classes', 'unknown_obj')
STILLLEBEN_FIELDS = ('meshes', 'class_names', 'objects_per_scene', 'size', 'length', 'device')


def read_classes(path):
    """One class name per line (line i = obj_id i + 1 = class i + 1)."""
    try:
        with open(path) as f:
            names = [ln.strip() for ln in f if ln.strip()]
    except OSError as e:
        raise DatasetError(f'cannot read classes file {path}: {e.strerror}') from None
    if not names:
        raise DatasetError(f'classes file {path} is empty')
    return names


def read_obj_to_class(spec):
    """Return the ``obj_id -> class`` mapping ``spec`` (a dict, or a YAML/JSON file)."""
    if isinstance(spec, dict):
        return spec
    data = read_yaml(spec, 'obj_to_class file', DatasetError)
    if not isinstance(data, dict):
        raise DatasetError(f'obj_to_class file {spec} must hold a mapping obj_id -> class')
    return data


class BopDataset(BaseDataset):
    """
    Frames of a BOP split with semantic labels built from ``mask_visib``.

    Arguments:
    ---------
      root (str): dataset folder (holding ``<split>/`` and optionally ``classes.txt``).
      split (str): split folder, e.g. ``train_pbr``, ``train_real``, ``test``.
      scenes (list | None): scene folder names to use (default: all).
      classes (str | list | None): class names file (one per line, line i = obj_id i + 1) or a
        list of names without background; default ``<root>/classes.txt`` if present, else
        ``obj_<id>`` names for the obj_ids found.
      obj_to_class (dict | str | None): obj_id -> class index (int), class name (str) or
        None (drop: painted as background); a dict or a YAML/JSON file. Default: class =
        obj_id.
      unknown_obj (str): ``error`` (default) or ``background`` for obj_ids the mapping lacks.

    """

    def __init__(self, root, split='train_pbr', scenes=None, classes=None, obj_to_class=None,
                 unknown_obj='error', **kw):
        super().__init__(**kw)
        self.root = os.fspath(root)
        split_dir = os.path.join(self.root, split)
        if not os.path.isdir(split_dir):
            raise DatasetError(f'BOP split folder not found: {split_dir}')
        if unknown_obj not in ('error', 'background'):
            raise DatasetError(f'unknown_obj must be error or background, got {unknown_obj!r}')
        scene_dirs = sorted(d for d in glob.glob(os.path.join(split_dir, '*'))
                            if os.path.isdir(d))
        if scenes is not None:
            wanted = {str(s) for s in scenes}
            wanted |= {f'{int(s):06d}' for s in wanted if s.isdigit()}
            scene_dirs = [d for d in scene_dirs if os.path.basename(d) in wanted]
        self.frames = []  # (scene_dir, im_id, [obj_id per gt index])
        for scene in scene_dirs:
            gt_path = os.path.join(scene, 'scene_gt.json')
            try:
                gt = load_scene_gt(gt_path)
            except DatasetError as e:
                if self.on_error == 'raise':
                    raise
                self.skip('scene', scene, str(e))
                continue
            for im_id in sorted(gt, key=int):
                self.frames.append((scene, int(im_id), [int(o['obj_id']) for o in gt[im_id]]))
        if not self.frames:
            raise DatasetError(f'no BOP frames found in {split_dir} (scenes: {scenes})')
        obj_ids = sorted({o for _, _, objs in self.frames for o in objs})
        if classes is None and os.path.isfile(os.path.join(self.root, 'classes.txt')):
            classes = os.path.join(self.root, 'classes.txt')
        if isinstance(classes, str):
            classes = read_classes(classes)
        if classes is None:
            classes = [f'obj_{i:06d}' for i in range(1, max(obj_ids) + 1)]
        self.class_names = ['background'] + list(classes)
        if len(self.class_names) > MAX_CLASSES:
            raise DatasetError(f'{len(self.class_names)} classes do not fit uint8 labels (at most '
                               f'{MAX_CLASSES})')
        self.lut = self._build_lut(obj_to_class, unknown_obj, obj_ids)

    def _build_lut(self, spec, unknown_obj, obj_ids):
        """obj_id -> class index (-1 = unknown obj_id); 0 = background/dropped."""
        top = max(max(obj_ids), 1) + 1
        if spec is None:
            lut = np.array([i if i < len(self.class_names) else -1 for i in range(top)])
        else:
            mapping = read_obj_to_class(spec)
            lut = np.full(top, -1, np.int64)
            for key, val in mapping.items():
                try:
                    obj = int(key)
                except (TypeError, ValueError):
                    raise DatasetError(f'obj_to_class: obj_id must be an integer, got {key!r}')
                if obj >= len(lut):
                    lut = np.concatenate([lut, np.full(obj + 1 - len(lut), -1, np.int64)])
                lut[obj] = self._class_index(val, obj)
        if unknown_obj == 'background':
            lut[lut < 0] = 0
        return lut

    def _class_index(self, val, obj):
        if val is None:
            return 0
        if isinstance(val, str):
            if val not in self.class_names:
                raise DatasetError(f'obj_to_class: obj_id {obj} maps to unknown class {val!r}; '
                                   f'classes: {self.class_names}')
            return self.class_names.index(val)
        if not 0 <= int(val) < len(self.class_names):
            raise DatasetError(f'obj_to_class: obj_id {obj} maps to class {val}, outside '
                               f'0..{len(self.class_names) - 1}')
        return int(val)

    def __len__(self):
        return len(self.frames)

    def _key(self, index):
        scene, im_id, _ = self.frames[index]
        return os.path.relpath(self._rgb_path(scene, im_id), self.root).replace(os.sep, '/')

    @staticmethod
    def _rgb_path(scene, im_id):
        for ext in ('.png', '.jpg', '.jpeg', '.tif'):
            path = os.path.join(scene, 'rgb', f'{im_id:06d}{ext}')
            if os.path.isfile(path):
                return path
        return os.path.join(scene, 'rgb', f'{im_id:06d}.png')

    def rgb_path(self, index):
        """Return the path of frame ``index``'s image (``<scene>/rgb/<im_id>.<ext>``)."""
        scene, im_id, _ = self.frames[index]
        return self._rgb_path(scene, im_id)

    def visible_masks(self, index, shape=None):
        """
        Read frame ``index``'s visible-object masks (``mask_visib``), in ``scene_gt`` order.

        Arguments:
        ---------
          index (int): the frame.
          shape (tuple | None): the image's ``(H, W)``; a mask of another size is an error.

        Returns
        -------
          list[tuple[int, np.ndarray]]: ``(obj_id, HxW bool mask)`` per annotated object.

        """
        scene, im_id, objs = self.frames[index]
        masks = []
        for gt_idx, obj in enumerate(objs):
            path = os.path.join(scene, 'mask_visib', f'{im_id:06d}_{gt_idx:06d}.png')
            mask = read_image_unchanged(path)
            if shape is not None and mask.shape[:2] != tuple(shape[:2]):
                raise DatasetError(f'{path}: mask size {mask.shape[1]}x{mask.shape[0]} differs '
                                   f'from the image size {shape[1]}x{shape[0]}')
            masks.append((obj, (mask[..., 0] if mask.ndim == 3 else mask) > 0))
        return masks

    def _load(self, index):
        scene, im_id, _ = self.frames[index]
        rgb = read_rgb(self._rgb_path(scene, im_id))
        labels = np.zeros(rgb.shape[:2], np.uint8)
        for obj, mask in self.visible_masks(index, rgb.shape):
            cls = self.lut[obj] if obj < len(self.lut) else -1
            if cls < 0:
                raise DatasetError(f'{os.path.join(scene, "scene_gt.json")}: image {im_id}: '
                                   f'unknown obj_id {obj} (no class for it; add it to '
                                   f'obj_to_class or set unknown_obj: background)')
            if cls:
                labels[mask] = cls
        return {'rgb': rgb, 'labels': labels, 'key': self._key(index)}


def load_scene_gt(path):
    """
    Read a BOP ``scene_gt.json``: ``{im_id: [{obj_id, cam_R_m2c, cam_t_m2c}, ...]}``.

    Arguments:
    ---------
      path (str): the file.

    Returns
    -------
      dict: as in the file (keys are strings); raises :class:`DatasetError` naming the file.

    """
    if not os.path.isfile(path):
        raise DatasetError(f'missing BOP annotation file {path}')
    gt = read_yaml(path, 'BOP annotation file', DatasetError)
    if not isinstance(gt, dict) or not all(
            isinstance(v, list) and all(isinstance(o, dict) and 'obj_id' in o for o in v)
            for v in gt.values()):
        raise DatasetError(f'{path}: expected {{im_id: [{{"obj_id": ...}}, ...]}}')
    return gt


def load_scene_camera(path):
    """
    Read a BOP ``scene_camera.json``: ``{im_id: {cam_K: [9 floats], depth_scale, ...}}``.

    Arguments:
    ---------
      path (str): the file.

    Returns
    -------
      dict: as in the file; raises :class:`DatasetError` naming the file when it is missing,
      unreadable or an entry lacks a 9-number ``cam_K``.

    """
    cams = read_yaml(path, 'BOP camera file', DatasetError)
    if not isinstance(cams, dict) or not all(
            isinstance(c, dict) and len(c.get('cam_K') or ()) == 9 for c in cams.values()):
        raise DatasetError(f'{path}: expected {{im_id: {{"cam_K": [9 numbers], ...}}}}')
    return cams


class StillLebenDataset(BaseDataset):
    """
    Tabletop scenes rendered on the fly by Stillleben (needs a CUDA GPU and stillleben).

    Arguments:
    ---------
      meshes (list): mesh file paths; mesh ``i`` is class ``i + 1``.
      class_names (list | None): names for the meshes (default: file stems).
      objects_per_scene (int): objects per scene. size (tuple): ``(height, width)``.
      length (int): frames per epoch (each one a new scene).

    """

    def __init__(self, meshes, class_names=None, objects_per_scene=6, size=(480, 640),
                 length=1500, device='cuda', **kw):
        super().__init__(**kw)
        try:
            import stillleben as sl
        except ImportError:
            raise DatasetError(
                'dataset type "stillleben" needs the stillleben renderer, which is not '
                'installed: build it from https://github.com/AIS-Bonn/stillleben (needs CUDA), '
                'or use type "bop" (pre-rendered frames) or "procedural"') from None
        self.sl = sl
        paths = [os.fspath(p) for p in meshes]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise DatasetError(f'stillleben: mesh file(s) not found: {missing}')
        names = class_names or [os.path.splitext(os.path.basename(p))[0] for p in paths]
        if len(names) != len(paths):
            raise DatasetError(f'stillleben: {len(names)} class_names for {len(paths)} meshes')
        self.class_names = ['background'] + list(names)
        sl.init_cuda()
        self.meshes = sl.Mesh.load_threaded(paths)
        for i, mesh in enumerate(self.meshes):
            mesh.class_index = i + 1
        self.size, self.length = tuple(size), int(length)
        self.objects_per_scene = int(objects_per_scene)
        self.renderer = sl.RenderPass()

    def __len__(self):
        return self.length

    def _load(self, index):
        sl = self.sl
        rng = np.random.default_rng([self.seed, 4, self.epoch, index])
        scene = sl.Scene((self.size[1], self.size[0]))
        for k in rng.integers(0, len(self.meshes), self.objects_per_scene):
            scene.add_object(sl.Object(self.meshes[int(k)]))
        scene.simulate_tabletop_scene()
        result = self.renderer.render(scene)
        rgb = result.rgb()[..., :3].cpu().numpy().astype(np.uint8)
        labels = result.class_index()[..., 0].cpu().numpy().astype(np.uint8)
        return {'rgb': rgb, 'labels': labels,
                'key': f'stillleben/{self.seed}-{self.epoch}-{index}'}
