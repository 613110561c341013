"""Block kernels (one call per block of images) against plain dense references.

The vote of a block must equal the dense weighted vote of every (image, class) — with
per-class weights (zeros included), per-class thresholds or ``min_votes``, absent rows —
across block boundaries; copied rows (select, merge) must equal their source text.
"""

import numpy as np
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from core._block_kernels import rows_kernel, vote_block_kernel
from core._run_kernels import decision_table
from core.blocks import BLOCK, Fields, copy_block, gather, spans, write_copied
from core.predictions import predictions_from_rles, read_predictions
from ensemble.vote_plan import TABLE_SOURCES, VotePlan, align, run_plan

H, W = 6, 7


def _masks(rng, n_images, n_classes, p):
    return rng.random((n_images, n_classes, H, W)) < p


def _source(label, masks, classes, images, spaces=False):
    pad = " " if spaces else ""
    rles = [
        [pad + ref.format_rle(ref.encode(masks[i, c])) + pad for c in range(len(classes))] for i in range(len(images))
    ]
    return predictions_from_rles(label, classes, images, rles, H, W)


@st.composite
def vote_cases(draw):
    n_sources = draw(st.sampled_from([1, 2, 3, 4, TABLE_SOURCES + 1]))  # the last: no decision table
    n_images = draw(st.sampled_from([1, 3, BLOCK, BLOCK + 1, 2 * BLOCK + 5]))
    n_classes = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    weights = np.array(
        [[draw(st.sampled_from([0.0, 0.25, 1.0, 1 / 3, 2.0])) for _ in range(n_classes)] for _ in range(n_sources)]
    )
    weights[0, weights.sum(0) <= 0] = 1.0
    thresholds = np.array([draw(st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 2 / 3, 0.9])) for _ in range(n_classes)])
    min_votes = draw(st.integers(0, 1)) * draw(st.integers(1, max(1, int((weights > 0).sum(0).min()))))
    return n_sources, n_images, n_classes, seed, weights, thresholds, min_votes


@settings(max_examples=60, deadline=None)
@given(vote_cases())
def test_block_vote_equals_dense_reference(tmp_path_factory, case):
    n_sources, n_images, n_classes, seed, weights, thresholds, min_votes = case
    rng = np.random.default_rng(seed)
    classes = tuple("abc"[:n_classes])
    images = [f"i{k},{k}.png" if k % 5 == 0 else f"i{k}.png" for k in range(n_images)]  # some quoted
    dense = [_masks(rng, n_images, n_classes, rng.uniform(0.1, 0.9)) for _ in range(n_sources)]
    sources = [_source(f"s{s}", dense[s], classes, images, spaces=s == 0) for s in range(n_sources)]
    plan = VotePlan(align(sources), weights, thresholds, min_votes)
    out = tmp_path_factory.mktemp("b") / "vote.csv"
    run_plan(plan, str(out), classes)
    got = read_predictions(out, classes, H, W)
    in_memory = run_plan(plan, None, classes)
    assert got.images == images
    for i in range(n_images):
        for c in range(n_classes):
            used = np.flatnonzero(weights[:, c] > 0)
            want = ref.vote([dense[s][i, c] for s in used], weights[used, c], thresholds[c], min_votes or None)
            np.testing.assert_array_equal(got.runs(i, c), ref.encode(want))
            assert in_memory[i][c] == ref.format_rle(ref.encode(want))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.sampled_from([1, BLOCK, BLOCK + 3]), st.integers(0, 2**32 - 1))
def test_copied_rows_equal_their_source_text(tmp_path_factory, n_sources, n_images, seed):
    rng = np.random.default_rng(seed)
    classes = ("a", "b")
    images = [f"i{k}.png" for k in range(n_images)]
    dense = [_masks(rng, n_images, 2, 0.4) for _ in range(n_sources)]
    sources = [_source(f"s{s}", dense[s], classes, images, spaces=True) for s in range(n_sources)]
    which = rng.integers(-1, n_sources, (n_images, 2))
    rows = np.where(which >= 0, np.arange(n_images * 2).reshape(n_images, 2), -1)
    out = tmp_path_factory.mktemp("c") / "copy.csv"
    write_copied(str(out), sources, which, rows, images, classes)
    want = ["image_name,class,rle"] + [
        f"{images[i]},{classes[c]},{sources[which[i, c]].rle(i, c) if which[i, c] >= 0 else ''}"
        for i in range(n_images)
        for c in range(2)
    ]
    assert out.read_text().splitlines() == want


def test_block_kernels_match_their_python_twins():
    rng = np.random.default_rng(3)
    classes, images = ("a", "b"), ["x.png", "y.png"]
    sources = [_source(f"s{s}", _masks(rng, 2, 2, 0.5), classes, images) for s in range(3)]
    rows = np.repeat(np.arange(4), 3)  # mask k = (i * C + c) * S + s: row i * C + c of each source
    which = np.tile(np.arange(3), 4)
    text, offsets, runs = gather(sources, which, rows)
    names, cls = Fields.of(images), Fields.classes(classes)
    w, t = np.array([[1.0, 0.0], [2.0, 1.0], [1.0, 1.0]]), np.array([0.5, 0.25])
    voted = []
    for table in (decision_table(w, t, 0), np.zeros((2, 0), bool)):  # looked up, or summed per segment
        args = (text, offsets, runs, w, t, 0, table, H * W, names.text, names.offsets, cls.text, cls.offsets)
        a, b = np.zeros(4096, np.uint8), np.zeros(4096, np.uint8)
        (end_a, spans_a), (end_b, spans_b) = vote_block_kernel(*args, a), vote_block_kernel.py_func(*args, b)
        assert end_a == end_b and a[:end_a].tobytes() == b[:end_b].tobytes()
        np.testing.assert_array_equal(spans_a, spans_b)
        voted.append(a[:end_a].tobytes())
    assert voted[0] == voted[1] and voted[0].count(b"\n") == 4
    copied = copy_block(sources, np.zeros((2, 2), np.int64), np.arange(4).reshape(2, 2), images, cls)
    text, offsets, _ = gather(sources, np.zeros(4, np.int64), np.arange(4))
    out = np.zeros(4096, np.uint8)
    no_runs, run_span = np.zeros((0, 2), np.int64), np.zeros((4, 2), np.int64)
    end = rows_kernel.py_func(
        text,
        spans(offsets),
        no_runs,
        run_span,
        np.zeros(4, bool),
        names.text,
        names.offsets,
        cls.text,
        cls.offsets,
        out,
    )
    assert out[:end].tobytes() == copied


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([1, BLOCK + 3]), st.integers(0, 2**32 - 1))
def test_block_cleaning_equals_the_mask_by_mask_pipeline(tmp_path_factory, n_images, seed):
    """postprocess's block path: each cleaned class by one kernel call per block; the text of
    the other classes copied as written; counts as the one-mask path counts them."""
    from postprocess.clean_set import clean_all
    from postprocess.cleaner import Cleaner, Rules, clean

    rng = np.random.default_rng(seed)
    classes = ("a", "b", "c")
    images = [f"i{k}.png" for k in range(n_images)]
    preds = _source("p", _masks(rng, n_images, 3, rng.uniform(0.2, 0.7)), classes, images, spaces=True)
    rules = [Rules(keep_largest=1, fill_holes=True), None, Rules(open=1, min_size=3, connectivity=4)]
    blocks, masks = Cleaner(rules, classes, H, W), Cleaner(rules, classes, H, W)
    out = tmp_path_factory.mktemp("p") / "clean.csv"
    clean_all(preds, blocks, str(out))
    got = out.read_text().splitlines()[1:]
    for i in range(n_images):
        for c in range(3):
            want = preds.rle(i, c) if rules[c] is None else ref.format_rle(clean(preds.runs(i, c), H, W, rules[c]))
            assert got[i * 3 + c] == f"{images[i]},{classes[c]},{want}"
            masks(c, preds.runs(i, c))
    np.testing.assert_array_equal(blocks.stats(), masks.stats())


def test_in_threads_keeps_order_raises_in_place_and_stays_single_in_a_cluster_chunk():
    import threading

    import pytest

    from core.stream import in_threads, selecting

    def work(k):
        if k == 7:
            raise ValueError("failure at 7")
        return k, threading.get_ident()

    with in_threads(work, 7) as results:
        assert [k for k, _ in results] == list(range(7))
    got = []
    with pytest.raises(ValueError, match="failure at 7"), in_threads(work, 12) as results:
        for k, _ in results:
            got.append(k)
    assert got == list(range(7))  # the items before the failing one came out first
    with selecting(0, 4), in_threads(work, 5) as results:
        assert {ident for _, ident in results} == {threading.get_ident()}  # a chunk: no threads of its own
