"""Stream images through a per-image function into an atomically written prediction CSV.

With several workers, forked processes inherit everything already parsed (the function and
what it closes over), so only image indices and output text cross process boundaries.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence

from core.predictions import PredictionWriter

ImageWork = Callable[[int], list[str]]
_WORK: ImageWork | None = None  # set in the parent just before forking


def _call(i: int) -> list[str]:
    return _WORK(i)


def write_images(output: str | os.PathLike, classes: Sequence[str], images: Sequence[str], work: ImageWork,
                 workers: int = 1, progress=None) -> int:
    """Write ``work(i)`` (RLE strings in class order) for every image ``i``, in order;
    returns rows written. Nothing is left at ``output`` if anything fails."""
    global _WORK
    with PredictionWriter(output, classes) as writer:
        if workers > 1 and len(images) > 1:
            _WORK = work
            try:
                with mp.get_context("fork").Pool(workers) as pool:
                    for i, rles in enumerate(pool.imap(_call, range(len(images)), chunksize=4)):
                        writer.write_image(images[i], rles)
                        if progress is not None:
                            progress.update(1)
            finally:
                _WORK = None
        else:
            for i, name in enumerate(images):
                writer.write_image(name, work(i))
                if progress is not None:
                    progress.update(1)
    return writer.rows_written
