"""The plan of a merge: which part's row each (image, class) takes, the conflicts between
parts, and writing the merged rows (copied as written, or cleaned)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core._block_kernels import same_runs_kernel
from core.errors import plural, shown
from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import Predictions
from fusion.finish import finish_image, picked_rles, write_picked
from postprocess.cleaner import Cleaner


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

    def grid(self, i: int) -> tuple[int, int]:
        """The grid of image ``i``'s runs, as the first part that holds it says."""
        held = self.part[i][self.part[i] >= 0]
        if not len(held):
            return self.parts[0].grid(0) if self.parts[0].uniform else (self.parts[0].height, self.parts[0].width)
        part = self.parts[int(held[0])]
        return part.grid(part.image_index(self.images[i]))

    def size(self, i: int) -> tuple[int, int]:
        """The ``(height, width)`` of image ``i`` (``grid`` in image order)."""
        rows, cols = self.grid(i)
        return (cols, rows) if self.parts[0].order == "column" else (rows, cols)

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
        return f"image {shown(self.images[i])}, class {shown(self.classes[c])}: {a.path}:{la} and {b.path}:{lb} differ"

    def first_missing(self) -> str | None:
        """``image X, class C`` of the first cell no part holds, in output order."""
        if not self.missing:
            return None
        i, c = (int(x[0]) for x in np.nonzero(self.part < 0))
        return f"image {shown(self.images[i])}, class {shown(self.classes[c])}"

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


def write_merge(
    plan: MergePlan,
    output: str | os.PathLike,
    progress=None,
    clean: Cleaner | None = None,
    layout: Layout = DEFAULT_LAYOUT,
    overlaps: str | None = None,
    writer=None,
) -> int:
    """Write the merged rows in canonical order (atomically), laid out as ``layout`` (or hand
    them to ``writer``, one of ``core.predictions.writer_for``'s); a cell no part holds is an
    empty mask. With ``clean``, classes that have cleaning rules are cleaned; with ``overlaps``
    (exclusive classes), an image's classes are kept exclusive as ``fusion.finish.finish_image``
    says. Returns rows written."""
    return write_picked(
        output,
        plan.parts,
        plan.part,
        plan.rows,
        plan.images,
        plan.classes,
        plan.grid,
        progress,
        clean,
        layout,
        overlaps,
        writer,
    )


def merged_rles(plan: MergePlan, clean: Cleaner | None, i: int, overlaps: str | None = None) -> list[str]:
    """Image ``i``'s merged RLE strings (cleaned where ``clean`` has rules, exclusive as
    ``overlaps`` says)."""
    rles = picked_rles(plan.parts, plan.part[i].tolist(), plan.rows[i].tolist())
    return finish_image(rles, clean, plan.grid(i), overlaps, plan.classes, plan.images[i])
