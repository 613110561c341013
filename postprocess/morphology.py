"""Opening and closing by a disk, on row segments.

The disk of radius r is every offset (dy, dx) with dy² + dx² <= r², i.e. on row offset dy
the columns |dx| <= h(dy) = floor(sqrt(r² - dy²)). Dilation widens each segment of row
y + dy by h(dy) and unions the results over dy; erosion shrinks them by h(dy) and
intersects. Cost follows the number of segments times 2r + 1, never the pixels.

Border handling: the mask lies in an infinite plane whose pixels outside the image are
background, and intermediate results are not cut at the image border; only the final
result is (closing can reach outside). Hence
- ``opening(r)`` equals ``scipy.ndimage.binary_opening(mask, disk)`` (whose border value
  0 is the same assumption), and
- ``closing(r)`` equals ``binary_closing(np.pad(mask, r), disk)[r:-r, r:-r]``: unlike
  scipy's unpadded closing it never removes object pixels near the border (closing only
  adds pixels).
"""

from __future__ import annotations

import numpy as np

from postprocess._morphology_kernels import close_kernel, open_kernel
from postprocess._segment_kernels import join_rows_kernel, split_rows_kernel


def _segments(runs, height, width, radius):
    """Row segments of ``runs``, after the checks the kernels rely on: a radius >= 0 and
    runs inside the ``height`` × ``width`` image (the kernels would read out of bounds)."""
    if radius < 0:
        raise ValueError("radius must be >= 0")
    runs = np.ascontiguousarray(runs, np.int64).reshape(-1, 2)
    if len(runs) and (runs[0, 0] < 0 or runs[-1, 1] > height * width):
        raise ValueError(f"runs outside the {height}×{width} image")
    return split_rows_kernel(runs, width)


def opening(runs: np.ndarray, height: int, width: int, radius: int) -> np.ndarray:
    """Morphological opening by a disk of ``radius`` (see the module docstring); the result
    lies inside the mask, so ``height`` only bounds the check of ``runs``.

    Examples
    --------
    >>> import numpy as np
    >>> block_and_dot = np.array([[0, 3], [4, 7], [8, 11], [14, 15]])  # 4×4: a 3×3 block, a lone pixel
    >>> opening(block_and_dot, 4, 4, 1).tolist()  # the disk of radius 1 is a plus: corners go, so does the dot
    [[1, 2], [4, 7], [9, 10]]
    """
    rows, x0, x1 = _segments(runs, height, width, radius)
    if radius == 0:
        return join_rows_kernel(rows, x0, x1, width)
    return join_rows_kernel(*open_kernel(rows, x0, x1, radius), width)


def closing(runs: np.ndarray, height: int, width: int, radius: int) -> np.ndarray:
    """Morphological closing by a disk of ``radius``, outside of the image taken as
    background (see the module docstring)."""
    rows, x0, x1 = _segments(runs, height, width, radius)
    if radius == 0:
        return join_rows_kernel(rows, x0, x1, width)
    return join_rows_kernel(*close_kernel(rows, x0, x1, radius, height, width), width)
