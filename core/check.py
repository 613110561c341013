"""Validation of a submission file: structure, completeness and every RLE."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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

    def invalid_lines(self) -> set[int]:
        """Lines whose RLE is invalid (a truncated last line included)."""
        p = self.preds
        lines = {q.line for q in self.problems if q.message.startswith("invalid RLE")}
        if p.truncation is not None and "invalid RLE" in p.truncation.message:
            lines.add(int(p.lines[-1]))
        return lines

    def empty_masks(self) -> list[tuple[int, int]]:
        """(image, class) positions of the valid rows whose mask is empty, image by image."""
        p = self.preds
        invalid = self.invalid_lines()
        found = (p.rows >= 0) & (p.areas[p.rows] == 0)
        return [(int(i), int(c)) for i, c in zip(*found.nonzero(), strict=True)
                if int(p.lines[p.rows[i, c]]) not in invalid]

    def summary(self) -> str:
        p = self.preds
        invalid = self.invalid_lines()
        return (
            f"{plural(len(p.images), 'image')} × {plural(len(p.classes), 'class')}, {plural(len(p.lines), 'row')}, "
            f"{plural(len(self.empty_masks()), 'empty mask')}{f' ({len(invalid):,} invalid)' if invalid else ''}, "
            f"{plural(int(p.run_counts.sum()), 'run')}, total area {int(p.areas.sum()):,} px"
        )

    def empty_report(self, classes_shown: int = 8, masks_shown: int = 5) -> str | None:
        """Which masks are empty: the count per class (most first) and the first few
        (image, class) pairs; ``None`` when no mask is empty. An empty mask is valid, but
        a class empty on every image usually means a model or a class name went wrong."""
        empty = self.empty_masks()
        if not empty:
            return None
        p = self.preds
        per_class = np.bincount([c for _, c in empty], minlength=len(p.classes))
        order = [int(c) for c in np.argsort(-per_class, kind="stable") if per_class[c]]
        counts = ", ".join(f"{p.classes[c]} {per_class[c]:,}" for c in order[:classes_shown])
        if len(order) > classes_shown:
            counts += f", … ({plural(len(order), 'class')})"
        first = ", ".join(f"{p.images[i]} ({p.classes[c]})" for i, c in empty[:masks_shown])
        return f"empty masks per class: {counts}; first: {first}{', …' if len(empty) > masks_shown else ''}"


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
