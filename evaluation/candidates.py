"""Candidates of ``tune`` beyond the weighted votes, scored exactly: STAPLE per class from the
coverage histograms, and the area gate (``min_area``) of a class's final masks.

STAPLE: the coverage histograms already count, per image, the pixels of every vote pattern,
so the pooled histogram STAPLE runs on is their sum over the images (the all-zero pattern:
every pixel no source marks); its fused mask is a union of patterns, so its Dice on every
image follows from the same histograms, as a vote's does.

Area gate: dropping a mask changes only that mask's Dice (to that of an empty mask), and a
gate ``min_area: T`` drops exactly the non-empty masks of area below ``T``; every distinct
gate is scored at once from the sorted areas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.runs import dice_of_areas

STAPLE_REGIONS = ("all", "disagreement")
"""The STAPLE candidates, simplest first (``quality.staple``'s regions; pooled)."""


def pooled_patterns(cov, c: int) -> np.ndarray:
    """Class ``c``'s pixel count per vote pattern over every image (``2**n``), as STAPLE counts
    them: pattern 0 holds every pixel no source marks."""
    marked = cov.length[:, c, 1:].sum(0)
    hist = np.empty(marked.shape[0] + 1, np.int64)
    hist[1:] = marked
    hist[0] = int(cov.npix.sum()) - int(marked.sum())
    return hist


def pattern_dice(accept: np.ndarray, cov, c: int) -> float:
    """Mean Dice over the images of class ``c`` of the mask made of the patterns ``accept``
    holds (``2**n`` bools), pattern 0 included (every pixel no source marks)."""
    k = accept[1:].astype(np.float64)
    inter = cov.hit[:, c, 1:] @ k  # exact: integer-valued sums far below 2**53
    pred = cov.length[:, c, 1:] @ k
    if accept[0]:
        inter = inter + (cov.gt_area[:, c] - cov.hit[:, c, 1:].sum(1))
        pred = pred + (cov.npix - cov.length[:, c, 1:].sum(1))  # each image's own pixels
    return float(dice_of_areas(inter, pred, cov.gt_area[:, c]).mean())


def staple_candidates(cov, c: int, regions: Sequence[str] = STAPLE_REGIONS) -> list[tuple[str, np.ndarray, float]]:
    """``(region, accepted patterns, mean Dice)`` of pooled STAPLE on class ``c`` for each region,
    with ``staple``'s default parameters (what a vote's ``staple:`` class applies)."""
    from quality.tables import class_estimate

    hist = pooled_patterns(cov, c)
    n = len(cov.names)
    out = []
    for region in regions:
        accept = class_estimate(hist, n, region).accept
        out.append((region, accept, pattern_dice(accept, cov, c)))
    return out


def best_gate(areas: np.ndarray, keep: np.ndarray, drop: np.ndarray) -> tuple[int, float] | None:
    """The area gate with the highest mean Dice: ``areas`` of the masks (one per image), their
    Dice as they are (``keep``) and emptied (``drop``). Returns ``(min_area, mean)`` or ``None``
    when no gate drops a mask. Gates between two consecutive distinct areas ``a < b`` give the
    same masks on these images; the one written is the integer midpoint (``a < T <= b``), and
    the gate that drops every mask is ``largest area + 1``. Ties go to the smaller gate."""
    distinct = np.unique(areas[areas > 0])
    if not len(distinct):
        return None
    gain = np.where(areas > 0, drop - keep, 0.0)
    per_area = np.array([gain[areas == a].sum() for a in distinct])
    means = (keep.sum() + np.cumsum(per_area)) / len(areas)  # dropping every area <= distinct[j]
    j = int(np.argmax(means))
    upper = distinct[j + 1] if j + 1 < len(distinct) else distinct[j] + 1
    return int((distinct[j] + upper + 1) // 2), float(means[j])
