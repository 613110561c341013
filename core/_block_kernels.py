"""Kernels that build blocks of output rows straight from the sources' RLE text (private: see
``core.blocks``, ``ensemble.vote_plan``, ``postprocess.clean_set`` and ``fusion.merge_parts``):
gathering rows, voting a block, copying rows, parsing a block, comparing two rows' runs.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from core._csv_kernels import copy_bytes, is_space, same_bytes
from core._rle_kernels import format_kernel, parse_kernel
from core._run_kernels import vote_kernel


@nb.njit(cache=True, nogil=True)
def gather_kernel(text, offsets, rows, out, at):
    """Copy the RLE text of ``rows`` (-1: absent, nothing) into ``out`` from ``at[k]`` on."""
    for k in range(rows.shape[0]):
        r = rows[k]
        if r >= 0:
            copy_bytes(out, at[k], text, offsets[r], offsets[r + 1])


@nb.njit(cache=True, nogil=True)
def vote_block_kernel(
    text, offsets, runs_bound, weights, thresholds, min_votes, npix, names, name_off, class_names, class_off, out
):
    """Vote a block of images and write their CSV rows (``name,class,rle``; each class field
    carries its comma, and is empty in a file without a class column) into ``out``.

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
            pos = copy_bytes(out, pos, names, name_off[i], name_off[i + 1])
            out[pos] = 44
            pos = copy_bytes(out, pos + 1, class_names, class_off[c], class_off[c + 1])
            spans[i * n_classes + c, 0] = pos
            pos = format_kernel(voted, out, pos)
            spans[i * n_classes + c, 1] = pos
            out[pos] = 10
            pos += 1
    return pos, spans


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
