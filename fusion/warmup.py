"""Warm-up step of merging (see ``core.warmup``): the comparison of overlapping rows."""

from __future__ import annotations

from core.warmup import Step, TinySet


def _merge(t: TinySet) -> None:
    from fusion.merge_plan import plan_merge, write_merge

    write_merge(plan_merge([t.one, t.two]), t.out("merge"))


MERGE = Step("merge", ("core/_block_kernels.py:same_runs_kernel",), _merge, 1)
"""Merging parts whose rows overlap."""
