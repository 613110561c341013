"""Kernels of the run algebra (private: call the wrappers of ``core.runs``, ``core.score``,
``ensemble.mask_vote`` and ``evaluation.search``): set operations on canonical runs, their
intersection areas, and the sweep over the run boundaries of several sources with the
kernels built on it (the vote of one mask, the vote over exclusive labels, the overlaps of
classes and the tuning histograms).
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)
from core._rle_kernels import parse_kernel

INF = np.iinfo(np.int64).max

"""The sweep's end marker: no boundary left."""


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


@nb.njit(cache=True, nogil=True)
def sweep_init(runs, bounds):
    """The state of a sweep before its first step: each source's pointer at its first run,
    none covering, each source's next boundary its first run's start (``INF`` when it has
    none), and the first boundary of all (``INF`` when every source is empty)."""
    n = bounds.shape[0] - 1
    ptr = bounds[:-1].copy()
    active = np.zeros(n, np.bool_)
    event = np.empty(n, np.int64)
    pos = INF
    for i in range(n):
        event[i] = runs[bounds[i], 0] if bounds[i] < bounds[i + 1] else INF
        pos = min(pos, event[i])
    return ptr, active, event, pos


@nb.njit(cache=True, nogil=True)
def sweep_step(runs, bounds, ptr, pos, active, event):
    """Step the sweep to ``pos``: each source whose next boundary ``event[i]`` is ``pos`` has
    its pointer ``ptr[i]`` moved past the runs that end by ``pos``, ``active[i]`` set when it
    covers ``pos`` and ``event[i]`` set to its next boundary; the others cover ``pos`` as they
    covered the segment before it. Returns the next boundary of all (``INF`` at the end).
    Only the sources with a boundary at ``pos`` are looked at again, not every source's runs."""
    nxt = INF
    for i in range(bounds.shape[0] - 1):
        if event[i] == pos:
            p = ptr[i]
            end = bounds[i + 1]
            while p < end and runs[p, 1] <= pos:
                p += 1
            ptr[i] = p
            if p < end and runs[p, 0] <= pos:
                active[i] = True
                event[i] = runs[p, 1]
            else:
                active[i] = False
                event[i] = runs[p, 0] if p < end else INF
        nxt = min(nxt, event[i])
    return nxt


@nb.njit(cache=True, nogil=True)
def keeps(acc, votes, total, threshold, min_votes):
    """The vote's rule for one segment: ``votes`` sources cover it, of summed weight ``acc``
    (added in source order from 0.0) out of ``total``."""
    return votes >= min_votes if min_votes > 0 else (votes > 0 and acc / total > threshold)


@nb.njit(cache=True, nogil=True)
def decision_table(weights, thresholds, min_votes):
    """``table[c, m]``: whether class ``c`` keeps a segment covered by the set ``m`` of its
    voting sources (bit ``u``: the ``u``-th source whose weight for ``c`` is > 0), decided by
    ``keeps`` exactly as ``vote_kernel`` decides it (the weights summed in source order)."""
    n_sources, n_classes = weights.shape
    table = np.zeros((n_classes, 1 << n_sources), np.bool_)
    w = np.empty(n_sources, np.float64)
    for c in range(n_classes):
        used = 0
        for s in range(n_sources):
            if weights[s, c] > 0:
                w[used] = weights[s, c]
                used += 1
        total = 0.0
        for u in range(used):
            total += w[u]
        for m in range(1 << used):
            acc = 0.0
            votes = 0
            for u in range(used):
                if (m >> u) & 1:
                    acc += w[u]
                    votes += 1
            table[c, m] = keeps(acc, votes, total, thresholds[c], min_votes)
    return table


@nb.njit(cache=True, nogil=True)
def vote_kernel(runs, bounds, weights, threshold, min_votes):
    """Runs kept by the vote of stacked sources (see ``core.sweep``): keep where
    ``votes >= min_votes`` if ``min_votes > 0``, else where
    ``Σ active weights / Σ weights > threshold``."""
    n = bounds.shape[0] - 1
    total = 0.0
    for i in range(n):
        total += weights[i]
    out = np.empty((2 * runs.shape[0] + 1, 2), np.int64)
    k = 0
    ptr, active, event, pos = sweep_init(runs, bounds)
    while pos != INF:
        nxt = sweep_step(runs, bounds, ptr, pos, active, event)
        if nxt == INF:
            break
        acc = 0.0
        votes = 0
        for i in range(n):
            if active[i]:
                acc += weights[i]
                votes += 1
        if keeps(acc, votes, total, threshold, min_votes):
            if k > 0 and out[k - 1, 1] == pos:
                out[k - 1, 1] = nxt
            else:
                out[k, 0] = pos
                out[k, 1] = nxt
                k += 1
        pos = nxt
    return out[:k].copy()


@nb.njit(cache=True, nogil=True)
def exclusive_vote_kernel(runs, bounds, weights, background):
    """The plurality over labels of stacked masks (see ``ensemble.exclusive``): mask ``(s, c)``
    (source ``s``, class ``c``) is stacked ``s * C + c``; ``weights`` (S, C) and ``background``
    (S,) are float64. Per segment, class ``c`` scores the sum over its covering sources of
    ``weights[s, c]``, the background the sum of ``background[s]`` over the sources that cover
    none of the classes, each summed from 0.0 in source order; the segment goes to the first
    class whose score beats the background's and every earlier class's. Returns
    ``(out, label, k)``: runs ``out[:k]`` in position order (touching runs of one class
    merged), ``label[:k]`` their classes.

    The same sweep over run boundaries as ``vote_kernel``, but driven by a min-heap of the
    masks' next boundaries rather than by ``sweep_step``, which visits every mask at every
    boundary: with S·C masks that cost grows as C² per image, the heap's as C·log(S·C).
    Only the classes a boundary touches are summed again, the background only when a source
    starts or stops marking some class, and only the classes some source covers compete (an
    equal score goes to the lower class, as a scan in class order would give it). The heap is
    written out (no helper kernel) and arrays are filled by loops, to keep the cold compile
    short.
    """
    n_src, n_cls = weights.shape
    n = bounds.shape[0] - 1
    ptr = np.empty(n, np.int64)
    inside = np.empty(n, np.bool_)
    hpos = np.empty(n, np.int64)  # min-heap of (next boundary, mask)
    hid = np.empty(n, np.int64)
    size = 0
    for i in range(n):
        ptr[i] = bounds[i]
        inside[i] = False
        if bounds[i] < bounds[i + 1]:
            j = size  # sift up
            p = runs[bounds[i], 0]
            while j > 0 and hpos[(j - 1) // 2] > p:
                hpos[j] = hpos[(j - 1) // 2]
                hid[j] = hid[(j - 1) // 2]
                j = (j - 1) // 2
            hpos[j] = p
            hid[j] = i
            size += 1
    marks = np.empty(n_src, np.int64)  # how many classes each source covers here
    score = np.empty(n_cls)
    dirty = np.empty(n_cls, np.bool_)
    covers = np.empty(n_cls, np.int64)  # how many sources cover each class here
    present = np.empty(n_cls, np.int64)  # the classes some source covers here, in any order
    slot = np.empty(n_cls, np.int64)  # a present class's index in present
    n_present = 0
    for c in range(n_cls):
        score[c] = 0.0
        dirty[c] = False
        covers[c] = 0
    bg = 0.0
    for s in range(n_src):
        marks[s] = 0
        bg += background[s]
    bg_dirty = False
    out = np.empty((2 * runs.shape[0] + 1, 2), np.int64)
    label = np.empty(out.shape[0], np.int64)
    k = 0
    while size > 0:
        pos = hpos[0]
        while size > 0 and hpos[0] == pos:  # every mask with a boundary at pos
            i = hid[0]
            s = i // n_cls
            c = i - s * n_cls
            dirty[c] = True
            p = INF
            if inside[i]:
                inside[i] = False
                marks[s] -= 1
                bg_dirty = bg_dirty or marks[s] == 0
                covers[c] -= 1
                if covers[c] == 0:  # c leaves present: the last present class takes its slot
                    n_present -= 1
                    present[slot[c]] = present[n_present]
                    slot[present[n_present]] = slot[c]
                ptr[i] += 1
                if ptr[i] < bounds[i + 1]:
                    p = runs[ptr[i], 0]
            else:
                inside[i] = True
                marks[s] += 1
                bg_dirty = bg_dirty or marks[s] == 1
                covers[c] += 1
                if covers[c] == 1:
                    present[n_present] = c
                    slot[c] = n_present
                    n_present += 1
                p = runs[ptr[i], 1]
            q = i
            if p == INF:  # the mask is done: the heap's last entry goes down from the top
                size -= 1
                p = hpos[size]
                q = hid[size]
            j = 0  # sift down
            while True:
                c = 2 * j + 1
                if c >= size:
                    break
                if c + 1 < size and hpos[c + 1] < hpos[c]:
                    c += 1
                if hpos[c] >= p:
                    break
                hpos[j] = hpos[c]
                hid[j] = hid[c]
                j = c
            if size > 0:
                hpos[j] = p
                hid[j] = q
        if size == 0 or n_present == 0:
            continue  # past the last run, or no class marked: the background
        if bg_dirty:
            bg = 0.0
            for s in range(n_src):
                if marks[s] == 0:
                    bg += background[s]
            bg_dirty = False
        best = bg
        win = -1
        for j in range(n_present):  # only the classes present can score above 0
            c = present[j]
            if dirty[c]:
                acc = 0.0
                for s in range(n_src):
                    if inside[s * n_cls + c]:
                        acc += weights[s, c]
                score[c] = acc
                dirty[c] = False
            if score[c] > best or (score[c] == best and 0 <= c < win):
                best = score[c]
                win = c
        if win >= 0:
            if k > 0 and label[k - 1] == win and out[k - 1, 1] == pos:
                out[k - 1, 1] = hpos[0]
            else:
                out[k, 0] = pos
                out[k, 1] = hpos[0]
                label[k] = win
                k += 1
    return out, label, k


@nb.njit(cache=True, nogil=True)
def overlap_kernel(runs, bounds):
    """Pixels covered by more than one of the stacked masks: ``(total, pairs)``, ``pairs[i, j]``
    (symmetric, zero diagonal) the pixels masks ``i`` and ``j`` both cover."""
    n = bounds.shape[0] - 1
    pairs = np.zeros((n, n), np.int64)
    total = 0
    ptr, active, event, pos = sweep_init(runs, bounds)
    while pos != INF:
        nxt = sweep_step(runs, bounds, ptr, pos, active, event)
        if nxt == INF:
            break
        count = 0
        for i in range(n):
            if active[i]:
                count += 1
        if count > 1:
            total += nxt - pos
            for i in range(n):
                if active[i]:
                    for j in range(i + 1, n):
                        if active[j]:
                            pairs[i, j] += nxt - pos
                            pairs[j, i] += nxt - pos
        pos = nxt
    return total, pairs


@nb.njit(cache=True, nogil=True)
def coverage_kernel(runs, bounds, gt, length, hit):
    """Add, for every segment between run boundaries, its length to ``length[subset]`` and,
    where the ground truth ``gt`` covers it, to ``hit[subset]``; ``subset`` is the bitmask
    of the sources covering the segment."""
    n = bounds.shape[0] - 1
    g = 0
    ptr, active, event, pos = sweep_init(runs, bounds)
    while pos != INF:
        nxt = sweep_step(runs, bounds, ptr, pos, active, event)
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
