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
The fallback segmenter: SAM-like overlapping whole-object and part segments without a GPU.

Used when no SAM checkpoint is available (CI, the demo, a robot without a GPU). Like SAM's
automatic mode it returns whole objects and their large parts, overlapping across
granularities, and drops segments below a minimum area relative to the image.

With registered depth (any unit; 0 = no measurement):

1. The support plane (the table) is fitted by RANSAC on inverse depth, ``1/z = a u + b v + c``
   (a 3D plane seen by a pinhole camera is affine in inverse depth, so no intrinsics are needed).
2. Every valid pixel is classed *above* the plane (relative height ``1 - z / z_plane`` over a
   threshold), *on* it, or *below/behind* it, and depth jumps are found as large second
   differences of inverse depth (zero on every plane whatever its slant, so the same threshold
   works at any resolution). Connected regions of one class without jumps are segments: objects
   standing on the table, the table, the floor or wall behind. Several height and jump
   thresholds give several granularities (a stack of boxes as one segment and as two).
3. Colour cues: a coarse colour segmentation (Felzenszwalb) cut by every object segment gives
   its large colour parts, so touching objects at the same depth still get their own segments;
   colour segments of the rest of the image cover the background.

Without depth the segments are a hierarchy of colour (Felzenszwalb) segmentations at several
scales, coarse segments being unions of finer ones. All sizes and thresholds are relative to the
image size, so the same settings behave alike at 96x128 and at 480x640. The output is
deterministic (RANSAC draws from a fixed seed). Figures: docs/sam_worker.md,
``benchmarks/segmenter.py``.
"""
import time

import numpy as np
from sam2real_ros.sam.mask_store import masks_to_bboxes
from sam2real_ros.sam.segments import Segments

# name: (default, description, lowest, highest); lists hold numbers within the range
PARAMETERS = {
    'min_area_fraction': (0.001, 'drop segments smaller than this fraction of the image',
                          0.0, 1.0),
    'max_area_fraction': (0.95, 'drop segments larger than this fraction of the image',
                          0.0, 1.0),
    'max_segments': (200, 'most segments per frame (whole objects are kept first)', 1, 100000),
    'dedupe_iou': (0.9, 'a segment with this IoU to a kept one is a duplicate', 0.0, 1.0),
    'work_side': (320, 'long side the finest colour level is computed at (px)', 16, 8192),
    'coarse_side': (240, 'long side the coarser colour levels are computed at (px)', 16, 8192),
    'scales': ([100.0, 300.0, 1000.0, 3000.0],
               'Felzenszwalb k per colour level, fine to coarse (at a 320x240 reference size)',
               1e-6, 1e9),
    'sigma': (0.8, 'Felzenszwalb pre-smoothing sigma (at the reference size)', 0.0, 10.0),
    'plane_tolerance': (0.01, 'support plane RANSAC inlier: relative inverse-depth residual',
                        1e-6, 1.0),
    'min_plane_fraction': (0.15, 'a support plane must hold this fraction of the valid pixels',
                           0.0, 1.0),
    'height_thresholds': ([0.012], 'relative height 1 - z/z_plane above which a pixel stands '
                          'on the plane, one granularity each', 1e-6, 1.0),
    'jump_thresholds': ([0.02, 0.06], 'relative second difference of inverse depth that cuts '
                        'segments, one granularity each', 1e-6, 10.0),
    'hysteresis': (0.4, 'a region above the plane extends down to this fraction of the '
                   'height threshold', 0.0, 1.0),
    'grow_fraction': (0.008, 'edge and hole pixels join the nearest depth segment within this '
                      'distance (fraction of the long side)', 0.0, 1.0),
    'part_min_fraction': (0.1, 'colour parts of an object cover at least this fraction of it',
                          0.0, 1.0),
    'depth_min_valid': (0.2, 'depth with fewer valid pixels than this fraction is ignored',
                        0.0, 1.0),
}
DEFAULTS = {k: v[0] for k, v in PARAMETERS.items()}
_REF_PIXELS = 320 * 240


class FallbackSegmenter:
    """
    Depth-aware fallback over-segmenter (colour only when a frame has no depth).

    Calling it with ``rgb`` (HxWx3 uint8) and optionally ``depth`` (HxW, registered, any unit,
    0 = invalid) returns a :class:`sam2real_ros.sam.segments.Segments`.

    Arguments:
    ---------
      **settings: overrides of :data:`DEFAULTS` (unknown names raise ``TypeError``, values out
        of the ranges of :data:`PARAMETERS` ``ValueError``).

    """

    name = 'fallback'
    accepts_depth = True

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise TypeError(f'unknown fallback setting(s) {unknown}; known: {sorted(DEFAULTS)}')
        s = {}
        for key, (default, _, lo, hi) in PARAMETERS.items():
            value = settings.get(key, default)
            if isinstance(default, list):
                value = sorted(float(v) for v in value)
                if not value or not all(lo <= v <= hi for v in value):
                    raise ValueError(f'fallback {key} must be numbers in [{lo}, {hi}], got '
                                     f'{value}')
            else:
                value = type(default)(value)
                if not lo <= value <= hi:
                    raise ValueError(f'fallback {key} must be in [{lo}, {hi}], got {value}')
            s[key] = value
        self.settings = s

    # ------------------------------------------------------------------------------ colour
    def colour_levels(self, rgb):
        """
        Return nested colour label maps, fine to coarse (list of HxW int32, labels from 0).

        Felzenszwalb segmentations at ``scales`` (the finest at ``work_side`` pixels on the long
        side, the coarser ones at ``coarse_side``; ``k`` and the smoothing scale with the pixel
        count); each coarser level assigns every segment of the finer one to the coarse segment
        it overlaps most, so coarse segments are unions of fine ones.
        """
        import cv2
        s = self.settings
        h, w = rgb.shape[:2]
        fine = _felzenszwalb(rgb, s['scales'][0], s['work_side'], s)
        levels = [fine]
        fh, fw = fine.shape
        for k in s['scales'][1:]:
            lab = _felzenszwalb(rgb, k, s['coarse_side'], s)
            if lab.shape != fine.shape:
                lab = cv2.resize(lab, (fw, fh), interpolation=cv2.INTER_NEAREST)
            levels.append(_merge_into(levels[-1], lab))
        if (fh, fw) != (h, w):
            levels = [cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
                      for lab in levels]
        return levels

    # ------------------------------------------------------------------------------- depth
    def depth_levels(self, depth):
        """
        Return the depth partitions of a frame and its object mask.

        Returns
        -------
          (list, np.ndarray or None, dict): label maps (HxW int32, 0 = no segment) for every
          (height, jump) threshold pair, the HxW bool mask of pixels above the support plane
          (None without a plane) and diagnostics (``plane_fraction``, ``valid_fraction``).

        """
        import cv2
        s = self.settings
        z = np.asarray(depth, np.float32)
        h, w = z.shape
        valid = np.isfinite(z) & (z > 0)
        info = {'valid_fraction': float(valid.mean()), 'plane_fraction': 0.0}
        if info['valid_fraction'] < s['depth_min_valid']:
            return [], None, info
        z = np.where(valid, z, 0).astype(np.float32)
        # 5x5 median at VGA size, 3x3 from about 300 px down (depth noise vs. detail)
        zm = cv2.medianBlur(z, 5 if min(h, w) >= 300 else 3) if min(h, w) >= 16 else z
        valid &= zm > 0
        inv = np.zeros_like(zm)
        inv[valid] = 1.0 / zm[valid]
        jump = _second_difference(inv, valid)
        plane = _fit_plane(inv, valid, s['plane_tolerance'], s['min_plane_fraction'])
        classes = []
        above = None
        if plane is not None:
            vv, uu = np.mgrid[0:h, 0:w].astype(np.float32)
            inv_plane = plane[0] * uu + plane[1] * vv + plane[2]
            # 1 - z / z_plane; where the plane is behind the camera (above its horizon line)
            # everything is in front of it
            height = np.where(inv_plane > 0, 1.0 - inv_plane / np.maximum(inv, 1e-12), 1.0)
            info['plane_fraction'] = float(
                (valid & (np.abs(height) <= s['plane_tolerance'])).sum() / max(valid.sum(), 1))
            for th in s['height_thresholds']:
                classes.append(_height_classes(height, valid, th, s['hysteresis'],
                                               jump > s['jump_thresholds'][-1]))
            above = valid & (height > s['height_thresholds'][0])
        else:
            classes.append(valid.astype(np.uint8))
        radius = max(1.0, s['grow_fraction'] * max(h, w))
        levels = []
        for cls in classes:
            for jt in s['jump_thresholds']:
                levels.append(_label_classes(cls, jump > jt, valid, radius))
        return levels, above, info

    # ------------------------------------------------------------------------------- all
    def __call__(self, rgb, depth=None):
        """Segment HxWx3 uint8 RGB (and optional registered depth); returns ``Segments``."""
        t0 = time.perf_counter()
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f'fallback segmenter needs HxWx3 RGB, got shape {rgb.shape}')
        h, w = rgb.shape[:2]
        timings = {}
        d_levels, above, info = [], None, {}
        if depth is not None:
            depth = np.asarray(depth)
            if depth.shape != (h, w):
                raise ValueError(f'depth {depth.shape[1]}x{depth.shape[0]} does not match the '
                                 f'image {w}x{h}')
            d_levels, above, info = self.depth_levels(depth)
            timings['depth'] = time.perf_counter() - t0
        t1 = time.perf_counter()
        c_levels = self.colour_levels(rgb)
        timings['colour'] = time.perf_counter() - t1
        t2 = time.perf_counter()
        # Candidate partitions in priority order: whole objects (depth), their colour parts,
        # colour segments (clipped to the background when depth found objects).
        groups = [(lab, 0) for lab in d_levels]
        if above is not None and d_levels and above.any():
            objects = np.where(above, d_levels[0], 0)
            coarse = c_levels[-2] if len(c_levels) > 1 else c_levels[-1]
            groups.append((_parts(objects, coarse, self.settings['part_min_fraction']), 1))
            for lab in reversed(c_levels):
                groups.append((np.where(above, -1, lab), 2))
        else:
            groups += [(lab, 2) for lab in reversed(c_levels)]
        masks = _select(groups, h, w, self.settings)
        timings['select'] = time.perf_counter() - t2
        timings['total'] = time.perf_counter() - t0
        timings['depth_used'] = float(bool(d_levels))
        timings.update({k: float(v) for k, v in info.items()})
        scores = np.ones((len(masks), 2), np.float32)
        return Segments(masks, scores, masks_to_bboxes(masks), timings)


def _felzenszwalb(rgb, k, side, s):
    """
    Felzenszwalb labels (int32) of ``rgb`` resized to ``side`` pixels on the long side.

    Small images are enlarged (bilinear) to that size too, so that the segmentation -- whose
    result is not scale-invariant at the pixel level -- sees the same geometry at any input size.
    """
    import cv2
    from skimage.segmentation import felzenszwalb
    h, w = rgb.shape[:2]
    f = side / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = rgb if size == (w, h) else cv2.resize(
        rgb, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    pixels = small.shape[0] * small.shape[1]
    rel = pixels / _REF_PIXELS
    min_size = max(1, int(0.5 * s['min_area_fraction'] * pixels))
    lab = felzenszwalb(small, scale=k * rel, sigma=s['sigma'] * np.sqrt(rel), min_size=min_size)
    return lab.astype(np.int32)


def _merge_into(fine, coarse):
    """Relabel ``fine`` so each fine segment joins the coarse segment it overlaps most."""
    nf, nc = int(fine.max()) + 1, int(coarse.max()) + 1
    counts = np.bincount(fine.ravel().astype(np.int64) * nc + coarse.ravel(), minlength=nf * nc)
    parent = counts.reshape(nf, nc).argmax(1)
    _, parent = np.unique(parent, return_inverse=True)
    return parent.astype(np.int32)[fine]


def _second_difference(inv, valid):
    """Largest relative second difference of inverse depth over both axes (HxW float32)."""
    jump = np.zeros_like(inv)
    safe = np.maximum(inv, 1e-12)
    for axis in (0, 1):
        a = np.moveaxis(inv, axis, 0)
        v = np.moveaxis(valid, axis, 0)
        j = np.moveaxis(jump, axis, 0)
        c = np.moveaxis(safe, axis, 0)
        d2 = np.abs(a[:-2] - 2 * a[1:-1] + a[2:]) / c[1:-1]
        ok = v[:-2] & v[1:-1] & v[2:]
        d2 = np.where(ok, d2, 0)
        # a step between pixels i and i+1 shows in the second differences at both of them
        j[1:-1] = np.maximum(j[1:-1], d2)
    return jump


def _height_classes(height, valid, th, hysteresis, cut):
    """
    Class map: 1 above the plane, 2 on it, 3 below or behind it, 0 invalid (HxW uint8).

    "Above" is hysteresis-thresholded: regions (without ``cut`` pixels) higher than
    ``hysteresis * th`` that hold a pixel higher than ``th``, so an object keeps the rows
    where it meets the table.
    """
    import cv2
    cls = np.zeros(height.shape, np.uint8)
    cls[valid] = 2
    cls[valid & (height < -th)] = 3
    low = valid & (height > hysteresis * th)
    n, comp = cv2.connectedComponents((low & ~cut).astype(np.uint8), connectivity=4)
    seeded = np.bincount(comp[valid & (height > th)], minlength=n) > 0
    seeded[0] = False
    cls[seeded[comp]] = 1
    cls[valid & (height > th)] = 1
    return cls


def _fit_plane(inv, valid, tol, min_fraction, iters=128, samples=4000, seed=0):
    """RANSAC fit of ``inv = a u + b v + c``; returns (a, b, c) or None without a clear plane."""
    h, w = inv.shape
    idx = np.flatnonzero(valid.ravel())
    if len(idx) < 50:
        return None
    rng = np.random.default_rng(seed)
    sel = idx if len(idx) <= samples else np.sort(rng.choice(idx, samples, replace=False))
    u = (sel % w).astype(np.float64)
    v = (sel // w).astype(np.float64)
    y = inv.ravel()[sel].astype(np.float64)
    a = np.stack([u, v, np.ones_like(u)], 1)
    picks = rng.integers(0, len(sel), (iters, 3))
    best, best_n = None, -1
    for k in picks:
        m = a[k]
        if abs(np.linalg.det(m)) < 1e-9:
            continue
        p = np.linalg.solve(m, y[k])
        n = int((np.abs(a @ p - y) <= tol * y).sum())
        if n > best_n:
            best, best_n = p, n
    if best is None or best_n < min_fraction * len(sel):
        return None
    inl = np.abs(a @ best - y) <= tol * y
    p = np.linalg.lstsq(a[inl], y[inl], rcond=None)[0]
    return p


def _label_classes(cls, cut, valid, radius):
    """
    Label connected regions of one class without cut pixels, grown into cut and invalid pixels.

    ``cls`` is HxW uint8 (0 = invalid). Unlabelled pixels within ``radius`` of a region join
    the nearest one; holes enclosed by one region are filled. Returns HxW int32 labels
    (0 = none).
    """
    import cv2
    h, w = cls.shape
    lab = np.zeros((h, w), np.int32)
    offset = 0
    for c in np.unique(cls):
        if c == 0:
            continue
        n, comp = cv2.connectedComponents(((cls == c) & ~cut).astype(np.uint8), connectivity=4)
        if n > 1:
            sel = comp > 0
            lab[sel] = comp[sel] + offset
            offset += n - 1
    if offset == 0:
        return lab
    free = lab == 0
    dist, nearest = cv2.distanceTransformWithLabels(free.astype(np.uint8), cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
    # DIST_LABEL_PIXEL numbers the zero pixels (= labelled ones here) in raster order from 1
    lut = np.concatenate([[0], lab[~free]]).astype(np.int32)
    grow = free & (dist <= radius)
    lab[grow] = lut[nearest[grow]]
    return _fill_holes(lab)


def _fill_holes(lab):
    """Give each unlabelled region enclosed by a single label (not touching the border) it."""
    import cv2
    free = (lab == 0).astype(np.uint8)
    n, comp = cv2.connectedComponents(free, connectivity=4)
    if n <= 1:
        return lab
    border = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    # label pairs (hole component, neighbouring label) from the 4-neighbourhood
    pairs = []
    for a, b in ((comp[:, :-1], lab[:, 1:]), (comp[:, 1:], lab[:, :-1]),
                 (comp[:-1], lab[1:]), (comp[1:], lab[:-1])):
        sel = (a > 0) & (b > 0)
        pairs.append(np.stack([a[sel], b[sel]], 1))
    pairs = np.unique(np.concatenate(pairs), axis=0)
    if not len(pairs):
        return lab
    holes, counts = np.unique(pairs[:, 0], return_counts=True)
    single = set(holes[counts == 1].tolist()) - set(border.tolist())
    if not single:
        return lab
    fill = np.zeros(n, np.int32)
    for hole, label in pairs:
        if hole in single:
            fill[hole] = label
    out = lab.copy()
    sel = fill[comp] > 0
    out[sel] = fill[comp[sel]]
    return out


def _parts(objects, colour, min_fraction):
    """
    Split each object segment (labels > 0) into its large colour parts; labels of the parts.

    A colour segment's piece of an object is a part when it covers at least ``min_fraction``
    of the object (and less than 90 %: the object segment already covers the whole); the
    object's other pixels (borders, small pieces) join the nearest part of the same object.
    """
    import cv2
    nc = int(colour.max()) + 1
    pair = objects.astype(np.int64) * nc + colour
    counts = np.bincount(pair.ravel(), minlength=(int(objects.max()) + 1) * nc)
    counts = counts.reshape(-1, nc)
    obj_area = counts.sum(1, keepdims=True)
    keep = (counts >= min_fraction * obj_area) & (counts < 0.9 * obj_area)
    keep[0] = False
    ids = np.zeros(counts.size, np.int32)
    ids[np.flatnonzero(keep.ravel())] = np.arange(1, int(keep.sum()) + 1)
    out = ids[pair]
    if not keep.any():
        return out
    owner = np.zeros(int(keep.sum()) + 1, np.int64)  # part -> object
    owner[1:] = np.flatnonzero(keep.ravel()) // nc
    rest = (objects > 0) & (out == 0)
    _, nearest = cv2.distanceTransformWithLabels((out == 0).astype(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.concatenate([[0], out[out > 0]]).astype(np.int32)
    cand = lut[nearest[rest]]
    same = owner[cand] == objects[rest]
    fill = np.where(same, cand, 0)
    out[rest] = fill
    return out


def _select(groups, h, w, s):
    """
    Pick segments from candidate partitions in priority order; returns NxHxW bool.

    ``groups`` is a list of (label map, priority): for priorities 0 and 1 (depth segments and
    object parts) labels >= 1 are segments, for priority 2 (colour) labels >= 0 are segments
    and -1 marks excluded pixels. Segments outside the area limits, near-duplicates of an
    earlier segment (IoU >= ``dedupe_iou``, measured on a grid of at most 320 pixels on the
    long side) and everything past ``max_segments`` are dropped; within one priority larger
    segments come first.
    """
    from scipy import ndimage
    total = h * w
    min_area = max(1.0, s['min_area_fraction'] * total)
    max_area = s['max_area_fraction'] * total
    step = max(1, int(np.ceil(max(h, w) / 320)))
    cands, maps, small, small_areas = [], [], [], []
    for gi, (lab, prio) in enumerate(groups):
        first = 1 if prio < 2 else 0
        shifted = np.where(lab >= first, lab + (1 - first), 0).astype(np.int32)  # 0 = none
        areas = np.bincount(shifted.ravel())
        ok = np.flatnonzero((areas >= min_area) & (areas <= max_area))
        ok = ok[ok > 0]
        lut = np.zeros(len(areas), np.int32)  # keep accepted segments only, numbered from 1
        lut[ok] = np.arange(1, len(ok) + 1)
        maps.append(lut[shifted])
        small.append(np.ascontiguousarray(maps[-1][::step, ::step]).ravel())
        small_areas.append(np.bincount(small[-1], minlength=len(ok) + 1))
        cands += [(prio, -int(areas[i]), gi, k + 1) for k, i in enumerate(ok)]
    cands.sort()
    kept = {}      # group -> kept labels
    overlaps = {}  # (group a, group b) -> intersection table on the grid
    out = []
    for _, _, gi, label in cands:
        if len(out) >= s['max_segments']:
            break
        dup = False
        for gj, labels in kept.items():
            if gj == gi:
                continue  # segments of one partition never overlap
            if (gi, gj) not in overlaps:
                nb = len(small_areas[gj])
                overlaps[(gi, gj)] = np.bincount(
                    small[gi].astype(np.int64) * nb + small[gj],
                    minlength=len(small_areas[gi]) * nb).reshape(-1, nb)
            inter = overlaps[(gi, gj)][label, labels]
            union = small_areas[gi][label] + small_areas[gj][labels] - inter
            if (inter >= s['dedupe_iou'] * np.maximum(union, 1)).any():
                dup = True
                break
        if not dup:
            kept.setdefault(gi, []).append(label)
            out.append((gi, label))
    masks = np.zeros((len(out), h, w), bool)
    boxes = {gi: ndimage.find_objects(maps[gi]) for gi in kept}
    for k, (gi, label) in enumerate(out):
        sl = boxes[gi][label - 1]
        masks[k][sl] = maps[gi][sl] == label
    return masks
