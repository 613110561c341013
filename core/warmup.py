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

import functools
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.jit import kernels_cached

if TYPE_CHECKING:
    from postprocess.clean import Rules

_CLASSES = ("a", "b")
_SIZE = 8
# Masks with a hole, two components and touching rows, so that every cleaning step and
# every branch of the sweeps has something to do; the two images differ so that merging
# finds a conflict and voting disagreement.
_RLES = {
    "one": [["10 4 18 1 21 1 26 4 50 2", "1 3 60 5"], ["3 2", ""]],
    "two": [["10 4 18 4 26 4 52 2", "2 3 60 2"], ["3 3 40 6", "5 1"]],
}


class _Tiny:
    """The tiny set: two prediction files read back as the commands read them, on first
    use (``clean`` and ``soft`` do not read CSVs, so they do not compile the reader)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @functools.cached_property
    def _loaded(self) -> dict:
        from core.predictions import read_predictions, write_predictions

        loaded = {}
        for name, rles in _RLES.items():
            path = self.folder / f"{name}.csv"
            write_predictions(path, _CLASSES, [(f"i{k}.png", r) for k, r in enumerate(rles)])
            loaded[name] = read_predictions(path, _CLASSES, _SIZE, _SIZE)
        return loaded

    @property
    def one(self):  # Predictions
        return self._loaded["one"]

    @property
    def two(self):  # Predictions
        return self._loaded["two"]

    def out(self, name: str) -> str:
        return str(self.folder / f"{name}.csv")


def _runs(rle: str):
    """Runs of RLE text, without a kernel."""
    import numpy as np

    v = [int(x) for x in rle.split()]
    return np.array([[s - 1, s - 1 + n] for s, n in zip(v[::2], v[1::2], strict=True)], np.int64).reshape(-1, 2)


def _run_rules(rules):
    """``rules``, or when ``None`` those of every ``Cleaner`` alive (the run's, built before
    its warm-up), or when there is none every step at once."""
    from postprocess.clean import LIVE, Rules

    if rules is not None:
        return rules
    live = [r for c in list(LIVE) for r in c.rules]
    return live or [Rules(open=1, close=1, min_size=2, keep_largest=1, fill_holes=True, max_hole=4)]


def _cleaners(rules):
    """Cleaners of the tiny set, one per combination of steps that ``rules`` take
    (``clean_kernel`` has one specialisation per combination), each on both classes, the
    second with 4-connectivity."""
    from dataclasses import replace

    from postprocess.clean import Cleaner, combinations

    return [Cleaner([r, replace(r, connectivity=4)], _CLASSES, _SIZE, _SIZE) for r in combinations(_run_rules(rules))]


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
        VotePlan(
            align([t.one, t.two, t.one]), np.ones((3, len(_CLASSES))), np.full(len(_CLASSES), 0.5), min_votes
        ).image(0)


def _copy(t: _Tiny) -> None:
    """Rows copied from sources as written (select, merge)."""
    import numpy as np

    from core.blocks import write_copied

    which = np.array([[0, 1], [1, -1]])
    write_copied(t.out("copy"), [t.one, t.two], which, t.one.rows, t.one.images, _CLASSES)


def _clean(t: _Tiny, rules=None) -> None:
    """Every mask of the tiny set through each cleaner, formatted as the runs write it (the
    text path, ``Cleaner.text``, parses with the reader's kernel: ``read`` compiles it)."""
    from core.codec import format_rle

    for cleaner in _cleaners(rules):
        for rles in (*_RLES["one"], *_RLES["two"]):
            for c, rle in enumerate(rles):
                format_rle(cleaner(c, _runs(rle)))


def _clean_blocks(t: _Tiny, rules=None) -> None:
    """The postprocess command's path: blocks of images, each cleaned class's masks cleaned by
    one kernel call per combination of steps that ``rules`` take."""
    from core.predictions import predictions_from_rles
    from postprocess.job import clean_all

    preds = predictions_from_rles("tiny", _CLASSES, ["i0.png", "i1.png"], _RLES["one"], _SIZE, _SIZE)
    for cleaner in _cleaners(rules):
        clean_all(preds, cleaner, t.out("clean_blocks"))


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


def _layers():
    """One soft-vote layer of each kind of map the engine reads (its support search is
    specialised by dtype and by read-only memory maps)."""
    import numpy as np

    from ensemble.soft import Layer

    rng = np.random.default_rng(0)
    shape = (len(_CLASSES), 3, 3)
    probs = rng.random(shape)
    arrays = [
        (probs.astype(np.float16), None, False),
        (probs.astype(np.float32), None, False),
        (probs, None, False),
        ((probs * 255).astype(np.uint8), 255.0, False),
        ((probs * 1000).astype(np.uint16), 1000.0, False),
        (rng.normal(size=shape).astype(np.float16), None, True),
        (rng.normal(size=shape).astype(np.float32), None, True),
    ]
    layers = []
    for writable in (True, False):  # .npz maps load writable, .npy maps memory-mapped read-only
        for a, scale, logits in arrays:
            a = a.copy()
            a.flags.writeable = writable
            layers.append(Layer(a, logits=logits, scale=scale, box=None if writable else (1, 1, 6, 7)))
    return layers


def _soft(t: _Tiny) -> None:
    """The numba soft-vote engine on every kind of map, its runs formatted."""
    import numpy as np

    from core.codec import format_rle
    from ensemble.soft import vote_image

    layers = _layers()
    for runs in vote_image(layers, np.ones((len(layers), len(_CLASSES))), np.full(len(_CLASSES), 0.5), _SIZE, _SIZE):
        format_rle(runs)


def _maps(t: _Tiny) -> None:
    """The histogram pass of ``tune --maps`` on every kind of map."""
    import numpy as np

    from ensemble.soft import histogram_class

    layers = _layers()
    hist = np.zeros((2, 3), np.int64)
    histogram_class(
        layers, 0, np.ones(len(layers)), np.array([0.3, 0.6]), _SIZE, _SIZE, _runs(_RLES["one"][0][0]), hist
    )


@dataclass(frozen=True)
class Step:
    kernels: tuple[str, ...]  # whose numba caches tell whether the step is compiled (core.jit.kernels_cached)
    run: Callable[..., None]  # run(tiny), or for "clean" and "clean_blocks" run(tiny, rules)


_CORE = "core/_kernels.py:"
_POST = "postprocess/_kernels.py:"
_ENS = "ensemble/_kernels.py:"

STEPS: dict[str, Step] = {
    "read": Step((_CORE + "field_counts_kernel", _CORE + "tokenize_kernel", _CORE + "scan_kernel"), _read),
    "vote": Step((_CORE + "gather_kernel", _CORE + "vote_block_kernel"), _vote),
    "vote_masks": Step((_CORE + "format_kernel", _CORE + "vote_kernel"), _vote_masks),
    "clean": Step((_CORE + "format_kernel", _POST + "clean_kernel"), _clean),
    "clean_blocks": Step(
        (_CORE + "gather_kernel", _CORE + "parse_block_kernel", _CORE + "rows_kernel", _POST + "clean_kernel"),
        _clean_blocks,
    ),
    "merge": Step((_CORE + "same_runs_kernel",), _merge),
    "copy": Step((_CORE + "gather_kernel", _CORE + "rows_kernel"), _copy),
    "score": Step((_CORE + "intersections_kernel",), _score),
    "tune": Step(
        (
            _CORE + "coverage_kernel",
            _CORE + "vote_kernel",
            _POST + "split_rows_kernel",
            _POST + "select_components_kernel",
            _POST + "fill_holes_kernel",
            _POST + "finish_kernel",
            _CORE + "intersection_area_kernel",
        ),
        _tune,
    ),
    "soft": Step((_CORE + "format_kernel", _ENS + "fused_kernel"), _soft),
    "maps": Step((_ENS + "histogram_kernel",), _maps),
}
"""What each command may need: ``read`` every command that reads CSVs, then ``vote``
(hard, weighted; ``vote_masks`` too when they clean inline), ``clean`` (postprocess and
inline cleaning: only the steps its ``rules`` take; ``clean_blocks`` the postprocess
command's block path), ``merge``, ``copy`` (select, merge),
``score`` (evaluate), ``tune``, and ``soft`` (the numba soft-vote engine), ``maps`` (its
histogram pass: ``tune --maps``)."""

SECONDS = {
    "read": 2,
    "vote": 2,
    "vote_masks": 1,
    "clean": 4,
    "clean_blocks": 5,
    "merge": 1,
    "copy": 1,
    "score": 1,
    "tune": 4,
    "soft": 3,
    "maps": 2,
}
"""Cold compile time of each step alone (2-core machine, 2026-11-28, ``compile_steps`` in a
fresh process), for the message; ``clean`` for rules without opening or closing (3-4 s),
which add ``MORPHOLOGY_SECONDS`` (all steps at once: 6 s)."""

MORPHOLOGY_SECONDS = 2


def compile_steps(*steps: str, rules: Iterable[Rules | None] | None = None) -> None:
    """Run each step on the tiny set (compiling, or loading from the cache, its kernels);
    ``clean`` compiles the cleaning kernel for the combinations of steps that ``rules``
    take (``None``: every step at once)."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise ValueError(f"unknown warm-up step {unknown[0]!r} (steps: {', '.join(STEPS)})")
    with tempfile.TemporaryDirectory(prefix="segment-ensemble-warmup-") as tmp:
        tiny = _Tiny(Path(tmp))
        for s in steps:
            if s in ("clean", "clean_blocks"):
                STEPS[s].run(tiny, rules)
            else:
                STEPS[s].run(tiny)


def steps_cached(*steps: str, rules: Iterable[Rules | None] | None = None) -> bool:
    """Whether numba's cache holds every kernel of ``steps`` (for ``clean``: every
    specialisation of the cleaning kernel that ``rules`` need)."""
    if not kernels_cached(*sorted({k for s in steps for k in STEPS[s].kernels})):
        return False
    if {"clean", "clean_blocks"} & set(steps):
        from postprocess.clean import compiled

        return compiled(_run_rules(rules))
    return True


def precompile(echo: Callable[[str], None], *steps: str, rules: Iterable[Rules | None] | None = None) -> float | None:
    """When a step's numba cache is cold, say so on its own line, compile every step's
    kernels on the tiny set, and say how long it took. Returns the seconds spent, or
    ``None`` when the cache was warm (nothing done: loading cached kernels is quick and
    happens during the run). ``rules``: the cleaning rules of the run (``Cleaner.rules``),
    so that ``clean`` compiles only the combinations of steps they take; ``None``: those of
    the cleaners alive (see ``_run_rules``)."""
    rules = list(_run_rules(rules)) if {"clean", "clean_blocks"} & set(steps) else None
    if steps_cached(*steps, rules=rules):
        return None
    seconds = sum(SECONDS[s] for s in steps)
    if rules is not None and any(r is not None and (r.open or r.close) for r in rules):
        seconds += MORPHOLOGY_SECONDS
    echo(f"compiling numba kernels (first run only, ~{seconds} s; cached afterwards)…")
    start = time.monotonic()
    compile_steps(*steps, rules=rules)
    spent = time.monotonic() - start
    echo(f"compiled in {spent:.1f} s")
    return spent
