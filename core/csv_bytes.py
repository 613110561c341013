"""The bytes of a prediction CSV, read bounded and checked before anything is parsed: every
line's length against the longest row the mask size allows (as the file comes in, so a bad
line never fills memory), the header's columns, and every record's field count."""

from __future__ import annotations

import csv
import ctypes
import os

import numpy as np

from core._csv_kernels import field_counts_kernel, plain_kernel
from core.errors import NAME_LIMIT, InputError, shown, where
from core.inputs import require_file
from core.layout import DEFAULT_LAYOUT, Layout
from core.signals import interruptible


def field_counts(data: bytes, sep: str = ",") -> np.ndarray:
    """Per-record field counts of CSV ``data`` (blank records: -1). pandas silently pads short
    rows and turns one extra field into an index column; a truncated or shifted line must
    instead be an error that names its line."""
    return interruptible(field_counts_kernel, readonly(data), ord(sep))


def readonly(data: bytes | bytearray) -> np.ndarray:
    """``data`` as a read-only uint8 array without a copy: the kernels' argument type is the
    same whether the bytes came as ``bytes`` or as the reader's ``bytearray``."""
    return np.frombuffer(memoryview(data).toreadonly(), np.uint8)


LINE_SLACK = 1 << 20
"""Characters a line may hold beyond its RLE: the image name, the class and other columns."""

CHUNK = 1 << 22
"""Bytes read at a time; a line is checked against its bound as the file comes in."""


def longest_line(npix: int) -> int:
    """The longest line a file of masks of ``npix`` pixels can need: the longest canonical RLE
    (one run per pixel, each ``start length `` of at most 2·digits(npix)+2 characters) plus
    ``LINE_SLACK`` for the other columns. A longer line is refused as it is read.

    >>> longest_line(64 * 64) - LINE_SLACK  # 4,096 runs of at most 10 characters
    40960
    """
    return npix * (2 * len(str(npix)) + 2) + LINE_SLACK


def read_bounded(stream, path: str, bound: int, size: str, chunk: int = CHUNK, limit: int | None = None) -> bytearray:
    """The bytes of binary ``stream``, read ``chunk`` bytes at a time while every line's length
    is checked: the first line longer than ``bound`` is an ``InputError`` (naming ``path``, the
    line, the bound and the mask ``size``) raised as soon as it is seen, so that memory never
    holds more than one chunk past the bound of a bad line, however long the line is.
    ``limit``: stop once that many bytes are read (the head of a file, to sample it)."""
    data = _unfilled(_expected_size(stream, limit))  # filled in place: no copy per chunk
    n = 0  # bytes read so far
    step = max(1, min(chunk, bound))  # a line inside one block is then shorter than the bound
    line = 0  # length of the line being read so far
    while True:
        want = step if limit is None else max(min(step, limit - n), 0)
        if want == 0:
            break
        if n == len(data):  # the file grew, or its size was unknown
            data.extend(bytes(want))
        want = min(want, len(data) - n)
        with memoryview(data) as view, view[n : n + want] as part:
            got = stream.readinto(part)
        if not got:
            break
        first = data.find(b"\n", n, n + got)
        line += got if first < 0 else first - n
        if line > bound:
            number = data.count(b"\n", 0, n) + 1
            raise InputError(
                f"{where(path, number)}: line longer than {bound:,} characters, more than a row of "
                f"{size} masks can need; stopped reading there (are height and width right?)"
            )
        if first >= 0:
            line = n + got - data.rfind(b"\n", n, n + got) - 1
        n += got
    del data[n:]
    return data


def read_ranges(fd: int, head: bytes, ranges: np.ndarray) -> bytearray:
    """``head`` followed by the bytes ``[start, stop)`` of each row of ``ranges`` in the open
    file ``fd``, read straight into one buffer (not zeroed first, as in ``read_bounded``). A
    range the file's end cuts short leaves the buffer shorter."""
    data = _unfilled(len(head) + int((ranges[:, 1] - ranges[:, 0]).sum()))
    data[: len(head)] = head
    n = len(head)
    for start, stop in ranges.tolist():
        while start < stop:
            with memoryview(data) as view, view[n : n + stop - start] as part:
                got = os.preadv(fd, [part], start)
            if not got:
                break
            n += got
            start += got
    del data[n:]
    return data


def _unfilled(size: int) -> bytearray:
    """A bytearray of ``size`` bytes left as allocated. ``bytearray(size)`` writes zeros over
    all of it while holding the GIL: for a 100 MB file that is most of the read's time, and
    files read on several threads would take it in turns. Here the pages are first touched by
    ``readinto``, in the kernel, with the GIL released. Only the bytes read are ever kept."""
    return _new_bytearray(None, size)


_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize  # NULL: no copy, no zeroing
_new_bytearray.restype = ctypes.py_object
_new_bytearray.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)


def _expected_size(stream, limit: int | None) -> int:
    """The bytes ``stream`` will give (its file's size, at most ``limit``), plus one so that
    the read seeing its end needs no room of its own; 0 when unknown."""
    try:
        size = os.fstat(stream.fileno()).st_size - stream.tell()
    except (OSError, AttributeError, ValueError):  # io.UnsupportedOperation is an OSError
        return 0
    return max(size if limit is None else min(size, limit), 0) + 1


def read_bytes(
    path: str, npix: int, size: str, layout: Layout, limit: int | None = None, count_fields: bool = True
) -> tuple[bytearray, list[str], bool]:
    """The file's bytes (BOM removed), its header fields, and whether the last line lacks its
    newline (a hint of truncation); every line's length is checked against ``longest_line``
    as it is read (``read_bounded``), and every record's field count (``check_fields``)
    unless ``count_fields`` is false (the tokenizer counts them as it splits the rows).
    ``limit``: only the whole lines of about the first ``limit`` bytes (a sample of the
    file). Raises InputError."""
    name = where(path)
    require_file(path)  # before opening: a FIFO would block, /dev/zero never end
    try:
        with open(path, "rb") as fh:
            data = read_bounded(fh, path, longest_line(npix), size, limit=limit)
            if limit is not None and len(data) >= limit and fh.read(1):
                del data[data.rfind(b"\n") + 1 :]  # a cut line is no part of the sample
        if not data.isascii():
            data.decode("utf-8")  # rejects binary and other encodings up front
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"{name}: no such file") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read ({e.__class__.__name__})") from None
    except UnicodeDecodeError:
        raise InputError(f"{name}: cannot read as UTF-8 CSV (UnicodeDecodeError)") from None
    if data.startswith(b"\xef\xbb\xbf"):
        del data[:3]
    header = header_of(data, path, layout)
    if count_fields:
        return data, header, check_fields(path, header, data)
    return data, header, not data.endswith(b"\n") and _several_records(data)


def header_of(data: bytes | bytearray, path: str, layout: Layout) -> list[str]:
    """The header fields of CSV ``data`` (its first line, BOM removed), stripped: an empty
    file, a missing column of ``layout`` or one given twice is an ``InputError`` naming
    ``path``."""
    import io

    name = where(path)
    first_line = data[: data.find(b"\n")].decode() if b"\n" in data else data.decode()
    header = next(csv.reader(io.StringIO(first_line)), None)
    if header is None:
        raise InputError(f"{name}: empty file (expected header {','.join(layout.columns)})")
    header = [h.strip() for h in header]
    said = shown(",".join(header), 2 * NAME_LIMIT)
    missing = [c for c in layout.columns if c not in header]
    if missing:
        hint = "" if layout != DEFAULT_LAYOUT else "; name the file's columns with --columns image=…,class=…,rle=…"
        raise InputError(f"{name}:1: missing column(s) {', '.join(missing)} (header is {said}){hint}")
    twice = [c for c in layout.columns if header.count(c) > 1]
    if twice:
        raise InputError(f"{name}:1: column {twice[0]} appears twice (header is {said})")
    return header


def check_fields(path: str, header: list[str], data: bytes) -> bool:
    """Check every record's field count (``field_counts``, quotes honoured; blank records
    pass): the first wrong one is ``field_count_error``'s ``InputError``. Returns whether the
    last line of a file of several records lacks its line end."""
    counts = field_counts(data)
    unterminated = len(counts) > 1 and not data.endswith(b"\n")
    bad = np.flatnonzero((counts != len(header)) & (counts != -1))
    if len(bad):
        r = int(bad[0])
        field_count_error(path, header, len(counts), len(bad), r + 1, int(counts[r]), unterminated)
    return unterminated


def _several_records(data: bytes) -> bool:
    """Whether ``record_count(data) > 1``, without counting every line."""
    first = data.find(b"\n")
    if first < 0:
        return False
    return data.find(b"\n", first + 1) >= 0 or bool(data[first + 1 :].strip(b"\r"))


def record_count(data: bytes) -> int:
    """Records of unquoted ``data`` as ``field_counts`` counts them (a last line without its
    line end is one unless it holds nothing but carriage returns)."""
    return data.count(b"\n") + (1 if data[data.rfind(b"\n") + 1 :].strip(b"\r") else 0)


def field_count_error(
    path: str, header: list[str], records: int, n_bad: int, line: int, count: int, unterminated: bool
) -> None:
    """Raise the ``InputError`` of ``n_bad`` records with the wrong field count, the first at
    ``line`` with ``count`` fields, in a file of ``records`` records (header included): a
    truncated file when the only one is a last line without its line end."""
    name = where(path)
    said = shown(",".join(header), 2 * NAME_LIMIT)
    if n_bad == 1 and unterminated and line == records:
        raise InputError(
            f"{name}: file looks truncated: last line {line} has no newline and {count} of "
            f"{len(header)} fields ({said})"
        )
    raise InputError(
        f"{name}:{line}: {count} fields where the header has {len(header)} "
        f"({said}){f' ({n_bad:,} such lines)' if n_bad > 1 else ''}"
    )


def is_plain(data: bytes) -> bool:
    """Whether the tokenizer reads ``data`` exactly as pandas does: ASCII, no quotes, and every
    carriage return part of a CRLF (pandas also ends lines at a lone CR)."""
    return bool(interruptible(plain_kernel, readonly(data)))
