"""Hard and weighted votes of whole prediction sets: ``hard_vote`` and ``weighted_vote``.

Each does the whole job of its command — settings, sources, checks, the vote on runs,
inline cleaning — and returns a ``VoteResult``; nothing is printed. Sources are paths,
``Predictions`` or DataFrames; with ``output`` the result is streamed to a CSV written
atomically, without it the voted ``Predictions`` are returned in memory (no disk touched).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import UsageError, plural
from core.imageset import ImageExpectation
from core.label_write import check_prediction_output
from core.predictions import Predictions, predictions_from_rles
from core.sources import (
    Notes,
    Progress,
    Sources,
    bar,
    frame_of,
    is_path,
    label,
    load_all,
    named_sources,
    same_file_message,
)
from settings.vote import VoteSettings, staple_regions, weight_listing

__all__ = ["VoteResult", "hard_vote", "weighted_vote"]


@dataclass
class VoteResult:
    """What a vote did.

    Attributes
    ----------
    predictions : Predictions or None
        The voted masks, when no ``output`` was given.
    output : str or None
        The CSV written, when ``output`` was given.
    sources : dict
        Source name → how it was given (a path, or the name of an in-memory source).
    images : list of str
        The images voted, in output order.
    rows : int
        Rows written (or held).
    n_missing : int
        Rows absent from a source and voted as empty (``missing="empty"``).
    overrides : list of str
        The classes whose weights or threshold differ from the default, one line each
        (after a heading line), then the classes fused by STAPLE (``staple:`` in the
        settings) with each source's estimated sensitivity; empty when none do.
    cleaning : list of str or None
        The inline cleaning's per-class summary table, when the settings clean.
    notes : list of str
        Notes and warnings (images named by path, truncated files, duplicate files).
    """

    predictions: Predictions | None
    output: str | None
    sources: dict[str, str]
    images: list[str]
    rows: int
    n_missing: int
    overrides: list[str] = field(default_factory=list)
    cleaning: list[str] | None = None
    notes: list[str] = field(default_factory=list)


def hard_vote(
    sources: Sources | None = None,
    *,
    output: str | os.PathLike | None = None,
    settings: str | os.PathLike | dict[str, Any] | VoteSettings | None = None,
    threshold: float | None = None,
    min_votes: int | None = None,
    missing: str | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    workers: int | None = None,
    allow_duplicate: bool = False,
    expected_images: ImageExpectation | None = None,
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    write_instances: bool | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> VoteResult:
    """Hard (majority) vote: keep a pixel where ``votes / n > threshold`` (strict), or where
    ``votes >= min_votes``; computed on runs, exactly.

    Parameters
    ----------
    sources : mapping or sequence
        Name → source, or a sequence of sources (named by file stem, in-memory ones
        ``source1`` …); a source is a CSV path, a ``Predictions`` or a DataFrame
        ``image_name,class,rle``. Default: the settings' ``sources``.
    output : path, optional
        Write the result there (streamed, atomic): a CSV, or a folder (``DIR/``, or an existing
        folder) of PNGs named after the image stems, label maps of exclusive classes, else
        binary masks per class (``core.label_write``). Else it is returned in memory.
    settings : path, dict or VoteSettings, optional
        Every key of ``VoteSettings``; the parameters below replace its values (for
        per-class values, only ``default``).
    threshold : float, optional
        Vote share to exceed (default 0.5).
    min_votes : int, optional
        Keep where at least this many sources agree (1: union, n: intersection).
    missing : {"error", "empty"}, optional
        A row absent from a source: an error (default) or an empty vote.
    classes : sequence of str, optional
        Default: the settings' ``classes``, else the 29 hand-bone classes.
    height, width : int, optional
        Mask size (default: the settings', else 2048).
    workers : int, optional
        Forked processes writing ``output`` (the result never depends on it).
    allow_duplicate : bool
        Let one file (same resolved path) vote twice.
    expected_images : ImageExpectation, optional
        The images each source must hold (``DataError`` otherwise).
    columns, rle_order : optional
        The CSVs' column names (``"image=ImageId,class=ClassId,rle=EncodedPixels"``, or a
        mapping; without ``class`` a file holds one class) and RLE order (``"row"`` or
        ``"column"``); the output keeps them. Default: the settings', else the hand-bone layout.
    sizes : path, optional
        Each image's size: a CSV with the image column and ``height,width``, or a folder of the
        images (their headers are read). Default: ``height`` × ``width`` for every image.
    instances : {"error", "union"}, optional
        Several rows of one image and class (one per object): an error, or read as one mask.
    exclusive : bool, optional
        The classes are mutually exclusive: per pixel, the plurality among the classes and the
        background (the sources that mark none of the classes there, each with its weight);
        ties go to the background, then to the class listed first. Thresholds do not apply.
    write_instances : bool, optional
        One row per 8-connected component of each mask (an empty mask: one empty row); a CSV only.
    echo : callable, optional
        Receives each note as it is made (they are also on the result).
    progress : callable, optional
        ``progress(total=, desc=, unit=)`` → a context manager with ``update(n)``.

    Returns
    -------
    VoteResult

    Raises
    ------
    UsageError
        Bad parameters or settings (a ``ValueError``; ``param`` names the parameter).
    InputError
        An unreadable or invalid source (a ``ValueError``).
    DataError
        Sources whose images differ, or a missing row without ``missing="empty"``.

    Examples
    --------
    >>> import pandas as pd
    >>> def frame(*rles):
    ...     return pd.DataFrame({"image_name": "a.png", "class": ["x", "y"], "rle": list(rles)})
    >>> votes = {"m1": frame("1 3", "2 2"), "m2": frame("2 3", ""), "m3": frame("2 1", "4 1")}
    >>> result = hard_vote(votes, classes=["x", "y"], height=2, width=2)
    >>> result.predictions.to_frame().values.tolist()
    [['a.png', 'x', '2 2'], ['a.png', 'y', '']]
    >>> hard_vote(votes, classes=["x", "y"], height=2, width=2, min_votes=1).predictions.rle("a.png", "y")
    '2 3'
    """
    return _vote(
        "hard",
        sources,
        output,
        settings,
        None,
        threshold,
        min_votes,
        missing,
        classes,
        height,
        width,
        workers,
        allow_duplicate,
        expected_images,
        dict(columns=columns, rle_order=rle_order, sizes=sizes, instances=instances, exclusive=exclusive),
        write_instances,
        echo,
        progress,
    )


def weighted_vote(
    sources: Sources | None = None,
    *,
    weights: Sequence[float] | None = None,
    output: str | os.PathLike | None = None,
    settings: str | os.PathLike | dict[str, Any] | VoteSettings | None = None,
    threshold: float | None = None,
    min_votes: int | None = None,
    missing: str | None = None,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    workers: int | None = None,
    allow_duplicate: bool = False,
    expected_images: ImageExpectation | None = None,
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    write_instances: bool | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> VoteResult:
    """Weighted vote: keep a pixel where ``Σ wᵢ·mᵢ / Σ wᵢ > threshold`` (strict), summed in
    source order exactly as a dense loop would (ties included).

    Parameters are those of ``hard_vote``, and:

    Parameters
    ----------
    weights : sequence of float, optional
        One weight per source, in order; replaces the settings' default weights (their
        per-class entries stay). Per-class weights: ``settings={"weights": {...}}``.

    Returns
    -------
    VoteResult

    Raises
    ------
    UsageError, InputError, DataError
        As ``hard_vote``.

    Examples
    --------
    >>> import pandas as pd
    >>> def frame(rle):
    ...     return pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": [rle]})
    >>> r = weighted_vote({"a": frame("1 2"), "b": frame("3 2")}, weights=[1, 3], classes=["x"], height=2, width=2)
    >>> r.predictions.rle("a.png", "x")
    '3 2'
    """
    return _vote(
        "weighted",
        sources,
        output,
        settings,
        weights,
        threshold,
        min_votes,
        missing,
        classes,
        height,
        width,
        workers,
        allow_duplicate,
        expected_images,
        dict(columns=columns, rle_order=rle_order, sizes=sizes, instances=instances, exclusive=exclusive),
        write_instances,
        echo,
        progress,
    )


def _vote(
    kind,
    sources,
    output,
    settings,
    weights,
    threshold,
    min_votes,
    missing,
    classes,
    height,
    width,
    workers,
    allow_duplicate,
    expected,
    layout_args,
    write_instances,
    echo,
    progress,
) -> VoteResult:
    from postprocess.cleaner import build_cleaner
    from settings.loader import load_settings

    notes = Notes(echo)
    cfg, setting_path, where = load_settings(VoteSettings, settings)
    if kind == "hard" and cfg.weights is not None:
        raise UsageError(f"{where}: 'hard' takes no weights; use 'weighted'")
    named = named_sources(sources) if sources is not None else named_sources(cfg.sources)
    if len(named) < 2 and not (len(named) == 1 and kind == "weighted"):
        raise UsageError("need at least two sources", param="sources")
    out = str(output) if output is not None else cfg.output
    paths = {n: str(s) for n, s in named.items() if is_path(s)}
    split = bool(write_instances if write_instances is not None else cfg.write_instances)
    inputs = [("the settings", setting_path), *(("an input", p) for p in paths.values())]
    check_prediction_output(out, inputs, kind, split)
    if expected is not None and out and expected.source:
        check_prediction_output(out, [("the image list", expected.source)], kind)
    frame = frame_of(named.values(), classes, height, width, cfg, where, **_frame_args(layout_args))
    cls, h, wd = frame.classes, frame.height, frame.width
    names = list(named)
    w, thr, overrides, default_w = _weights(cfg, names, cls, where, weights, threshold)
    k = min_votes if min_votes is not None else cfg.min_votes
    if k is not None and (threshold is not None or "threshold" in cfg.model_fields_set):
        raise UsageError("give a threshold or min_votes, not both (min_votes replaces the threshold)")
    if k is not None:
        voters = (w > 0).sum(0)
        short = [c for c in range(len(cls)) if voters[c] < k]
        if short:
            raise UsageError(
                f"min_votes {k}: class {cls[short[0]]} has only {plural(int(voters[short[0]]), 'source')} "
                f"with weight > 0 (sources: {len(names)})"
            )
    _refuse_duplicates(paths, allow_duplicate, notes)
    clean = build_cleaner(cfg.postprocess, cls, h, wd, where)
    regions = staple_regions(cfg.staple, cls, where)
    if kind == "weighted":  # which weight went to which source, said once
        notes.quietly()(f"weights: {weight_listing(names, default_w)}")
    for line in overrides:
        notes.quietly()(line)
    if echo is not None:
        from core.warmup import READ, precompile
        from ensemble.warmup import EXCLUSIVE, VOTE, VOTE_MASKS
        from postprocess.warmup import clean_step, output_steps
        from quality.warmup import STAPLE

        writes = output_steps(out, split)  # a writer of one image at a time: the votes go mask by mask
        per_mask = [EXCLUSIVE] if frame.exclusive else [VOTE_MASKS] if clean or any(regions) or writes else []
        precompile(
            echo,
            *([READ] if paths else []),
            VOTE,
            *per_mask,
            *writes,
            *([clean_step(clean.rules)] if clean else []),
            *([STAPLE] if any(regions) else []),
        )
    if frame.exclusive and (k is not None or threshold is not None or "threshold" in cfg.model_fields_set):
        raise UsageError(
            "exclusive: the vote is a plurality among the classes and the background; give no threshold or min_votes"
        )
    return _run(
        kind,
        named,
        frame,
        default_w,
        w,
        thr,
        k or 0,
        missing or cfg.missing,
        workers or cfg.workers,
        out,
        clean,
        regions,
        expected,
        overrides,
        notes,
        progress,
        split,
    )


def _weights(cfg, names, classes, where, weights, threshold):
    """Weights (sources × classes), thresholds per class, the lines describing the classes
    that differ from the default, and the default weights. ``weights`` and ``threshold``
    replace the settings' default only: per-class entries stay."""
    from settings.vote import (
        class_overrides,
        default_threshold,
        default_weights,
        threshold_vector,
        weight_listing,
        weight_matrix,
        with_default_threshold,
        with_default_weights,
    )

    flag_w = None
    if weights is not None:
        try:
            flag_w = [float(x) for x in weights]
        except (TypeError, ValueError):
            raise UsageError(f"weights: expected numbers, got {weights!r}", param="weights") from None
        _as_param("weights", weight_matrix, flag_w, names, classes, "weights")
    if threshold is not None:
        _as_param("threshold", threshold_vector, threshold, classes, "threshold")
    spec_w = with_default_weights(cfg.weights, flag_w)
    spec_t = with_default_threshold(cfg.threshold, threshold)
    w = weight_matrix(spec_w, names, classes, where)
    thr = threshold_vector(spec_t, classes, where)
    default_w, default_t = default_weights(spec_w, names, where), default_threshold(spec_t)
    lines = class_overrides(w, thr, default_w, default_t, names, classes)
    if lines:
        head = f"per class (default: weights {weight_listing(names, default_w)}; threshold {default_t:g}):"
        lines = [head, *(f"  {line}" for line in lines)]
    return w, thr, lines, default_w


def _as_param(param: str, check, *args):
    """``check(*args)``, its ``UsageError`` marked as about ``param``."""
    try:
        return check(*args)
    except UsageError as e:
        raise UsageError(str(e), param=param) from None


def _refuse_duplicates(paths: dict[str, str], allow: bool, note) -> None:
    """A file that would vote twice (same resolved path) is an error unless ``allow``."""
    twice = same_file_message([(f"source {n}", p) for n, p in paths.items()])
    if twice and not allow:
        raise UsageError(
            f"{twice}: each copy would vote; give it once (a larger weight counts it more) or pass allow_duplicate",
            param="allow_duplicate",
        )
    if twice:
        note(f"note: {twice}: each copy votes (allow_duplicate)")


def _frame_args(layout_args: dict) -> dict:
    args = dict(layout_args)
    return {"layout": args.pop("columns"), **args}


def _run(
    kind,
    named,
    frame,
    background,
    w,
    thr,
    min_votes,
    missing,
    workers,
    out,
    clean,
    regions,
    expected,
    overrides,
    notes,
    progress,
    write_instances=False,
) -> VoteResult:
    from ensemble.staple_classes import staple_tables
    from ensemble.vote_plan import VotePlan, align, run_plan
    from postprocess.instances import output_writer

    classes, height, width = frame.classes, frame.height, frame.width
    loaded = load_all(named, frame, notes)
    if expected is not None:
        for src in loaded:
            expected.check(src.images, src.path)
    aligned = align(loaded, missing)
    if aligned.n_missing:
        notes(f"note: {plural(aligned.n_missing, 'missing row')} counted as empty votes")
    fused, lines = staple_tables(aligned, regions, list(named), progress)
    for line in lines:
        notes.quietly()(line)
    overrides.extend(lines)
    exclusive = [float(x) for x in background] if frame.exclusive else None
    plan = VotePlan(aligned, w, thr, min_votes, clean=clean, fused=fused, exclusive=exclusive, layout=frame.layout)
    label_ = f"{kind} vote"
    preds = None
    with bar(progress, len(aligned.images), label_) as b:
        if out:
            first = aligned.sources[0]
            writer = output_writer(out, frame, lambda name: first.size(first.image_index(name)), kind, write_instances)
            rows = run_plan(plan, out, classes, workers, b, frame.layout, writer)
        else:
            rles = run_plan(plan, None, classes, workers, b)
            first = aligned.sources[0]
            preds = predictions_from_rles(
                label_, classes, aligned.images, rles, height, width, first.sizes, first.order
            )
            rows = len(rles) * len(classes)
    notes.quietly()(
        f"{label_}: {plural(len(named), 'source')}, {plural(len(aligned.images), 'image')}, "
        f"{plural(rows, 'row')} → {out or 'memory'}"
    )
    return VoteResult(
        preds,
        out,
        {n: label(n, s) for n, s in named.items()},
        list(aligned.images),
        rows,
        aligned.n_missing,
        overrides,
        clean.summary() if clean is not None else None,
        list(notes),
    )
