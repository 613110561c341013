"""Class selection: each class's mask is taken, as written, from one named source
(``select``, ``select_rules``; the plan and writer below them).

Nothing is decoded: the sources' RLE strings were validated when they were read, and are
copied byte for byte (surrounding whitespace dropped). Images follow the first source in
``sources`` that some class uses; every used source must hold exactly that image set and a
row for every (image, class) it is selected for. A source may hold only some classes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DataError, UsageError, as_name, listing, named_among, plural, quoted, shown, where
from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import Predictions, image_positions, predictions_from_rles
from core.sources import Notes, Progress, Source, bar, frame_of, is_path, load_all
from core.stream import collect_images
from fusion.finish import finish_image, overlap_policy, picked_rles, write_picked
from postprocess.cleaner import Cleaner, cleaning_lines
from settings.select import SelectSettings


@dataclass
class SelectPlan:
    """For each output image ``i`` and class ``c``: ``src[c]`` gives the source (an index
    into ``names``) and ``rows[i, c]`` its row."""

    names: list[str]
    sources: list[Predictions]
    images: list[str]
    src: np.ndarray  # (n_classes,) int64
    rows: np.ndarray  # (n_images, n_classes) int64

    def grid(self, i: int) -> tuple[int, int]:
        """The grid of image ``i``'s runs (the first source's)."""
        first = self.sources[0]
        return first.grid(first.image_index(self.images[i]))

    def rows_by_source(self) -> dict[str, int]:
        """Output rows each source gives (sources no class uses are left out)."""
        n = len(self.images)
        return {name: int((self.src == s).sum()) * n for s, name in enumerate(self.names) if (self.src == s).any()}


def plan_select(sources: Mapping[str, Predictions], rules: Sequence[str]) -> SelectPlan:
    """Check that every selected (image, class) exists and locate its row.

    ``rules[c]`` names the source of class ``c`` (in the sources' class order). Raises
    ``DataError`` on a missing row or when used sources hold different image sets.
    """
    names = list(sources)
    preds = list(sources.values())
    if not preds:
        raise ValueError("no sources")
    classes = preds[0].classes
    if any(p.classes != classes for p in preds):
        raise ValueError("sources were read with different class lists")
    if len(rules) != len(classes):
        raise ValueError(f"{len(rules)} rules for {len(classes)} classes")
    unknown = [r for r in rules if r not in sources]
    if unknown:
        raise ValueError(f"rule names unknown source {quoted(unknown[0])}")
    src = np.array([names.index(r) for r in rules], np.int64)
    used = [s for s in range(len(names)) if (src == s).any()]
    first = preds[used[0]]
    images = first.images
    rows = np.empty((len(images), len(classes)), np.int64)
    for s in used:
        p = preds[s]
        idx = image_positions(p, images, first.path, f" (source {shown(names[s])})")
        cols = np.flatnonzero(src == s)
        rows[:, cols] = p.rows[idx][:, cols]
    if (rows < 0).any():
        i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        n = int((rows < 0).sum())
        p = preds[src[c]]
        raise DataError(
            f"{where(p.path, None, images[i], classes[c])}: missing row (source "
            f"{names[src[c]]} is selected for {classes[c]}; {plural(n, 'selected row')} missing in all)"
        )
    return SelectPlan(names, preds, images, src, rows)


def write_selection(
    plan: SelectPlan,
    output: str | os.PathLike,
    progress=None,
    clean: Cleaner | None = None,
    layout: Layout = DEFAULT_LAYOUT,
    overlaps: str | None = None,
    writer=None,
) -> int:
    """Write the selected rows in canonical order (atomically), laid out as ``layout`` (or hand
    them to ``writer``, one of ``core.predictions.writer_for``'s); returns rows written. With
    ``clean``, classes that have cleaning rules are decoded, cleaned and re-encoded; with
    ``overlaps`` (exclusive classes) each image's classes are kept exclusive
    (``fusion.finish.finish_image``)."""
    which = np.broadcast_to(plan.src, plan.rows.shape)
    classes = plan.sources[0].classes
    return write_picked(
        output,
        plan.sources,
        which,
        plan.rows,
        plan.images,
        classes,
        plan.grid,
        progress,
        clean,
        layout,
        overlaps,
        writer,
    )


@dataclass
class Selection:
    """The rules of a selection: ``rules[c]`` names the source of ``classes[c]``; with a
    scores file, ``best`` holds its Dice per (source, class) (NaN: no score) and
    ``fell_back`` the classes that kept the settings' rule."""

    sources: dict[str, Any]
    classes: tuple[str, ...]
    rules: list[str]
    height: int
    width: int
    best: Any = None  # fusion.best_source.ScoresFile
    fell_back: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    label: str = "settings"  # how messages name the settings the rules came from

    def settings(self, output: str | None = None) -> dict:
        """A settings mapping that reproduces the rules (sources given as paths)."""
        from settings.select import rules_to_settings

        paths = {n: str(p) if is_path(p) else n for n, p in self.sources.items()}
        return rules_to_settings(paths, self.rules, self.classes, output, self.height, self.width)

    def write(self, path: str | os.PathLike, output: str | None = None, header: str = "") -> None:
        """Write ``settings(output)`` as a YAML settings file (atomically)."""
        from settings.loader import write_yaml

        write_yaml(path, self.settings(output), header=header)

    def best_table(self) -> list[str]:
        """Per class the chosen source, its Dice and the others' (empty without scores)."""
        if self.best is None:
            return []
        names = list(self.sources)
        said = [as_name(c) for c in self.classes]
        width = max(len(c) for c in said)
        lines = []
        for c, (cls, rule) in enumerate(zip(self.classes, self.rules, strict=True)):
            if cls in self.fell_back:
                lines.append(f"  {said[c]:<{width}}  {as_name(rule)}  (no scores; rule from {self.label})")
                continue
            d = self.best.dice[:, c]
            others = ", ".join(
                f"{as_name(n)} {d[k]:.4f}" for k, n in enumerate(names) if n != rule and not np.isnan(d[k])
            )
            lines.append(
                f"  {said[c]:<{width}}  {as_name(rule)}  {d[names.index(rule)]:.4f}"
                + (f"  ({others})" if others else "")
            )
        return lines


@dataclass
class SelectResult:
    """What ``select`` did: the ``selection`` (rules), the selected ``predictions`` (in
    memory) or the ``output`` written, ``images``, rows per source, and the inline
    cleaning's summary."""

    selection: Selection
    predictions: Predictions | None
    output: str | None
    images: list[str]
    by_source: dict[str, int]
    cleaning: list[str] | None = None

    @property
    def notes(self) -> list[str]:
        return self.selection.notes

    def grid(self, i: int) -> tuple[int, int]:
        """The grid of image ``i``'s runs (the first source's)."""
        first = self.sources[0]
        return first.grid(first.image_index(self.images[i]))

    def rows_by_source(self) -> dict[str, int]:
        """Output rows each source gives (sources no class uses are left out)."""
        return dict(self.by_source)

    def summary(self, sources: Mapping[str, Any]) -> list[str]:
        """What was selected, as the command line prints it: counts, rows and classes taken
        from each of ``sources`` (name → path), and the inline cleaning's summary."""
        sel, out = self.selection, self.output if self.output is not None else "memory"
        lines = [
            f"select: {plural(len(self.images), 'image')} × {plural(len(sel.classes), 'class')}, "
            f"{plural(sum(self.by_source.values()), 'row')} → {out}"
        ]
        lines += [
            f"  {as_name(name)}: {plural(n, 'row')} ({plural(sel.rules.count(name), 'class')}) from "
            f"{shown(sources[name], 320)}"
            for name, n in self.by_source.items()
        ]
        return lines + cleaning_lines(self.cleaning)


def select_rules(
    sources: Mapping[str, Source] | None = None,
    rules: Sequence[str] | Mapping[str, str] | None = None,
    *,
    settings: str | os.PathLike | dict[str, Any] | SelectSettings | None = None,
    best_from: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    echo: Callable[[str], None] | None = None,
    label: str = "settings",
) -> Selection:
    """The source of each class, from rules, settings or a scores file — without reading
    the sources. Parameters as ``select``; ``label`` names typed settings in messages."""
    from settings.loader import load_settings
    from settings.select import class_sources, rule_table

    notes = Notes(echo)
    cfg, _, where = load_settings(SelectSettings, settings, label)
    if isinstance(rules, Mapping):
        cfg = cfg.model_copy(update={"select": dict(rules)})
    elif rules is not None:
        rules = list(rules)
    named = dict(sources) if sources is not None else dict(cfg.sources)
    if not named:
        raise UsageError(f"{where}: sources: no sources")
    frame = frame_of(named.values(), classes, height, width, cfg, f"{where}: classes")
    cls, h, w = frame.classes, frame.height, frame.width
    names = list(named)
    if isinstance(rules, list):
        if len(rules) != len(cls):
            raise UsageError(f"rules: {len(rules)} rules for {len(cls)} classes", param="rules")
        unknown = [r for r in rules if r not in named]
        if unknown:
            raise UsageError(f"rules: unknown source {named_among(unknown[0], names, 'sources')}", param="rules")
        return Selection(named, cls, rules, h, w, notes=list(notes), label=where)
    if best_from is None:
        return Selection(named, cls, class_sources(cfg, names, cls, where), h, w, notes=list(notes), label=where)
    from fusion.best_source import best_rules, read_scores

    scores = read_scores(best_from, names, cls)
    for kind, other in [("sources", scores.other_sources), ("classes", scores.other_classes)]:
        if other:
            notes(
                f"note: {best_from}: ignored {plural(sum(other.values()), 'row')} of other {kind} "
                f"({listing(list(other))})"
            )
    unscored = [n for k, n in enumerate(names) if np.isnan(scores.dice[k]).all()]
    if unscored:  # a renamed source silently loses every class: say which names the file uses
        notes(
            f"note: {best_from} has no score for {'source' if len(unscored) == 1 else 'sources'} "
            f"{listing(unscored)} of {where}"
            + (f" (its other sources: {listing(list(scores.other_sources))})" if scores.other_sources else "")
        )
    chosen, fell_back = best_rules(scores.dice, names, cls, rule_table(cfg, names, cls, where), where)
    return Selection(named, cls, chosen, h, w, scores, fell_back, list(notes), where)


def select(
    sources: Mapping[str, Source] | None = None,
    rules: Sequence[str] | Mapping[str, str] | None = None,
    output: str | os.PathLike | None = None,
    *,
    settings: str | os.PathLike | dict[str, Any] | SelectSettings | None = None,
    best_from: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    overlaps: str | None = None,
    write_instances: bool | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> SelectResult:
    """Class selection: each class's mask is copied, as written, from one named source.

    Parameters
    ----------
    sources : mapping, optional
        Name → source (a CSV path, a ``Predictions`` or a DataFrame); default: the
        settings' ``sources``. Only sources some class uses are read.
    rules : sequence or mapping, optional
        The source of each class in class order, or ``{class | group | "default": source}``
        (a class beats its group, a group beats ``default``).
    output : path, optional
        Write the result there (streamed, atomic): a CSV, or a folder of PNGs (``DIR/``; as in
        ``ensemble.hard_vote``); else it is returned in memory.
    settings : path, dict or SelectSettings, optional
        ``sources``, ``groups``, ``select`` (rules), ``postprocess``, ``classes``, size, ``output``.
    columns, rle_order, sizes, instances, exclusive : optional
        Another task's layout, as in ``ensemble.hard_vote``; the output keeps it.
    overlaps : {"error", "first"}, optional
        With exclusive classes, two selected classes marking one pixel: an error naming the
        image and the classes (default), or the class listed first keeps it.
    best_from : path, optional
        A scores file ``source,class,dice``: per class the source with the highest Dice
        (ties: the first listed; a class without scores keeps its rule).
    classes, height, width : optional
        Default: the settings', else those of an in-memory ``Predictions`` source, else
        the 29 hand-bone classes on 2048².
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    SelectResult
        ``selection`` (``rules``, ``write()`` the settings that reproduce them), rows per source.

    Raises
    ------
    UsageError
        Unknown sources, classes or groups; a class without a rule.
    DataError
        A selected row missing, or used sources holding different images.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"image_name": ["i.png"] * 2, "class": ["x", "y"], "rle": ["1 1", "2 1"]})
    >>> b = pd.DataFrame({"image_name": ["i.png"] * 2, "class": ["x", "y"], "rle": ["3 1", "4 1"]})
    >>> r = select({"a": a, "b": b}, {"default": "a", "y": "b"}, classes=["x", "y"], height=2, width=2)
    >>> r.predictions.to_frame()["rle"].tolist(), r.rows_by_source()
    (['1 1', '4 1'], {'a': 1, 'b': 1})
    """
    from core.label_write import check_prediction_output
    from postprocess.cleaner import build_cleaner
    from postprocess.instances import output_writer
    from settings.loader import load_settings

    cfg, setting_path, where = load_settings(SelectSettings, settings)
    out = str(output) if output is not None else cfg.output
    named = dict(sources) if sources is not None else dict(cfg.sources)
    split = bool(write_instances if write_instances is not None else cfg.write_instances)
    check_prediction_output(
        out,
        [
            ("the settings", setting_path),
            ("the scores file", best_from),
            *(("an input", str(p)) for p in named.values() if is_path(p)),
        ],
        "select",
        split,
    )
    sel = select_rules(
        named,
        rules,
        settings=cfg,
        best_from=best_from,
        classes=classes,
        height=height,
        width=width,
        echo=echo,
        label=where,
    )
    notes = Notes(echo)
    notes.extend(sel.notes)
    clean = build_cleaner(cfg.postprocess, sel.classes, sel.height, sel.width, where, groups=cfg.groups)
    if echo is not None:
        from core.warmup import COPY, READ, precompile
        from postprocess.warmup import clean_step, output_steps

        precompile(echo, READ, clean_step(clean.rules) if clean is not None else COPY, *output_steps(out, split))
    frame = frame_of(
        named.values(), sel.classes, sel.height, sel.width, cfg, where, columns, sizes, instances, exclusive, rle_order
    )
    policy = overlap_policy(frame, overlaps, cfg)
    used = {name: src for name, src in named.items() if name in sel.rules}
    preds = dict(zip(used, load_all(used, frame, notes), strict=True))
    plan = plan_select(preds, sel.rules)
    with bar(progress, len(plan.images), "select") as b:
        if out is not None:
            first = plan.sources[0]
            writer = output_writer(out, frame, lambda name: first.size(first.image_index(name)), "select", split)
            write_selection(plan, out, b, clean, frame.layout, policy, writer)
            result = None
        else:
            rles = collect_images(plan.images, functools.partial(_selected, plan, clean, policy), b)
            first = plan.sources[0]
            at = [first.image_index(name) for name in plan.images]
            sizes_ = first.sizes[at] if first.sizes is not None else None
            result = predictions_from_rles(
                "selection", sel.classes, plan.images, rles, sel.height, sel.width, sizes_, first.order
            )
    sel.notes = list(notes)
    return SelectResult(
        sel, result, out, list(plan.images), plan.rows_by_source(), clean.summary() if clean is not None else None
    )


def _selected(plan: SelectPlan, clean: Cleaner | None, overlaps: str | None, i: int) -> list[str]:
    """Image ``i``'s selected RLE strings (cleaned where ``clean`` has rules, exclusive as
    ``overlaps`` says)."""
    rles = picked_rles(plan.sources, plan.src.tolist(), plan.rows[i].tolist())
    return finish_image(rles, clean, plan.grid(i), overlaps, plan.sources[0].classes, plan.images[i])
