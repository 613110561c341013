"""Set algebra on run arrays (``(n, 2)`` int64, 0-based ``[start, stop)``, canonical).

Canonical means sorted, non-overlapping and non-touching, as ``codec.parse_rle`` and
``codec.encode`` produce. Every function returns canonical runs and costs O(runs), never
O(pixels).
"""

from __future__ import annotations

import numpy as np

from core._run_kernels import (
    difference_kernel,
    intersection_area_kernel,
    intersection_kernel,
    normalize_kernel,
    union_kernel,
)


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


def iou_of_areas(inter, area_a, area_b, eps: float = EPS):
    """``(|A∩B| + eps) / (|A∪B| + eps)`` from the areas (numbers or arrays, elementwise), with
    ``|A∪B| = |A| + |B| - |A∩B|`` and Dice's ``eps``: two empty masks score 1.

    >>> round(iou_of_areas(2, 4, 4), 4)
    0.3333
    >>> iou_of_areas(0, 0, 0)
    1.0
    """
    return (inter + eps) / (area_a + area_b - inter + eps)


def dice(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> float:
    """Dice of two masks given as runs (``dice_of_areas``); two empty masks score 1.

    Examples
    --------
    >>> import numpy as np
    >>> round(dice(np.array([[0, 4]]), np.array([[2, 6]])), 4)
    0.5
    """
    return float(dice_of_areas(intersection_area(a, b), area(a), area(b), eps))


def iou(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> float:
    """Intersection over union of two masks given as runs (``iou_of_areas``); two empty
    masks score 1.

    Examples
    --------
    >>> import numpy as np
    >>> round(iou(np.array([[0, 4]]), np.array([[2, 6]])), 4)
    0.3333
    """
    return float(iou_of_areas(intersection_area(a, b), area(a), area(b), eps))


def from_rows(rows: np.ndarray, x0: np.ndarray, x1: np.ndarray, width: int) -> np.ndarray:
    """Canonical runs from one interval per row: pixels ``x0[i] <= x < x1[i]`` of row
    ``rows[i]`` (already clipped to ``[0, width]``); empty intervals are dropped."""
    rows = np.asarray(rows, np.int64)
    keep = np.asarray(x1) > np.asarray(x0)
    base = rows[keep] * width
    r = np.stack([base + np.asarray(x0, np.int64)[keep], base + np.asarray(x1, np.int64)[keep]], 1)
    return normalize(r)
