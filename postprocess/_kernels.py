"""Every numba kernel of ``postprocess`` (private: call the checked wrappers of
``postprocess.clean``, ``.components``, ``.holes`` and ``.morphology``).

A run compiles only the cleaning steps its rules take: ``Cleaner`` calls ``clean_kernel``,
whose steps not taken are ``None`` arguments that numba prunes before typing (one
specialisation per combination of steps), and ``clean`` calls one kernel per step. Each
kernel compiles the helpers it calls into itself, and numba's ``cache=True`` checks a cached
kernel only against its own file; with all of them in this one file, an edit to any
invalidates every cache that depends on it. ``tests/test_kernels.py`` checks that no kernel
calls a kernel of another file. Each kernel keeps its plain-Python twin as ``kernel.py_func``.

Cold compile time is kept down (issue 15): every kernel other than ``clean_kernel`` has one
signature (int64 arrays, C-contiguous and writable, int64 scalars, bool flags;
``postprocess.clean`` casts at the boundary); counters passed to other kernels start as
``np.int64(0)`` (a literal ``0`` would compile a second specialisation for
``Literal[int](0)``); no kernel uses numpy functions whose numba implementations are costly
to compile (``np.argsort``, slice assignment, ``np.arange``, ``np.count_nonzero``, slicing
and copying a filled buffer): small loops and kernels do the same; and ``clean_kernel``
calls the step kernels itself rather than through a wrapper kernel, since compiling a
kernel re-optimises everything it calls, once per level of calls.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# --- row-segment form, the working form of every cleaning kernel -------------------------
#
# Flat runs (``(n, 2)`` ``[start, stop)`` over the row-major H×W mask) may cross row ends;
# cleaning needs rows. A mask in row-segment form is three int64 arrays ``(rows, x0, x1)``:
# segment ``k`` covers pixels ``x0[k] <= x < x1[k]`` of row ``rows[k]``, sorted by
# ``(row, x0)``, and segments of one row never touch. The first segment of a set of
# segments is therefore its first pixel in raster order.
#
# Segments of consecutive rows are linked with a union-find whose root is always the
# smallest member index, so a component's root is its first segment in raster order.


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


# --- components (wrappers: postprocess.components) ----------------------------------------


@nb.njit(cache=True, nogil=True)
def label_kernel(rows, x0, x1, conn8):
    """Component of every segment (0, 1, … in raster order of first pixel) and the area of
    each component. ``conn8``: diagonal contact connects (8-connectivity), else 4."""
    n = rows.shape[0]
    parent = identity_kernel(n)
    link_rows_kernel(rows, x0, x1, 1 if conn8 else 0, parent)
    labels = np.empty(n, np.int64)
    areas = np.zeros(n, np.int64)
    m = np.int64(0)
    for i in range(n):
        r = find(parent, i)
        if r == i:
            labels[i] = m
            m += 1
        else:
            labels[i] = labels[r]  # r < i: the root is the set's first segment
        areas[labels[i]] += x1[i] - x0[i]
    return labels, head_kernel(areas, m)


@nb.njit(cache=True, nogil=True)
def select_kernel(areas, min_size, keep):
    """Which components survive: area >= ``min_size``, then (``keep`` > 0) only the
    ``keep`` largest of those; equal areas rank by raster order (lower label first).
    Returns the mask of survivors and the number of components removed."""
    kept = areas >= min_size
    if keep > 0 and areas.shape[0] > keep:
        order = argsort_kernel(-areas, areas.shape[0])  # stable: ties stay in label order
        count = 0
        for j in order:
            if kept[j]:
                if count < keep:
                    count += 1
                else:
                    kept[j] = False
    removed = 0
    for j in range(kept.shape[0]):
        if not kept[j]:
            removed += 1
    return kept, removed


@nb.njit(cache=True, nogil=True)
def filter_kernel(rows, x0, x1, labels, kept):
    """The segments whose component is kept."""
    n = 0
    for i in range(rows.shape[0]):
        if kept[labels[i]]:
            n += 1
    r = np.empty(n, np.int64)
    a = np.empty(n, np.int64)
    b = np.empty(n, np.int64)
    k = 0
    for i in range(rows.shape[0]):
        if kept[labels[i]]:
            r[k] = rows[i]
            a[k] = x0[i]
            b[k] = x1[i]
            k += 1
    return r, a, b


@nb.njit(cache=True, nogil=True)
def select_components_kernel(rows, x0, x1, conn8, min_size, keep):
    """The cleaning's component step: the segments of the components ``select_kernel``
    keeps, and how many components were removed."""
    labels, areas = label_kernel(rows, x0, x1, conn8)
    kept, removed = select_kernel(areas, min_size, keep)
    if removed:
        rows, x0, x1 = filter_kernel(rows, x0, x1, labels, kept)
    return rows, x0, x1, removed


# --- holes (wrappers: postprocess.holes) --------------------------------------------------


@nb.njit(cache=True, nogil=True)
def fill_holes_kernel(rows, x0, x1, height, width, conn8, max_hole):
    """Fill the holes of a mask in row segments; ``max_hole`` >= 0 fills only holes of at
    most that many pixels (-1: all). Returns the new segments and the number of holes filled."""
    n = rows.shape[0]
    cap = 2 * n + 1  # a row of k segments has at most k + 1 gaps
    grow = np.empty(cap, np.int64)
    gx0 = np.empty(cap, np.int64)
    gx1 = np.empty(cap, np.int64)
    border = np.zeros(cap, np.bool_)
    gap_after = np.empty(n, np.int64)  # interior gap following object segment k (-1: none)
    for k in range(n):
        gap_after[k] = -1
    g = 0
    i = 0
    while i < n:
        r = rows[i]
        cs = i
        while i < n and rows[i] == r:
            i += 1
        edge = r == 0 or r == height - 1 or cs == 0 or rows[cs - 1] != r - 1 or i == n or rows[i] != r + 1
        if x0[cs] > 0:
            grow[g] = r
            gx0[g] = 0
            gx1[g] = x0[cs]
            border[g] = True
            g += 1
        for k in range(cs, i - 1):
            grow[g] = r
            gx0[g] = x1[k]
            gx1[g] = x0[k + 1]
            border[g] = edge
            gap_after[k] = g
            g += 1
        if x1[i - 1] < width:
            grow[g] = r
            gx0[g] = x1[i - 1]
            gx1[g] = width
            border[g] = True
            g += 1
    parent = identity_kernel(g)
    link_rows_kernel(grow[:g], gx0[:g], gx1[:g], 0 if conn8 else 1, parent)
    hole_area = np.zeros(g, np.int64)
    for k in range(g):
        root = find(parent, k)
        if border[k]:
            border[root] = True
        hole_area[root] += gx1[k] - gx0[k]
    filled = np.zeros(g, np.bool_)
    n_holes = 0
    for k in range(g):
        root = find(parent, k)
        if not border[root] and (max_hole < 0 or hole_area[root] <= max_hole):
            filled[k] = True
            if root == k:
                n_holes += 1
    out_r = np.empty(n, np.int64)
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    m = np.int64(0)
    k = 0
    while k < n:
        out_r[m] = rows[k]
        out_a[m] = x0[k]
        while gap_after[k] >= 0 and filled[gap_after[k]]:
            k += 1
        out_b[m] = x1[k]
        m += 1
        k += 1
    return head_kernel(out_r, m), head_kernel(out_a, m), head_kernel(out_b, m), n_holes


# --- morphology (wrappers: postprocess.morphology) ----------------------------------------


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


# --- clean (the steps: postprocess.clean) ------------------------------------------------


@nb.njit(cache=True, nogil=True)
def finish_kernel(runs, rows, x0, x1, width):
    """The cleaning's last step: the cleaned segments as canonical runs, and the areas of
    the mask before (``runs``) and after (the pixels removed and added follow from
    ``|in ∩ out|``, which ``postprocess.clean.Cleaner`` counts with ``core``'s kernel)."""
    out = join_rows_kernel(rows, x0, x1, width)
    area_in = 0
    for j in range(runs.shape[0]):
        area_in += runs[j, 1] - runs[j, 0]
    area_out = 0
    for j in range(out.shape[0]):
        area_out += out[j, 1] - out[j, 0]
    return out, area_in, area_out


@nb.njit(cache=True, nogil=True)
def overlap_kernel(a, b):
    """``|A ∩ B|`` of two canonical run arrays (the pixels kept, for the cleaning's counts):
    ``core``'s ``intersection_area_kernel`` again, since a kernel may call only kernels of its
    own file (numba checks a cached kernel against its own file only)."""
    i = 0
    j = 0
    total = np.int64(0)
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if hi > lo:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


@nb.njit(cache=True, nogil=True)
def clean_kernel(runs, bounds, height, width, open_r, close_r, conn8, min_size, keep, max_hole):
    """The whole pipeline on each mask ``runs[bounds[k]:bounds[k+1]]`` (one class's rules), in
    one call: the postprocess command passes a block of masks, ``Cleaner`` one. A step whose
    argument is ``None`` is left out before compilation (numba prunes ``is None`` branches on
    the argument's type), so each combination of steps is its own specialisation compiling
    only its steps: ``open_r``/``close_r`` the radii, ``keep`` (0: all) with ``min_size`` the
    component step, ``max_hole`` (-1: any size) the hole filling. Returns the cleaned runs
    (mask ``k``: ``out[out_bounds[k]:out_bounds[k+1]]``), ``out_bounds`` and per mask
    (components removed, holes filled, area before, area after, area kept)."""
    m = bounds.shape[0] - 1
    stats = np.zeros((m, 5), np.int64)
    out_bounds = np.zeros(m + 1, np.int64)
    out = np.empty((max(runs.shape[0], 16), 2), np.int64)
    n = np.int64(0)
    for k in range(m):
        mask = runs[bounds[k] : bounds[k + 1]]
        rows, x0, x1 = split_rows_kernel(mask, width)
        # Opening, closing and the component step as in open_kernel, close_kernel and
        # select_components_kernel, written out, and the loop over masks here rather than
        # around a one-mask kernel: compiling a kernel re-optimises everything it calls, so
        # each level of calls costs again.
        if open_r is not None:
            hw = disk_half_widths(open_r)
            rows, x0, x1 = erode_kernel(rows, x0, x1, hw)
            rows, x0, x1 = dilate_kernel(rows, x0, x1, hw)
        if close_r is not None:
            hw = disk_half_widths(close_r)
            rows, x0, x1 = dilate_kernel(rows, x0, x1, hw)
            rows, x0, x1 = erode_kernel(rows, x0, x1, hw)
            rows, x0, x1 = clip_kernel(rows, x0, x1, height, width)
        removed = 0
        if keep is not None:
            labels, areas = label_kernel(rows, x0, x1, conn8)
            kept, removed = select_kernel(areas, min_size, keep)
            if removed:
                rows, x0, x1 = filter_kernel(rows, x0, x1, labels, kept)
        holes = 0
        if max_hole is not None:
            rows, x0, x1, holes = fill_holes_kernel(rows, x0, x1, height, width, conn8, max_hole)
        cleaned, area_in, area_out = finish_kernel(mask, rows, x0, x1, width)
        if n + cleaned.shape[0] > out.shape[0]:
            bigger = np.empty((2 * (n + cleaned.shape[0]), 2), np.int64)
            for j in range(n):  # a loop: slice assignment's checks cost seconds of compilation
                bigger[j, 0] = out[j, 0]
                bigger[j, 1] = out[j, 1]
            out = bigger
        for j in range(cleaned.shape[0]):
            out[n, 0] = cleaned[j, 0]
            out[n, 1] = cleaned[j, 1]
            n += 1
        out_bounds[k + 1] = n
        stats[k, 0] = removed
        stats[k, 1] = holes
        stats[k, 2] = area_in
        stats[k, 3] = area_out
        stats[k, 4] = overlap_kernel(mask, cleaned)
    return out[:n], out_bounds, stats
