"""Overlaps between the classes of one image, on runs: counted, refused or resolved.

Where classes are mutually exclusive, a result put together class by class (one source's
mask per class, or parts merged from several files) may give a pixel two classes. These
functions find such pixels with one sweep over the run boundaries of the image's masks
(``core._run_kernels.overlap_kernel``), never with dense masks, and either refuse them or
give each to the class listed first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core._run_kernels import exclusive_vote_kernel, overlap_kernel
from core.errors import DataError, plural, shown
from core.sweep import stack_runs

POLICIES = ("error", "first")
"""What ``resolve_overlaps`` does with a pixel of several classes."""


class OverlapError(DataError):
    """Classes meant to be exclusive overlap; ``first``, ``second`` (class indices) and
    ``pixels`` name the first overlapping pair in class order."""

    def __init__(self, message: str, first: int = -1, second: int = -1, pixels: int = 0):
        super().__init__(message)
        self.first, self.second, self.pixels = first, second, pixels

    def __reduce__(self):
        return (self.__class__, (str(self), self.first, self.second, self.pixels))


def plurality(runs: np.ndarray, bounds: np.ndarray, weights: np.ndarray, background: np.ndarray) -> list[np.ndarray]:
    """The plurality over labels of stacked masks (``core._run_kernels.exclusive_vote_kernel``;
    ``ensemble.exclusive.exclusive_vote`` is the checked front door): one canonical run array
    per class, the columns of the (S, C) float64 ``weights``.

    >>> import numpy as np
    >>> from core.sweep import stack_runs
    >>> runs, bounds = stack_runs([np.array([[0, 5]]), np.array([[3, 8]])])  # one source, two classes
    >>> [r.tolist() for r in plurality(runs, bounds, np.ones((1, 2)), np.zeros(1))]
    [[[0, 5]], [[5, 8]]]
    """
    n_cls = weights.shape[1]
    out, label, k = exclusive_vote_kernel(runs, bounds, np.ascontiguousarray(weights, np.float64), background)
    label = label[:k]
    order = np.argsort(label, kind="stable")
    cuts = np.searchsorted(label[order], np.arange(n_cls + 1))
    grouped = out[:k][order]
    return [grouped[cuts[c] : cuts[c + 1]] for c in range(n_cls)]


def overlap_counts(masks: Sequence[np.ndarray]) -> tuple[int, np.ndarray]:
    """``(total, pairs)``: the pixels covered by more than one of ``masks`` (canonical runs,
    one per class), and ``pairs`` (C, C) int64, symmetric with a zero diagonal, the pixels
    each two classes share (a pixel of three classes counts once in ``total``, in three pairs).

    >>> import numpy as np
    >>> total, pairs = overlap_counts([np.array([[0, 5]]), np.array([[3, 8]]), np.array([[4, 6]])])
    >>> total, pairs.tolist()
    (3, [[0, 2, 1], [2, 0, 2], [1, 2, 0]])
    """
    runs, bounds = stack_runs(masks)
    total, pairs = overlap_kernel(runs, bounds)
    return int(total), pairs


def overlaps(masks: Sequence[np.ndarray]) -> int:
    """The number of pixels covered by more than one of ``masks`` (canonical runs, one per
    class of one image): 0 when the classes are exclusive.

    >>> import numpy as np
    >>> overlaps([np.array([[0, 5]]), np.array([[3, 8]]), np.array([[4, 6]])])
    3
    >>> overlaps([np.array([[0, 5]]), np.array([[5, 8]])])
    0
    """
    return overlap_counts(masks)[0]


def resolve_overlaps(
    masks: Sequence[np.ndarray],
    policy: str = "error",
    classes: Sequence[str] | None = None,
    image: str | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Make one image's class masks exclusive, or refuse to.

    Parameters
    ----------
    masks : sequence of (n, 2) int64 arrays
        Canonical runs, one per class, in class order.
    policy : {"error", "first"}
        ``"error"``: any overlap raises ``OverlapError``; ``"first"``: the class listed first
        keeps a contested pixel, the others lose it.
    classes : sequence of str, optional
        The class names, for the error message (default ``#1``, ``#2``, …).
    image : str, optional
        The image, for the error message.

    Returns
    -------
    (list of (m, 2) int64 arrays, (C, C) int64 array)
        The exclusive masks (the inputs themselves when nothing overlaps) and the pixels each
        two classes shared (``overlap_counts``).

    Raises
    ------
    OverlapError
        (a ``DataError``, so a ``ValueError``) with ``policy="error"`` when two classes
        overlap: the message names the first such pair in class order and its pixel count.
    ValueError
        An unknown policy, or class names that do not match the masks.

    Examples
    --------
    >>> import numpy as np
    >>> masks = [np.array([[0, 5]]), np.array([[3, 8]])]
    >>> out, pairs = resolve_overlaps(masks, "first")
    >>> [r.tolist() for r in out], int(pairs[0, 1])
    ([[[0, 5]], [[5, 8]]], 2)
    >>> resolve_overlaps(masks, classes=["bone", "tendon"], image="a.png")
    Traceback (most recent call last):
    ...
    core.exclusivity.OverlapError: image a.png: classes bone and tendon overlap on 2 pixels (exclusive classes)
    """
    if policy not in POLICIES:
        raise ValueError(f"policy: {policy!r} is not one of {', '.join(POLICIES)}")
    if classes is not None and len(classes) != len(masks):
        raise ValueError(f"classes: {len(classes)} names for {len(masks)} masks")
    runs, bounds = stack_runs(masks)
    total, pairs = overlap_kernel(runs, bounds)
    if total == 0:
        return [np.asarray(m, np.int64).reshape(-1, 2) for m in masks], pairs
    if policy == "error":
        i, j = (int(x[0]) for x in np.nonzero(np.triu(pairs)))
        names = [f"#{k + 1}" for k in range(len(masks))] if classes is None else [shown(c) for c in classes]
        others = int((np.triu(pairs) > 0).sum()) - 1
        more = f", and {plural(others, 'other pair')}" if others else ""
        head = f"image {shown(image)}: " if image is not None else ""
        raise OverlapError(
            f"{head}classes {names[i]} and {names[j]} overlap on {plural(int(pairs[i, j]), 'pixel')}{more} "
            "(exclusive classes)",
            i,
            j,
            int(pairs[i, j]),
        )
    # One source, every class weighted 1, no background vote: the first covering class wins.
    return plurality(runs, bounds, np.ones((1, len(masks))), np.zeros(1)), pairs
