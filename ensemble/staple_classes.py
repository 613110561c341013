"""The classes a vote fuses by STAPLE (the ``staple:`` section of its settings): pooled over the
whole input set, one table of accepted vote patterns per class (``quality.tables``), which
``ensemble.vote_plan.VotePlan`` applies image by image in place of the vote."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import UsageError
from core.sources import bar


def staple_tables(aligned, regions: Sequence[str | None], names: Sequence[str], progress=None):
    """``(tables, lines)``: per STAPLE class index the ``2**S`` accepted patterns, and one line
    per such class naming its region and each source's estimated sensitivity. One pass over
    the images (their histograms); refused in a cluster chunk, which holds part of the set."""
    from core.stream import current_selection
    from quality import MAX_SOURCES
    from quality.tables import class_estimate, pooled_histograms

    wanted = [c for c, r in enumerate(regions) if r is not None]
    if not wanted:
        return {}, []
    if current_selection() is not None:
        raise UsageError("staple: classes fused by STAPLE need the whole set in one process; run without a scheduler")
    n = len(aligned.sources)
    if not 2 <= n <= MAX_SOURCES:
        raise UsageError(f"staple: STAPLE classes take 2 to {MAX_SOURCES} sources, got {n}")
    with bar(progress, len(aligned.images), "STAPLE histograms") as b:
        hist = pooled_histograms(aligned.sources, aligned.rows, wanted, b)
    tables, lines = {}, []
    classes = aligned.sources[0].classes
    for k, c in enumerate(wanted):
        est = class_estimate(hist[k], n, regions[c])
        tables[c] = est.accept
        said = ", ".join(f"{nm} {s:.4f}" for nm, s in zip(names, np.asarray(est.sensitivity)))
        lines.append(f"  {classes[c]}: STAPLE ({regions[c]}), sensitivity {said}")
    return tables, ["classes fused by STAPLE (pooled over the input set):", *lines]
