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


# --- exclusive classes (caller: ensemble.soft_image.vote_image_exclusive) ----------------------


@nb.njit(cache=True, nogil=True)
def _layer_channels(
    y, layer, data, offs, win_w, ry0, ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi, softmax, hbuf, tags, val
):
    """``val[k, lo:hi]``: channel ``k`` of ``layer`` resampled at rectangle row ``y`` (columns
    ``col_lo:col_hi`` of the layer), through a softmax over the channels where
    ``softmax[layer]`` is set; ``hbuf``/``tags`` cache two horizontally interpolated rows of
    every channel, as ``_mean_row`` does for one."""
    n_ch = offs.shape[1]
    r0 = ry0[layer, y]
    r1 = ry1[layer, y]
    lo = col_lo[layer]
    hi = col_hi[layer]
    s0 = 0 if tags[layer, 0] == r0 else (1 if tags[layer, 1] == r0 else -1)
    if s0 < 0:
        s0 = 0 if tags[layer, 0] != r1 else 1
        for k in range(n_ch):
            _hrow(
                data, offs[layer, k], win_w[layer], r0, cx0[layer], cx1[layer], lx0[layer], lx1[layer], lo, hi,
                hbuf[layer, k, s0],
            )  # fmt: skip
        tags[layer, s0] = r0
    s1 = 0 if tags[layer, 0] == r1 else (1 if tags[layer, 1] == r1 else -1)
    if s1 < 0:
        s1 = 1 - s0
        for k in range(n_ch):
            _hrow(
                data, offs[layer, k], win_w[layer], r1, cx0[layer], cx1[layer], lx0[layer], lx1[layer], lo, hi,
                hbuf[layer, k, s1],
            )  # fmt: skip
        tags[layer, s1] = r1
    a0 = ly0[layer, y]
    a1 = ly1[layer, y]
    for k in range(n_ch):
        t0 = hbuf[layer, k, s0]
        t1 = hbuf[layer, k, s1]
        v = val[k]
        for x in range(lo, hi):
            v[x] = t0[x] * a0 + t1[x] * a1
    if softmax[layer]:
        for x in range(lo, hi):
            top = val[0, x]
            for k in range(1, n_ch):
                top = max(top, val[k, x])
            total = np.float32(0)
            for k in range(n_ch):
                e = np.exp(val[k, x] - top)
                val[k, x] = e
                total += e
            for k in range(n_ch):
                val[k, x] = val[k, x] / total


@nb.njit(cache=True, nogil=True)
def argmax_kernel(data, offs, win_w, ry0, ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi, weights, softmax, width):
    """Runs of the channel with the largest weighted mean, over the whole canvas (rows
    ``ry0.shape[1]``, columns ``width``): ``(out, label, n)``, runs ``out[:n]`` in position
    order, ``label[:n]`` their channels (never 0: the background is not written).

    As ``fused_kernel``, but a layer holds channels: channel ``k`` of layer ``l`` is the
    window ``data[offs[l, k]:]``; every channel of a layer shares its tables. A pixel's mean
    of channel ``k`` is ``Σ_l weights[l, k] · f_l(bilinear_l(y, x))[k]``, summed in layer
    order (``weights`` float32, already divided by each channel's sum); ``f_l`` is the softmax
    over channels where ``softmax[l]``, else the identity. The pixel takes the first channel
    whose mean beats every earlier one's (ties: the lower channel).
    """
    n_layers = offs.shape[0]
    n_ch = offs.shape[1]
    rh = ry0.shape[1]
    rw = cx0.shape[1]
    acc = np.empty((n_ch, rw), np.float32)
    val = np.empty((n_ch, rw), np.float32)
    hbuf = np.empty((n_layers, n_ch, 2, rw), np.float32)
    tags = np.empty((n_layers, 2), np.int64)  # filled by loops: np.full costs ~0.3 s of compilation
    for layer in range(n_layers):
        tags[layer, 0] = -1
        tags[layer, 1] = -1
    lab = np.empty(rw, np.int64)
    last = np.empty(n_ch, np.int64)  # each channel's last run in out
    for k in range(n_ch):
        last[k] = -1
    cap = 64
    out = np.empty((cap, 2), np.int64)
    label = np.empty(cap, np.int64)
    n = 0
    for y in range(rh):
        for k in range(n_ch):
            for x in range(rw):
                acc[k, x] = 0
        for layer in range(n_layers):
            if ry0[layer, y] < 0:
                continue
            _layer_channels(
                y, layer, data, offs, win_w, ry0, ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi, softmax, hbuf,
                tags, val,
            )  # fmt: skip
            for k in range(n_ch):
                w = weights[layer, k]
                for x in range(col_lo[layer], col_hi[layer]):
                    acc[k, x] += w * val[k, x]
        for x in range(rw):
            best = acc[0, x]
            win = 0
            for k in range(1, n_ch):
                if acc[k, x] > best:
                    best = acc[k, x]
                    win = k
            lab[x] = win
        row = y * width
        x = 0
        while x < rw:
            k = lab[x]
            start = x
            while x < rw and lab[x] == k:
                x += 1
            if k == 0:
                continue
            j = last[k]
            if j >= 0 and out[j, 1] == row + start:
                out[j, 1] = row + x  # touches the channel's run ending the previous row
                continue
            if n == cap:
                cap *= 2
                bigger = np.empty((cap, 2), np.int64)
                more = np.empty(cap, np.int64)
                for i in range(n):  # a loop: slice assignment costs seconds of compilation
                    bigger[i, 0] = out[i, 0]
                    bigger[i, 1] = out[i, 1]
                    more[i] = label[i]
                out = bigger
                label = more
            out[n, 0] = row + start
            out[n, 1] = row + x
            label[n] = k
            last[k] = n
            n += 1
    return out, label, n
