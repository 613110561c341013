"""Class selection: each class's mask is taken, as written, from one named source.

Nothing is decoded: the sources' RLE strings were validated when they were read, and are
copied byte for byte (surrounding whitespace dropped). Images follow the first source in
``sources`` that some class uses; every used source must hold exactly that image set and a
row for every (image, class) it is selected for. A source may hold only some classes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import DataError, plural
from core.predictions import Predictions, PredictionWriter, image_positions
from postprocess.clean import Cleaner


@dataclass
class SelectPlan:
    """For each output image ``i`` and class ``c``: ``src[c]`` gives the source (an index
    into ``names``) and ``rows[i, c]`` its row."""

    names: list[str]
    sources: list[Predictions]
    images: list[str]
    src: np.ndarray  # (n_classes,) int64
    rows: np.ndarray  # (n_images, n_classes) int64

    def rows_by_source(self) -> dict[str, int]:
        """Output rows each source gives (sources no class uses are left out)."""
        n = len(self.images)
        return {name: int((self.src == s).sum()) * n for s, name in enumerate(self.names)
                if (self.src == s).any()}


def plan_select(sources: Mapping[str, Predictions], rules: Sequence[str]) -> SelectPlan:
    """Check that every selected (image, class) exists and locate its row.

    ``rules[c]`` names the source of class ``c`` (in the sources' class order). Raises
    ``DataError`` on a missing row or when used sources hold different image sets.
    """
    names = list(sources)
    preds = list(sources.values())
    if not preds:
        raise ValueError("no sources")
    classes = preds[0].classes
    if any(p.classes != classes for p in preds):
        raise ValueError("sources were read with different class lists")
    if len(rules) != len(classes):
        raise ValueError(f"{len(rules)} rules for {len(classes)} classes")
    unknown = [r for r in rules if r not in sources]
    if unknown:
        raise ValueError(f"rule names unknown source {unknown[0]!r}")
    src = np.array([names.index(r) for r in rules], np.int64)
    used = [s for s in range(len(names)) if (src == s).any()]
    first = preds[used[0]]
    images = first.images
    rows = np.empty((len(images), len(classes)), np.int64)
    for s in used:
        p = preds[s]
        idx = image_positions(p, images, first.path, f" (source {names[s]})")
        cols = np.flatnonzero(src == s)
        rows[:, cols] = p.rows[idx][:, cols]
    if (rows < 0).any():
        i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        n = int((rows < 0).sum())
        p = preds[src[c]]
        raise DataError(f"{p.path}: image {images[i]}, class {classes[c]}: missing row (source "
                        f"{names[src[c]]} is selected for {classes[c]}; {plural(n, 'selected row')} missing in all)")
    return SelectPlan(names, preds, images, src, rows)


def write_selection(plan: SelectPlan, output: str | os.PathLike, progress=None, clean: Cleaner | None = None) -> int:
    """Write the selected rows in canonical order (atomically); returns rows written.
    With ``clean``, classes that have cleaning rules are decoded, cleaned and re-encoded."""
    classes = plan.sources[0].classes
    bufs = [memoryview(p.text) for p in plan.sources]  # slices of a view copy only the row
    offs = [p.offsets.tolist() for p in plan.sources]
    per_class = [(bufs[s], offs[s]) for s in plan.src]
    with PredictionWriter(output, classes) as w:
        for i, name in enumerate(plan.images):
            rles = [str(buf[o[r]:o[r + 1]], "ascii").strip()
                    for (buf, o), r in zip(per_class, plan.rows[i].tolist(), strict=True)]
            if clean is not None:
                rles = [clean.text(c, r) for c, r in enumerate(rles)]
            w.write_image(name, rles)
            if progress is not None:
                progress.update(1)
    return w.rows_written


def select(sources: Mapping[str, Predictions], rules: Sequence[str], output: str | os.PathLike,
           progress=None, clean: Cleaner | None = None) -> SelectPlan:
    """Take class ``c`` from source ``rules[c]`` for every image and write ``output``.

    Returns the plan (``.rows_by_source()`` for the summary). Nothing is written when a
    selected row is missing.
    """
    plan = plan_select(sources, rules)
    write_selection(plan, output, progress, clean)
    return plan
