"""Warm-up step of tuning (see ``core.warmup``): the coverage histograms, the vote, and the
cleaning candidates scored."""

from __future__ import annotations

from core.warmup import Step, TinySet


def _tune(t: TinySet) -> None:
    from evaluation.search import coverage, tune_cleaning, tune_combination

    sources = [t.one, t.two]
    results = tune_combination(coverage(t.one, sources, ["one", "two"]), t.CLASSES)
    tune_cleaning(results, t.one, sources)


_KERNELS = (
    "core/_run_kernels.py:coverage_kernel",
    "core/_run_kernels.py:vote_kernel",
    "core/_run_kernels.py:intersection_area_kernel",
    "postprocess/_segment_kernels.py:split_rows_kernel",
    "postprocess/_component_kernels.py:select_components_kernel",
    "postprocess/_hole_kernels.py:fill_holes_kernel",
    "postprocess/_clean_kernels.py:finish_kernel",
)
TUNE = Step("tune", _KERNELS, _tune, 4)
"""``tune`` on validation CSVs."""
