"""Dice (and IoU) scores of several predictions against one ground truth, and their reports."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.errors import UsageError, as_name, listing, plural
from core.imageset import ImageExpectation
from core.predictions import Predictions
from core.score import aligned_rows, score_matrices
from core.sources import (
    Notes,
    Progress,
    Source,
    Sources,
    bar,
    frame_of,
    is_path,
    load,
    load_all,
    named_sources,
    same_file_message,
)
from core.stream import ChunkDone, current_selection, in_threads

TABLE_WIDTH = 100
"""Columns the ``evaluate`` table fits in."""


def shorten(name: str, size: int) -> str:
    """``name`` cut to ``size`` characters by an ellipsis in the middle, where file stems
    of related models usually share the least (``unet_…_fold3``)."""
    if len(name) <= size:
        return name
    keep = max(size - 1, 2)
    return name[: (keep + 1) // 2] + "…" + name[len(name) - keep // 2 :]


def _labels(names: list[str], size: int) -> list[str]:
    """Column labels of at most ``size`` characters, unique (numbered where shortening
    made two names equal)."""
    labels = [shorten(n, size) for n in names]
    if len(set(labels)) < len(labels):
        labels = [n if len(n) <= size else shorten(f"{k + 1}:{n}", size) for k, n in enumerate(names)]
    return labels


@dataclass
class Scores:
    """Dice per (image, class) for each named source, on the ground truth's images; IoU
    too (``iou``, from the same intersections) where it was computed. The reports show
    Dice only unless asked for IoU (``iou=True``)."""

    names: list[str]
    paths: list[str]
    classes: tuple[str, ...]
    n_images: int
    per_image: np.ndarray  # (n_sources, n_images, n_classes)
    notes: list[str] = field(default_factory=list)
    iou: np.ndarray | None = None  # (n_sources, n_images, n_classes), like per_image

    def write(self, path: str | os.PathLike, iou: bool = False) -> None:
        """Write the scores file (``csv(iou)``) atomically."""
        from core.atomic import atomic_write_text

        atomic_write_text(path, self.csv(iou))

    @property
    def per_class(self) -> np.ndarray:
        """(n_sources, n_classes) mean Dice over images."""
        return self.per_image.mean(1) if self.n_images else np.full(self.per_image.shape[::2], np.nan)

    @property
    def overall(self) -> np.ndarray:
        """(n_sources,) mean over classes of the per-class means."""
        return self.per_class.mean(1)

    @property
    def iou_per_class(self) -> np.ndarray:
        """(n_sources, n_classes) mean IoU over images."""
        per_image = self._iou()
        return per_image.mean(1) if self.n_images else np.full(per_image.shape[::2], np.nan)

    @property
    def iou_overall(self) -> np.ndarray:
        """(n_sources,) mean over classes of the per-class mean IoU."""
        return self.iou_per_class.mean(1)

    def _iou(self) -> np.ndarray:
        if self.iou is None:
            raise ValueError("iou: these scores hold no IoU (computed by evaluate and score)")
        return self.iou

    def table(self, width: int = TABLE_WIDTH, iou: bool = False) -> str:
        """Classes × sources, the best source of each class marked with ``*``, in at most
        ``width`` columns: long source names are shortened in the middle (a legend gives
        the full names) and many sources are split into several blocks of columns. With
        ``iou``, a second such table of IoU follows, each headed by its score's name."""
        classes = [as_name(c, ("class", "mean")) for c in self.classes]
        names = [as_name(n) for n in self.names]
        cw = max(len("class"), *(len(c) for c in classes)) + 2
        room = max(width - cw, 10)
        col = min(max(10, *(len(n) + 2 for n in names)), max(10, room // max(len(names), 1)))
        labels = _labels(names, col - 2)
        lines = self._grid(self.per_class, self.overall, classes, cw, room, col, labels)
        if iou:
            lines = [
                "Dice",
                *lines,
                "",
                "IoU",
                *self._grid(self.iou_per_class, self.iou_overall, classes, cw, room, col, labels),
            ]
        lines.append(f"({plural(self.n_images, 'image')}; * marks the best source per row)")
        lines += [f"  {short} = {name}" for short, name in zip(labels, names, strict=True) if short != name]
        return "\n".join(lines)

    def _grid(
        self,
        pc: np.ndarray,
        overall: np.ndarray,
        classes: list[str],
        cw: int,
        room: int,
        col: int,
        labels: list[str],
    ) -> list[str]:
        """The lines of one table: per-class means ``pc`` (sources × classes), then ``overall``."""
        rows = [*classes, "mean"]
        values = [pc[:, c] if c < len(self.classes) else overall for c in range(len(rows))]
        best = [int(np.argmax(v)) if len(self.names) > 1 else -1 for v in values]
        per_block = max(1, room // col)
        lines: list[str] = []
        for start in range(0, max(len(self.names), 1), per_block):
            block = range(start, min(start + per_block, len(self.names)))
            if lines:
                lines.append("")
            lines.append(f"{'class':<{cw}}" + "".join(f"{labels[s]:>{col}}" for s in block))
            for name, vals, b in zip(rows, values, best, strict=True):
                cells = "".join(f"{vals[s]:>{col - 1}.4f}{'*' if s == b else ' '}" for s in block)
                lines.append(f"{name:<{cw}}{cells}")
        return lines

    def csv(self, iou: bool = False) -> str:
        """``source,class,dice`` rows: the scores file ``select --best-from`` reads; with
        ``iou``, ``source,class,dice,iou``."""
        rows = ["source,class,dice,iou" if iou else "source,class,dice"]
        ious = self.iou_per_class if iou else None
        for s, name in enumerate(self.names):
            for c, cls in enumerate(self.classes):
                extra = f",{ious[s, c]:.6f}" if ious is not None else ""
                rows.append(f"{name},{cls},{self.per_class[s, c]:.6f}{extra}")
        return "\n".join(rows) + "\n"

    def json(self, iou: bool = False) -> str:
        """``{path: {"mean": m, "per_class": {class: dice}}}``; with ``iou``, each path also
        holds ``"iou_mean"`` and ``"iou_per_class"``."""
        out = {}
        ipc = self.iou_per_class if iou else None
        for s, p in enumerate(self.paths):
            out[p] = {
                "mean": float(self.overall[s]),
                "per_class": {cls: float(self.per_class[s, c]) for c, cls in enumerate(self.classes)},
            }
            if iou:
                out[p]["iou_mean"] = float(self.iou_overall[s])
                out[p]["iou_per_class"] = {cls: float(ipc[s, c]) for c, cls in enumerate(self.classes)}
        return json.dumps(out, indent=2)


def evaluate(
    predictions: Sources,
    ground_truth: Source,
    *,
    missing: str = "error",
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    output: str | os.PathLike | None = None,
    expected_images: ImageExpectation | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    iou: bool = False,
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
) -> Scores:
    """Dice (and IoU) of each prediction against the ground truth, computed on runs.

    Dice per (image, class) is ``(2|A∩B| + 1e-4) / (|A| + |B| + 1e-4)`` (two empty masks
    score 1); per class the mean over the ground truth's images; overall the mean over
    classes. IoU per (image, class) is ``(|A∩B| + 1e-4) / (|A∪B| + 1e-4)``, from the same
    intersections, averaged the same way. Images a prediction holds beyond the ground
    truth are not scored (a note says so).

    Parameters
    ----------
    predictions : mapping or sequence
        Name → source, or sources named by file stem (``source1`` … in memory); a source
        is a CSV path, a ``Predictions`` or a DataFrame ``image_name,class,rle``.
    ground_truth : source or folder
        A source as above, or a folder of per-image polygon JSON files (the images are
        then those of the first prediction).
    missing : {"error", "empty"}
        A prediction row absent for a ground-truth (image, class): an error, or scored as empty.
    classes, height, width : optional
        Class list (default: the 29 hand bones) and mask size (default 2048²).
    output : path, optional
        Also write the scores file ``source,class,dice`` (atomic).
    iou : bool
        Write ``source,class,dice,iou`` to ``output`` (the scores hold IoU either way); on by
        itself for exclusive classes.
    columns, rle_order, sizes, instances, exclusive : optional
        Another task's layout, as in ``ensemble.hard_vote``; the ground truth may also be a
        folder of PNG label maps.
    expected_images : ImageExpectation, optional
        The images each prediction must hold.
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    Scores
        ``per_image``, ``per_class``, ``overall``; ``iou``, ``iou_per_class``,
        ``iou_overall``; ``table()``, ``csv()``, ``json()``, ``write()`` (IoU with ``iou=True``).

    Raises
    ------
    UsageError, InputError, DataError
        (``ValueError``) bad parameters, unreadable or invalid inputs, missing rows.

    Examples
    --------
    >>> import pandas as pd
    >>> gt = pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": ["1 2"]})
    >>> p = pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": ["2 1"]})
    >>> s = evaluate({"p": p, "same": gt}, gt, classes=["x"], height=2, width=2)
    >>> [round(float(d), 4) for d in s.overall], [round(float(j), 4) for j in s.iou_overall]
    ([0.6667, 1.0], [0.5, 1.0])
    """
    from core.atomic import check_outputs

    notes = Notes(echo)
    named = named_sources(predictions, "predictions")
    if not named:
        raise UsageError("predictions: no predictions to evaluate", param="predictions")
    paths = [(f"source {n}", str(p)) for n, p in named.items() if is_path(p)]
    twice = same_file_message(paths)
    if twice:
        raise UsageError(twice)
    folder = is_path(ground_truth) and os.path.isdir(ground_truth) and _polygon_folder(ground_truth)
    check_outputs(
        [("output", output)],
        [
            *([] if folder or not is_path(ground_truth) else [("the ground truth", ground_truth)]),
            *(("an input", p) for _, p in paths),
        ],
        [("the ground-truth folder", ground_truth)] if folder else [],
    )
    frame = frame_of(
        [*named.values(), ground_truth],
        classes,
        height,
        width,
        layout=columns,
        rle_order=rle_order,
        sizes=sizes,
        instances=instances,
        exclusive=exclusive,
    )
    cls, h, w = frame.classes, frame.height, frame.width
    iou = iou or frame.exclusive
    if echo is not None:
        from core.warmup import READ, SCORE, precompile

        precompile(echo, READ, SCORE)
    loaded = load_all(named, frame, notes)
    if expected_images is not None:
        for p in loaded:
            expected_images.check(p.images, p.path)
    if folder:
        from core import workercache
        from evaluation.polygons import read_gt_json

        def read():
            return read_gt_json(ground_truth, loaded[0].images, cls, h, w)

        gt = (
            read()
            if not workercache.enabled()
            else workercache.cached(  # a cluster worker's cache
                "gt-json", (*workercache.tree_key(ground_truth), tuple(loaded[0].images), cls, h, w), read
            )
        )
    else:
        gt = load(ground_truth, "ground truth", frame, notes)
    note_unscored(gt, loaded, notes)
    with bar(progress, len(loaded), "evaluate", "file") as b:
        scores = score(gt, loaded, list(named), missing, b)
    scores.notes = list(notes)
    if output is not None:
        scores.write(output, iou)
        notes.quietly()(f"scores → {output}")
    return scores


def _polygon_folder(folder) -> bool:
    """Whether a ground-truth folder holds polygon JSON files (else PNG label maps)."""
    from pathlib import Path

    return any(p.suffix.lower() == ".json" for p in Path(folder).rglob("*"))


def note_unscored(gt: Predictions, preds: Sequence[Predictions], note: Callable[[str], None]) -> None:
    """Say when a prediction holds images the ground truth does not: they are not scored,
    and a score over part of a prediction must not pass for a score of all of it."""
    known = set(gt.images)
    for p in preds:
        extra = [name for name in p.images if name not in known]
        if extra:
            verb = "is" if len(extra) == 1 else "are"
            note(
                f"note: {p.path}: {len(extra):,} of its {plural(len(p.images), 'image')} {verb} not in the ground "
                f"truth and not scored (first: {listing(extra[:3])}); scores cover the "
                f"{plural(len(gt.images), 'ground-truth image')}"
            )


def score(
    gt: Predictions, preds: Sequence[Predictions], names: Sequence[str], missing: str = "error", progress=None
) -> Scores:
    """Score every prediction against ``gt`` (Dice and IoU on runs, ε = 1e-4)."""
    sel = current_selection()
    if sel is not None:  # a cluster chunk: the ground truth's images [lo, hi) only
        from core.subset import take_images

        sel.images = list(gt.images)
        sel.extra.update(names=list(names), paths=[p.path for p in preds], classes=gt.classes, inputs=(gt, preds))
        sel.extra["per_image"] = None
        for p in preds:  # a missing row fails every chunk with the whole run's message (first one, count)
            aligned_rows(p, gt, missing)
        if sel.lo < sel.hi and preds:
            part = take_images(gt, gt.images[sel.lo : sel.hi])
            both = [score_matrices(p, part, missing) for p in preds]
            sel.extra["per_image"] = np.stack([d for d, _ in both])
            sel.extra["per_image_iou"] = np.stack([j for _, j in both])
        raise ChunkDone
    dice, iou = [], []
    with in_threads(lambda k: score_matrices(preds[k], gt, missing), len(preds)) as results:
        for d, j in results:
            dice.append(d)
            iou.append(j)
            if progress is not None:
                progress.update(1)
    empty = np.zeros((0, len(gt.images), len(gt.classes)))
    return Scores(
        list(names),
        [p.path for p in preds],
        gt.classes,
        len(gt.images),
        np.stack(dice) if dice else empty,
        iou=np.stack(iou) if iou else empty.copy(),
    )
