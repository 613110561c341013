"""Dice scores of several predictions against one ground truth, and their reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.predictions import Predictions
from core.score import dice_matrix


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

    def table(self) -> str:
        """Classes × sources, the best source of each class marked with ``*``."""
        pc = self.per_class
        width = max(10, *(len(n) + 2 for n in self.names))
        cw = max(len("class"), *(len(c) for c in self.classes)) + 2
        lines = [f"{'class':<{cw}}" + "".join(f"{n:>{width}}" for n in self.names)]
        for c, cls in enumerate([*self.classes, "mean"]):
            vals = pc[:, c] if c < len(self.classes) else self.overall
            best = int(np.argmax(vals)) if len(self.names) > 1 else -1
            cells = "".join(f"{v:>{width - 1}.4f}{'*' if s == best else ' '}" for s, v in enumerate(vals))
            lines.append(f"{cls:<{cw}}{cells}")
        lines.append(f"({self.n_images} images; * marks the best source per row)")
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
