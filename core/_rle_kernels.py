"""Kernels of the RLE codec: text ↔ runs (parse, validate, format) and dense masks ↔ runs
(private: call the checked wrappers of ``core.codec``). See ``core.jit`` for why kernels sit in
files of their own.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)

# Error codes of the parse kernels (messages: ``core.codec.RLE_ERRORS``).
OK = 0

ERR_ODD = 1

ERR_CHAR = 2

ERR_ZERO_LENGTH = 3

ERR_ZERO_START = 4

ERR_ORDER = 5

ERR_BOUNDS = 6

ERR_OVERFLOW = 7

_MAX_VALUE = 1 << 62  # any value beyond this cannot address a real mask


_SAFE_DIGITS = 18  # a number of at most 18 digits is below _MAX_VALUE: no check per digit


@nb.njit(cache=True, nogil=True)
def _long_value(buf, lo, hi):
    """The number of digits starting at ``buf[lo]`` and its end, or -1 (and where it stopped)
    once it passes ``_MAX_VALUE``: checked before each multiplication, as int64 would wrap."""
    v = 0
    i = lo
    while i < hi and 48 <= buf[i] <= 57:
        if v > _MAX_VALUE // 10:
            return -1, i
        v = v * 10 + (np.int64(buf[i]) - 48)
        if v > _MAX_VALUE:
            return -1, i
        i += 1
    return v, i


@nb.njit(cache=True, nogil=True)
def parse_kernel(buf, lo, hi, npix, out):
    """Parse ``buf[lo:hi]`` into ``out`` (k, 2); return (n_runs, error_code, value_index).

    ``out`` needs ``(hi - lo) // 4 + 1`` rows at most (every pair takes ≥ 4 bytes).
    Touching runs are merged; overlapping or descending runs are an error.
    """
    n = 0
    k = 0  # index of the value being read
    prev_stop = -1
    start = 0
    i = lo
    while i < hi:
        c = buf[i]
        if c == 32 or c == 9 or c == 13 or c == 10:
            i += 1
            continue
        if c < 48 or c > 57:
            return n, ERR_CHAR, k
        first = i
        v = int(c) - 48
        i += 1
        while i < hi:
            d = int(buf[i]) - 48  # unbounded in the Python twin: no overflow warning there
            if d < 0 or d > 9:
                break
            v = v * 10 + d
            i += 1
        if i - first > _SAFE_DIGITS:  # a long number: it may have passed the limit (and wrapped)
            v, i = _long_value(buf, first, hi)
            if v < 0:
                return n, ERR_OVERFLOW, k
        if i < hi:
            c = buf[i]
            if not (c == 32 or c == 9 or c == 13 or c == 10):
                return n, ERR_CHAR, k
        if k % 2 == 0:
            if v < 1:
                return n, ERR_ZERO_START, k
            start = v - 1
        else:
            if v < 1:
                return n, ERR_ZERO_LENGTH, k
            stop = start + v
            if stop > npix:
                return n, ERR_BOUNDS, k
            if start < prev_stop:
                return n, ERR_ORDER, k
            if start == prev_stop:
                out[n - 1, 1] = stop
            else:
                out[n, 0] = start
                out[n, 1] = stop
                n += 1
            prev_stop = stop
        k += 1
    if k % 2 == 1:
        return n, ERR_ODD, k - 1
    return n, OK, -1


@nb.njit(cache=True, nogil=True)
def scan_kernel(buf, offsets, npix):
    """Validate every span ``buf[offsets[r]:offsets[r+1]]`` as a mask of ``npix[r]`` pixels;
    return per-row (error code, value index, run count, area)."""
    m = offsets.shape[0] - 1
    codes = np.zeros(m, np.int8)
    where = np.full(m, -1, np.int64)
    counts = np.zeros(m, np.int64)
    areas = np.zeros(m, np.int64)
    widest = 0
    for r in range(m):
        widest = max(widest, offsets[r + 1] - offsets[r])
    scratch = np.empty((widest // 4 + 1, 2), np.int64)
    for r in range(m):
        n, code, at = parse_kernel(buf, offsets[r], offsets[r + 1], npix[r], scratch)
        codes[r] = code
        where[r] = at
        counts[r] = n
        a = 0
        for j in range(n):
            a += scratch[j, 1] - scratch[j, 0]
        areas[r] = a
    return codes, where, counts, areas


@nb.njit(cache=True, nogil=True)
def parse_valid_kernel(buf, lo, hi, out, n):
    """Parse ``buf[lo:hi]``, RLE text ``parse_kernel`` accepted, into ``out`` from row ``n``
    on; return the new row count. The same runs as ``parse_kernel`` (touching runs merged)
    without its checks: a block's sources were validated when read, and the vote parses
    every one of their digits again."""
    k = 0
    start = 0
    prev = -1
    i = lo
    while i < hi:
        v = np.int64(buf[i]) - 48
        i += 1
        if v < 0 or v > 9:
            continue
        while i < hi:
            d = np.int64(buf[i]) - 48
            if d < 0 or d > 9:
                break
            v = v * 10 + d
            i += 1
        if k == 0:
            start = v - 1
            k = 1
            continue
        k = 0
        if start == prev and n > 0:
            out[n - 1, 1] = start + v
        elif n < out.shape[0]:  # full only if the text is not what was validated: never written past
            out[n, 0] = start
            out[n, 1] = start + v
            n += 1
        prev = start + v
    return n


@nb.njit(cache=True, nogil=True)
def write_uint(out, pos, v):
    """Write the decimal digits of ``v`` ≥ 0 at ``out[pos:]``; return the new position."""
    digits = 1
    t = v
    while t >= 10:
        t //= 10
        digits += 1
    end = pos + digits
    for j in range(end - 1, pos - 1, -1):
        out[j] = 48 + v % 10
        v //= 10
    return end


@nb.njit(cache=True, nogil=True)
def format_kernel(runs, out, pos):
    """Write ``runs`` as ``start length`` text at ``out[pos:]``; return the end position.

    ``out`` needs ``42 * len(runs)`` free bytes at most.
    """
    for j in range(runs.shape[0]):
        if j > 0:
            out[pos] = 32
            pos += 1
        pos = write_uint(out, pos, runs[j, 0] + 1)
        out[pos] = 32
        pos += 1
        pos = write_uint(out, pos, runs[j, 1] - runs[j, 0])
    return pos


@nb.njit(cache=True, nogil=True)
def _pixel_set(b, p, itemsize):
    for q in range(p * itemsize, (p + 1) * itemsize):
        if b[q] != 0:
            return True
    return False


@nb.njit(cache=True, nogil=True)
def encode_kernel(b, words, itemsize, npix):
    """Runs of non-zero pixels in a flat mask given as bytes ``b`` (``npix * itemsize``)
    and as the 64-byte-aligned prefix ``words`` (uint64 view of ``b``).

    Empty stretches are skipped eight words (64 bytes) at a time, so the cost follows the
    mask's extent, not its pixel count; within set stretches pixels are read one by one.
    """
    cap = 64
    out = np.empty((cap, 2), np.int64)
    n = 0
    nwords = words.shape[0]
    pix_per_word = 8 // itemsize
    p = 0
    while p < npix:
        # Skip empty space a block at a time while aligned on a word boundary.
        if (p * itemsize) % 64 == 0:
            w = (p * itemsize) // 8
            while w + 8 <= nwords:
                acc = (
                    words[w]
                    | words[w + 1]
                    | words[w + 2]
                    | words[w + 3]
                    | words[w + 4]
                    | words[w + 5]
                    | words[w + 6]
                    | words[w + 7]
                )
                if acc != 0:
                    break
                w += 8
            p = w * pix_per_word
            if p >= npix:
                break
        if not _pixel_set(b, p, itemsize):
            p += 1
            continue
        start = p
        while p < npix and _pixel_set(b, p, itemsize):
            p += 1
        if n == cap:
            cap *= 2
            bigger = np.empty((cap, 2), np.int64)
            for j in range(n):  # a loop: slice assignment's checks cost seconds of compilation
                bigger[j, 0] = out[j, 0]
                bigger[j, 1] = out[j, 1]
            out = bigger
        out[n, 0] = start
        out[n, 1] = p
        n += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def decode_kernel(runs, flat):
    """Set ``flat[start:stop] = 1`` for every run; ``flat`` must be zeroed by the caller."""
    for j in range(runs.shape[0]):
        flat[runs[j, 0] : runs[j, 1]] = 1
