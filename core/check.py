"""Validation of a submission file: structure, completeness and every RLE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import plural
from core.imageset import ImageExpectation
from core.predictions import Predictions, Problem, missing_rows, scan_predictions


@dataclass
class CheckReport:
    preds: Predictions
    problems: list[Problem]

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        p = self.preds
        n_rows = len(p.lines)
        invalid = {q.line for q in self.problems if q.message.startswith("invalid RLE")}
        present = p.rows[p.rows >= 0]
        empty = int(sum(1 for r in present[p.areas[present] == 0] if int(p.lines[r]) not in invalid))
        return (
            f"{plural(len(p.images), 'image')} × {plural(len(p.classes), 'class')}, {plural(n_rows, 'row')}, "
            f"{plural(empty, 'empty mask')}{f' ({len(invalid)} invalid)' if invalid else ''}, "
            f"{plural(int(p.run_counts.sum()), 'run')}, total area {int(p.areas.sum()):,} px"
        )


def check_submission(path: str, classes: Sequence[str], height: int, width: int,
                     expected: ImageExpectation | None = None) -> CheckReport:
    """Every problem of a submission: unknown classes, duplicates, invalid RLE, any
    (image, class) pair without a row and, given ``expected``, missing or extra images."""
    preds, problems = scan_predictions(path, classes, height, width)
    if not len(preds.lines):
        problems.append(Problem(path, "no rows: a submission needs a row per (image, class)"))
    if expected is not None:  # first: whole images missing outweigh anything row by row
        problems[:0] = [Problem(path, d) for d in expected.differences(preds.images)]
    if preds.truncation is not None and preds.truncation not in problems:
        problems.insert(0, preds.truncation)  # stands for the missing rows of the cut image
    return CheckReport(preds, problems + missing_rows(preds))
