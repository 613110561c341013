"""Kernels of opening and closing by a disk on row segments (private: see
``postprocess.morphology``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from postprocess._segment_kernels import argsort_kernel, head_kernel, row_starts_kernel


@nb.njit(cache=True, nogil=True)
def disk_half_widths(r):
    """``h[dy + r]`` = the largest h with h² + dy² <= r², for dy in -r … r."""
    hw = np.empty(2 * r + 1, np.int64)
    for dy in range(-r, r + 1):
        h = 0
        while (h + 1) * (h + 1) + dy * dy <= r * r:
            h += 1
        hw[dy + r] = h
    return hw


@nb.njit(cache=True, nogil=True)
def _grown(buf):
    """``buf`` copied into an array twice as long (+16)."""
    out = np.empty(2 * buf.shape[0] + 16, np.int64)
    for i in range(buf.shape[0]):
        out[i] = buf[i]
    return out


@nb.njit(cache=True, nogil=True)
def _push(buf_r, buf_a, buf_b, n, y, a, b):
    """Append a segment, doubling the buffers when full; returns buffers and new count."""
    if n == buf_r.shape[0]:
        buf_r = _grown(buf_r)
        buf_a = _grown(buf_a)
        buf_b = _grown(buf_b)
    buf_r[n] = y
    buf_a[n] = a
    buf_b[n] = b
    return buf_r, buf_a, buf_b, n + 1


@nb.njit(cache=True, nogil=True)
def _widest_row(starts):
    w = 0
    for j in range(starts.shape[0] - 1):
        w = max(w, starts[j + 1] - starts[j])
    return w


@nb.njit(cache=True, nogil=True)
def dilate_kernel(rows, x0, x1, hw):
    """Dilation by the disk with half widths ``hw``; the result may leave the image."""
    n = rows.shape[0]
    r = (hw.shape[0] - 1) // 2
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
            h = hw[d + r]
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
                out_r, out_a, out_b, m = _push(out_r, out_a, out_b, m, y, a, b)
                a = ta[j]
                b = tb[j]
        out_r, out_a, out_b, m = _push(out_r, out_a, out_b, m, y, a, b)
    return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m)


@nb.njit(cache=True, nogil=True)
def erode_kernel(rows, x0, x1, hw):
    """Erosion by the disk with half widths ``hw`` (everything outside the given segments,
    including outside the image, is background)."""
    n = rows.shape[0]
    r = (hw.shape[0] - 1) // 2
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
        # Row y - r shrunk by h(-r) starts the running intersection.
        c = 0
        h = hw[0]
        for k in range(starts[y - r - rmin], starts[y - r - rmin + 1]):
            if x1[k] - h > x0[k] + h:
                ca[c] = x0[k] + h
                cb[c] = x1[k] - h
                c += 1
        for d in range(-r + 1, r + 1):
            if c == 0:
                break
            h = hw[d + r]
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
            out_r, out_a, out_b, m = _push(out_r, out_a, out_b, m, y, ca[i], cb[i])
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
def open_kernel(rows, x0, x1, r):
    """Opening (erosion, then dilation) by the disk of radius ``r``."""
    hw = disk_half_widths(r)
    er, ea, eb = erode_kernel(rows, x0, x1, hw)
    return dilate_kernel(er, ea, eb, hw)


@nb.njit(cache=True, nogil=True)
def close_kernel(rows, x0, x1, r, height, width):
    """Closing (dilation, then erosion) by the disk of radius ``r``, cut to the image."""
    hw = disk_half_widths(r)
    dr, da, db = dilate_kernel(rows, x0, x1, hw)
    er, ea, eb = erode_kernel(dr, da, db, hw)
    return clip_kernel(er, ea, eb, height, width)
