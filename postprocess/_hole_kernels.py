"""The kernel of hole filling on row segments (private: see ``postprocess.holes``)."""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from postprocess._segment_kernels import find, head_kernel, identity_kernel, link_rows_kernel


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
