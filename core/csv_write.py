"""Writing prediction CSVs (``image_name,class,rle``): rows streamed in canonical order to a
temporary file beside the output, renamed into place only when complete."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from core.atomic import atomic_open
from core.layout import DEFAULT_LAYOUT, Layout

COLUMNS = ("image_name", "class", "rle")
"""The columns of a prediction CSV, in the order they are written."""


def csv_field(s: str) -> str:
    """A CSV field as written: quoted when it holds a comma, quote or line break."""
    if any(ch in s for ch in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def class_fields(classes: Sequence[str], layout: Layout = DEFAULT_LAYOUT) -> list[str]:
    """Each class's field as a row writes it before the RLE, its comma included; empty in a
    file without a class column."""
    return [f"{csv_field(c)}," if layout.cls is not None else "" for c in classes]


class PredictionWriter:
    """Streams rows in canonical order, laid out as ``layout``, to a temporary file next to
    ``path`` and renames it into place only when the ``with`` block ends without an exception.

    With ``split`` (``split(image, rle)`` → the RLE texts of its rows), a mask is written as
    several rows of its (image, class), one per text: one row per object (connected
    component), as Airbus- or SIIM-style files hold them. Such a writer takes images one at a
    time only (``blocks`` is false)."""

    def __init__(
        self,
        path: str | os.PathLike,
        classes: Sequence[str],
        layout: Layout = DEFAULT_LAYOUT,
        split: Callable[[str, str], Sequence[str]] | None = None,
    ):
        self.path = Path(path)
        self.classes = tuple(classes)
        self.layout = layout
        self.split = split
        self._class_fields = class_fields(self.classes, layout)
        self._ctx = None
        self._fh = None
        self.rows_written = 0

    def __enter__(self) -> PredictionWriter:
        self._ctx = atomic_open(self.path)
        self._fh = self._ctx.__enter__()
        self._fh.write(",".join(csv_field(c) for c in self.layout.columns) + "\n")
        return self

    def write_image(self, image: str, rles: Sequence[str]) -> None:
        """Write one image's rows; ``rles`` in class-list order."""
        if len(rles) != len(self.classes):
            raise ValueError(f"expected {len(self.classes)} masks for {image}, got {len(rles)}")
        name = csv_field(image)
        if self.split is not None:
            rows = [(c, part) for c, r in zip(self._class_fields, rles) for part in self.split(image, r)]
            self._fh.write("".join(f"{name},{c}{r}\n" for c, r in rows))
            self.rows_written += len(rows)
            return
        self._fh.write("".join(f"{name},{c}{r}\n" for c, r in zip(self._class_fields, rles)))
        self.rows_written += len(rles)

    @property
    def blocks(self) -> bool:
        """Whether ``write_rows`` takes blocks of formatted rows (not with ``split``)."""
        return self.split is None

    def write_rows(self, text: bytes, rows: int) -> None:
        """Write ``rows`` rows already formatted as CSV lines (UTF-8)."""
        if self.split is not None:
            raise TypeError("a writer that splits masks into rows takes images (write_image), not rows")
        # Straight to the binary layer (after what the text layer holds): no decode and encode
        # of a block that is already UTF-8.
        self._fh.flush()
        self._fh.buffer.write(text)
        self.rows_written += rows

    def __exit__(self, exc_type, exc, tb) -> None:
        self._ctx.__exit__(exc_type, exc, tb)


def write_predictions(
    path: str | os.PathLike,
    classes: Sequence[str],
    images: Iterable[tuple[str, Sequence[str]]],
    layout: Layout = DEFAULT_LAYOUT,
) -> int:
    """Write ``(image, rles)`` pairs atomically, laid out as ``layout``; returns rows written."""
    with PredictionWriter(path, classes, layout) as w:
        for image, rles in images:
            w.write_image(image, rles)
    return w.rows_written
