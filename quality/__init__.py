"""Quality without ground truth: source estimates, robust fusion and per-mask checks, on runs.

- ``staple`` → ``StapleResult``: binary STAPLE (Warfield et al. 2004) per class, exactly on
  histograms of vote patterns, or SIMPLE (Langerak et al. 2010) with ``method='simple'``;
  fused masks to a CSV or in memory, estimates per source and class (``quality.staple``);
  ``MAX_SOURCES``: the most sources it takes (16)
- ``qa_flags`` → ``QAReport``: per-mask flags (``fragments``, ``missing``, ``area``) of one
  prediction set, each a ``Flag``, and a ``ClassSummary`` per class; ``write_flags`` writes
  the flags CSV atomically (``quality.qa``)

This package sits at the operations layer: it imports ``core`` only.
"""

from quality.qa import ClassSummary, Flag, QAReport, qa_flags, write_flags
from quality.staple import MAX_SOURCES, StapleResult, staple

__all__ = [
    "ClassSummary",
    "Flag",
    "MAX_SOURCES",
    "QAReport",
    "StapleResult",
    "qa_flags",
    "staple",
    "write_flags",
]
