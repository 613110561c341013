"""``StapleResult``: what ``quality.staple.staple`` estimated and fused, its estimates as rows,
a CSV or a DataFrame, its fused masks, and a per-class summary for a terminal (``table``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from core.codec import format_rle
from core.errors import plural
from quality._sources import atomic_text, csv_field, number

__all__ = ["StapleResult"]


@dataclass
class StapleResult:
    """What ``staple`` estimated and fused.

    Estimates are arrays indexed ``[group, source, class]``: one group (``scope='pooled'``) or
    one per image in ``images`` order (``scope='image'``).

    Attributes
    ----------
    method, scope, region, prior_mode : str
        The parameters the result was computed with (``prior_mode``: ``prior``'s value).
    names : list of str
        The sources, in order (bit ``j`` of a pattern is ``names[j]``).
    classes : tuple of str
    images : list of str
        The images, in the first source's order (the fused CSV's row order).
    height, width : int
    sensitivity, specificity : ndarray or None
        STAPLE's estimates, ``(G, R, C)`` float64 (``None`` for SIMPLE).
    prior : ndarray or None
        STAPLE's prior used last per group and class, ``(G, C)`` (NaN where no EM ran).
    weights, dice : ndarray or None
        SIMPLE's final weights (0 for a dropped source) and each source's Dice against the
        final consensus, ``(G, R, C)`` (``None`` for STAPLE).
    kept : ndarray or None
        SIMPLE: whether each source was kept, ``(G, R, C)`` bool.
    iterations : ndarray
        ``(G, C)`` int: EM iterations (STAPLE) or selection rounds (SIMPLE).
    output : str or None
        The fused CSV written, when ``output`` was given.
    masks : list of list of ndarray or None
        The fused masks as canonical runs, ``masks[image][class]``, when no ``output`` was given
        (``None`` with ``fuse=False``).
    rows : int
        Rows written (or held; 0 with ``fuse=False``).
    n_missing : int
        Rows absent from a source, read as empty masks (``missing='empty'``).
    notes : list of str
        Notes for the caller (none yet; the command line may add its own).
    """

    method: str
    scope: str
    region: str
    prior_mode: str
    names: list[str]
    classes: tuple[str, ...]
    images: list[str]
    height: int
    width: int
    iterations: np.ndarray
    sensitivity: np.ndarray | None = None
    specificity: np.ndarray | None = None
    prior: np.ndarray | None = None
    weights: np.ndarray | None = None
    dice: np.ndarray | None = None
    kept: np.ndarray | None = None
    output: str | None = None
    masks: list[list[np.ndarray]] | None = None
    rows: int = 0
    n_missing: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def columns(self) -> tuple[str, ...]:
        """The estimates' columns: ``[image_name,]source,class`` then
        ``sensitivity,specificity,iterations`` (STAPLE) or ``weight,dice,kept,iterations`` (SIMPLE)."""
        head = ("image_name",) if self.scope == "image" else ()
        tail = ("sensitivity", "specificity") if self.method == "staple" else ("weight", "dice", "kept")
        return (*head, "source", "class", *tail, "iterations")

    def estimate_rows(self) -> list[tuple]:
        """The estimates as tuples in ``columns`` order: groups (images) in order, then classes
        in class order, then sources in order. ``kept`` is 1 or 0."""
        out = []
        for g in range(self.iterations.shape[0]):
            head = (self.images[g],) if self.scope == "image" else ()
            for c, cls in enumerate(self.classes):
                it = int(self.iterations[g, c])
                for j, name in enumerate(self.names):
                    if self.method == "staple":
                        values = (float(self.sensitivity[g, j, c]), float(self.specificity[g, j, c]))
                    else:
                        values = (float(self.weights[g, j, c]), float(self.dice[g, j, c]), int(self.kept[g, j, c]))
                    out.append((*head, name, cls, *values, it))
        return out

    def estimates_frame(self):
        """The estimates as a pandas DataFrame (``columns``, ``estimate_rows`` order)."""
        import pandas as pd

        return pd.DataFrame(self.estimate_rows(), columns=list(self.columns))

    def write_estimates(self, path: str | os.PathLike) -> int:
        """Write the estimates CSV (``columns``; floats as the shortest text that reads back
        exactly) atomically; returns the rows written."""
        rows = self.estimate_rows()
        with atomic_text(path) as fh:
            fh.write(",".join(self.columns) + "\n")
            for row in rows:
                fh.write(",".join(number(v) if isinstance(v, float) else csv_field(str(v)) for v in row) + "\n")
        return len(rows)

    def runs(self, image: int | str, cls: int | str) -> np.ndarray:
        """The fused mask of (image, class), by name or position, as canonical runs (results kept
        in memory only)."""
        if self.masks is None:
            raise ValueError(f"the fused masks were written to {self.output}, not kept in memory")
        i = self.images.index(image) if isinstance(image, str) else image
        c = self.classes.index(cls) if isinstance(cls, str) else cls
        return self.masks[i][c]

    def to_frame(self):
        """The fused masks kept in memory as a DataFrame ``image_name,class,rle`` (canonical order)."""
        import pandas as pd

        if self.masks is None:
            raise ValueError(f"the fused masks were written to {self.output}, not kept in memory")
        data = [(img, cls, format_rle(r)) for img, m in zip(self.images, self.masks) for cls, r in zip(self.classes, m)]
        return pd.DataFrame(data, columns=["image_name", "class", "rle"])

    def table(self) -> str:
        """Per class, each source's sensitivity (STAPLE) or weight (SIMPLE, 0 for a dropped
        source, the dropped sources named), then the mean over classes: text for a terminal.
        With ``scope='image'`` the values are means over the images, the iterations the most
        any image took, and a dropped source is named with the number of images it was
        dropped in."""
        staple = self.method == "staple"
        values = (self.sensitivity if staple else self.weights).mean(0)  # (sources, classes)
        groups = self.iterations.shape[0]
        per_image = self.scope == "image"
        cw = min(max([len("class"), *map(len, self.classes)]), 20)
        widths = [min(max(len(n), 7), 14) for n in self.names]
        what = (
            f"sensitivity per source (STAPLE, {self.scope}, region {self.region}, prior {self.prior_mode})"
            if staple
            else f"weight per source (SIMPLE, {self.scope}; 0: dropped)"
        )
        if per_image:
            what += f", mean over {plural(groups, 'image')}"
        it_label = "iterations" if staple else "rounds"
        head = f"{'class':<{cw}} " + " ".join(f"{n[:w]:>{w}}" for n, w in zip(self.names, widths)) + f" {it_label:>10}"
        lines = [what, head + ("" if staple else "  dropped")]
        for c, cls in enumerate(self.classes):
            row = f"{cls[:cw]:<{cw}} " + " ".join(f"{values[j, c]:>{w}.4f}" for j, w in enumerate(widths))
            row += f" {int(self.iterations[:, c].max()):>10}"
            if not staple:
                dropped = (~self.kept[:, :, c]).sum(0)
                said = [n if not per_image else f"{n} ({int(k)}/{groups})" for n, k in zip(self.names, dropped) if k]
                row += "  " + (", ".join(said) or "-")
            lines.append(row)
        mean = values.mean(1)
        lines.append(f"{'mean':<{cw}} " + " ".join(f"{m:>{w}.4f}" for m, w in zip(mean, widths)))
        return "\n".join(lines)
