"""Clean a whole prediction set: ``clean_predictions`` (the ``postprocess`` job) and
``clean_all`` (stream images through a cleaner, write atomically).

Classes without rules are copied verbatim; cleaned classes are re-encoded canonically.
With several workers, forked processes inherit the parsed file and the cleaner, so only
image indices and output text cross process boundaries (as in ``ensemble.job``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from core._kernels import parse_block_kernel
from core.blocks import BLOCK, NO_RUNS, Fields, gather, spans, write_rows
from core.codec import format_rle
from core.errors import DataError, UsageError, plural
from core.predictions import Predictions, predictions_from_rles
from core.sources import Notes, Progress, Source, bar, frame_of, is_path, load
from core.stream import blocks_of, collect_images, current_selection, write_blocks
from postprocess.clean import Cleaner

if TYPE_CHECKING:  # settings.postprocess imports this package
    from settings.postprocess import PostprocessFile


def _image(preds: Predictions, cleaner: Cleaner, i: int) -> list[str]:
    out = []
    for c in range(len(preds.classes)):
        if cleaner.active(c):
            out.append(format_rle(cleaner(c, preds.runs(i, c))))
        else:
            out.append(preds.rle(i, c))
    return out


def clean_all(
    preds: Predictions, cleaner: Cleaner, output: str | None, workers: int = 1, progress=None
) -> int | Predictions:
    """Clean every mask of ``preds`` with ``cleaner`` and write ``output`` (images in input
    order, classes in class order); returns rows written (without ``output``: the cleaned
    ``Predictions``). Every (image, class) row must
    be present (``DataError``, exit 1 like every missing row, names the first that is not)."""
    absent = np.argwhere(preds.rows < 0)
    if len(absent):
        i, c = (int(x) for x in absent[0])
        raise DataError(
            f"{preds.path}: image {preds.images[i]}, class {preds.classes[c]}: missing row "
            f"({len(absent):,} missing in all; 'check' lists them)"
        )
    if output is None or current_selection() is not None:  # a cluster chunk: never a file (cluster/)
        rles = collect_images(preds.images, functools.partial(_image, preds, cleaner), progress)
        return predictions_from_rles(preds.path, preds.classes, preds.images, rles, preds.height, preds.width)
    blocks = blocks_of(len(preds.images), BLOCK)
    classes = Fields.of(preds.classes)
    return write_blocks(
        output, preds.classes, blocks, lambda b: _block(preds, cleaner, classes, *blocks[b]), workers, progress
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
    for c in range(n_classes):
        if not cleaner.active(c):
            continue
        b = bounds[c * n : (c + 1) * n + 1]
        out, out_bounds = cleaner.many(c, runs[b[0] : b[-1]], b - b[0])
        at = by_image[c * n : (c + 1) * n]
        run_span[at] = spans(out_bounds + base)
        formatted[at] = True
        cleaned.append(out)
        base += len(out)
    runs_out = np.concatenate(cleaned) if cleaned else NO_RUNS
    return write_rows(text, text_span, runs_out, run_span, formatted, Fields.of(preds.images[lo:hi]), classes)


@dataclass
class CleanResult:
    """What ``clean_predictions`` did: the cleaned ``predictions`` (in memory) or the
    ``output`` written, ``images``, ``rows``, the per-class ``summary`` table (masks changed,
    components removed, holes filled, pixels removed and added) and ``notes``."""

    predictions: Predictions | None
    output: str | None
    images: list[str]
    rows: int
    summary: list[str]
    notes: list[str] = field(default_factory=list)


def clean_predictions(
    predictions: Source,
    settings: str | os.PathLike | dict[str, Any] | PostprocessFile | None = None,
    *,
    rules: dict[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    workers: int | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> CleanResult:
    """Clean every mask, per class, on runs: opening, closing, small components, the K
    largest components, holes — each optional, always in that order.

    Parameters
    ----------
    predictions : source
        A CSV path, a ``Predictions`` or a DataFrame ``image_name,class,rle``.
    settings : path, dict or PostprocessFile, optional
        Per-class rules: ``{default: {...}, <class>: {...} or None}``, or the long form
        ``{postprocess: <that>, classes:, height:, width:, workers:, output:}``.
    rules : dict, optional
        Keys of one class's rules (``open``, ``close``, ``min_size``, ``keep_largest``,
        ``fill_holes``, ``max_hole``, ``connectivity``) replacing those of ``default``;
        class entries keep the keys they name.
    output : path, optional
        Write the result there (streamed, atomic); else it is returned in memory.
    classes, height, width, workers : optional
        As in ``ensemble.hard_vote``.
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    CleanResult

    Raises
    ------
    UsageError
        Bad rules, or rules that change no mask (``param="rules"``).
    InputError, DataError
        An unreadable or invalid input, or a missing row.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": ["1 3 9 1"]})
    >>> r = clean_predictions(df, rules={"keep_largest": 1}, classes=["x"], height=3, width=3)
    >>> r.predictions.rle("a.png", "x"), r.rows
    ('1 3', 1)
    """
    from core.atomic import check_outputs
    from settings.loader import load_settings
    from settings.postprocess import PostprocessFile, build_cleaner

    notes = Notes(echo)
    if isinstance(settings, (str, os.PathLike)):
        from settings.loader import load_yaml

        data, path = load_yaml(settings), str(settings)
        settings = data if "postprocess" in data else {"postprocess": data}
    else:
        path = None
        if isinstance(settings, dict) and "postprocess" not in settings:
            settings = {"postprocess": settings}
    cfg, _, where = load_settings(PostprocessFile, settings, path or "settings")
    out = str(output) if output is not None else cfg.output
    check_outputs(
        [("output", out)],
        [*([("the input", str(predictions))] if is_path(predictions) else []), ("the settings", path)],
    )
    cls, h, w = frame_of([predictions], classes, height, width, cfg, where)
    cleaner = build_cleaner(cfg.postprocess, cls, h, w, where, rules)
    if cleaner is None:
        raise UsageError(
            "rules: nothing to do: the rules given change no mask (min_size 1, keep_largest 0 and radius 0 are no-ops)",
            param="rules",
        )
    if echo is not None:
        from core.warmup import precompile

        precompile(echo, "read", "clean_blocks" if out is not None else "clean", rules=cleaner.rules)
    preds = load(predictions, "predictions", cls, h, w, notes)
    with bar(progress, len(preds.images), "postprocess") as b:
        done = clean_all(preds, cleaner, out, workers or cfg.workers, b)
    rows = done if out is not None else len(preds.images) * len(cls)
    notes.quietly()(f"postprocess: {plural(len(preds.images), 'image')}, {plural(rows, 'row')} → {out or 'memory'}")
    return CleanResult(None if out is not None else done, out, list(preds.images), rows, cleaner.summary(), list(notes))
