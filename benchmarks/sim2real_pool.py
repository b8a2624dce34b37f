"""
Fixed pool of procedural "real" training frames, segmented once into a mask store.

The sim2real benchmark trains every variant and seed on the same pool of unlabeled real frames,
like a robot's recorded dataset: the frames are rendered once with the ``real`` appearance and
written as PNGs (``<pool>/real/frames/NNNNNN.png``, with the renderer's registered depth in
``<pool>/real/frames/depth/NNNNNN.png`` as a robot's recorder keeps it), the shared SAM worker code
(:class:`sam2real_ros.sam.worker.SamWorker`, the same as ``sam2real segment``) segments them
into ``<pool>/real/masks`` (resumable: frames with masks are skipped), and the same frames with
their ground truth are written as a BOP folder (``<pool>/real_bop``) for the ``real_labels``
upper bound. For a diagnostic "ideal SAM", ``<pool>/oracle_masks`` holds segments derived from
the ground-truth instances (``procedural.oracle_segments``: whole objects, halves, merged
neighbours, the background) for the same frames; only experiments that name it use it.
"""
import json
import os

import numpy as np

from sam2real_ros.common.io_utils import atomic_write_bytes, atomic_write_png

POOL_FIELDS = ('appearance', 'seed', 'frames', 'size', 'objects')


def pool_paths(root):
    """Folders of a pool: ``dict(real=<image folder + masks/>, bop=<BOP root>, oracle=...)``."""
    return {'real': os.path.join(root, 'real'), 'bop': os.path.join(root, 'real_bop'),
            'oracle': os.path.join(root, 'oracle_masks')}


def render_pool(root, appearance='real', seed=11, frames=48, size=(96, 128), objects=(4, 8),
                progress=False):
    """
    Render the pool's frames (skipping those already on disk) and their BOP ground truth.

    Arguments:
      root (str): pool folder.
      appearance (str | dict): renderer appearance of the "robot camera" frames.
      seed (int): pool seed; frame i is rendered from ``[seed, 2, 0, i]`` (the unlabeled stream
        of ``ProceduralDataset``), so it never coincides with training or evaluation frames
        drawn from other seeds.
      frames (int): pool size. size (tuple): ``(height, width)``. objects (tuple): min/max.

    Returns
    -------
      dict: ``real``, ``bop`` and ``oracle`` folder paths, ``frames`` count.

    """
    from tqdm import tqdm

    from sam2real_ros.data.procedural import oracle_segments
    from sam2real_ros.data.procedural import CLASS_NAMES, TabletopRenderer
    from sam2real_ros.sam.mask_store import MaskStore
    paths = pool_paths(root)
    oracle = MaskStore(paths['oracle'])
    img_dir = os.path.join(paths['real'], 'frames')
    scene_dir = os.path.join(paths['bop'], 'train', '000000')
    gt_path = os.path.join(scene_dir, 'scene_gt.json')
    renderer = TabletopRenderer(appearance, tuple(size), tuple(objects))
    scene_gt = {}
    for i in tqdm(range(int(frames)), desc='render real pool', disable=not progress,
                  unit='frame'):
        name = f'{i:06d}.png'
        rgb_path = os.path.join(img_dir, name)
        scene = renderer.render([int(seed), 2, 0, i])
        objs = []
        for inst, cls in enumerate(scene['instance_classes'], start=1):
            visible = scene['instances'] == inst
            if not visible.any():
                continue
            mask_path = os.path.join(scene_dir, 'mask_visib', f'{i:06d}_{len(objs):06d}.png')
            if not os.path.isfile(mask_path):
                atomic_write_png(mask_path, visible.astype(np.uint8) * 255)
            objs.append({'obj_id': int(cls)})
        scene_gt[str(i)] = objs
        key = f'frames/{name}'
        if oracle.status(key) != 'done':
            masks = oracle_segments(scene['instances'], np.random.default_rng([int(seed), 3, i]))
            oracle.write(key, masks, np.ones((len(masks), 2), np.float32), segmenter='oracle')
        depth_path = os.path.join(img_dir, 'depth', name)  # io_utils.depth_path of the frame
        if not os.path.isfile(depth_path):  # before the image: the worker may start at once
            atomic_write_png(depth_path, scene['depth'])
        if not os.path.isfile(rgb_path):
            atomic_write_png(rgb_path, scene['rgb'])
            atomic_write_png(os.path.join(scene_dir, 'rgb', name), scene['rgb'])
    atomic_write_bytes(gt_path, json.dumps(scene_gt).encode())
    atomic_write_bytes(os.path.join(paths['bop'], 'classes.txt'),
                       ('\n'.join(CLASS_NAMES[1:]) + '\n').encode())
    return dict(paths, frames=int(frames))


def segment_pool(real_root, segmenter='auto', progress=False, log=print):
    """
    Segment every frame of ``real_root`` without masks into ``<real_root>/masks``, once.

    Arguments:
      real_root (str): image folder (the pool's ``real`` folder, or a real dataset root).
      segmenter (str | dict): ``auto`` (SAM when its checkpoint exists, else the fallback),
        ``fallback``, ``sam``, or a dict of ``segmenters.make_segmenter`` keywords.
      log (callable): one-line messages.

    Returns
    -------
      dict: ``segmented`` (frames processed now), ``failed``, ``seconds`` (segmenter time),
      ``segmenter`` name, ``store`` path.

    """
    from sam2real_ros.sam.segmenters import make_segmenter
    from sam2real_ros.sam.worker import SamWorker
    spec = {'kind': segmenter} if isinstance(segmenter, str) else dict(segmenter)
    worker = SamWorker(real_root, None)
    todo = worker.pending()
    name = None
    if todo:
        worker.segmenter = make_segmenter(log=log, **spec)
        name = worker.segmenter.name
        log(f'segmenting {len(todo)} real frames with {name} into {worker.store_root} '
            f'(once; reused by every variant and seed)')
        worker.run(todo, progress=progress)
    else:
        keys = worker.store.keys()
        if keys:
            name = worker.store.read(next(iter(keys))).segmenter
    if worker.failed:
        log(f'warning: {worker.failed} frames failed to segment (see {worker.store_root})')
    return {'segmented': worker.done, 'failed': worker.failed, 'seconds': worker.seconds,
            'segmenter': name, 'store': worker.store_root}
