"""Merging prediction CSVs that cover different images and/or classes (shards, per-class
files) into one canonical submission.

Images come in first-seen order across the parts (in the order given), classes in class
list order. An (image, class) held by several parts is taken from the preferred part
(``first`` or ``last`` in the order given); holders whose masks differ from it make the
cell a conflict. Masks are compared as canonical runs (``"1 2 3 2"`` equals ``"1 4"``),
so only differently written cells are parsed; strings are copied, never re-encoded.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DataError, UsageError, listing, plural, shown
from core.imageset import ImageExpectation
from core.predictions import Predictions, predictions_from_rles
from core.sources import Notes, Progress, Source, bar, frame_of, is_path, label, load_all, same_file_message
from core.stream import collect_images
from fusion.finish import overlap_policy
from fusion.merge_plan import MergePlan, merged_rles, plan_merge, write_merge
from postprocess.cleaner import cleaning_lines
from settings.merge import MergeSettings


@dataclass
class MergeResult:
    """What ``merge`` did: the ``plan`` (counts: ``expected``, ``missing``, ``overlaps``,
    ``conflicts``, ``rows_by_part()``, first examples), the merged ``predictions`` (in memory)
    or the ``output`` written, the ``parts`` as given, and the inline cleaning's summary."""

    plan: MergePlan
    predictions: Predictions | None
    output: str | None
    parts: list[str]
    prefer: str
    cleaning: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """What was merged, as the command line prints it: counts, overlaps, rows taken from
        each part, and the inline cleaning's summary."""
        plan, out = self.plan, self.output if self.output is not None else "memory"
        lines = [
            f"merge: {plural(len(self.parts), 'file')} → {out}: {plural(len(plan.images), 'image')} × "
            f"{plural(len(plan.classes), 'class')}: {plural(plan.expected, 'row')} expected, "
            f"{plan.expected - plan.missing:,} present, {plan.missing:,} missing"
            + (f" (written as empty masks; first: {plan.first_missing()})" if plan.missing else "")
        ]
        taken = f", taken from the {self.prefer} file (first: {plan.first_conflict()})" if plan.conflicts else ""
        lines.append(
            f"  overlaps: {plural(plan.overlaps, 'row')} in several files: "
            f"{plan.overlaps - plan.conflicts:,} identical, {plan.conflicts:,} conflicting{taken}"
        )
        lines += [
            f"  {shown(p, 320)}: {plural(n, 'row')} taken" for p, n in zip(self.parts, plan.rows_by_part(), strict=True)
        ]
        return lines + cleaning_lines(self.cleaning)


def merge(
    parts: Sequence[Source] | None = None,
    output: str | os.PathLike | None = None,
    *,
    settings: str | os.PathLike | dict[str, Any] | MergeSettings | None = None,
    prefer: str | None = None,
    strict: bool | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    expected_images: ImageExpectation | None = None,
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    overlaps: str | None = None,
    write_instances: bool | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> MergeResult:
    """Merge predictions covering different images and/or classes (shards, per-class files).

    Images in first-seen order across the parts, classes in class-list order. An (image,
    class) in several parts: identical masks (compared as runs) give one row; different
    masks are a conflict, resolved by ``prefer``. A row no part holds is an empty mask.

    Parameters
    ----------
    parts : sequence, optional
        CSV paths, ``Predictions`` or DataFrames; default: the settings' ``parts``.
    output : path, optional
        Write the result there (streamed, atomic): a CSV, or a folder of PNGs (``DIR/``; as in
        ``ensemble.hard_vote``); else it is returned in memory.
    settings : path, dict or MergeSettings, optional
        ``parts``, ``output``, ``prefer``, ``strict``, ``classes``, size, ``postprocess``.
    prefer : {"first", "last"}, optional
        Which part's row wins a conflict (default first).
    strict : bool, optional
        A conflict or a missing row raises ``DataError`` (nothing written).
    classes, height, width : optional
        Default: the settings', else those of an in-memory ``Predictions`` part, else the
        29 hand-bone classes on 2048².
    expected_images : ImageExpectation, optional
        The images the merged set must hold.
    columns, rle_order, sizes, instances, exclusive : optional
        Another task's layout, as in ``ensemble.hard_vote``; the output keeps it.
    overlaps : {"error", "first"}, optional
        With exclusive classes, two classes marking one pixel: an error naming the image and
        the classes (default), or the class listed first keeps it.
    write_instances : bool, optional
        One row per connected component of each mask, as in ``ensemble.hard_vote``.
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    MergeResult

    Raises
    ------
    UsageError, InputError, DataError
        Bad parameters; unreadable or invalid parts; with ``strict``, conflicts or gaps.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"image_name": ["i.png"], "class": ["x"], "rle": ["1 1"]})
    >>> b = pd.DataFrame({"image_name": ["j.png"], "class": ["y"], "rle": ["2 1"]})
    >>> r = merge([a, b], classes=["x", "y"], height=2, width=2)
    >>> r.predictions.to_frame()["rle"].tolist(), r.plan.missing
    (['1 1', '', '', '2 1'], 2)
    """
    from core.label_write import check_prediction_output
    from postprocess.cleaner import build_cleaner
    from postprocess.instances import output_writer
    from settings.loader import load_settings

    notes = Notes(echo)
    cfg, setting_path, where = load_settings(MergeSettings, settings)
    files = list(parts) if parts is not None else list(cfg.parts)
    if not files:
        raise UsageError("parts: no parts", param="parts")
    paths = [str(p) for p in files if is_path(p)]
    twice = same_file_message([(f"part {k + 1}", p) for k, p in enumerate(paths)])
    if twice:
        raise UsageError(f"{twice}: give each part once")
    out = str(output) if output is not None else cfg.output
    split = bool(write_instances if write_instances is not None else cfg.write_instances)
    check_prediction_output(out, [("the settings", setting_path), *(("an input", p) for p in paths)], "merge", split)
    frame = frame_of(
        files, classes, height, width, cfg, f"{where}: classes", columns, sizes, instances, exclusive, rle_order
    )
    cls, h, w = frame.classes, frame.height, frame.width
    policy = overlap_policy(frame, overlaps, cfg)
    prefer = prefer or cfg.prefer
    strict = bool(strict or cfg.strict)
    clean = build_cleaner(cfg.postprocess, cls, h, w, where)
    if echo is not None:
        from core.warmup import COPY, READ, precompile
        from fusion.warmup import MERGE
        from postprocess.warmup import clean_step, output_steps

        clean_or_copy = clean_step(clean.rules) if clean is not None else COPY
        precompile(echo, READ, MERGE, clean_or_copy, *output_steps(out, split))
    labels = [label(f"part{k + 1}", p) for k, p in enumerate(files)]
    preds = load_all(list(zip(labels, files, strict=True)), frame, notes)
    plan = plan_merge(preds, prefer)
    if expected_images is not None:
        expected_images.check(plan.images, f"the merged parts ({listing(labels, 3)})")
    if strict and plan.strict_error():
        raise DataError(plan.strict_error())
    result = None
    with bar(progress, len(plan.images), "merge") as b:
        if out is not None:
            at = {name: i for i, name in enumerate(plan.images)}
            writer = output_writer(out, frame, lambda name: plan.size(at[name]), "merge", split)
            write_merge(plan, out, b, clean, frame.layout, policy, writer)
        else:
            rles = collect_images(plan.images, functools.partial(merged_rles, plan, clean, overlaps=policy), b)
            sizes_ = np.array([plan.size(i) for i in range(len(plan.images))])
            result = predictions_from_rles("merge", cls, plan.images, rles, h, w, sizes_, frame.layout.order)
    return MergeResult(plan, result, out, labels, prefer, clean.summary() if clean is not None else None, list(notes))
