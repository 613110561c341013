"""Quality without ground truth: source estimates, robust fusion and per-mask checks, on runs.

- ``staple`` → ``StapleResult``: binary STAPLE (Warfield et al. 2004) per class, exactly on
  histograms of vote patterns, or SIMPLE (Langerak et al. 2010) with ``method='simple'``;
  fused masks to a CSV or in memory, estimates per source and class (``quality.staple``)
- ``qa_flags`` → ``QAReport``: per-mask flags (``fragments``, ``missing``, ``area``) of one
  prediction set and a per-class summary; ``write_flags`` writes the flags CSV (``quality.qa``)
- ``MAX_SOURCES``: the most sources ``staple`` takes (16)
"""

from quality.staple import MAX_SOURCES, StapleResult, staple

__all__ = ["MAX_SOURCES", "StapleResult", "staple"]
