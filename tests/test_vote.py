import numpy as np
import pytest
import reference as ref
from helpers import CLASSES, run_cli, write_csv
from hypothesis import given
from hypothesis import strategies as st
from strategies import masks

from core._run_kernels import vote_kernel
from core.codec import encode, format_rle
from core.predictions import read_predictions
from core.synthetic import Generator, write_set
from ensemble.mask_vote import vote


@st.composite
def mask_sets(draw):
    n = draw(st.integers(1, 6))
    first = draw(masks(max_side=24))
    h, w = first.shape
    out = [first != 0]
    for _ in range(n - 1):
        m = draw(masks(max_side=24, min_side=1))
        full = np.zeros((h, w), bool)
        full[: min(h, m.shape[0]), : min(w, m.shape[1])] = m[:h, :w] != 0
        out.append(full)
    return out


WEIGHTS = st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.25, 0.5, 1.0, 1 / 3, 2.0, 3.0, 0.7])
THRESHOLDS = st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.4, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.9, 0.99])


@given(mask_sets(), THRESHOLDS)
def test_hard_vote_equals_dense_reference(ms, t):
    expected = ref.vote(ms, [1.0] * len(ms), t)
    np.testing.assert_array_equal(vote([encode(m) for m in ms], threshold=t), ref.encode(expected))


@given(mask_sets(), st.data())
def test_weighted_vote_equals_dense_reference_ties_included(ms, data):
    w = data.draw(st.lists(WEIGHTS, min_size=len(ms), max_size=len(ms)))
    if sum(w) <= 0:
        w[0] = 1.0
    t = data.draw(THRESHOLDS)
    expected = ref.vote(ms, w, t)
    np.testing.assert_array_equal(vote([encode(m) for m in ms], w, t), ref.encode(expected))


@given(mask_sets(), st.data())
def test_min_votes_equals_dense_reference(ms, data):
    k = data.draw(st.integers(1, len(ms)))
    expected = ref.vote(ms, [1.0] * len(ms), 0.5, min_votes=k)
    np.testing.assert_array_equal(vote([encode(m) for m in ms], min_votes=k), ref.encode(expected))


def test_exact_tie_is_not_kept():
    a, b = np.array([[0, 4]]), np.array([[2, 6]])
    np.testing.assert_array_equal(vote([a, b], threshold=0.5), [[2, 4]])  # 1/2 is not > 0.5
    np.testing.assert_array_equal(vote([a, b], [1.0, 3.0], threshold=0.25), [[2, 6]])  # 1/4 is not > 0.25
    np.testing.assert_array_equal(vote([a, b], min_votes=1), [[0, 6]])


def test_kernel_matches_python_twin():
    runs = np.array([[0, 4], [9, 12], [2, 6], [10, 20], [3, 11]], np.int64)
    bounds = np.array([0, 2, 4, 5], np.int64)
    w = np.array([1.0, 2.0, 0.5])
    for t, k in [(0.5, 0), (0.2, 0), (0.5, 2)]:
        np.testing.assert_array_equal(vote_kernel(runs, bounds, w, t, k), vote_kernel.py_func(runs, bounds, w, t, k))


def test_vote_rejects_bad_arguments():
    with pytest.raises(ValueError):
        vote([np.zeros((0, 2))], [-1.0])
    with pytest.raises(ValueError):
        vote([np.zeros((0, 2))] * 2, min_votes=3)


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    gen = Generator(n_images=3, n_models=4, height=96, width=80, classes=CLASSES, seed=5)
    paths = write_set(gen, folder)
    return gen, paths


def _dense(paths, classes, h, w):
    preds = [read_predictions(p, classes, h, w) for p in paths]
    return preds


def test_hard_cli_matches_dense_reference(synth, tmp_path):
    gen, paths = synth
    models = [paths[m] for m in gen.model_names]
    out = tmp_path / "hard.csv"
    r = run_cli("hard", *models, "-o", out, "--classes", "a,b,c", "--height", 96, "--width", 80, "--quiet")
    assert r.exit_code == 0, r.output
    got = read_predictions(out, CLASSES, 96, 80)
    src = _dense(models, CLASSES, 96, 80)
    assert got.images == src[0].images
    for i in range(len(got.images)):
        for c in range(3):
            ms = [ref.decode(p.runs(i, c), (96, 80)) for p in src]
            np.testing.assert_array_equal(got.runs(i, c), ref.encode(ref.vote(ms, [1.0] * 4, 0.5)))


def test_weighted_cli_with_settings_per_class_and_repointing(synth, tmp_path):
    gen, paths = synth
    m = gen.model_names
    setting = tmp_path / "fusion.yaml"
    setting.write_text(
        f"sources: {{x: /nonexistent.csv, y: {paths[m[1]]}, z: {paths[m[2]]}}}\n"
        "weights: {default: {x: 1, y: 2, z: 1}, b: {y: 0}}\n"
        "threshold: {default: 0.5, c: 0.2}\n"
        "classes: [a, b, c]\nheight: 96\nwidth: 80\n"
    )
    out = tmp_path / "w.csv"
    r = run_cli("weighted", "--setting", setting, "--source", f"x={paths[m[0]]}", "-o", out, "--quiet")
    assert r.exit_code == 0, r.stderr
    got = read_predictions(out, CLASSES, 96, 80)
    src = _dense([paths[m[0]], paths[m[1]], paths[m[2]]], CLASSES, 96, 80)
    wts = {0: [1, 2, 1], 1: [1, 0, 1], 2: [1, 2, 1]}
    thr = {0: 0.5, 1: 0.5, 2: 0.2}
    for i in range(len(got.images)):
        for c in range(3):
            ms = [ref.decode(p.runs(i, c), (96, 80)) for p in src]
            np.testing.assert_array_equal(got.runs(i, c), ref.encode(ref.vote(ms, wts[c], thr[c])))


def test_workers_give_identical_output(synth, tmp_path):
    gen, paths = synth
    models = [paths[m] for m in gen.model_names]
    outs = []
    for k in (1, 2):
        out = tmp_path / f"w{k}.csv"
        r = run_cli(
            "hard",
            *models,
            "-o",
            out,
            "--classes",
            "a,b,c",
            "--height",
            96,
            "--width",
            80,
            "--workers",
            k,
            "--min-votes",
            2,
            "--quiet",
        )
        assert r.exit_code == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]


def test_missing_rows_and_mismatched_images(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("x.png", c, "1 2") for c in CLASSES])
    b = write_csv(tmp_path / "b.csv", [("x.png", c, "2 2") for c in CLASSES[:2]])
    out = tmp_path / "out.csv"
    r = run_cli("hard", a, b, "-o", out, "--classes", "a,b,c", "--height", 4, "--width", 4, "--quiet")
    assert r.exit_code == 1  # readable files whose contents do not fit together: invalid data
    assert "b.csv: image x.png, class c: missing row" in r.stderr
    assert not out.exists()
    r = run_cli(
        "hard",
        a,
        b,
        "-o",
        out,
        "--classes",
        "a,b,c",
        "--height",
        4,
        "--width",
        4,
        "--missing",
        "empty",
        "--min-votes",
        1,
    )
    assert r.exit_code == 0 and "1 missing row counted as empty votes" in r.stderr
    assert out.read_text().splitlines()[1:] == ["x.png,a,1 3", "x.png,b,1 3", "x.png,c,1 2"]
    c = write_csv(tmp_path / "c.csv", [("y.png", k, "") for k in CLASSES])
    r = run_cli("hard", a, c, "-o", tmp_path / "o2.csv", "--classes", "a,b,c", "--height", 4, "--width", 4)
    assert r.exit_code == 1 and "image set differs" in r.stderr and "x.png" in r.stderr


def test_malformed_input_names_file_line_image_class(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("x.png", c, "1 2") for c in CLASSES])
    b = write_csv(tmp_path / "b.csv", [("x.png", "a", "1 2"), ("x.png", "b", "3 1 1 1"), ("x.png", "c", "")])
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    r = run_cli("hard", a, b, "-o", out, "--classes", "a,b,c", "--height", 4, "--width", 4)
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {b}:3: image x.png, class b: invalid RLE: runs not ascending or overlapping at value #4"
    ]
    assert out.read_text() == "previous\n"


def test_usage_errors(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("x.png", c, "1 2") for c in CLASSES])
    r = run_cli("hard", a, a, "-o", a, "--classes", "a,b,c")
    assert r.exit_code == 2 and "overwrite an input" in r.stderr
    r = run_cli("weighted", a, a, "-o", tmp_path / "o.csv", "--classes", "a,b,c", "--weights", "1,2,3")
    assert r.exit_code == 2 and "3 weights for 2 sources" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [a.csv, b.csv]\nweigths: [1, 2]\n")
    r = run_cli("weighted", "--setting", bad, "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "weigths: unknown key" in r.stderr
    bad.write_text("weights: {default: [1, 1], Nope: [1, 0]}\n")
    r = run_cli("weighted", a, a, "--setting", bad, "-o", tmp_path / "o.csv", "--classes", "a,b,c")
    assert r.exit_code == 2 and "'Nope' is neither a source nor a class" in r.stderr
    r = run_cli("hard", a, a, "-o", tmp_path / "o.csv", "--min-votes", 3, "--classes", "a,b,c")
    assert r.exit_code == 2 and "min_votes 3: class a has only 2 sources with weight > 0" in r.stderr


def test_python_api_runs_on_text(tmp_path):
    eye, full = np.eye(4, dtype=np.uint8), np.ones((4, 4), bool)
    runs = vote([encode(eye), encode(eye), encode(full)])
    assert format_rle(runs) == "1 1 6 1 11 1 16 1"
