"""Validation of a submission file: structure, completeness and every RLE."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.classes import CANVAS, DEFAULT_CLASSES
from core.errors import as_name, listing, plural, quoted, shown, where
from core.imageset import ImageExpectation
from core.layout import DEFAULT_LAYOUT, Layout, Sizes
from core.predictions import Predictions, Problem, missing_rows, scan_frame, scan_predictions


@dataclass
class CheckReport:
    """Every problem found in one submission (``valid`` when none), with its summary."""

    preds: Predictions
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # said, but the file stays valid

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
        out += [f"warning: {w}" for w in self.warnings]
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
        counts = ", ".join(f"{as_name(p.classes[c])}: {per_class[c]:,}" for c in order[:classes_shown])
        if len(order) > classes_shown:
            counts += f", … ({plural(len(order), 'class')})"
        first = ", ".join(f"{shown(p.images[i])} (class {as_name(p.classes[c])})" for i, c in empty[:masks_shown])
        return f"empty masks per class: {counts}; first: {first}{', …' if len(empty) > masks_shown else ''}"


def check_submission(
    path,
    classes: Sequence[str],
    height: int,
    width: int,
    expected: ImageExpectation | None = None,
    layout: Layout = DEFAULT_LAYOUT,
    sizes: Sizes | None = None,
    instances: str = "error",
    exclusive: bool = False,
) -> CheckReport:
    """Every problem of a submission (a CSV path, a folder of PNG label maps or a DataFrame):
    unknown classes, duplicates, invalid RLE, any (image, class) pair without a row, given
    ``expected`` missing or extra images, and for ``exclusive`` classes every image where two
    classes share pixels."""
    from core.label_maps import is_label_folder, label_predictions

    if hasattr(path, "columns"):
        preds, problems = scan_frame(path, classes, height, width)
        path = preds.path
    elif is_label_folder(path):
        preds, problems = label_predictions(path, classes, layout.order), []
    else:
        preds, problems = scan_predictions(path, classes, height, width, layout, sizes, instances)
    if exclusive:
        problems += overlap_problems(preds)
    if not len(preds.lines):
        problems.append(Problem(path, "no rows: a submission needs a row per (image, class)"))
    if expected is not None:  # first: whole images missing outweigh anything row by row
        problems[:0] = [Problem(path, d) for d in expected.differences(preds.images)]
    if preds.truncation is not None and preds.truncation not in problems:
        problems.insert(0, preds.truncation)  # stands for the missing rows of the cut image
    report = CheckReport(preds, problems + missing_rows(preds))
    if preds.unterminated is not None:
        report.warnings.append(str(preds.unterminated))
    small = small_images(report)
    if small is not None:
        report.warnings.append(small)
    return report


QUARTER = 4
"""An image is suspected of being smaller than the mask size when every run of its masks ends
within the first 1/QUARTER of the pixels (the top quarter of the rows)."""

MIN_RUNS = 10
"""…and its masks hold at least this many runs in all: a few runs near the top say nothing."""


def small_images(report: CheckReport, shown_names: int = 3) -> str | None:
    """The warning for images whose masks (``MIN_RUNS`` runs or more in all, valid rows only)
    all end within the first quarter of the H×W pixels, as they do when a prediction of a
    smaller image (512×512: the first 1/16) is read with the default 2048×2048; ``None``
    when there are none. A real mask of the size given reaches the top quarter's end only
    when all its objects sit in the top quarter rows."""
    p = report.preds
    if not len(p.lines):
        return None
    invalid = report.invalid_lines()
    rows = p.rows
    usable = (rows >= 0) & (p.areas[rows] > 0)
    if invalid:
        usable &= ~np.isin(p.lines[rows], list(invalid))
    runs = np.where(usable, p.run_counts[rows], 0).sum(1)
    found, last = [], 0
    for i in np.flatnonzero(runs >= MIN_RUNS):
        h, w = p.size(int(i))
        if h * w == 0:  # no size given: a problem of its own
            continue
        stop = max(_last_stop(p.text, int(p.offsets[r]), int(p.offsets[r + 1])) for r in rows[i][usable[i]])
        if stop <= h * w // QUARTER:
            found.append(p.images[i])
            last = max(last, stop)
    if not found:
        return None
    n = len(found)
    names = listing(found, shown_names)
    they = "it" if n == 1 else "they"
    if not p.uniform:  # each image has its own size: that is what they look smaller than
        return (
            f"{where(p.path)}: {plural(n, 'image')} ({names}) {'has' if n == 1 else 'have'} every run within the "
            f"first quarter of {'its' if n == 1 else 'their'} own size's pixels: {'is' if n == 1 else 'are'} "
            f"{they} smaller than the sizes given?"
        )
    return (
        f"{where(p.path)}: {plural(n, 'image')} ({names}) {'has' if n == 1 else 'have'} every run within the "
        f"first quarter of the {p.height}×{p.width} pixels (the last ends at pixel {last:,} of {p.npix:,}): "
        f"{'is' if n == 1 else 'are'} {they} smaller than {p.height}×{p.width}? give the size as height and width"
    )


def _last_stop(text: np.ndarray, lo: int, hi: int) -> int:
    """The pixel (1-indexed) where the last run of a valid RLE ``text[lo:hi]`` ends: its last
    two values, read from the end of the row."""
    tokens = bytes(text[max(lo, hi - 64) : hi]).split()
    if len(tokens) < 3 and hi - lo > 64:  # padded with whitespace: the whole row
        tokens = bytes(text[lo:hi]).split()
    return int(tokens[-2]) - 1 + int(tokens[-1])


def check(
    submission,
    classes: Sequence[str] = DEFAULT_CLASSES,
    height: int = CANVAS,
    width: int = CANVAS,
    *,
    expected_images: ImageExpectation | None = None,
    layout: Layout = DEFAULT_LAYOUT,
    sizes: Sizes | None = None,
    instances: str = "error",
    exclusive: bool = False,
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
    layout, sizes, instances : optional
        Another task's layout (``core.layout``): column names and RLE order, each image's size,
        one row per object read as their union.
    exclusive : bool
        The classes are mutually exclusive: an image where two classes share pixels is a
        problem (naming the classes and the pixels).
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
    (False, ['duplicate row (first at line 2; one row per object: --instances union)', 'missing row'])
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"image_name": ["a.png"] * 2, "class": ["x", "y"], "rle": ["1 2", "4 9"]})
    >>> [str(p) for p in check(frame, ["x", "y"], 2, 2).problems]
    ['DataFrame:1: image a.png, class y: invalid RLE: run extends past the last pixel of the mask at value #2']
    """
    if echo is not None:
        from core.warmup import READ, precompile

        precompile(echo, READ)
    source = submission if hasattr(submission, "columns") else str(submission)
    report = check_submission(
        source, tuple(classes), height, width, expected_images, layout, sizes, instances, exclusive
    )
    if report.preds.paths_stripped:
        report.notes.append(
            f"note: {plural(report.preds.paths_stripped, 'row')} name images by path; matched on the basename"
        )
        if echo is not None:
            echo(report.notes[-1])
    return report


def overlap_problems(preds, limit: int = 1000) -> list[Problem]:
    """For exclusive classes: one problem per image where two classes share pixels, naming the
    first such pair and the pixels shared in all (at most ``limit`` images are named)."""
    from core.exclusivity import overlap_counts

    out: list[Problem] = []
    for i, name in enumerate(preds.images):
        masks = [preds.row_runs(int(r)) for r in preds.rows[i]]
        total, pairs = overlap_counts(masks)
        if total:
            a, b = (int(x[0]) for x in np.nonzero(np.triu(pairs, 1)))
            out.append(
                Problem(
                    preds.path,
                    f"classes {quoted(preds.classes[a])} and {quoted(preds.classes[b])} overlap "
                    f"({plural(int(total), 'pixel')} in more than one class); the classes are exclusive",
                    None,
                    name,
                )
            )
            if len(out) >= limit:
                break
    return out
