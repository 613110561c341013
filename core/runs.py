"""Set algebra on run arrays (``(n, 2)`` int64, 0-based ``[start, stop)``, canonical).

Canonical means sorted, non-overlapping and non-touching, as ``codec.parse_rle`` and
``codec.encode`` produce. Every function returns canonical runs and costs O(runs), never
O(pixels).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _append(out, n, start, stop):
    """Append ``[start, stop)``, merging with the last run when they touch or overlap."""
    if n > 0 and start <= out[n - 1, 1]:
        if stop > out[n - 1, 1]:
            out[n - 1, 1] = stop
        return n
    out[n, 0] = start
    out[n, 1] = stop
    return n + 1


@nb.njit(cache=True, nogil=True)
def normalize_kernel(runs):
    """Sort arbitrary intervals and merge overlapping or touching ones; drop empty ones."""
    order = np.argsort(runs[:, 0], kind="mergesort")
    out = np.empty_like(runs)
    n = 0
    for j in order:
        if runs[j, 1] > runs[j, 0]:
            n = _append(out, n, runs[j, 0], runs[j, 1])
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def union_kernel(a, b):
    out = np.empty((a.shape[0] + b.shape[0], 2), np.int64)
    i = 0
    j = 0
    n = 0
    while i < a.shape[0] or j < b.shape[0]:
        if j == b.shape[0] or (i < a.shape[0] and a[i, 0] <= b[j, 0]):
            n = _append(out, n, a[i, 0], a[i, 1])
            i += 1
        else:
            n = _append(out, n, b[j, 0], b[j, 1])
            j += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def intersection_kernel(a, b):
    out = np.empty((a.shape[0] + b.shape[0], 2), np.int64)
    i = 0
    j = 0
    n = 0
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if lo < hi:
            out[n, 0] = lo
            out[n, 1] = hi
            n += 1
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def difference_kernel(a, b):
    out = np.empty((a.shape[0] + b.shape[0], 2), np.int64)
    n = 0
    j = 0
    for i in range(a.shape[0]):
        lo = a[i, 0]
        hi = a[i, 1]
        while j < b.shape[0] and b[j, 1] <= lo:
            j += 1
        k = j
        while k < b.shape[0] and b[k, 0] < hi:
            if b[k, 0] > lo:
                out[n, 0] = lo
                out[n, 1] = b[k, 0]
                n += 1
            lo = max(lo, b[k, 1])
            if lo >= hi:
                break
            k += 1
        if lo < hi:
            out[n, 0] = lo
            out[n, 1] = hi
            n += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def intersection_area_kernel(a, b):
    i = 0
    j = 0
    total = 0
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if lo < hi:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


def _as_runs(r: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(r, np.int64).reshape(-1, 2)


def normalize(runs: np.ndarray) -> np.ndarray:
    """Canonical runs from arbitrary (unsorted, overlapping, empty) intervals."""
    return normalize_kernel(_as_runs(runs))


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels in ``a`` or ``b``."""
    return union_kernel(_as_runs(a), _as_runs(b))


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels in both ``a`` and ``b``."""
    return intersection_kernel(_as_runs(a), _as_runs(b))


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels in ``a`` and not in ``b``."""
    return difference_kernel(_as_runs(a), _as_runs(b))


def area(runs: np.ndarray) -> int:
    """Number of pixels covered."""
    runs = _as_runs(runs)
    return int((runs[:, 1] - runs[:, 0]).sum())


def intersection_area(a: np.ndarray, b: np.ndarray) -> int:
    """``|a ∩ b|`` without building the intersection."""
    return int(intersection_area_kernel(_as_runs(a), _as_runs(b)))


EPS = 1e-4
"""The Dice smoothing term: two empty masks score 1."""


def dice_of_areas(inter, area_a, area_b, eps: float = EPS):
    """``(2|A∩B| + eps) / (|A| + |B| + eps)`` from the areas (numbers or arrays, elementwise):
    the one Dice formula every score of the toolbox uses."""
    return (2 * inter + eps) / (area_a + area_b + eps)


def dice(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> float:
    """Dice of two masks given as runs (``dice_of_areas``); two empty masks score 1.

    Examples
    --------
    >>> import numpy as np
    >>> round(dice(np.array([[0, 4]]), np.array([[2, 6]])), 4)
    0.5
    """
    return float(dice_of_areas(intersection_area(a, b), area(a), area(b), eps))


def from_rows(rows: np.ndarray, x0: np.ndarray, x1: np.ndarray, width: int) -> np.ndarray:
    """Canonical runs from one interval per row: pixels ``x0[i] <= x < x1[i]`` of row
    ``rows[i]`` (already clipped to ``[0, width]``); empty intervals are dropped."""
    rows = np.asarray(rows, np.int64)
    keep = np.asarray(x1) > np.asarray(x0)
    base = rows[keep] * width
    r = np.stack([base + np.asarray(x0, np.int64)[keep], base + np.asarray(x1, np.int64)[keep]], 1)
    return normalize(r)
