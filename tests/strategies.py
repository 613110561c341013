"""Hypothesis strategies for masks and runs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64]


@st.composite
def masks(draw, max_side: int = 40, dtypes=DTYPES, min_side: int = 1) -> np.ndarray:
    """Random 2-D masks: empty, full, single pixels (incl. the last), sparse or dense noise,
    blocks and row-crossing stripes; any integer/bool dtype."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    dtype = draw(st.sampled_from(dtypes))
    kind = draw(st.sampled_from(["empty", "full", "pixel", "last", "noise", "blocks", "stripe"]))
    m = np.zeros((h, w), np.uint8)
    if kind == "full":
        m[:] = 1
    elif kind == "pixel":
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = 1
    elif kind == "last":
        m[-1, -1] = 1
        if draw(st.booleans()):
            m.reshape(-1)[-draw(st.integers(1, h * w)) :] = 1
    elif kind == "noise":
        p = draw(st.sampled_from([0.02, 0.2, 0.5, 0.9]))
        seed = draw(st.integers(0, 2**32 - 1))
        m[:] = np.random.default_rng(seed).random((h, w)) < p
    elif kind == "blocks":
        for _ in range(draw(st.integers(1, 4))):
            y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
            y1, x1 = draw(st.integers(y0, h)), draw(st.integers(x0, w))
            m[y0:y1, x0:x1] = 1
    elif kind == "stripe":
        flat = m.reshape(-1)
        a = draw(st.integers(0, h * w - 1))
        flat[a : draw(st.integers(a, h * w))] = 1
    value = draw(st.sampled_from([1, 2, 255])) if dtype is not np.bool_ else 1
    out = (m * value).astype(dtype)
    if draw(st.booleans()) and h > 1 and w > 1:
        # a non-contiguous view with the same content
        big = np.zeros((h, 2 * w), dtype)
        big[:, ::2] = out
        out = big[:, ::2]
    return out


@st.composite
def canonical_runs(draw, npix: int | None = None, max_runs: int = 30) -> tuple[np.ndarray, int]:
    """Canonical runs and the pixel count they live in."""
    npix = npix or draw(st.integers(1, 5000))
    k = draw(st.integers(0, max_runs))
    cuts = sorted(set(draw(st.lists(st.integers(0, npix), min_size=2 * k, max_size=2 * k))))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    runs = np.array(cuts, np.int64).reshape(-1, 2)
    runs = runs[runs[:, 1] > runs[:, 0]]
    # drop touching pairs' shared boundary by merging (canonical form)
    from core.runs import normalize

    return normalize(runs), npix


def dense_stack(n: int, shape: tuple[int, int], seed: int, p: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random(shape) < p).astype(np.uint8) for _ in range(n)]
