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
``sam2real render-ycb``: YCB scenes cached in the BOP layout, and real frames re-rendered.

``write_bop_frames`` renders N scenes of :mod:`ycb_scenes` into ``<out>/<split>/<scene>/``
(``rgb/``, ``depth/`` (uint16 mm), ``mask_visib/``, ``scene_gt.json``, ``scene_camera.json``;
1000 frames per scene folder) plus ``<out>/classes.txt``, which the ``bop`` dataset type reads.
``render_at_gt_poses`` renders the objects of a BOP scene at its ground-truth poses and camera
and measures the IoU of the rendered visible masks against its ``mask_visib``.
``YcbScenesDataset`` (dataset type ``ycb_scenes``) renders the scenes on the fly instead.
"""
import os

import cv2
import numpy as np

from sam2real_ros.common.cli_help import HelpFormatter
from sam2real_ros.common.io_utils import (atomic_write_bytes, atomic_write_json, atomic_write_png,
                                          read_image_unchanged, read_rgb)
from sam2real_ros.data.base import BaseDataset, DatasetError
from sam2real_ros.data.bop import load_scene_camera, load_scene_gt
from sam2real_ros.data.ycb_models import ObjectPose
from sam2real_ros.data.ycb_scenes import frame_seed, YcbFrame, YcbSceneConfig, YcbSceneRenderer

SCENE_FRAMES = 1000
"""Frames per BOP scene folder."""

YCB_FIELDS = ('models', 'size', 'length', 'objects', 'scene')
"""The config keys of dataset type ``ycb_scenes``."""

_PALETTE = np.random.default_rng(21).integers(40, 256, (256, 3)).astype(np.uint8)
_PALETTE[0] = 0


def default_models() -> str:
    """Return ``$SAM2REAL_YCB_MODELS``, else ``../shared/data/ycb_models`` (from the cwd)."""
    return os.environ.get('SAM2REAL_YCB_MODELS') or os.path.join('..', 'shared', 'data',
                                                                 'ycb_models')


class BopSceneWriter:
    """
    Write frames into one BOP scene folder; the JSON files are rewritten atomically.

    Arguments:
    ---------
      scene_dir (str): ``<root>/<split>/<scene:06d>``, created if missing.
      flush_every (int): rewrite the JSON files after this many frames (and on :meth:`close`).

    """

    def __init__(self, scene_dir: str, flush_every: int = 50):
        self.dir = os.fspath(scene_dir)
        for sub in ('rgb', 'depth', 'mask_visib'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.gt, self.cams, self.flush_every, self.pending = {}, {}, int(flush_every), 0

    def add(self, im_id: int, frame: YcbFrame) -> None:
        """
        Write one frame: RGB, depth (mm), a visible mask per object, its poses and camera.

        Arguments:
        ---------
          im_id (int): image id in the scene.
          frame (YcbFrame): the frame (``instance`` ``i + 1`` = ``poses[i]``).

        Raises
        ------
          OSError: a file cannot be written.

        """
        atomic_write_png(os.path.join(self.dir, 'rgb', f'{im_id:06d}.png'), frame.rgb)
        depth_mm = np.clip(np.round(frame.depth * 1000.0), 0, 65535).astype(np.uint16)
        atomic_write_png(os.path.join(self.dir, 'depth', f'{im_id:06d}.png'), depth_mm)
        for k in range(len(frame.poses)):
            mask = ((frame.instance == k + 1) * 255).astype(np.uint8)
            atomic_write_png(os.path.join(self.dir, 'mask_visib', f'{im_id:06d}_{k:06d}.png'),
                             mask)
        self.gt[str(im_id)] = [{'cam_R_m2c': np.asarray(p.R, float).reshape(-1).tolist(),
                                'cam_t_m2c': np.asarray(p.t, float).tolist(),
                                'obj_id': int(p.obj_id)} for p in frame.poses]
        self.cams[str(im_id)] = {'cam_K': np.asarray(frame.K, float).reshape(-1).tolist(),
                                 'depth_scale': 1.0}
        self.pending += 1
        if self.pending >= self.flush_every:
            self.close()

    def close(self) -> None:
        """Rewrite ``scene_gt.json`` and ``scene_camera.json`` with every frame so far."""
        atomic_write_json(os.path.join(self.dir, 'scene_gt.json'), self.gt)
        atomic_write_json(os.path.join(self.dir, 'scene_camera.json'), self.cams)
        self.pending = 0


def write_classes(root: str, class_names: list) -> None:
    """
    Write ``<root>/classes.txt`` (line i = obj_id i + 1), which the BOP dataset reads.

    Arguments:
    ---------
      root (str): the dataset root.
      class_names (list): names without background.

    Raises
    ------
      OSError: the file cannot be written.

    """
    os.makedirs(root, exist_ok=True)
    atomic_write_bytes(os.path.join(root, 'classes.txt'),
                       ''.join(f'{n}\n' for n in class_names).encode())


def frame_views(seed: int, index: int, views: int) -> tuple:
    """
    Return ``(scene seed, view)`` of frame ``index`` of a cache drawn with ``seed``.

    With ``views`` 1 frame i is the scene of ``frame_seed(seed, i)``; with more, frames
    ``k * views .. k * views + views - 1`` are the views of the scene ``frame_seed(seed, k)``.

    Arguments:
    ---------
      seed (int): the run seed. index (int): the frame index. views (int): views per scene.

    Returns
    -------
      tuple: ``(seed for YcbSceneRenderer.render, view)``.

    """
    scene, view = divmod(int(index), int(views))
    return frame_seed(seed, scene), view


_WORKER = {}


def _render_frames(task):
    """Pool worker: render frames ``lo..hi-1`` (whole scenes) with the inherited renderer."""
    lo, hi, seed = task
    renderer = _WORKER['renderer']
    return [renderer.render(*frame_views(seed, i, renderer.config.views)) for i in range(lo, hi)]


def write_bop_frames(renderer: YcbSceneRenderer, out: str, frames: int, seed: int = 0,
                     split: str = 'train_synt', progress: bool = True,
                     keep: int = 0, jobs: int = 1) -> dict:
    """
    Render ``frames`` frames into a BOP dataset at ``out`` (frame i: :func:`frame_views`).

    Arguments:
    ---------
      renderer (YcbSceneRenderer): the generator (its config's ``views`` frames per scene).
      out (str): dataset root; frames go to ``<out>/<split>/<i // 1000:06d>/``.
      frames (int): how many frames.
      seed (int): run seed (frame i is the same in every run with this seed).
      split (str): split folder name.
      progress (bool): show a tqdm bar.
      keep (int): also return the first ``keep`` frames (for a preview).
      jobs (int): render in this many processes (forked, one PyBullet client each); the
        frames and files are the same for every ``jobs``.

    Returns
    -------
      dict: ``frames``, ``scenes`` (folders written), ``root``, ``split``, ``kept`` (frames).

    """
    import multiprocessing

    from tqdm import tqdm

    if frames < 1:
        raise DatasetError(f'--frames must be >= 1, got {frames}')
    if jobs < 1:
        raise DatasetError(f'--jobs must be >= 1, got {jobs}')
    out = os.fspath(out)
    write_classes(out, renderer.models.class_names[1:])
    views = renderer.config.views
    step = views * max(1, 8 // views)  # whole scenes per task: views share one physics run
    tasks = [(lo, min(lo + step, frames), seed) for lo in range(0, frames, step)]
    pool = None
    if jobs > 1 and len(tasks) > 1:
        renderer.close()  # children connect their own PyBullet clients
        _WORKER['renderer'] = renderer
        pool = multiprocessing.get_context('fork').Pool(min(jobs, len(tasks)))
        chunks = pool.imap(_render_frames, tasks)
    else:
        _WORKER['renderer'] = renderer
        chunks = map(_render_frames, tasks)
    writer, scenes, kept = None, [], []
    bar = tqdm(total=frames, desc='render-ycb', unit='frame', disable=not progress)
    try:
        i = 0
        for chunk in chunks:
            for frame in chunk:
                scene, im_id = divmod(i, SCENE_FRAMES)
                if writer is None or len(scenes) <= scene:
                    if writer is not None:
                        writer.close()
                    writer = BopSceneWriter(os.path.join(out, split, f'{scene:06d}'))
                    scenes.append(writer.dir)
                writer.add(im_id, frame)
                if len(kept) < keep:
                    kept.append(frame)
                i += 1
                bar.update(1)
    finally:
        bar.close()
        _WORKER.clear()
        if pool is not None:
            pool.terminate()
            pool.join()
    writer.close()
    return {'frames': frames, 'scenes': scenes, 'root': out, 'split': split, 'kept': kept}


def _scene_frames(scene_dir: str) -> tuple:
    """Read ``(scene_gt, scene_camera)`` of a BOP scene folder, checked against each other."""
    if not os.path.isdir(scene_dir):
        raise DatasetError(f'BOP scene folder not found: {scene_dir}')
    gt = load_scene_gt(os.path.join(scene_dir, 'scene_gt.json'))
    cams = load_scene_camera(os.path.join(scene_dir, 'scene_camera.json'))
    missing = sorted(set(gt) - set(cams), key=int)
    if missing:
        raise DatasetError(f'{scene_dir}/scene_camera.json has no camera for image(s) '
                           f'{missing[:5]} of scene_gt.json')
    return gt, cams


def render_at_gt_poses(scene_dir: str, models: str, out: str | None = None,
                       progress: bool = True, every: int = 1) -> dict:
    """
    Render a BOP scene's objects at its ground-truth poses and camera; IoU vs ``mask_visib``.

    Arguments:
    ---------
      scene_dir (str): ``<root>/<split>/<scene>`` with ``scene_gt.json``,
        ``scene_camera.json`` and (for the IoU) ``mask_visib/``; ``rgb/`` gives the size.
      models (str): the ycb_models folder.
      out (str | None): dataset root to write the renders to (``<out>/<split>/<scene>/``).
      progress (bool): show a tqdm bar.
      every (int): take every n-th image of the scene.

    Returns
    -------
      dict: ``scene``, ``frames``, ``objects`` (masks compared), ``mean_iou``, ``min_iou``,
      ``per_obj`` (obj_id -> mean IoU), ``first`` (``(real rgb | None, YcbFrame)``).

    """
    from tqdm import tqdm

    scene_dir = os.path.normpath(os.fspath(scene_dir))
    gt, cams = _scene_frames(scene_dir)
    renderer = YcbSceneRenderer(YcbSceneConfig(models=models))
    writer = None
    if out is not None:
        split = os.path.basename(os.path.dirname(scene_dir)) or 'real'
        write_classes(out, renderer.models.class_names[1:])
        writer = BopSceneWriter(os.path.join(out, split, os.path.basename(scene_dir)))
    ious, per_obj, first = [], {}, None
    ids = sorted(gt, key=int)[::max(1, int(every))]
    for im in tqdm(ids, desc=f'render-ycb {os.path.basename(scene_dir)}', unit='frame',
                   disable=not progress):
        real = _real_rgb(scene_dir, int(im))
        h, w = real.shape[:2] if real is not None else (480, 640)
        poses = [_pose(o, scene_dir, im) for o in gt[im]]
        frame = renderer.render_at_poses(poses, np.reshape(cams[im]['cam_K'], (3, 3)), h, w)
        first = first or (real, frame)
        for g, pose in enumerate(poses):
            iou = _mask_iou(scene_dir, int(im), g, frame.instance == g + 1)
            if iou is not None:
                ious.append(iou)
                per_obj.setdefault(pose.obj_id, []).append(iou)
        if writer is not None:
            writer.add(int(im), frame)
    renderer.close()
    if writer is not None:
        writer.close()
    return {'scene': scene_dir, 'frames': len(ids), 'objects': len(ious),
            'mean_iou': float(np.mean(ious)) if ious else None,
            'min_iou': float(np.min(ious)) if ious else None,
            'per_obj': {k: float(np.mean(v)) for k, v in sorted(per_obj.items())},
            'first': first}


def _pose(entry: dict, scene_dir: str, im: str) -> ObjectPose:
    try:
        return ObjectPose(int(entry['obj_id']), np.reshape(entry['cam_R_m2c'], (3, 3)),
                          np.asarray(entry['cam_t_m2c'], np.float64).reshape(3))
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f'{scene_dir}/scene_gt.json: image {im}: bad pose {e}') from None


def _real_rgb(scene_dir: str, im_id: int) -> np.ndarray | None:
    for ext in ('.png', '.jpg'):
        path = os.path.join(scene_dir, 'rgb', f'{im_id:06d}{ext}')
        if os.path.isfile(path):
            return read_rgb(path)
    return None


def _mask_iou(scene_dir: str, im_id: int, g: int, ours: np.ndarray) -> float | None:
    path = os.path.join(scene_dir, 'mask_visib', f'{im_id:06d}_{g:06d}.png')
    if not os.path.isfile(path):
        return None
    real = read_image_unchanged(path)
    real = real[..., 0] if real.ndim == 3 else real
    if real.shape != ours.shape:
        raise DatasetError(f'{path}: not the size of the image')
    real = real > 0
    union = (real | ours).sum()
    return float((real & ours).sum() / union) if union else None


def colour_labels(label: np.ndarray) -> np.ndarray:
    """
    Colour a label image for pictures (a fixed colour per class, background black).

    Arguments:
    ---------
      label (np.ndarray): HxW uint8 class ids.

    Returns
    -------
      np.ndarray: HxWx3 uint8 RGB.

    """
    return _PALETTE[label]


def preview_grid(frames: list, path: str, scale: float = 0.4) -> None:
    """
    Save a PNG: one row per frame, its RGB beside its coloured labels.

    Arguments:
    ---------
      frames (list): :class:`YcbFrame` objects.
      path (str): the PNG to write.
      scale (float): image scale in the picture.

    Raises
    ------
      OSError: the file cannot be written.

    """
    rows = [np.hstack([f.rgb, colour_labels(f.label)]) for f in frames]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    grid = cv2.resize(np.vstack(rows), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    atomic_write_png(path, grid)


def preview_overlay(real: np.ndarray, frame: YcbFrame, path: str, scale: float = 0.5) -> None:
    """
    Save a PNG: the real frame, and the render at its GT poses blended over it with outlines.

    Arguments:
    ---------
      real (np.ndarray): HxWx3 uint8 real RGB.
      frame (YcbFrame): the render at the frame's ground-truth poses.
      path (str): the PNG to write.
      scale (float): image scale in the picture.

    Raises
    ------
      OSError: the file cannot be written.

    """
    blend = real.copy()
    objects = frame.instance > 0
    blend[objects] = (0.45 * real[objects] + 0.55 * frame.rgb[objects]).astype(np.uint8)
    for k in range(1, int(frame.instance.max()) + 1):
        mask = (frame.instance == k).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        colour = tuple(int(c) for c in _PALETTE[frame.poses[k - 1].obj_id])
        cv2.drawContours(blend, contours, -1, colour, 2)
    picture = cv2.resize(np.hstack([real, blend]), None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_AREA)
    atomic_write_png(path, picture)


def _parser():
    import argparse

    ap = argparse.ArgumentParser(
        prog='sam2real render-ycb',
        description='Render YCB-Video tabletop scenes (PyBullet physics + CPU renderer) into a '
                    'BOP dataset that data type "bop" reads: <out>/<split>/<scene>/{rgb,depth,'
                    'mask_visib}/, scene_gt.json, scene_camera.json, <out>/classes.txt. With '
                    '--at-gt-poses: render the objects of a BOP scene at its ground-truth '
                    'poses and report the IoU against its mask_visib.',
        formatter_class=HelpFormatter)
    ap.add_argument('--models', default=default_models(),
                    help='ycb_models folder (objects.json + meshes); $SAM2REAL_YCB_MODELS')
    ap.add_argument('--out', required=True, help='output dataset root')
    ap.add_argument('--frames', type=int, default=100, help='scenes to render')
    ap.add_argument('--seed', type=int, default=0, help='run seed (frame i: same in every run)')
    ap.add_argument('--size', type=int, nargs=2, default=[480, 640], metavar=('H', 'W'),
                    help='image size')
    ap.add_argument('--objects', type=int, nargs=2, default=[3, 8], metavar=('MIN', 'MAX'),
                    help='objects per scene')
    ap.add_argument('--split', default='train_synt', help='split folder name')
    ap.add_argument('--at-gt-poses', metavar='SCENE',
                    help='a BOP scene folder (scene_gt.json, scene_camera.json, mask_visib/): '
                         'render it at its ground-truth poses instead')
    ap.add_argument('--preview', metavar='PNG',
                    help='also save a picture: 4 frames with labels, or with --at-gt-poses '
                         'the first frame overlaid on the real one')
    ap.add_argument('--views', type=int, default=1,
                    help='frames per settled scene, each with its own camera, light and '
                         'table (physics is most of the cost) (default: %(default)s)')
    ap.add_argument('--jobs', type=int, default=1,
                    help='render in this many processes; same frames (default: %(default)s)')
    ap.add_argument('--no-progress', action='store_true', help='no progress bar')
    return ap


def main(argv=None):
    """``sam2real render-ycb``: render YCB scenes into a BOP dataset, or real frames at GT."""
    import json
    import sys

    args = _parser().parse_args(argv)
    try:
        if not os.path.isfile(os.path.join(args.models, 'objects.json')):
            raise DatasetError(f'--models {args.models}: no objects.json there (the YCB meshes, '
                               f'e.g. ../shared/data/ycb_models)')
        if args.at_gt_poses:
            res = render_at_gt_poses(args.at_gt_poses, args.models, args.out,
                                     progress=not args.no_progress)
            real, frame = res.pop('first')
            if args.preview and real is not None:
                preview_overlay(real, frame, args.preview)
        else:
            try:
                config = YcbSceneConfig(models=args.models, height=args.size[0],
                                        width=args.size[1], objects=tuple(args.objects),
                                        views=args.views)
            except ValueError as e:
                raise DatasetError(str(e)) from None
            res = write_bop_frames(YcbSceneRenderer(config), args.out, args.frames, args.seed,
                                   args.split, progress=not args.no_progress,
                                   keep=4 if args.preview else 0, jobs=args.jobs)
            kept = res.pop('kept')
            if args.preview:
                preview_grid(kept, args.preview)
    except DatasetError as exc:
        print(f'sam2real render-ycb: {exc}', file=sys.stderr)
        return 2
    print(json.dumps(res))
    return 0


class YcbScenesDataset(BaseDataset):
    """
    Labeled YCB tabletop frames rendered on the fly (dataset type ``ycb_scenes``).

    Sample ``index`` of epoch ``e`` is the scene of seed ``sample_seed(index)``, drawn from
    ``(seed, e * length + index)``: a frame is never repeated while the trainer draws distinct
    indices (``length`` at least the samples of an epoch). Each DataLoader worker process
    connects its own PyBullet client on its first frame.

    Arguments:
    ---------
      models (str): the ycb_models folder. size (tuple): ``(height, width)``.
      length (int): samples per epoch. objects (tuple): ``(min, max)`` objects per scene.
      scene (dict | None): further :class:`YcbSceneConfig` fields (light, camera, noise).

    """

    def __init__(self, models, size=(480, 640), length=100000, objects=(3, 8), scene=None,
                 **kw):
        super().__init__(**kw)
        if not models or not os.path.isdir(os.fspath(models)):
            raise DatasetError(f'ycb_scenes: models folder not found: {models!r} (the YCB '
                               f'meshes, e.g. ../shared/data/ycb_models)')
        if scene is not None and not isinstance(scene, dict):
            raise DatasetError(f'ycb_scenes: scene must be a dict of scene fields, got {scene!r}')
        try:
            config = YcbSceneConfig.from_dict(models, size=size, objects=tuple(objects),
                                              **(scene or {}))
        except (TypeError, ValueError) as e:
            raise DatasetError(f'ycb_scenes: {e}') from None
        self.renderer = YcbSceneRenderer(config)
        self.class_names = list(self.renderer.models.class_names)
        self.length = int(length)
        if self.length < 1:
            raise DatasetError(f'ycb_scenes: length must be >= 1, got {length}')

    def __len__(self):
        return self.length

    def sample_seed(self, index: int) -> int:
        """
        Return the render seed of sample ``index`` in this epoch (unique per global index).

        Arguments:
        ---------
          index (int): sample index in ``[0, len)``.

        Returns
        -------
          int: the seed for :meth:`YcbSceneRenderer.render`.

        """
        return frame_seed(self.seed, self.epoch * self.length + int(index))

    def _key(self, index):
        return f'ycb_scenes/{self.sample_seed(index)}'

    def _load(self, index):
        frame = self.renderer.render(self.sample_seed(index))
        return {'rgb': frame.rgb, 'labels': frame.label, 'key': self._key(index)}
