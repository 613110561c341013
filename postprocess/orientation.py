"""Does a prediction file's RLE order look right? Column-major runs read as row-major (or the
reverse) still decode to valid masks of the right area, but scrambled: every column run of a
blob becomes a separate row run, so each blob falls apart into many 8-connected pieces, and
cleaning (``keep_largest``, ``min_size``) then throws most of the mask away.

The test: on a sample of the file's non-empty masks, count the 8-connected components of each
mask as the file is read (its runs on the image's grid, ``Predictions.grid``) and of the same
flat runs read in the other order (on the transposed grid). The warning is given when

- at least ``MIN_FRAGMENTED`` sampled masks fall into 2 or more components as read, and
- the other reading has at most ``1 / RATIO`` of the components in total over the sample.

Blobs read in their own order stay whole and fall apart in the other, so a file in the order
it is read never meets the second rule. The sample is the first ``SAMPLE`` non-empty masks of
non-square images in file order (deterministic): on a square image the two readings are
transposes of each other, with the same components, and cannot be told apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from core.codec import RLEError
from core.errors import plural, where

SAMPLE = 200
"""Masks sampled per file (the first non-empty masks of non-square images, in file order)."""

MIN_FRAGMENTED = 10
"""Sampled masks that must fall into 2 or more components as read before anything is said."""

RATIO = 3
"""The other reading must hold at most 1/RATIO of the components, in total over the sample."""

HEAD_BYTES = 16 << 20
"""Bytes of a file read to sample it when the job reads the whole file itself afterwards."""


@dataclass(frozen=True)
class Orientation:
    """The components of the sampled masks in both readings."""

    order: str  # the order the file is read in
    masks: int  # masks sampled
    fragmented: int  # of which in 2 or more components as read
    as_read: int  # components of the sample as read
    other: int  # components of the sample read in the other order

    @property
    def other_order(self) -> str:
        return "row" if self.order == "column" else "column"

    @property
    def suspicious(self) -> bool:
        """Whether the other order looks like the file's: see the module's rules."""
        return self.fragmented >= MIN_FRAGMENTED and RATIO * self.other <= self.as_read


def sample_rows(preds, sample: int = SAMPLE) -> list[tuple[int, int]]:
    """``(image, row)`` of the first ``sample`` non-empty masks of non-square images, in file order."""
    if preds.sizes is None:
        if preds.height == preds.width:
            return []
        shapes = np.broadcast_to(np.array([preds.height, preds.width], np.int64), (len(preds.images), 2))
    else:
        shapes = np.asarray(preds.sizes, np.int64).reshape(-1, 2)
    image, cls = np.nonzero(preds.rows >= 0)
    rows = preds.rows[image, cls]
    keep = (preds.areas[rows] > 0) & (shapes[image, 0] != shapes[image, 1])
    image, rows = image[keep], rows[keep]
    first = np.argsort(rows, kind="stable")[:sample]
    return [(int(image[k]), int(rows[k])) for k in first]


def orientation(preds, sample: int = SAMPLE) -> Orientation:
    """The components of the sampled masks of ``preds`` (a ``core.predictions.Predictions``) as
    read and in the other RLE order. Rows that do not parse or reach past their own image (an
    invalid file being checked) are left out."""
    masks = fragmented = as_read = other = 0
    rows_sampled = sample_rows(preds, sample)
    if rows_sampled:  # a set of one square size samples nothing, and imports nothing either
        from postprocess.connected import component_areas
    for i, r in rows_sampled:
        try:
            runs = preds.row_runs(r)
        except RLEError:
            continue
        rows, cols = preds.grid(i)
        if not len(runs) or int(runs[-1, 1]) > rows * cols:
            continue
        n = len(component_areas(runs, cols))
        masks += 1
        fragmented += n >= 2
        as_read += n
        other += len(component_areas(runs, rows))
    return Orientation(preds.order, masks, fragmented, as_read, other)


def orientation_warning(preds, sample: int = SAMPLE) -> str | None:
    """The one-line warning (without ``warning:``) when the runs of ``preds`` look like those of
    the other RLE order, naming the file and the order to read it in; ``None`` otherwise.

    >>> import numpy as np
    >>> from core.layout import runs_of
    >>> from core.predictions import predictions_from_rles
    >>> from core.codec import format_rle
    >>> disc = np.hypot(*np.mgrid[-30:30, -75:75]) < 10  # 60 × 150, written column by column
    >>> rle = format_rle(runs_of(disc, "column"))
    >>> images = [f"{k}.png" for k in range(10)]
    >>> print(orientation_warning(predictions_from_rles("m.csv", ["x"], images, [[rle]] * 10, 60, 150)))
    ... # doctest: +NORMALIZE_WHITESPACE
    m.csv: runs look column-major: the first 10 non-empty masks of non-square images fall into 230
    8-connected components as read in row order, 10 in column order; read the file with rle_order='column'
    >>> print(orientation_warning(predictions_from_rles("m.csv", ["x"], images, [[rle]] * 10, 60, 150, order="column")))
    None
    """
    found = orientation(preds, sample)
    if not found.suspicious:
        return None
    return (
        f"{where(preds.path)}: runs look {found.other_order}-major: the first {plural(found.masks, 'non-empty mask')} "
        f"of non-square images fall into {found.as_read:,} 8-connected components as read in {found.order} order, "
        f"{found.other:,} in {found.other_order} order; read the file with rle_order='{found.other_order}'"
    )


def file_orientation_warning(path: str | os.PathLike, frame, limit: int = HEAD_BYTES) -> str | None:
    """``orientation_warning`` of the CSV ``path`` read as ``frame`` (a ``core.sources.Frame``)
    says, from its first ``limit`` bytes only (whole lines): for a job that reads the file
    itself afterwards. ``None`` for a set of one square size (nothing to tell apart), a folder
    of label maps, or a file that cannot be read (the job says why)."""
    from core.errors import ToolError
    from core.predictions import scan_predictions

    if frame.sizes is None and frame.height == frame.width:
        return None
    if not os.path.isfile(path):
        return None
    try:
        preds, _ = scan_predictions(
            path, frame.classes, frame.height, frame.width, frame.layout, frame.sizes, frame.instances, limit=limit
        )
    except ToolError:
        return None
    return orientation_warning(preds)
