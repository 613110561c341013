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

import numpy as np

from core._run_kernels import vote_kernel
from core.sweep import stack_runs


def vote(
    sources: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    threshold: float = 0.5,
    min_votes: int | None = None,
) -> np.ndarray:
    """Vote on one mask given as canonical run arrays, one per source.

    Keeps a pixel when ``Σ wᵢ·mᵢ / Σ wᵢ > threshold`` (equal weights by default: a hard
    vote), or, with ``min_votes=K``, when at least K sources cover it.

    Parameters
    ----------
    sources : sequence of (n, 2) int64 arrays
        Canonical runs, one per source.
    weights : sequence of float, optional
        One per source, >= 0 with a positive sum (default: all 1).
    threshold : float
        The weighted share to exceed (strict).
    min_votes : int, optional
        Keep where at least this many sources cover the pixel (1: union, n: intersection).

    Returns
    -------
    (m, 2) int64 array
        Canonical runs of the voted mask.

    Raises
    ------
    ValueError
        Weights of the wrong length or sign, ``min_votes`` outside [1, n].

    Examples
    --------
    >>> import numpy as np
    >>> a, b, c = np.array([[0, 4]]), np.array([[2, 6]]), np.array([[3, 8]])
    >>> vote([a, b, c]).tolist(), vote([a, b, c], min_votes=1).tolist()
    ([[2, 6]], [[0, 8]])
    >>> vote([a, b, c], weights=[1, 1, 3]).tolist()
    [[3, 8]]
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
