"""Dice scores of several predictions against one ground truth, and their reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import plural
from core.predictions import Predictions
from core.score import dice_matrix

TABLE_WIDTH = 100
"""Columns the ``evaluate`` table fits in."""


def shorten(name: str, size: int) -> str:
    """``name`` cut to ``size`` characters by an ellipsis in the middle, where file stems
    of related models usually share the least (``unet_…_fold3``)."""
    if len(name) <= size:
        return name
    keep = max(size - 1, 2)
    return name[:(keep + 1) // 2] + "…" + name[len(name) - keep // 2:]


def _labels(names: list[str], size: int) -> list[str]:
    """Column labels of at most ``size`` characters, unique (numbered where shortening
    made two names equal)."""
    labels = [shorten(n, size) for n in names]
    if len(set(labels)) < len(labels):
        labels = [n if len(n) <= size else shorten(f"{k + 1}:{n}", size) for k, n in enumerate(names)]
    return labels


@dataclass
class Scores:
    """Dice per (image, class) for each named source, on the ground truth's images."""

    names: list[str]
    paths: list[str]
    classes: tuple[str, ...]
    n_images: int
    per_image: np.ndarray  # (n_sources, n_images, n_classes)

    @property
    def per_class(self) -> np.ndarray:
        """(n_sources, n_classes) mean Dice over images."""
        return self.per_image.mean(1) if self.n_images else np.full(self.per_image.shape[::2], np.nan)

    @property
    def overall(self) -> np.ndarray:
        """(n_sources,) mean over classes of the per-class means."""
        return self.per_class.mean(1)

    def table(self, width: int = TABLE_WIDTH) -> str:
        """Classes × sources, the best source of each class marked with ``*``, in at most
        ``width`` columns: long source names are shortened in the middle (a legend gives
        the full names) and many sources are split into several blocks of columns."""
        pc = self.per_class
        cw = max(len("class"), *(len(c) for c in self.classes)) + 2
        room = max(width - cw, 10)
        col = min(max(10, *(len(n) + 2 for n in self.names)), max(10, room // max(len(self.names), 1)))
        labels = _labels(self.names, col - 2)
        rows = [*self.classes, "mean"]
        values = [pc[:, c] if c < len(self.classes) else self.overall for c in range(len(rows))]
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
        lines.append(f"({plural(self.n_images, 'image')}; * marks the best source per row)")
        lines += [f"  {short} = {name}" for short, name in zip(labels, self.names, strict=True) if short != name]
        return "\n".join(lines)

    def csv(self) -> str:
        """``source,class,dice`` rows: the scores file ``select --best-from`` reads."""
        rows = ["source,class,dice"]
        for s, name in enumerate(self.names):
            rows += [f"{name},{cls},{self.per_class[s, c]:.6f}" for c, cls in enumerate(self.classes)]
        return "\n".join(rows) + "\n"

    def json(self) -> str:
        """``{path: {"mean": m, "per_class": {class: dice}}}``."""
        out = {p: {"mean": float(self.overall[s]),
                   "per_class": {cls: float(self.per_class[s, c]) for c, cls in enumerate(self.classes)}}
               for s, p in enumerate(self.paths)}
        return json.dumps(out, indent=2)


def evaluate(gt: Predictions, preds: Sequence[Predictions], names: Sequence[str],
             missing: str = "error", progress=None) -> Scores:
    """Score every prediction against ``gt`` (Dice on runs, ε = 1e-4)."""
    mats = []
    for p in preds:
        mats.append(dice_matrix(p, gt, missing))
        if progress is not None:
            progress.update(1)
    per_image = np.stack(mats) if mats else np.zeros((0, len(gt.images), len(gt.classes)))
    return Scores(list(names), [p.path for p in preds], gt.classes, len(gt.images), per_image)
