"""``clean_predictions``, the ``postprocess`` job: read a prediction set, clean every mask per
class (``postprocess.clean_set``), write it atomically, and say what changed per class."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import UsageError, plural
from core.predictions import Predictions
from core.sources import Notes, Progress, Source, bar, frame_of, is_path, load
from postprocess.clean_set import clean_all

if TYPE_CHECKING:
    from settings.postprocess import PostprocessFile


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
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    write_instances: bool | None = None,
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
        Write the result there (streamed, atomic): a CSV, or a folder of PNGs (``DIR/``; as in
        ``ensemble.hard_vote``); else it is returned in memory.
    classes, height, width, workers : optional
        As in ``ensemble.hard_vote``.
    columns, rle_order, sizes, instances : optional
        Another task's layout, as in ``ensemble.hard_vote``; the output keeps it.
    exclusive : bool, optional
        The classes are mutually exclusive: an image whose classes overlap as given is an
        error naming it and the classes; a pixel that two classes claim once cleaned (closing
        and filling holes add pixels) goes to the class listed first; a folder output holds
        label maps. Default: the settings' ``exclusive``.
    write_instances : bool, optional
        One row per connected component of each mask, as in ``ensemble.hard_vote``.
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
    from core.label_write import check_prediction_output
    from postprocess.cleaner import build_cleaner
    from postprocess.instances import output_writer
    from settings.loader import load_settings
    from settings.postprocess import PostprocessFile

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
    split = bool(write_instances if write_instances is not None else cfg.write_instances)
    check_prediction_output(
        out,
        [*([("the input", str(predictions))] if is_path(predictions) else []), ("the settings", path)],
        "postprocess",
        split,
    )
    frame = frame_of([predictions], classes, height, width, cfg, where, columns, sizes, instances, exclusive, rle_order)
    cls, h, w = frame.classes, frame.height, frame.width
    cleaner = build_cleaner(cfg.postprocess, cls, h, w, where, rules)
    if cleaner is None:
        raise UsageError(
            "rules: nothing to do: the rules given change no mask (min_size 1, keep_largest 0 and radius 0 are no-ops)",
            param="rules",
        )
    if echo is not None:
        from core.warmup import READ, precompile
        from postprocess.warmup import clean_blocks_step, clean_step, output_steps

        writes = output_steps(out, split)  # a writer of one image at a time: cleaned mask by mask
        blocks = out is not None and not writes and not frame.exclusive
        precompile(echo, READ, (clean_blocks_step if blocks else clean_step)(cleaner.rules), *writes)
    preds = load(predictions, "predictions", frame, notes)
    with bar(progress, len(preds.images), "postprocess") as b:
        size_of = (lambda name: preds.size(preds.image_index(name))) if out is not None else None
        writer = output_writer(out, frame, size_of, "postprocess", split) if out is not None else None
        done = clean_all(preds, cleaner, out, workers or cfg.workers, b, frame.layout, writer, frame.exclusive)
    rows = done if out is not None else len(preds.images) * len(cls)
    notes.quietly()(f"postprocess: {plural(len(preds.images), 'image')}, {plural(rows, 'row')} → {out or 'memory'}")
    return CleanResult(None if out is not None else done, out, list(preds.images), rows, cleaner.summary(), list(notes))
