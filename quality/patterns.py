"""Per-class estimates from histograms of vote patterns: STAPLE's EM and SIMPLE's selection.

A pattern is the set of sources covering a pixel, as a bit mask (bit ``j``: source ``j``).
A pixel's STAPLE posterior and its weighted-majority decision depend only on its pattern,
so both methods run on the ``2**R`` pixel counts of one class (``quality._kernels``) and
return, besides their estimates, the table of accepted patterns that the fused mask is
built from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quality._kernels import em_kernel, simple_kernel

EPS = 1e-4
"""The Dice smoothing term of the toolbox (two empty masks score 1)."""

TIE = 1e-12
"""A pattern is accepted when its posterior is ``>= confidence - TIE``. Symmetric sources give
posteriors that equal the confidence exactly in exact arithmetic (two sources with mirrored
estimates and a prior of 0.5 put their disagreement patterns at exactly 0.5); floating point
lands them an ulp to either side depending on summation order. The tolerance decides such
ties as the exact rule does (kept) whatever the rounding."""


@dataclass(frozen=True)
class EMSettings:
    """STAPLE's parameters (see ``quality.staple.staple``)."""

    region: str = "all"
    prior: str = "fixed"
    confidence: float = 0.5
    init_sensitivity: float = 0.99
    init_specificity: float = 0.99
    tol: float = 1e-7
    max_iter: int = 100


@dataclass
class ClassEstimate:
    """One class's STAPLE estimates (``sensitivity``, ``specificity``: one per source), the
    prior used last (NaN when no EM ran), the iterations run, and ``accept``: whether each
    of the ``2**R`` patterns belongs to the fused mask."""

    sensitivity: np.ndarray
    specificity: np.ndarray
    prior: float
    iterations: int
    accept: np.ndarray


@dataclass
class ClassSelection:
    """One class's SIMPLE result: final ``weights`` (0 for a dropped source), ``kept`` flags,
    each source's ``dice`` against the final consensus, the iterations run, and ``accept``
    (the consensus as a table of the ``2**R`` patterns)."""

    weights: np.ndarray
    kept: np.ndarray
    dice: np.ndarray
    iterations: int
    accept: np.ndarray


def popcount(patterns: np.ndarray) -> np.ndarray:
    """Number of sources in each pattern."""
    return np.bitwise_count(np.asarray(patterns, np.int64)).astype(np.int64)


def staple_class(hist: np.ndarray, n_sources: int, cfg: EMSettings) -> ClassEstimate:
    """STAPLE on one class's pattern histogram ``hist`` (``2**R`` pixel counts).

    The EM runs on the patterns with a positive count — all of them (``region='all'``) or
    all but the all-zero and all-one patterns (``'disagreement'``, where those two are fixed
    to background and foreground). The fixed prior is the sources' mean foreground fraction
    over those pixels, ``Σ n·|pattern| / (R·Σ n)``; ``prior='estimate'`` starts from it. A
    pattern is accepted when its posterior is ``>= cfg.confidence`` (up to ``TIE``). When no pixel is left to
    run on (every pixel unanimous, with ``'disagreement'``), no EM runs: the estimates stay at
    their initial values, iterations 0, prior NaN.
    """
    full = (1 << n_sources) - 1
    patterns = np.flatnonzero(hist).astype(np.int64)
    accept = np.zeros(full + 1, np.bool_)
    if cfg.region == "disagreement":
        patterns = patterns[(patterns != 0) & (patterns != full)]
        accept[full] = True
    if not len(patterns):
        init_s = np.full(n_sources, cfg.init_sensitivity)
        init_q = np.full(n_sources, cfg.init_specificity)
        return ClassEstimate(init_s, init_q, float("nan"), 0, accept)
    counts = hist[patterns]
    marks, slots = int((counts * popcount(patterns)).sum()), n_sources * int(counts.sum())
    sens, spec, f, it, w = em_kernel(
        patterns,
        np.ascontiguousarray(counts, np.int64),
        n_sources,
        float(cfg.init_sensitivity),
        float(cfg.init_specificity),
        marks / slots,
        (slots - marks) / slots,
        cfg.prior == "estimate",
        float(cfg.tol),
        int(cfg.max_iter),
    )
    accept[patterns] = w >= cfg.confidence - TIE
    return ClassEstimate(sens, spec, float(f), int(it), accept)


def simple_class(hist: np.ndarray, n_sources: int, alpha: float, max_iter: int) -> ClassSelection:
    """SIMPLE on one class's pattern histogram (see ``quality._kernels.simple_kernel``): Dice of
    whole masks over the histogram's pixels, weighted majority ``Σ w·m / Σ w > 0.5``."""
    patterns = np.flatnonzero(hist).astype(np.int64)
    counts = np.ascontiguousarray(hist[patterns], np.int64)
    weights, kept, dice, it, acc = simple_kernel(patterns, counts, n_sources, float(alpha), int(max_iter), EPS)
    accept = np.zeros(1 << n_sources, np.bool_)
    accept[patterns] = acc
    return ClassSelection(weights, kept, dice, int(it), accept)
