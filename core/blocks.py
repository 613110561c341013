"""Blocks of output rows built by one kernel call each, straight from the sources' RLE text.

A CSV command's output is, per image, one row per class. Rather than a Python call per
(image, class), a block of images is assembled at once: the RLE text its rows need is
gathered from each source into one buffer (``gather``), and a kernel writes the block's
CSV lines (``copy_block``; the vote writes its own, ``ensemble.vote_plan``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core._block_kernels import gather_kernel, rows_kernel
from core.csv_write import class_fields, csv_field
from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import Predictions

BLOCK = 16
"""Images per kernel call: enough that Python's share vanishes, few enough that a block's
text (sources × images × classes) stays a few MB."""


@dataclass(frozen=True)
class Fields:
    """CSV fields as bytes with offsets (a kernel's view of a list of strings)."""

    text: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, values: Sequence[str]) -> Fields:
        """Fields of ``values``, quoted where CSV needs it."""
        return cls.written([csv_field(v) for v in values])

    @classmethod
    def classes(cls, classes: Sequence[str], layout: Layout = DEFAULT_LAYOUT) -> Fields:
        """The class fields of rows laid out as ``layout`` (see ``core.csv_write.class_fields``)."""
        return cls.written(class_fields(classes, layout))

    @classmethod
    def written(cls, values: Sequence[str]) -> Fields:
        """Fields of ``values`` taken as they are written."""
        encoded = [v.encode() for v in values]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(bytearray(b"".join(encoded)), np.uint8), offsets)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])


def gather(
    sources: Sequence[Predictions], which: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The RLE text of mask ``k`` — row ``rows[k]`` of source ``which[k]``, nothing where
    either is -1 — copied into one buffer: ``(text, offsets, runs)``, ``runs[k]`` the mask's
    run count."""
    lengths = np.zeros(len(rows), np.int64)
    runs = np.zeros(len(rows), np.int64)
    picks = []
    for s, src in enumerate(sources):
        pick = np.where((which == s) & (rows >= 0), rows, -1)
        ok = pick >= 0
        lengths[ok] = src.offsets[pick[ok] + 1] - src.offsets[pick[ok]]
        runs[ok] = src.run_counts[pick[ok]]
        picks.append(pick)
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = np.empty(int(offsets[-1]), np.uint8)
    for src, pick in zip(sources, picks, strict=True):
        gather_kernel(src.text, src.offsets, pick, text, offsets[:-1])
    return text, offsets, runs


def copy_block(
    sources: Sequence[Predictions], which: np.ndarray, rows: np.ndarray, images: Sequence[str], classes: Fields
) -> bytes:
    """CSV rows of ``images``, every class: (image ``i``, class ``c``) is row ``rows[i, c]`` of
    source ``which[i, c]`` as written (surrounding whitespace dropped), empty where -1."""
    text, offsets, _ = gather(sources, which.reshape(-1), rows.reshape(-1))
    return write_rows(
        text,
        spans(offsets),
        NO_RUNS,
        np.zeros((rows.size, 2), np.int64),
        np.zeros(rows.size, bool),
        Fields.of(images),
        classes,
    )


NO_RUNS = np.zeros((0, 2), np.int64)


def spans(bounds: np.ndarray) -> np.ndarray:
    """``(k, 2)`` [start, stop) of each item from cumulative bounds."""
    return np.stack([bounds[:-1], bounds[1:]], axis=1)


def write_rows(
    text: np.ndarray,
    text_span: np.ndarray,
    runs: np.ndarray,
    run_span: np.ndarray,
    formatted: np.ndarray,
    names: Fields,
    classes: Fields,
) -> bytes:
    """CSV rows of a block (``rows_kernel``): mask ``k = i * C + c`` as formatted runs
    (``runs[run_span[k, 0]:run_span[k, 1]]``) where ``formatted[k]``, else as its text."""
    n_classes = len(classes.offsets) - 1
    n_images = len(names.offsets) - 1
    per_run = 2 * 20 + 2  # int64 digits at most
    size = len(text) + per_run * len(runs) + n_classes * names.size + n_images * classes.size + 3 * n_images * n_classes
    out = np.empty(size, np.uint8)
    end = rows_kernel(
        text, text_span, runs, run_span, formatted, names.text, names.offsets, classes.text, classes.offsets, out
    )
    return out[:end].tobytes()


def write_copied(
    output,
    sources: Sequence[Predictions],
    which: np.ndarray,
    rows: np.ndarray,
    images: Sequence[str],
    classes: Sequence[str],
    progress=None,
    layout: Layout = DEFAULT_LAYOUT,
    writer=None,
) -> int:
    """Write the rows ``copy_block`` assembles for every image, block by block, atomically,
    laid out as ``layout`` (to ``writer`` when given: a ``PredictionWriter``); returns rows
    written."""
    from core.stream import write_blocks
    from core.window import chunks

    fields = Fields.classes(classes, layout)
    blocks = chunks(len(images), BLOCK)

    def block(b: int) -> bytes:
        lo, hi = blocks[b]
        return copy_block(sources, which[lo:hi], rows[lo:hi], images[lo:hi], fields)

    return write_blocks(output, classes, blocks, block, 1, progress, layout, writer)
