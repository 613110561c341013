"""Prediction CSVs (``image_name,class,rle``): a strict reader and an atomic, streamed writer.

The reader keeps every RLE as bytes in one buffer (``text``) with row ``offsets`` and a
dense ``rows[image, class]`` table of row numbers (-1 where absent): memory is about the
file's size, lookups are O(1), and nothing is decoded until a consumer asks for runs.
All RLE strings are validated up front by one numba pass, so a bad row fails the command
before any output is written.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core._kernels import parse_kernel, scan_kernel, tokenize_kernel
from core.atomic import atomic_open
from core.classes import CANVAS, DEFAULT_CLASSES
from core.codec import EMPTY_RUNS, RLE_ERRORS, RLEError
from core.csvscan import field_counts
from core.errors import DataError, InputError, listing, plural, suggest, where

COLUMNS = ("image_name", "class", "rle")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prediction file, located as precisely as known."""

    path: str
    message: str
    line: int | None = None
    image: str | None = None
    cls: str | None = None

    def __str__(self) -> str:
        return f"{where(self.path, self.line, self.image, self.cls)}: {self.message}"


@dataclass
class Predictions:
    """One prediction CSV, indexed by (image, class); see the module docstring."""

    path: str
    classes: tuple[str, ...]
    height: int
    width: int
    images: list[str]
    rows: np.ndarray  # (n_images, n_classes) int64 row number, -1 when absent
    text: np.ndarray  # uint8, every RLE concatenated
    offsets: np.ndarray  # int64 (n_rows + 1,)
    lines: np.ndarray  # int64 (n_rows,) line of each row in the file
    areas: np.ndarray  # int64 (n_rows,) pixels of each valid row
    run_counts: np.ndarray  # int64 (n_rows,)
    paths_stripped: int = 0  # rows whose image_name was a path, matched on basename
    truncation: Problem | None = None  # set when the file looks cut off (see ``_truncation``)
    truncated_image: int = -1  # the incomplete last image of a truncated file
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {name: i for i, name in enumerate(self.images)}

    @property
    def npix(self) -> int:
        return self.height * self.width

    def image_index(self, name: str) -> int:
        """Position of an image (basename), or -1."""
        return self._index.get(name, -1)

    # -- construction and conversion ------------------------------------------------------

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        classes: Sequence[str] = DEFAULT_CLASSES,
        height: int = CANVAS,
        width: int = CANVAS,
    ) -> Predictions:
        """Read and validate a prediction CSV (``image_name,class,rle``).

        Parameters
        ----------
        path : str or os.PathLike
            The CSV. Image names given as paths are matched on their basename.
        classes : sequence of str
            The class list (default: the 29 hand-bone classes).
        height, width : int
            Mask size (default 2048 × 2048).

        Returns
        -------
        Predictions

        Raises
        ------
        InputError
            (a ``ValueError``) when the file is unreadable or any row is invalid; the
            message names the file, line, image and class.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
        >>> _ = path.write_text("image_name,class,rle\\na.png,x,1 2\\na.png,y,\\n")
        >>> p = Predictions.read(path, ["x", "y"], 2, 2)
        >>> p.images, p.classes
        (['a.png'], ('x', 'y'))
        >>> p.runs("a.png", "x").tolist()
        [[0, 2]]
        """
        return read_predictions(path, classes, height, width)

    @classmethod
    def from_frame(
        cls,
        frame,
        classes: Sequence[str] | None = None,
        height: int = CANVAS,
        width: int = CANVAS,
        name: str = "DataFrame",
    ) -> Predictions:
        """Predictions from a pandas DataFrame with columns ``image_name``, ``class``, ``rle``,
        validated exactly as a file is (no disk is touched).

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per (image, class); other columns are ignored; NaN or "nan" is an
            empty mask.
        classes : sequence of str, optional
            The class list; default: the 29 hand-bone classes when every class of the
            frame is one of them, else the frame's classes in order of appearance.
        height, width : int
            Mask size (default 2048 × 2048).
        name : str
            How messages name the frame; rows are located by position (``name:row``, 0-based).

        Returns
        -------
        Predictions

        Raises
        ------
        InputError
            Missing columns, unknown classes, duplicate rows or invalid RLE; the message
            names the row, image and class.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"image_name": ["a.png", "a.png"], "class": ["x", "y"], "rle": ["2 3", ""]})
        >>> p = Predictions.from_frame(df, height=2, width=2)
        >>> p.classes, p.mask("a.png", "x").astype(int).tolist()
        (('x', 'y'), [[0, 1], [1, 1]])
        """
        preds, problems = scan_frame(frame, classes, height, width, name)
        _raise_first(problems)
        return preds

    def to_frame(self):
        """The rows as a pandas DataFrame ``image_name,class,rle``: images in order, classes in
        class-list order, absent rows left out; RLE text as written.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"image_name": ["a.png"] * 2, "class": ["y", "x"], "rle": ["", "1 1"]})
        >>> Predictions.from_frame(df, classes=["x", "y"], height=2, width=2).to_frame().values.tolist()
        [['a.png', 'x', '1 1'], ['a.png', 'y', '']]
        """
        import pandas as pd

        img, cl = np.nonzero(self.rows >= 0)
        rows = self.rows[img, cl]
        rles = [self.text[self.offsets[r] : self.offsets[r + 1]].tobytes().decode("ascii").strip() for r in rows]
        return pd.DataFrame(
            {
                "image_name": np.asarray(self.images, dtype=object)[img],
                "class": np.asarray(self.classes, dtype=object)[cl],
                "rle": rles,
            }
        )

    def write(self, path: str | os.PathLike) -> int:
        """Write the rows (as ``to_frame`` orders them) to ``path`` atomically; returns rows written.

        Raises
        ------
        OSError
            When ``path`` cannot be written (nothing is left behind).
        """
        with atomic_open(Path(path)) as fh:
            fh.write(",".join(COLUMNS) + "\n")
            n = 0
            for i, name in enumerate(self.images):
                field = csv_field(name)
                for c, cname in enumerate(self.classes):
                    if self.rows[i, c] >= 0:
                        fh.write(f"{field},{csv_field(cname)},{self.rle(i, c)}\n")
                        n += 1
        return n

    # -- access ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[tuple[str, list[np.ndarray | None]]]:
        """``(image, runs)`` per image, ``runs`` in class order (``None`` where a row is absent).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": ["1 2"]})
        >>> [(name, [r.tolist() for r in runs]) for name, runs in Predictions.from_frame(df, height=2, width=2)]
        [('a.png', [[[0, 2]]])]
        """
        for i, name in enumerate(self.images):
            yield (
                name,
                [
                    None if self.rows[i, c] < 0 else self.row_runs(int(self.rows[i, c]))
                    for c in range(len(self.classes))
                ],
            )

    def _position(self, image: int | str, cls: int | str) -> tuple[int, int]:
        """(image, class) positions from positions or names; an unknown name is a ``KeyError``."""
        if isinstance(image, str):
            i = self._index.get(image, -1)
            if i < 0:
                raise KeyError(f"{self.path}: no image {image!r}")
            image = i
        if isinstance(cls, str):
            if cls not in self.classes:
                raise KeyError(f"{self.path}: no class {cls!r}")
            cls = self.classes.index(cls)
        return image, cls

    def row(self, image: int, cls: int) -> int:
        return int(self.rows[image, cls])

    def rle(self, image: int | str, cls: int | str) -> str:
        """The RLE text of (image, class) as written in the file ("" for an empty mask)."""
        image, cls = self._position(image, cls)
        r = self.row(image, cls)
        if r < 0:
            raise KeyError((self.images[image], self.classes[cls]))
        return self.text[self.offsets[r] : self.offsets[r + 1]].tobytes().decode("ascii").strip()

    def runs(self, image: int | str, cls: int | str) -> np.ndarray:
        """Canonical runs (``(n, 2)`` int64 start, end; 0-based, end exclusive, row-major) of
        (image, class), each given by name or position; raises ``KeyError`` when the row is
        absent."""
        image, cls = self._position(image, cls)
        r = self.row(image, cls)
        if r < 0:
            raise KeyError((self.images[image], self.classes[cls]))
        return self.row_runs(r)

    def row_runs(self, r: int) -> np.ndarray:
        """Canonical runs of row ``r`` (empty for -1, an absent row)."""
        if r < 0:
            return EMPTY_RUNS
        lo, hi = self.offsets[r], self.offsets[r + 1]
        out = np.empty((int(self.run_counts[r]) + 1, 2), np.int64)
        n, code, at = parse_kernel(self.text, lo, hi, self.npix, out)
        if code:  # validated on read; only reachable if the buffer was altered
            raise RLEError(code, at)
        return out[:n]

    def mask(self, image: int | str, cls: int | str) -> np.ndarray:
        """The dense boolean mask (``height`` × ``width``) of (image, class), built on demand."""
        flat = np.zeros(self.npix, bool)
        for a, b in self.runs(image, cls):
            flat[a:b] = True
        return flat.reshape(self.height, self.width)

    def locate(self, image: int, cls: int) -> str:
        """``file:line: image, class`` of a row, for error messages."""
        r = self.row(image, cls)
        line = int(self.lines[r]) if r >= 0 else None
        return where(self.path, line, self.images[image], self.classes[cls])


def predictions_from_rles(
    label: str,
    classes: Sequence[str],
    images: Sequence[str],
    rles: Sequence[Sequence[str]],
    height: int = CANVAS,
    width: int = CANVAS,
) -> Predictions:
    """In-memory ``Predictions`` from RLE text, ``rles[i][c]`` for image ``i``, class ``c``
    (e.g. ground truth rasterised from polygons). Invalid text raises ``InputError``."""
    flat = [r for row in rles for r in row]
    lengths = np.fromiter((len(s) for s in flat), np.int64, len(flat))
    offsets = np.zeros(len(flat) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = _text_buffer("".join(flat))
    codes, _, counts, areas = scan_kernel(text, offsets, height * width)
    if codes.any():
        r = int(np.flatnonzero(codes)[0])
        raise InputError(
            f"{where(label, None, images[r // len(classes)], classes[r % len(classes)])}: "
            f"invalid RLE: {RLE_ERRORS[int(codes[r])]}"
        )
    rows = np.arange(len(flat), dtype=np.int64).reshape(len(images), len(classes))
    return Predictions(
        path=label,
        classes=tuple(classes),
        height=height,
        width=width,
        images=list(images),
        rows=rows,
        text=text,
        offsets=offsets,
        lines=np.zeros(len(flat), np.int64),
        areas=areas,
        run_counts=counts,
    )


def _read_bytes(path: str) -> tuple[bytes, list[str], bool]:
    """The file's bytes (BOM removed), its header fields, and whether the last line lacks its
    newline (a hint of truncation); every record's field count is checked. Raises InputError."""
    import io

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    try:
        data = p.read_bytes()
        if not data.isascii():
            data.decode("utf-8")  # rejects binary and other encodings up front
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: cannot read as UTF-8 CSV (UnicodeDecodeError)") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    first_line = data[: data.find(b"\n")].decode() if b"\n" in data else data.decode()
    header = next(csv.reader(io.StringIO(first_line)), None)
    if header is None:
        raise InputError(f"{path}: empty file (expected header {','.join(COLUMNS)})")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}:1: missing column(s) {', '.join(missing)} (header is {','.join(header)})")
    twice = [c for c in COLUMNS if header.count(c) > 1]
    if twice:
        raise InputError(f"{path}:1: column {twice[0]} appears twice (header is {','.join(header)})")
    counts = field_counts(data)
    bad = np.flatnonzero((counts != len(header)) & (counts != -1))
    unterminated = len(counts) > 1 and not data.endswith(b"\n")
    if len(bad) == 1 and unterminated and int(bad[0]) == len(counts) - 1:
        r = int(bad[0])
        raise InputError(
            f"{path}: file looks truncated: last line {r + 1} has no newline and {counts[r]} of "
            f"{len(header)} fields ({','.join(header)})"
        )
    if len(bad):
        r = int(bad[0])
        raise InputError(
            f"{path}:{r + 1}: {counts[r]} fields where the header has {len(header)} "
            f"({','.join(header)}){f' ({len(bad):,} such lines)' if len(bad) > 1 else ''}"
        )
    return data, header, unterminated


def _plain(data: bytes) -> bool:
    """Whether the tokenizer reads ``data`` exactly as pandas does: ASCII, no quotes, and every
    carriage return part of a CRLF (pandas also ends lines at a lone CR)."""
    if not data.isascii() or b'"' in data:
        return False
    return b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")


def _read_frame(path: str, data: bytes):
    """The three columns of ``data`` as object arrays via pandas (quoted or non-ASCII files)
    and the file line of each row; raises InputError."""
    import io

    import pandas as pd

    try:
        df = pd.read_csv(
            io.BytesIO(data),
            usecols=lambda c: c.strip() in COLUMNS,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except Exception as e:  # pandas raises several parser error types
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else e.__class__.__name__
        raise InputError(f"{path}: not a valid CSV: {msg}") from None
    df.columns = [c.strip() for c in df.columns]
    # Header is line 1 and blank lines are kept as rows, so row i is line i + 2.
    lines = np.arange(len(df), dtype=np.int64) + 2
    cols = [df[c].to_numpy(dtype=object) for c in COLUMNS]
    return cols, lines


def scan_predictions(
    path: str | os.PathLike,
    classes: Sequence[str],
    height: int = CANVAS,
    width: int = CANVAS,
) -> tuple[Predictions, list[Problem]]:
    """Read a prediction CSV and list every problem in it (unknown classes, duplicate rows,
    invalid RLE, bad image names). Unreadable files raise ``InputError``."""
    path = str(path)
    data, header, unterminated = _read_bytes(path)
    classes = tuple(classes)
    if _plain(data):
        cols = _tokenize(data, header, classes)
    else:
        (img, cls, rle), lines = _read_frame(path, data)
        cols = _columns(img, cls, rle, lines, classes)
    return _assemble(path, cols, unterminated, classes, height, width)


@dataclass
class _Columns:
    """A file's rows reduced to codes: image (an index into ``images``, in order of first
    appearance; an empty name is the image "", reported by the checks), class (-1 unknown),
    RLE text with offsets, and each row's line in the file."""

    img_code: np.ndarray
    images: list[str]
    stripped: int  # rows whose image name was a path
    cls_code: np.ndarray
    cls_text: Callable[[int], str]  # row -> its class as written (stripped)
    text: np.ndarray
    offsets: np.ndarray
    lines: np.ndarray


def _tokenize(data: bytes, header: list[str], classes: tuple[str, ...]) -> _Columns:
    """``_Columns`` of a plain file (see ``_plain``) straight from its bytes: one numba pass,
    then Python only once per run of rows of one image."""
    buf = np.frombuffer(data, np.uint8)
    start = data.find(b"\n") + 1 if b"\n" in data else len(data)
    class_bytes = [c.encode() for c in classes]
    class_off = np.zeros(len(classes) + 1, np.int64)
    np.cumsum([len(b) for b in class_bytes], out=class_off[1:])
    class_text = np.frombuffer(b"".join(class_bytes), np.uint8) if class_bytes else np.zeros(0, np.uint8)
    lines, spans, new_name, cls_code, text, offsets = tokenize_kernel(
        buf,
        start,
        ord(","),
        header.index(COLUMNS[0]),
        header.index(COLUMNS[1]),
        header.index(COLUMNS[2]),
        class_text,
        class_off,
    )
    firsts = np.flatnonzero(new_name)
    index: dict[str, int] = {}
    group_code = np.empty(len(firsts), np.int64)
    stripped_groups = np.zeros(len(firsts), bool)
    for g, r in enumerate(firsts):
        written = data[spans[r, 0] : spans[r, 1]].decode("ascii").strip()
        name = _basename(written)
        stripped_groups[g] = name != written
        group_code[g] = index.setdefault(name, len(index))
    sizes = np.diff(np.append(firsts, len(lines)))
    img_code = np.repeat(group_code, sizes)
    stripped = int(sizes[stripped_groups].sum())

    def cls_text(r: int) -> str:
        return data[spans[r, 2] : spans[r, 3]].decode("ascii").strip()

    return _Columns(img_code, list(index), stripped, cls_code, cls_text, text, offsets, lines)


def _basename(name: str) -> str:
    """An image name given as a path, reduced to its file name (either separator)."""
    return name[max(name.rfind("/"), name.rfind("\\")) + 1 :]


def _columns(
    img: np.ndarray, cls: np.ndarray, rle: np.ndarray, lines: np.ndarray, classes: tuple[str, ...]
) -> _Columns:
    """``_Columns`` of three object arrays of str (pandas-read files and DataFrames)."""
    import pandas as pd

    blank = (img == "") & (cls == "") & (rle == "")
    if blank.any():
        img, cls, rle, lines = img[~blank], cls[~blank], rle[~blank], lines[~blank]
    trimmed = pd.Series(img, dtype=object).str.strip()
    names = trimmed.str.replace(r"^.*[\\/]", "", regex=True).to_numpy(dtype=object)
    stripped = int((names != trimmed.to_numpy(dtype=object)).sum())
    cls = pd.Series(cls, dtype=object).str.strip().to_numpy(dtype=object)
    cls_code = pd.Index(list(classes)).get_indexer(cls).astype(np.int64)
    img_code, uniques = pd.factorize(names)
    # 'nan' is how some scripts spell an empty mask (str(float('nan'))).
    short = np.fromiter((len(s) <= 5 for s in rle), bool, len(rle))
    for r in np.flatnonzero(short):
        if rle[r].strip().lower() == "nan":
            rle[r] = ""
    lengths = np.fromiter((len(s) for s in rle), np.int64, len(rle))
    offsets = np.zeros(len(rle) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = _text_buffer("".join(rle))
    return _Columns(
        img_code.astype(np.int64),
        [str(u) for u in uniques],
        stripped,
        cls_code,
        lambda r: str(cls[r]),
        text,
        offsets,
        lines,
    )


def _text_buffer(text: str) -> np.ndarray:
    """RLE text as a writable uint8 array, one byte per code point ('?' for non-ASCII, so
    offsets count characters). Writable as the tokenizer's are: numba compiles a kernel once
    per read-only-ness of its arguments."""
    return np.frombuffer(bytearray(text.encode("ascii", "replace")), np.uint8)


def _assemble(
    path: str, cols: _Columns, unterminated: bool, classes: tuple[str, ...], height: int, width: int
) -> tuple[Predictions, list[Problem]]:
    """The checks of ``scan_predictions`` on a file's columns, shared by the tokenizer, pandas
    and in-memory frames; ``cols.lines`` locate each row in messages."""
    img_code, cls_code, lines = cols.img_code, cols.cls_code, cols.lines
    problems: list[Problem] = []

    def problem(r: int, msg: str) -> None:
        problems.append(Problem(path, msg, int(lines[r]), cols.images[img_code[r]] or None, cols.cls_text(r) or None))

    empty_name = np.array([name == "" for name in cols.images], bool)
    no_name = empty_name[img_code] if len(img_code) else np.zeros(0, bool)
    for r in np.flatnonzero(no_name):
        problem(r, "empty image name")
    unknown = np.flatnonzero(cls_code < 0)
    if len(unknown):
        # One problem per distinct name: a wrongly cased class would otherwise fill the
        # report with one line per image.
        seen = np.array([cols.cls_text(r) for r in unknown], dtype=str)
        names_seen, first, counts = np.unique(seen, return_index=True, return_counts=True)
        for name, r, n in zip(names_seen, unknown[first], counts, strict=True):
            problem(r, unknown_class_message(str(name), int(n), classes))
    ok = (cls_code >= 0) & ~no_name
    m = len(img_code)
    key = np.where(ok, img_code * len(classes) + cls_code, -1)
    first_row = np.full(len(cols.images) * len(classes), m, np.int64)
    np.minimum.at(first_row, key[ok], np.flatnonzero(ok))
    rows = np.arange(m, dtype=np.int64)
    dup = ok & (first_row[np.maximum(key, 0)] != rows)
    for r in np.flatnonzero(dup):
        problem(r, f"duplicate row (first at line {lines[first_row[key[r]]]})")

    text, offsets = cols.text, cols.offsets
    codes, at, counts, areas = scan_kernel(text, offsets, height * width)
    for r in np.flatnonzero(codes):
        tok = f" at value #{at[r] + 1}" if at[r] >= 0 else ""
        problem(r, f"invalid RLE: {RLE_ERRORS[int(codes[r])]}{tok}")

    table = np.full((len(cols.images), len(classes)), -1, np.int64)
    good = ok & ~dup
    table[img_code[good], cls_code[good]] = np.flatnonzero(good)
    problems.sort(key=lambda p: p.line or 0)
    preds = Predictions(
        path=path,
        classes=classes,
        height=height,
        width=width,
        images=cols.images,
        rows=table,
        text=text,
        offsets=offsets,
        lines=lines,
        areas=areas,
        run_counts=counts,
        paths_stripped=cols.stripped,
    )
    if unterminated and len(lines):
        problems = _truncation(preds, problems, int(img_code[-1]))
    return preds, problems


def scan_frame(
    frame, classes: Sequence[str] | None = None, height: int = CANVAS, width: int = CANVAS, name: str = "DataFrame"
) -> tuple[Predictions, list[Problem]]:
    """``scan_predictions`` for a pandas DataFrame ``image_name,class,rle`` (rows located by
    position); ``classes=None``: the hand-bone classes when the frame's are among them, else
    the frame's in order of appearance. Missing columns raise ``InputError``."""
    missing = [c for c in COLUMNS if c not in getattr(frame, "columns", ())]
    if missing:
        raise InputError(f"{name}: missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})")
    img, cl, rle = (_text_column(frame[c]) for c in COLUMNS)
    if classes is None:
        seen = tuple(dict.fromkeys(str(c).strip() for c in cl))
        classes = DEFAULT_CLASSES if set(seen) <= set(DEFAULT_CLASSES) else seen
    lines = np.arange(len(img), dtype=np.int64)
    classes = tuple(classes)
    return _assemble(name, _columns(img, cl, rle, lines, classes), False, classes, height, width)


def _truncation(preds: Predictions, problems: list[Problem], last_image: int) -> list[Problem]:
    """Recognise a file cut off while it was written: the last line has no newline and
    either that line is invalid or the last image has fewer classes than the others. Sets
    ``preds.truncation``; an invalid last line's problem is folded into it, so that a cut
    reads as one line rather than as an RLE error plus a missing row per class."""
    last_line = int(preds.lines[-1])
    at_end = [p for p in problems if p.line == last_line]
    if last_image < 0:  # the last row had no usable image name
        have, full, image = 0, len(preds.classes), None
    else:
        per_image = (preds.rows >= 0).sum(1)
        have = int(per_image[last_image])
        others = np.delete(per_image, last_image)
        full = int(others.max()) if len(others) else len(preds.classes)
        image = preds.images[last_image]
    if not at_end and have >= full:
        return problems  # a complete file that merely lacks the final newline
    what = f"last line {last_line} has no newline"
    if at_end:
        what += f" and {at_end[0].message}"
    if image is not None:
        what += f"; image {image} has {have} of {full} classes"
    preds.truncation = Problem(preds.path, f"file looks truncated: {what}")
    preds.truncated_image = last_image
    if not at_end:
        return problems  # nothing invalid yet: readers warn, 'check' reports the missing rows this way
    return [preds.truncation, *(p for p in problems if p.line != last_line)]


def unknown_class_message(name: str, count: int, classes: Sequence[str]) -> str:
    """``unknown class 'x' (N rows, …; did you mean 'X'?)``, the suggestion from the
    class list: a case-insensitive match first, else the closest spelling."""
    rows = f"{count:,} rows, first here; " if count > 1 else ""
    guess = suggest(name, classes)
    if guess is not None:
        return f"unknown class {name!r} ({rows}did you mean {guess!r}?)"
    return f"unknown class {name!r} ({rows}expected one of {len(classes)} classes: {listing(classes, 3)})"


def read_predictions(
    path: str | os.PathLike,
    classes: Sequence[str],
    height: int = CANVAS,
    width: int = CANVAS,
) -> Predictions:
    """Read and validate a prediction CSV; the first problem raises ``InputError``."""
    preds, problems = scan_predictions(path, classes, height, width)
    _raise_first(problems)
    return preds


def _raise_first(problems: list[Problem]) -> None:
    if problems:
        extra = f" (and {plural(len(problems) - 1, 'more problem')})" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{extra}")


def _text_column(col) -> np.ndarray:
    """A frame column as an object array of str, NaN/None as ""."""
    values = col.to_numpy(dtype=object)
    return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values], dtype=object)


def image_positions(src: Predictions, images: Sequence[str], reference: str, label: str = "") -> np.ndarray:
    """Where each of ``images`` (those of ``reference``) sits in ``src``; a different image
    set is a ``DataError`` listing a few differences."""
    idx = np.array([src.image_index(name) for name in images], np.int64)
    absent = [images[i] for i in np.flatnonzero(idx < 0)]
    extra = sorted(set(src.images) - set(images))
    if absent or extra:
        parts = []
        if absent:
            parts.append(f"{plural(len(absent), 'image')} of {reference} missing (e.g. {', '.join(absent[:3])})")
        if extra:
            parts.append(f"{plural(len(extra), 'image')} not in {reference} (e.g. {', '.join(extra[:3])})")
        raise DataError(f"{src.path}{label}: image set differs: {'; '.join(parts)}")
    return idx


def missing_rows(preds: Predictions) -> list[Problem]:
    """The (image, class) pairs absent from the file: one problem per pair, except a class
    absent from every image (one problem for the class; usually a misspelt class name) and
    the last image of a truncated file (one problem for the truncation)."""
    absent = preds.rows < 0
    n_images = len(preds.images)
    whole = absent.all(0) if n_images > 1 else np.zeros(len(preds.classes), bool)
    out = [
        Problem(preds.path, f"no row in any of the {n_images:,} images", None, None, preds.classes[c])
        for c in np.flatnonzero(whole)
    ]
    cut = preds.truncated_image if preds.truncation is not None else -1
    out += [
        Problem(preds.path, "missing row", None, preds.images[i], preds.classes[c])
        for i, c in zip(*np.nonzero(absent & ~whole), strict=False)
        if i != cut
    ]
    return out


class PredictionWriter:
    """Streams rows in canonical order to a temporary file next to ``path`` and renames it
    into place only when the ``with`` block ends without an exception."""

    def __init__(self, path: str | os.PathLike, classes: Sequence[str]):
        self.path = Path(path)
        self.classes = tuple(classes)
        self._class_fields = [csv_field(c) for c in self.classes]
        self._ctx = None
        self._fh = None
        self.rows_written = 0

    def __enter__(self) -> PredictionWriter:
        self._ctx = atomic_open(self.path)
        self._fh = self._ctx.__enter__()
        self._fh.write(",".join(COLUMNS) + "\n")
        return self

    def write_image(self, image: str, rles: Sequence[str]) -> None:
        """Write one image's rows; ``rles`` in class-list order."""
        if len(rles) != len(self.classes):
            raise ValueError(f"expected {len(self.classes)} masks for {image}, got {len(rles)}")
        name = csv_field(image)
        self._fh.write("".join(f"{name},{c},{r}\n" for c, r in zip(self._class_fields, rles)))
        self.rows_written += len(rles)

    def write_rows(self, text: bytes, rows: int) -> None:
        """Write ``rows`` rows already formatted as CSV lines (UTF-8)."""
        self._fh.write(text.decode())
        self.rows_written += rows

    def __exit__(self, exc_type, exc, tb) -> None:
        self._ctx.__exit__(exc_type, exc, tb)


class MemoryWriter:
    """``PredictionWriter``'s twin that keeps the rows in memory: ``predictions()`` after
    the ``with`` block gives them as ``Predictions`` (for jobs run without an output)."""

    def __init__(self, label: str, classes: Sequence[str], height: int, width: int):
        self.label, self.classes, self.height, self.width = label, tuple(classes), height, width
        self.images: list[str] = []
        self.rles: list[Sequence[str]] = []
        self.rows_written = 0

    def __enter__(self) -> MemoryWriter:
        return self

    def write_image(self, image: str, rles: Sequence[str]) -> None:
        if len(rles) != len(self.classes):
            raise ValueError(f"expected {len(self.classes)} masks for {image}, got {len(rles)}")
        self.images.append(image)
        self.rles.append(list(rles))
        self.rows_written += len(rles)

    def __exit__(self, exc_type, exc, tb) -> None:
        pass

    def predictions(self) -> Predictions:
        return predictions_from_rles(self.label, self.classes, self.images, self.rles, self.height, self.width)


def writer_for(
    output: str | os.PathLike | None, classes: Sequence[str], height: int, width: int, label: str = "memory"
) -> PredictionWriter | MemoryWriter:
    """A ``PredictionWriter`` for ``output``, or a ``MemoryWriter`` when it is ``None``."""
    return PredictionWriter(output, classes) if output is not None else MemoryWriter(label, classes, height, width)


def written(writer: PredictionWriter | MemoryWriter) -> int | Predictions:
    """What a job hands back once its writer is closed: rows written to a file, or the
    ``Predictions`` kept in memory."""
    return writer.predictions() if isinstance(writer, MemoryWriter) else writer.rows_written


def csv_field(s: str) -> str:
    """A CSV field as written: quoted when it holds a comma, quote or line break."""
    if any(ch in s for ch in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def write_predictions(
    path: str | os.PathLike,
    classes: Sequence[str],
    images: Iterable[tuple[str, Sequence[str]]],
) -> int:
    """Write ``(image, rles)`` pairs atomically; returns rows written."""
    with PredictionWriter(path, classes) as w:
        for image, rles in images:
            w.write_image(image, rles)
    return w.rows_written
