"""Soft voting of one image: every source's (C, h, w) map is resampled bilinearly to the
canvas (or to its box), passed through a sigmoid when it holds logits, averaged with
per-class weights and kept where the mean is ``> threshold``.

Memory stays at the size of the inputs: work goes class by class, and within a class only
over the rectangle where the mean *can* exceed the threshold. A weighted mean is at most its
largest term and a bilinear sample is at most its four neighbours, so a pixel can pass only
near a low-resolution sample above the threshold in some source. Each source's samples
above ``threshold - 1e-6`` are boxed, the boxes mapped to the canvas through the exact
interpolation tables, and the fused kernel (``ensemble._kernels.fused_kernel``) runs over their union.
Everything outside it is provably background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.codec import EMPTY_RUNS
from core.errors import InputError
from ensemble._soft_kernels import argmax_kernel, bbox_above, fused_kernel, histogram_kernel
from ensemble.resample import axis_table

_MARGIN = 1e-6  # keeps the support bound safe from float32 rounding


@dataclass
class Layer:
    """One source's map for one image.

    ``data`` is (C, h, w) float16/float32/float64 (probabilities, or logits when
    ``logits``) or uint8/uint16 (probability × ``scale``). ``box`` is ``(y0, x0, y1, x1)`` on
    the canvas (may reach past it) that the map covers; ``None`` covers the whole canvas.
    """

    data: np.ndarray
    logits: bool = False
    scale: float | None = None
    box: tuple[int, int, int, int] | None = None
    name: str = ""
    origin: str = ""  # the file it came from, for error messages

    def target(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(y0, x0, h, w)`` of the rectangle the map is resampled to."""
        if self.box is None:
            return 0, 0, height, width
        y0, x0, y1, x1 = self.box
        return y0, x0, y1 - y0, x1 - x0

    def values(self, c: int, r0: int, r1: int, c0: int, c1: int, exclusive: bool = False) -> np.ndarray:
        """Class ``c``'s samples in rows ``r0:r1``, columns ``c0:c1`` as float32 (logits stay
        logits; quantized maps divided by ``scale``); with ``exclusive``, ``c`` is a channel
        of a map whose channel 0 is the background (for the messages)."""
        a = np.asarray(self.data[c, r0:r1, c0:c1])
        if self.scale is not None:
            win = a.astype(np.float32) / np.float32(self.scale)
        else:
            win = np.ascontiguousarray(a, dtype=np.float32)
        self._check_window(win, channel_name(c, exclusive))
        return win

    def _check_window(self, win: np.ndarray, what_channel: str) -> None:
        # The window holds every sample that can change the result (``support`` counts NaN
        # as above any threshold; samples outside it only lower pixels that stay below), so
        # checking it alone is enough.
        if not win.size:
            return
        lo, hi = win.min(), win.max()  # NaN propagates through both
        if self.logits:
            if np.isnan(hi):
                raise InputError(f"{self.origin or self.name}: {what_channel}: NaN in the map")
        elif not (lo >= 0 and hi <= 1):
            what = "NaN" if np.isnan(hi) else f"value {hi if hi > 1 else lo:g} outside [0, 1]"
            hint = "; logits need 'logits: true'" if not np.isnan(hi) and self.scale is None else ""
            raise InputError(f"{self.origin or self.name}: {what_channel}: {what} in the map{hint}")

    def support(self, c: int, thr: float) -> tuple[int, int, int, int]:
        """Low-resolution box ``(r0, r1, c0, c1)`` of class ``c``'s samples whose probability
        may exceed ``thr``; all zeros when none can."""
        a = np.asarray(self.data[c])
        t = thr - _MARGIN
        if t < 0:
            return 0, a.shape[0], 0, a.shape[1]
        if self.logits:
            if a.dtype == np.float16:
                a = a.astype(np.float32)
            return bbox_above(a, math.log(t / (1 - t)) if t > 0 else -math.inf)
        if self.scale is not None:
            return bbox_above(a, math.floor(t * self.scale) - 1)
        if a.dtype == np.float16:
            # Non-negative halves order like their bit patterns; negatives and NaN land above.
            return bbox_above(a.view(np.uint16), int(_half_floor(t).view(np.uint16)))
        return bbox_above(a, t)


def channel_name(c: int, exclusive: bool = False) -> str:
    """How messages name channel ``c`` of a map: ``class #c+1``, or where channel 0 is the
    background (exclusive classes) ``channel 0 (the background)``, ``channel c (class #c)``.

    >>> channel_name(0), channel_name(0, exclusive=True), channel_name(2, exclusive=True)
    ('class #1', 'channel 0 (the background)', 'channel 2 (class #2)')
    """
    if not exclusive:
        return f"class #{c + 1}"
    return "channel 0 (the background)" if c == 0 else f"channel {c} (class #{c})"


def _half_floor(t: float) -> np.float16:
    h = np.float16(t)
    return np.nextafter(h, np.float16(-np.inf)) if float(h) > t else h


def _canvas_span(table, n_canvas: int, origin: int, lo: int, hi: int) -> tuple[int, int]:
    """Canvas interval ``[a, b)`` of the target pixels that read low-res samples ``lo:hi``."""
    i0, i1 = table[0], table[1]
    a = int(np.searchsorted(i1, lo, "left"))
    b = int(np.searchsorted(i0, hi - 1, "right"))
    return max(origin + a, 0), min(origin + b, n_canvas)


def _axis(table, n_target: int, origin: int, start: int, stop: int):
    """Window-relative tables of one layer for canvas positions ``start:stop``: indices,
    weights, the covered sub-range ``[lo, hi)`` and the low-res window ``[w0, w1)``."""
    n = stop - start
    local = np.arange(start, stop) - origin
    lo = int(np.clip(-(start - origin), 0, n))
    hi = int(np.clip(n_target - (start - origin), lo, n))
    i0 = np.zeros(n, np.int64)
    i1 = np.zeros(n, np.int64)
    l0 = np.zeros(n, np.float32)
    l1 = np.zeros(n, np.float32)
    if lo == hi:
        return i0 - 1, i1, l0, l1, lo, hi, 0, 0
    sl = local[lo:hi]
    w0 = int(table[0][sl[0]])
    w1 = int(table[1][sl[-1]]) + 1
    i0[lo:hi] = table[0][sl] - w0
    i1[lo:hi] = table[1][sl] - w0
    l0[lo:hi] = table[2][sl]
    l1[lo:hi] = table[3][sl]
    i0[:lo] = -1
    i0[hi:] = -1
    return i0, i1, l0, l1, lo, hi, w0, w1


def _rectangle(layers: list[Layer], c: int, weights: np.ndarray, thr: float, height: int, width: int):
    """The canvas rectangle outside which class ``c``'s weighted mean cannot exceed ``thr``,
    with every layer's window and interpolation tables over it: the arguments of
    ``fused_kernel`` up to ``sigmoid`` plus ``(top, left)``; ``None`` when it is empty."""
    active = [k for k in range(len(layers)) if weights[k] > 0]
    if not active:
        raise ValueError("no layer with a positive weight")
    wsum = float(sum(weights[k] for k in active))
    targets = [layers[k].target(height, width) for k in active]
    tables = [
        (axis_table(layers[k].data.shape[1], t[2]), axis_table(layers[k].data.shape[2], t[3]))
        for k, t in zip(active, targets, strict=True)
    ]
    Y0, Y1, X0, X1 = height, 0, width, 0
    for k, (oy, ox, _, _), (ty, tx) in zip(active, targets, tables, strict=True):
        r0, r1, c0, c1 = layers[k].support(c, thr)
        if r1 <= r0:
            continue
        ya, yb = _canvas_span(ty, height, oy, r0, r1)
        xa, xb = _canvas_span(tx, width, ox, c0, c1)
        if ya < yb and xa < xb:
            Y0, Y1, X0, X1 = min(Y0, ya), max(Y1, yb), min(X0, xa), max(X1, xb)
    if Y1 <= Y0:
        return None

    geometry, windows = _geometry(targets, tables, Y0, Y1, X0, X1)
    n = len(active)
    offs = np.zeros(n, np.int64)
    win_w = np.ones(n, np.int64)
    chunks = []
    pos = 0
    for j, (k, window) in enumerate(zip(active, windows, strict=True)):
        if window is None:
            continue
        a0, a1, b0, b1 = window
        win = layers[k].values(c, a0, a1, b0, b1)
        offs[j] = pos
        win_w[j] = b1 - b0
        chunks.append(win.reshape(-1))
        pos += win.size
    data = np.concatenate(chunks) if chunks else np.zeros(1, np.float32)
    w = np.array([weights[k] / wsum for k in active], np.float32)
    sig = np.array([layers[k].logits for k in active], np.bool_)
    return (data, offs, win_w, *geometry, w, sig), (Y0, X0)


def _geometry(targets, tables, Y0: int, Y1: int, X0: int, X1: int):
    """The interpolation tables of layers resampled to ``targets`` through ``tables`` (as
    ``_rectangle`` builds them) over canvas rows ``Y0:Y1`` and columns ``X0:X1`` (``ry0,
    ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi``, as ``fused_kernel`` takes them),
    and each layer's low-resolution window ``(a0, a1, b0, b1)``
    (``None`` where the layer does not reach the rectangle: it adds 0 everywhere)."""
    n = len(targets)
    rh, rw = Y1 - Y0, X1 - X0
    ry0 = np.empty((n, rh), np.int64)
    ry1 = np.empty((n, rh), np.int64)
    ly0 = np.empty((n, rh), np.float32)
    ly1 = np.empty((n, rh), np.float32)
    cx0 = np.empty((n, rw), np.int64)
    cx1 = np.empty((n, rw), np.int64)
    lx0 = np.empty((n, rw), np.float32)
    lx1 = np.empty((n, rw), np.float32)
    col_lo = np.zeros(n, np.int64)
    col_hi = np.zeros(n, np.int64)
    windows: list[tuple[int, int, int, int] | None] = []
    for j, ((oy, ox, th, tw), (ty, tx)) in enumerate(zip(targets, tables, strict=True)):
        ry0[j], ry1[j], ly0[j], ly1[j], _, _, a0, a1 = _axis(ty, th, oy, Y0, Y1)
        cx0[j], cx1[j], lx0[j], lx1[j], col_lo[j], col_hi[j], b0, b1 = _axis(tx, tw, ox, X0, X1)
        if a1 <= a0 or b1 <= b0:
            ry0[j] = -1  # the layer does not reach this rectangle: it adds 0 everywhere
            windows.append(None)
        else:
            windows.append((a0, a1, b0, b1))
    return (ry0, ry1, ly0, ly1, cx0, cx1, lx0, lx1, col_lo, col_hi), windows


def vote_class(layers: list[Layer], c: int, weights: np.ndarray, thr: float, height: int, width: int) -> np.ndarray:
    """Canonical runs of ``Σ w_l p_l / Σ w_l > thr`` for class ``c``; ``weights`` (L,) are
    this class's weights (layers with weight 0 are left out)."""
    rect = _rectangle(layers, c, weights, thr, height, width)
    if rect is None:
        return EMPTY_RUNS.copy()
    args, (top, left) = rect
    return fused_kernel(*args, np.float32(thr), top, left, width)


def histogram_class(
    layers: list[Layer],
    c: int,
    weights: np.ndarray,
    thresholds: np.ndarray,
    height: int,
    width: int,
    gt: np.ndarray,
    hist: np.ndarray,
) -> None:
    """Add to ``hist`` (2, len(thresholds) + 1) the pixels of class ``c`` by ground truth
    (``gt`` runs) and by how many of the ascending ``thresholds`` their weighted mean
    exceeds; pixels that exceed none (all outside the rectangle) are not counted."""
    t = np.asarray(thresholds, np.float32)
    rect = _rectangle(layers, c, weights, float(t[0]), height, width)
    if rect is not None:
        args, (top, left) = rect
        histogram_kernel(*args, t, top, left, width, np.ascontiguousarray(gt, np.int64), hist)


def vote_image(
    layers: list[Layer], weights: np.ndarray, thresholds: np.ndarray, height: int, width: int
) -> list[np.ndarray]:
    """Runs of every class of one image; ``weights`` is (L, C)."""
    return [vote_class(layers, c, weights[:, c], float(thresholds[c]), height, width) for c in range(weights.shape[1])]


def vote_image_exclusive(
    layers: list[Layer], weights: np.ndarray, height: int, width: int, n_classes: int | None = None
) -> list[np.ndarray]:
    """Runs of every class of one image whose classes are mutually exclusive: every map holds
    C + 1 channels, channel 0 the background (a softmax output, or its logits with
    ``logits=True``: the softmax over channels is then taken after resampling).

    Each channel is resampled as ``vote_class`` resamples a class (bilinear, to the canvas or
    the layer's box; outside its box a layer adds 0 to every channel) and averaged with the
    weights; a pixel takes the channel of the largest weighted mean, ties going to the lower
    channel, and channel 0 means no class. Every channel of every layer with a positive
    weight is read and checked (a probability outside [0, 1] or a NaN is an error).

    Parameters
    ----------
    layers : list of Layer
        One per source, each (C + 1, h, w).
    weights : array-like
        (L,) per layer or (L, C + 1) per layer and channel, >= 0; each channel needs a
        positive sum. A layer's mean of channel ``k`` is ``Σ w[l, k]·p_l[k] / Σ w[l, k]``.
    height, width : int
        The canvas.
    n_classes : int, optional
        C, when known: every map must then hold C + 1 channels.

    Returns
    -------
    list of C (m, 2) int64 arrays
        Canonical runs of channels 1 … C, mutually exclusive.

    Raises
    ------
    InputError
        A map whose channel count is not C + 1 (or differs from the first map's), or whose
        values are invalid.
    ValueError
        Weights of the wrong shape or sign, or a channel whose weights are all 0.

    Examples
    --------
    >>> import numpy as np
    >>> bg = np.array([[0.7, 0.2], [0.1, 0.4]])
    >>> maps = np.stack([bg, (1 - bg) * 0.75, (1 - bg) * 0.25]).astype(np.float32)
    >>> [r.tolist() for r in vote_image_exclusive([Layer(maps)], np.ones(1), 2, 2, n_classes=2)]
    [[[1, 4]], []]
    """
    if not layers:
        raise ValueError("no layers")
    n_ch = int(layers[0].data.shape[0])
    want = n_ch if n_classes is None else n_classes + 1
    for k, layer in enumerate(layers):
        got = int(layer.data.shape[0])
        if got != want:
            expected = f"{want} (the background and {want - 1} classes)"
            raise InputError(f"{layer.origin or layer.name or f'layer #{k + 1}'}: {got} channels, expected {expected}")
    w = np.asarray(weights, np.float64)
    if w.ndim == 1 and w.shape == (len(layers),):
        w = np.repeat(w[:, None], want, 1)
    if w.shape != (len(layers), want):
        raise ValueError(f"weights of shape {w.shape} for {len(layers)} layers of {want} channels")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError("weights must be finite and >= 0")
    active = [k for k in range(len(layers)) if w[k].any()]
    wsum = np.zeros(want)
    for k in active:  # in layer order, as vote_class sums a class's weights
        wsum += w[k]
    if not (wsum > 0).all():
        raise ValueError(f"channel #{int(np.argmin(wsum > 0))}: every weight is 0")
    targets = [layers[k].target(height, width) for k in active]
    tables = [
        (axis_table(layers[k].data.shape[1], t[2]), axis_table(layers[k].data.shape[2], t[3]))
        for k, t in zip(active, targets, strict=True)
    ]
    geometry, windows = _geometry(targets, tables, 0, height, 0, width)
    offs = np.zeros((len(active), want), np.int64)
    win_w = np.ones(len(active), np.int64)
    chunks = []
    pos = 0
    for j, (k, window) in enumerate(zip(active, windows, strict=True)):
        if window is None:
            continue
        a0, a1, b0, b1 = window
        win_w[j] = b1 - b0
        for ch in range(want):
            win = layers[k].values(ch, a0, a1, b0, b1, exclusive=True)
            offs[j, ch] = pos
            chunks.append(win.reshape(-1))
            pos += win.size
    data = np.concatenate(chunks) if chunks else np.zeros(1, np.float32)
    wn = np.array([w[k] / wsum for k in active], np.float32).reshape(len(active), want)
    soft = np.array([layers[k].logits for k in active], np.bool_)
    out, label, n = argmax_kernel(data, offs, win_w, *geometry, wn, soft, width)
    label = label[:n]
    order = np.argsort(label, kind="stable")
    cuts = np.searchsorted(label[order], np.arange(1, want + 1))
    grouped = out[:n][order]
    return [grouped[cuts[c] : cuts[c + 1]] for c in range(want - 1)]
