"""Validation of a submission file: structure, completeness and every RLE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
        empty = int((p.areas[p.rows[p.rows >= 0]] == 0).sum()) if n_rows else 0
        return (
            f"{len(p.images)} images × {len(p.classes)} classes, {n_rows} rows, "
            f"{empty} empty masks, {int(p.run_counts.sum()):,} runs, "
            f"total area {int(p.areas.sum()):,} px"
        )


def check_submission(path: str, classes: Sequence[str], height: int, width: int) -> CheckReport:
    """Every problem of a submission: unknown classes, duplicates, invalid RLE, and any
    (image, class) pair without a row."""
    preds, problems = scan_predictions(path, classes, height, width)
    return CheckReport(preds, problems + missing_rows(preds))
