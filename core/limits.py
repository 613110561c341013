"""The largest values a flag or a setting may give, checked before any kernel sees them.

Kernels count in int64. An image side beyond ``MAX_SIDE`` is refused (no mask that large is
read or written in practice, and its pixel count must stay far from int64's end); a count
(pixels, components, a radius, images) beyond ``MAX_COUNT`` is refused too, while any value
up to it is honoured — one beyond what an image can hold acts as the image itself (a radius
larger than the image, ``keep_largest`` larger than the number of components).
"""

from __future__ import annotations

import math

MAX_SIDE = 1 << 20
"""The largest image height or width: 1,048,576 pixels."""

MAX_COUNT = 1 << 62
"""The largest count a flag or setting may give."""

MAX_WORKERS = 1024
"""The most worker processes or threads a run may ask for."""


def finite(value: float, what: str) -> float:
    """``value`` when it is a finite number, else a ``ValueError`` naming ``what``."""
    if not math.isfinite(value):
        raise ValueError(f"{what}: {value} is not a finite number")
    return value
