"""Hole filling on runs.

A hole is a connected region of background that does not reach the image border, with the
connectivity dual to the objects': objects 8-connected → background 4-connected (the
default, ``scipy.ndimage.binary_fill_holes(mask)``), objects 4-connected → background
8-connected (``binary_fill_holes(mask, structure=np.ones((3, 3)))``). Duality keeps a
closed outline closed: a diagonal staircase encloses its inside exactly when it is one
object.

Only background between two object segments of one row can belong to a hole: the gaps
before the first and after the last segment of a row reach the left/right border, and a
row next to a row without objects (or on the top/bottom edge) touches background that
reaches the border. So the work is a union-find over those gaps, never over pixels.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from postprocess.rows import find, join_rows_kernel, link_rows_kernel, split_rows_kernel


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
    gap_after = np.full(n, -1, np.int64)  # interior gap following object segment k
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
    parent = np.arange(g)
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
    m = 0
    k = 0
    while k < n:
        out_r[m] = rows[k]
        out_a[m] = x0[k]
        while gap_after[k] >= 0 and filled[gap_after[k]]:
            k += 1
        out_b[m] = x1[k]
        m += 1
        k += 1
    return out_r[:m].copy(), out_a[:m].copy(), out_b[:m].copy(), n_holes


def fill_holes(runs: np.ndarray, height: int, width: int, connectivity: int = 8,
               max_hole: int | None = None) -> np.ndarray:
    """Canonical runs with the holes filled (see the module docstring).

    Parameters
    ----------
    runs : (n, 2) int64 array
        Canonical runs of the mask.
    height, width : int
        Image size.
    connectivity : {8, 4}
        The objects' connectivity; the background's is the other one.
    max_hole : int, optional
        Fill only holes of at most this many pixels.

    Returns
    -------
    (m, 2) int64 array

    Examples
    --------
    >>> import numpy as np
    >>> ring = np.array([[0, 3], [3, 4], [5, 6], [6, 9]])  # 3×3 with a hole in the middle
    >>> fill_holes(ring, 3, 3).tolist(), fill_holes(ring, 3, 3, max_hole=0).tolist()
    ([[0, 9]], [[0, 4], [5, 9]])
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, not {connectivity!r}")
    rows, x0, x1 = split_rows_kernel(np.ascontiguousarray(runs, np.int64).reshape(-1, 2), width)
    limit = -1 if max_hole is None else int(max_hole)
    rows, x0, x1, _ = fill_holes_kernel(rows, x0, x1, height, width, connectivity == 8, limit)
    return join_rows_kernel(rows, x0, x1, width)
