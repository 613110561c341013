"""Reading prediction CSVs (``image_name,class,rle``): a strict reader.

The reader keeps every RLE as bytes in one buffer with row offsets and a dense table of row
numbers per (image, class): memory is about the file's size, lookups are O(1), and nothing is
decoded until a consumer asks for runs. All RLE strings are validated up front by one numba
pass, so a bad row fails the command before any output is written. Plain files (ASCII, no
quotes) are split by one numba pass over their bytes; others go through pandas; both feed
the same checks.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core._csv_kernels import field_counts_kernel, tokenize_kernel
from core._rle_kernels import scan_kernel
from core.classes import DEFAULT_CLASSES
from core.codec import RLE_ERRORS
from core.csv_write import COLUMNS
from core.errors import InputError, listing, plural, suggest, where
from core.signals import interruptible


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
class Table:
    """A prediction file as read: every RLE as bytes in one buffer (``text``) with row
    ``offsets``, and a dense ``rows[image, class]`` table of row numbers (-1 where absent).
    ``core.predictions.Predictions`` is this table with its accessors."""

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


def field_counts(data: bytes, sep: str = ",") -> np.ndarray:
    """Per-record field counts of CSV ``data`` (blank records: -1). pandas silently pads short
    rows and turns one extra field into an index column; a truncated or shifted line must
    instead be an error that names its line."""
    return interruptible(field_counts_kernel, np.frombuffer(data, np.uint8), ord(sep))


def read_table(path: str | os.PathLike, classes: Sequence[str], height: int, width: int) -> tuple[Table, list[Problem]]:
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
    lines, spans, new_name, cls_code, text, offsets = interruptible(
        tokenize_kernel,
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
    text = text_buffer("".join(rle))
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


def text_buffer(text: str) -> np.ndarray:
    """RLE text as a writable uint8 array, one byte per code point ('?' for non-ASCII, so
    offsets count characters). Writable as the tokenizer's are: numba compiles a kernel once
    per read-only-ness of its arguments."""
    return np.frombuffer(bytearray(text.encode("ascii", "replace")), np.uint8)


def _assemble(
    path: str, cols: _Columns, unterminated: bool, classes: tuple[str, ...], height: int, width: int
) -> tuple[Table, list[Problem]]:
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
    codes, at, counts, areas = interruptible(scan_kernel, text, offsets, height * width)
    for r in np.flatnonzero(codes):
        tok = f" at value #{at[r] + 1}" if at[r] >= 0 else ""
        problem(r, f"invalid RLE: {RLE_ERRORS[int(codes[r])]}{tok}")

    table = np.full((len(cols.images), len(classes)), -1, np.int64)
    good = ok & ~dup
    table[img_code[good], cls_code[good]] = np.flatnonzero(good)
    problems.sort(key=lambda p: p.line or 0)
    preds = Table(
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


def _truncation(preds: Table, problems: list[Problem], last_image: int) -> list[Problem]:
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


def raise_first(problems: list[Problem]) -> None:
    if problems:
        extra = f" (and {plural(len(problems) - 1, 'more problem')})" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{extra}")


def _text_column(col) -> np.ndarray:
    """A frame column as an object array of str, NaN/None as ""."""
    values = col.to_numpy(dtype=object)
    return np.array(["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values], dtype=object)


def frame_table(
    frame, classes: Sequence[str] | None, height: int, width: int, name: str
) -> tuple[Table, list[Problem]]:
    """``read_table`` for a pandas DataFrame ``image_name,class,rle`` (rows located by position);
    ``classes=None``: the hand-bone classes when the frame's are among them, else the frame's in
    order of appearance. Missing columns raise ``InputError``."""
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
