"""Votes over exclusive labels on runs: each pixel takes at most one class.

With mutually exclusive classes the background is a label like the others, and the vote is
a plurality over the labels. Source ``s`` gives class ``c`` the weight ``w[s, c]`` where its
mask of ``c`` covers the pixel, and gives the background ``bw[s]`` where it covers none of
its classes (a source that marks a class it has weight 0 for abstains there). The pixel
takes the label with the highest score; ties go to the background, then to the class listed
first, so a class whose score is 0 never wins and a pixel no source marks stays background.

One sweep over the run boundaries of every (source, class) mask of the image decides once
per segment (``core._run_kernels.exclusive_vote_kernel``). Each score is summed over the
sources in source order, starting from 0.0, exactly as the dense
``score_c = 0.0; for s: score_c += w[s, c] · m[s, c]`` does (adding ``w · 0 = +0.0`` changes
nothing), so the result equals a dense reference bit for bit, ties included. The outputs are
exclusive by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.exclusivity import plurality
from core.sweep import stack_runs


def _weights(weights, n_sources: int, n_classes: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    w = np.ones(shape) if weights is None else np.asarray(weights, np.float64)
    if w.ndim == 1 and len(shape) == 2 and w.shape == (n_sources,):
        w = np.repeat(w[:, None], n_classes, 1)
    if w.shape != shape:
        raise ValueError(f"{name}: shape {w.shape} for {n_sources} sources and {n_classes} classes, expected {shape}")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError(f"{name}: every weight must be finite and >= 0")
    return np.ascontiguousarray(w)


def exclusive_vote(
    masks: Sequence[Sequence[np.ndarray]],
    weights: np.ndarray | Sequence | None = None,
    background_weights: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """Vote one image's exclusive classes on runs: per pixel, the plurality among the classes
    and the background.

    Class ``c`` scores ``Σ_s w[s, c] · m[s, c]``; the background scores
    ``Σ_s bw[s] · (source s marks none of the classes)``. The pixel takes the highest score;
    ties go to the background, then to the class listed first (a class scoring 0 never wins).

    Parameters
    ----------
    masks : sequence of sequences of (n, 2) int64 arrays
        ``masks[s][c]``: source ``s``'s canonical runs of class ``c``; every source lists
        the same classes in the same order.
    weights : array-like, optional
        (S,) per source or (S, C) per source and class, finite and >= 0 (default: all 1).
    background_weights : sequence of float, optional
        (S,) the weight of each source's background vote, finite and >= 0 (default: all 1,
        a hard vote). It is given on its own: a per-class weight says nothing about how much
        a source's "no class here" is worth. All 0: the best class wins wherever one is marked.

    Returns
    -------
    list of (m, 2) int64 arrays
        One canonical run array per class, mutually exclusive.

    Raises
    ------
    ValueError
        Sources listing different numbers of classes, weights of the wrong shape or sign.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.array([[0, 6]]), np.array([[4, 10]])
    >>> empty = np.zeros((0, 2), np.int64)
    >>> out = exclusive_vote([[a, empty], [empty, b], [a, b]])
    >>> [r.tolist() for r in out]  # pixels 4, 5: a tie of the two classes, won by the first
    [[[0, 6]], [[6, 10]]]
    >>> [r.tolist() for r in exclusive_vote([[a, empty], [empty, b]])]  # 0-3, 6-9: 1 vote to 1, background
    [[[4, 6]], []]
    >>> [r.tolist() for r in exclusive_vote([[a, empty], [empty, b]], background_weights=[0, 0])]
    [[[0, 6]], [[6, 10]]]
    """
    n_src = len(masks)
    if n_src == 0:
        raise ValueError("masks: no sources")
    n_cls = len(masks[0])
    for s, m in enumerate(masks):
        if len(m) != n_cls:
            raise ValueError(f"masks: source #{s + 1} lists {len(m)} classes, source #1 {n_cls}")
    w = _weights(weights, n_src, n_cls, "weights", (n_src, n_cls))
    bw = _weights(background_weights, n_src, n_cls, "background_weights", (n_src,))
    if n_cls == 0:
        return []
    runs, bounds = stack_runs([r for m in masks for r in m])
    return plurality(runs, bounds, w, bw)
