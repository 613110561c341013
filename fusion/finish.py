"""The rows ``select`` and ``merge`` pick, and their last steps: each (image, class) is one
source's row as written; cleaning (each mask on its image's grid) and, for mutually exclusive
classes, keeping them exclusive (an overlap is an error, or the class listed first keeps the
pixel) — never a silent overwrite."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from core.blocks import write_copied
from core.codec import format_rle, parse_rle
from core.errors import UsageError
from core.exclusivity import resolve_overlaps
from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import Predictions, PredictionWriter
from postprocess.cleaner import Cleaner

OVERLAPS = ("error", "first")


def finish_image(
    rles: list[str],
    clean: Cleaner | None,
    grid: tuple[int, int],
    overlaps: str | None,
    classes: Sequence[str],
    image: str,
    where: str = "",
) -> list[str]:
    """An image's RLE strings (class order) cleaned and, with ``overlaps``, made exclusive; a
    mask left as it came keeps its text as written. ``where`` prefixes an overlap's message."""
    if clean is not None:
        rles = [clean.text(c, r, grid) for c, r in enumerate(rles)]
    if overlaps is None:
        return rles
    h, w = grid
    runs = [parse_rle(r, h, w) for r in rles]
    try:
        resolved, _ = resolve_overlaps(runs, overlaps, classes=classes, image=image)
    except ValueError as e:
        if not where:
            raise
        raise type(e)(f"{where}: {e}") from None
    return [r if new is old else format_rle(new) for r, old, new in zip(rles, runs, resolved, strict=True)]


def overlap_policy(frame, overlaps: str | None, cfg) -> str | None:
    """How exclusive classes stay exclusive (``None`` for overlapping classes)."""
    policy = overlaps or getattr(cfg, "overlaps", None) or "error"
    if policy not in OVERLAPS:
        raise UsageError(f"overlaps: {policy!r}: expected error or first", param="overlaps")
    return policy if frame.exclusive else None


def picked_rles(sources: Sequence[Predictions], which: Sequence[int], rows: Sequence[int]) -> list[str]:
    """One image's RLE strings: class ``c``'s is row ``rows[c]`` of source ``which[c]`` as
    written (surrounding whitespace dropped), empty where ``which[c]`` is -1."""
    out = []
    for s, r in zip(which, rows, strict=True):
        p = sources[s] if s >= 0 else None
        out.append(p.text[p.offsets[r] : p.offsets[r + 1]].tobytes().decode("ascii").strip() if p is not None else "")
    return out


def write_picked(
    output: str | os.PathLike,
    sources: Sequence[Predictions],
    which: np.ndarray,
    rows: np.ndarray,
    images: Sequence[str],
    classes: Sequence[str],
    grid: Callable[[int], tuple[int, int]],
    progress=None,
    clean: Cleaner | None = None,
    layout: Layout = DEFAULT_LAYOUT,
    overlaps: str | None = None,
    writer=None,
) -> int:
    """Write every image's picked rows (``picked_rles`` of ``which[i]``, ``rows[i]``) in
    canonical order, atomically, laid out as ``layout`` (or hand them to ``writer``, one of
    ``core.predictions.writer_for``'s); returns rows written. Rows left as written are copied
    by blocks (``core.blocks.write_copied``); with ``clean`` or ``overlaps`` each image is
    finished by ``finish_image`` on its ``grid(i)``."""
    writer = writer if writer is not None else PredictionWriter(output, classes, layout)
    if clean is None and overlaps is None and writer.blocks:
        return write_copied(output, sources, which, rows, images, classes, progress, layout, writer)
    bufs = [memoryview(p.text) for p in sources]  # slices of a view copy only the row
    offs = [p.offsets.tolist() for p in sources]
    with writer as w:
        for i, name in enumerate(images):
            rles = [
                str(bufs[s][offs[s][r] : offs[s][r + 1]], "ascii").strip() if s >= 0 else ""
                for s, r in zip(which[i].tolist(), rows[i].tolist(), strict=True)
            ]
            w.write_image(name, finish_image(rles, clean, grid(i), overlaps, classes, name))
            if progress is not None:
                progress.update(1)
    return w.rows_written
