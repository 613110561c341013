"""Dice on runs: per (image, class), per class, overall (ARCHITECTURE.md)."""

from __future__ import annotations

import numba as nb
import numpy as np

from core.codec import parse_kernel
from core.errors import DataError
from core.predictions import Predictions
from core.runs import dice_of_areas, intersection_area_kernel


@nb.njit(cache=True, nogil=True)
def intersections_kernel(a_text, a_off, a_rows, a_counts, b_text, b_off, b_rows, b_counts, npix):
    """|A ∩ B| for every cell of two aligned row tables (-1 rows count as empty)."""
    n_img, n_cls = a_rows.shape
    out = np.zeros((n_img, n_cls), np.int64)
    widest = 1
    for r in range(a_counts.shape[0]):
        widest = max(widest, a_counts[r] + 1)
    for r in range(b_counts.shape[0]):
        widest = max(widest, b_counts[r] + 1)
    ra = np.empty((widest, 2), np.int64)
    rb = np.empty((widest, 2), np.int64)
    for i in range(n_img):
        for c in range(n_cls):
            x = a_rows[i, c]
            y = b_rows[i, c]
            if x < 0 or y < 0:
                continue
            na, _, _ = parse_kernel(a_text, a_off[x], a_off[x + 1], npix, ra)
            nb_, _, _ = parse_kernel(b_text, b_off[y], b_off[y + 1], npix, rb)
            if na and nb_:
                out[i, c] = intersection_area_kernel(ra[:na], rb[:nb_])
    return out


def aligned_rows(pred: Predictions, gt: Predictions, missing: str = "error") -> np.ndarray:
    """``pred``'s row table re-indexed on the ground truth's images; absent rows are an
    error unless ``missing == "empty"``."""
    if not gt.images:
        raise DataError(f"{gt.path}: no rows: the ground truth holds no images")
    idx = np.array([pred.image_index(name) for name in gt.images], np.int64)
    rows = np.full((len(idx), len(gt.classes)), -1, np.int64)
    rows[idx >= 0] = pred.rows[idx[idx >= 0]]
    if (gt.rows < 0).any():
        i, c = (int(x[0]) for x in np.nonzero(gt.rows < 0))
        raise DataError(f"{gt.path}: image {gt.images[i]}, class {gt.classes[c]}: missing row in ground truth")
    if missing != "empty" and (rows < 0).any():
        i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        n = int((rows < 0).sum())
        raise DataError(f"{pred.path}: image {gt.images[i]}, class {gt.classes[c]}: missing row "
                         f"({n:,} missing in all; missing='empty' scores them as empty masks)")
    return rows


def dice_matrix(pred: Predictions, gt: Predictions, missing: str = "error") -> np.ndarray:
    """(n_gt_images, n_classes) Dice of ``pred`` against ``gt``, on the ground truth's
    images and classes (both read with the same class list)."""
    rows = aligned_rows(pred, gt, missing)
    inter = intersections_kernel(gt.text, gt.offsets, gt.rows, gt.run_counts,
                                 pred.text, pred.offsets, rows, pred.run_counts, gt.npix)
    pa = np.where(rows >= 0, pred.areas[np.maximum(rows, 0)], 0) if len(pred.areas) else np.zeros(rows.shape)
    ga = gt.areas[gt.rows]
    return dice_of_areas(inter, pa, ga)
