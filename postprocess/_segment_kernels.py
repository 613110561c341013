"""The row-segment form, the working form of every cleaning kernel, and the union-find over it
(private: see ``postprocess.connected``, ``.holes``, ``.morphology`` and ``.clean``).

Flat runs (``(n, 2)`` ``[start, stop)`` over the row-major H×W mask) may cross row ends;
cleaning needs rows. A mask in row-segment form is three int64 arrays ``(rows, x0, x1)``:
segment ``k`` covers pixels ``x0[k] <= x < x1[k]`` of row ``rows[k]``, sorted by ``(row, x0)``,
and segments of one row never touch. The first segment of a set of segments is therefore its
first pixel in raster order. Segments of consecutive rows are linked with a union-find whose
root is always the smallest member index, so a component's root is its first segment in raster
order.

Cold compile time is kept down: every kernel other than ``clean_kernel`` has one signature
(int64 arrays, C-contiguous and writable, int64 scalars, bool flags; ``postprocess.cleaner``
casts at the boundary); counters passed to other kernels start as ``np.int64(0)`` (a literal
``0`` would compile a second specialisation for ``Literal[int](0)``); no kernel uses numpy
functions whose numba implementations are costly to compile (``np.argsort``, slice assignment,
``np.arange``, ``np.count_nonzero``, slicing and copying a filled buffer): small loops and
kernels do the same.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)


@nb.njit(cache=True, nogil=True)
def split_rows_kernel(runs, width):
    """Flat runs → row segments ``(rows, x0, x1)`` (a run crossing row ends is cut)."""
    n = 0
    for j in range(runs.shape[0]):
        n += (runs[j, 1] - 1) // width - runs[j, 0] // width + 1
    rows = np.empty(n, np.int64)
    x0 = np.empty(n, np.int64)
    x1 = np.empty(n, np.int64)
    k = 0
    for j in range(runs.shape[0]):
        s = runs[j, 0]
        e = runs[j, 1]
        while s < e:
            r = s // width
            stop = min(e, (r + 1) * width)
            rows[k] = r
            x0[k] = s - r * width
            x1[k] = stop - r * width
            k += 1
            s = stop
    return rows, x0, x1


@nb.njit(cache=True, nogil=True)
def join_rows_kernel(rows, x0, x1, width):
    """Row segments (inside ``[0, width)``) → canonical flat runs; a segment that ends a
    row and one that starts the next row become one run."""
    out = np.empty((rows.shape[0], 2), np.int64)
    n = 0
    for k in range(rows.shape[0]):
        s = rows[k] * width + x0[k]
        e = rows[k] * width + x1[k]
        if n > 0 and s <= out[n - 1, 1]:
            if e > out[n - 1, 1]:
                out[n - 1, 1] = e
        else:
            out[n, 0] = s
            out[n, 1] = e
            n += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def find(parent, i):
    """Root of ``i`` (path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@nb.njit(cache=True, nogil=True)
def _union(parent, a, b):
    ra = find(parent, a)
    rb = find(parent, b)
    # The smaller index wins, so every root is its set's first segment in raster order.
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@nb.njit(cache=True, nogil=True)
def link_rows_kernel(rows, x0, x1, diagonal, parent):
    """Union every pair of segments in consecutive rows that touch: column ranges overlap
    (``diagonal`` = 0, 4-connectivity) or overlap once widened by one pixel (``diagonal``
    = 1, 8-connectivity). One merge-like sweep per pair of rows."""
    n = rows.shape[0]
    ps = np.int64(0)
    pe = np.int64(0)
    i = np.int64(0)
    while i < n:
        r = rows[i]
        cs = i
        while i < n and rows[i] == r:
            i += 1
        if pe > ps and rows[ps] == r - 1:
            a = ps
            b = cs
            while a < pe and b < i:
                if x0[a] < x1[b] + diagonal and x0[b] < x1[a] + diagonal:
                    _union(parent, a, b)
                # The segment ending first can touch nothing further right in the other row
                # (same-row segments are at least one pixel apart).
                if x1[a] < x1[b]:
                    a += 1
                else:
                    b += 1
        ps = cs
        pe = i


@nb.njit(cache=True, nogil=True)
def row_starts_kernel(rows):
    """``starts[y - rows[0]]`` = index of the first segment of row ``y`` (rows[0] … rows[-1] + 1)."""
    n = rows.shape[0]
    rmin = rows[0]
    rmax = rows[n - 1]
    starts = np.empty(rmax - rmin + 2, np.int64)
    k = 0
    for y in range(rmin, rmax + 2):
        while k < n and rows[k] < y:
            k += 1
        starts[y - rmin] = k
    return starts


@nb.njit(cache=True, nogil=True)
def identity_kernel(n):
    """``[0, 1, …, n - 1]`` (int64): a union-find's initial parents."""
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = i
    return out


@nb.njit(cache=True, nogil=True)
def head_kernel(buf, n):
    """A copy of ``buf[:n]`` (int64), the trimmed result of a kernel that filled a
    buffer: one small kernel rather than slice-and-copy code in each caller."""
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = buf[i]
    return out


@nb.njit(cache=True, nogil=True)
def argsort_kernel(keys, n):
    """Stable argsort of ``keys[:n]`` (int64): a bottom-up merge sort, equal keys keep
    their order (``np.argsort(keys[:n], kind="stable")``)."""
    order = identity_kernel(n)
    tmp = np.empty(n, np.int64)
    step = 1
    while step < n:
        lo = 0
        while lo < n:
            mid = min(lo + step, n)
            hi = min(lo + 2 * step, n)
            i = lo
            j = mid
            k = lo
            while i < mid and j < hi:
                if keys[order[j]] < keys[order[i]]:
                    tmp[k] = order[j]
                    j += 1
                else:
                    tmp[k] = order[i]
                    i += 1
                k += 1
            while i < mid:
                tmp[k] = order[i]
                i += 1
                k += 1
            while j < hi:
                tmp[k] = order[j]
                j += 1
                k += 1
            lo = hi
        order, tmp = tmp, order
        step *= 2
    return order


@nb.njit(cache=True, nogil=True)
def _grown(buf):
    """``buf`` copied into an array twice as long (+16)."""
    out = np.empty(2 * buf.shape[0] + 16, np.int64)
    for i in range(buf.shape[0]):
        out[i] = buf[i]
    return out


@nb.njit(cache=True, nogil=True)
def push_segment(buf_r, buf_a, buf_b, n, y, a, b):
    """Append segment ``(y, a, b)`` at ``n``, doubling the buffers when full; returns the
    buffers and the new count."""
    if n == buf_r.shape[0]:
        buf_r = _grown(buf_r)
        buf_a = _grown(buf_a)
        buf_b = _grown(buf_b)
    buf_r[n] = y
    buf_a[n] = a
    buf_b[n] = b
    return buf_r, buf_a, buf_b, n + 1
