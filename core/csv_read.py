"""Reading prediction CSVs (``image_name,class,rle``): a strict reader.

The reader keeps every RLE as bytes in one buffer with row offsets and a dense table of row
numbers per (image, class): memory is about the file's size, lookups are O(1), and nothing is
decoded until a consumer asks for runs. All RLE strings are validated up front by one numba
pass, so a bad row fails the command before any output is written. Plain files (ASCII, no
quotes) are split by one numba pass over their bytes; others go through pandas; both feed
the same checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core._csv_kernels import blank_between_kernel, tokenize_kernel
from core._rle_kernels import ERR_BOUNDS, scan_kernel
from core.classes import DEFAULT_CLASSES
from core.codec import RLE_ERRORS
from core.csv_bytes import (
    check_fields,
    field_count_error,
    header_of,
    is_plain,
    read_bytes,
    readonly,
    record_count,
)
from core.csv_write import COLUMNS
from core.errors import NAME_LIMIT, InputError, UsageError, listing, plural, quoted, shown, suggest, where
from core.instances import union_instances
from core.layout import DEFAULT_LAYOUT, Layout, Sizes
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
    """A prediction file as read: every RLE as bytes in one buffer (``text``; row ``r`` is
    ``text[offsets[r]:offsets[r + 1]]``, maybe padded with whitespace), and a dense
    ``rows[image, class]`` table of row numbers (-1 where absent).
    ``core.predictions.Predictions`` is this table with its accessors."""

    path: str
    classes: tuple[str, ...]
    height: int
    width: int
    images: list[str]
    rows: np.ndarray  # (n_images, n_classes) int64 row number, -1 when absent
    text: np.ndarray  # uint8, every RLE in row order
    offsets: np.ndarray  # int64 (n_rows + 1,)
    lines: np.ndarray  # int64 (n_rows,) line of each row in the file
    areas: np.ndarray  # int64 (n_rows,) pixels of each valid row
    run_counts: np.ndarray  # int64 (n_rows,)
    paths_stripped: int = 0  # rows whose image_name was a path, matched on basename
    truncation: Problem | None = None  # set when the file looks cut off (see ``_truncation``)
    truncated_image: int = -1  # the incomplete last image of a truncated file
    unterminated: Problem | None = None  # set when a complete-looking file lacks its last line end
    sizes: np.ndarray | None = None  # (n_images, 2) each image's (height, width); None: all height × width
    order: str = "row"  # the RLE order: "column" runs are those of the transposed image
    line_spans: np.ndarray | None = None  # (rows, 2) byte span of each row's line (plain files)


def read_table(
    path: str | os.PathLike,
    classes: Sequence[str],
    height: int,
    width: int,
    layout: Layout = DEFAULT_LAYOUT,
    sizes: Sizes | None = None,
    instances: str = "error",
    limit: int | None = None,
) -> tuple[Table, list[Problem]]:
    """Read a prediction CSV laid out as ``layout`` and list every problem in it (unknown
    classes, duplicate rows, invalid RLE, runs past their image's end, images without a size,
    bad image names). ``sizes``: each image's size (default: ``height`` × ``width`` for all);
    ``instances="union"`` reads several rows of one image and class (one per object) as one
    mask, where by default they are an error. ``limit``: read only the whole lines of about
    the first ``limit`` bytes (a sample). Unreadable files raise ``InputError``."""
    path = str(path)
    classes = tuple(classes)
    if layout.cls is None and len(classes) != 1:
        raise UsageError(
            f"columns: a file without a class column holds one class, but the class list has {len(classes)}",
            param="columns",
        )
    largest = max([height * width, *(h * w for h, w in (sizes.table.values() if sizes else ()))])
    data, header, unterminated = read_bytes(path, largest, f"{height}×{width}", layout, limit, count_fields=False)
    return _table(path, data, header, unterminated, classes, height, width, layout, sizes, instances)


def read_table_bytes(
    path: str,
    data: bytearray,
    classes: Sequence[str],
    height: int,
    width: int,
    scanned: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Table, list[Problem]]:
    """``read_table`` of CSV bytes already in memory (a file's header line and some of its
    lines, as a cluster task reads them; the default layout, one image size); ``path``
    names them in messages. ``scanned``: the rows' run counts and areas, their RLE validated
    already (not scanned again unless the number of rows differs)."""
    path, classes = str(path), tuple(classes)
    header = header_of(data, path, DEFAULT_LAYOUT)
    return _table(path, data, header, False, classes, height, width, DEFAULT_LAYOUT, None, "error", scanned)


def _table(path, data, header, unterminated, classes, height, width, layout, sizes, instances, scanned=None):
    """The table of a file's bytes and header (``read_table``'s work after reading)."""
    if is_plain(data):
        cols = _tokenize(data, header, classes, layout, path, unterminated)
    else:
        unterminated = check_fields(path, header, data)
        (img, cls, rle), lines = _read_frame(path, data, layout, classes)
        cols = _columns(img, cls, rle, lines, classes)
    return _assemble(path, cols, unterminated, classes, height, width, sizes, instances, layout.order, scanned)


def _read_frame(path: str, data: bytes, layout: Layout = DEFAULT_LAYOUT, classes: Sequence[str] = ()):
    """The image, class and RLE columns of ``data`` (named by ``layout``) as object arrays via
    pandas (quoted or non-ASCII files) and the file line of each row; without a class column
    every row is of the one class. Raises InputError."""
    import io

    import pandas as pd

    try:
        df = pd.read_csv(
            io.BytesIO(data),
            usecols=lambda c: c.strip() in layout.columns,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            index_col=False,
            engine="c",
        )
    except Exception as e:  # pandas raises several parser error types
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else e.__class__.__name__
        raise InputError(f"{where(path)}: not a valid CSV: {shown(msg, 2 * NAME_LIMIT)}") from None
    df.columns = [c.strip() for c in df.columns]
    # Header is line 1 and blank lines are kept as rows, so row i is line i + 2.
    lines = np.arange(len(df), dtype=np.int64) + 2
    image, rle = df[layout.image].to_numpy(dtype=object), df[layout.rle].to_numpy(dtype=object)
    if layout.cls is None:
        cls = np.full(len(df), classes[0], dtype=object)
        cls[(image == "") & (rle == "")] = ""  # a blank line stays blank
    else:
        cls = df[layout.cls].to_numpy(dtype=object)
    return [image, cls, rle], lines


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
    line_spans: np.ndarray | None = None  # (rows, 2): each row's line in the bytes read


def _tokenize(
    data: bytearray,
    header: list[str],
    classes: tuple[str, ...],
    layout: Layout = DEFAULT_LAYOUT,
    path: str = "",
    unterminated: bool = False,
) -> _Columns:
    """``_Columns`` of a plain file (see ``is_plain``) straight from its bytes (a
    ``bytearray``, whose bytes between the RLE fields it blanks to hold the rows' text): one
    numba pass, then Python only once per run of rows of one image. Without a class column
    (``layout``) every row is of the one class. A record whose field count is not the
    header's is the ``InputError`` ``check_fields`` raises (naming ``path``)."""
    buf = readonly(data)
    start = data.find(b"\n") + 1 if b"\n" in data else len(data)
    class_bytes = [c.encode() for c in classes]
    class_off = np.zeros(len(classes) + 1, np.int64)
    np.cumsum([len(b) for b in class_bytes], out=class_off[1:])
    class_text = np.frombuffer(b"".join(class_bytes), np.uint8) if class_bytes else np.zeros(0, np.uint8)
    lines, spans, new_name, cls_code, rle, bad = interruptible(
        tokenize_kernel,
        buf,
        start,
        ord(","),
        len(header),
        header.index(layout.image),
        header.index(layout.cls) if layout.cls is not None else -1,
        header.index(layout.rle),
        class_text,
        class_off,
    )
    if bad[0]:
        field_count_error(path, header, record_count(data), int(bad[0]), int(bad[1]), int(bad[2]), unterminated)
    if layout.cls is None:
        cls_code[:] = 0
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
    unknown = {int(r): data[spans[r, 2] : spans[r, 3]].decode("ascii").strip() for r in np.flatnonzero(cls_code < 0)}

    def cls_text(r: int) -> str:
        code = int(cls_code[r])
        return classes[code] if code >= 0 else unknown[r]  # the class as written, trimmed

    # The RLE stays where it was read, the bytes between fields blanked: no second buffer.
    text = np.frombuffer(data, np.uint8)
    interruptible(blank_between_kernel, text, rle)
    offsets = np.append(rle[:, 0], rle[-1, 1] if len(rle) else 0)
    return _Columns(img_code, list(index), stripped, cls_code, cls_text, text, offsets, lines, spans[:, 4:6])


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
    path: str,
    cols: _Columns,
    unterminated: bool,
    classes: tuple[str, ...],
    height: int,
    width: int,
    sizes: Sizes | None = None,
    instances: str = "error",
    order: str = "row",
    scanned: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Table, list[Problem]]:
    """The checks of ``scan_predictions`` on a file's columns, shared by the tokenizer, pandas
    and in-memory frames; ``cols.lines`` locate each row in messages. ``scanned``: the rows'
    run counts and areas, their RLE validated already (see ``read_table_bytes``)."""
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
    if instances != "union":
        for r in np.flatnonzero(dup):
            first = lines[first_row[key[r]]]
            problem(r, f"duplicate row (first at line {first}; one row per object: --instances union)")

    image_sizes, npix = _image_sizes(cols.images, height, width, sizes)
    if sizes is not None:
        for i in np.flatnonzero(npix == 0):
            r = int(np.flatnonzero(img_code == i)[0])
            if cols.images[i]:
                problem(r, f"no size for this image in {shown(sizes.origin)}")
    text, offsets = cols.text, cols.offsets
    row_npix = npix[img_code] if len(img_code) else np.zeros(0, np.int64)
    if scanned is not None and len(scanned[0]) == len(row_npix):
        counts, areas = scanned
        codes = at = np.zeros(len(counts), np.int64)
    else:
        codes, at, counts, areas = interruptible(scan_kernel, text, offsets, row_npix)
    for r in np.flatnonzero((codes != 0) & (row_npix > 0)):
        tok = f" at value #{at[r] + 1}" if at[r] >= 0 else ""
        said = RLE_ERRORS[int(codes[r])]
        if int(codes[r]) == ERR_BOUNDS and sizes is not None:
            h, w = image_sizes[img_code[r]]
            said = f"run extends past the last pixel of its {h}×{w} image"
        problem(r, f"invalid RLE: {said}{tok}")
    if instances == "union" and dup.any():
        text, offsets, counts, areas = union_instances(
            text, offsets, counts, areas, dup & (codes == 0), first_row, key, row_npix
        )

    table = np.full((len(cols.images), len(classes)), -1, np.int64)
    good = ok & ~dup
    table[img_code[good], cls_code[good]] = np.flatnonzero(good)
    problems.sort(key=lambda p: p.line or 0)
    if sizes is not None and len(image_sizes):
        # every image's runs fit within the largest height × width: the bound of later parses
        height, width = int(image_sizes[:, 0].max()), int(image_sizes[:, 1].max())
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
        sizes=image_sizes if sizes is not None else None,
        order=order,
        line_spans=cols.line_spans,
    )
    if unterminated and len(lines):
        problems = _truncation(preds, problems, int(img_code[-1]))
    return preds, problems


def _image_sizes(images: list[str], height: int, width: int, sizes: Sizes | None) -> tuple[np.ndarray, np.ndarray]:
    """Each image's ``(height, width)`` and pixel count (0 where ``sizes`` gives none)."""
    if sizes is None:
        shape = np.empty((len(images), 2), np.int64)
        shape[:] = (height, width)
    else:
        shape = np.array([sizes.of(name) or (0, 0) for name in images], np.int64).reshape(-1, 2)
    return shape, shape[:, 0] * shape[:, 1]


UNTERMINATED = (
    "the last line has no line end; a file cut inside its last number still reads as valid "
    "(…130 as …1): is the file complete?"
)
"""The warning of a file whose last line lacks its line end, when nothing else looks cut."""


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
    if not at_end and have >= full:  # complete, but a cut inside the last number would read so too
        preds.unterminated = Problem(preds.path, UNTERMINATED, last_line)
        return problems
    what = f"last line {last_line} has no newline"
    if at_end:
        what += f" and {at_end[0].message}"
    if image is not None:
        what += f"; image {shown(image)} has {have} of {full} classes"
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
        return f"unknown class {quoted(name)} ({rows}did you mean {quoted(guess)}?)"
    return f"unknown class {quoted(name)} ({rows}expected one of {len(classes)} classes: {listing(classes, 3)})"


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
