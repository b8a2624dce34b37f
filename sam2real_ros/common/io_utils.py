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
Crash-safe file writes and image I/O shared by the recorder, the SAM worker and the trainer.

Every write goes to a temporary file in the destination folder, is flushed and fsync'ed, then
renamed over the destination (``os.replace`` is atomic on POSIX). A reader therefore sees either
the old file, the complete new file, or no file -- never a half-written one. Temporary files are
named ``.<name>.tmp-<pid>-<n>`` and can be removed by :func:`remove_stale_temp_files`.
"""
import functools
import io
import itertools
import json
import os

import numpy as np
from sam2real_ros.common.errors import Sam2realError

_counter = itertools.count()
TMP_MARK = '.tmp-'


class ImageReadError(Sam2realError, RuntimeError):
    """An image file is missing, unreadable or not an image."""


def _tmp_path(path):
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f'.{name}{TMP_MARK}{os.getpid()}-{next(_counter)}')


def _fsync_dir(dirname):
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes-like) to ``path`` atomically; creates parent folders."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write_json(path, obj):
    """Write ``obj`` as indented JSON atomically; returns the file's size in bytes."""
    data = (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode()
    atomic_write_bytes(path, data)
    return len(data)


def atomic_write_npz(path, **arrays):
    """Write a compressed ``.npz`` atomically (``np.load`` reads it back)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getbuffer())


def encode_png(image):
    """
    Encode an image as PNG bytes (lossless).

    Arguments:
    ---------
      image (np.ndarray): HxWx3 uint8 RGB, HxW uint8 or HxW uint16 (e.g. depth in mm).

    Returns
    -------
      np.ndarray: 1-D uint8 buffer with the PNG file bytes.

    """
    import cv2
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[:, :, ::-1]  # RGB -> BGR for OpenCV
    elif image.ndim != 2:
        raise ValueError(f'cannot encode an image of shape {image.shape} as PNG')
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f'PNG needs uint8 or uint16 pixels, got {image.dtype}')
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError('OpenCV could not encode the image as PNG')
    return buf


def atomic_write_png(path, image):
    """Write ``image`` (see :func:`encode_png`) as a PNG file atomically."""
    atomic_write_bytes(path, encode_png(image))


def read_yaml(path, what, error=ValueError):
    """
    Read the YAML (or JSON) file ``path``: the one reader of sam2real's YAML and JSON files.

    Arguments:
    ---------
      path (str | os.PathLike): the file.
      what (str): what the file is to the user (``config file``, ``--params-file``, ...).
      error (type): the exception class to raise (the caller's own ``Sam2realError``).

    Returns
    -------
      the parsed document (None for an empty file).

    Raises
    ------
      error: one line ``<what> <path>: no such file | cannot read it (...) | not valid YAML
        (<the parser's message with its line and column>)`` (``not valid JSON (...)`` for a
        ``.json`` file, which is parsed by the ``json`` module).

    """
    import yaml
    path = os.fspath(path)
    try:
        with open(path) as f:
            # JSON is YAML, but the json module reads a BOP scene_gt.json of 1000 frames in
            # milliseconds where the YAML parser takes seconds
            return json.load(f) if path.endswith('.json') else yaml.safe_load(f)
    except FileNotFoundError:
        raise error(f'{what} {path}: no such file') from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f'{what} {path}: cannot read it ({getattr(exc, "strerror", None) or exc})') \
            from None
    except json.JSONDecodeError as exc:
        raise error(f'{what} {path}: not valid JSON ({exc})') from None
    except yaml.YAMLError as exc:
        raise error(f'{what} {path}: not valid YAML ({" ".join(str(exc).split())})') from None


def _quiet_cv2():
    """
    Return cv2 with its own logging off.

    A corrupt file is reported once, as :class:`ImageReadError` naming it; OpenCV would also
    print its own ``[ERROR:0@...]`` line for it.
    """
    import cv2
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def read_rgb(path):
    """Read an image file as HxWx3 uint8 RGB; raises :class:`ImageReadError` naming the file."""
    import cv2
    return np.ascontiguousarray(_imread(path, cv2.IMREAD_COLOR)[:, :, ::-1])


def _imread(path, flags):
    """``cv2.imread(path, flags)``; raises :class:`ImageReadError` naming a missing or bad file."""
    cv2 = _quiet_cv2()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImageReadError(f'image file not found: {path}')
    img = cv2.imread(path, flags)
    if img is None:
        raise ImageReadError(f'not a readable image (corrupt or unsupported format): {path}')
    return img


# The one image lister (SAM worker and image-folder dataset): what counts as an image file and
# which folders below a dataset root never hold frames to segment or train on.
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
SKIP_DIRS = ('episodes', 'masks', 'labels', 'depth')


def list_images(root, exclude=()):
    """
    List the image files below ``root`` as keys (paths relative to ``root``, ``/`` separators).

    Arguments:
    ---------
      root (str): folder searched recursively.
      exclude (iterable of str): further folders to leave out (e.g. a mask store elsewhere).

    Returns
    -------
      (list of str): sorted keys of the files ending in :data:`IMAGE_EXTS` (any case), leaving
      out hidden files and folders, folders named in :data:`SKIP_DIRS` (recorder episodes, mask
      stores, label and depth images) and the ``exclude`` folders. In a folder with an ``rgb/``
      subfolder (a BOP scene, the ``rgb/`` layout of :func:`depth_path`) only ``rgb/`` holds
      frames: its siblings (``depth/``, ``mask/``, ``mask_visib/``, ...) hold per-frame
      annotations and are left out.

    """
    root = os.path.abspath(os.fspath(root))
    skip = {os.path.abspath(os.fspath(d)) for d in exclude}
    keys = []
    for dirpath, dirnames, files in os.walk(root):
        if 'rgb' in dirnames:
            dirnames[:] = ['rgb']
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.') and d not in SKIP_DIRS
                             and os.path.join(dirpath, d) not in skip)
        for name in sorted(files):
            if not name.startswith('.') and name.lower().endswith(IMAGE_EXTS):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                keys.append(rel.replace(os.sep, '/'))
    return keys


def read_image_unchanged(path):
    """Read an image file keeping depth and channels (e.g. 16-bit depth or a mono8 mask)."""
    import cv2
    img = _imread(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3 and img.shape[2] >= 3:
        img = img[:, :, 2::-1] if img.shape[2] == 3 else img[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(img)


def depth_path(image_path):
    """
    Return where the registered depth of an image lives by convention (the file may not exist).

    ``<dir>/rgb/<stem>.<ext>`` -> ``<dir>/depth/<stem>.png`` (recorder episodes, BOP scenes);
    any other ``<dir>/<stem>.<ext>`` -> ``<dir>/depth/<stem>.png``. Depth files are HxW uint16
    PNGs, the size of the image, in millimetres (0 = no measurement); see docs/datasets.md.
    """
    d, name = os.path.split(os.fspath(image_path))
    stem = os.path.splitext(name)[0]
    if os.path.basename(d) == 'rgb':
        d = os.path.dirname(d)
    return os.path.join(d, 'depth', stem + '.png')


def read_depth(image_path, shape=None):
    """
    Read the registered depth of an image (see :func:`depth_path`), or None when it has none.

    Arguments:
    ---------
      image_path (str): the RGB image (not the depth file).
      shape (tuple | None): expected ``(H, W)`` (the image's); a mismatch is an error.

    Returns
    -------
      np.ndarray | None: HxW uint16 depth.

    Raises
    ------
      ImageReadError: the depth file exists but is unreadable, not single-channel 16-bit, or
        of another size than ``shape``.

    """
    path = depth_path(image_path)
    if not os.path.isfile(path):
        return None
    depth = read_image_unchanged(path)
    if depth.ndim != 2 or depth.dtype != np.uint16:
        raise ImageReadError(f'depth file {path} must be a single-channel 16-bit PNG (mm), got '
                             f'{depth.dtype} with shape {depth.shape}')
    if shape is not None and depth.shape != tuple(shape[:2]):
        raise ImageReadError(f'depth file {path} is {depth.shape[1]}x{depth.shape[0]} but its '
                             f'image is {shape[1]}x{shape[0]}')
    scale = bop_depth_scale(image_path)
    if scale != 1.0:
        depth = np.clip(np.round(depth * scale), 0, 65535).astype(np.uint16)
    return depth


def bop_depth_scale(image_path):
    """
    Millimetres per depth unit of an image in a BOP scene (``<scene>/rgb/<im_id>.<ext>``).

    BOP stores depth in units of ``depth_scale`` mm per image (``scene_camera.json``; 0.1 for
    YCB-Video). Returns 1.0 for any other image, and for a scene or image id without it.

    Raises
    ------
      ImageReadError: the scene's ``scene_camera.json`` is not valid JSON.

    """
    d, name = os.path.split(os.path.abspath(os.fspath(image_path)))
    if os.path.basename(d) != 'rgb':
        return 1.0
    cam_path = os.path.join(os.path.dirname(d), 'scene_camera.json')
    if not os.path.isfile(cam_path):
        return 1.0
    stem = os.path.splitext(name)[0]
    entry = _scene_camera(cam_path, os.stat(cam_path).st_mtime_ns).get(
        str(int(stem)) if stem.isdigit() else stem, {})
    return float(entry.get('depth_scale', 1.0)) if isinstance(entry, dict) else 1.0


@functools.lru_cache(maxsize=8)
def _scene_camera(path, mtime_ns):
    """Return the parsed ``scene_camera.json`` (cached per file version)."""
    cams = read_yaml(path, 'BOP camera file', ImageReadError)
    return cams if isinstance(cams, dict) else {}


def temp_file_pid(name):
    """Return the writer's pid of a temporary file name ``.<name>.tmp-<pid>-<n>``, else None."""
    if not name.startswith('.') or TMP_MARK not in name:
        return None
    tail = name.rsplit(TMP_MARK, 1)[1].split('-')
    try:
        return int(tail[0])
    except ValueError:
        return None


def is_temp_file(name):
    """Tell whether ``name`` (a base name) is a temporary file of :func:`atomic_write_bytes`."""
    return temp_file_pid(name) is not None


def remove_stale_temp_files(folder, live_pids=()):
    """
    Delete the temporary files of dead writers below ``folder``; returns how many.

    The one owner of temp-file clean-up. A temporary file is stale unless its writer's pid is
    in ``live_pids``: callers that share a folder with live writers pass the pids their locks
    show alive (the mask store's writer locks, :meth:`MaskStore.live_writer_pids`); a folder
    whose writer lock is free (a crashed episode writer) has no live writer at all. There is no
    age rule: a kill leaves nothing behind once the next writer starts.
    """
    live = {int(p) for p in live_pids}
    n = 0
    for dirpath, _, files in os.walk(os.fspath(folder)):
        for name in files:
            pid = temp_file_pid(name)
            if pid is not None and pid not in live:
                try:
                    os.unlink(os.path.join(dirpath, name))
                    n += 1
                except OSError:
                    pass
    return n
