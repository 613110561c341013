"""Per-class tuning of the combination on validation data.

One sweep per (image, class) over the run boundaries of all n sources and the ground truth
gives, for each of the 2ⁿ subsets of sources, how many pixels exactly that subset covers
(``length``) and how many of those are ground truth (``hit``). Every weighted vote keeps a
union of subsets, so its Dice on every image follows from these histograms without voting
again: all weight vectors and all thresholds are scored at once, exactly.

For a weight vector, a pixel's score takes one of at most 2ⁿ values, so thresholds between
two consecutive values give identical masks on any data; the threshold written is the
midpoint, far from ties.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core._run_kernels import coverage_kernel
from core.classes import CANVAS
from core.errors import as_name, shown
from core.layout import DEFAULT_LAYOUT
from core.predictions import Predictions
from core.runs import dice, dice_of_areas
from core.score import aligned_rows
from core.sweep import stack_runs
from ensemble.mask_vote import vote
from evaluation.candidates import best_gate, staple_candidates
from postprocess.cleaner import Rules, clean

MAX_SOURCES = 10

ADVISED_IMAGES = 30
"""Below this many validation images, ``few_images_warning`` warns: a per-class choice
among many candidates made on a handful of images mostly fits their noise."""


def few_images_warning(
    n_images: int, classes: Sequence[str], names: Sequence[str], levels: Sequence[float] = (0, 1, 2)
) -> str | None:
    """A one-line warning when ``n_images`` validation images are too few for the
    per-class decisions, or ``None``. Every class is decided on its own, so each decision
    rests on the ``n_images`` images of that class and no more."""
    if n_images >= ADVISED_IMAGES:
        return None
    images = f"{n_images:,} {'image' if n_images == 1 else 'images'}"
    return (
        f"warning: tuning on {images}: each of the {len(classes):,} per-class choices (among "
        f"{len(candidates(names, levels)):,} combinations, then {len(CLEANING_GRID):,} cleaning rules) rests "
        f"on {images}, so it may fit their noise ({ADVISED_IMAGES} or more images advised)"
    )


@dataclass
class Coverage:
    """Histograms over source subsets: ``length[i, c, m]``, ``hit[i, c, m]`` and the ground
    truth area ``gt_area[i, c]``."""

    names: list[str]
    length: np.ndarray
    hit: np.ndarray
    gt_area: np.ndarray
    npix: np.ndarray | None = None  # (images,) pixels of each image (subset 0 counts only gaps between runs)


def coverage(
    gt: Predictions, sources: Sequence[Predictions], names: Sequence[str], missing: str = "error", progress=None
) -> Coverage:
    """One sweep per (image, class) over all sources and the ground truth."""
    n = len(sources)
    if not 1 <= n <= MAX_SOURCES:
        raise ValueError(f"tuning takes 1 to {MAX_SOURCES} sources, got {n}")
    rows = [aligned_rows(s, gt, missing) for s in sources]
    n_img, n_cls = gt.rows.shape
    length = np.zeros((n_img, n_cls, 1 << n), np.int64)
    hit = np.zeros_like(length)
    for i in range(n_img):
        for c in range(n_cls):
            runs, bounds = stack_runs([s.row_runs(int(r[i, c])) for s, r in zip(sources, rows)])
            coverage_kernel(runs, bounds, gt.runs(i, c), length[i, c], hit[i, c])
        if progress is not None:
            progress.update(1)
    npix = np.array([_npix(gt, i) for i in range(n_img)], np.int64)
    return Coverage(list(names), length, hit, gt.areas[gt.rows], npix)


@dataclass(frozen=True)
class Choice:
    """A combination for one class: weights per source and a threshold."""

    weights: tuple[float, ...]
    threshold: float

    def describe(self, names: Sequence[str]) -> str:
        used = [(nm, w) for nm, w in zip(names, self.weights) if w > 0]
        if len(used) == 1:
            return f"only {used[0][0]}"
        if len(used) == len(names) and len(set(self.weights)) == 1 and self.threshold == 0.5:
            return "hard vote"
        if len({w for _, w in used}) == 1:
            return f"vote {'+'.join(nm for nm, _ in used)} > {self.threshold:g}"
        return f"weighted {' '.join(f'{nm}:{w:g}' for nm, w in used)} > {self.threshold:g}"

    def keep(self, n: int) -> np.ndarray:
        """Which of the 2ⁿ subsets the vote keeps, decided as ``ensemble.mask_vote`` decides."""
        masks = np.arange(1 << n)
        acc = np.zeros(1 << n)
        for i, w in enumerate(self.weights):  # source order, as the kernel accumulates
            acc = acc + np.where((masks >> i) & 1, w, 0.0)
        total = 0.0
        for w in self.weights:
            if w > 0:
                total += w
        return (masks > 0) & (acc / total > self.threshold)


def weight_grid(n: int, levels: Sequence[float]) -> list[tuple[float, ...]]:
    """Weight vectors to try: the equal vote, then every vector over ``levels`` while that
    stays small (|levels|ⁿ ≤ 729); with more sources, only vectors over {0, 1} (2ⁿ ≤ 256),
    then only the equal vote."""
    ones = tuple([1.0] * n)
    for lv in (tuple(levels), (0.0, 1.0)):
        if len(lv) ** n <= 729 if len(lv) > 2 else 2**n <= 256:
            return [ones] + [tuple(map(float, v)) for v in itertools.product(lv, repeat=n) if any(v)]
    return [ones]


def candidates(names: Sequence[str], levels: Sequence[float] = (0, 1, 2)) -> list[Choice]:
    """Simplest first: each single source, the equal-weight vote at every distinct
    threshold, then the weight grid at every distinct threshold. A candidate that keeps the
    same subsets as an earlier one is dropped (the simpler one stands for both)."""
    n = len(names)
    out = [Choice(tuple(float(i == s) for i in range(n)), 0.5) for s in range(n)]
    seen = {tuple(ch.keep(n)) for ch in out}
    masks = np.arange(1 << n)
    for w in weight_grid(n, levels):
        scores = np.zeros(1 << n)
        for i, x in enumerate(w):
            scores = scores + np.where((masks >> i) & 1, x, 0.0)
        levels_seen = np.unique(scores / sum(w))
        for lo, hi in zip(levels_seen[:-1], levels_seen[1:]):
            t = round(float((lo + hi) / 2), 6)  # readable, and still strictly between lo and hi
            choice = Choice(w, t if lo < t < hi else float((lo + hi) / 2))
            key = tuple(choice.keep(n))
            if key not in seen:
                seen.add(key)
                out.append(choice)
    return out


def dice_of(keep: np.ndarray, cov: Coverage, c: int) -> np.ndarray:
    """Mean Dice over images of class ``c`` for each row of ``keep`` (choices × 2ⁿ)."""
    k = keep.astype(np.float64)
    inter = k @ cov.hit[:, c, :].T  # exact: integer-valued sums far below 2**53
    pred = k @ cov.length[:, c, :].T
    return dice_of_areas(inter, pred, cov.gt_area[:, c]).mean(1)


@dataclass
class ClassResult:
    cls: str
    baseline: float  # the plain hard vote
    best_single: tuple[str, float]
    choice: Choice
    dice: float  # of the chosen combination
    notes: list[str] = field(default_factory=list)
    rules: Rules | None = None  # cleaning accepted for this class
    cleaned: float | None = None  # Dice after that cleaning
    staple: str | None = None  # pooled STAPLE's region, when it was chosen instead of a vote
    accept: np.ndarray | None = None  # then its accepted vote patterns on the validation set

    def describe(self, names: Sequence[str]) -> str:
        """The chosen combination in words."""
        return f"STAPLE {self.staple}" if self.staple else self.choice.describe(names)

    @property
    def final(self) -> float:
        return self.cleaned if self.rules is not None else self.dice


def tune_combination(
    cov: Coverage,
    classes: Sequence[str],
    margin: float = 1e-4,
    levels: Sequence[float] = (0, 1, 2),
    deadline: float | None = None,
    staple: Sequence[str] = (),
) -> list[ClassResult]:
    """Per class, the candidate with the highest mean validation Dice, accepted only when it
    beats the plain hard vote by more than ``margin`` (ties go to the simpler candidate).
    ``staple``: regions of pooled STAPLE to try too, after the votes
    (``evaluation.candidates.staple_candidates``)."""
    n = len(cov.names)
    cands = candidates(cov.names, levels)
    hard = Choice(tuple([1.0] * n), 0.5)
    keep = np.stack([hard.keep(n)] + [ch.keep(n) for ch in cands])
    results = []
    for c, cls in enumerate(classes):
        if deadline is not None and time.monotonic() > deadline:
            d = dice_of(keep[:1], cov, c)
            results.append(ClassResult(cls, float(d[0]), ("", float("nan")), hard, float(d[0]), ["time budget spent"]))
            continue
        d = dice_of(keep, cov, c)
        base = float(d[0])
        singles = d[1 : n + 1]
        s = int(np.argmax(singles))
        fused = staple_candidates(cov, c, staple) if staple else []
        scores = np.concatenate([d[1:], [f[2] for f in fused]])
        j = int(np.argmax(scores)) + 1
        best = (cls, base, (cov.names[s], float(singles[s])))
        if scores[j - 1] <= base + margin:
            results.append(ClassResult(*best, hard, base))
        elif j < len(d):
            results.append(ClassResult(*best, cands[j - 1], float(d[j])))
        else:
            region, accept, value = fused[j - len(d)]
            results.append(ClassResult(*best, hard, value, staple=region, accept=accept))
    return results


CLEANING_GRID: tuple[Rules, ...] = (
    Rules(fill_holes=True),
    Rules(keep_largest=1),
    Rules(keep_largest=1, fill_holes=True),
    Rules(keep_largest=2),
    Rules(keep_largest=2, fill_holes=True),
    *(Rules(min_size=m) for m in (10, 30, 100, 300, 1000)),
    *(Rules(min_size=m, fill_holes=True) for m in (10, 30, 100, 300, 1000)),
)
"""Cleaning candidates, simplest first; a later one must beat an earlier one to win."""


def voted_runs(
    gt: Predictions,
    sources: Sequence[Predictions],
    choice: Choice,
    c: int,
    missing: str = "error",
    accept: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The chosen combination's mask of class ``c`` on every ground-truth image: the vote of
    ``choice``, or with ``accept`` the union of those vote patterns of every source (STAPLE)."""
    if accept is not None:
        from quality.tables import fuse_mask

        rows = [aligned_rows(s, gt, missing)[:, c] for s in sources]
        return [
            fuse_mask([s.row_runs(int(r[i])) for s, r in zip(sources, rows)], accept, _npix(gt, i))
            for i in range(len(gt.images))
        ]
    w = np.asarray(choice.weights)
    used = np.flatnonzero(w > 0)
    rows = [aligned_rows(sources[s], gt, missing)[:, c] for s in used]
    out = []
    for i in range(len(gt.images)):
        out.append(vote([sources[s].row_runs(int(r[i])) for s, r in zip(used, rows)], w[used], choice.threshold))
    return out


def mean_dice(masks: Sequence[np.ndarray], gt: Predictions, c: int) -> float:
    """Mean Dice of one class's masks (one per ground-truth image)."""
    return sum(dice(m, gt.runs(i, c)) for i, m in enumerate(masks)) / max(len(masks), 1)


def tune_cleaning(
    results: list[ClassResult],
    gt: Predictions,
    sources: Sequence[Predictions],
    margin: float = 1e-4,
    grid: Sequence[Rules] = CLEANING_GRID,
    missing: str = "error",
    deadline: float | None = None,
    progress=None,
) -> None:
    """Per class, on the chosen combination's validation masks, the cleaning rule with the
    highest mean Dice, accepted only when it beats no cleaning by more than ``margin``
    (as nnU-Net accepts post-processing). Fills ``rules``/``cleaned`` of ``results``."""
    for c, res in enumerate(results):
        if progress is not None:
            progress.update(1)
        if deadline is not None and time.monotonic() > deadline:
            res.notes.append("no time left for cleaning")
            continue
        masks = voted_runs(gt, sources, res.choice, c, missing, res.accept)
        best, best_dice = None, res.dice + margin
        for rules in grid:
            d = mean_dice([clean(m, *gt.grid(i), rules) for i, m in enumerate(masks)], gt, c)
            if d > best_dice:
                best, best_dice = rules, d
        if best is not None:
            res.rules, res.cleaned = best, best_dice


def tune_gates(
    results: list[ClassResult],
    gt: Predictions,
    sources: Sequence[Predictions],
    margin: float = 1e-4,
    missing: str = "error",
    deadline: float | None = None,
    progress=None,
) -> None:
    """Per class, on the final validation masks (the chosen combination, cleaned as chosen),
    the area gate ``min_area`` with the highest mean Dice (``evaluation.candidates.best_gate``),
    accepted only when it beats them by more than ``margin``; it joins the class's rules."""
    for c, res in enumerate(results):
        if progress is not None:
            progress.update(1)
        if deadline is not None and time.monotonic() > deadline:
            res.notes.append("no time left for the area gate")
            continue
        masks = voted_runs(gt, sources, res.choice, c, missing, res.accept)
        if res.rules is not None:
            masks = [clean(m, *gt.grid(i), res.rules) for i, m in enumerate(masks)]
        truth = [gt.runs(i, c) for i in range(len(masks))]
        areas = np.array([int((m[:, 1] - m[:, 0]).sum()) for m in masks], np.int64)
        keep = np.array([dice(m, t) for m, t in zip(masks, truth)])
        drop = np.array([dice(m[:0], t) for m, t in zip(masks, truth)])
        gate = best_gate(areas, keep, drop)
        if gate is None or gate[1] <= res.final + margin:
            continue
        rules = Rules.model_validate({**(res.rules or Rules()).model_dump(), "min_area": gate[0]})
        value = mean_dice([m if a >= gate[0] else m[:0] for m, a in zip(masks, areas)], gt, c)
        if value > res.final + margin:
            res.rules, res.cleaned = rules, value


def _npix(preds: Predictions, i: int) -> int:
    """Pixels of image ``i`` (its own size)."""
    h, w = preds.size(i)
    return h * w


def tuned_settings(
    results: Sequence[ClassResult],
    names: Sequence[str],
    paths: Sequence[str],
    classes: Sequence[str],
    height: int = CANVAS,
    width: int = CANVAS,
    layout=None,
) -> dict:
    """A ``weighted --setting`` file: the hard vote as default, per-class overrides where
    tuning chose otherwise. Re-point sources with ``--source NAME=PATH`` to apply it. A
    ``layout`` (``core.layout.Layout``) other than the hand-bone one is written as the
    ``columns`` and ``rle_order`` keys (the sizes are the test set's own: give them there)."""
    n = len(names)
    weights: dict = {"default": {nm: 1 for nm in names}}
    threshold: dict = {"default": 0.5}
    fused = {}
    for r in results:
        if r.staple:
            fused[r.cls] = r.staple
            continue
        if r.choice.weights != tuple([1.0] * n):
            weights[r.cls] = {nm: _num(w) for nm, w in zip(names, r.choice.weights)}
        if r.choice.threshold != 0.5:
            threshold[r.cls] = r.choice.threshold
    out = {
        "sources": dict(zip(names, map(str, paths))),
        "classes": list(classes),
        "weights": weights,
        "threshold": threshold,
    }
    if (height, width) != (CANVAS, CANVAS):
        out.update(height=height, width=width)
    if layout is not None and layout != DEFAULT_LAYOUT:
        out["columns"] = {"image": layout.image, **({"class": layout.cls} if layout.cls else {}), "rle": layout.rle}
        out["rle_order"] = layout.order
    cleaning = {r.cls: _rules_dict(r.rules) for r in results if r.rules is not None}
    if cleaning:
        out["postprocess"] = cleaning
    if fused:
        out["staple"] = fused
    if tuple(classes) != tuple(r.cls for r in results):
        raise ValueError("results do not follow the class list")
    return out


def _rules_dict(rules: Rules) -> dict:
    """The settings-file form of ``rules``: only the keys that differ from no cleaning."""
    base = Rules()
    return {
        k: getattr(rules, k)
        for k in ("open", "close", "min_size", "keep_largest", "fill_holes", "max_hole", "connectivity", "min_area")
        if getattr(rules, k) != getattr(base, k)
    }


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def report(results: Sequence[ClassResult], names: Sequence[str]) -> str:
    """Per-class before/after table on validation data."""
    classes = [as_name(r.cls, ("class", "mean")) for r in results]
    names = [as_name(n) for n in names]
    cw = max(len("class"), *(len(c) for c in classes)) + 2
    lines = [f"{'class':<{cw}}{'hard vote':>10}{'best single':>24}{'combined':>9}{'cleaned':>9}  choice"]
    for r, cls in zip(results, classes, strict=True):
        single = f"{as_name(r.best_single[0])} {r.best_single[1]:.4f}"
        note = f"  ({'; '.join(r.notes)})" if r.notes else ""
        cleaned = f"{r.cleaned:>9.4f}" if r.rules is not None else f"{'-':>9}"
        how = r.describe(names) + (f"; clean: {r.rules.describe()}" if r.rules is not None else "")
        lines.append(f"{cls:<{cw}}{r.baseline:>10.4f}{single:>24}{r.dice:>9.4f}{cleaned}  {how}{note}")
    base = np.mean([r.baseline for r in results])
    combined = np.mean([r.dice for r in results])
    final = np.mean([r.final for r in results])
    lines.append(f"{'mean':<{cw}}{base:>10.4f}{'':>24}{combined:>9.4f}{final:>9.4f}")
    return "\n".join(lines)


SOFT_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.025), 3)
"""Soft-vote thresholds tried per class (0.5 among them: the default to beat)."""


@dataclass
class SoftResult:
    """Per class: mean validation Dice of the soft vote at 0.5 and at the best threshold."""

    thresholds: np.ndarray  # (n_classes,) chosen, 0.5 where nothing beat it by the margin
    at_default: np.ndarray  # (n_classes,) Dice at 0.5
    best: np.ndarray  # (n_classes,) Dice at the chosen threshold


def soft_histograms(
    gt: Predictions, maps: Sequence, thresholds: np.ndarray = SOFT_THRESHOLDS, progress=None
) -> np.ndarray:
    """(n_images, n_classes, 2, K + 1) counts of pixels by ground truth and by how many of
    the K thresholds the equal-weight mean of the map sources exceeds: one pass gives the
    soft vote's Dice at every threshold, exactly as ``soft`` decides."""
    from core.errors import DataError
    from ensemble.soft_image import histogram_class

    n_img, n_cls = gt.rows.shape
    hist = np.zeros((n_img, n_cls, 2, len(thresholds) + 1), np.int64)
    for i, name in enumerate(gt.images):
        layers = [m.load(name, n_cls) for m in maps]
        absent = [m.name for m, layer in zip(maps, layers) if layer is None]
        if absent:
            raise DataError(f"maps {shown(absent[0])}: no map for image {shown(name)}")
        w = np.ones(len(layers))
        for c in range(n_cls):
            histogram_class(layers, c, w, thresholds, gt.height, gt.width, gt.runs(i, c), hist[i, c])
        if progress is not None:
            progress.update(1)
    return hist


def tune_soft(
    hist: np.ndarray, gt: Predictions, thresholds: np.ndarray = SOFT_THRESHOLDS, margin: float = 1e-4
) -> SoftResult:
    """Per class, the threshold with the highest mean Dice, kept only when it beats 0.5 by
    more than ``margin``."""
    kept = hist[..., ::-1].cumsum(-1)[..., ::-1]  # kept[..., g, k]: pixels exceeding ≥ k thresholds
    tp = kept[:, :, 1, 1:]  # at threshold j: pixels exceeding more than j thresholds
    pred = kept[:, :, 0, 1:] + tp
    area = gt.areas[gt.rows][:, :, None]
    dice = dice_of_areas(tp, pred, area).mean(0)  # (n_classes, K)
    j0 = int(np.flatnonzero(np.isclose(thresholds, 0.5))[0])
    j = dice.argmax(1)
    take = dice[np.arange(len(j)), j] > dice[:, j0] + margin
    chosen = np.where(take, thresholds[j], 0.5)
    best = np.where(take, dice[np.arange(len(j)), j], dice[:, j0])
    return SoftResult(chosen, dice[:, j0], best)
