"""Clean a whole prediction set with a ``Cleaner``: ``clean_all`` streams its images through
the cleaner (blocks of images, one kernel call per cleaned class) and writes them atomically.

Classes without rules are copied verbatim; cleaned classes are re-encoded canonically.
With several workers, forked processes inherit the parsed file and the cleaner, so only
image indices and output text cross process boundaries (as in ``ensemble.vote_plan``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from core._block_kernels import parse_block_kernel
from core.blocks import BLOCK, NO_RUNS, Fields, gather, spans, write_rows
from core.codec import format_rle
from core.errors import DataError
from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import Predictions, predictions_from_rles
from core.stream import collect_images, current_selection, select_span, write_blocks, write_images
from core.window import chunks
from postprocess.cleaner import Cleaner

if TYPE_CHECKING:  # settings.postprocess imports this package
    pass


CLEAN_BLOCK = 4 * BLOCK
"""Images per cleaning block: each block makes a kernel call and some Python per cleaned class,
so blocks larger than the votes' keep that Python (which holds the GIL) small beside the
kernels: 2.84 s → 2.44 s for ``postprocess --keep-largest 1 --fill-holes`` on 1,500 images."""


def _image(preds: Predictions, cleaner: Cleaner, i: int) -> list[str]:
    out = []
    for c in range(len(preds.classes)):
        if cleaner.active(c):
            out.append(format_rle(cleaner(c, preds.runs(i, c), preds.grid(i))))
        else:
            out.append(preds.rle(i, c))
    return out


def _exclusive_image(preds: Predictions, cleaner: Cleaner, i: int) -> list[str]:
    """Image ``i`` of mutually exclusive classes, cleaned: classes that overlap as given are an
    error naming the image and the classes; a pixel two cleaned classes claim (closing and
    filling holes add pixels) goes to the class listed first, as the votes' inline cleaning
    does. A mask left as it came keeps its text as written."""
    from core.exclusivity import OverlapError, resolve_overlaps

    name, grid = preds.images[i], preds.grid(i)
    given = [preds.runs(i, c) for c in range(len(preds.classes))]
    try:
        resolve_overlaps(given, "error", preds.classes, name)
    except OverlapError as e:
        raise OverlapError(f"{preds.path}: {e}", e.first, e.second, e.pixels) from None
    cleaned = [cleaner(c, r, grid) if cleaner.active(c) else r for c, r in enumerate(given)]
    resolved, _ = resolve_overlaps(cleaned, "first")
    return [
        preds.rle(i, c) if new is old else format_rle(new)
        for c, (old, new) in enumerate(zip(given, resolved, strict=True))
    ]


def clean_all(
    preds: Predictions,
    cleaner: Cleaner,
    output: str | None,
    workers: int = 1,
    progress=None,
    layout: Layout = DEFAULT_LAYOUT,
    writer=None,
    exclusive: bool = False,
) -> int | Predictions:
    """Clean every mask of ``preds`` with ``cleaner`` (each on its image's grid) and write
    ``output`` laid out as ``layout`` (images in input order, classes in class order; or hand
    them to ``writer``, one of ``core.predictions.writer_for``'s); returns rows written (without
    ``output``: the cleaned ``Predictions``). Every (image, class) row must be present
    (``DataError``, exit 1 like every missing row, names the first that is not). ``exclusive``:
    the classes are mutually exclusive and stay so (``_exclusive_image``)."""
    absent = np.argwhere(preds.rows < 0)
    if len(absent):
        i, c = (int(x) for x in absent[0])
        raise DataError(
            f"{preds.path}: image {preds.images[i]}, class {preds.classes[c]}: missing row "
            f"({len(absent):,} missing in all; 'check' lists them)"
        )
    work = functools.partial(_exclusive_image if exclusive else _image, preds, cleaner)
    classes = Fields.classes(preds.classes, layout)
    if not exclusive:  # a cluster chunk (cluster/): its rows by the block kernel, then stops
        select_span(preds.images, functools.partial(_block, preds, cleaner, classes), progress)
    if output is None or current_selection() is not None:  # a cluster chunk: never a file (cluster/)
        rles = collect_images(preds.images, work, progress)
        return predictions_from_rles(
            preds.path, preds.classes, preds.images, rles, preds.height, preds.width, preds.sizes, preds.order
        )
    if exclusive or (writer is not None and not writer.blocks):
        return write_images(output, preds.classes, preds.images, work, workers, progress, layout, writer)
    blocks = chunks(len(preds.images), CLEAN_BLOCK)
    return write_blocks(
        output,
        preds.classes,
        blocks,
        lambda b: _block(preds, cleaner, classes, *blocks[b]),
        workers,
        progress,
        layout,
        writer,
    )


def _block(preds: Predictions, cleaner: Cleaner, classes: Fields, lo: int, hi: int) -> bytes:
    """The CSV rows of images ``lo:hi``: each cleaned class's masks cleaned by one kernel call
    (``Cleaner.many``), the other classes copied as written."""
    n, n_classes = hi - lo, len(preds.classes)
    rows = preds.rows[lo:hi].T.reshape(-1)  # class-major: class c's masks are k = c * n … (c + 1) * n - 1
    text, offsets, counts = gather([preds], np.zeros(len(rows), np.int64), rows)
    cleaned_k = np.repeat([cleaner.active(c) for c in range(n_classes)], n)
    parse_span = spans(offsets)
    parse_span[~cleaned_k, 1] = parse_span[~cleaned_k, 0]  # copied as written: nothing to parse
    runs, bounds = parse_block_kernel(text, parse_span, np.where(cleaned_k, counts, 0), preds.npix)
    by_image = (np.arange(n_classes)[:, None] + n_classes * np.arange(n)[None, :]).reshape(-1)  # k -> i * C + c
    text_span = np.empty((len(rows), 2), np.int64)
    text_span[by_image] = spans(offsets)
    run_span = np.zeros((len(rows), 2), np.int64)
    formatted = np.zeros(len(rows), bool)
    cleaned, base = [], 0
    grids = None
    if not preds.uniform:  # each image on its own grid (rows, columns), still one call per class
        grids = np.ascontiguousarray(preds.sizes[lo:hi], np.int64)
        if preds.order == "column":
            grids = np.ascontiguousarray(grids[:, ::-1])
    for c in range(n_classes):
        if not cleaner.active(c):
            continue
        b = bounds[c * n : (c + 1) * n + 1]
        if grids is None:
            out, out_bounds = cleaner.many(c, runs[b[0] : b[-1]], b - b[0], preds.grid(lo))
        else:
            out, out_bounds = cleaner.many(c, runs[b[0] : b[-1]], b - b[0], grids=grids)
        at = by_image[c * n : (c + 1) * n]
        run_span[at] = spans(out_bounds + base)
        formatted[at] = True
        cleaned.append(out)
        base += len(out)
    runs_out = np.concatenate(cleaned) if cleaned else NO_RUNS
    return write_rows(text, text_span, runs_out, run_span, formatted, Fields.of(preds.images[lo:hi]), classes)
