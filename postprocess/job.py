"""Clean a whole prediction file: stream images through the cleaner, write atomically.

Classes without rules are copied verbatim; cleaned classes are re-encoded canonically.
With several workers, forked processes inherit the parsed file and the cleaner, so only
image indices and output text cross process boundaries (as in ``ensemble.job``).
"""

from __future__ import annotations

import functools

import numpy as np

from core.codec import format_rle
from core.errors import DataError
from core.predictions import Predictions
from core.stream import write_images
from postprocess.clean import Cleaner


def _image(preds: Predictions, cleaner: Cleaner, i: int) -> list[str]:
    out = []
    for c in range(len(preds.classes)):
        if cleaner.active(c):
            out.append(format_rle(cleaner(c, preds.runs(i, c))))
        else:
            out.append(preds.rle(i, c))
    return out


def clean_predictions(preds: Predictions, cleaner: Cleaner, output: str, workers: int = 1,
                      progress=None) -> int:
    """Clean every mask of ``preds`` with ``cleaner`` and write ``output`` (images in input
    order, classes in class order); returns rows written. Every (image, class) row must
    be present (``DataError``, exit 1 like every missing row, names the first that is not)."""
    absent = np.argwhere(preds.rows < 0)
    if len(absent):
        i, c = (int(x) for x in absent[0])
        raise DataError(f"{preds.path}: image {preds.images[i]}, class {preds.classes[c]}: missing row "
                         f"({len(absent):,} missing in all; 'check' lists them)")
    return write_images(output, preds.classes, preds.images, functools.partial(_image, preds, cleaner),
                        workers, progress)
