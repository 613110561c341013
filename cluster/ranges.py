"""Each task reads only its own images' rows: byte ranges of the input CSVs.

The client reads and checks the inputs once (``cluster.ship.Shipper``: the same errors and
notes as on one machine) and indexes each file's lines (one pass over its bytes, no
parsing). A task is then given, per input file, the byte ranges of its chunk's rows
(``FileRows``, a few numbers per chunk, not the rows themselves); it reads those ranges
behind the file's header line and parses them alone. A file is indexed only where its rows
map one to one onto its lines (plain ASCII without quotes, one image size, row-major RLE,
one row per image and class); the others are sent as their chunk's RLE text, as with
``--ship-inputs``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from core.csv_bytes import CHUNK, is_plain
from core.errors import InputError, where
from core.predictions import Predictions
from core.subset import take_images


@dataclass(frozen=True)
class LineIndex:
    """Where each line of a file starts (``starts[k]``: line ``k + 1``; the file's size last),
    the file's header line, and its ``(size, mtime_ns)`` when indexed."""

    starts: np.ndarray
    header: bytes
    stamp: tuple[int, int]


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def index_lines(path: str) -> LineIndex | None:
    """The ``LineIndex`` of a plain file (``core.csv_bytes.is_plain``, read ``CHUNK`` bytes at
    a time), or None for any other."""
    stamp = _stamp(path)
    starts = [np.zeros(1, np.int64)]
    pos = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if not is_plain(chunk) and not (chunk.endswith(b"\r") and is_plain(chunk[:-1])):
                return None  # a CR at a chunk's end is checked with the next chunk's first byte
            if chunk.endswith(b"\r") and fh.peek(1)[:1] != b"\n":
                return None
            starts.append(np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + (pos + 1))
            pos += len(chunk)
    if pos != stamp[0]:
        return None  # changed while read
    lines = np.concatenate(starts)
    if lines[-1] != pos:
        lines = np.append(lines, pos)  # the last line, without its line end
    with open(path, "rb") as fh:
        header = fh.read(int(lines[1]) if len(lines) > 1 else 0)
    if header.startswith(b"\xef\xbb\xbf"):
        return None
    return LineIndex(lines, header if header.endswith(b"\n") else header + b"\n", stamp)


def indexable(p: Predictions) -> bool:
    """Whether ``p``'s rows are its file's lines one to one, read back alone as they were: one
    image size, row-major RLE, no rows merged (one row per object) and no row left out."""
    return (
        isinstance(p.path, str)
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

    @property
    def size(self) -> int:
        """Bytes the task reads."""
        return int((self.ranges[:, 1] - self.ranges[:, 0]).sum())

    def load(self) -> Predictions:
        """The rows as ``Predictions`` of ``images`` (in that order). A file changed since the
        client read it is an ``InputError``: its ranges no longer hold the rows checked."""
        from core.csv_read import raise_first, read_table_bytes

        try:
            changed = _stamp(self.path) != self.stamp
        except OSError as e:
            raise InputError(f"{where(self.path)}: cannot read ({e.__class__.__name__})") from None
        if changed:
            raise InputError(f"{where(self.path)}: changed since the run began (rerun on the file as it is now)")
        data = bytearray(self.header)
        with open(self.path, "rb") as fh:
            for start, stop in self.ranges:
                data += os.pread(fh.fileno(), int(stop - start), int(start))
        if not data.endswith(b"\n"):
            data += b"\n"
        table, problems = read_table_bytes(self.path, data, self.classes, self.height, self.width)
        raise_first(problems)
        part = take_images(Predictions.of(table), self.images)
        if len(part.images) != len(self.images):
            raise InputError(f"{where(self.path)}: changed since the run began (rerun on the file as it is now)")
        return part


@dataclass(frozen=True)
class Indexed:
    """What the client keeps of a file it read once the file is indexed: the row of each
    (image, class), each row's line, and the line index; not the rows' text."""

    path: str
    images: list[str]
    rows: np.ndarray
    lines: np.ndarray
    index: LineIndex
    classes: tuple[str, ...]
    height: int
    width: int

    @classmethod
    def of(cls, p: Predictions, index: LineIndex) -> Indexed:
        return cls(str(p.path), list(p.images), p.rows, p.lines, index, tuple(p.classes), p.height, p.width)

    def take(self, images: list[str]) -> FileRows:
        """The ``FileRows`` of ``images`` (those the file has): the lines of their rows,
        adjacent lines joined into one range."""
        where_ = {name: i for i, name in enumerate(self.images)}
        idx = np.array([where_[n] for n in images if n in where_], np.int64)
        rows = self.rows[idx].ravel()
        lines = np.sort(self.lines[rows[rows >= 0]])  # 1-based; line k spans starts[k - 1]:starts[k]
        starts, stops = self.index.starts[lines - 1], self.index.starts[lines]
        new = np.ones(len(lines), bool)
        new[1:] = starts[1:] != stops[:-1]
        first = np.flatnonzero(new)
        last = np.append(first[1:], len(lines)) - 1
        ranges = np.stack([starts[first], stops[last]], axis=1) if len(lines) else np.zeros((0, 2), np.int64)
        names = tuple(self.images[i] for i in idx)
        return FileRows(
            self.path, self.index.stamp, self.index.header, ranges, names, self.classes, self.height, self.width
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
