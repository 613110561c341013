"""Kernels of connected components on row segments: labels, the components kept by size and
rank, and the filter that keeps them (private: see ``postprocess.connected``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from postprocess._segment_kernels import argsort_kernel, find, head_kernel, identity_kernel, link_rows_kernel


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
