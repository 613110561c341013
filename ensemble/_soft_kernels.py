"""The numba kernels of the soft vote's resampling (private: see ``ensemble.resample`` for
the recipe and ``ensemble.soft_image`` for their callers).

Each keeps its plain-Python twin as ``kernel.py_func``; ``core.jit`` says why kernels sit in
files of their own.
"""

from __future__ import annotations

import numba as nb
import numpy as np

import core.jit  # noqa: F401  (before any kernel: the package's kernel files share one cache stamp)

# --- resample (recipe: ensemble.resample; callers: ensemble.soft_image) -------------------------


@nb.njit(cache=True, nogil=True)
def bbox_above(a, t):
    """Bounding box ``(r0, r1, c0, c1)`` (half-open) of the entries of the 2-D array ``a``
    that are ``> t``; ``(0, 0, 0, 0)`` when there are none. NaN entries count as above."""
    h, w = a.shape
    r0 = h
    r1 = 0
    c0 = w
    c1 = 0
    for r in range(h):
        lo = -1
        hi = -1
        for c in range(w):
            v = a[r, c]
            if not v <= t:
                if lo < 0:
                    lo = c
                hi = c
        if lo >= 0:
            if r0 == h:
                r0 = r
            r1 = r + 1
            c0 = min(c0, lo)
            c1 = max(c1, hi + 1)
    if r1 == 0:
        return 0, 0, 0, 0
    return r0, r1, c0, c1


@nb.njit(cache=True, nogil=True)
def _hrow(data, off, ww, r, cx0, cx1, lx0, lx1, lo, hi, out):
    """Horizontal interpolation of window row ``r`` of a layer into ``out[lo:hi]``."""
    base = off + r * ww
    for x in range(lo, hi):
        out[x] = data[base + cx0[x]] * lx0[x] + data[base + cx1[x]] * lx1[x]


@nb.njit(cache=True, nogil=True)
def _mean_row(
    y, data, offs, win_w, ry0, ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi, weights, sigmoid, hbuf, tags, acc
):
    """``acc[x] = Σ_l w_l · f_l(bilinear_l(y, x))`` for rectangle row ``y`` (see
    ``fused_kernel``); ``hbuf``/``tags`` cache two horizontally interpolated rows per layer."""
    acc[:] = 0
    for layer in range(offs.shape[0]):
        r0 = ry0[layer, y]
        if r0 < 0:
            continue
        r1 = ry1[layer, y]
        lo = col_lo[layer]
        hi = col_hi[layer]
        # Two cached rows per layer: find (or compute) the slots holding r0 and r1.
        s0 = 0 if tags[layer, 0] == r0 else (1 if tags[layer, 1] == r0 else -1)
        if s0 < 0:
            s0 = 0 if tags[layer, 0] != r1 else 1
            _hrow(
                data,
                offs[layer],
                win_w[layer],
                r0,
                cx0[layer],
                cx1[layer],
                lx0[layer],
                lx1[layer],
                lo,
                hi,
                hbuf[layer, s0],
            )
            tags[layer, s0] = r0
        s1 = 0 if tags[layer, 0] == r1 else (1 if tags[layer, 1] == r1 else -1)
        if s1 < 0:
            s1 = 1 - s0
            _hrow(
                data,
                offs[layer],
                win_w[layer],
                r1,
                cx0[layer],
                cx1[layer],
                lx0[layer],
                lx1[layer],
                lo,
                hi,
                hbuf[layer, s1],
            )
            tags[layer, s1] = r1
        a0 = ly0[layer, y]
        a1 = ly1[layer, y]
        w = weights[layer]
        t0 = hbuf[layer, s0]
        t1 = hbuf[layer, s1]
        if sigmoid[layer]:
            for x in range(lo, hi):
                v = t0[x] * a0 + t1[x] * a1
                acc[x] += w * (np.float32(1) / (np.float32(1) + np.exp(-v)))
        else:
            for x in range(lo, hi):
                acc[x] += w * (t0[x] * a0 + t1[x] * a1)


@nb.njit(cache=True, nogil=True)
def fused_kernel(
    data, offs, win_w, ry0, ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi, weights, sigmoid, thr, top, left, width
):
    """Runs (flat, canonical) of ``Σ_l w_l · f_l(bilinear_l(y, x)) > thr`` over a
    rectangle of the canvas: rows ``top + y``, columns ``left + x``.

    Layer ``l``'s low-resolution window is ``data[offs[l]:]`` with row length ``win_w[l]``;
    ``ry*/ly*[l, y]`` and ``cx*/lx*[l, x]`` are its window-relative indices and weights for
    rectangle row ``y`` / column ``x`` (``ry0 < 0``: the layer does not cover that row and
    adds 0); it covers columns ``col_lo[l] <= x < col_hi[l]`` only. ``f_l`` is the sigmoid
    where ``sigmoid[l]`` is set, else the identity.
    """
    n_layers = offs.shape[0]
    rh = ry0.shape[1]
    rw = cx0.shape[1]
    acc = np.empty(rw, np.float32)
    hbuf = np.empty((n_layers, 2, rw), np.float32)
    tags = np.full((n_layers, 2), -1, np.int64)
    cap = 64
    out = np.empty((cap, 2), np.int64)
    n = 0
    for y in range(rh):
        _mean_row(
            y,
            data,
            offs,
            win_w,
            ry0,
            ry1,
            ly0,
            ly1,
            cx0,
            cx1,
            lx0,
            lx1,
            col_lo,
            col_hi,
            weights,
            sigmoid,
            hbuf,
            tags,
            acc,
        )
        row = (top + y) * width + left
        x = 0
        while x < rw:
            if not acc[x] > thr:
                x += 1
                continue
            start = x
            while x < rw and acc[x] > thr:
                x += 1
            if n > 0 and out[n - 1, 1] == row + start:
                out[n - 1, 1] = row + x  # touches the previous row's last run
                continue
            if n == cap:
                cap *= 2
                bigger = np.empty((cap, 2), np.int64)
                for k in range(n):  # a loop: slice assignment costs ~2.4 s of compilation
                    bigger[k, 0] = out[k, 0]
                    bigger[k, 1] = out[k, 1]
                out = bigger
            out[n, 0] = row + start
            out[n, 1] = row + x
            n += 1
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def histogram_kernel(
    data,
    offs,
    win_w,
    ry0,
    ry1,
    ly0,
    ly1,
    cx0,
    cx1,
    lx0,
    lx1,
    col_lo,
    col_hi,
    weights,
    sigmoid,
    thresholds,
    top,
    left,
    width,
    gt,
    hist,
):
    """Over the same rectangle as ``fused_kernel``, count each pixel in ``hist[g, k]``:
    ``g`` 1 where the canonical runs ``gt`` cover it, ``k`` the number of ``thresholds``
    (ascending float32) its mean exceeds. The pixels kept at ``thresholds[j]`` are exactly
    those counted with ``k > j``."""
    n_layers = offs.shape[0]
    rh = ry0.shape[1]
    rw = cx0.shape[1]
    acc = np.empty(rw, np.float32)
    hbuf = np.empty((n_layers, 2, rw), np.float32)
    tags = np.full((n_layers, 2), -1, np.int64)
    g = 0
    for y in range(rh):
        _mean_row(
            y,
            data,
            offs,
            win_w,
            ry0,
            ry1,
            ly0,
            ly1,
            cx0,
            cx1,
            lx0,
            lx1,
            col_lo,
            col_hi,
            weights,
            sigmoid,
            hbuf,
            tags,
            acc,
        )
        row = (top + y) * width + left
        for x in range(rw):
            p = row + x
            while g < gt.shape[0] and gt[g, 1] <= p:
                g += 1
            inside = 1 if g < gt.shape[0] and gt[g, 0] <= p else 0
            # np.searchsorted(thresholds, v, side="left"), NaN last as numpy sorts it,
            # written out (numba's costs ~0.3 s of compilation)
            v = acc[x]
            lo = 0
            hi = thresholds.shape[0]
            while lo < hi:
                mid = (lo + hi) // 2
                if thresholds[mid] < v or v != v:
                    lo = mid + 1
                else:
                    hi = mid
            hist[inside, lo] += 1
