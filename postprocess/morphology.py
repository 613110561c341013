"""Opening and closing by a disk, on row segments.

The disk of radius r is every offset (dy, dx) with dy² + dx² <= r². The kernels
(``postprocess._morphology_kernels``) take, per mask, the cheaper of two exact methods: row by
row (2r + 1 lines of the disk per row: cheap for small radii) or by squared Euclidean
distances in integers on the mask's bounding box (``postprocess._distance_kernels``: the
box's pixels whatever the radius; a closing adds r columns of the disks' edge either side).
So the cost never grows beyond what the image's size allows.

Border handling: the mask lies in an infinite plane whose pixels outside the image are
background, and intermediate results are not cut at the image border; only the final
result is (closing can reach outside). Hence
- ``opening(r)`` equals ``scipy.ndimage.binary_opening(mask, disk)`` (whose border value
  0 is the same assumption), and
- ``closing(r)`` equals ``binary_closing(np.pad(mask, r), disk)[r:-r, r:-r]``: unlike
  scipy's unpadded closing it never removes object pixels near the border (closing only
  adds pixels).

Radii beyond the image: a radius above ``max(height, width)`` acts as ``max(height,
width)`` (``effective_radius``). For an opening this changes nothing (a disk wider than the
image's shorter side fits nowhere: the opening is empty). A closing by ever larger disks
never settles: whether a pixel between two mask pixels is filled depends on how integer
points fall near the circle (two pixels a diagonal step apart on either side of it: filled
for r = 16, not for r = 17, 99, 577, …, the solutions of r² - 2k² = 1), and following that
would cost the radius, not the image; so the radius is bounded there.
"""

from __future__ import annotations

import numpy as np

from postprocess._morphology_kernels import close_kernel, open_kernel
from postprocess._segment_kernels import join_rows_kernel, split_rows_kernel


def effective_radius(radius: int, height: int, width: int, name: str = "radius") -> int:
    """The radius the kernels use for ``radius``: itself up to ``max(height, width)``, that
    bound beyond (see the module docstring); any size of Python int is accepted, so that no
    kernel sees one that overflows int64.

    Raises
    ------
    ValueError
        ``radius`` is negative or not an integer (the message names ``name``).

    Examples
    --------
    >>> effective_radius(3, 64, 48), effective_radius(10**30, 64, 48)
    (3, 64)
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {radius!r}")
    if radius < 0:
        raise ValueError(f"{name} must be >= 0, got {radius}")
    return int(min(int(radius), max(int(height), int(width), 1)))


def _segments(runs, height, width, radius):
    """Row segments of ``runs`` and the effective radius, after the checks the kernels rely on:
    a radius >= 0 and runs inside the ``height`` × ``width`` image (the kernels would read out
    of bounds)."""
    radius = effective_radius(radius, height, width)
    runs = np.ascontiguousarray(runs, np.int64).reshape(-1, 2)
    if len(runs) and (runs[0, 0] < 0 or runs[-1, 1] > height * width):
        raise ValueError(f"runs outside the {height}×{width} image")
    return (*split_rows_kernel(runs, int(width)), radius)


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
    rows, x0, x1, radius = _segments(runs, height, width, radius)
    if radius == 0:
        return join_rows_kernel(rows, x0, x1, width)
    return join_rows_kernel(*open_kernel(rows, x0, x1, radius), width)


def closing(runs: np.ndarray, height: int, width: int, radius: int) -> np.ndarray:
    """Morphological closing by a disk of ``radius``, outside of the image taken as
    background (see the module docstring)."""
    rows, x0, x1, radius = _segments(runs, height, width, radius)
    if radius == 0:
        return join_rows_kernel(rows, x0, x1, width)
    return join_rows_kernel(*close_kernel(rows, x0, x1, radius, int(height), int(width)), width)
