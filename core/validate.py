"""Validation of a submission file: structure, completeness and every RLE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.classes import CANVAS, DEFAULT_CLASSES
from core.errors import plural
from core.imageset import ImageExpectation
from core.predictions import Predictions, Problem, missing_rows, scan_frame, scan_predictions


@dataclass
class CheckReport:
    """Every problem found in one submission (``valid`` when none), with its summary."""

    preds: Predictions
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)

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
        return [
            (int(i), int(c)) for i, c in zip(*found.nonzero(), strict=True) if int(p.lines[p.rows[i, c]]) not in invalid
        ]

    def lines(self, name: str, max_problems: int = 20) -> list[str]:
        """The report as ``check`` prints it: the first ``max_problems`` problems and a count
        of the rest, the empty masks, and the verdict with the summary."""
        out = [str(p) for p in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            out.append(f"… and {plural(len(self.problems) - max_problems, 'more problem')}")
        empty = self.empty_report()
        if empty:
            out.append(empty)
        status = "valid" if self.valid else f"INVALID ({plural(len(self.problems), 'problem')})"
        return out + [f"{name}: {status}: {self.summary()}"]

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


def check_submission(
    path, classes: Sequence[str], height: int, width: int, expected: ImageExpectation | None = None
) -> CheckReport:
    """Every problem of a submission (a CSV path or a DataFrame): unknown classes, duplicates,
    invalid RLE, any (image, class) pair without a row and, given ``expected``, missing or
    extra images."""
    if hasattr(path, "columns"):
        preds, problems = scan_frame(path, classes, height, width)
        path = preds.path
    else:
        preds, problems = scan_predictions(path, classes, height, width)
    if not len(preds.lines):
        problems.append(Problem(path, "no rows: a submission needs a row per (image, class)"))
    if expected is not None:  # first: whole images missing outweigh anything row by row
        problems[:0] = [Problem(path, d) for d in expected.differences(preds.images)]
    if preds.truncation is not None and preds.truncation not in problems:
        problems.insert(0, preds.truncation)  # stands for the missing rows of the cut image
    return CheckReport(preds, problems + missing_rows(preds))


def check(
    submission,
    classes: Sequence[str] = DEFAULT_CLASSES,
    height: int = CANVAS,
    width: int = CANVAS,
    *,
    expected_images: ImageExpectation | None = None,
    echo: Callable[[str], None] | None = None,
) -> CheckReport:
    """Validate a submission CSV: columns, every image has every class exactly once, every
    RLE valid (row-major, 1-indexed, ascending, inside ``height`` × ``width``).

    Parameters
    ----------
    submission : path or DataFrame
        The CSV, or a pandas DataFrame ``image_name,class,rle`` (rows located by position).
    classes : sequence of str
        The class list (default: the 29 hand-bone classes).
    height, width : int
        Mask size (default 2048²).
    expected_images : ImageExpectation, optional
        Missing and extra images are problems too (a file cut at an image boundary is
        otherwise a valid file of fewer images).
    echo : callable, optional
        Receives notes as they are made.

    Returns
    -------
    CheckReport
        ``valid``, ``problems`` (each with file, line, image, class), ``summary()``,
        ``empty_report()``, ``notes``.

    Raises
    ------
    InputError
        The file cannot be read as a CSV with the three columns (a ``ValueError``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = path.write_text("image_name,class,rle\\na.png,x,1 2\\na.png,x,3 1\\n")
    >>> report = check(path, ["x", "y"], 2, 2)
    >>> report.valid, [p.message for p in report.problems]
    (False, ['duplicate row (first at line 2)', 'missing row'])
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"image_name": ["a.png"] * 2, "class": ["x", "y"], "rle": ["1 2", "4 9"]})
    >>> [str(p) for p in check(frame, ["x", "y"], 2, 2).problems]
    ['DataFrame:1: image a.png, class y: invalid RLE: run extends past the last pixel of the mask at value #2']
    """
    if echo is not None:
        from core.warmup import READ, precompile

        precompile(echo, READ)
    source = submission if hasattr(submission, "columns") else str(submission)
    report = check_submission(source, tuple(classes), height, width, expected_images)
    if report.preds.paths_stripped:
        report.notes.append(
            f"note: {plural(report.preds.paths_stripped, 'row')} name images by path; matched on the basename"
        )
        if echo is not None:
            echo(report.notes[-1])
    return report
