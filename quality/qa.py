"""Per-mask quality flags of one prediction set, on runs: ``qa_flags`` → ``QAReport``.

Three flags, each a row ``image_name,class,flag,value``:

- ``fragments``: a mask of more than one connected component (8-connectivity by default);
  value: the number of components.
- ``missing``: an empty mask of a class that is non-empty in at least 95% of the file's
  images; value: that share.
- ``area``: a non-empty mask whose area lies more than 5 scaled MADs from the median of the
  class's non-empty areas; value: the robust z-score ``(area - median) / spread``.

Components are counted on runs by ``postprocess.connected.component_areas`` (a union-find
over row segments that touch in adjacent rows); nothing is dense.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core import Predictions
from core.errors import UsageError
from core.runs import area
from postprocess.connected import component_areas
from quality._sources import Source, atomic_text, bar, csv_field, is_path, load, number

__all__ = ["FLAGS", "MAD_SCALE", "MEAN_AD_SCALE", "ClassSummary", "Flag", "QAReport", "qa_flags", "write_flags"]

FLAGS = ("fragments", "missing", "area")
"""The flags, in the order a mask's rows are written."""

MAD_SCALE = 1.4826
"""The median absolute deviation times this estimates a normal distribution's std."""

MEAN_AD_SCALE = math.sqrt(math.pi / 2)
"""The mean absolute deviation (from the median) times this (1.2533…) estimates the std: the
spread used when the MAD is 0 (Iglewicz & Hoaglin's modified z-score)."""


@dataclass(frozen=True)
class Flag:
    """One flagged mask: ``flag`` is one of ``FLAGS``; ``value`` the component count
    (``fragments``), the class's non-empty share (``missing``) or the robust z-score (``area``)."""

    image: str
    cls: str
    flag: str
    value: float


@dataclass(frozen=True)
class ClassSummary:
    """One class over the file: ``non_empty`` of ``images`` masks; the median and spread of the
    non-empty areas (``spread_rule``: ``"mad"`` for 1.4826 × MAD, ``"mean_ad"`` for
    1.2533 × mean absolute deviation when the MAD is 0, ``"none"`` when both are 0 or no mask
    is non-empty: no area flags); and the number of masks flagged by each flag."""

    cls: str
    images: int
    non_empty: int
    median_area: float
    spread: float
    spread_rule: str
    fragments: int
    missing: int
    area: int

    @property
    def share(self) -> float:
        """The share of images where the class is non-empty."""
        return self.non_empty / self.images if self.images else float("nan")


@dataclass
class QAReport:
    """The flags of one prediction set and a summary per class.

    Attributes
    ----------
    path : str
        The prediction set (its file, or the name of an in-memory set).
    images : list of str
    classes : tuple of str
    flags : list of Flag
        Images in file order, classes in class order, flags in ``FLAGS`` order.
    summary : list of ClassSummary
        One per class, in class order.
    connectivity, min_share, max_deviation
        The parameters used.
    """

    path: str
    images: list[str]
    classes: tuple[str, ...]
    flags: list[Flag]
    summary: list[ClassSummary]
    connectivity: int = 8
    min_share: float = 0.95
    max_deviation: float = 5.0
    notes: list[str] = field(default_factory=list)

    def frame(self):
        """The flags as a pandas DataFrame ``image_name,class,flag,value``."""
        import pandas as pd

        return pd.DataFrame(
            [(f.image, f.cls, f.flag, f.value) for f in self.flags], columns=["image_name", "class", "flag", "value"]
        )

    def summary_frame(self):
        """The per-class summary as a pandas DataFrame (one row per class)."""
        import pandas as pd

        cols = ["class", "images", "non_empty", "share", "median_area", "spread", "spread_rule", *FLAGS]
        rows = [
            (s.cls, s.images, s.non_empty, s.share, s.median_area, s.spread, s.spread_rule)
            + tuple(getattr(s, f) for f in FLAGS)
            for s in self.summary
        ]
        return pd.DataFrame(rows, columns=cols)

    def table(self) -> str:
        """The summary as text: one line per class that has a flag, then the totals."""
        lines = [f"{'class':<14} {'non-empty':>10} {'median area':>12} {'fragments':>10} {'missing':>8} {'area':>5}"]
        for s in self.summary:
            if s.fragments or s.missing or s.area:
                lines.append(
                    f"{s.cls[:14]:<14} {s.non_empty:>4}/{s.images:<5} {s.median_area:>12.0f} "
                    f"{s.fragments:>10} {s.missing:>8} {s.area:>5}"
                )
        totals = {f: sum(getattr(s, f) for s in self.summary) for f in FLAGS}
        lines.append(f"{len(self.flags)} flags: " + ", ".join(f"{n} {f}" for f, n in totals.items()))
        return "\n".join(lines)

    def write(self, path: str | os.PathLike) -> int:
        """Write the flags CSV atomically (``write_flags``); returns the rows written."""
        return write_flags(self.flags, path)


def write_flags(flags: Sequence[Flag] | Mapping[str, Sequence[Flag]], path: str | os.PathLike) -> int:
    """Write flags as a CSV ``image_name,class,flag,value`` atomically (a temporary file beside
    ``path``, renamed when complete); component counts are written as integers, other values
    as the shortest text that reads back exactly. Returns the rows written.

    Flags of several prediction sets, given as a mapping ``name → flags``, are written in the
    mapping's order with a first column ``source`` (the name)."""
    named = flags.items() if isinstance(flags, Mapping) else [(None, flags)]
    rows = 0
    with atomic_text(path) as fh:
        fh.write(("source," if isinstance(flags, Mapping) else "") + "image_name,class,flag,value\n")
        for name, group in named:
            head = "" if name is None else csv_field(str(name)) + ","
            for f in group:
                value = str(int(f.value)) if f.flag == "fragments" else number(f.value)
                fh.write(f"{head}{csv_field(f.image)},{csv_field(f.cls)},{f.flag},{value}\n")
                rows += 1
    return rows


def qa_flags(
    predictions: Source,
    *,
    connectivity: int = 8,
    min_share: float = 0.95,
    max_deviation: float = 5.0,
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    echo: Callable[[str], None] | None = None,
    progress: Callable | None = None,
) -> QAReport:
    """Flag suspicious masks of one prediction set: fragmented, missing, or of an outlying area.

    Parameters
    ----------
    predictions : path, Predictions or DataFrame
        The prediction set (``image_name,class,rle``). A row absent from the file is read as
        an empty mask.
    connectivity : {8, 4}
        Pixels touching by a corner are connected (8) or not (4).
    min_share : float
        ``missing`` flags the empty masks of a class that is non-empty in at least this share
        of the images (0 < ``min_share`` <= 1; default 0.95).
    max_deviation : float
        ``area`` flags non-empty masks whose area is more than this many spreads from the
        class median (> 0; default 5).
    classes, height, width : optional
        Class list and mask size for a path (default: the 29 hand-bone classes, 2048²).
    echo : callable, optional
        Receives one-line messages: the numba compilation of a cold cache (``core.warmup``).
    progress : callable, optional
        ``progress(total=, desc=, unit=)`` → a context manager with ``update(n)``.

    Returns
    -------
    QAReport

    Raises
    ------
    UsageError
        A bad parameter (named).
    InputError
        An unreadable or invalid file.

    Notes
    -----
    The spread of a class's non-empty areas is ``1.4826 × MAD`` (MAD: the median absolute
    deviation from the median). When the MAD is 0 — at least half the areas equal the
    median — it is ``1.2533 × the mean absolute deviation from the median``; when that is 0
    too (all areas equal, or one non-empty mask) the class gets no area flags. A mask is
    flagged when ``|area - median| > max_deviation × spread``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [(f"i{k}.png", "x", "1 2 7 2" if k == 0 else "1 3") for k in range(4)]
    >>> rows.append(("i4.png", "x", ""))
    >>> frame = pd.DataFrame(rows, columns=["image_name", "class", "rle"])
    >>> r = qa_flags(frame, classes=["x"], height=3, width=3, min_share=0.8)
    >>> [(f.image, f.flag, f.value) for f in r.flags]
    [('i0.png', 'fragments', 2), ('i4.png', 'missing', 0.8)]
    """
    if connectivity not in (4, 8) or isinstance(connectivity, bool):
        raise UsageError(f"connectivity: expected 4 or 8, got {connectivity!r}", param="connectivity")
    min_share = _positive("min_share", min_share, upper=1.0)
    max_deviation = _positive("max_deviation", max_deviation)
    if echo is not None:
        from core.warmup import READ, precompile
        from quality.warmup import QA

        precompile(echo, *([READ] if is_path(predictions) else []), QA)
    if hasattr(predictions, "columns") and not isinstance(predictions, Predictions):
        from core.classes import CANVAS

        predictions = Predictions.from_frame(predictions, classes, height or CANVAS, width or CANVAS)
    preds = load([predictions], classes, height, width)[0]
    n_images, n_classes = len(preds.images), len(preds.classes)
    areas = np.zeros((n_images, n_classes), np.int64)
    parts = np.zeros((n_images, n_classes), np.int64)
    with bar(progress, n_images, "qa") as b:
        for i in range(n_images):
            for c in range(n_classes):
                runs = preds.row_runs(int(preds.rows[i, c]))
                if len(runs):
                    areas[i, c] = area(runs)
                    parts[i, c] = len(component_areas(runs, preds.grid(i)[1], connectivity))  # its own grid
            b.update(1)
    marks = np.zeros((n_images, n_classes, len(FLAGS)), bool)
    values = np.zeros((n_images, n_classes, len(FLAGS)))
    marks[:, :, 0] = parts > 1
    values[:, :, 0] = parts
    summary = []
    for c, cls in enumerate(preds.classes):
        non_empty = areas[:, c] > 0
        n_non_empty = int(non_empty.sum())
        share = n_non_empty / n_images if n_images else 0.0
        if n_images and share >= min_share:
            marks[:, c, 1] = ~non_empty
            values[:, c, 1] = share
        median, spread, rule = _spread(areas[non_empty, c])
        if rule != "none":
            z = (areas[:, c] - median) / spread
            marks[:, c, 2] = non_empty & (np.abs(areas[:, c] - median) > max_deviation * spread)
            values[:, c, 2] = z
        summary.append(ClassSummary(cls, n_images, n_non_empty, median, spread, rule, *marks[:, c].sum(0).tolist()))
    flags = [
        Flag(preds.images[i], preds.classes[c], FLAGS[k], int(values[i, c, k]) if k == 0 else float(values[i, c, k]))
        for i, c, k in zip(*np.nonzero(marks))
    ]
    images = list(preds.images)
    return QAReport(preds.path, images, preds.classes, flags, summary, connectivity, min_share, max_deviation)


def _spread(areas: np.ndarray) -> tuple[float, float, str]:
    """Median, spread and the rule that gave the spread (see ``ClassSummary``)."""
    if not len(areas):
        return float("nan"), float("nan"), "none"
    median = float(np.median(areas))
    dev = np.abs(areas - median)
    mad = float(np.median(dev))
    if mad > 0:
        return median, MAD_SCALE * mad, "mad"
    mean_ad = float(dev.mean())
    if mean_ad > 0:
        return median, MEAN_AD_SCALE * mean_ad, "mean_ad"
    return median, 0.0, "none"


def _positive(name: str, value, upper: float = math.inf) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name}: expected a number, got {value!r}", param=name) from None
    if isinstance(value, bool) or not 0 < x <= upper or math.isinf(x):
        bound = f"in (0, {upper:g}]" if upper < math.inf else "> 0"
        raise UsageError(f"{name}: expected a number {bound}, got {value!r}", param=name)
    return x
