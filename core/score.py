"""Dice on runs: per (image, class), per class, overall (ARCHITECTURE.md)."""

from __future__ import annotations

import numpy as np

from core.errors import InputError
from core.predictions import Predictions
from core.runs import intersection_area_kernel

EPS = 1e-4


def dice_matrix(pred: Predictions, gt: Predictions, missing: str = "error") -> np.ndarray:
    """(n_gt_images, n_classes) Dice of ``pred`` against ``gt``, on the ground truth's
    images. A prediction row absent from ``pred`` is an error unless ``missing == "empty"``."""
    out = np.empty(gt.rows.shape)
    for i, name in enumerate(gt.images):
        j = pred.image_index(name)
        for c in range(len(gt.classes)):
            r = pred.row(j, c) if j >= 0 else -1
            g = gt.row(i, c)
            if g < 0:
                raise InputError(f"{gt.path}: image {name}, class {gt.classes[c]}: missing row in ground truth")
            if r < 0:
                if missing != "empty":
                    raise InputError(f"{pred.path}: image {name}, class {gt.classes[c]}: missing row "
                                     "(--missing empty scores it as an empty mask)")
                inter, pa = 0, 0
            else:
                pa = int(pred.areas[r])
                inter = int(intersection_area_kernel(pred.runs(j, c), gt.runs(i, c))) if pa and gt.areas[g] else 0
            out[i, c] = (2 * inter + EPS) / (pa + int(gt.areas[g]) + EPS)
    return out
