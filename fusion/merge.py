"""Merging prediction CSVs that cover different images and/or classes (shards, per-class
files) into one canonical submission.

Images come in first-seen order across the parts (in the order given), classes in class
list order. An (image, class) held by several parts is taken from the preferred part
(``first`` or ``last`` in the order given); holders whose masks differ from it make the
cell a conflict. Masks are compared as canonical runs (``"1 2 3 2"`` equals ``"1 4"``),
so only differently written cells are parsed; strings are copied, never re-encoded.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core._kernels import same_runs_kernel
from core.blocks import write_copied
from core.errors import DataError, UsageError, listing, plural
from core.imageset import ImageExpectation
from core.predictions import Predictions, PredictionWriter, predictions_from_rles
from core.sources import Notes, Progress, Source, bar, frame_of, is_path, label, load_all, same_file_message
from core.stream import collect_images
from postprocess.clean import Cleaner, cleaning_lines
from settings.merge import MergeSettings


@dataclass
class MergePlan:
    """Where each output cell comes from: ``part[i, c]`` (index into ``parts``, -1 when no
    part holds it) and ``rows[i, c]``; ``conflict[i, c]`` marks cells where some holder
    differs from the chosen one, ``other[i, c]`` the first such holder."""

    parts: list[Predictions]
    prefer: str
    images: list[str]
    part: np.ndarray
    rows: np.ndarray
    holders: np.ndarray  # (n_images, n_classes) how many parts hold each cell
    conflict: np.ndarray
    other: np.ndarray

    @property
    def classes(self) -> tuple[str, ...]:
        return self.parts[0].classes

    @property
    def expected(self) -> int:
        return self.part.size

    @property
    def missing(self) -> int:
        return int((self.part < 0).sum())

    @property
    def overlaps(self) -> int:
        return int((self.holders > 1).sum())

    @property
    def conflicts(self) -> int:
        return int(self.conflict.sum())

    def rows_by_part(self) -> list[int]:
        """Output rows taken from each part, in the order given."""
        taken = self.part[self.part >= 0]
        return np.bincount(taken, minlength=len(self.parts)).tolist()

    def first_conflict(self) -> str | None:
        """``image X, class C: a.csv:L and b.csv:L differ`` for the first conflict, in output order."""
        if not self.conflict.any():
            return None
        i, c = (int(x[0]) for x in np.nonzero(self.conflict))
        a, b = self.parts[self.part[i, c]], self.parts[self.other[i, c]]
        la = a.lines[self.rows[i, c]]
        lb = b.lines[b.rows[b.image_index(self.images[i]), c]]
        return f"image {self.images[i]}, class {self.classes[c]}: {a.path}:{la} and {b.path}:{lb} differ"

    def first_missing(self) -> str | None:
        """``image X, class C`` of the first cell no part holds, in output order."""
        if not self.missing:
            return None
        i, c = (int(x[0]) for x in np.nonzero(self.part < 0))
        return f"image {self.images[i]}, class {self.classes[c]}"

    def strict_error(self) -> str | None:
        """What fails a strict merge (the first conflict, else the first missing row), or None."""
        if self.conflicts:
            return f"{self.first_conflict()} ({plural(self.conflicts, 'conflicting row')} in all)"
        if self.missing:
            return (
                f"{self.first_missing()}: no file holds this row "
                f"({self.missing:,} of {plural(self.expected, 'row')} missing)"
            )
        return None


def plan_merge(parts: Sequence[Predictions], prefer: str = "first") -> MergePlan:
    """Locate every output cell and find conflicting overlaps (nothing is written)."""
    if prefer not in ("first", "last"):
        raise ValueError(f"prefer must be 'first' or 'last', got {prefer!r}")
    parts = list(parts)
    if not parts:
        raise ValueError("no parts")
    classes, npix = parts[0].classes, parts[0].npix
    if any(p.classes != classes or p.npix != npix for p in parts):
        raise ValueError("parts were read with different class lists or mask sizes")
    index: dict[str, int] = {}
    for p in parts:
        for name in p.images:
            index.setdefault(name, len(index))
    images = list(index)
    shape = (len(images), len(classes))
    gidx = [np.array([index[name] for name in p.images], np.int64) for p in parts]

    holders = np.zeros(shape, np.int64)
    part = np.full(shape, -1, np.int64)
    rows = np.full(shape, -1, np.int64)
    order = range(len(parts)) if prefer == "first" else range(len(parts) - 1, -1, -1)
    for f in order:
        g, sub = gidx[f], parts[f].rows
        holders[g] += sub >= 0
        take = (part[g] < 0) & (sub >= 0)
        part[g] = np.where(take, f, part[g])
        rows[g] = np.where(take, sub, rows[g])

    conflict = np.zeros(shape, bool)
    other = np.full(shape, -1, np.int64)
    shared = holders > 1
    for f, p in enumerate(parts):
        g, sub = gidx[f], p.rows
        # cells f holds, someone else holds too, and another part was chosen
        check = (sub >= 0) & shared[g] & (part[g] != f)
        for q in np.unique(part[g][check]):
            ii, cc = np.nonzero(check & (part[g] == q))
            same = same_runs_kernel(
                p.text, p.offsets, sub[ii, cc], parts[q].text, parts[q].offsets, rows[g[ii], cc], npix
            )
            di, dc = g[ii[~same]], cc[~same]
            first_seen = other[di, dc] < 0
            other[di[first_seen], dc[first_seen]] = f
            conflict[di, dc] = True
    return MergePlan(parts, prefer, images, part, rows, holders, conflict, other)


def write_merge(plan: MergePlan, output: str | os.PathLike, progress=None, clean: Cleaner | None = None) -> int:
    """Write the merged rows in canonical order (atomically); a cell no part holds is an
    empty mask. With ``clean``, classes that have cleaning rules are cleaned. Returns rows
    written."""
    if clean is None:
        return write_copied(output, plan.parts, plan.part, plan.rows, plan.images, plan.classes, progress)
    bufs = [memoryview(p.text) for p in plan.parts]  # slices of a view copy only the row
    offs = [p.offsets.tolist() for p in plan.parts]
    with PredictionWriter(output, plan.classes) as w:
        for i, name in enumerate(plan.images):
            rles = []
            for f, r in zip(plan.part[i].tolist(), plan.rows[i].tolist(), strict=True):
                rles.append(str(bufs[f][offs[f][r] : offs[f][r + 1]], "ascii").strip() if f >= 0 else "")
            if clean is not None:
                rles = [clean.text(c, r) for c, r in enumerate(rles)]
            w.write_image(name, rles)
            if progress is not None:
                progress.update(1)
    return w.rows_written


@dataclass
class MergeResult:
    """What ``merge`` did: the ``plan`` (counts: ``expected``, ``missing``, ``overlaps``,
    ``conflicts``, ``rows_by_part()``, first examples), the merged ``predictions`` (in memory)
    or the ``output`` written, the ``parts`` as given, and the inline cleaning's summary."""

    plan: MergePlan
    predictions: Predictions | None
    output: str | None
    parts: list[str]
    prefer: str
    cleaning: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """What was merged, as the command line prints it: counts, overlaps, rows taken from
        each part, and the inline cleaning's summary."""
        plan, out = self.plan, self.output if self.output is not None else "memory"
        lines = [
            f"merge: {plural(len(self.parts), 'file')} → {out}: {plural(len(plan.images), 'image')} × "
            f"{plural(len(plan.classes), 'class')}: {plural(plan.expected, 'row')} expected, "
            f"{plan.expected - plan.missing:,} present, {plan.missing:,} missing"
            + (f" (written as empty masks; first: {plan.first_missing()})" if plan.missing else "")
        ]
        taken = f", taken from the {self.prefer} file (first: {plan.first_conflict()})" if plan.conflicts else ""
        lines.append(
            f"  overlaps: {plural(plan.overlaps, 'row')} in several files: "
            f"{plan.overlaps - plan.conflicts:,} identical, {plan.conflicts:,} conflicting{taken}"
        )
        lines += [f"  {p}: {plural(n, 'row')} taken" for p, n in zip(self.parts, plan.rows_by_part(), strict=True)]
        return lines + cleaning_lines(self.cleaning)


def merge(
    parts: Sequence[Source] | None = None,
    output: str | os.PathLike | None = None,
    *,
    settings: str | os.PathLike | dict[str, Any] | MergeSettings | None = None,
    prefer: str | None = None,
    strict: bool | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    expected_images: ImageExpectation | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> MergeResult:
    """Merge predictions covering different images and/or classes (shards, per-class files).

    Images in first-seen order across the parts, classes in class-list order. An (image,
    class) in several parts: identical masks (compared as runs) give one row; different
    masks are a conflict, resolved by ``prefer``. A row no part holds is an empty mask.

    Parameters
    ----------
    parts : sequence, optional
        CSV paths, ``Predictions`` or DataFrames; default: the settings' ``parts``.
    output : path, optional
        Write the result there (streamed, atomic); else it is returned in memory.
    settings : path, dict or MergeSettings, optional
        ``parts``, ``output``, ``prefer``, ``strict``, ``classes``, size, ``postprocess``.
    prefer : {"first", "last"}, optional
        Which part's row wins a conflict (default first).
    strict : bool, optional
        A conflict or a missing row raises ``DataError`` (nothing written).
    classes, height, width : optional
        Default: the settings', else those of an in-memory ``Predictions`` part, else the
        29 hand-bone classes on 2048².
    expected_images : ImageExpectation, optional
        The images the merged set must hold.
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    MergeResult

    Raises
    ------
    UsageError, InputError, DataError
        Bad parameters; unreadable or invalid parts; with ``strict``, conflicts or gaps.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"image_name": ["i.png"], "class": ["x"], "rle": ["1 1"]})
    >>> b = pd.DataFrame({"image_name": ["j.png"], "class": ["y"], "rle": ["2 1"]})
    >>> r = merge([a, b], classes=["x", "y"], height=2, width=2)
    >>> r.predictions.to_frame()["rle"].tolist(), r.plan.missing
    (['1 1', '', '', '2 1'], 2)
    """
    from core.atomic import check_outputs
    from settings.loader import load_settings
    from settings.postprocess import build_cleaner

    notes = Notes(echo)
    cfg, setting_path, where = load_settings(MergeSettings, settings)
    files = list(parts) if parts is not None else list(cfg.parts)
    if not files:
        raise UsageError("parts: no parts", param="parts")
    paths = [str(p) for p in files if is_path(p)]
    twice = same_file_message([(f"part {k + 1}", p) for k, p in enumerate(paths)])
    if twice:
        raise UsageError(f"{twice}: give each part once")
    out = str(output) if output is not None else cfg.output
    check_outputs([("output", out)], [("the settings", setting_path), *(("an input", p) for p in paths)])
    cls, h, w = frame_of(files, classes, height, width, cfg, f"{where}: classes")
    prefer = prefer or cfg.prefer
    strict = bool(strict or cfg.strict)
    clean = build_cleaner(cfg.postprocess, cls, h, w, where)
    if echo is not None:
        from core.warmup import precompile

        precompile(
            echo,
            "read",
            "merge",
            *(["clean"] if clean is not None else ["copy"]),
            rules=clean.rules if clean is not None else None,
        )
    labels = [label(f"part{k + 1}", p) for k, p in enumerate(files)]
    preds = load_all(list(zip(labels, files, strict=True)), cls, h, w, notes)
    plan = plan_merge(preds, prefer)
    if expected_images is not None:
        expected_images.check(plan.images, f"the merged parts ({listing(labels, 3)})")
    if strict and plan.strict_error():
        raise DataError(plan.strict_error())
    result = None
    with bar(progress, len(plan.images), "merge") as b:
        if out is not None:
            write_merge(plan, out, b, clean)
        else:
            rles = collect_images(plan.images, functools.partial(_merged, plan, clean), b)
            result = predictions_from_rles("merge", cls, plan.images, rles, h, w)
    return MergeResult(plan, result, out, labels, prefer, clean.summary() if clean is not None else None, list(notes))


def _merged(plan: MergePlan, clean: Cleaner | None, i: int) -> list[str]:
    """Image ``i``'s merged RLE strings (cleaned where ``clean`` has rules)."""
    rles = []
    for f, r in zip(plan.part[i].tolist(), plan.rows[i].tolist(), strict=True):
        p = plan.parts[f] if f >= 0 else None
        rles.append(p.text[p.offsets[r] : p.offsets[r + 1]].tobytes().decode("ascii").strip() if p is not None else "")
    return [clean.text(c, r) for c, r in enumerate(rles)] if clean is not None else rles
