"""Connected components on runs: union-find over row segments that touch in adjacent rows.

Components are numbered in raster order of their first pixel, exactly as
``scipy.ndimage.label`` numbers them (from 0 here, from 1 there).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from postprocess.rows import find, join_rows_kernel, link_rows_kernel, split_rows_kernel


@nb.njit(cache=True, nogil=True)
def label_kernel(rows, x0, x1, conn8):
    """Component of every segment (0, 1, … in raster order of first pixel) and the area of
    each component. ``conn8``: diagonal contact connects (8-connectivity), else 4."""
    n = rows.shape[0]
    parent = np.arange(n)
    link_rows_kernel(rows, x0, x1, 1 if conn8 else 0, parent)
    labels = np.empty(n, np.int64)
    areas = np.zeros(n, np.int64)
    m = 0
    for i in range(n):
        r = find(parent, i)
        if r == i:
            labels[i] = m
            m += 1
        else:
            labels[i] = labels[r]  # r < i: the root is the set's first segment
        areas[labels[i]] += x1[i] - x0[i]
    return labels, areas[:m].copy()


@nb.njit(cache=True, nogil=True)
def select_kernel(areas, min_size, keep):
    """Which components survive: area >= ``min_size``, then (``keep`` > 0) only the
    ``keep`` largest of those; equal areas rank by raster order (lower label first)."""
    kept = areas >= min_size
    if keep > 0 and areas.shape[0] > keep:
        order = np.argsort(-areas, kind="mergesort")  # stable: ties stay in label order
        count = 0
        for j in order:
            if kept[j]:
                if count < keep:
                    count += 1
                else:
                    kept[j] = False
    return kept


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


def _check_connectivity(connectivity: int) -> bool:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, not {connectivity!r}")
    return connectivity == 8


def components(runs: np.ndarray, width: int, connectivity: int = 8) -> list[np.ndarray]:
    """The connected components of a mask, each as canonical runs, in raster order of
    their first pixel (``scipy.ndimage.label`` order).

    Parameters
    ----------
    runs : (n, 2) int64 array
        Canonical runs of the mask.
    width : int
        Image width.
    connectivity : {8, 4}
        8: diagonal contact connects; 4: it does not.

    Returns
    -------
    list of (m, 2) int64 arrays

    Raises
    ------
    ValueError
        A connectivity other than 4 or 8.

    Examples
    --------
    >>> import numpy as np
    >>> diagonal = np.array([[0, 1], [4, 5]])  # 3 wide: pixels (0, 0) and (1, 1)
    >>> len(components(diagonal, 3)), len(components(diagonal, 3, connectivity=4))
    (1, 2)
    """
    conn8 = _check_connectivity(connectivity)
    rows, x0, x1 = split_rows_kernel(np.ascontiguousarray(runs, np.int64).reshape(-1, 2), width)
    labels, areas = label_kernel(rows, x0, x1, conn8)
    out = []
    for c in range(len(areas)):
        m = labels == c
        out.append(join_rows_kernel(rows[m], x0[m], x1[m], width))
    return out


def component_areas(runs: np.ndarray, width: int, connectivity: int = 8) -> np.ndarray:
    """Pixel count of each component, in raster order of their first pixel."""
    conn8 = _check_connectivity(connectivity)
    rows, x0, x1 = split_rows_kernel(np.ascontiguousarray(runs, np.int64).reshape(-1, 2), width)
    return label_kernel(rows, x0, x1, conn8)[1]
