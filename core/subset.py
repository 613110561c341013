"""Parts of a ``Predictions``: some of its images, or some of its classes, as a compact
``Predictions`` of their own (the RLE text of the rows kept, nothing else).

A cluster chunk (``cluster/``) scores or ships the rows of its images only: taken here, a
chunk of 64 images of a 10,000-image file pickles to a few hundred kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.predictions import Predictions


def _compact(p: Predictions, images: list[str], rows: np.ndarray, classes: tuple[str, ...]) -> Predictions:
    flat = rows.ravel()
    kept = flat[flat >= 0]
    starts, stops = p.offsets[kept], p.offsets[kept + 1]
    offsets = np.zeros(len(kept) + 1, np.int64)
    np.cumsum(stops - starts, out=offsets[1:])
    text = np.concatenate([p.text[a:b] for a, b in zip(starts, stops)]) if len(kept) else np.zeros(0, np.uint8)
    new = np.full(flat.shape, -1, np.int64)
    new[flat >= 0] = np.arange(len(kept))
    return Predictions(
        path=p.path,
        classes=classes,
        height=p.height,
        width=p.width,
        images=images,
        rows=new.reshape(rows.shape),
        text=text,
        offsets=offsets,
        lines=p.lines[kept],
        areas=p.areas[kept],
        run_counts=p.run_counts[kept],
        line_spans=None if p.line_spans is None else p.line_spans[kept],
    )


def take_images(p: Predictions, names: Sequence[str]) -> Predictions:
    """The rows of the images ``names`` (in that order; names ``p`` lacks are left out).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"image_name": ["a.png", "b.png"], "class": ["x", "x"], "rle": ["1 1", "2 2"]})
    >>> part = take_images(Predictions.from_frame(df, height=2, width=2), ["b.png"])
    >>> part.images, part.rle("b.png", "x")
    (['b.png'], '2 2')
    """
    idx = [i for i in (p.image_index(n) for n in names) if i >= 0]
    return _compact(p, [p.images[i] for i in idx], p.rows[idx], p.classes)


def take_classes(p: Predictions, classes: Sequence[int]) -> Predictions:
    """All images, the classes at positions ``classes`` only (in that order)."""
    idx = list(classes)
    return _compact(p, list(p.images), p.rows[:, idx], tuple(p.classes[c] for c in idx))
