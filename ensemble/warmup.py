"""Warm-up steps of the votes' kernels (see ``core.warmup``): the block vote of whole files,
the vote of one mask at a time, the numba soft vote on every kind of map, and its histogram
pass; the votes of exclusive classes, on runs and on maps."""

from __future__ import annotations

import numpy as np

from core.warmup import Step, TinySet


def _vote(t: TinySet) -> None:
    from ensemble.vote_plan import VotePlan, align, run_plan

    aligned = align([t.one, t.two, t.one])
    weights = np.ones((3, len(t.CLASSES)))
    for min_votes in (0, 2):
        run_plan(VotePlan(aligned, weights, np.full(len(t.CLASSES), 0.5), min_votes), t.out("vote"), t.CLASSES)


def _vote_masks(t: TinySet) -> None:
    """The vote one mask at a time, taken when the vote cleans inline."""
    from ensemble.vote_plan import VotePlan, align

    for min_votes in (0, 2):
        VotePlan(
            align([t.one, t.two, t.one]), np.ones((3, len(t.CLASSES))), np.full(len(t.CLASSES), 0.5), min_votes
        ).image(0)


def _layers():
    """One soft-vote layer of each kind of map the engine reads (its support search is
    specialised by dtype and by read-only memory maps)."""
    from ensemble.soft_image import Layer

    rng = np.random.default_rng(0)
    shape = (len(TinySet.CLASSES), 3, 3)
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


def _soft(t: TinySet) -> None:
    """The numba soft-vote engine on every kind of map, its runs formatted."""
    from core.codec import format_rle
    from ensemble.soft_image import vote_image

    layers = _layers()
    n = len(t.CLASSES)
    for runs in vote_image(layers, np.ones((len(layers), n)), np.full(n, 0.5), t.SIZE, t.SIZE):
        format_rle(runs)


def _maps(t: TinySet) -> None:
    """The histogram pass of ``tune --maps`` on every kind of map."""
    from ensemble.soft_image import histogram_class

    layers = _layers()
    hist = np.zeros((2, 3), np.int64)
    runs = t.runs(t.RLES["one"][0][0])
    histogram_class(layers, 0, np.ones(len(layers)), np.array([0.3, 0.6]), t.SIZE, t.SIZE, runs, hist)


def _exclusive(t: TinySet) -> None:
    """The vote over exclusive labels, one image at a time, its runs formatted."""
    from core.codec import format_rle
    from ensemble.exclusive import exclusive_vote

    masks = [[t.runs(rle) for rle in t.RLES[name][0]] for name in ("one", "two", "one")]
    for runs in exclusive_vote(masks, np.ones((3, len(t.CLASSES))), np.ones(3)):
        format_rle(runs)


def _soft_exclusive(t: TinySet) -> None:
    """The numba soft vote of exclusive classes (one kernel for every kind of map: the
    windows reach it as float32), its runs formatted."""
    from core.codec import format_rle
    from ensemble.soft_image import Layer, vote_image_exclusive

    rng = np.random.default_rng(0)
    shape = (len(t.CLASSES) + 1, 3, 3)
    layers = [Layer(rng.random(shape).astype(np.float16)), Layer(rng.normal(size=shape), logits=True, box=(1, 1, 6, 7))]
    for runs in vote_image_exclusive(layers, np.ones(2), t.SIZE, t.SIZE, len(t.CLASSES)):
        format_rle(runs)


VOTE = Step("vote", ("core/_block_kernels.py:gather_kernel", "core/_block_kernels.py:vote_block_kernel"), _vote, 2)
"""The hard and weighted votes of whole files, a block of images per kernel call."""
_MASK_KERNELS = ("core/_rle_kernels.py:format_kernel", "core/_run_kernels.py:vote_kernel")
VOTE_MASKS = Step("vote_masks", _MASK_KERNELS, _vote_masks, 1)
"""The votes one mask at a time (when they clean inline)."""
SOFT = Step("soft", ("core/_rle_kernels.py:format_kernel", "ensemble/_soft_kernels.py:fused_kernel"), _soft, 3)
"""The numba soft vote."""
MAPS = Step("maps", ("ensemble/_soft_kernels.py:histogram_kernel",), _maps, 2)
"""The soft vote's histogram pass (``tune --maps``)."""
EXCLUSIVE = Step(
    "exclusive", ("core/_rle_kernels.py:format_kernel", "core/_run_kernels.py:exclusive_vote_kernel"), _exclusive, 2
)
"""The hard and weighted votes of exclusive classes (``ensemble.exclusive``)."""
SOFT_EXCLUSIVE = Step(
    "soft_exclusive",
    ("core/_rle_kernels.py:format_kernel", "ensemble/_soft_kernels.py:argmax_kernel"),
    _soft_exclusive,
    2,
)
"""The numba soft vote of exclusive classes (``ensemble.soft_image.vote_image_exclusive``)."""
