"""Warm-up steps of the cleaning kernels (see ``core.warmup``): one specialisation of
``clean_kernel`` per combination of steps that a run's rules take."""

from __future__ import annotations

from collections.abc import Iterable

from core.warmup import Step, TinySet
from postprocess.cleaner import Cleaner, Rules, combinations, compiled

EVERY_STEP = Rules(open=1, close=1, min_size=2, keep_largest=1, fill_holes=True, max_hole=4)
MORPHOLOGY_SECONDS = 7  # two exact methods (rows, distances), both compiled into the cleaning kernel


def _cleaners(rules: list[Rules]) -> list[Cleaner]:
    """Cleaners of the tiny set, one per combination of steps that ``rules`` take, each on both
    classes, the second with 4-connectivity."""
    size = TinySet.SIZE
    return [
        Cleaner([r, r.model_copy(update={"connectivity": 4})], TinySet.CLASSES, size, size) for r in combinations(rules)
    ]


def _resolved(rules: Iterable[Rules | None] | None) -> list[Rules]:
    listed = [r for r in rules or () if r is not None]
    return listed if rules is not None else [EVERY_STEP]


def _seconds(base: float, rules: list[Rules]) -> float:
    return base + (MORPHOLOGY_SECONDS if any(r.open or r.close for r in rules) else 0)


def clean_step(rules: Iterable[Rules | None] | None = None) -> Step:
    """Cleaning one mask at a time (inline cleaning of the votes, select, merge) for the
    combinations of steps ``rules`` take; ``None``: every step at once."""
    rules = _resolved(rules)

    def run(t: TinySet) -> None:
        from core.codec import format_rle

        for cleaner in _cleaners(rules):
            for rles in (*t.RLES["one"], *t.RLES["two"]):
                for c, rle in enumerate(rles):
                    format_rle(cleaner(c, t.runs(rle)))

    kernels = ("core/_rle_kernels.py:format_kernel", "postprocess/_clean_kernels.py:clean_kernel")
    return Step("clean", kernels, run, _seconds(4, rules), lambda: compiled(rules))


def clean_blocks_step(rules: Iterable[Rules | None] | None = None) -> Step:
    """The postprocess command's path: blocks of images, each cleaned class's masks cleaned by
    one kernel call, for the combinations of steps ``rules`` take."""
    rules = _resolved(rules)

    def run(t: TinySet) -> None:
        from core.predictions import predictions_from_rles
        from postprocess.clean_set import clean_all

        size = t.SIZE
        preds = predictions_from_rles("tiny", t.CLASSES, list(t.IMAGES), t.RLES["one"], size, size)
        for cleaner in _cleaners(rules):
            clean_all(preds, cleaner, t.out("clean_blocks"))

    kernels = (
        "core/_block_kernels.py:gather_kernel",
        "core/_block_kernels.py:parse_block_kernel",
        "core/_block_kernels.py:rows_kernel",
        "postprocess/_clean_kernels.py:clean_kernel",
    )
    return Step("clean_blocks", kernels, run, _seconds(5, rules), lambda: compiled(rules))


def _instances(t: TinySet) -> None:
    from postprocess.instances import instance_split

    split = instance_split(lambda image: (t.SIZE, t.SIZE))
    for rles in (*t.RLES["one"], *t.RLES["two"]):
        for rle in rles:
            split("i", rle)


INSTANCES = Step(
    "instances",
    (
        "core/_rle_kernels.py:parse_kernel",
        "core/_rle_kernels.py:format_kernel",
        "postprocess/_segment_kernels.py:split_rows_kernel",
        "postprocess/_segment_kernels.py:join_rows_kernel",
        "postprocess/_component_kernels.py:label_kernel",
    ),
    _instances,
    2,
)
"""One row per object (``postprocess.instances``)."""


def output_steps(output, write_instances: bool = False) -> list[Step]:
    """The warm-up steps of a job's writer: PNGs for a folder ``output``, the components for one
    row per object; empty for a plain CSV, which a job may write in blocks."""
    from core.label_write import is_label_folder
    from core.warmup import LABELS

    folder = output is not None and is_label_folder(output)
    return [*([LABELS] if folder else []), *([INSTANCES] if write_instances else [])]
