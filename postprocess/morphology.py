"""Opening and closing by a disk, on row segments.

The disk of radius r is every offset (dy, dx) with dy² + dx² <= r², i.e. on row offset dy
the columns |dx| <= h(dy) = floor(sqrt(r² - dy²)). Dilation widens each segment of row
y + dy by h(dy) and unions the results over dy; erosion shrinks them by h(dy) and
intersects. Cost follows the number of segments times 2r + 1, never the pixels.

Border handling: the mask lies in an infinite plane whose pixels outside the image are
background, and intermediate results are not cut at the image border; only the final
result is (closing can reach outside). Hence
- ``opening(r)`` equals ``scipy.ndimage.binary_opening(mask, disk)`` (whose border value
  0 is the same assumption), and
- ``closing(r)`` equals ``binary_closing(np.pad(mask, r), disk)[r:-r, r:-r]``: unlike
  scipy's unpadded closing it never removes object pixels near the border (closing only
  adds pixels).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from postprocess.rows import join_rows_kernel, row_starts_kernel, split_rows_kernel


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
def _push(buf_r, buf_a, buf_b, n, y, a, b):
    """Append a segment, doubling the buffers when full; returns buffers and new count."""
    if n == buf_r.shape[0]:
        cap = 2 * n + 16
        nr = np.empty(cap, np.int64)
        na = np.empty(cap, np.int64)
        nb_ = np.empty(cap, np.int64)
        nr[:n] = buf_r[:n]
        na[:n] = buf_a[:n]
        nb_[:n] = buf_b[:n]
        buf_r, buf_a, buf_b = nr, na, nb_
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
    m = 0
    if n == 0:
        return out_r[:0].copy(), out_a[:0].copy(), out_b[:0].copy()
    rmin = rows[0]
    rmax = rows[n - 1]
    starts = row_starts_kernel(rows)
    cap = _widest_row(starts) * (2 * r + 1)
    ta = np.empty(cap, np.int64)
    tb = np.empty(cap, np.int64)
    for y in range(rmin - r, rmax + r + 1):
        t = 0
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
        order = np.argsort(ta[:t])
        a = ta[order[0]]
        b = tb[order[0]]
        for j in order[1:]:
            if ta[j] <= b:  # overlapping or touching: one segment
                if tb[j] > b:
                    b = tb[j]
            else:
                out_r, out_a, out_b, m = _push(out_r, out_a, out_b, m, y, a, b)
                a = ta[j]
                b = tb[j]
        out_r, out_a, out_b, m = _push(out_r, out_a, out_b, m, y, a, b)
    return out_r[:m].copy(), out_a[:m].copy(), out_b[:m].copy()


@nb.njit(cache=True, nogil=True)
def erode_kernel(rows, x0, x1, hw):
    """Erosion by the disk with half widths ``hw`` (everything outside the given segments,
    including outside the image, is background)."""
    n = rows.shape[0]
    r = (hw.shape[0] - 1) // 2
    out_r = np.empty(n + 16, np.int64)
    out_a = np.empty(n + 16, np.int64)
    out_b = np.empty(n + 16, np.int64)
    m = 0
    if n == 0:
        return out_r[:0].copy(), out_a[:0].copy(), out_b[:0].copy()
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
            t = 0
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
    return out_r[:m].copy(), out_a[:m].copy(), out_b[:m].copy()


@nb.njit(cache=True, nogil=True)
def clip_kernel(rows, x0, x1, height, width):
    """The part of the segments inside the image."""
    n = rows.shape[0]
    out_r = np.empty(n, np.int64)
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    m = 0
    for k in range(n):
        a = max(x0[k], 0)
        b = min(x1[k], width)
        if 0 <= rows[k] < height and a < b:
            out_r[m] = rows[k]
            out_a[m] = a
            out_b[m] = b
            m += 1
    return out_r[:m].copy(), out_a[:m].copy(), out_b[:m].copy()


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


def _segments(runs, height, width, radius):
    """Row segments of ``runs``, after the checks the kernels rely on: a radius >= 0 and
    runs inside the ``height`` × ``width`` image (the kernels would read out of bounds)."""
    if radius < 0:
        raise ValueError("radius must be >= 0")
    runs = np.ascontiguousarray(runs, np.int64).reshape(-1, 2)
    if len(runs) and (runs[0, 0] < 0 or runs[-1, 1] > height * width):
        raise ValueError(f"runs outside the {height}×{width} image")
    return split_rows_kernel(runs, width)


def opening(runs: np.ndarray, height: int, width: int, radius: int) -> np.ndarray:
    """Morphological opening by a disk of ``radius`` (see the module docstring); the result
    lies inside the mask, so ``height`` only bounds the check of ``runs``.

    Examples
    --------
    >>> import numpy as np
    >>> block_and_dot = np.array([[0, 3], [4, 7], [8, 11], [14, 15]])  # 4×4: a 3×3 block, a lone pixel
    >>> opening(block_and_dot, 4, 4, 1).tolist()  # the disk of radius 1 is a plus: corners go, so does the dot
    [[1, 2], [4, 7], [9, 10]]
    """
    rows, x0, x1 = _segments(runs, height, width, radius)
    if radius == 0:
        return join_rows_kernel(rows, x0, x1, width)
    return join_rows_kernel(*open_kernel(rows, x0, x1, radius), width)


def closing(runs: np.ndarray, height: int, width: int, radius: int) -> np.ndarray:
    """Morphological closing by a disk of ``radius``, outside of the image taken as
    background (see the module docstring)."""
    rows, x0, x1 = _segments(runs, height, width, radius)
    if radius == 0:
        return join_rows_kernel(rows, x0, x1, width)
    return join_rows_kernel(*close_kernel(rows, x0, x1, radius, height, width), width)
