"""Exclusive classes on runs: the plurality vote over labels (``ensemble.exclusive``), and the
overlaps of class masks counted, refused or resolved (``core.exclusivity``) — each against a
plain dense numpy reference, pixel for pixel, ties included."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import reference as ref
from hypothesis import given
from hypothesis import strategies as st
from strategies import masks

from core._run_kernels import exclusive_vote_kernel, overlap_kernel
from core.codec import encode
from core.errors import DataError
from core.exclusivity import OverlapError, overlap_counts, overlaps, resolve_overlaps
from core.sweep import stack_runs
from ensemble.exclusive import exclusive_vote

WEIGHTS = st.sampled_from([0.0, 0.0, 0.1, 0.2, 0.25, 1 / 3, 0.5, 1.0, 1.0, 2.0, 3.0, 0.7])


# ---------------------------------------------------------------- dense references
def dense_exclusive(stack: np.ndarray, w: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Labels (H, W) of the plurality over labels: ``stack`` (S, C, H, W) bool, ``w`` (S, C),
    ``bw`` (S,); 0 the background, ``c + 1`` class ``c``. Scores summed in source order from
    0.0; ``np.argmax`` takes the first maximum: the background, then the lower class."""
    n_src, n_cls = stack.shape[:2]
    scores = np.zeros((n_cls + 1, *stack.shape[2:]))
    for s in range(n_src):
        scores[0] += bw[s] * ~stack[s].any(0)
        for c in range(n_cls):
            scores[c + 1] += w[s, c] * stack[s, c]
    return np.argmax(scores, 0)


def dense_first(stack: np.ndarray) -> np.ndarray:
    """(C, H, W): each pixel kept by the first class that covers it."""
    taken = np.zeros(stack.shape[1:], bool)
    out = np.zeros_like(stack)
    for c in range(stack.shape[0]):
        out[c] = stack[c] & ~taken
        taken |= stack[c]
    return out


def labels_of(runs: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, np.int64)
    for c, r in enumerate(runs):
        m = ref.decode(r, shape).astype(bool)
        assert not (out[m] > 0).any(), "the classes overlap"
        out[m] = c + 1
    return out


def assert_canonical(runs: np.ndarray) -> None:
    assert runs.dtype == np.int64 and runs.ndim == 2 and runs.shape[1] == 2
    assert (runs[:, 1] > runs[:, 0]).all()
    assert (runs[1:, 0] > runs[:-1, 1]).all(), "runs touch or overlap"


# ---------------------------------------------------------------- strategies
@st.composite
def stacks(draw, max_sources: int = 6, max_classes: int = 5):
    """(S, C, H, W) bool: random sizes (1×N and N×1 included), masks of every kind."""
    h = draw(st.integers(1, 20))
    w = draw(st.integers(1, 20))
    if draw(st.booleans()):
        h, w = (1, w) if draw(st.booleans()) else (h, 1)
    n_src = draw(st.integers(1, max_sources))
    n_cls = draw(st.integers(1, max_classes))
    out = np.zeros((n_src, n_cls, h, w), bool)
    for s in range(n_src):
        for c in range(n_cls):
            m = draw(masks(max_side=20))
            out[s, c, : min(h, m.shape[0]), : min(w, m.shape[1])] = m[:h, :w] != 0
    return out


# ---------------------------------------------------------------- exclusive_vote
@given(stacks(), st.data())
def test_exclusive_vote_equals_dense_reference(stack, data):
    n_src, n_cls, h, w = stack.shape
    kind = data.draw(st.sampled_from(["none", "source", "class"]))
    if kind == "none":
        weights, wm = None, np.ones((n_src, n_cls))
    elif kind == "source":
        weights = data.draw(st.lists(WEIGHTS, min_size=n_src, max_size=n_src))
        wm = np.repeat(np.array(weights)[:, None], n_cls, 1)
    else:
        wm = np.array(data.draw(st.lists(WEIGHTS, min_size=n_src * n_cls, max_size=n_src * n_cls))).reshape(
            n_src, n_cls
        )
        weights = wm
    bw = data.draw(st.none() | st.lists(WEIGHTS, min_size=n_src, max_size=n_src))
    masks_runs = [[encode(stack[s, c]) for c in range(n_cls)] for s in range(n_src)]
    got = exclusive_vote(masks_runs, weights, bw)
    assert len(got) == n_cls
    for r in got:
        assert_canonical(r)
    expected = dense_exclusive(stack, wm, np.ones(n_src) if bw is None else np.array(bw))
    np.testing.assert_array_equal(labels_of(got, (h, w)), expected)


def test_ties_go_to_the_background_then_to_the_first_class():
    a, b, none = np.array([[0, 4]]), np.array([[2, 6]]), np.zeros((0, 2), np.int64)
    # one vote each: class a vs the background on 0-1, a vs b on 2-3, b vs the background on 4-5
    got = exclusive_vote([[a, none], [none, b]])
    assert [r.tolist() for r in got] == [[[2, 4]], []]
    got = exclusive_vote([[a, none], [none, b]], background_weights=[0, 0])
    assert [r.tolist() for r in got] == [[[0, 4]], [[4, 6]]]
    # scores are float sums in source order: 0.1 + 0.2 is above 0.3, so a keeps 2-3
    got = exclusive_vote([[a, none], [a, none], [none, b]], [[0.1, 0], [0.2, 0], [0, 0.3]], [0, 0, 0])
    assert [r.tolist() for r in got] == [[[0, 4]], [[4, 6]]]
    got = exclusive_vote([[a, none], [a, none], [none, b]], [[0.25, 0], [0.25, 0], [0, 0.5]], [0, 0, 0])
    assert [r.tolist() for r in got] == [[[0, 4]], [[4, 6]]]  # an exact tie on 2-3: the first class
    # a class scoring 0 never wins, not even where no other label scores
    got = exclusive_vote([[a, b]], [[0.0, 1.0]], [0.0])
    assert [r.tolist() for r in got] == [[], [[2, 6]]]


def test_exclusive_vote_is_the_per_class_vote_with_one_class():
    from ensemble.mask_vote import vote

    rng = np.random.default_rng(3)
    ms = [encode(rng.random((30, 30)) < 0.4) for _ in range(5)]
    # one class, background votes 1 each: kept where more than half the sources mark it
    np.testing.assert_array_equal(exclusive_vote([[m] for m in ms])[0], vote(ms))


def test_exclusive_vote_errors():
    a = np.array([[0, 4]])
    with pytest.raises(ValueError, match="no sources"):
        exclusive_vote([])
    with pytest.raises(ValueError, match="source #2 lists 1 classes"):
        exclusive_vote([[a, a], [a]])
    with pytest.raises(ValueError, match=r"weights: shape \(3,\)"):
        exclusive_vote([[a], [a]], [1, 2, 3])
    with pytest.raises(ValueError, match="finite and >= 0"):
        exclusive_vote([[a], [a]], [1, -1])
    with pytest.raises(ValueError, match="background_weights: every weight"):
        exclusive_vote([[a], [a]], background_weights=[1, np.nan])
    assert exclusive_vote([[], []]) == []


def test_exclusive_vote_kernel_and_its_python_twin_agree():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_src, n_cls = rng.integers(1, 4, 2)
        ms = [encode(rng.random((6, 7)) < 0.4) for _ in range(n_src * n_cls)]
        runs, bounds = stack_runs(ms)
        w = rng.choice([0.0, 0.5, 1.0, 2.0], (n_src, n_cls))
        bw = rng.choice([0.0, 1.0, 1.5], n_src)
        out, label, k = exclusive_vote_kernel(runs, bounds, w, bw)
        want_out, want_label, want_k = exclusive_vote_kernel.py_func(runs, bounds, w, bw)
        assert k == want_k
        np.testing.assert_array_equal(out[:k], want_out[:k])
        np.testing.assert_array_equal(label[:k], want_label[:k])


# ---------------------------------------------------------------- overlaps
@st.composite
def class_stacks(draw):
    return draw(stacks(max_sources=1, max_classes=6))[0]


@given(class_stacks())
def test_overlaps_equal_dense_counts(stack):
    runs = [encode(m) for m in stack]
    n = stack.shape[0]
    total, pairs = overlap_counts(runs)
    assert total == overlaps(runs) == int((stack.sum(0) > 1).sum())
    want = np.array([[0 if i == j else int((stack[i] & stack[j]).sum()) for j in range(n)] for i in range(n)])
    np.testing.assert_array_equal(pairs, want)


@given(class_stacks())
def test_resolve_first_equals_dense_reference(stack):
    runs = [encode(m) for m in stack]
    got, pairs = resolve_overlaps(runs, "first")
    want = dense_first(stack)
    assert len(got) == len(runs)
    for c, r in enumerate(got):
        assert_canonical(r)
        np.testing.assert_array_equal(ref.decode(r, stack.shape[1:]).astype(bool), want[c])
    assert overlaps(got) == 0
    np.testing.assert_array_equal(pairs, overlap_counts(runs)[1])


@given(class_stacks())
def test_resolve_error_raises_exactly_when_classes_overlap(stack):
    runs = [encode(m) for m in stack]
    names = [f"k{c}" for c in range(len(runs))]
    if overlaps(runs) == 0:
        got, pairs = resolve_overlaps(runs, "error", names)
        assert not pairs.any()
        for r, m in zip(got, runs, strict=True):
            np.testing.assert_array_equal(r, m)
        return
    with pytest.raises(OverlapError) as info:
        resolve_overlaps(runs, "error", names, image="x.png")
    e = info.value
    i, j = next((i, j) for i in range(len(runs)) for j in range(i + 1, len(runs)) if (stack[i] & stack[j]).any())
    assert (e.first, e.second, e.pixels) == (i, j, int((stack[i] & stack[j]).sum()))
    assert str(e).startswith(f"image x.png: classes k{i} and k{j} overlap on ")
    assert isinstance(e, DataError) and isinstance(e, ValueError)


def test_resolve_overlaps_messages_and_errors():
    a, b, c = np.array([[0, 5]]), np.array([[4, 8]]), np.array([[3, 9]])
    with pytest.raises(OverlapError, match=r"^classes #1 and #2 overlap on 1 pixel, and 2 other pairs \("):
        resolve_overlaps([a, b, c])
    with pytest.raises(ValueError, match="policy: 'last' is not one of error, first"):
        resolve_overlaps([a, b], "last")
    with pytest.raises(ValueError, match="classes: 1 names for 2 masks"):
        resolve_overlaps([a, b], classes=["x"])
    e = pickle.loads(pickle.dumps(OverlapError("m", 1, 2, 3)))
    assert (str(e), e.first, e.second, e.pixels) == ("m", 1, 2, 3)
    assert overlaps([]) == 0 and resolve_overlaps([])[0] == []


def test_overlap_kernel_and_its_python_twin_agree():
    rng = np.random.default_rng(1)
    for _ in range(20):
        ms = [encode(rng.random((5, 9)) < 0.5) for _ in range(rng.integers(1, 5))]
        runs, bounds = stack_runs(ms)
        total, pairs = overlap_kernel(runs, bounds)
        want_total, want_pairs = overlap_kernel.py_func(runs, bounds)
        assert total == want_total
        np.testing.assert_array_equal(pairs, want_pairs)


def test_warm_up_steps_run_and_leave_their_kernels_cached():
    from core.warmup import OVERLAPS, compile_steps, steps_cached
    from ensemble.warmup import EXCLUSIVE, SOFT_EXCLUSIVE

    compile_steps(OVERLAPS, EXCLUSIVE, SOFT_EXCLUSIVE)
    assert steps_cached(OVERLAPS, EXCLUSIVE, SOFT_EXCLUSIVE)
