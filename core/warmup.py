"""Compiling the numba kernels a command needs before its progress bar starts.

On a cold cache the first image of a run would otherwise carry the whole compile time
(tens of seconds) and the bar's rate and ETA would be nonsense (``1/288 [00:25<2:03:25]``).
``precompile`` runs each step's real code path on a tiny two-image set, so the kernels
are compiled (and cached) with exactly the argument types the run will use; the bar then
starts on a warm process.

Unlike the rest of ``core`` this module reaches up into the other packages: it exercises
their code paths. Their imports are deferred into the steps.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.jit import kernels_cached

_CLASSES = ("a", "b")
_SIZE = 8
# Masks with a hole, two components and touching rows, so that every cleaning step and
# every branch of the sweeps has something to do; the two images differ so that merging
# finds a conflict and voting disagreement.
_RLES = {
    "one": [["10 4 18 1 21 1 26 4 50 2", "1 3 60 5"], ["3 2", ""]],
    "two": [["10 4 18 4 26 4 52 2", "2 3 60 2"], ["3 3 40 6", "5 1"]],
}


@dataclass
class _Tiny:
    """The tiny set: two prediction files read back as the commands read them."""

    folder: Path
    one: object  # Predictions
    two: object  # Predictions

    def out(self, name: str) -> str:
        return str(self.folder / f"{name}.csv")


def _tiny(folder: Path) -> _Tiny:
    from core.predictions import read_predictions, write_predictions

    loaded = {}
    for name, rles in _RLES.items():
        path = folder / f"{name}.csv"
        write_predictions(path, _CLASSES, [(f"i{k}.png", r) for k, r in enumerate(rles)])
        loaded[name] = read_predictions(path, _CLASSES, _SIZE, _SIZE)
    return _Tiny(folder, loaded["one"], loaded["two"])


def _cleaner():
    from postprocess.clean import Cleaner, Rules

    rules = Rules(open=1, close=1, min_size=2, keep_largest=1, fill_holes=True, max_hole=4)
    return Cleaner([rules, Rules(fill_holes=True, connectivity=4)], _CLASSES, _SIZE, _SIZE)


def _read(t: _Tiny) -> None:
    t.one.runs(0, 0)


def _vote(t: _Tiny) -> None:
    import numpy as np

    from ensemble.job import VotePlan, align, run_plan

    aligned = align([t.one, t.two, t.one])
    weights = np.ones((3, len(_CLASSES)))
    for min_votes in (0, 2):
        run_plan(VotePlan(aligned, weights, np.full(len(_CLASSES), 0.5), min_votes), t.out("vote"), _CLASSES)


def _vote_masks(t: _Tiny) -> None:
    """The vote one mask at a time, taken when the vote cleans inline."""
    import numpy as np

    from ensemble.job import VotePlan, align

    for min_votes in (0, 2):
        VotePlan(align([t.one, t.two, t.one]), np.ones((3, len(_CLASSES))), np.full(len(_CLASSES), 0.5),
                 min_votes).image(0)


def _copy(t: _Tiny) -> None:
    """Rows copied from sources as written (select, merge)."""
    import numpy as np

    from core.blocks import write_copied

    which = np.array([[0, 1], [1, -1]])
    write_copied(t.out("copy"), [t.one, t.two], which, t.one.rows, t.one.images, _CLASSES)


def _clean(t: _Tiny) -> None:
    from postprocess.job import clean_all

    cleaner = _cleaner()
    clean_all(t.one, cleaner, t.out("clean"))
    cleaner.text(0, t.two.rle(1, 0))


def _merge(t: _Tiny) -> None:
    from fusion.merge import plan_merge, write_merge

    write_merge(plan_merge([t.one, t.two]), t.out("merge"))


def _score(t: _Tiny) -> None:
    from core.score import dice_matrix

    dice_matrix(t.one, t.two)


def _tune(t: _Tiny) -> None:
    from evaluation.search import coverage, tune_cleaning, tune_combination

    sources = [t.one, t.two]
    results = tune_combination(coverage(t.one, sources, ["one", "two"]), _CLASSES)
    tune_cleaning(results, t.one, sources)


def _soft(t: _Tiny) -> None:
    """The numba soft-vote engine on one map of each kind it reads (its support search
    is specialised by dtype), and the histogram pass of ``tune --maps``."""
    import numpy as np

    from ensemble.soft import Layer, histogram_class, vote_image

    rng = np.random.default_rng(0)
    shape = (len(_CLASSES), 3, 3)
    probs = rng.random(shape)
    arrays = [(probs.astype(np.float16), None, False), (probs.astype(np.float32), None, False), (probs, None, False),
              ((probs * 255).astype(np.uint8), 255.0, False), ((probs * 1000).astype(np.uint16), 1000.0, False),
              (rng.normal(size=shape).astype(np.float16), None, True),
              (rng.normal(size=shape).astype(np.float32), None, True)]
    layers = []
    for writable in (True, False):  # .npz maps load writable, .npy maps memory-mapped read-only
        for a, scale, logits in arrays:
            a = a.copy()
            a.flags.writeable = writable
            layers.append(Layer(a, logits=logits, scale=scale, box=None if writable else (1, 1, 6, 7)))
    weights = np.ones((len(layers), len(_CLASSES)))
    vote_image(layers, weights, np.full(len(_CLASSES), 0.5), _SIZE, _SIZE)
    hist = np.zeros((2, 3), np.int64)
    histogram_class(layers, 0, weights[:, 0], np.array([0.3, 0.6]), _SIZE, _SIZE, t.one.runs(0, 0), hist)


@dataclass(frozen=True)
class Step:
    kernels: tuple[str, ...]  # whose numba caches tell whether the step is compiled (core.jit.kernels_cached)
    run: Callable[[_Tiny], None]


_CORE = "core/_kernels.py:"
_POST = "postprocess/_kernels.py:"
_ENS = "ensemble/_kernels.py:"

STEPS: dict[str, Step] = {
    "read": Step((_CORE + "field_counts_kernel", _CORE + "tokenize_kernel", _CORE + "scan_kernel"), _read),
    "vote": Step((_CORE + "gather_kernel", _CORE + "vote_block_kernel"), _vote),
    "vote_masks": Step((_CORE + "format_kernel", _CORE + "vote_kernel"), _vote_masks),
    "clean": Step((_CORE + "format_kernel", _CORE + "intersection_area_kernel", _POST + "clean_kernel"), _clean),
    "merge": Step((_CORE + "same_runs_kernel",), _merge),
    "copy": Step((_CORE + "gather_kernel", _CORE + "rows_kernel"), _copy),
    "score": Step((_CORE + "intersections_kernel",), _score),
    "tune": Step((_CORE + "coverage_kernel", _CORE + "vote_kernel", _POST + "clean_kernel",
                  _CORE + "intersection_area_kernel"), _tune),
    "soft": Step((_CORE + "format_kernel", _ENS + "fused_kernel", _ENS + "histogram_kernel"), _soft),
}
"""What each command may need: ``read`` every command that reads CSVs, then ``vote``
(hard, weighted; ``vote_masks`` too when they clean inline), ``clean`` (postprocess and
inline cleaning), ``merge``, ``copy`` (select, merge), ``score`` (evaluate), ``tune``, and ``soft`` (the numba
soft-vote engine, ``tune --maps``)."""

SECONDS = {"read": 2, "vote": 3, "vote_masks": 1, "clean": 13, "merge": 1, "copy": 1, "score": 1, "tune": 12, "soft": 6}
"""Cold compile time of each step alone (2-core machine, 2026-11), for the message."""


def compile_steps(*steps: str) -> None:
    """Run each step on the tiny set (compiling, or loading from the cache, its kernels)."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown warm-up step {unknown[0]!r} (steps: {', '.join(STEPS)})")
    with tempfile.TemporaryDirectory(prefix="segment-ensemble-warmup-") as tmp:
        tiny = _tiny(Path(tmp))
        for s in steps:
            STEPS[s].run(tiny)


def precompile(echo: Callable[[str], None], *steps: str) -> float | None:
    """When a step's numba cache is cold, say so on its own line, compile every step's
    kernels on the tiny set, and say how long it took. Returns the seconds spent, or
    ``None`` when the cache was warm (nothing done: loading cached kernels is quick and
    happens during the run)."""
    kernels = sorted({k for s in steps for k in STEPS[s].kernels})
    if kernels_cached(*kernels):
        return None
    echo(f"compiling numba kernels (first run only, ~{sum(SECONDS[s] for s in steps)} s; cached afterwards)…")
    start = time.monotonic()
    compile_steps(*steps)
    spent = time.monotonic() - start
    echo(f"compiled in {spent:.1f} s")
    return spent
