"""Warm-up steps of ``quality``'s kernels (see ``core.warmup``): STAPLE's histogram, EM and
fusion passes, SIMPLE's selection, and the component count of the QA flags.

Each step runs the kernels as ``quality.staple`` and ``quality.qa`` call them (same argument
types), through the lower modules, so that this file imports neither of them.
"""

from __future__ import annotations

import numpy as np

from core.warmup import Step, TinySet


def _histograms(t: TinySet):
    """The tiny set's pattern histograms (two sources, every class), as ``staple`` counts them,
    and the stacked runs of its first image."""
    from quality._kernels import histogram_kernel
    from quality._sources import align

    aligned = align([t.one, t.two], "error")
    npix = t.SIZE * t.SIZE
    hist = np.zeros((len(t.CLASSES), 4), np.int64)
    for i in range(len(aligned.images)):
        runs, bounds = aligned.stacked(i)
        histogram_kernel(runs, bounds, 2, npix, hist)
    return hist, aligned.stacked(0), npix


def _fuse(t: TinySet, accept: np.ndarray, stacked, npix: int) -> None:
    from core.codec import format_rle
    from quality._kernels import fuse_kernel

    fused, fb = fuse_kernel(*stacked, 2, npix, accept)
    for c in range(len(t.CLASSES)):
        format_rle(fused[fb[c] : fb[c + 1]])


def _staple(t: TinySet) -> None:
    from quality.patterns import EMSettings, staple_class

    hist, stacked, npix = _histograms(t)
    for cfg in (EMSettings(), EMSettings(region="disagreement", prior="estimate")):
        accept = np.stack([staple_class(hist[c], 2, cfg).accept for c in range(len(t.CLASSES))])
        _fuse(t, accept, stacked, npix)


def _simple(t: TinySet) -> None:
    from quality.patterns import simple_class

    hist, stacked, npix = _histograms(t)
    accept = np.stack([simple_class(hist[c], 2, 1.0, 100).accept for c in range(len(t.CLASSES))])
    _fuse(t, accept, stacked, npix)


def _qa(t: TinySet) -> None:
    from postprocess.connected import component_areas

    for c in range(len(t.CLASSES)):
        runs = t.one.row_runs(int(t.one.rows[0, c]))
        for connectivity in (4, 8):
            component_areas(runs, t.SIZE, connectivity)


_FUSE = (
    "quality/_kernels.py:histogram_kernel",
    "quality/_kernels.py:fuse_kernel",
    "core/_rle_kernels.py:format_kernel",
)
STAPLE = Step("staple", (*_FUSE, "quality/_kernels.py:em_kernel"), _staple, 6)
"""STAPLE: pattern histograms, the EM, the fused masks (``quality.staple``)."""
SIMPLE = Step("simple", (*_FUSE, "quality/_kernels.py:simple_kernel"), _simple, 3)
"""SIMPLE (``quality.staple`` with ``method='simple'``)."""
QA = Step(
    "qa",
    ("postprocess/_segment_kernels.py:split_rows_kernel", "postprocess/_component_kernels.py:label_kernel"),
    _qa,
    1,
)
"""The QA flags' component counts (``quality.qa``)."""
