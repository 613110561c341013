"""Every numba kernel of ``core`` (private: call the checked wrappers of ``core.codec``,
``core.runs``, ``core.score``, ``core.csvscan``, ``ensemble.vote``, ``evaluation.search`` and
``fusion.merge``).

numba's ``cache=True`` checks a cached kernel only against the file that defines it, and a
kernel compiles the kernels it calls into itself. So every kernel that calls another lives in
the same file as its callee: here, the codec, run algebra, scoring and the sweep over run
boundaries with the two kernels built on it (the vote and the tuning histograms). Editing
this file invalidates all of their caches at once; ``tests/test_kernels.py`` checks that no
kernel calls a kernel of another file. Kernels are only moved here, never changed; each
keeps its plain-Python twin as ``kernel.py_func``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

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

INF = np.iinfo(np.int64).max
"""The sweep's end marker: no boundary left."""


# --- codec (wrappers: core.codec) ---------------------------------------------------------


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
        v = 0
        while i < hi:
            c = buf[i]
            if c < 48 or c > 57:
                break
            if v > _MAX_VALUE // 10:  # checked before multiplying too: int64 would wrap
                return n, ERR_OVERFLOW, k
            v = v * 10 + (np.int64(c) - 48)  # int64 in the Python twin too
            if v > _MAX_VALUE:
                return n, ERR_OVERFLOW, k
            i += 1
        if i < hi and not (c == 32 or c == 9 or c == 13 or c == 10):
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
    """Validate every span ``buf[offsets[r]:offsets[r+1]]``; return per-row
    (error code, value index, run count, area)."""
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
        n, code, at = parse_kernel(buf, offsets[r], offsets[r + 1], npix, scratch)
        codes[r] = code
        where[r] = at
        counts[r] = n
        a = 0
        for j in range(n):
            a += scratch[j, 1] - scratch[j, 0]
        areas[r] = a
    return codes, where, counts, areas


@nb.njit(cache=True, nogil=True)
def _write_uint(out, pos, v):
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
        pos = _write_uint(out, pos, runs[j, 0] + 1)
        out[pos] = 32
        pos += 1
        pos = _write_uint(out, pos, runs[j, 1] - runs[j, 0])
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


# --- csvscan (wrappers: core.csvscan) -----------------------------------------------------


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
def _is_space(c):
    """ASCII whitespace as ``str.strip`` sees it."""
    return c == 32 or (9 <= c <= 13) or (28 <= c <= 31)


@nb.njit(cache=True, nogil=True)
def _same_bytes(a, a_lo, a_hi, b, b_lo, b_hi):
    """Whether ``a[a_lo:a_hi]`` and ``b[b_lo:b_hi]`` hold the same bytes."""
    if a_hi - a_lo != b_hi - b_lo:
        return False
    for j in range(a_hi - a_lo):
        if a[a_lo + j] != b[b_lo + j]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def tokenize_kernel(buf, start, sep, col_img, col_cls, col_rle, class_text, class_off):
    """Split the records of an unquoted ASCII CSV (from ``buf[start:]``, after the header) and
    return, per row: its line, its image field's span, whether that span's bytes differ from
    the previous row's (a new run of rows of one image), its class (index into the class
    list ``class_text[class_off[k]:class_off[k+1]]`` after trimming, -1 unknown) and its class
    field's span; and the RLE fields copied into one buffer with offsets (``nan``, as
    ``str(float('nan'))`` writes an empty mask, read as empty when at most 5 bytes long).
    Blank lines and rows whose three fields are all empty are skipped, as the pandas reader
    does. Field counts are checked beforehand (``field_counts_kernel``)."""
    n = buf.shape[0]
    m = 1
    for i in range(start, n):
        if buf[i] == 10:
            m += 1
    lines = np.empty(m, np.int64)
    spans = np.empty((m, 4), np.int64)  # image lo, hi; class lo, hi
    new_name = np.empty(m, np.bool_)
    cls = np.empty(m, np.int64)
    text = np.empty(n - start, np.uint8)
    offsets = np.zeros(m + 1, np.int64)
    n_classes = class_off.shape[0] - 1
    r = 0
    t = 0
    line = 2
    pos = start
    prev_lo = 0
    prev_hi = -1
    while pos < n:
        end = pos
        while end < n and buf[end] != 10:
            end += 1
        stop = end - 1 if end > pos and buf[end - 1] == 13 else end
        if stop > pos:
            f = 0
            lo = pos
            il = ih = cl = ch = rl = rh = pos
            for i in range(pos, stop + 1):
                if i == stop or buf[i] == sep:
                    if f == col_img:
                        il, ih = lo, i
                    elif f == col_cls:
                        cl, ch = lo, i
                    elif f == col_rle:
                        rl, rh = lo, i
                    f += 1
                    lo = i + 1
            if ih > il or ch > cl or rh > rl:
                lines[r] = line
                spans[r, 0] = il
                spans[r, 1] = ih
                spans[r, 2] = cl
                spans[r, 3] = ch
                new_name[r] = not _same_bytes(buf, il, ih, buf, prev_lo, prev_hi)
                prev_lo, prev_hi = il, ih
                while cl < ch and _is_space(buf[cl]):
                    cl += 1
                while ch > cl and _is_space(buf[ch - 1]):
                    ch -= 1
                code = -1
                for k in range(n_classes):
                    if _same_bytes(class_text, class_off[k], class_off[k + 1], buf, cl, ch):
                        code = k
                        break
                cls[r] = code
                a, b = rl, rh
                while a < b and _is_space(buf[a]):
                    a += 1
                while b > a and _is_space(buf[b - 1]):
                    b -= 1
                nan = (
                    rh - rl <= 5
                    and b - a == 3
                    and (buf[a] | 32) == 110
                    and (buf[a + 1] | 32) == 97
                    and (buf[a + 2] | 32) == 110
                )
                if not nan:
                    for j in range(rl, rh):
                        text[t] = buf[j]
                        t += 1
                r += 1
                offsets[r] = t
        line += 1
        pos = end + 1
    return lines[:r], spans[:r], new_name[:r], cls[:r], text[:t], offsets[: r + 1]


# --- runs (wrappers: core.runs) -----------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def _append(out, n, start, stop):
    """Append ``[start, stop)``, merging with the last run when they touch or overlap."""
    if n > 0 and start <= out[n - 1, 1]:
        if stop > out[n - 1, 1]:
            out[n - 1, 1] = stop
        return n
    out[n, 0] = start
    out[n, 1] = stop
    return n + 1


@nb.njit(cache=True, nogil=True)
def normalize_kernel(runs):
    """Sort arbitrary intervals and merge overlapping or touching ones; drop empty ones."""
    order = np.argsort(runs[:, 0], kind="mergesort")
    out = np.empty_like(runs)
    n = np.int64(0)  # not a literal: _append would compile for Literal[int](0) too
    for j in order:
        if runs[j, 1] > runs[j, 0]:
            n = _append(out, n, runs[j, 0], runs[j, 1])
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def union_kernel(a, b):
    out = np.empty((a.shape[0] + b.shape[0], 2), np.int64)
    i = 0
    j = 0
    n = np.int64(0)
    while i < a.shape[0] or j < b.shape[0]:
        if j == b.shape[0] or (i < a.shape[0] and a[i, 0] <= b[j, 0]):
            n = _append(out, n, a[i, 0], a[i, 1])
            i += 1
        else:
            n = _append(out, n, b[j, 0], b[j, 1])
            j += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def intersection_kernel(a, b):
    out = np.empty((a.shape[0] + b.shape[0], 2), np.int64)
    i = 0
    j = 0
    n = 0
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if lo < hi:
            out[n, 0] = lo
            out[n, 1] = hi
            n += 1
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def difference_kernel(a, b):
    out = np.empty((a.shape[0] + b.shape[0], 2), np.int64)
    n = 0
    j = 0
    for i in range(a.shape[0]):
        lo = a[i, 0]
        hi = a[i, 1]
        while j < b.shape[0] and b[j, 1] <= lo:
            j += 1
        k = j
        while k < b.shape[0] and b[k, 0] < hi:
            if b[k, 0] > lo:
                out[n, 0] = lo
                out[n, 1] = b[k, 0]
                n += 1
            lo = max(lo, b[k, 1])
            if lo >= hi:
                break
            k += 1
        if lo < hi:
            out[n, 0] = lo
            out[n, 1] = hi
            n += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def intersection_area_kernel(a, b):
    i = 0
    j = 0
    total = 0
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if lo < hi:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


# --- score (wrappers: core.score) ---------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def intersections_kernel(a_text, a_off, a_rows, a_counts, b_text, b_off, b_rows, b_counts, npix):
    """|A ∩ B| for every cell of two aligned row tables (-1 rows count as empty)."""
    n_img, n_cls = a_rows.shape
    out = np.zeros((n_img, n_cls), np.int64)
    widest = 1
    for r in range(a_counts.shape[0]):
        widest = max(widest, a_counts[r] + 1)
    for r in range(b_counts.shape[0]):
        widest = max(widest, b_counts[r] + 1)
    ra = np.empty((widest, 2), np.int64)
    rb = np.empty((widest, 2), np.int64)
    for i in range(n_img):
        for c in range(n_cls):
            x = a_rows[i, c]
            y = b_rows[i, c]
            if x < 0 or y < 0:
                continue
            na, _, _ = parse_kernel(a_text, a_off[x], a_off[x + 1], npix, ra)
            nb_, _, _ = parse_kernel(b_text, b_off[y], b_off[y + 1], npix, rb)
            if na and nb_:
                out[i, c] = intersection_area_kernel(ra[:na], rb[:nb_])
    return out


# --- the sweep over run boundaries (see core.sweep), inlined into the two kernels below ------


@nb.njit(cache=True, nogil=True)
def sweep_start(runs, bounds):
    """The first boundary of all sources, or ``INF`` when every source is empty."""
    pos = INF
    for i in range(bounds.shape[0] - 1):
        if bounds[i] < bounds[i + 1]:
            pos = min(pos, runs[bounds[i], 0])
    return pos


@nb.njit(cache=True, nogil=True)
def sweep_step(runs, bounds, ptr, pos, active):
    """Advance each source's pointer ``ptr[i]`` to ``pos``, set ``active[i]`` when source
    ``i`` covers ``pos``, and return the next boundary after ``pos`` (``INF`` at the end)."""
    nxt = INF
    for i in range(bounds.shape[0] - 1):
        p = ptr[i]
        while p < bounds[i + 1] and runs[p, 1] <= pos:
            p += 1
        ptr[i] = p
        active[i] = False
        if p < bounds[i + 1]:
            if runs[p, 0] <= pos:
                active[i] = True
                nxt = min(nxt, runs[p, 1])
            else:
                nxt = min(nxt, runs[p, 0])
    return nxt


# --- vote (wrappers: ensemble.vote) -------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def vote_kernel(runs, bounds, weights, threshold, min_votes):
    """Runs kept by the vote of stacked sources (see ``core.sweep``): keep where
    ``votes >= min_votes`` if ``min_votes > 0``, else where
    ``Σ active weights / Σ weights > threshold``."""
    n = bounds.shape[0] - 1
    total = 0.0
    for i in range(n):
        total += weights[i]
    ptr = bounds[:-1].copy()
    active = np.zeros(n, np.bool_)
    out = np.empty((2 * runs.shape[0] + 1, 2), np.int64)
    k = 0
    pos = sweep_start(runs, bounds)
    while pos != INF:
        nxt = sweep_step(runs, bounds, ptr, pos, active)
        if nxt == INF:
            break
        acc = 0.0
        votes = 0
        for i in range(n):
            if active[i]:
                acc += weights[i]
                votes += 1
        keep = votes >= min_votes if min_votes > 0 else (votes > 0 and acc / total > threshold)
        if keep:
            if k > 0 and out[k - 1, 1] == pos:
                out[k - 1, 1] = nxt
            else:
                out[k, 0] = pos
                out[k, 1] = nxt
                k += 1
        pos = nxt
    return out[:k].copy()


@nb.njit(cache=True, nogil=True)
def _put(out, pos, src, lo, hi):
    """Copy ``src[lo:hi]`` to ``out[pos:]``; return the new position (a loop: slice
    assignment's checks cost seconds of compilation)."""
    for j in range(lo, hi):
        out[pos] = src[j]
        pos += 1
    return pos


@nb.njit(cache=True, nogil=True)
def gather_kernel(text, offsets, rows, out, at):
    """Copy the RLE text of ``rows`` (-1: absent, nothing) into ``out`` from ``at[k]`` on."""
    for k in range(rows.shape[0]):
        r = rows[k]
        if r >= 0:
            _put(out, at[k], text, offsets[r], offsets[r + 1])


@nb.njit(cache=True, nogil=True)
def vote_block_kernel(
    text, offsets, runs_bound, weights, thresholds, min_votes, npix, names, name_off, class_names, class_off, out
):
    """Vote a block of images and write their CSV rows (``name,class,rle``) into ``out``.

    Mask ``k = (i * C + c) * S + s`` (image, class, source) is ``text[offsets[k]:offsets[k+1]]``
    (validated RLE) with at most ``runs_bound[k]`` runs. Each class is voted over the sources
    whose weight is > 0, exactly as ``vote_kernel`` votes one mask. Returns the bytes written
    and, per (image, class), the span of its RLE text in ``out``.
    """
    n_sources, n_classes = weights.shape
    n_images = name_off.shape[0] - 1
    widest = 0
    for i in range(n_images):
        for c in range(n_classes):
            total = 0
            for s in range(n_sources):
                total += runs_bound[(i * n_classes + c) * n_sources + s]
            widest = max(widest, total)
    scratch = np.empty((widest + n_sources, 2), np.int64)
    spans = np.empty((n_images * n_classes, 2), np.int64)
    pos = 0
    for i in range(n_images):
        for c in range(n_classes):
            used = 0
            for s in range(n_sources):
                if weights[s, c] > 0:
                    used += 1
            bounds = np.zeros(used + 1, np.int64)
            w = np.empty(used, np.float64)
            u = 0
            for s in range(n_sources):
                if weights[s, c] > 0:
                    k = (i * n_classes + c) * n_sources + s
                    n, _, _ = parse_kernel(text, offsets[k], offsets[k + 1], npix, scratch[bounds[u] :])
                    w[u] = weights[s, c]
                    bounds[u + 1] = bounds[u] + n
                    u += 1
            voted = vote_kernel(scratch[: bounds[used]], bounds, w, thresholds[c], min_votes)
            pos = _put(out, pos, names, name_off[i], name_off[i + 1])
            out[pos] = 44
            pos = _put(out, pos + 1, class_names, class_off[c], class_off[c + 1])
            out[pos] = 44
            pos += 1
            spans[i * n_classes + c, 0] = pos
            pos = format_kernel(voted, out, pos)
            spans[i * n_classes + c, 1] = pos
            out[pos] = 10
            pos += 1
    return pos, spans


@nb.njit(cache=True, nogil=True)
def rows_kernel(text, text_span, runs, run_span, formatted, names, name_off, class_names, class_off, out):
    """Write CSV rows ``name,class,rle`` for a block of images; return the bytes written.

    The RLE of (image ``i``, class ``c``), ``k = i * C + c``, is ``runs[run_span[k, 0]:run_span[k, 1]]``
    formatted where ``formatted[k]``, else the text ``text[text_span[k, 0]:text_span[k, 1]]`` as
    written (surrounding whitespace dropped).
    """
    n_classes = class_off.shape[0] - 1
    pos = 0
    for i in range(name_off.shape[0] - 1):
        for c in range(n_classes):
            k = i * n_classes + c
            pos = _put(out, pos, names, name_off[i], name_off[i + 1])
            out[pos] = 44
            pos = _put(out, pos + 1, class_names, class_off[c], class_off[c + 1])
            out[pos] = 44
            pos += 1
            if formatted[k]:
                pos = format_kernel(runs[run_span[k, 0] : run_span[k, 1]], out, pos)
            else:
                lo, hi = text_span[k, 0], text_span[k, 1]
                while lo < hi and _is_space(text[lo]):
                    lo += 1
                while hi > lo and _is_space(text[hi - 1]):
                    hi -= 1
                pos = _put(out, pos, text, lo, hi)
            out[pos] = 10
            pos += 1
    return pos


@nb.njit(cache=True, nogil=True)
def parse_block_kernel(text, text_span, runs_bound, npix):
    """Parse masks ``text[text_span[k, 0]:text_span[k, 1]]`` (validated RLE with at most
    ``runs_bound[k]`` runs; an empty span is an empty mask) into one run array: mask ``k`` is
    ``runs[bounds[k]:bounds[k+1]]``."""
    m = text_span.shape[0]
    total = 0
    for k in range(m):
        total += runs_bound[k]
    runs = np.empty((total + 1, 2), np.int64)
    bounds = np.zeros(m + 1, np.int64)
    for k in range(m):
        n, _, _ = parse_kernel(text, text_span[k, 0], text_span[k, 1], npix, runs[bounds[k] :])
        bounds[k + 1] = bounds[k] + n
    return runs[: bounds[m]], bounds


# --- search (wrappers: evaluation.search) -------------------------------------------------


@nb.njit(cache=True, nogil=True)
def coverage_kernel(runs, bounds, gt, length, hit):
    """Add, for every segment between run boundaries, its length to ``length[subset]`` and,
    where the ground truth ``gt`` covers it, to ``hit[subset]``; ``subset`` is the bitmask
    of the sources covering the segment."""
    n = bounds.shape[0] - 1
    ptr = bounds[:-1].copy()
    active = np.zeros(n, np.bool_)
    g = 0
    pos = sweep_start(runs, bounds)
    while pos != INF:
        nxt = sweep_step(runs, bounds, ptr, pos, active)
        if nxt == INF:
            break
        mask = 0
        for i in range(n):
            if active[i]:
                mask |= 1 << i
        # split the segment where the ground truth starts or stops inside it
        while pos < nxt:
            while g < gt.shape[0] and gt[g, 1] <= pos:
                g += 1
            if g < gt.shape[0] and gt[g, 0] <= pos:
                end = min(nxt, gt[g, 1])
                hit[mask] += end - pos
            else:
                end = nxt if g == gt.shape[0] else min(nxt, gt[g, 0])
            length[mask] += end - pos
            pos = end
    return length, hit


# --- merge (wrappers: fusion.merge) -------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def same_runs_kernel(text_a, offs_a, rows_a, text_b, offs_b, rows_b, npix):
    """For each k: do row ``rows_a[k]`` of buffer A and row ``rows_b[k]`` of buffer B hold
    the same mask? Equal bytes short-cut; otherwise both are parsed to canonical runs."""
    m = rows_a.shape[0]
    out = np.zeros(m, np.bool_)
    wa = 0
    wb = 0
    for k in range(m):
        wa = max(wa, offs_a[rows_a[k] + 1] - offs_a[rows_a[k]])
        wb = max(wb, offs_b[rows_b[k] + 1] - offs_b[rows_b[k]])
    sa = np.empty((wa // 4 + 1, 2), np.int64)
    sb = np.empty((wb // 4 + 1, 2), np.int64)
    for k in range(m):
        lo_a, hi_a = offs_a[rows_a[k]], offs_a[rows_a[k] + 1]
        lo_b, hi_b = offs_b[rows_b[k]], offs_b[rows_b[k] + 1]
        if _same_bytes(text_a, lo_a, hi_a, text_b, lo_b, hi_b):
            out[k] = True
            continue
        na, _, _ = parse_kernel(text_a, lo_a, hi_a, npix, sa)
        nb_, _, _ = parse_kernel(text_b, lo_b, hi_b, npix, sb)
        if na != nb_:
            continue
        same = True
        for j in range(na):
            if sa[j, 0] != sb[j, 0] or sa[j, 1] != sb[j, 1]:
                same = False
                break
        out[k] = same
    return out
