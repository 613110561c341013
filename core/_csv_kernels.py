"""Kernels of the CSV reader: field counts of every record, the tokenizer that reduces a
plain file's rows to image spans, class codes and RLE text in one pass, and the whole-file
scans before it (is the file plain, how many lines). The scans and the search for a field's
end look at eight bytes per step, as one uint64 word (private: see ``core.csv_read``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)


@nb.njit(cache=True, nogil=True)
def field_counts_kernel(buf, sep):
    """Fields per record (-1 for a blank record), honouring double-quoted fields; a record
    ends at ``\\n`` outside quotes (a preceding ``\\r`` belongs to no field)."""
    counts = np.empty(buf.shape[0] // 1 + 1, np.int64)
    n = 0
    fields = 1
    empty = True
    quoted = False
    for i in range(buf.shape[0]):
        c = buf[i]
        if c == 34:
            quoted = not quoted
            empty = False
        elif quoted:
            continue
        elif c == sep:
            fields += 1
            empty = False
        elif c == 10:
            counts[n] = -1 if empty else fields
            n += 1
            fields = 1
            empty = True
        elif c != 13:
            empty = False
    if not empty:
        counts[n] = fields
        n += 1
    return counts[:n].copy()


@nb.njit(cache=True, nogil=True)
def is_space(c):
    """ASCII whitespace as ``str.strip`` sees it."""
    return c == 32 or (9 <= c <= 13) or (28 <= c <= 31)


@nb.njit(cache=True, nogil=True)
def same_bytes(a, a_lo, a_hi, b, b_lo, b_hi):
    """Whether ``a[a_lo:a_hi]`` and ``b[b_lo:b_hi]`` hold the same bytes."""
    if a_hi - a_lo != b_hi - b_lo:
        return False
    for j in range(a_hi - a_lo):
        if a[a_lo + j] != b[b_lo + j]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def copy_bytes(out, pos, src, lo, hi):
    """Copy ``src[lo:hi]`` to ``out[pos:]``; return the new position. A loop between two
    views: slice assignment's checks cost seconds of compilation, and a loop indexing the
    whole arrays is not made a block copy (this one is, about ten times faster)."""
    part = src[lo:hi]
    into = out[pos : pos + part.shape[0]]
    for j in range(part.shape[0]):
        into[j] = part[j]
    return pos + part.shape[0]


@nb.njit(cache=True, nogil=True)
def _matches(x, pattern):
    """The bytes of the word ``x`` equal to the byte ``pattern`` repeats, as their high bit
    (0x80) in an otherwise zero word: exact per byte, and without the wrap-around of the
    usual ``(v - 0x01…) & ~v & 0x80…`` form."""
    low7 = np.uint64(0x7F7F7F7F7F7F7F7F)
    v = x ^ pattern  # the matching bytes are 0
    return ~(((v & low7) + low7) | v | low7)


@nb.njit(cache=True, nogil=True)
def count_byte_kernel(buf, byte):
    """How many bytes of ``buf`` are ``byte``, eight at a time."""
    n = buf.shape[0]
    words = buf[: n - n % 8].view(np.uint64)
    pattern = np.uint64(0x0101010101010101) * np.uint64(byte)
    total = 0
    for w in range(words.shape[0]):
        y = _matches(words[w], pattern) >> np.uint64(7)  # one 1 per match, in its byte
        y += y >> np.uint64(8)
        y += y >> np.uint64(16)
        y += y >> np.uint64(32)
        total += np.int64(y & np.uint64(0xFF))
    for j in range(words.shape[0] * 8, n):
        total += buf[j] == byte
    return total


@nb.njit(cache=True, nogil=True)
def plain_kernel(buf):
    """Whether ``buf`` is ASCII without a double quote, and each of its carriage returns is
    followed by a line feed (see ``core.csv_bytes.is_plain``)."""
    n = buf.shape[0]
    words = buf[: n - n % 8].view(np.uint64)
    high = np.uint64(0x8080808080808080)
    quotes = np.uint64(0x2222222222222222)
    returns = np.uint64(0x0D0D0D0D0D0D0D0D)
    for w in range(words.shape[0]):
        x = words[w]
        if x & high or _matches(x, quotes):
            return False
        if _matches(x, returns):
            for j in range(8 * w, 8 * w + 8):
                if buf[j] == 13 and (j + 1 == n or buf[j + 1] != 10):
                    return False
    for j in range(words.shape[0] * 8, n):
        c = buf[j]
        if c >= 128 or c == 34 or (c == 13 and (j + 1 == n or buf[j + 1] != 10)):
            return False
    return True


@nb.njit(cache=True, nogil=True)
def field_end(buf, words, pos, seps):
    """The first position from ``pos`` holding a line end or the separator (``seps``: it in
    every byte of a word), or ``len(buf)``. ``words``: ``buf``'s whole words, as uint64:
    the long RLE fields are crossed eight bytes per step, not one."""
    n = buf.shape[0]
    sep = np.uint8(seps & np.uint64(0xFF))
    lines = np.uint64(0x0A0A0A0A0A0A0A0A)
    while pos < n and pos % 8 != 0:
        c = buf[pos]
        if c == 10 or c == sep:
            return pos
        pos += 1
    w = pos // 8
    while w < words.shape[0]:
        x = words[w]
        if _matches(x, lines) or _matches(x, seps):
            break
        w += 1
    pos = max(pos, w * 8)
    while pos < n:
        c = buf[pos]
        if c == 10 or c == sep:
            return pos
        pos += 1
    return n


@nb.njit(cache=True, nogil=True)
def _mark(field, f, lo, hi, col_img, col_cls, col_rle):
    """Record field ``f`` of a line, ``[lo, hi)``, if it is the image, class or RLE column."""
    if f == col_img:
        field[0], field[1] = lo, hi
    elif f == col_cls:
        field[2], field[3] = lo, hi
    elif f == col_rle:
        field[4], field[5] = lo, hi


@nb.njit(cache=True, nogil=True)
def tokenize_kernel(buf, start, sep, n_fields, col_img, col_cls, col_rle, class_text, class_off):
    """Split the records of an unquoted ASCII CSV (from ``buf[start:]``, after the header) and
    return, per row: its line; the spans of its image field, its class field and its whole
    line (line end included); whether its image field's bytes differ from the previous row's
    (a new run of rows of one image); its class (index into the class list
    ``class_text[class_off[k]:class_off[k+1]]`` after trimming, -1 unknown); the span of its
    RLE field (empty for ``nan``, as ``str(float('nan'))`` writes an empty mask, read as
    empty when at most 5 bytes long); and the records whose field count is not ``n_fields``
    as ``(how many, the first one's line, its count)``, as ``field_counts_kernel`` would
    count them. Blank lines and rows whose three fields are all empty are skipped, as the
    pandas reader does. The fields are found eight bytes at a time (``field_end``)."""
    n = buf.shape[0]
    words = buf[: n - n % 8].view(np.uint64)
    seps = np.uint64(0x0101010101010101) * np.uint64(sep)  # the separator in every byte
    m = count_byte_kernel(buf[start:], 10) + 1  # lines, the last maybe without its line end
    lines = np.empty(m, np.int64)
    spans = np.empty((m, 6), np.int64)  # image lo, hi; class lo, hi; the line's bytes lo, hi
    new_name = np.empty(m, np.bool_)
    cls = np.empty(m, np.int64)
    rle = np.empty((m, 2), np.int64)
    n_classes = class_off.shape[0] - 1
    bad = np.zeros(3, np.int64)  # how many, first line, its field count
    field = np.empty(6, np.int64)  # spans of the image, class and RLE fields of a line
    r = 0
    line = 2
    pos = start
    prev_lo = 0
    prev_hi = -1
    while pos < n:
        f = 0
        lo = pos
        for j in range(6):
            field[j] = pos
        end = pos
        while True:
            end = field_end(buf, words, end, seps)
            if end == n or buf[end] == 10:
                break
            _mark(field, f, lo, end, col_img, col_cls, col_rle)
            f += 1
            end += 1
            lo = end
        stop = end - 1 if end > pos and buf[end - 1] == 13 else end
        if stop > pos:
            _mark(field, f, lo, stop, col_img, col_cls, col_rle)
            f += 1
            il, ih, cl, ch, rl, rh = field[0], field[1], field[2], field[3], field[4], field[5]
            if f != n_fields:
                if bad[0] == 0:
                    bad[1] = line
                    bad[2] = f
                bad[0] += 1
            if ih > il or ch > cl or rh > rl:
                lines[r] = line
                spans[r, 0] = il
                spans[r, 1] = ih
                spans[r, 2] = cl
                spans[r, 3] = ch
                spans[r, 4] = pos
                spans[r, 5] = min(end + 1, n)  # with its line end
                new_name[r] = not same_bytes(buf, il, ih, buf, prev_lo, prev_hi)
                prev_lo, prev_hi = il, ih
                while cl < ch and is_space(buf[cl]):
                    cl += 1
                while ch > cl and is_space(buf[ch - 1]):
                    ch -= 1
                code = -1
                for k in range(n_classes):
                    if same_bytes(class_text, class_off[k], class_off[k + 1], buf, cl, ch):
                        code = k
                        break
                cls[r] = code
                a, b = rl, rh
                while a < b and is_space(buf[a]):
                    a += 1
                while b > a and is_space(buf[b - 1]):
                    b -= 1
                nan = (
                    rh - rl <= 5
                    and b - a == 3
                    and (buf[a] | 32) == 110
                    and (buf[a + 1] | 32) == 97
                    and (buf[a + 2] | 32) == 110
                )
                rle[r, 0] = rl
                rle[r, 1] = rl if nan else rh
                r += 1
        line += 1
        pos = end + 1
    return lines[:r], spans[:r], new_name[:r], cls[:r], rle[:r], bad


@nb.njit(cache=True, nogil=True)
def blank_between_kernel(buf, rle):
    """Overwrite with spaces the bytes from the end of each row's RLE field ``rle[r]`` to the
    start of the next's (line ends, the other fields, skipped lines, a ``nan``): the buffer
    then holds each row's RLE as ``buf[rle[r, 0]:rle[r + 1, 0]]``, padded with whitespace."""
    for r in range(rle.shape[0] - 1):
        for j in range(rle[r, 1], rle[r + 1, 0]):
            buf[j] = 32
