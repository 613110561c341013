"""A sweep over the run boundaries of several sources at once.

Between two consecutive boundaries the set of sources covering a pixel is constant, so
run-space operations over many masks (voting, subset histograms) decide once per segment.
Sources are stacked: ``runs[bounds[i]:bounds[i+1]]`` are source ``i``'s canonical runs.

The sweep itself (``sweep_init``, ``sweep_step``) is inlined into its
kernels, so it lives with them in ``core._run_kernels``: the vote (``ensemble.mask_vote``), the
overlaps and the subset histograms (``evaluation.search.coverage``). Each source's next
boundary is kept, so a step looks again only at the sources with a boundary there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stack_runs(sources: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate run arrays and return them with their ``bounds`` offsets."""
    bounds = np.zeros(len(sources) + 1, np.int64)
    np.cumsum([len(r) for r in sources], out=bounds[1:])
    if not sources:
        return np.zeros((0, 2), np.int64), bounds
    return np.ascontiguousarray(np.concatenate([np.asarray(r, np.int64).reshape(-1, 2) for r in sources])), bounds
