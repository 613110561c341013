"""The ``tune`` job: choose per class how to combine sources, from validation data, and
return the settings that apply the choice (``TuneResult.write``)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.classes import CANVAS
from core.errors import UsageError, as_name, listing, plural
from core.sources import (
    Notes,
    Progress,
    Source,
    Sources,
    bar,
    frame_of,
    is_path,
    label,
    load,
    load_all,
    named_sources,
    same_file_message,
)

__all__ = ["TuneResult", "tune"]


@dataclass
class TuneResult:
    """What ``tune`` chose.

    Attributes
    ----------
    results : list of ClassResult
        Per class: the hard vote's Dice, the best single source, the chosen combination
        and cleaning, their Dice.
    names : list of str
        The sources, in order.
    settings : dict
        A ``weighted_vote`` settings mapping applying the choice (``write()`` writes it).
    soft : SoftResult or None
        With ``maps``: per-class soft-vote thresholds and their Dice.
    soft_settings : dict or None
        With ``maps``: a ``soft_vote`` settings mapping (``write_soft()`` writes it).
    n_images : int
        Validation images (those of the ground truth).
    notes : list of str
    ground_truth : str
        The ground truth's path (or name), for ``header()``.
    """

    results: list
    names: list[str]
    settings: dict
    soft: Any = None
    soft_settings: dict | None = None
    map_names: list[str] = field(default_factory=list)
    n_images: int = 0
    notes: list[str] = field(default_factory=list)
    ground_truth: str = ""

    def header(self, path: str | os.PathLike, soft: bool = False) -> str:
        """The comment heading the settings written to ``path`` (``soft``: the soft settings):
        what they were tuned on and the command that applies them."""
        if soft:
            return (
                f"# tuned by `cli.py tune --maps` on {self.ground_truth}; apply with\n"
                f"# python cli.py soft --setting {path} --source NAME=TEST_DIR ... -o OUT.csv\n"
            )
        fused = (
            "# the classes under 'staple:' are fused by pooled STAPLE, estimated on the files given\n"
            if self.settings.get("staple")
            else ""
        )
        return (
            f"# tuned by `cli.py tune` on {self.ground_truth} ({plural(self.n_images, 'image')}); apply with\n"
            f"# python cli.py weighted --setting {path} --source NAME=TEST.csv ... -o OUT.csv\n" + fused
        )

    def report(self) -> str:
        """Per-class before/after table on the validation data."""
        from evaluation.search import report

        return report(self.results, self.names)

    def soft_report(self) -> str:
        """Per-class soft-vote Dice at 0.5 and at the tuned threshold ("" without maps)."""
        if self.soft is None:
            return ""
        classes = [as_name(r.cls, ("class", "mean")) for r in self.results]
        res = self.soft
        cw = max(len("class"), *(len(c) for c in classes)) + 2
        lines = [
            f"soft vote of {listing(self.map_names)} (equal weights):",
            f"{'class':<{cw}}{'at 0.5':>9}{'tuned':>9}  threshold",
        ]
        for c, cls in enumerate(classes):
            lines.append(f"{cls:<{cw}}{res.at_default[c]:>9.4f}{res.best[c]:>9.4f}  {res.thresholds[c]:g}")
        lines.append(f"{'mean':<{cw}}{res.at_default.mean():>9.4f}{res.best.mean():>9.4f}")
        return "\n".join(lines)

    def write(self, path: str | os.PathLike, header: str = "") -> None:
        """Write ``settings`` as YAML (atomically)."""
        from settings.loader import write_yaml

        write_yaml(path, self.settings, header)

    def write_soft(self, path: str | os.PathLike, header: str = "") -> None:
        """Write ``soft_settings`` as YAML (atomically); ``ValueError`` without maps."""
        from settings.loader import write_yaml

        if self.soft_settings is None:
            raise ValueError("no soft settings: tune was given no maps")
        write_yaml(path, self.soft_settings, header)


def tune(
    sources: Sources,
    ground_truth: Source,
    *,
    maps: Mapping[str, str | os.PathLike] | None = None,
    margin: float = 1e-4,
    levels: Sequence[float] = (0, 1, 2),
    max_seconds: float | None = None,
    missing: str = "error",
    staple: bool = False,
    area_gate: bool = False,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Choose per class how to combine the sources, from validation data.

    For every class it scores, exactly and at once, each single source and every weighted
    vote over the ``levels`` grid at every threshold that changes the result (and, with
    ``staple``, pooled STAPLE), and keeps the best only when it beats the plain hard vote by
    more than ``margin``; then, on the chosen masks, cleaning (fill holes, keep the 1 or 2
    largest components, min_size …), kept only when it beats no cleaning by more than
    ``margin``; then, with ``area_gate``, the area gate (``min_area``) likewise.

    Parameters
    ----------
    sources : mapping or sequence
        At least two validation predictions (paths, ``Predictions`` or DataFrames); the
        names are what the settings refer to.
    ground_truth : source
        The validation ground truth.
    maps : mapping, optional
        Name → folder of validation probability maps: also tunes the soft vote's
        per-class thresholds (equal weights).
    margin : float
        How much a choice must beat the default by.
    levels : sequence of float
        Weight levels of the grid search, in [0, 1e6], one positive at least.
    max_seconds : float, optional
        Time budget of the search (the best found so far is kept).
    missing : {"error", "empty"}
        A prediction row absent for a ground-truth (image, class).
    staple : bool
        Also try, per class, pooled STAPLE over every source (region ``all``, then
        ``disagreement``; ``quality.staple``'s defaults), scored like the votes; the settings
        then list the classes it wins under ``staple:``, which ``weighted`` applies by running
        the same STAPLE on the files it is given. Left out (with a note) when a source holds
        images the ground truth lacks: STAPLE pools over every image of its inputs.
    area_gate : bool
        Also try, per class, an area gate on the final masks (the cleaning rule
        ``min_area``), kept only when it beats them by more than ``margin``.
    classes, height, width : optional
        Default: the 29 hand bones on 2048².
    columns, rle_order, sizes, instances : optional
        Another task's layout, as in ``ensemble.hard_vote``.
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    TuneResult

    Raises
    ------
    UsageError
        Bad parameters (``param`` names the parameter), fewer than two sources.
    InputError, DataError
        Unreadable or invalid inputs, missing rows or maps.

    Examples
    --------
    >>> import pandas as pd
    >>> def frame(rle):
    ...     return pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": [rle]})
    >>> r = tune({"good": frame("1 2"), "bad": frame("3 2")}, frame("1 2"), classes=["x"], height=2, width=2)
    >>> r.settings["weights"]["x"]
    {'good': 1, 'bad': 0}
    """
    from evaluation.candidates import STAPLE_REGIONS
    from evaluation.scores import note_unscored
    from evaluation.search import (
        SOFT_THRESHOLDS,
        coverage,
        few_images_warning,
        soft_histograms,
        tune_cleaning,
        tune_combination,
        tune_gates,
        tune_soft,
        tuned_settings,
    )
    from settings.vote import MAX_WEIGHT

    start = time.monotonic()
    notes = Notes(echo)
    if not math.isfinite(margin) or margin < 0:
        raise UsageError("margin: must be a finite number >= 0", param="margin")
    if max_seconds is not None and not max_seconds > 0:
        raise UsageError("max_seconds: must be a number > 0", param="max_seconds")
    named = named_sources(sources)
    if len(named) < 2:
        raise UsageError("sources: tune needs at least two sources", param="sources")
    named_maps = {n: str(d) for n, d in (maps or {}).items()}
    twice = same_file_message([(f"source {n}", str(p)) for n, p in named.items() if is_path(p)])
    if twice:  # weighted would refuse the tuned settings
        raise UsageError(f"{twice}: tune each file once")
    twice = same_file_message([(f"maps {n}", d) for n, d in named_maps.items()])
    if twice:  # soft would refuse the tuned soft settings
        raise UsageError(f"{twice}: give each maps folder once")
    lv = sorted({float(x) for x in levels})
    if not all(0 <= x <= MAX_WEIGHT for x in lv) or not any(lv):
        raise UsageError(f"levels: must lie in [0, {MAX_WEIGHT:g}] with at least one positive level", param="levels")
    if echo is not None:
        from core.warmup import READ, precompile
        from ensemble.warmup import MAPS
        from evaluation.warmup import TUNE
        from quality.warmup import STAPLE

        precompile(echo, READ, TUNE, *([MAPS] if named_maps else []), *([STAPLE] if staple else []))
    frame = frame_of(
        [*named.values(), ground_truth],
        classes,
        height,
        width,
        layout=columns,
        rle_order=rle_order,
        sizes=sizes,
        instances=instances,
    )
    cls, h, w = frame.classes, frame.height, frame.width
    from ensemble.maps import MapSource

    map_sources = [MapSource(name, Path(folder)) for name, folder in named_maps.items()]
    gt = load(ground_truth, "ground truth", frame, notes)
    loaded = load_all(named, frame, notes)
    warn_of_orientation([gt, *loaded], notes)
    names = list(named)
    note_unscored(gt, loaded, notes)
    few = few_images_warning(len(gt.images), cls, names, lv)
    if few:
        notes(few)
    regions = STAPLE_REGIONS if staple else ()
    extra = [s.path for s in loaded if set(s.images) - set(gt.images)]
    if regions and extra:
        notes(
            f"note: STAPLE not tried: {extra[0]} holds images the ground truth lacks, and STAPLE pools over "
            "every image of its inputs (give the sources of the ground truth's images only)"
        )
        regions = ()
    from core.stream import ChunkDone, current_selection

    sel = current_selection()
    if sel is not None:  # a cluster run: the checks and notes above only; cluster/ spreads the searches
        from core.score import aligned_rows

        for s in loaded:  # a missing row: the whole run's message, not one class's
            aligned_rows(s, gt, missing)
        sel.images = list(gt.images)
        sel.extra.update(
            classes=cls,
            height=h,
            width=w,
            layout=frame.layout,
            names=names,
            paths=[label(n, p) for n, p in named.items()],
            ground_truth=label("ground truth", ground_truth),
            maps=named_maps,
            inputs=(gt, loaded),
            staple=regions,
        )
        raise ChunkDone
    with bar(progress, len(gt.images), "coverage") as b:
        cov = coverage(gt, loaded, names, missing, b)
    deadline = start + max_seconds if max_seconds else None
    results = tune_combination(cov, cls, margin, lv, deadline, regions)
    with bar(progress, len(cls), "cleaning", "class") as b:
        tune_cleaning(results, gt, loaded, margin, missing=missing, deadline=deadline, progress=b)
    if area_gate:
        with bar(progress, len(cls), "area gates", "class") as b:
            tune_gates(results, gt, loaded, margin, missing, deadline, b)
    soft = soft_settings = None
    if map_sources:
        with bar(progress, len(gt.images), "soft histograms") as b:
            hist = soft_histograms(gt, map_sources, SOFT_THRESHOLDS, b)
        soft = tune_soft(hist, gt, SOFT_THRESHOLDS, margin)
        soft_settings = {
            "CLASSES": list(cls),
            "prob_maps": [{"path": f, "name": n} for n, f in named_maps.items()],
            "threshold": {
                "default": 0.5,
                **{c: float(t) for c, t in zip(cls, soft.thresholds, strict=True) if t != 0.5},
            },
        }
        if (h, w) != (CANVAS, CANVAS):
            soft_settings.update(height=h, width=w)
    settings = tuned_settings(results, names, [label(n, p) for n, p in named.items()], cls, h, w, frame.layout)
    return TuneResult(
        results,
        names,
        settings,
        soft,
        soft_settings,
        list(named_maps),
        len(gt.images),
        list(notes),
        label("ground truth", ground_truth),
    )


def warn_of_orientation(sets, note: Callable[[str], None]) -> None:
    """A warning for each prediction set whose runs look like those of the other RLE order
    (``postprocess.orientation``): components, holes and the cleaning tuned on them would be
    those of scrambled masks."""
    from postprocess.orientation import orientation_warning

    for preds in sets:
        turned = orientation_warning(preds)
        if turned is not None:
            note(f"warning: {turned}")
