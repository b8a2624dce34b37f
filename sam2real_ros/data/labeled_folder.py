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
Labeled real frames as a plain folder: images and label PNGs paired by relative path.

::

    <root>/images/a/0001.jpg   <root>/labels/a/0001.png   (HxW class ids, uint8 or uint16)
    <root>/classes.txt         (one name per line: class 1, 2, ...; or ``classes`` in the spec)

Images are listed by ``io_utils.list_images`` (the one lister); the label of image key
``a/0001.jpg`` is ``<labels>/a/0001.png``. Pixel value ``c`` is class ``c`` (0 = background),
:data:`IGNORE_INDEX` marks pixels that count in no IoU. This is the "held-out labeled real
frames" a user has for ``sam2real evaluate --data`` and the adaptation manager's real gate.
"""
import glob
import os

import numpy as np
from sam2real_ros.common.io_utils import IMAGE_EXTS, list_images, read_image_unchanged, read_rgb
from sam2real_ros.common.labels import IGNORE_INDEX, MAX_CLASSES
from sam2real_ros.data.base import BaseDataset, DatasetError
from sam2real_ros.data.bop import read_classes

FIELDS = ('root', 'images', 'labels', 'classes')


class LabeledFolder(BaseDataset):
    """
    Images below ``<root>/<images>`` with class-id label PNGs below ``<root>/<labels>``.

    Arguments:
    ---------
      root (str): dataset folder.
      images (str): image folder, relative to ``root`` (``.``: ``root`` itself). Default
        ``images``.
      labels (str): label folder, relative to ``root``. Default ``labels``.
      classes (str | list | None): names of classes 1, 2, ... (a list, or a file with one name
        per line; a list may start with ``background``); default ``<root>/classes.txt``.

    """

    def __init__(self, root, images='images', labels='labels', classes=None, **kw):
        super().__init__(**kw)
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise DatasetError(f'labeled_folder root is not a folder: {self.root}')
        self.image_dir = os.path.normpath(os.path.join(self.root, images or '.'))
        self.label_dir = os.path.normpath(os.path.join(self.root, labels or 'labels'))
        for what, d in (('images', self.image_dir), ('labels', self.label_dir)):
            if not os.path.isdir(d):
                raise DatasetError(f'labeled_folder: {what} folder not found: {d}')
        if classes is None:
            path = os.path.join(self.root, 'classes.txt')
            if not os.path.isfile(path):
                raise DatasetError(f'labeled_folder {self.root}: no class names; give "classes" '
                                   f'(a list or a file) or write {path} (one name per line: '
                                   f'class 1, 2, ...)')
            classes = path
        if isinstance(classes, str):
            classes = read_classes(classes)
        classes = [str(c) for c in classes]
        if classes and classes[0] == 'background':
            classes = classes[1:]
        self.class_names = ['background'] + classes
        if len(self.class_names) > MAX_CLASSES - 1:  # 255 is IGNORE_INDEX
            raise DatasetError(f'labeled_folder: {len(self.class_names)} classes do not fit '
                               f'uint8 labels (at most {MAX_CLASSES - 1}, {IGNORE_INDEX} = '
                               f'ignore)')
        self.keys = list_images(self.image_dir, exclude=[self.label_dir])
        if not self.keys:
            raise DatasetError(f'labeled_folder: no images ({", ".join(IMAGE_EXTS)}) found '
                               f'under {self.image_dir}')
        prefix = os.path.relpath(self.image_dir, self.root).replace(os.sep, '/')
        self.prefix = '' if prefix == '.' else prefix + '/'

    def label_path(self, key):
        """Return the label PNG of image key ``key`` (relative to the image folder)."""
        return os.path.join(self.label_dir, *os.path.splitext(key)[0].split('/')) + '.png'

    def __len__(self):
        return len(self.keys)

    def _key(self, index):
        return self.prefix + self.keys[index]

    def _load(self, index):
        key = self.keys[index]
        rgb = read_rgb(os.path.join(self.image_dir, *key.split('/')))
        path = self.label_path(key)
        if not os.path.isfile(path):
            raise DatasetError(f'{path}: label missing for image {self._key(index)}')
        lab = read_image_unchanged(path)
        if lab.ndim != 2 or lab.dtype not in (np.uint8, np.uint16):
            chans = 1 if lab.ndim == 2 else lab.shape[2]
            raise DatasetError(f'{path}: labels must be single-channel uint8/uint16 class ids, '
                               f'got {chans} channel(s) of {lab.dtype} (a colour or palette '
                               f'PNG?)')
        if lab.shape != rgb.shape[:2]:
            raise DatasetError(f'{path}: label size {lab.shape[1]}x{lab.shape[0]} differs from '
                               f'the image size {rgb.shape[1]}x{rgb.shape[0]}')
        bad = lab[(lab >= len(self.class_names)) & (lab != IGNORE_INDEX)]
        if bad.size:
            raise DatasetError(f'{path}: class id {int(bad.max())} outside 0..'
                               f'{len(self.class_names) - 1} ({len(self.class_names)} classes; '
                               f'{IGNORE_INDEX} = ignore)')
        return {'rgb': rgb, 'labels': lab.astype(np.uint8), 'key': self._key(index)}


def folder_spec(path):
    """
    Return the labeled dataset spec of a folder: an image+label folder or a BOP folder.

    ``<path>/labels/`` makes a ``labeled_folder`` (images in ``<path>/images/``, else in
    ``<path>`` itself); ``<path>/<split>/<scene>/scene_gt.json`` a ``bop`` spec of that split
    (``test`` when there are several). Anything else is a :class:`DatasetError`.
    """
    path = os.fspath(path)
    if os.path.isdir(os.path.join(path, 'labels')):
        images = 'images' if os.path.isdir(os.path.join(path, 'images')) else '.'
        return {'type': 'labeled_folder', 'root': path, 'images': images, 'labels': 'labels'}
    splits = sorted({os.path.basename(os.path.dirname(os.path.dirname(p)))
                     for p in glob.glob(os.path.join(path, '*', '*', 'scene_gt.json'))})
    if len(splits) == 1 or 'test' in splits:
        return {'type': 'bop', 'root': path, 'split': splits[0] if len(splits) == 1 else 'test'}
    if splits:
        raise DatasetError(f'{path}: a BOP folder with the splits {splits}; name one in a '
                           f'dataset spec YAML ({{type: bop, root: {path}, split: ...}})')
    raise DatasetError(f'{path}: neither an image+label folder (images/ and labels/) nor a BOP '
                       f'folder (<split>/<scene>/scene_gt.json)')
