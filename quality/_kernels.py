"""Every numba kernel of ``quality`` (private: call the checked wrappers of ``quality.staple``
and ``quality.qa``).

numba's ``cache=True`` checks a cached kernel only against the file that defines it, and a
kernel compiles the kernels it calls into itself; so every kernel here calls only kernels of
this file (the sweep over run boundaries is therefore this file's own copy of the idea of
``core.sweep``, returning the bit pattern of the covering sources rather than a flag per
source). Each kernel keeps its plain-Python twin as ``kernel.py_func`` (the tests run both).

Masks are canonical runs (``(n, 2)`` int64, 0-based ``[start, stop)``). Several masks are
stacked as ``core.sweep.stack_runs`` stacks them: mask ``m`` is ``runs[bounds[m]:bounds[m+1]]``.
For the pattern kernels, masks come in groups of ``n_sources`` (one group per class, sources
in order), and bit ``j`` of a pattern is source ``j`` of its group.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)

INF = np.iinfo(np.int64).max
"""The sweep's end marker: no boundary left."""


# --- the sweep over run boundaries ----------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def sweep_start(runs, bounds):
    """The first boundary of the stacked masks ``bounds`` delimits, or ``INF`` when all are empty."""
    pos = INF
    for i in range(bounds.shape[0] - 1):
        if bounds[i] < bounds[i + 1]:
            pos = min(pos, runs[bounds[i], 0])
    return pos


@nb.njit(cache=True, nogil=True)
def sweep_step(runs, bounds, ptr, pos):
    """Advance each mask's pointer ``ptr[i]`` to ``pos``; return the next boundary after ``pos``
    (``INF`` at the end) and the pattern of the segment starting at ``pos`` (bit ``i`` set
    when mask ``i`` covers it)."""
    nxt = INF
    pattern = 0
    for i in range(bounds.shape[0] - 1):
        p = ptr[i]
        while p < bounds[i + 1] and runs[p, 1] <= pos:
            p += 1
        ptr[i] = p
        if p < bounds[i + 1]:
            if runs[p, 0] <= pos:
                pattern |= 1 << i
                nxt = min(nxt, runs[p, 1])
            else:
                nxt = min(nxt, runs[p, 0])
    return nxt, pattern


@nb.njit(cache=True, nogil=True)
def histogram_kernel(runs, bounds, n_sources, npix, hist):
    """Add each class's pixel count per vote pattern to ``hist`` (``(n_classes, 2**n_sources)``
    int64). Class ``c`` is the group of masks ``c * n_sources … c * n_sources + n_sources - 1``;
    the all-zero pattern receives ``npix - |union|``."""
    n_classes = (bounds.shape[0] - 1) // n_sources
    ptr = np.empty(n_sources, np.int64)
    for c in range(n_classes):
        b = bounds[c * n_sources : (c + 1) * n_sources + 1]
        for j in range(n_sources):
            ptr[j] = b[j]
        covered = 0
        pos = sweep_start(runs, b)
        while pos != INF:
            nxt, pattern = sweep_step(runs, b, ptr, pos)
            if nxt == INF:
                break
            if pattern != 0:
                hist[c, pattern] += nxt - pos
                covered += nxt - pos
            pos = nxt
        hist[c, 0] += npix - covered


@nb.njit(cache=True, nogil=True)
def _emit(out, k, first, s, e):
    """Append ``[s, e)`` to ``out[:k]`` (merged with the last run when they touch and that run
    is at or after ``first``); return the new length."""
    if k > first and out[k - 1, 1] == s:
        out[k - 1, 1] = e
        return k
    out[k, 0] = s
    out[k, 1] = e
    return k + 1


@nb.njit(cache=True, nogil=True)
def fuse_kernel(runs, bounds, n_sources, npix, accept):
    """The pixels whose pattern is accepted, per class: ``accept[c, pattern]`` (bool,
    ``(n_classes, 2**n_sources)``); the all-zero pattern covers everything outside the union
    (before the first run and after the last one included). Returns the stacked runs and
    their ``(n_classes + 1,)`` bounds."""
    n_classes = (bounds.shape[0] - 1) // n_sources
    out = np.empty((2 * runs.shape[0] + n_classes + 1, 2), np.int64)
    out_bounds = np.zeros(n_classes + 1, np.int64)
    ptr = np.empty(n_sources, np.int64)
    k = 0
    for c in range(n_classes):
        first = k
        b = bounds[c * n_sources : (c + 1) * n_sources + 1]
        for j in range(n_sources):
            ptr[j] = b[j]
        gaps = accept[c, 0]
        pos = sweep_start(runs, b)
        lead = npix if pos == INF else pos
        if gaps and lead > 0:
            k = _emit(out, k, first, 0, lead)
        while pos != INF:
            nxt, pattern = sweep_step(runs, b, ptr, pos)
            if nxt == INF:
                if gaps and pos < npix:
                    k = _emit(out, k, first, pos, npix)
                break
            if accept[c, pattern]:
                k = _emit(out, k, first, pos, nxt)
            pos = nxt
        out_bounds[c + 1] = k
    return out[:k].copy(), out_bounds


# --- STAPLE (wrappers: quality.staple) -------------------------------------------------------


# Exact sums. The M-step's sums are exact, rounded once (to nearest, ties to even), as
# Python's ``math.fsum`` rounds: the estimates then do not depend on the order of the terms —
# pattern by pattern here, pixel by pixel in a dense reference, image by image — and an EM
# whose trajectory passes near a saddle point (where rounding differences grow ~1e6× in 20
# iterations) still gives the same bits. Each product ``n·W`` (count × posterior) is split
# into four exact products first.
#
# An accumulator is row ``a`` of ``part`` (its non-overlapping partials, increasing in
# magnitude, Shewchuk's algorithm as CPython's ``math.fsum`` keeps them) with ``lens[a]``
# partials in use; 64 slots cover any sum of finite doubles (about 40 can be non-zero).

MAX_PARTIALS = 64

SPLIT = 134217729.0
"""Veltkamp's constant ``2**27 + 1``: splits a double into two halves of 26 bits."""


@nb.njit(cache=True, nogil=True)
def acc_add(part, lens, a, x):
    """Add ``x`` to accumulator ``a`` exactly (``math.fsum``'s inner loop)."""
    i = 0
    for k in range(lens[a]):
        y = part[a, k]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            part[a, i] = lo
            i += 1
        x = hi
    if x != 0.0:
        part[a, i] = x
        i += 1
    lens[a] = i


@nb.njit(cache=True, nogil=True)
def acc_value(part, lens, a):
    """The exact sum of accumulator ``a`` rounded once to the nearest double, ties to even
    (``math.fsum``'s final step, bit for bit)."""
    n = lens[a]
    hi = 0.0
    lo = 0.0
    if n > 0:
        n -= 1
        hi = part[a, n]
        while n > 0:
            x = hi
            n -= 1
            y = part[a, n]
            hi = x + y
            yr = hi - x
            lo = y - yr
            if lo != 0.0:
                break
        if n > 0 and ((lo < 0.0 and part[a, n - 1] < 0.0) or (lo > 0.0 and part[a, n - 1] > 0.0)):
            y = lo * 2.0
            x = hi + y
            yr = x - hi
            if y == yr:
                hi = x
    return hi


@nb.njit(cache=True, nogil=True)
def product_terms(n, x):
    """Four doubles whose exact sum is ``n · x``: ``n`` an integer ``0 <= n < 2**53``, ``x`` a
    finite double with ``|x| <= 2**970``. ``n`` is cut into 27 + 26 bits, ``x`` into 26 + 26
    (Veltkamp), so each partial product is exact (53 bits at most, a multiple of the
    smallest subnormal)."""
    n_hi = (n >> 26) << 26
    n_lo = n - n_hi
    c = SPLIT * x
    x_hi = c - (c - x)
    x_lo = x - x_hi
    return float(n_hi) * x_hi, float(n_hi) * x_lo, float(n_lo) * x_hi, float(n_lo) * x_lo


@nb.njit(cache=True, nogil=True)
def acc_add_terms(part, lens, a, terms):
    """Add the non-zero ``terms`` (a tuple of ``product_terms``) to accumulator ``a`` exactly."""
    for t in terms:
        if t != 0.0:
            acc_add(part, lens, a, t)


@nb.njit(cache=True, nogil=True)
def acc_add_product(part, lens, a, n, x):
    """Add ``n · x`` exactly to accumulator ``a`` (see ``product_terms``)."""
    acc_add_terms(part, lens, a, product_terms(n, x))


@nb.njit(cache=True, nogil=True)
def acc_merge(part, lens, dst, src):
    """Add accumulator ``src``'s exact sum to accumulator ``dst``."""
    for k in range(lens[src]):
        acc_add(part, lens, dst, part[src, k])


@nb.njit(cache=True, nogil=True)
def acc_combination(part, lens, dst, const, plus, minus):
    """Set accumulator ``dst`` to ``const + plus - minus`` exactly (``const`` an integer below
    ``2**53``; ``plus``, ``minus`` accumulators, or -1 for none) and return it rounded once."""
    lens[dst] = 0
    if const != 0:
        acc_add(part, lens, dst, float(const))
    if plus >= 0:
        acc_merge(part, lens, dst, plus)
    if minus >= 0:
        for k in range(lens[minus]):
            acc_add(part, lens, dst, -part[minus, k])
    return acc_value(part, lens, dst)


@nb.njit(cache=True, nogil=True)
def fsum_kernel(values):
    """``math.fsum(values)``: the exact sum rounded once (for tests of the accumulator)."""
    part = np.zeros((1, MAX_PARTIALS))
    lens = np.zeros(1, np.int64)
    for k in range(values.shape[0]):
        acc_add(part, lens, 0, values[k])
    return acc_value(part, lens, 0)


@nb.njit(cache=True, nogil=True)
def posterior(pattern, sens, sens_c, spec, spec_c, prior, prior_c):
    """P(true foreground | pattern): ``a / (a + b)`` with ``a = prior · Π (sens or 1 - sens)``
    and ``b = (1 - prior) · Π (1 - spec or spec)``, factors multiplied in source order; every
    complement is passed (``*_c``), computed from its own exact sums rather than as ``1 - x``
    (which loses the digits of an ``x`` near 1). The prior when ``a + b == 0`` (no evidence
    either way)."""
    a = prior
    b = prior_c
    for j in range(sens.shape[0]):
        if (pattern >> j) & 1:
            a *= sens[j]
            b *= spec_c[j]
        else:
            a *= sens_c[j]
            b *= spec[j]
    den = a + b
    return a / den if den > 0 else prior


@nb.njit(cache=True, nogil=True)
def em_kernel(patterns, counts, n_sources, init_sens, init_spec, prior, prior_c, estimate_prior, tol, max_iter):
    """Binary STAPLE's EM on a pattern histogram (``patterns``, ``counts`` int64, counts > 0,
    ``Σ counts < 2**53``).

    Each iteration: E-step (``posterior`` ``W`` of every pattern); M-step with every sum exact
    and rounded once, ``1 - W`` taken exactly: sensitivity ``Σ n·W·D / Σ n·W`` (its complement
    ``Σ n·W·(1-D) / Σ n·W``), specificity ``Σ n·(1-W)·(1-D) / Σ n·(1-W)`` (complement
    ``Σ n·(1-W)·D / Σ n·(1-W)``), an estimate kept when its denominator is 0; with
    ``estimate_prior`` the prior becomes ``Σ n·W / Σ n`` (complement ``Σ n·(1-W) / Σ n``).
    Only ``Σ n·W`` and ``Σ n·W·D`` are accumulated: the other sums are exact combinations of
    them with the integer totals ``Σ n`` and ``Σ n·D``. Stops after the iteration whose
    largest change of any estimate (the prior included when estimated) is below ``tol``, or
    after ``max_iter``. Returns sensitivities, specificities, the prior, the iterations run
    and every pattern's posterior under the final estimates.
    """
    sens = np.full(n_sources, init_sens)
    spec = np.full(n_sources, init_spec)
    sens_c = np.full(n_sources, 1.0 - init_sens)
    spec_c = np.full(n_sources, 1.0 - init_spec)
    n_patterns = patterns.shape[0]
    w = np.empty(n_patterns)
    # accumulators: 0 Σ n·W, 1 scratch, 2 + j Σ n·W·D_j; integers: total Σ n, marked[j] Σ n·D_j
    part = np.zeros((2 + n_sources, MAX_PARTIALS))
    lens = np.zeros(2 + n_sources, np.int64)
    total = 0
    marked = np.zeros(n_sources, np.int64)
    for k in range(n_patterns):
        total += counts[k]
        for j in range(n_sources):
            if (patterns[k] >> j) & 1:
                marked[j] += counts[k]
    f = prior
    f_c = prior_c
    it = 0
    while it < max_iter:
        it += 1
        for t in range(lens.shape[0]):
            lens[t] = 0
        for k in range(n_patterns):
            w[k] = posterior(patterns[k], sens, sens_c, spec, spec_c, f, f_c)
            nw = product_terms(counts[k], w[k])
            acc_add_terms(part, lens, 0, nw)
            p = patterns[k]
            for j in range(n_sources):
                if (p >> j) & 1:
                    acc_add_terms(part, lens, 2 + j, nw)
        sw = acc_value(part, lens, 0)
        sv = acc_combination(part, lens, 1, total, -1, 0)
        delta = 0.0
        for j in range(n_sources):
            if sw > 0:
                ns = acc_value(part, lens, 2 + j) / sw
                delta = max(delta, abs(ns - sens[j]))
                sens[j] = ns
                sens_c[j] = acc_combination(part, lens, 1, 0, 0, 2 + j) / sw
            if sv > 0:
                nq = acc_combination(part, lens, 1, total - marked[j], 2 + j, 0) / sv
                delta = max(delta, abs(nq - spec[j]))
                spec[j] = nq
                spec_c[j] = acc_combination(part, lens, 1, marked[j], -1, 2 + j) / sv
        if estimate_prior:
            nf = sw / total
            delta = max(delta, abs(nf - f))
            f = nf
            f_c = sv / total
        if delta < tol:
            break
    for k in range(n_patterns):
        w[k] = posterior(patterns[k], sens, sens_c, spec, spec_c, f, f_c)
    return sens, spec, f, it, w


# --- SIMPLE (wrappers: quality.staple) -------------------------------------------------------


@nb.njit(cache=True, nogil=True)
def vote_patterns(patterns, weights):
    """Weighted majority per pattern: accepted when ``Σ_{j in pattern} w_j / Σ w_j > 0.5``, both
    sums taken in source order (as ``core``'s vote kernel does)."""
    total = 0.0
    for j in range(weights.shape[0]):
        total += weights[j]
    out = np.zeros(patterns.shape[0], np.bool_)
    for k in range(patterns.shape[0]):
        acc = 0.0
        for j in range(weights.shape[0]):
            if (patterns[k] >> j) & 1:
                acc += weights[j]
        out[k] = acc / total > 0.5
    return out


@nb.njit(cache=True, nogil=True)
def dice_patterns(patterns, counts, accept, n_sources, eps):
    """Each source's Dice against the accepted patterns, ``(2|A∩C| + eps) / (|A| + |C| + eps)``
    with areas summed exactly (int64 ``counts``)."""
    inter = np.zeros(n_sources, np.int64)
    size = np.zeros(n_sources, np.int64)
    consensus = 0
    for k in range(patterns.shape[0]):
        if accept[k]:
            consensus += counts[k]
        for j in range(n_sources):
            if (patterns[k] >> j) & 1:
                size[j] += counts[k]
                if accept[k]:
                    inter[j] += counts[k]
    out = np.empty(n_sources)
    for j in range(n_sources):
        out[j] = (2 * inter[j] + eps) / (size[j] + consensus + eps)
    return out


@nb.njit(cache=True, nogil=True)
def simple_kernel(patterns, counts, n_sources, alpha, max_iter, eps):
    """SIMPLE (Langerak et al. 2010) on a pattern histogram (``counts`` int64).

    Start with equal weights; each iteration: consensus = ``vote_patterns``; each source's
    Dice against it; among the kept sources, mean ``m = Σ d / k`` and ``sd = sqrt(Σ (d - m)² / k)``
    (sums in source order); a kept source is dropped when ``d < m - alpha·sd`` and ``d`` is
    below the best kept Dice; the kept sources' weights become their Dice (dropped ones 0).
    Stops after an iteration that drops nothing, or after ``max_iter``. Returns the weights,
    the kept flags, each source's Dice against the final consensus (``vote_patterns`` of the
    final weights), the iterations run and the final consensus per pattern.
    """
    weights = np.ones(n_sources)
    kept = np.ones(n_sources, np.bool_)
    it = 0
    while it < max_iter:
        it += 1
        d = dice_patterns(patterns, counts, vote_patterns(patterns, weights), n_sources, eps)
        m = 0.0
        n_kept = 0
        best = -1.0
        for j in range(n_sources):
            if kept[j]:
                m += d[j]
                n_kept += 1
                best = max(best, d[j])
        m /= n_kept
        v = 0.0
        for j in range(n_sources):
            if kept[j]:
                v += (d[j] - m) ** 2
        limit = m - alpha * np.sqrt(v / n_kept)
        dropped = False
        for j in range(n_sources):
            if kept[j] and d[j] < limit and d[j] < best:
                kept[j] = False
                dropped = True
        for j in range(n_sources):
            weights[j] = d[j] if kept[j] else 0.0
        if not dropped:
            break
    accept = vote_patterns(patterns, weights)
    return weights, kept, dice_patterns(patterns, counts, accept, n_sources, eps), it, accept
