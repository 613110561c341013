"""STAPLE and SIMPLE over whole prediction sets, exactly, on runs: ``staple`` → ``StapleResult``.

Binary STAPLE (Warfield, Zou & Wells 2004) per class: every pixel's posterior depends only on
its vote pattern (which sources mark it), so the EM runs on the ``2**R`` pixel counts of the
patterns, counted by a sweep over the sources' run boundaries; the fused mask is the union of
the segments whose pattern is accepted. SIMPLE (Langerak et al. 2010) runs on the same
histograms. Nothing is ever dense: the cost is that of two sweeps over the runs (one with
``scope='image'``), whatever the image size.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from core import Predictions
from core.codec import format_rle
from core.errors import UsageError
from core.predictions import PredictionWriter
from quality._kernels import fuse_kernel, histogram_kernel
from quality._sources import (
    Source,
    align,
    bar,
    check_output,
    is_path,
    load,
    split_sources,
)
from quality.patterns import EMSettings, simple_class, staple_class
from quality.result import StapleResult

__all__ = ["MAX_SOURCES", "StapleResult", "staple"]

MAX_SOURCES = 16
"""The most sources ``staple`` takes: the histograms have ``2**R`` patterns per class."""

REUSE_BYTES = 256 << 20
"""``scope='pooled'`` reads the masks twice (the histograms, then the fused masks); the first
pass keeps the parsed runs of the first images for the second, up to this many bytes, so
memory stays bounded whatever the number of images."""


def staple(
    sources: Mapping[str, Source] | Sequence[Source],
    names: Sequence[str] | None = None,
    output: str | os.PathLike | None = None,
    *,
    scope: str = "pooled",
    region: str = "all",
    prior: str = "fixed",
    confidence: float = 0.5,
    init_sensitivity: float = 0.99,
    init_specificity: float = 0.99,
    tol: float = 1e-7,
    max_iter: int = 100,
    method: str = "staple",
    alpha: float = 1.0,
    missing: str = "error",
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    fuse: bool = True,
    echo: Callable[[str], None] | None = None,
    progress: Callable | None = None,
) -> StapleResult:
    """Fuse prediction sets with STAPLE (or SIMPLE) per class, and estimate each source's quality.

    STAPLE (``method='staple'``): for each class (and each image with ``scope='image'``), EM
    on the histogram of vote patterns. Each iteration computes every pattern's posterior
    ``W = f·Π(s or 1-s) / (f·Π(s or 1-s) + (1-f)·Π(1-q or q))`` (``W = f`` where both terms
    are 0), then sensitivity ``s_j = Σ W·D_j / Σ W`` and specificity
    ``q_j = Σ (1-W)(1-D_j) / Σ (1-W)`` over the pixels the EM runs on; an estimate whose
    denominator is 0 keeps its value. Every sum is exact, rounded once (as ``math.fsum``),
    and each complement (``1-s``, ``1-q``, ``1-f``) is its own sum's quotient: the result is
    the same bits whatever the order of pixels, images or patterns (an EM passing near a
    saddle point would otherwise amplify rounding differences). It stops once the largest
    change of any estimate (the prior too when estimated) is below ``tol``, or after
    ``max_iter`` iterations. A pixel is kept where its posterior under the final estimates
    is ``>= confidence`` (less ``1e-12``, so that posteriors equal to ``confidence`` in exact
    arithmetic, as symmetric sources give, are kept whatever the rounding).

    SIMPLE (``method='simple'``): start from the equal-weight majority (``Σ w·m / Σ w > 0.5``,
    strict); each round, every source's Dice against the consensus (``(2|A∩C| + 1e-4) /
    (|A| + |C| + 1e-4)``, areas summed over the group's pixels); among the kept sources,
    drop those with Dice ``< mean − alpha·std`` (population std; a source at the best kept
    Dice is never dropped, so one always stays); the kept sources' weights become their
    Dice; stop after a round that drops nothing, or after ``max_iter`` rounds. The fused
    mask is the weighted majority of the final weights.

    Parameters
    ----------
    sources : mapping or sequence
        2 to 16 prediction sets: CSV paths, ``Predictions`` or DataFrames
        ``image_name,class,rle``; a mapping names them, else ``names`` or the file stems do.
        All must hold the same images (rows follow the first source's order).
    names : sequence of str, optional
        One name per source (with a sequence of sources).
    output : path, optional
        Write the fused masks there (CSV ``image_name,class,rle``, atomic); else they are
        kept in memory (``StapleResult.masks``).
    scope : {"pooled", "image"}
        One estimate per source and class over the whole set (the histograms summed over
        the images), or one per image and class.
    region : {"all", "disagreement"}
        The EM runs on every pixel (Warfield's), or only on the pixels where the sources
        disagree: pixels marked by every source are foreground, by none background, fixed.
    prior : {"fixed", "estimate"}
        The foreground prior ``f``: the sources' mean foreground fraction over the pixels the
        EM runs on (``Σ_j |D_j| / (R·N)``), or that as a start, re-estimated each iteration as
        ``Σ W / N``.
    confidence : float
        Keep a pixel where its posterior is ``>= confidence`` (0 … 1).
    init_sensitivity, init_specificity : float
        Initial estimates, strictly between 0 and 1.
    tol : float
        Convergence: the largest change of any estimate in an iteration (> 0).
    max_iter : int
        At most this many EM iterations (STAPLE) or rounds (SIMPLE), >= 1.
    method : {"staple", "simple"}
    alpha : float
        SIMPLE's drop threshold in standard deviations below the mean Dice (>= 0).
    missing : {"error", "empty"}
        A row absent from a source: an error, or read as an empty mask.
    classes, height, width : optional
        Class list and mask size for the paths (default: those of the first ``Predictions``
        given, else the 29 hand-bone classes and 2048²).
    fuse : bool
        ``False``: estimates only (no fused masks, no ``output``; ``scope='pooled'`` then
        reads the masks once).
    echo : callable, optional
        Receives one-line messages: the numba compilation of a cold cache, said before the
        work (``core.warmup``).
    progress : callable, optional
        ``progress(total=, desc=, unit=)`` → a context manager with ``update(n)``.

    Returns
    -------
    StapleResult

    Raises
    ------
    UsageError
        A bad parameter (it is named), fewer than 2 or more than 16 sources, an output that is
        one of the inputs, ``region='disagreement'`` with SIMPLE.
    InputError
        An unreadable or invalid source.
    DataError
        Sources with differing images, classes or sizes; a missing row with ``missing='error'``.

    Notes
    -----
    Edge cases, exactly:

    - A class empty in every source (``region='all'``): the prior is 0, every posterior 0;
      sensitivities keep their initial value (``Σ W = 0``), specificities become 1 and the
      EM stops at iteration 2; the fused mask is empty.
    - Sources that agree everywhere (or a class empty everywhere) with
      ``region='disagreement'``: no pixel is left for the EM, so none runs; the estimates
      stay at their initial values with ``iterations`` 0 and a NaN prior; the fused mask is
      the unanimous foreground.
    - With ``region='all'`` the all-zero pattern is a pattern like the others: if its
      posterior reaches ``confidence``, every pixel no source marks is kept.
    - SIMPLE on a class empty in every source: every Dice is 1, nothing is dropped, the
      weights are 1 and the consensus empty.

    Examples
    --------
    >>> import pandas as pd
    >>> def frame(*rles):
    ...     return pd.DataFrame({"image_name": "a.png", "class": ["x", "y"], "rle": list(rles)})
    >>> sets = {"m1": frame("1 6", "1 2"), "m2": frame("2 5", ""), "m3": frame("1 5", "1 1")}
    >>> r = staple(sets, classes=["x", "y"], height=3, width=3)
    >>> r.to_frame().values.tolist()
    [['a.png', 'x', '1 6'], ['a.png', 'y', '1 1']]
    >>> r.estimates_frame().round(3).values.tolist()[:3]
    [['m1', 'x', 1.0, 1.0, 4], ['m2', 'x', 0.833, 1.0, 4], ['m3', 'x', 0.833, 1.0, 4]]
    """
    cfg = _check(scope, region, prior, confidence, init_sensitivity, init_specificity, tol, max_iter, method, alpha)
    srcs, names = split_sources(sources, names)
    if len(srcs) < 2:
        raise UsageError(f"sources: need at least 2 sources, got {len(srcs)}", param="sources")
    if len(srcs) > MAX_SOURCES:
        raise UsageError(
            f"sources: STAPLE takes at most {MAX_SOURCES} sources (2**R vote patterns per class), got {len(srcs)}",
            param="sources",
        )
    if not fuse and output is not None:
        raise UsageError("output: no fused masks are written with fuse=False", param="output")
    srcs = [_from_frame(s, k, classes, height, width) for k, s in enumerate(srcs)]
    out = check_output(output, srcs)
    if echo is not None:
        from core.warmup import READ, precompile
        from quality.warmup import SIMPLE, STAPLE

        precompile(echo, *([READ] if any(is_path(s) for s in srcs) else []), STAPLE if method == "staple" else SIMPLE)
    aligned = align(load(srcs, classes, height, width), missing)
    first = aligned.sources[0]
    n_images, n_classes, n_sources = len(aligned.images), len(first.classes), len(srcs)
    groups = 1 if scope == "pooled" else n_images
    est = _Estimates(method, groups, n_sources, n_classes)
    masks: list[list[np.ndarray]] | None = None if out or not fuse else []

    def estimate(g: int, hist: np.ndarray) -> np.ndarray:
        accept = np.zeros((n_classes, 1 << n_sources), np.bool_)
        for c in range(n_classes):
            if method == "staple":
                accept[c] = est.put_staple(g, c, staple_class(hist[c], n_sources, cfg))
            else:
                accept[c] = est.put_simple(g, c, simple_class(hist[c], n_sources, alpha, max_iter))
        return accept

    def write_fused(writer, i: int, runs: np.ndarray, bounds: np.ndarray, accept: np.ndarray) -> None:
        if not fuse:
            return
        fused, fb = fuse_kernel(runs, bounds, n_sources, aligned.npix(i), accept)
        per_class = [fused[fb[c] : fb[c + 1]] for c in range(n_classes)]
        if writer is not None:
            writer.write_image(aligned.images[i], [format_rle(r) for r in per_class])
        else:
            masks.append([r.copy() for r in per_class])

    passes = 2 if scope == "pooled" and fuse else 1
    sink = PredictionWriter(out, first.classes) if out else contextlib.nullcontext()
    with bar(progress, passes * n_images, method) as b, sink as writer:
        if scope == "pooled":
            hist = np.zeros((n_classes, 1 << n_sources), np.int64)
            kept, size = {}, 0
            for i in range(n_images):
                runs, bounds = aligned.stacked(i)
                histogram_kernel(runs, bounds, n_sources, aligned.npix(i), hist)
                if fuse and size + runs.nbytes <= REUSE_BYTES:  # the second pass reuses them
                    kept[i], size = (runs, bounds), size + runs.nbytes
                b.update(1)
            accept = estimate(0, hist)
            for i in range(n_images if fuse else 0):
                write_fused(writer, i, *(kept.pop(i) if i in kept else aligned.stacked(i)), accept)
                b.update(1)
        else:
            for i in range(n_images):
                runs, bounds = aligned.stacked(i)
                hist = np.zeros((n_classes, 1 << n_sources), np.int64)
                histogram_kernel(runs, bounds, n_sources, aligned.npix(i), hist)
                write_fused(writer, i, runs, bounds, estimate(i, hist))
                b.update(1)
    return StapleResult(
        method=method,
        scope=scope,
        region=region,
        prior_mode=prior,
        names=names,
        classes=first.classes,
        images=list(aligned.images),
        height=first.height,
        width=first.width,
        output=out,
        masks=masks,
        rows=n_images * n_classes if fuse else 0,
        n_missing=aligned.n_missing,
        **est.fields(),
    )


class _Estimates:
    """The per-(group, source, class) arrays a run fills."""

    def __init__(self, method: str, groups: int, n_sources: int, n_classes: int):
        shape = (groups, n_sources, n_classes)
        self.method = method
        self.iterations = np.zeros((groups, n_classes), np.int64)
        if method == "staple":
            self.sensitivity = np.full(shape, np.nan)
            self.specificity = np.full(shape, np.nan)
            self.prior = np.full((groups, n_classes), np.nan)
        else:
            self.weights = np.full(shape, np.nan)
            self.dice = np.full(shape, np.nan)
            self.kept = np.zeros(shape, np.bool_)

    def put_staple(self, g: int, c: int, e) -> np.ndarray:
        self.sensitivity[g, :, c] = e.sensitivity
        self.specificity[g, :, c] = e.specificity
        self.prior[g, c] = e.prior
        self.iterations[g, c] = e.iterations
        return e.accept

    def put_simple(self, g: int, c: int, e) -> np.ndarray:
        self.weights[g, :, c] = e.weights
        self.dice[g, :, c] = e.dice
        self.kept[g, :, c] = e.kept
        self.iterations[g, c] = e.iterations
        return e.accept

    def fields(self) -> dict:
        if self.method == "staple":
            return dict(
                iterations=self.iterations, sensitivity=self.sensitivity, specificity=self.specificity, prior=self.prior
            )
        return dict(iterations=self.iterations, weights=self.weights, dice=self.dice, kept=self.kept)


def _from_frame(source, k: int, classes, height, width):
    """A DataFrame source as ``Predictions`` (named ``source<k+1>``); other sources as given."""
    if hasattr(source, "columns") and not isinstance(source, Predictions):
        from core.classes import CANVAS

        return Predictions.from_frame(source, classes, height or CANVAS, width or CANVAS, name=f"source{k + 1}")
    return source


def _choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UsageError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}", param=name)


def _real(name: str, value, lo: float, hi: float, open_lo: bool = False, open_hi: bool = False) -> float:
    """``value`` as a float within ``lo … hi`` (ends excluded where ``open_*``), else a ``UsageError``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name}: expected a number, got {value!r}", param=name) from None
    if isinstance(value, bool) or math.isnan(x) or x < lo or x > hi or (open_lo and x == lo) or (open_hi and x == hi):
        span = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise UsageError(f"{name}: expected a number in {span}, got {value!r}", param=name)
    return x


def _check(scope, region, prior, confidence, init_s, init_q, tol, max_iter, method, alpha) -> EMSettings:
    """The parameters validated, as ``EMSettings``."""
    _choice("scope", scope, ("pooled", "image"))
    _choice("region", region, ("all", "disagreement"))
    _choice("prior", prior, ("fixed", "estimate"))
    _choice("method", method, ("staple", "simple"))
    if method == "simple" and region != "all":
        raise UsageError("region: SIMPLE scores whole masks; region='disagreement' is STAPLE's", param="region")
    _real("alpha", alpha, 0.0, math.inf, open_hi=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise UsageError(f"max_iter: expected an integer >= 1, got {max_iter!r}", param="max_iter")
    return EMSettings(
        region=region,
        prior=prior,
        confidence=_real("confidence", confidence, 0.0, 1.0),
        init_sensitivity=_real("init_sensitivity", init_s, 0.0, 1.0, open_lo=True, open_hi=True),
        init_specificity=_real("init_specificity", init_q, 0.0, 1.0, open_lo=True, open_hi=True),
        tol=_real("tol", tol, 0.0, math.inf, open_lo=True, open_hi=True),
        max_iter=int(max_iter),
    )
