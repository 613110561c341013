"""Streaming vote over whole prediction files: align sources on (image, class), vote each
image's masks on runs, write the result in canonical order.

Memory is the sources' RLE text plus one image's runs per worker. Workers are forked
processes that inherit the parsed sources, so nothing but image indices and output text
crosses process boundaries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core._block_kernels import vote_block_kernel
from core._run_kernels import decision_table, vote_kernel
from core.blocks import BLOCK, Fields, gather
from core.codec import format_rle
from core.errors import DataError, where
from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import Predictions, image_positions
from core.stream import collect_blocks, collect_images, select_span, write_blocks, write_images
from core.sweep import stack_runs
from core.window import chunks


@dataclass
class Aligned:
    """Sources aligned on the first source's images: ``rows[s, i, c]`` is source ``s``'s
    row for image ``i`` and class ``c`` (-1 when absent)."""

    sources: list[Predictions]
    images: list[str]
    rows: np.ndarray
    n_missing: int


def align(sources: Sequence[Predictions], missing: str = "error") -> Aligned:
    """Join sources on (image, class). Differing image sets are an error; absent rows are an
    error unless ``missing == "empty"`` (then they vote 0 and are counted)."""
    first = sources[0]
    images = first.images
    rows = np.empty((len(sources), len(images), len(first.classes)), np.int64)
    for s, src in enumerate(sources):
        rows[s] = src.rows[image_positions(src, images, first.path)]
    n_missing = int((rows < 0).sum())
    if n_missing and missing != "empty":
        s, i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        raise DataError(
            f"{where(sources[s].path, None, images[i], first.classes[c])}: missing row "
            f"({n_missing:,} missing in all; missing='empty' counts them as empty votes)"
        )
    return Aligned(list(sources), images, rows, n_missing)


TABLE_SOURCES = 12
"""Up to this many sources the block vote looks each segment's decision up in a table of
every set of sources (``2**S`` per class) rather than summing the weights per segment."""


@dataclass
class VotePlan:
    """Everything needed to vote one image: weights (sources × classes), thresholds,
    ``min_votes`` (0 = use thresholds), an optional per-mask cleaner, and ``fused``: the classes
    fused by a table of accepted vote patterns instead (class index → ``2**S`` bools; bit
    ``s`` of a pattern is source ``s``, every source taking part), as STAPLE fuses them.
    ``exclusive``: the classes are mutually exclusive, and these are the sources' background
    weights (see ``ensemble.exclusive.exclusive_vote``): every class of an image is voted at
    once, as a plurality, and cleaning never lets two classes share a pixel (the class listed
    first keeps it)."""

    aligned: Aligned
    weights: np.ndarray
    thresholds: np.ndarray
    min_votes: int = 0
    clean: Callable[[int, np.ndarray], np.ndarray] | None = None
    fused: dict[int, np.ndarray] = field(default_factory=dict)
    exclusive: list[float] | None = None
    layout: Layout = DEFAULT_LAYOUT  # of the rows the block path writes

    def __post_init__(self) -> None:
        self.weights = np.ascontiguousarray(self.weights, np.float64)
        self.thresholds = np.ascontiguousarray(self.thresholds, np.float64)
        self._classes = Fields.classes(self.aligned.sources[0].classes, self.layout)

    @functools.cached_property
    def _decisions(self) -> np.ndarray:
        """The block vote's ``decision_table`` (empty columns past ``TABLE_SOURCES``); built on
        the first block: the per-image paths never look at it."""
        n_sources, n_classes = self.weights.shape
        if n_sources <= TABLE_SOURCES:
            return decision_table(self.weights, self.thresholds, self.min_votes)
        return np.zeros((n_classes, 0), np.bool_)

    def image(self, i: int) -> list[str]:
        """The voted RLE strings of image ``i``, in class order (one mask at a time: the path
        taken when the vote cleans inline or fuses classes by a pattern table)."""
        a = self.aligned
        grid = a.sources[0].grid(i)
        if self.exclusive is not None:
            return self._exclusive_image(i, grid)
        out = []
        if self.fused:
            from quality.tables import fuse_mask
        for c in range(self.weights.shape[1]):
            if c in self.fused:
                masks = [a.sources[s].row_runs(int(a.rows[s, i, c])) for s in range(len(a.sources))]
                voted = fuse_mask(masks, self.fused[c], grid[0] * grid[1])
            else:
                w = self.weights[:, c]
                used = np.flatnonzero(w > 0)
                runs, bounds = stack_runs([a.sources[s].row_runs(int(a.rows[s, i, c])) for s in used])
                voted = vote_kernel(runs, bounds, w[used], float(self.thresholds[c]), self.min_votes)
            if self.clean is not None:
                voted = self.clean(c, voted, grid)
            out.append(format_rle(voted))
        return out

    def _exclusive_image(self, i: int, grid: tuple[int, int]) -> list[str]:
        from core.exclusivity import resolve_overlaps
        from ensemble.exclusive import exclusive_vote

        a = self.aligned
        n_classes = self.weights.shape[1]
        masks = [[src.row_runs(int(a.rows[s, i, c])) for c in range(n_classes)] for s, src in enumerate(a.sources)]
        voted = exclusive_vote(masks, self.weights, self.exclusive)
        if self.clean is not None:
            voted = [self.clean(c, r, grid) for c, r in enumerate(voted)]
            voted, _ = resolve_overlaps(voted, "first")
        return [format_rle(r) for r in voted]

    def block(self, lo: int, hi: int) -> tuple[bytes, np.ndarray]:
        """The CSV rows of images ``lo:hi`` (every class, in order), voted by one kernel call,
        and the span of each row's RLE text in them (``(image, class)`` order)."""
        a = self.aligned
        n_sources, n_classes = self.weights.shape
        rows = a.rows[:, lo:hi, :].transpose(1, 2, 0).reshape(-1)  # mask k = (i * C + c) * S + s
        text, offsets, runs = gather(a.sources, np.tile(np.arange(n_sources), len(rows) // n_sources), rows)
        names = Fields.of(a.images[lo:hi])
        npix = a.sources[0].npix
        # An output run starts where some source's run starts, and is written as two numbers
        # of at most npix's digits with two separators.
        n = hi - lo
        size = (
            int(runs.sum()) * (2 * len(str(npix)) + 2)
            + n_classes * names.size
            + n * self._classes.size
            + 3 * n * n_classes
        )
        out = np.empty(size, np.uint8)
        end, spans = vote_block_kernel(
            text,
            offsets,
            runs,
            self.weights,
            self.thresholds,
            self.min_votes,
            self._decisions,
            npix,
            names.text,
            names.offsets,
            self._classes.text,
            self._classes.offsets,
            out,
        )
        return out[:end].tobytes(), spans

    def rows(self, lo: int, hi: int) -> bytes:
        """The CSV rows of images ``lo:hi`` (a cluster chunk's, as the output holds them)."""
        return self.block(lo, hi)[0]

    def rles(self, lo: int, hi: int) -> list[list[str]]:
        """The voted RLE strings of images ``lo:hi``, in class order (for results kept in memory)."""
        text, spans = self.block(lo, hi)
        n_classes = self.weights.shape[1]
        flat = [text[a:b].decode("ascii") for a, b in spans]
        return [flat[i * n_classes : (i + 1) * n_classes] for i in range(hi - lo)]


def run_plan(
    plan: VotePlan,
    output: str | None,
    classes: Sequence[str],
    workers: int = 1,
    progress=None,
    layout: Layout = DEFAULT_LAYOUT,
    writer=None,
) -> int | list[list[str]]:
    """Vote every image: write the CSV atomically (or hand the images to ``writer``, one of
    ``core.predictions.writer_for``'s) and return rows written, or with no ``output`` return
    the RLE strings per image. Without cleaning or fused classes, blocks of images are voted by
    one kernel call each; a cleaner, a fused class, exclusive classes or a writer that takes
    images one at a time (label maps, one row per object) work per image."""
    images = plan.aligned.images
    one_by_one = writer is not None and not writer.blocks
    if plan.clean is not None or plan.fused or plan.exclusive is not None or one_by_one:
        if output is None:
            return collect_images(images, plan.image, progress)
        return write_images(output, classes, images, plan.image, workers, progress, layout, writer)
    select_span(images, plan.rows, progress)  # a cluster chunk (cluster/): images [lo, hi) only, then stops
    blocks = chunks(len(images), BLOCK)
    if output is None:
        return [rles for block in collect_blocks(blocks, lambda b: plan.rles(*blocks[b]), progress) for rles in block]
    return write_blocks(output, classes, blocks, lambda b: plan.block(*blocks[b])[0], workers, progress, layout, writer)
