"""STAPLE for a few classes inside another job (a vote's ``staple:`` classes, ``tune``'s
candidates): pooled pattern histograms, the per-class estimate, and one fused mask at a time.

The same kernels and the same EM as ``quality.staple.staple`` with ``scope='pooled'`` and its
default parameters, so that a class fused here equals, mask for mask, the class that
``staple`` fuses from the same sources and images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core import Predictions
from quality._kernels import fuse_kernel, histogram_kernel
from quality.patterns import ClassEstimate, EMSettings, staple_class

__all__ = ["REGIONS", "class_estimate", "fuse_mask", "pooled_histograms"]

REGIONS = ("all", "disagreement")
"""The regions a class may be fused by (``quality.staple.staple``'s ``region``)."""


def pooled_histograms(
    sources: Sequence[Predictions], rows: np.ndarray, classes: Sequence[int], progress=None
) -> np.ndarray:
    """``(len(classes), 2**S)`` pixel counts per vote pattern of each class in ``classes``, summed
    over the images: ``rows[s, i, c]`` is source ``s``'s row of image ``i`` and class ``c``
    (-1: absent, an empty mask), images in the first source's order. The all-zero pattern
    counts every pixel of the image (its own size) no source marks."""
    n_sources = len(sources)
    hist = np.zeros((len(classes), 1 << n_sources), np.int64)
    for i in range(rows.shape[1]):
        h, w = sources[0].size(i)
        npix = h * w
        masks = [sources[s].row_runs(int(rows[s, i, c])) for c in classes for s in range(n_sources)]
        runs, bounds = _stacked(masks)
        histogram_kernel(runs, bounds, n_sources, npix, hist)
        if progress is not None:
            progress.update(1)
    return hist


def class_estimate(hist: np.ndarray, n_sources: int, region: str) -> ClassEstimate:
    """STAPLE of one class's pooled histogram with ``staple``'s default parameters (initial
    estimates 0.99, a fixed prior, confidence 0.5, tolerance 1e-7, 100 iterations) and
    ``region``; ``accept`` says which of the ``2**n_sources`` patterns the fused mask holds."""
    if region not in REGIONS:
        raise ValueError(f"region: expected one of {REGIONS}, got {region!r}")
    return staple_class(hist, n_sources, EMSettings(region=region))


def fuse_mask(masks: Sequence[np.ndarray], accept: np.ndarray, npix: int) -> np.ndarray:
    """The fused mask of one class on one image: the pixels whose pattern (bit ``j``: ``masks[j]``
    covers it) ``accept`` holds; canonical runs."""
    runs, bounds = _stacked(masks)
    fused, _ = fuse_kernel(runs, bounds, len(masks), int(npix), np.ascontiguousarray(accept, np.bool_)[None, :])
    return fused


def _stacked(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Masks stacked as the kernels take them (``quality._sources.Aligned.stacked``)."""
    bounds = np.zeros(len(masks) + 1, np.int64)
    np.cumsum([len(m) for m in masks], out=bounds[1:])
    runs = np.concatenate(masks) if len(masks) else np.zeros((0, 2), np.int64)
    return np.ascontiguousarray(runs, np.int64).reshape(-1, 2), bounds
