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

import numpy as np

from postprocess._hole_kernels import fill_holes_kernel
from postprocess._segment_kernels import join_rows_kernel, split_rows_kernel


def fill_holes(
    runs: np.ndarray, height: int, width: int, connectivity: int = 8, max_hole: int | None = None
) -> np.ndarray:
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
