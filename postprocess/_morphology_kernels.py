"""Kernels of opening and closing by a disk on row segments (private: see
``postprocess.morphology``).

Two exact methods, chosen per mask by what each would cost (``open_kernel``, ``close_kernel``):

- row by row (``erode_kernel``, ``dilate_kernel``): the disk is 2r + 1 horizontal lines, row
  ``dy`` of it ``2 hw[|dy|] + 1`` wide. Dilation widens each segment of row ``y + dy`` by
  ``hw[|dy|]`` and unions the results over dy; erosion shrinks them and intersects. Cost:
  segments × (2r + 1), nothing per pixel: the cheaper for small radii;
- by distances (``postprocess._distance_kernels``): cost the pixels of the mask's bounding box
  (a closing: also r columns either side of it), whatever the radius: the cheaper for large
  ones.

Both give the same result, so the choice is only speed; the cost model's weights
(``SEGMENT_WEIGHT``) come from ``bench/morphology.py``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from postprocess._distance_kernels import box_kernel, disk_half_widths, distance_close_kernel, distance_open_kernel
from postprocess._segment_kernels import argsort_kernel, head_kernel, push_segment, row_starts_kernel

SEGMENT_WEIGHT = 2
"""Time of a row-by-row step (a segment of one row of the disk) in pixel passes of the distance
method, about: measured on the bones and blobs of ``bench/morphology.py``."""


@nb.njit(cache=True, nogil=True)
def _widest_row(starts):
    w = 0
    for j in range(starts.shape[0] - 1):
        w = max(w, starts[j + 1] - starts[j])
    return w


@nb.njit(cache=True, nogil=True)
def dilate_kernel(rows, x0, x1, hw):
    """Dilation by the disk with half widths ``hw`` (``hw[|dy|]``); the result may leave the
    image."""
    n = rows.shape[0]
    r = hw.shape[0] - 1
    out_r = np.empty(2 * n + 16, np.int64)
    out_a = np.empty(2 * n + 16, np.int64)
    out_b = np.empty(2 * n + 16, np.int64)
    m = np.int64(0)
    if n == 0:
        return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m)
    rmin = rows[0]
    rmax = rows[n - 1]
    starts = row_starts_kernel(rows)
    cap = _widest_row(starts) * (2 * r + 1)
    ta = np.empty(cap, np.int64)
    tb = np.empty(cap, np.int64)
    for y in range(rmin - r, rmax + r + 1):
        t = np.int64(0)
        for d in range(-r, r + 1):
            yy = y + d
            if yy < rmin or yy > rmax:
                continue
            h = hw[abs(d)]
            for k in range(starts[yy - rmin], starts[yy - rmin + 1]):
                ta[t] = x0[k] - h
                tb[t] = x1[k] + h
                t += 1
        if t == 0:
            continue
        order = argsort_kernel(ta, t)  # ties in any order give the same union
        a = ta[order[0]]
        b = tb[order[0]]
        for q in range(1, t):
            j = order[q]
            if ta[j] <= b:  # overlapping or touching: one segment
                if tb[j] > b:
                    b = tb[j]
            else:
                out_r, out_a, out_b, m = push_segment(out_r, out_a, out_b, m, y, a, b)
                a = ta[j]
                b = tb[j]
        out_r, out_a, out_b, m = push_segment(out_r, out_a, out_b, m, y, a, b)
    return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m)


@nb.njit(cache=True, nogil=True)
def erode_kernel(rows, x0, x1, hw):
    """Erosion by the disk with half widths ``hw`` (``hw[|dy|]``; everything outside the given
    segments, including outside the image, is background)."""
    n = rows.shape[0]
    r = hw.shape[0] - 1
    out_r = np.empty(n + 16, np.int64)
    out_a = np.empty(n + 16, np.int64)
    out_b = np.empty(n + 16, np.int64)
    m = np.int64(0)
    if n == 0:
        return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m)
    rmin = rows[0]
    rmax = rows[n - 1]
    starts = row_starts_kernel(rows)
    cap = _widest_row(starts) * (2 * r + 1) + 1
    ca = np.empty(cap, np.int64)
    cb = np.empty(cap, np.int64)
    na = np.empty(cap, np.int64)
    nb_ = np.empty(cap, np.int64)
    for y in range(rmin + r, rmax - r + 1):
        # Row y - r shrunk by hw[r] starts the running intersection.
        c = 0
        h = hw[r]
        for k in range(starts[y - r - rmin], starts[y - r - rmin + 1]):
            if x1[k] - h > x0[k] + h:
                ca[c] = x0[k] + h
                cb[c] = x1[k] - h
                c += 1
        for d in range(-r + 1, r + 1):
            if c == 0:
                break
            h = hw[abs(d)]
            lo = starts[y + d - rmin]
            hi = starts[y + d - rmin + 1]
            i = 0
            k = lo
            t = np.int64(0)
            while i < c and k < hi:
                a = max(ca[i], x0[k] + h)
                b = min(cb[i], x1[k] - h)
                if a < b:
                    na[t] = a
                    nb_[t] = b
                    t += 1
                if cb[i] < x1[k] - h:
                    i += 1
                else:
                    k += 1
            ca, na = na, ca
            cb, nb_ = nb_, cb
            c = t
        for i in range(c):
            out_r, out_a, out_b, m = push_segment(out_r, out_a, out_b, m, y, ca[i], cb[i])
    return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m)


@nb.njit(cache=True, nogil=True)
def clip_kernel(rows, x0, x1, height, width):
    """The part of the segments inside the image."""
    n = rows.shape[0]
    out_r = np.empty(n, np.int64)
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    m = np.int64(0)
    for k in range(n):
        a = max(x0[k], 0)
        b = min(x1[k], width)
        if 0 <= rows[k] < height and a < b:
            out_r[m] = rows[k]
            out_a[m] = a
            out_b[m] = b
            m += 1
    return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m)


@nb.njit(cache=True, nogil=True)
def open_method(rows, x0, x1, r):
    """How ``open_kernel`` opens these segments by radius ``r``: 0, nothing is left (no disk fits
    in the mask's box); 1, row by row; 2, by distances (whichever costs less)."""
    n = rows.shape[0]
    if n == 0:
        return 0
    y0, y1, xa, xb = box_kernel(rows, x0, x1)
    if 2 * r >= y1 - y0 or 2 * r >= xb - xa:
        return 0
    return 2 if SEGMENT_WEIGHT * n * (2 * r + 1) > (y1 - y0) * (xb - xa) else 1


@nb.njit(cache=True, nogil=True)
def close_method(rows, x0, x1, r):
    """How ``close_kernel`` closes these segments by radius ``r``: 1, row by row (the dilation has
    about height + 2r rows, each eroded by 2r + 1 rows); 2, by distances (the box's pixels,
    and r columns of staircase either side of it)."""
    n = rows.shape[0]
    if n == 0:
        return 1
    y0, y1, xa, xb = box_kernel(rows, x0, x1)
    h = y1 - y0
    return 2 if SEGMENT_WEIGHT * (n + h + 2 * r) * (2 * r + 1) > h * (xb - xa + 2 * r) else 1


@nb.njit(cache=True, nogil=True)
def open_kernel(rows, x0, x1, r):
    """Opening (erosion, then dilation) by the disk of radius ``r`` >= 1, by the cheaper method."""
    how = open_method(rows, x0, x1, r)
    if how == 0:
        return head_kernel(rows, np.int64(0)), head_kernel(x0, np.int64(0)), head_kernel(x1, np.int64(0))
    if how == 2:
        return distance_open_kernel(rows, x0, x1, r)
    hw = disk_half_widths(r)
    er, ea, eb = erode_kernel(rows, x0, x1, hw)
    return dilate_kernel(er, ea, eb, hw)


@nb.njit(cache=True, nogil=True)
def close_kernel(rows, x0, x1, r, height, width):
    """Closing (dilation, then erosion) by the disk of radius ``r`` >= 1, cut to the image, by the
    cheaper method."""
    if close_method(rows, x0, x1, r) == 2:
        return distance_close_kernel(rows, x0, x1, r)
    hw = disk_half_widths(r)
    dr, da, db = dilate_kernel(rows, x0, x1, hw)
    er, ea, eb = erode_kernel(dr, da, db, hw)
    return clip_kernel(er, ea, eb, height, width)
