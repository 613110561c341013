"""Weighted voting on runs: one sweep over the run boundaries of all sources.

Hard voting (equal weights), weighted fusion (per-class weights) and union/intersection
(``min_votes``) are all this one kernel. Between two consecutive boundaries the set of
sources covering a pixel is constant, so the decision is made once per segment, never per
pixel. The weighted sum is accumulated over the active sources in source order, exactly as
a dense ``acc += w_i * m_i`` loop would, so results match a dense reference bit for bit,
ties included (the comparison is strict: ``acc / Σw > threshold``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np

_INF = np.iinfo(np.int64).max


@nb.njit(cache=True, nogil=True)
def vote_kernel(runs, bounds, weights, threshold, min_votes):
    """Runs kept by the vote. ``runs[bounds[i]:bounds[i+1]]`` are source ``i``'s canonical
    runs; keep where ``votes >= min_votes`` if ``min_votes > 0``, else where
    ``Σ active weights / Σ weights > threshold``."""
    n = bounds.shape[0] - 1
    total = 0.0
    for i in range(n):
        total += weights[i]
    ptr = bounds[:-1].copy()
    out = np.empty((2 * runs.shape[0] + 1, 2), np.int64)
    k = 0
    pos = _INF
    for i in range(n):
        if bounds[i] < bounds[i + 1]:
            pos = min(pos, runs[bounds[i], 0])
    while pos != _INF:
        nxt = _INF
        acc = 0.0
        votes = 0
        for i in range(n):
            p = ptr[i]
            while p < bounds[i + 1] and runs[p, 1] <= pos:
                p += 1
            ptr[i] = p
            if p < bounds[i + 1]:
                if runs[p, 0] <= pos:
                    acc += weights[i]
                    votes += 1
                    nxt = min(nxt, runs[p, 1])
                else:
                    nxt = min(nxt, runs[p, 0])
        if nxt == _INF:
            break
        keep = votes >= min_votes if min_votes > 0 else (votes > 0 and acc / total > threshold)
        if keep:
            if k > 0 and out[k - 1, 1] == pos:
                out[k - 1, 1] = nxt
            else:
                out[k, 0] = pos
                out[k, 1] = nxt
                k += 1
        pos = nxt
    return out[:k].copy()


def vote(
    sources: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    threshold: float = 0.5,
    min_votes: int | None = None,
) -> np.ndarray:
    """Vote on one mask given as canonical run arrays, one per source.

    Keeps a pixel when ``Σ wᵢ·mᵢ / Σ wᵢ > threshold`` (equal weights by default: a hard
    vote), or, with ``min_votes=K``, when at least K sources cover it.
    """
    n = len(sources)
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (n,):
        raise ValueError(f"{n} sources but {w.size} weights")
    if (w < 0).any() or not w.sum() > 0:
        raise ValueError("weights must be >= 0 with a positive sum")
    if min_votes is not None and not 1 <= min_votes <= n:
        raise ValueError(f"min_votes must be between 1 and {n}")
    runs, bounds = stack_runs(sources)
    return vote_kernel(runs, bounds, w, float(threshold), int(min_votes or 0))


def stack_runs(sources: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate run arrays and return them with their ``bounds`` offsets."""
    bounds = np.zeros(len(sources) + 1, np.int64)
    np.cumsum([len(r) for r in sources], out=bounds[1:])
    if not sources:
        return np.zeros((0, 2), np.int64), bounds
    return np.ascontiguousarray(np.concatenate([np.asarray(r, np.int64).reshape(-1, 2) for r in sources])), bounds
