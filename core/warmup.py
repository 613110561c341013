"""Compiling the numba kernels a command needs before its progress bar starts.

On a cold cache the first image of a run would otherwise carry the whole compile time (tens
of seconds) and the bar's rate and ETA would be nonsense (``1/288 [00:25<2:03:25]``). A
``Step`` runs one real code path on a tiny two-image set (``TinySet``), so its kernels are
compiled (and cached) with exactly the argument types a run will use; ``precompile`` runs the
steps a command needs when their caches are cold, and the bar then starts on a warm process.

This module is the mechanism and the steps of ``core``'s own kernels (``READ``, ``COPY``,
``SCORE``); every other package declares its steps next to its kernels (``ensemble.warmup``,
``postprocess.warmup``, …) and each job names the steps it takes.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class TinySet:
    """The tiny set: two prediction files of two 8×8 images and two classes, read back as the
    commands read them on first use (steps that read no CSV do not compile the reader).

    Its masks have a hole, two components and touching rows, so that every cleaning step and
    every branch of the sweeps has something to do; the two files differ so that merging
    finds a conflict and voting disagreement."""

    CLASSES = ("a", "b")
    SIZE = 8
    RLES = {
        "one": [["10 4 18 1 21 1 26 4 50 2", "1 3 60 5"], ["3 2", ""]],
        "two": [["10 4 18 4 26 4 52 2", "2 3 60 2"], ["3 3 40 6", "5 1"]],
    }
    IMAGES = ("i0.png", "i1.png")

    def __init__(self, folder: Path):
        self.folder = folder

    @functools.cached_property
    def _loaded(self) -> dict:
        from core.csv_write import write_predictions
        from core.predictions import read_predictions

        loaded = {}
        for name, rles in self.RLES.items():
            path = self.folder / f"{name}.csv"
            write_predictions(path, self.CLASSES, list(zip(self.IMAGES, rles, strict=True)))
            loaded[name] = read_predictions(path, self.CLASSES, self.SIZE, self.SIZE)
        return loaded

    @property
    def one(self):
        """The first file, as ``Predictions``."""
        return self._loaded["one"]

    @property
    def two(self):
        """The second file, as ``Predictions``."""
        return self._loaded["two"]

    def out(self, name: str) -> str:
        """A path for a step's output."""
        return str(self.folder / f"{name}.csv")

    @staticmethod
    def runs(rle: str) -> np.ndarray:
        """Runs of RLE text, without a kernel."""
        v = [int(x) for x in rle.split()]
        return np.array([[s - 1, s - 1 + n] for s, n in zip(v[::2], v[1::2], strict=True)], np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class Step:
    """One warm-up step.

    ``kernels`` name the kernels whose numba caches tell whether the step is compiled
    (``"core/_run_kernels.py:vote_kernel"``, see ``core.jit.kernels_cached``); ``run(tiny)``
    exercises the step's code path on a ``TinySet``; ``seconds`` is its cold compile time
    alone (2-core machine), for the message; ``cached``, when set, is a further check (a
    kernel with several specialisations)."""

    name: str
    kernels: tuple[str, ...]
    run: Callable[[TinySet], None]
    seconds: float
    cached: Callable[[], bool] | None = None


def compile_steps(*steps: Step) -> None:
    """Run each step on a tiny set (compiling, or loading from the cache, its kernels)."""
    from core.stream import unselected

    with tempfile.TemporaryDirectory(prefix="segment-ensemble-warmup-") as tmp, unselected():
        tiny = TinySet(Path(tmp))
        for step in steps:
            step.run(tiny)


def steps_cached(*steps: Step) -> bool:
    """Whether numba's cache holds every kernel of ``steps``."""
    from core.jit import kernels_cached

    if not kernels_cached(*sorted({k for s in steps for k in s.kernels})):
        return False
    return all(s.cached() for s in steps if s.cached is not None)


def precompile(echo: Callable[[str], None], *steps: Step) -> float | None:
    """When a step's numba cache is cold, say so on its own line, compile every step's kernels
    on the tiny set, and say how long it took. Returns the seconds spent, or ``None`` when the
    cache was warm (nothing done: loading cached kernels is quick and happens during the run)."""
    if steps_cached(*steps):
        return None
    seconds = round(sum(s.seconds for s in steps))
    echo(f"compiling numba kernels (first run only, ~{seconds} s; cached afterwards)…")
    start = time.monotonic()
    compile_steps(*steps)
    spent = time.monotonic() - start
    echo(f"compiled in {spent:.1f} s")
    return spent


def _read(t: TinySet) -> None:
    t.one.runs(0, 0)


def _copy(t: TinySet) -> None:
    """Rows copied from sources as written (select, merge)."""
    from core.blocks import write_copied

    which = np.array([[0, 1], [1, -1]])
    write_copied(t.out("copy"), [t.one, t.two], which, t.one.rows, t.one.images, TinySet.CLASSES)


def _score(t: TinySet) -> None:
    from core.score import dice_matrix

    dice_matrix(t.one, t.two)


def _overlaps(t: TinySet) -> None:
    """Overlaps of classes counted and resolved (check, select and merge of exclusive classes)."""
    from core.exclusivity import resolve_overlaps

    resolve_overlaps([t.runs(t.RLES["one"][0][0]), t.runs(t.RLES["two"][0][0])], "first")


def _labels(t: TinySet) -> None:
    """PNG label maps and per-class masks drawn from runs (``-o DIR/``)."""
    from core.codec import parse_rle
    from core.label_write import label_image
    from core.layout import mask_of

    runs = [parse_rle(r, t.SIZE, t.SIZE) for r in t.RLES["one"][1]]
    label_image(runs, t.SIZE, t.SIZE, "row", t.IMAGES[1])
    mask_of(runs[0], t.SIZE, t.SIZE)


READ = Step(
    "read",
    (
        "core/_csv_kernels.py:field_counts_kernel",
        "core/_csv_kernels.py:tokenize_kernel",
        "core/_rle_kernels.py:scan_kernel",
    ),
    _read,
    2,
)
"""Reading prediction CSVs: every command that reads them."""
COPY = Step("copy", ("core/_block_kernels.py:gather_kernel", "core/_block_kernels.py:rows_kernel"), _copy, 1)
"""Rows copied as written (select, merge)."""
SCORE = Step("score", ("core/_run_kernels.py:intersections_kernel",), _score, 1)
"""Dice of two prediction sets (evaluate, report)."""
OVERLAPS = Step(
    "overlaps", ("core/_run_kernels.py:overlap_kernel", "core/_run_kernels.py:exclusive_vote_kernel"), _overlaps, 2
)
"""Overlaps between exclusive classes, counted or resolved (``core.exclusivity``)."""
LABELS = Step(
    "labels",
    ("core/_rle_kernels.py:parse_kernel", "core/_run_kernels.py:overlap_kernel", "core/_rle_kernels.py:decode_kernel"),
    _labels,
    1,
)
"""PNG outputs (``core.label_write``)."""
