"""Clean a whole prediction file: stream images through the cleaner, write atomically.

Classes without rules are copied verbatim; cleaned classes are re-encoded canonically.
With several workers, forked processes inherit the parsed file and the cleaner, so only
image indices and output text cross process boundaries (as in ``ensemble.job``).
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np

from core.codec import format_rle
from core.errors import InputError
from core.predictions import Predictions, PredictionWriter
from postprocess.clean import Cleaner


def _image(preds: Predictions, cleaner: Cleaner, i: int) -> list[str]:
    out = []
    for c in range(len(preds.classes)):
        if cleaner.active(c):
            out.append(format_rle(cleaner(c, preds.runs(i, c))))
        else:
            out.append(preds.rle(i, c))
    return out


_JOB: tuple[Predictions, Cleaner] | None = None  # set in the parent before forking workers


def _work(i: int) -> list[str]:
    return _image(*_JOB, i)


def clean_predictions(preds: Predictions, cleaner: Cleaner, output: str, workers: int = 1,
                      progress=None) -> int:
    """Clean every mask of ``preds`` with ``cleaner`` and write ``output`` (images in input
    order, classes in class order); returns rows written. Every (image, class) row must
    be present (``InputError`` names the first that is not)."""
    global _JOB
    absent = np.argwhere(preds.rows < 0)
    if len(absent):
        i, c = (int(x) for x in absent[0])
        raise InputError(f"{preds.path}: image {preds.images[i]}, class {preds.classes[c]}: missing row "
                         f"({len(absent)} missing in all; 'check' lists them)")
    images = preds.images
    with PredictionWriter(output, preds.classes) as writer:
        if workers > 1 and len(images) > 1:
            _JOB = (preds, cleaner)
            try:
                with mp.get_context("fork").Pool(workers) as pool:
                    for i, rles in enumerate(pool.imap(_work, range(len(images)), chunksize=4)):
                        writer.write_image(images[i], rles)
                        if progress is not None:
                            progress.update(1)
            finally:
                _JOB = None
        else:
            for i, name in enumerate(images):
                writer.write_image(name, _image(preds, cleaner, i))
                if progress is not None:
                    progress.update(1)
    return writer.rows_written
