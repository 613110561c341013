"""A sweep over the run boundaries of several sources at once.

Between two consecutive boundaries the set of sources covering a pixel is constant, so
run-space operations over many masks (voting, subset histograms) decide once per segment.
Sources are stacked: ``runs[bounds[i]:bounds[i+1]]`` are source ``i``'s canonical runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np

INF = np.iinfo(np.int64).max


@nb.njit(cache=True, nogil=True)
def sweep_start(runs, bounds):
    """The first boundary of all sources, or ``INF`` when every source is empty."""
    pos = INF
    for i in range(bounds.shape[0] - 1):
        if bounds[i] < bounds[i + 1]:
            pos = min(pos, runs[bounds[i], 0])
    return pos


@nb.njit(cache=True, nogil=True)
def sweep_step(runs, bounds, ptr, pos, active):
    """Advance each source's pointer ``ptr[i]`` to ``pos``, set ``active[i]`` when source
    ``i`` covers ``pos``, and return the next boundary after ``pos`` (``INF`` at the end)."""
    nxt = INF
    for i in range(bounds.shape[0] - 1):
        p = ptr[i]
        while p < bounds[i + 1] and runs[p, 1] <= pos:
            p += 1
        ptr[i] = p
        active[i] = False
        if p < bounds[i + 1]:
            if runs[p, 0] <= pos:
                active[i] = True
                nxt = min(nxt, runs[p, 1])
            else:
                nxt = min(nxt, runs[p, 0])
    return nxt


def stack_runs(sources: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate run arrays and return them with their ``bounds`` offsets."""
    bounds = np.zeros(len(sources) + 1, np.int64)
    np.cumsum([len(r) for r in sources], out=bounds[1:])
    if not sources:
        return np.zeros((0, 2), np.int64), bounds
    return np.ascontiguousarray(np.concatenate([np.asarray(r, np.int64).reshape(-1, 2) for r in sources])), bounds
