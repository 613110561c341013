"""Kernels that build blocks of output rows straight from the sources' RLE text (private: see
``core.blocks``, ``ensemble.vote_plan``, ``postprocess.clean_set`` and ``fusion.merge_parts``):
gathering rows, voting a block, copying rows, parsing a block, comparing two rows' runs.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from core._csv_kernels import copy_bytes, is_space, same_bytes
from core._rle_kernels import format_kernel, parse_kernel, parse_valid_kernel, write_uint
from core._run_kernels import INF, keeps


@nb.njit(cache=True, nogil=True)
def gather_kernel(text, offsets, rows, out, at):
    """Copy the RLE text of ``rows`` (-1: absent, nothing) into ``out`` from ``at[k]`` on."""
    for k in range(rows.shape[0]):
        r = rows[k]
        if r >= 0:
            copy_bytes(out, at[k], text, offsets[r], offsets[r + 1])


@nb.njit(cache=True, nogil=True)
def vote_block_kernel(
    text, offsets, runs_bound, weights, thresholds, min_votes, table, npix, names, name_off, class_names, class_off, out
):
    """Vote a block of images and write their CSV rows (``name,class,rle``; each class field
    carries its comma, and is empty in a file without a class column) into ``out``.

    Mask ``k = (i * C + c) * S + s`` (image, class, source) is ``text[offsets[k]:offsets[k+1]]``
    (validated RLE) with at most ``runs_bound[k]`` runs. Each class is voted over the sources
    whose weight is > 0, exactly as ``vote_kernel`` votes one mask: by ``table``
    (``_run_kernels.decision_table``) where it has a column per set of sources, else by
    ``keeps`` per segment. Returns the bytes written and, per (image, class), the span of
    its RLE text in ``out``.
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
    runs = np.empty((widest + 1, 2), np.int64)
    spans = np.empty((n_images * n_classes, 2), np.int64)
    bounds = np.zeros(n_sources + 1, np.int64)
    w = np.empty(n_sources, np.float64)
    ptr = np.empty(n_sources, np.int64)  # each source's next run
    event = np.empty(n_sources, np.int64)  # and its next boundary
    active = np.zeros(n_sources, np.bool_)
    pos = 0
    for i in range(n_images):
        for c in range(n_classes):
            used = 0
            for s in range(n_sources):
                if weights[s, c] > 0:
                    k = (i * n_classes + c) * n_sources + s
                    bounds[used + 1] = parse_valid_kernel(text, offsets[k], offsets[k + 1], runs, bounds[used])
                    w[used] = weights[s, c]
                    used += 1
            pos = copy_bytes(out, pos, names, name_off[i], name_off[i + 1])
            out[pos] = 44
            pos = copy_bytes(out, pos + 1, class_names, class_off[c], class_off[c + 1])
            spans[i * n_classes + c, 0] = pos
            pos = _vote_text(
                runs, bounds[: used + 1], w[:used], table[c], thresholds[c], min_votes, ptr, event, active, out, pos
            )
            spans[i * n_classes + c, 1] = pos
            out[pos] = 10
            pos += 1
    return pos, spans


@nb.njit(cache=True, nogil=True)
def _vote_text(runs, bounds, w, table, threshold, min_votes, ptr, event, active, out, pos):
    """The sweep of ``vote_kernel`` over stacked sources (``bounds``, weights ``w``), each
    kept run written as text at ``out[pos:]`` as soon as it ends; returns the end position.
    The segment's sources are tracked as a bit set while ``table`` decides (its column
    ``m``: the set ``m``); without ``table``, ``keeps`` sums their weights."""
    n = bounds.shape[0] - 1
    by_table = table.shape[0] > 0
    total = 0.0
    for u in range(n):
        total += w[u]
    at = INF
    for u in range(n):
        ptr[u] = bounds[u]
        event[u] = runs[bounds[u], 0] if bounds[u] < bounds[u + 1] else INF
        active[u] = False
        at = min(at, event[u])
    bits = 0
    opened = -1  # where the kept run being swept began
    first = True
    while at != INF:
        # sweep_step's loop, written out to keep the bit set as sources start and stop
        # covering: calling it and rebuilding the set per segment took a fifth longer.
        nxt = INF
        for u in range(n):
            if event[u] == at:
                p = ptr[u]
                end = bounds[u + 1]
                while p < end and runs[p, 1] <= at:
                    p += 1
                ptr[u] = p
                active[u] = p < end and runs[p, 0] <= at
                event[u] = runs[p, 1] if active[u] else (runs[p, 0] if p < end else INF)
                if by_table:
                    bits = bits | (1 << u) if active[u] else bits & ~(1 << u)
            nxt = min(nxt, event[u])
        if by_table:
            keep = table[bits]
        else:
            acc = 0.0
            votes = 0
            for u in range(n):
                if active[u]:
                    acc += w[u]
                    votes += 1
            keep = keeps(acc, votes, total, threshold, min_votes)
        if keep and nxt != INF:
            if opened < 0:
                opened = at
        elif opened >= 0:
            if not first:
                out[pos] = 32
                pos += 1
            pos = write_uint(out, pos, opened + 1)
            out[pos] = 32
            pos = write_uint(out, pos + 1, at - opened)
            first = False
            opened = -1
        at = nxt
    return pos


@nb.njit(cache=True, nogil=True)
def rows_kernel(text, text_span, runs, run_span, formatted, names, name_off, class_names, class_off, out):
    """Write CSV rows ``name,class,rle`` for a block of images (each class field carries its
    comma, and is empty in a file without a class column); return the bytes written.

    The RLE of (image ``i``, class ``c``), ``k = i * C + c``, is ``runs[run_span[k, 0]:run_span[k, 1]]``
    formatted where ``formatted[k]``, else the text ``text[text_span[k, 0]:text_span[k, 1]]`` as
    written (surrounding whitespace dropped).
    """
    n_classes = class_off.shape[0] - 1
    pos = 0
    for i in range(name_off.shape[0] - 1):
        for c in range(n_classes):
            k = i * n_classes + c
            pos = copy_bytes(out, pos, names, name_off[i], name_off[i + 1])
            out[pos] = 44
            pos = copy_bytes(out, pos + 1, class_names, class_off[c], class_off[c + 1])
            if formatted[k]:
                pos = format_kernel(runs[run_span[k, 0] : run_span[k, 1]], out, pos)
            else:
                lo, hi = text_span[k, 0], text_span[k, 1]
                while lo < hi and is_space(text[lo]):
                    lo += 1
                while hi > lo and is_space(text[hi - 1]):
                    hi -= 1
                pos = copy_bytes(out, pos, text, lo, hi)
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
        if same_bytes(text_a, lo_a, hi_a, text_b, lo_b, hi_b):
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
