"""The cleaning pipeline of one mask and the per-class ``Cleaner``.

Steps always run in this order (each one optional):

1. ``open: r``   — opening by a disk of radius r (removes specks and thin bridges);
2. ``close: r``  — closing by a disk of radius r (bridges small gaps and cracks);
3. ``min_size: N`` — drop components with fewer than N pixels;
4. ``keep_largest: k`` — keep the k largest remaining components (equal areas: the one
   whose first pixel comes first in raster order wins);
5. ``fill_holes`` (``max_hole: N``) — fill holes (of at most N pixels) of what is left;
6. ``min_area: N`` — empty the mask when fewer than N pixels are left (a decision on the
   whole mask: the presence gate of a class whose small masks are mostly false positives).

Morphology first, so that components are counted on the shapes that will be kept;
component selection before hole filling, so that a hole never makes a ring outrank a
solid component and the result equals the usual "label, keep largest, fill holes"
pipeline. Components use ``connectivity`` (8 by default); holes use the dual one (see
``postprocess.holes``); opening/closing treat the outside of the image as background
(see ``postprocess.morphology``).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from core.classes import CANVAS
from core.codec import format_rle, parse_rle
from core.errors import as_name
from core.signals import LONG, interruptible
from postprocess._clean_kernels import clean_kernel, finish_kernel
from postprocess._component_kernels import select_components_kernel
from postprocess._hole_kernels import fill_holes_kernel
from postprocess._morphology_kernels import close_kernel, open_kernel
from postprocess._segment_kernels import split_rows_kernel
from postprocess.morphology import effective_radius
from settings.postprocess import PostprocessSection, Rules, resolve_rules


def clean(runs: np.ndarray, height: int, width: int, rules: Rules) -> np.ndarray:
    """One mask cleaned by ``rules``: opening, closing, small components, the K largest
    components, holes, the minimum area of the whole mask — each optional, in that order.

    Parameters
    ----------
    runs : (n, 2) int64 array
        Canonical runs of the mask (0-based, half-open, row-major).
    height, width : int
        Image size.
    rules : Rules
        The steps (``Rules(keep_largest=1, fill_holes=True)`` …).

    Returns
    -------
    (m, 2) int64 array
        Canonical runs of the cleaned mask.

    Examples
    --------
    >>> import numpy as np
    >>> ring_and_dot = np.array([[0, 3], [5, 6], [7, 8], [10, 13], [24, 25]])  # 5×5: a 3×3 ring, a dot
    >>> clean(ring_and_dot, 5, 5, Rules(keep_largest=1, fill_holes=True)).tolist()
    [[0, 3], [5, 8], [10, 13]]
    """
    runs = np.ascontiguousarray(runs, np.int64).reshape(-1, 2)
    height, width = int(height), int(width)
    out = interruptible(_steps, runs, height, width, rules, when=height * width >= LONG)[0]
    if rules.min_area > 1 and int((out[:, 1] - out[:, 0]).sum()) < rules.min_area:
        return out[:0]
    return out


# Two ways to run the same kernels (cold start: a run compiles only what it uses).
# ``Cleaner`` calls ``clean_kernel``, one call per mask or per block of masks, specialised
# by which steps the rules take (a command's rules usually take one combination: one
# compilation, then the fastest calls). ``clean`` (and so ``tune``, which tries many combinations) calls one kernel per
# step from Python: each step compiles once whatever the combination, for a few µs more per
# mask. Both return (runs, components removed, holes filled, area before, area after).


def _kernel_args(r: Rules, height: int, width: int) -> tuple:
    """The arguments of ``clean_kernel`` after ``runs, height, width`` for ``r`` on a ``height`` ×
    ``width`` image: ``None`` for a step not taken (numba then compiles it out), Python ints and
    bools otherwise, so that each combination of steps has exactly one signature. Numbers are
    bounded here, before any kernel sees them, so that none overflows int64: radii as
    ``postprocess.morphology.effective_radius`` says, sizes and counts at the image's pixels
    (a larger one acts as that many)."""
    npix = max(int(height) * int(width), 1)
    return (
        effective_radius(r.open, height, width, "open") if r.open else None,
        effective_radius(r.close, height, width, "close") if r.close else None,
        r.connectivity == 8,
        min(int(r.min_size), npix + 1),
        min(int(r.keep_largest), npix) if r.min_size > 1 or r.keep_largest else None,
        (-1 if r.max_hole is None else min(int(r.max_hole), npix)) if r.fill_holes else None,
    )


def _steps(runs: np.ndarray, height: int, width: int, r: Rules):
    """``clean_kernel``'s pipeline, one kernel per step (``runs``: C-contiguous (n, 2) int64;
    ``height``, ``width``: Python ints)."""
    open_r, close_r, conn8, min_size, keep, max_hole = _kernel_args(r, height, width)
    rows, x0, x1 = split_rows_kernel(runs, width)
    if open_r is not None:
        rows, x0, x1 = open_kernel(rows, x0, x1, open_r)
    if close_r is not None:
        rows, x0, x1 = close_kernel(rows, x0, x1, close_r, height, width)
    removed = 0
    if keep is not None:
        rows, x0, x1, removed = select_components_kernel(rows, x0, x1, conn8, min_size, keep)
    holes = 0
    if max_hole is not None:
        rows, x0, x1, holes = fill_holes_kernel(rows, x0, x1, height, width, conn8, max_hole)
    out, area_in, area_out = finish_kernel(runs, rows, x0, x1, width)
    return out, removed, holes, area_in, area_out


def combinations(rules: Iterable[Rules | None]) -> list[Rules]:
    """One ``Rules`` per combination of steps that ``rules`` take (compiling ``clean_kernel``
    for these compiles it for all of ``rules``)."""
    seen = {}
    for r in rules:
        if r is not None and r.active:
            seen.setdefault(tuple(a is None for a in _kernel_args(r, 1, 1)), r)
    return list(seen.values())


def compiled(rules: Iterable[Rules | None]) -> bool:
    """Whether numba's cache holds ``clean_kernel`` for every combination of steps that
    ``rules`` take (what ``Cleaner`` calls)."""
    from core.jit import overloads_cached

    runs, bounds, sides = np.zeros((0, 2), np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64)
    examples = ((runs, bounds, sides, sides, *_kernel_args(r, 1, 1)) for r in combinations(rules))
    return overloads_cached(clean_kernel, *examples)


STAT_FIELDS = (
    "masks",
    "changed",
    "components_removed",
    "holes_filled",
    "pixels_removed",
    "pixels_added",
    "masks_emptied",
)
"""The counts a ``Cleaner`` keeps per class; ``masks_emptied``: by ``min_area``."""


def _empty_masks(out: np.ndarray, bounds: np.ndarray, emptied: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stacked masks ``out[bounds[k]:bounds[k+1]]`` with those where ``emptied`` left empty."""
    lengths = np.diff(bounds)
    kept = np.where(emptied, 0, lengths)
    new_bounds = np.zeros_like(bounds)
    np.cumsum(kept, out=new_bounds[1:])
    return out[np.repeat(~emptied, lengths)], new_bounds


SUMMARY_COLUMNS = (
    ("masks", 6),
    ("changed", 7),
    ("objects removed", 15),
    ("holes filled", 12),
    ("px removed", 10),
    ("px added", 10),
)
"""Header and width of each column of ``Cleaner.summary`` (two spaces apart), one per ``STAT_FIELDS`` entry:
masks cleaned, masks changed, objects (components) removed, holes filled, pixels removed and
pixels added."""


class Cleaner:
    """Per-class cleaner: ``cleaner(class_index, runs) -> runs``, the ``clean=`` hook of
    ``ensemble.vote_plan.VotePlan`` and of ``postprocess.clean_set.clean_all``.

    Counts (``STAT_FIELDS`` per class) are kept in shared memory, so they also add up when
    the cleaner runs in forked worker processes; read them with ``stats()``/``summary()``.
    Classes whose rules are ``None`` (or inactive) are returned unchanged and not counted.
    """

    def __init__(
        self, rules: Sequence[Rules | None], classes: Sequence[str], height: int = CANVAS, width: int = CANVAS
    ):
        if len(rules) != len(classes):
            raise ValueError(f"{len(rules)} rules for {len(classes)} classes")
        self.rules = [r if r is not None and r.active else None for r in rules]
        self.classes = tuple(classes)
        self.height = int(height)
        self.width = int(width)
        self._args = [None if r is None else _kernel_args(r, self.height, self.width) for r in self.rules]
        self._grids: dict[tuple[int, int, int], tuple] = {}
        ctx = mp.get_context("fork")
        self._shared = ctx.RawArray("q", len(classes) * len(STAT_FIELDS))
        self._counts = np.frombuffer(self._shared, np.int64).reshape(len(classes), len(STAT_FIELDS))
        self._lock = ctx.Lock()

    def active(self, class_index: int) -> bool:
        """Whether class ``class_index`` has anything to clean."""
        return self.rules[class_index] is not None

    def __call__(self, class_index: int, runs: np.ndarray, grid: tuple[int, int] | None = None) -> np.ndarray:
        """Clean one mask of class ``class_index``; ``grid``: the ``(rows, columns)`` its runs
        cover when the image's differs from the cleaner's ``height`` × ``width``."""
        rules = self.rules[class_index]
        if rules is None:
            return runs
        runs = np.ascontiguousarray(runs, np.int64).reshape(-1, 2)
        return self.many(class_index, runs, np.array([0, len(runs)], np.int64), grid)[0]

    def _on(self, class_index: int, grid: tuple[int, int] | None) -> tuple[int, int, tuple]:
        """Height, width and kernel arguments of class ``class_index`` on ``grid``."""
        if grid is None or tuple(grid) == (self.height, self.width):
            return self.height, self.width, self._args[class_index]
        h, w = (int(x) for x in grid)
        key = (class_index, h, w)
        if key not in self._grids:
            self._grids[key] = _kernel_args(self.rules[class_index], h, w)
        return h, w, self._grids[key]

    def many(
        self,
        class_index: int,
        runs: np.ndarray,
        bounds: np.ndarray,
        grid: tuple[int, int] | None = None,
        grids: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clean the masks ``runs[bounds[k]:bounds[k+1]]`` of one class, all on one ``grid``
        (default: the cleaner's ``height`` × ``width``) or each on its own ``grids[k]`` (rows,
        columns), in one kernel call (as ``__call__`` cleans one, counted alike); returns the
        cleaned runs and their bounds."""
        if self.rules[class_index] is None:
            return runs, bounds
        m = len(bounds) - 1
        if grids is None:
            h, w, kernel_args = self._on(class_index, grid)
            heights, widths = np.full(m, h, np.int64), np.full(m, w, np.int64)
        else:  # the numbers of the largest grid; the kernel bounds them again by each mask's own
            heights, widths = (np.ascontiguousarray(g, np.int64) for g in np.asarray(grids).reshape(-1, 2).T)
            _, _, kernel_args = self._on(class_index, (int(heights.max(initial=1)), int(widths.max(initial=1))))
        args = (runs, bounds, heights, widths, *kernel_args)
        long = int((heights * widths).sum()) >= LONG  # pixels a kernel may touch, at most
        out, out_bounds, per_mask = interruptible(clean_kernel, *args, when=long)
        gate = self.rules[class_index].min_area
        emptied = (per_mask[:, 3] > 0) & (per_mask[:, 3] < gate)
        if emptied.any():  # after every other step, on the whole mask
            out, out_bounds = _empty_masks(out, out_bounds, emptied)
            per_mask[emptied, 3:5] = 0
        px_removed, px_added = per_mask[:, 2] - per_mask[:, 4], per_mask[:, 3] - per_mask[:, 4]
        with self._lock:
            row = self._counts[class_index]
            row[0] += len(per_mask)
            row[1] += int(np.count_nonzero(px_removed | px_added))
            row[2] += int(per_mask[:, 0].sum())
            row[3] += int(per_mask[:, 1].sum())
            row[4] += int(px_removed.sum())
            row[5] += int(px_added.sum())
            row[6] += int(emptied.sum())
        return out, out_bounds

    def text(self, class_index: int, rle: str, grid: tuple[int, int] | None = None) -> str:
        """Clean one mask given as RLE text (on ``grid``, as ``__call__``); classes without rules
        come back verbatim."""
        if self.rules[class_index] is None:
            return rle
        h, w = grid if grid is not None else (self.height, self.width)
        return format_rle(self(class_index, parse_rle(rle, h, w), grid))

    def stats(self) -> np.ndarray:
        """(n_classes, len(STAT_FIELDS)) int64 counts so far."""
        with self._lock:
            return self._counts.copy()

    def reset(self) -> None:
        with self._lock:
            self._counts[:] = 0

    def summary(self) -> list[str]:
        """A table: one line per cleaned class and a total; its columns (``SUMMARY_COLUMNS``)
        are the counts of ``STAT_FIELDS`` (the masks emptied by ``min_area`` only when a class
        has that gate). Class names are shown as ``as_name`` says (a class named ``2`` or
        ``total`` in quotes)."""
        s = self.stats()
        names = [as_name(c, ("class", "total")) for c in self.classes]
        w = max([len(n) for n in names] + [5])
        rw = max([len(r.describe()) for r in self.rules if r is not None] + [5])
        gated = any(r is not None and r.min_area > 1 for r in self.rules)
        columns = SUMMARY_COLUMNS + ((("emptied", 7),) if gated else ())
        head = f"{'class':<{w}}  {'rules':<{rw}}" + "".join(f"  {h:>{k}}" for h, k in columns)
        lines = [head]
        for c, rules in enumerate(self.rules):
            if rules is not None:
                lines.append(self._line(names[c], rules.describe(), s[c], w, rw, columns))
        lines.append(self._line("total", "", s.sum(0), w, rw, columns))
        return lines

    @staticmethod
    def _line(name: str, rules: str, v: np.ndarray, w: int, rw: int, columns) -> str:
        return f"{name:<{w}}  {rules:<{rw}}" + "".join(f"  {x:>{k},}" for x, (_, k) in zip(v, columns, strict=False))


def cleaning_lines(cleaning: list[str] | None) -> list[str]:
    """The inline cleaning's summary as printed after a job's own lines (none without one)."""
    return [] if cleaning is None else ["postprocess (inline):\n" + "\n".join(cleaning)]


def build_cleaner(
    section: PostprocessSection | None,
    classes: Sequence[str],
    height: int,
    width: int,
    where: str,
    flags: dict[str, Any] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> Cleaner | None:
    """The per-class ``Cleaner`` for ``section`` (see ``resolve_rules``; ``groups``: the
    settings file's groups, usable as keys), or ``None`` when no class has anything to
    clean. Pass it as ``VotePlan(..., clean=cleaner)``; after the run,
    ``cleaner.summary()`` gives the per-class counts."""
    rules = resolve_rules(section, tuple(classes), where, flags, groups)
    if not any(r is not None and r.active for r in rules):
        return None
    return Cleaner(rules, classes, height, width)
