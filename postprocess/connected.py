"""Connected components on runs: union-find over row segments that touch in adjacent rows.

Components are numbered in raster order of their first pixel, exactly as
``scipy.ndimage.label`` numbers them (from 0 here, from 1 there).
"""

from __future__ import annotations

import numpy as np

from postprocess._component_kernels import label_kernel
from postprocess._segment_kernels import join_rows_kernel, split_rows_kernel


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
