"""``quality.staple``: STAPLE and SIMPLE on runs against plain dense references written here
(per-pixel EM and per-pixel weighted majority over dense masks), the errors, the outputs,
and each kernel of ``quality._kernels`` against its plain-Python twin."""

from __future__ import annotations

import doctest
import importlib
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import Predictions
from core.errors import DataError, UsageError
from quality import MAX_SOURCES, staple
from quality import _kernels as K

EPS = 1e-4

# --- data -----------------------------------------------------------------------------------


def rle_of(mask: np.ndarray) -> str:
    """Submission RLE of a dense mask (row-major, 1-indexed), written here without ``core``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.reshape(-1).astype(np.int8), [0]])))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2]))


def dense_of(runs: np.ndarray, h: int, w: int) -> np.ndarray:
    """The dense mask of runs."""
    out = np.zeros(h * w, bool)
    for a, b in runs:
        out[a:b] = True
    return out.reshape(h, w)


def frames(masks: np.ndarray, classes: list[str], images: list[str]) -> list[pd.DataFrame]:
    """One DataFrame per source from dense ``masks[image, source, class]`` (H × W)."""
    n_images, n_sources, n_classes = masks.shape[:3]
    out = []
    for s in range(n_sources):
        rows = [(images[i], classes[c], rle_of(masks[i, s, c])) for i in range(n_images) for c in range(n_classes)]
        out.append(pd.DataFrame(rows, columns=["image_name", "class", "rle"]))
    return out


def preds_of(masks: np.ndarray) -> tuple[list[Predictions], list[str], list[str]]:
    n_images, n_sources, n_classes, h, w = masks.shape
    classes = [f"k{c}" for c in range(n_classes)]
    images = [f"img{i}.png" for i in range(n_images)]
    fr = frames(masks, classes, images)
    return [Predictions.from_frame(f, classes, h, w, name=f"s{j}") for j, f in enumerate(fr)], classes, images


@st.composite
def prediction_sets(draw, max_sources: int = 6) -> np.ndarray:
    """Dense ``masks[image, source, class, y, x]``: per class, empty everywhere, the same mask
    in every source, noisy copies of a truth (a flip rate per source), or independent noise."""
    n_sources = draw(st.integers(2, max_sources))
    n_classes = draw(st.integers(1, 3))
    n_images = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = np.zeros((n_images, n_sources, n_classes, h, w), bool)
    for c in range(n_classes):
        kind = draw(st.sampled_from(["empty", "same", "noisy", "noisy", "noisy", "noise"]))
        if kind == "same":
            out[:, :, c] = (rng.random((n_images, 1, h, w)) < rng.uniform(0, 1)).repeat(n_sources, 1)
        elif kind == "noisy":
            truth = rng.random((n_images, 1, h, w)) < rng.uniform(0.1, 0.7)
            flips = rng.random((n_images, n_sources, h, w)) < rng.uniform(0, 0.4, (1, n_sources, 1, 1))
            out[:, :, c] = truth ^ flips
        elif kind == "noise":
            out[:, :, c] = rng.random((n_images, n_sources, h, w)) < rng.uniform(0, 1, (1, n_sources, 1, 1))
    return out


# --- dense references -----------------------------------------------------------------------


def ref_staple_class(D, region, prior_mode, conf, s0, q0, tol, max_iter):
    """STAPLE per pixel: ``D`` (R, P) bool. Returns sens, spec, iterations, fused (P,) bool.

    As ``quality._kernels.em_kernel`` documents: every sum is ``math.fsum`` (exact, rounded
    once), ``Σ (1 - W)`` included; the complements ``1 - s``, ``1 - q``, ``1 - f`` are their
    own sums' quotients, never subtractions."""
    n_sources = D.shape[0]
    unanimous_on, unanimous_off = D.all(0), ~D.any(0)
    sel = ~(unanimous_on | unanimous_off) if region == "disagreement" else np.ones(D.shape[1], bool)
    fused = unanimous_on.copy() if region == "disagreement" else np.zeros(D.shape[1], bool)
    s, q = np.full(n_sources, s0), np.full(n_sources, q0)
    if not sel.any():
        return s, q, 0, fused
    sc, qc = np.full(n_sources, 1.0 - s0), np.full(n_sources, 1.0 - q0)
    Dm = D[:, sel]
    n = Dm.shape[1]
    marks, slots = int(Dm.sum()), n_sources * n
    f, fc = marks / slots, (slots - marks) / slots

    def post(s, sc, q, qc, f, fc):
        a = np.full(n, f)
        b = np.full(n, fc)
        for j in range(n_sources):
            a = a * np.where(Dm[j], s[j], sc[j])
            b = b * np.where(Dm[j], qc[j], q[j])
        den = a + b
        return np.where(den > 0, a / np.where(den > 0, den, 1.0), f)

    def one_minus(W):  # the exact Σ (1 - W), rounded once
        return math.fsum(np.concatenate([np.ones(len(W)), -W]))

    it = 0
    while it < max_iter:
        it += 1
        W = post(s, sc, q, qc, f, fc)
        sw, sv = math.fsum(W), one_minus(W)
        delta = 0.0
        if sw > 0:
            ns = np.array([math.fsum(W[Dm[j]]) / sw for j in range(n_sources)])
            sc = np.array([math.fsum(W[~Dm[j]]) / sw for j in range(n_sources)])
            delta = max(delta, np.abs(ns - s).max())
            s = ns
        if sv > 0:
            nq = np.array([one_minus(W[~Dm[j]]) / sv for j in range(n_sources)])
            qc = np.array([one_minus(W[Dm[j]]) / sv for j in range(n_sources)])
            delta = max(delta, np.abs(nq - q).max())
            q = nq
        if prior_mode == "estimate":
            delta = max(delta, abs(sw / n - f))
            f, fc = sw / n, sv / n
        if delta < tol:
            break
    fused[sel] = post(s, sc, q, qc, f, fc) >= conf - 1e-12  # exact ties kept (quality.patterns.TIE)
    return s, q, it, fused


def ref_vote(D, w):
    acc = np.zeros(D.shape[1])
    total = 0.0
    for j in range(D.shape[0]):
        acc = acc + w[j] * D[j]
        total += w[j]
    return acc / total > 0.5


def ref_simple_class(D, alpha, max_iter):
    """SIMPLE per pixel: ``D`` (R, P) bool. Returns weights, kept, dice, iterations, fused."""
    n_sources = D.shape[0]
    w, kept = np.ones(n_sources), np.ones(n_sources, bool)

    def dices(C):
        return np.array(
            [(2 * int((D[j] & C).sum()) + EPS) / (int(D[j].sum()) + int(C.sum()) + EPS) for j in range(n_sources)]
        )

    it = 0
    while it < max_iter:
        it += 1
        d = dices(ref_vote(D, w))
        ks = [j for j in range(n_sources) if kept[j]]
        m = 0.0
        for j in ks:
            m += d[j]
        m /= len(ks)
        v = 0.0
        for j in ks:
            v += (d[j] - m) ** 2
        limit = m - alpha * math.sqrt(v / len(ks))
        best = max(d[j] for j in ks)
        drop = [j for j in ks if d[j] < limit and d[j] < best]
        kept[drop] = False
        w = np.where(kept, d, 0.0)
        if not drop:
            break
    C = ref_vote(D, w)
    return w, kept, dices(C), it, C


def groups_of(masks, scope):
    """(group index, image indices) pairs."""
    n = masks.shape[0]
    return [(0, list(range(n)))] if scope == "pooled" else [(i, [i]) for i in range(n)]


def class_pixels(masks, images, c):
    """(R, P) pixels of class ``c`` over ``images`` (image after image)."""
    sel = masks[images, :, c]  # (I, R, H, W)
    return sel.transpose(1, 0, 2, 3).reshape(sel.shape[1], -1)


# --- STAPLE against the reference -----------------------------------------------------------

COMBOS = list(itertools.product(["pooled", "image"], ["all", "disagreement"], ["fixed", "estimate"]))


def check_staple(masks, scope, region, prior, conf=0.5, s0=0.99, q0=0.99, max_iter=100):
    preds, classes, images = preds_of(masks)
    n_images, n_sources, n_classes, h, w = masks.shape
    params = dict(confidence=conf, init_sensitivity=s0, init_specificity=q0, max_iter=max_iter)
    r = staple(preds, names=[f"s{j}" for j in range(n_sources)], scope=scope, region=region, prior=prior, **params)
    fused = np.zeros((n_images, n_classes, h * w), bool)
    for g, imgs in groups_of(masks, scope):
        for c in range(n_classes):
            s, q, it, f = ref_staple_class(class_pixels(masks, imgs, c), region, prior, conf, s0, q0, 1e-7, max_iter)
            # the sums are exact, so the estimates agree to the last bit (the brief asks 1e-9)
            assert r.sensitivity[g, :, c].tolist() == s.tolist()
            assert r.specificity[g, :, c].tolist() == q.tolist()
            assert r.iterations[g, c] == it
            fused[imgs, c] = f.reshape(len(imgs), h * w)
    for i in range(n_images):
        for c in range(n_classes):
            got = dense_of(r.runs(i, c), h, w).reshape(-1)
            assert np.array_equal(got, fused[i, c]), (i, c)
    return r


@given(prediction_sets())
def test_staple_equals_the_dense_reference_in_every_combination(masks):
    for scope, region, prior in COMBOS:
        check_staple(masks, scope, region, prior)


@given(
    prediction_sets(max_sources=4),
    st.sampled_from(COMBOS),
    st.floats(0.0, 1.0),
    st.floats(0.05, 0.999),
    st.floats(0.05, 0.999),
    st.integers(1, 5),
)
@settings(max_examples=60)
def test_staple_parameters_against_the_reference(masks, combo, conf, s0, q0, max_iter):
    check_staple(masks, *combo, conf=conf, s0=s0, q0=q0, max_iter=max_iter)


def test_staple_recovers_known_rates_on_a_larger_set():
    rng = np.random.default_rng(3)
    truth = rng.random((2, 1, 1, 40, 50)) < 0.3
    flips = rng.random((2, 5, 1, 40, 50)) < np.array([0.01, 0.05, 0.1, 0.2, 0.3])[None, :, None, None, None]
    masks = truth ^ flips
    for scope, region, prior in COMBOS:
        r = check_staple(masks, scope, region, prior)
        if scope == "pooled" and region == "all":
            assert list(np.argsort(-r.sensitivity[0, :, 0] - r.specificity[0, :, 0])) == [0, 1, 2, 3, 4]


# --- edge cases -----------------------------------------------------------------------------


def test_a_class_empty_everywhere():
    masks = np.zeros((2, 3, 1, 4, 5), bool)
    r = check_staple(masks, "pooled", "all", "fixed")
    assert r.sensitivity[0, :, 0].tolist() == [0.99] * 3 and r.specificity[0, :, 0].tolist() == [1.0] * 3
    assert r.iterations[0, 0] == 2 and r.prior[0, 0] == 0.0
    r = check_staple(masks, "pooled", "disagreement", "fixed")
    assert r.iterations[0, 0] == 0 and math.isnan(r.prior[0, 0])
    assert all(len(r.runs(i, 0)) == 0 for i in range(2))


def test_sources_agreeing_everywhere_keep_their_initial_estimates():
    one = np.random.default_rng(0).random((1, 1, 1, 5, 5)) < 0.5
    masks = one.repeat(4, 1)
    r = check_staple(masks, "image", "disagreement", "estimate", s0=0.9, q0=0.8)
    assert r.sensitivity[0, :, 0].tolist() == [0.9] * 4 and r.specificity[0, :, 0].tolist() == [0.8] * 4
    assert r.iterations[0, 0] == 0
    assert np.array_equal(dense_of(r.runs(0, 0), 5, 5), one[0, 0, 0])


def test_the_all_zero_pattern_can_be_accepted():
    masks = np.zeros((1, 2, 1, 3, 3), bool)
    masks[0, 0, 0, 0, 0] = True
    r = check_staple(masks, "pooled", "all", "fixed", conf=0.0)
    assert r.runs(0, 0).tolist() == [[0, 9]]


# --- SIMPLE -----------------------------------------------------------------------------------


@given(prediction_sets(), st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.sampled_from(["pooled", "image"]))
def test_simple_equals_the_dense_reference(masks, alpha, scope):
    preds, classes, images = preds_of(masks)
    n_images, n_sources, n_classes, h, w = masks.shape
    r = staple(preds, method="simple", alpha=alpha, scope=scope)
    for g, imgs in groups_of(masks, scope):
        for c in range(n_classes):
            wt, kept, dice, it, fused = ref_simple_class(class_pixels(masks, imgs, c), alpha, 100)
            assert r.weights[g, :, c].tolist() == wt.tolist()
            assert r.kept[g, :, c].tolist() == kept.tolist()
            assert r.dice[g, :, c].tolist() == dice.tolist()
            assert r.iterations[g, c] == it
            fused = fused.reshape(len(imgs), h * w)
            for k, i in enumerate(imgs):
                assert np.array_equal(dense_of(r.runs(i, c), h, w).reshape(-1), fused[k])


def test_simple_drops_the_worst_source():
    rng = np.random.default_rng(1)
    truth = rng.random((3, 1, 1, 30, 30)) < 0.4
    rates = np.array([0.02, 0.03, 0.04, 0.03, 0.45])[None, :, None, None, None]
    masks = truth ^ (rng.random((3, 5, 1, 30, 30)) < rates)
    first = staple(preds_of(masks)[0], method="simple", max_iter=1)
    assert first.kept[0, :, 0].tolist() == [True, True, True, True, False] and first.iterations[0, 0] == 1
    assert first.weights[0, 4, 0] == 0 and (first.weights[0, :4, 0] > 0.9).all()
    assert first.columns == ("source", "class", "weight", "dice", "kept", "iterations")
    # later rounds keep cutting below mean - std of the rest, as the method does with alpha 1
    r = staple(preds_of(masks)[0], method="simple")
    assert not r.kept[0, 4, 0] and r.kept[0, 0, 0] and r.iterations[0, 0] > 1
    assert staple(preds_of(masks)[0], method="simple", alpha=3).kept[0, :, 0].all()


# --- API, errors, outputs ---------------------------------------------------------------------


def test_more_than_16_sources_is_a_usage_error():
    masks = np.zeros((1, MAX_SOURCES + 1, 1, 2, 2), bool)
    with pytest.raises(UsageError, match="at most 16 sources") as e:
        staple(preds_of(masks)[0])
    assert e.value.param == "sources"
    staple(preds_of(masks[:, :MAX_SOURCES])[0])  # 16 is fine


BAD = [
    *[({k: v}, k) for k, v in [("scope", "global"), ("region", "some"), ("prior", "learned"), ("method", "vote")]],
    *[({k: v}, k) for k, v in [("confidence", 1.5), ("confidence", float("nan")), ("init_sensitivity", 1.0)]],
    *[({k: v}, k) for k, v in [("init_specificity", 0), ("tol", 0), ("max_iter", 0), ("max_iter", 2.5)]],
    *[({k: v}, k) for k, v in [("alpha", -1), ("missing", "zero"), ("names", ["a"]), ("names", ["a", "a"])]],
    ({"method": "simple", "region": "disagreement"}, "region"),
]


@pytest.mark.parametrize("kwargs, param", BAD)
def test_bad_parameters_name_themselves(kwargs, param):
    masks = np.zeros((1, 2, 1, 2, 2), bool)
    with pytest.raises(UsageError) as e:
        staple(preds_of(masks)[0], **kwargs)
    assert e.value.param == param


def test_one_source_and_differing_sets_are_refused():
    masks = np.zeros((2, 2, 1, 2, 2), bool)
    preds = preds_of(masks)[0]
    with pytest.raises(UsageError, match="at least 2"):
        staple(preds[:1])
    other = preds_of(masks[:1])[0][0]
    with pytest.raises(DataError, match="image set differs"):
        staple([preds[0], other])


def test_missing_rows(tmp_path):
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text("image_name,class,rle\nx.png,k0,1 2\nx.png,k1,\n")
    b.write_text("image_name,class,rle\nx.png,k0,1 3\n")
    with pytest.raises(DataError, match="missing row"):
        staple([a, b], classes=["k0", "k1"], height=2, width=2)
    r = staple([a, b], classes=["k0", "k1"], height=2, width=2, missing="empty", region="disagreement")
    assert r.n_missing == 1 and r.names == ["a", "b"]
    # pixel 2, marked by b alone, is a tie by symmetry (posterior 0.5 exactly): kept
    assert r.runs("x.png", "k0").tolist() == [[0, 3]] and r.runs("x.png", "k1").tolist() == []


def test_files_in_and_out(tmp_path):
    masks = np.random.default_rng(4).random((3, 3, 2, 5, 6)) < 0.5
    classes, images = ["k0", "k1"], ["b.png", "a.png", "c.png"]
    paths = []
    for j, f in enumerate(frames(masks, classes, images)):
        p = tmp_path / f"model{j}.csv"
        f.sample(frac=1, random_state=j).to_csv(p, index=False)  # row order must not matter
        paths.append(p)
    for scope in ("pooled", "image"):
        mem = staple(paths, scope=scope, classes=classes, height=5, width=6)
        out = tmp_path / f"fused_{scope}.csv"
        r = staple(paths, output=out, scope=scope, classes=classes, height=5, width=6)
        assert r.masks is None and r.output == str(out) and r.rows == 6
        written = pd.read_csv(out, keep_default_na=False)
        assert written["image_name"].tolist() == [
            i for i in pd.read_csv(paths[0])["image_name"].unique() for _ in classes
        ]
        assert written.values.tolist() == mem.to_frame().values.tolist()
        est = tmp_path / f"est_{scope}.csv"
        assert r.write_estimates(est) == 3 * 2 * (1 if scope == "pooled" else 3)
        back = pd.read_csv(est)
        assert tuple(back.columns) == r.columns
        assert back.columns[0] == ("image_name" if scope == "image" else "source")
        assert back["sensitivity"].tolist() == [row[-3] for row in r.estimate_rows()]
    with pytest.raises(UsageError, match="also an input"):
        staple(paths, output=paths[1], classes=classes, height=5, width=6)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_mapping_names_progress_and_an_interrupted_write(tmp_path):
    preds = preds_of(np.random.default_rng(5).random((2, 3, 1, 3, 3)) < 0.5)[0]
    seen = []

    class Bar:
        def __init__(self, **kw):
            seen.append(kw)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            pass

        def update(self, n=1):
            seen.append(n)
            if len(seen) == 5 and self.fail:
                raise KeyboardInterrupt

    Bar.fail = False
    assert staple(dict(zip("xyz", preds)), progress=Bar).names == ["x", "y", "z"]
    assert seen == [{"total": 4, "desc": "staple", "unit": "img"}, 1, 1, 1, 1]
    seen.clear()
    Bar.fail = True
    with pytest.raises(KeyboardInterrupt):  # mid-way through the second pass: nothing is left behind
        staple(preds, output=tmp_path / "out.csv", progress=Bar)
    assert list(tmp_path.iterdir()) == []


def test_doctests():
    result = doctest.testmod(importlib.import_module("quality.staple"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- kernels and their plain-Python twins -----------------------------------------------------


@given(prediction_sets(max_sources=5), st.integers(0, 2**32 - 1))
@settings(max_examples=40)
def test_kernels_equal_their_python_twins(masks, seed):
    preds, classes, images = preds_of(masks)
    n_images, n_sources, n_classes, h, w = masks.shape
    masks_runs = [preds[s].runs(0, c) for c in range(n_classes) for s in range(n_sources)]
    bounds = np.zeros(len(masks_runs) + 1, np.int64)
    np.cumsum([len(m) for m in masks_runs], out=bounds[1:])
    runs = np.ascontiguousarray(np.concatenate(masks_runs), np.int64).reshape(-1, 2)
    h1 = np.zeros((n_classes, 1 << n_sources), np.int64)
    h2 = h1.copy()
    K.histogram_kernel(runs, bounds, n_sources, h * w, h1)
    K.histogram_kernel.py_func(runs, bounds, n_sources, h * w, h2)
    assert np.array_equal(h1, h2) and (h1.sum(1) == h * w).all()
    rng = np.random.default_rng(seed)
    accept = rng.random((n_classes, 1 << n_sources)) < 0.5
    for a, b in zip(
        K.fuse_kernel(runs, bounds, n_sources, h * w, accept),
        K.fuse_kernel.py_func(runs, bounds, n_sources, h * w, accept),
    ):
        assert np.array_equal(a, b)
    b0 = bounds[: n_sources + 1]
    assert K.sweep_start(runs, b0) == K.sweep_start.py_func(runs, b0)
    pats = np.flatnonzero(h1[0]).astype(np.int64)
    counts = h1[0][pats]
    sens, spec = rng.uniform(0, 1, n_sources), rng.uniform(0, 1, n_sources)
    for p in pats:
        args = (p, sens, 1 - sens, spec, 1 - spec, 0.3, 0.7)
        assert K.posterior(*args) == K.posterior.py_func(*args)
    args = (pats, counts, n_sources, 0.99, 0.98, 0.4, 0.6, bool(seed % 2), 1e-7, 50)
    for a, b in zip(K.em_kernel(*args), K.em_kernel.py_func(*args)):
        assert np.array_equal(a, b)
    args = (pats, counts, n_sources, 1.0, 100, EPS)
    for a, b in zip(K.simple_kernel(*args), K.simple_kernel.py_func(*args)):
        assert np.array_equal(a, b)
    weights = rng.uniform(0, 1, n_sources)
    v = K.vote_patterns(pats, weights)
    assert np.array_equal(v, K.vote_patterns.py_func(pats, weights))
    assert np.array_equal(
        K.dice_patterns(pats, counts, v, n_sources, EPS), K.dice_patterns.py_func(pats, counts, v, n_sources, EPS)
    )


@given(st.lists(st.floats(-1e290, 1e290), max_size=60))
def test_the_exact_sum_is_math_fsum(values):
    arr = np.array(values, np.float64)
    assert K.fsum_kernel(arr) == K.fsum_kernel.py_func(arr) == math.fsum(values)


@given(st.lists(st.tuples(st.integers(0, 2**53 - 1), st.floats(0, 1)), max_size=8))
def test_products_are_added_exactly(terms):
    from fractions import Fraction

    for kernel in (K.acc_add_product, K.acc_add_product.py_func):
        part, lens = np.zeros((1, K.MAX_PARTIALS)), np.zeros(1, np.int64)
        for n, x in terms:
            kernel(part, lens, 0, n, x)
        assert K.acc_value(part, lens, 0) == float(sum((Fraction(n) * Fraction(x) for n, x in terms), Fraction(0)))
    part, lens = np.zeros((2, K.MAX_PARTIALS)), np.zeros(2, np.int64)
    for n, x in terms:
        K.acc_add_product(part, lens, 1, n, x)
    K.acc_merge.py_func(part, lens, 0, 1)
    assert K.acc_value.py_func(part, lens, 0) == K.acc_value(part, lens, 1)
