"""Streaming vote over whole prediction files: align sources on (image, class), vote each
image's masks on runs, write the result in canonical order.

Memory is the sources' RLE text plus one image's runs per worker. Workers are forked
processes that inherit the parsed sources, so nothing but image indices and output text
crosses process boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core._kernels import vote_kernel
from core.codec import format_rle
from core.errors import DataError
from core.predictions import Predictions, image_positions
from core.stream import write_images
from core.sweep import stack_runs


@dataclass
class Aligned:
    """Sources aligned on the first source's images: ``rows[s, i, c]`` is source ``s``'s
    row for image ``i`` and class ``c`` (-1 when absent)."""

    sources: list[Predictions]
    images: list[str]
    rows: np.ndarray
    n_missing: int


def align(sources: Sequence[Predictions], missing: str = "error") -> Aligned:
    """Join sources on (image, class). Differing image sets are an error; absent rows are an
    error unless ``missing == "empty"`` (then they vote 0 and are counted)."""
    first = sources[0]
    images = first.images
    rows = np.empty((len(sources), len(images), len(first.classes)), np.int64)
    for s, src in enumerate(sources):
        rows[s] = src.rows[image_positions(src, images, first.path)]
    n_missing = int((rows < 0).sum())
    if n_missing and missing != "empty":
        s, i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        raise DataError(
            f"{sources[s].path}: image {images[i]}, class {first.classes[c]}: missing row "
            f"({n_missing:,} missing in all; missing='empty' counts them as empty votes)"
        )
    return Aligned(list(sources), images, rows, n_missing)


@dataclass
class VotePlan:
    """Everything needed to vote one image: weights (sources × classes), thresholds,
    ``min_votes`` (0 = use thresholds) and an optional per-mask cleaner."""

    aligned: Aligned
    weights: np.ndarray
    thresholds: np.ndarray
    min_votes: int = 0
    clean: Callable[[int, np.ndarray], np.ndarray] | None = None

    def image(self, i: int) -> list[str]:
        """The voted RLE strings of image ``i``, in class order."""
        a = self.aligned
        out = []
        for c in range(self.weights.shape[1]):
            w = self.weights[:, c]
            used = np.flatnonzero(w > 0)
            runs, bounds = stack_runs([a.sources[s].row_runs(int(a.rows[s, i, c])) for s in used])
            voted = vote_kernel(runs, bounds, w[used], float(self.thresholds[c]), self.min_votes)
            if self.clean is not None:
                voted = self.clean(c, voted)
            out.append(format_rle(voted))
        return out


def run_plan(plan: VotePlan, output: str, classes: Sequence[str], workers: int = 1,
             progress=None) -> int:
    """Vote every image and write the CSV atomically; returns rows written."""
    return write_images(output, classes, plan.aligned.images, plan.image, workers, progress)
