"""Bilinear resampling exactly as ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` computes it on CPU, fused with the weighted mean, the threshold and
run encoding so that a full-size float map is never built.

torch's recipe, reproduced in float32: ``scale = in / out``; for output index ``i``,
``src = max(fma(scale, i + 0.5, -0.5), 0)``, ``i0 = min(floor(src), in - 1)``,
``i1 = i0 + (i0 < in - 1)``, ``l1 = clamp(src - i0, 0, 1)``, ``l0 = 1 - l1`` (same size:
``i0 = i1 = i``, ``l0 = 1``, ``l1 = 0``). A pixel is ``t0 * l0y + t1 * l1y`` with
``tk = a[yk, x0] * l0x + a[yk, x1] * l1x`` (columns first, then rows).

The kernel works on one class of one image over a rectangle of the canvas. Every layer is
interpolated horizontally once per source row (cached, reused by the output rows that need
that row) and then vertically; the weighted sum is compared to the threshold in the same
pass and written as runs. The kernels themselves (``bbox_above``, ``fused_kernel``,
``histogram_kernel``) are in ``ensemble._kernels``; ``ensemble.soft_image`` calls them.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=256)
def axis_table(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(i0, i1, l0, l1)`` for resampling an axis of ``n_in`` samples to ``n_out``
    (int64, int64, float32, float32; read-only, cached)."""
    i = np.arange(n_out)
    if n_in == n_out:
        i0 = i.astype(np.int64)
        i1 = i0.copy()
        l0 = np.ones(n_out, np.float32)
        l1 = np.zeros(n_out, np.float32)
    else:
        f = np.float32
        scale = f(n_in) / f(n_out)
        # torch's build contracts ``scale * (i + 0.5) - 0.5`` into one fused multiply-add:
        # the float64 product of two float32 values is exact, so one rounding to float32
        # after the subtraction gives the same result.
        src = (np.float64(scale) * (i + 0.5) - 0.5).astype(f)
        src = np.maximum(src, f(0))
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = i0 + (i0 < n_in - 1)
        l1 = np.minimum(np.maximum(src - i0.astype(f), f(0)), f(1)).astype(f)
        l0 = (f(1) - l1).astype(f)
    for a in (i0, i1, l0, l1):
        a.flags.writeable = False
    return i0, i1, l0, l1
