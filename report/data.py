"""What a report shows, computed from the inputs: Dice against the ground truth (the same
numbers as ``evaluate``) or, without ground truth, agreement between the sources; the
focus source; and the images that get pages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from core.errors import UsageError, did_you_mean, listing, plural, quoted, shown, suggest
from core.predictions import Predictions, image_positions
from core.score import dice_matrix

CARPALS = ("Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform")


@dataclass
class ReportData:
    """Numbers of one report. ``per_image`` is (sources, images, classes): Dice against the
    ground truth with ``gt``, else each source's mean Dice against every other source."""

    names: list[str]
    sources: list[Predictions]
    gt: Predictions | None
    images: list[str]  # scored images (the ground truth's, else the first source's)
    positions: list[np.ndarray]  # per source: its row of each image
    per_image: np.ndarray
    focus: int
    pages: list[int] = field(default_factory=list)  # image indices with a page, in page order
    n_worst: int = 0  # the first n_worst pages are the worst images, the rest were asked for
    baselines: list[int] = field(default_factory=list)  # the single sources the gain is measured against
    pairs: list[tuple[int, int]] = field(default_factory=list)  # agreement mode
    pair_dice: np.ndarray | None = None  # (pairs, images, classes), agreement mode
    notes: list[str] = field(default_factory=list)
    iou: np.ndarray | None = None  # (sources, images, classes) IoU against the ground truth, when shown

    @property
    def classes(self) -> tuple[str, ...]:
        return self.sources[0].classes

    @property
    def has_gt(self) -> bool:
        return self.gt is not None

    @property
    def per_class(self) -> np.ndarray:
        """(sources, classes) mean over images."""
        return self.per_image.mean(1)

    @property
    def overall(self) -> np.ndarray:
        """(sources,) mean over classes of the per-class means (``evaluate``'s mean)."""
        return self.per_class.mean(1)

    def image_score(self, s: int) -> np.ndarray:
        """(images,) mean over classes for source ``s``."""
        return self.per_image[s].mean(1)

    def leaderboard(self) -> list[tuple[str, float, float | None]]:
        """``(name, mean, gain)`` sorted by mean, best first; the gain is over the best
        baseline source other than itself (None when there is none)."""
        mean = self.overall
        rows = []
        for s, name in enumerate(self.names):
            others = [mean[b] for b in self.baselines if b != s]
            rows.append((name, float(mean[s]), float(mean[s] - max(others)) if others else None))
        return sorted(rows, key=lambda r: -r[1])

    def areas(self) -> np.ndarray:
        """(sources, classes) mean mask area in pixels over the images."""
        out = np.zeros((len(self.sources), len(self.classes)))
        for s, src in enumerate(self.sources):
            rows = src.rows[self.positions[s]]
            out[s] = np.where(rows >= 0, src.areas[np.maximum(rows, 0)], 0).mean(0)
        return out

    def size(self, i: int) -> tuple[int, int]:
        """``(height, width)`` of scored image ``i``: the ground truth's, else the first source's."""
        if self.gt is not None:
            return self.gt.size(i)
        return self.sources[0].size(int(self.positions[0][i]))

    @property
    def order(self) -> str:
        """The RLE order of the masks (``column``: runs of the transposed image)."""
        return self.sources[0].order

    def sizes_text(self) -> str | None:
        """How the index page states the images' sizes when they differ (``None`` for one size)."""
        found = {self.size(i) for i in range(len(self.images))}
        if len(found) < 2:
            return None
        least = min(found, key=lambda s: (s[0] * s[1], s))
        most = max(found, key=lambda s: (s[0] * s[1], s))
        return (
            f"{len(found)} sizes, from {least[0]}×{least[1]} to {most[0]}×{most[1]} px (height × width); "
            "each image drawn at its own"
        )

    def pair_names(self) -> list[str]:
        return [f"{self.names[a]} · {self.names[b]}" for a, b in self.pairs]


def score_with_gt(
    gt: Predictions, sources: Sequence[Predictions], names: Sequence[str], missing: str = "error", iou: bool = False
) -> ReportData:
    """Dice (and with ``iou`` IoU) of every source against ``gt`` (``evaluation.scores.score``,
    as ``evaluate``)."""
    from evaluation.scores import score

    scores = score(gt, sources, names, missing)
    positions = [np.array([s.image_index(n) for n in gt.images], np.int64) for s in sources]
    data = ReportData(list(names), list(sources), gt, list(gt.images), positions, scores.per_image, 0)
    if iou:
        data.iou = scores.iou
    known = set(gt.images)
    for src in sources:
        extra = [n for n in src.images if n not in known]
        if extra:
            data.notes.append(
                f"{src.path}: {len(extra):,} of its {plural(len(src.images), 'image')} not in the "
                f"ground truth and not scored (first: {listing(extra[:3])})"
            )
    return data


def score_agreement(sources: Sequence[Predictions], names: Sequence[str], missing: str = "error") -> ReportData:
    """Without ground truth: Dice between every pair of sources, on the first source's
    images (every source must hold the same images)."""
    if len(sources) < 2:
        raise UsageError("without --gt the report compares sources: give at least two")
    images = list(sources[0].images)
    positions = [image_positions(s, images, sources[0].path) for s in sources]
    pairs = list(combinations(range(len(sources)), 2))
    mats = []
    for a, b in pairs:
        m = dice_matrix(sources[a], sources[b], missing)  # on b's image order
        mats.append(m[positions[b]])
    pair_dice = np.stack(mats)
    per_image = np.zeros((len(sources), len(images), len(sources[0].classes)))
    for k, (a, b) in enumerate(pairs):
        per_image[a] += pair_dice[k]
        per_image[b] += pair_dice[k]
    per_image /= len(sources) - 1
    return ReportData(
        list(names), list(sources), None, images, positions, per_image, 0, pairs=pairs, pair_dice=pair_dice
    )


def choose(
    data: ReportData, focus: str | None, pages: int, wanted: Sequence[str], baselines: Sequence[str] = ()
) -> None:
    """Set the focus source (default: the best mean), the baselines and the pages: the
    ``pages`` worst images of the focus source (ground truth) or those where the sources
    agree least, then ``wanted`` images. Unknown names are a ``UsageError``."""
    if focus is not None:
        data.focus = _index(focus, data.names, "--focus", "source")
    else:
        data.focus = int(np.argmax(data.overall))
    data.baselines = [_index(b, data.names, "--baseline", "source") for b in baselines] or list(range(len(data.names)))
    order = np.argsort(_worst_key(data), kind="stable")
    chosen = [int(i) for i in order[:pages]]
    data.n_worst = len(chosen)
    index = {n: i for i, n in enumerate(data.images)}
    for name in wanted:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if base not in index:
            guess = suggest(base, data.images)
            hint = f" (did you mean {quoted(guess)}?)" if guess else f" (first: {listing(data.images[:3])})"
            raise UsageError(f"--image {shown(name)}: not among the {plural(len(data.images), 'scored image')}{hint}")
        if index[base] not in chosen:
            chosen.append(index[base])
    data.pages = chosen


def _worst_key(data: ReportData) -> np.ndarray:
    """Lower is worse: the focus source's mean Dice per image, or the mean agreement."""
    if data.has_gt:
        return data.image_score(data.focus)
    return data.pair_dice.mean((0, 2))


def _index(name: str, names: Sequence[str], flag: str, what: str) -> int:
    if name in names:
        return list(names).index(name)
    raise UsageError(
        f"{flag} {shown(name)}: no {what} of that name ({did_you_mean(name, names)}{what}s: {listing(names)})"
    )


def wrist_box(
    boxes: dict[int, tuple[int, int, int, int]], classes: Sequence[str], height: int, width: int, pad: int = 48
) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` around the carpal classes' boxes (all classes when the class list
    has no carpals), padded and made at least a quarter of the shorter side."""
    keys = [c for c, n in enumerate(classes) if n in CARPALS and c in boxes] or list(boxes)
    if not keys:
        return None
    x0 = min(boxes[c][0] for c in keys) - pad
    y0 = min(boxes[c][1] for c in keys) - pad
    x1 = max(boxes[c][2] for c in keys) + pad
    y1 = max(boxes[c][3] for c in keys) + pad
    least = min(height, width) // 4
    if x1 - x0 < least:
        x0, x1 = (x0 + x1 - least) // 2, (x0 + x1 + least) // 2
    if y1 - y0 < least:
        y0, y1 = (y0 + y1 - least) // 2, (y0 + y1 + least) // 2
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
