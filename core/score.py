"""Dice and IoU on runs: per (image, class), per class, overall (ARCHITECTURE.md)."""

from __future__ import annotations

import numpy as np

from core._run_kernels import intersections_kernel
from core.errors import DataError, where
from core.predictions import Predictions
from core.runs import dice_of_areas, iou_of_areas
from core.signals import interruptible


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
        raise DataError(f"{where(gt.path, None, gt.images[i], gt.classes[c])}: missing row in ground truth")
    if missing != "empty" and (rows < 0).any():
        i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        n = int((rows < 0).sum())
        raise DataError(
            f"{where(pred.path, None, gt.images[i], gt.classes[c])}: missing row "
            f"({n:,} missing in all; missing='empty' scores them as empty masks)"
        )
    return rows


def dice_matrix(pred: Predictions, gt: Predictions, missing: str = "error") -> np.ndarray:
    """(n_gt_images, n_classes) Dice of ``pred`` against ``gt``, on the ground truth's
    images and classes (both read with the same class list)."""
    return score_matrices(pred, gt, missing)[0]


def score_matrices(pred: Predictions, gt: Predictions, missing: str = "error") -> tuple[np.ndarray, np.ndarray]:
    """``(dice, iou)``, each (n_gt_images, n_classes), of ``pred`` against ``gt`` as
    ``dice_matrix``: both from the same intersection areas (IoU with Dice's ε, so two empty
    masks score 1 in both)."""
    rows = aligned_rows(pred, gt, missing)
    inter = interruptible(
        intersections_kernel,
        gt.text,
        gt.offsets,
        gt.rows,
        gt.run_counts,
        pred.text,
        pred.offsets,
        rows,
        pred.run_counts,
        gt.npix,
    )
    pa = np.where(rows >= 0, pred.areas[np.maximum(rows, 0)], 0) if len(pred.areas) else np.zeros(rows.shape)
    ga = gt.areas[gt.rows]
    return dice_of_areas(inter, pa, ga), iou_of_areas(inter, pa, ga)
