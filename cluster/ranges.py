"""Each task reads only its own images' rows: byte ranges of the input CSVs.

The client reads and checks the inputs once (``cluster.ship.Shipper``: the same errors and
notes as on one machine); the reader notes where each row's line lies in its file. A task is
then given, per input file, the byte ranges of its chunk's rows (``FileRows``, a few numbers
per chunk, not the rows themselves); it reads those ranges behind the file's header line
and splits them into rows, taking their run counts and areas from the client rather than
validating their RLE again (the file's size and modification time show it unchanged). A
file is read by ranges only where its rows map one to one onto its lines (plain ASCII
without quotes, one image size, row-major RLE, one row per image and class); the others are
sent as their chunks' RLE text, as with ``--ship-inputs``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from core.csv_bytes import CHUNK, read_ranges
from core.errors import InputError, where
from core.predictions import Predictions
from core.subset import take_images


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def indexable(p: Predictions) -> bool:
    """Whether ``p``'s rows are lines of its file the reader located (a plain file), one to
    one, to be read back alone as they were: one image size, row-major RLE, no rows merged
    (one row per object) and no row left out."""
    return (
        p.line_spans is not None
        and isinstance(p.path, str)
        and os.path.isfile(p.path)
        and p.sizes is None
        and p.order == "row"
        and len(p.lines) == np.count_nonzero(p.rows >= 0)
    )


@dataclass(frozen=True)
class FileRows:
    """The rows of some images in a file the client read and checked: the byte ranges
    ``ranges`` (``(k, 2)``, start and stop) behind the header line. ``load`` reads and parses
    them on the worker."""

    path: str
    stamp: tuple[int, int]
    header: bytes
    ranges: np.ndarray
    images: tuple[str, ...]
    classes: tuple[str, ...]
    height: int
    width: int
    counts: np.ndarray  # each row's run count and area, in file order: the client validated them
    areas: np.ndarray

    def load(self) -> Predictions:
        """The rows as ``Predictions`` of ``images`` (in that order). A file changed since the
        client read it is an ``InputError``: its ranges no longer hold the rows checked."""
        from core.csv_read import raise_first, read_table_bytes

        changed = InputError(f"{where(self.path)}: changed since the run began (rerun on the file as it is now)")
        try:
            if _stamp(self.path) != self.stamp:
                raise changed
        except OSError as e:
            raise InputError(f"{where(self.path)}: cannot read ({e.__class__.__name__})") from None
        with open(self.path, "rb") as fh:
            data = read_ranges(fh.fileno(), self.header, self.ranges)
        if not data.endswith(b"\n"):
            data += b"\n"
        scanned = (self.counts, self.areas)
        table, problems = read_table_bytes(self.path, data, self.classes, self.height, self.width, scanned)
        raise_first(problems)
        read = Predictions.of(table)
        part = read if read.images == list(self.images) else take_images(read, self.images)
        if len(part.images) != len(self.images):
            raise changed
        return part


@dataclass(frozen=True)
class Indexed:
    """What the client keeps of a file it read: the row of each (image, class) and the byte
    span of each row's line, not the rows' text."""

    path: str
    stamp: tuple[int, int]
    header: bytes
    images: list[str]
    rows: np.ndarray
    spans: np.ndarray
    counts: np.ndarray  # each row's run count and area
    areas: np.ndarray
    classes: tuple[str, ...]
    height: int
    width: int
    at: dict[str, int]  # image name -> position

    @classmethod
    def of(cls, p: Predictions) -> Indexed:
        """``p``'s index (``indexable(p)``). The file is stamped now: the window for a change
        between the client's read and this stamp is the checks' own time."""
        path = str(p.path)
        stamp = _stamp(path)
        with open(path, "rb") as fh:
            head = fh.read(CHUNK)
        shift = 3 if head.startswith(b"\xef\xbb\xbf") else 0  # the reader's offsets follow the BOM
        end = head.find(b"\n")
        header = head[shift:] if end < 0 else head[shift : end + 1]
        images = list(p.images)
        at = {name: i for i, name in enumerate(images)}
        spans = p.line_spans + shift
        return cls(
            path, stamp, header, images, p.rows, spans, p.run_counts, p.areas, tuple(p.classes), p.height, p.width, at
        )

    def take(self, images: list[str]) -> FileRows:
        """The ``FileRows`` of ``images`` (those the file has): the lines of their rows,
        adjacent lines joined into one range."""
        idx = np.array([self.at[n] for n in images if n in self.at], np.int64)
        rows = self.rows[idx].ravel()
        rows = rows[rows >= 0]
        rows = rows[np.argsort(self.spans[rows, 0])]  # in file order
        spans = self.spans[rows]
        new = np.ones(len(spans), bool)
        new[1:] = spans[1:, 0] != spans[:-1, 1]
        first = np.flatnonzero(new)
        last = np.append(first[1:], len(spans)) - 1
        ranges = np.stack([spans[first, 0], spans[last, 1]], axis=1) if len(spans) else np.zeros((0, 2), np.int64)
        names = tuple(self.images[i] for i in idx)
        return FileRows(
            self.path,
            self.stamp,
            self.header,
            ranges,
            names,
            self.classes,
            self.height,
            self.width,
            self.counts[rows],
            self.areas[rows],
        )


def resolve(value):
    """``value`` with every ``FileRows`` in it (at the top, or in a tuple, list or dict)
    loaded: the arguments of a task as the function takes them."""
    if isinstance(value, FileRows):
        return value.load()
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(resolve(v) for v in value)
    return value
