import numpy as np
import yaml
from helpers import CLASSES, run_cli, write_csv
from hypothesis import given
from hypothesis import strategies as st
from strategies import masks

from core._run_kernels import coverage_kernel
from core.codec import encode, format_rle
from core.predictions import predictions_from_rles, read_predictions
from core.runs import intersection_area
from core.score import dice_matrix
from core.sweep import stack_runs
from core.synthetic import Generator, write_set
from evaluation.search import Choice, coverage, dice_of


def _fit(m, h, w):
    out = np.zeros((h, w), bool)
    out[: min(h, m.shape[0]), : min(w, m.shape[1])] = m[:h, :w] != 0
    return out


@given(st.lists(masks(max_side=16), min_size=2, max_size=5))
def test_coverage_histograms_equal_dense_counts(ms):
    gt, *srcs = [_fit(m, 16, 16) for m in ms]
    n = len(srcs)
    runs, bounds = stack_runs([encode(m) for m in srcs])
    length = np.zeros(1 << n, np.int64)
    hit = np.zeros(1 << n, np.int64)
    coverage_kernel(runs, bounds, encode(gt), length, hit)
    subset = sum(m.astype(np.int64) << i for i, m in enumerate(srcs))
    exp_len = np.bincount(subset.ravel(), minlength=1 << n)
    exp_hit = np.bincount(subset[gt].ravel(), minlength=1 << n)
    np.testing.assert_array_equal(length[1:], exp_len[1:])  # subset 0 (no source) is never kept
    np.testing.assert_array_equal(hit[1:], exp_hit[1:])
    l2, h2 = np.zeros_like(length), np.zeros_like(hit)
    coverage_kernel.py_func(runs, bounds, encode(gt), l2, h2)
    np.testing.assert_array_equal(l2, length)
    np.testing.assert_array_equal(h2, hit)


@given(st.lists(masks(max_side=12, min_side=12), min_size=3, max_size=4), st.data())
def test_histogram_dice_equals_voting_then_scoring(ms, data):
    gt, *srcs = [m[:12, :12] != 0 for m in ms]
    n = len(srcs)
    w = tuple(float(x) for x in data.draw(st.lists(st.sampled_from([0, 1, 2, 0.5]), min_size=n, max_size=n)))
    if not any(w):
        w = (1.0,) * n
    t = data.draw(st.sampled_from([0.0, 0.25, 1 / 3, 0.5, 0.6, 0.75]))
    as_preds = lambda name, m: predictions_from_rles(name, ["x"], ["i.png"], [[format_rle(encode(m))]], 12, 12)
    g = as_preds("gt", gt)
    cov = coverage(g, [as_preds(f"s{i}", m) for i, m in enumerate(srcs)], [f"s{i}" for i in range(n)])
    got = dice_of(Choice(w, t).keep(n)[None], cov, 0)[0]
    from ensemble.mask_vote import vote

    voted = vote([encode(m) for m in srcs], w, t)
    expected = dice_matrix(predictions_from_rles("v", ["x"], ["i.png"], [[format_rle(voted)]], 12, 12), g)[0, 0]
    assert got == expected


def test_tune_picks_planted_source_and_round_trips(tmp_path):
    gen = Generator(n_images=4, n_models=3, height=64, width=64, classes=CLASSES, seed=3)
    paths = write_set(gen, tmp_path / "val")
    # plant: a copy of the ground truth for class 'b' in model2
    gt = read_predictions(paths["gt"], CLASSES, 64, 64)
    m2 = read_predictions(paths["model2"], CLASSES, 64, 64)
    rows = [
        (name, cls, gt.rle(i, c) if cls == "b" else m2.rle(i, c))
        for i, name in enumerate(gt.images)
        for c, cls in enumerate(CLASSES)
    ]
    planted = write_csv(tmp_path / "planted.csv", rows)
    tuned = tmp_path / "tuned.yaml"
    shape = ["--classes", "a,b,c", "--height", 64, "--width", 64]
    r = run_cli(
        "tune",
        "--gt",
        paths["gt"],
        "--source",
        f"m1={paths['model1']}",
        "--source",
        f"m2={planted}",
        "--source",
        f"m3={paths['model3']}",
        "-o",
        tuned,
        *shape,
        "--quiet",
    )
    assert r.exit_code == 0, r.stderr
    cfg = yaml.safe_load(tuned.read_text())
    assert cfg["weights"]["b"] == {"m1": 0, "m2": 1, "m3": 0}
    table = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    # columns: class, hard vote, best single (name, dice), combined, cleaned, choice
    assert table["b"][4] == "1.0000" and table["b"][5] == "-" and " ".join(table["b"][6:]) == "only m2"
    # the settings apply through `weighted` given only new paths (copies standing in for test
    # files; classes and size come from the file) and reproduce the validation Dice claimed
    import shutil

    moved = {
        n: shutil.copy(p, tmp_path / f"test_{n}.csv")
        for n, p in {"m1": paths["model1"], "m2": planted, "m3": paths["model3"]}.items()
    }
    out = tmp_path / "applied.csv"
    r2 = run_cli("weighted", "--setting", tuned, *(f"--source={n}={p}" for n, p in moved.items()), "-o", out, "--quiet")
    assert r2.exit_code == 0, r2.stderr
    d = dice_matrix(read_predictions(out, CLASSES, 64, 64), gt).mean(0)
    for c, cls in enumerate(CLASSES):
        final = table[cls][5] if table[cls][5] != "-" else table[cls][4]
        assert abs(d[c] - float(final)) < 5e-5
    assert abs(float(table["mean"][-1]) - d.mean()) < 5e-5
    r3 = run_cli("weighted", "--setting", tuned, "--source", f"m9={moved['m1']}", "-o", out, "--quiet")
    assert r3.exit_code == 2 and "names no source 'm9'" in r3.stderr


def test_tune_usage_errors(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("x.png", c, "1 1") for c in CLASSES])
    r = run_cli("tune", "--gt", a, a, "-o", tmp_path / "t.yaml", "--classes", "a,b,c")
    assert r.exit_code == 2 and "at least two sources" in r.stderr
    r = run_cli(
        "tune", "--gt", a, "--source", f"x={a}", "--source", f"x={a}", "-o", tmp_path / "t.yaml", "--classes", "a,b,c"
    )
    assert r.exit_code == 2 and "two sources named 'x'" in r.stderr


def test_cleaning_is_accepted_only_where_it_helps():
    from evaluation.search import coverage, tune_cleaning, tune_combination

    h = w = 32
    two_blobs = np.zeros((h, w), np.uint8)
    two_blobs[2:12, 2:12] = 1
    two_blobs[20:23, 20:23] = 1  # a real small component: removing it hurts
    blob = np.zeros((h, w), np.uint8)
    blob[5:20, 5:20] = 1
    blob[8:10, 8:10] = 0  # a real hole: filling it hurts
    specks = blob.copy()
    specks[28:30, 28:30] = 1  # a false positive every source shares
    classes = ["a", "b"]

    def preds(label, masks_by_class):
        return predictions_from_rles(label, classes, ["i.png"], [[format_rle(encode(m)) for m in masks_by_class]], h, w)

    gt = preds("gt", [two_blobs, blob])
    sources = [preds(f"s{k}", [two_blobs, specks]) for k in range(3)]
    cov = coverage(gt, sources, ["s0", "s1", "s2"])
    results = tune_combination(cov, classes)
    tune_cleaning(results, gt, sources)
    assert results[0].rules is None and results[0].final == 1.0
    assert results[1].rules is not None and results[1].cleaned == 1.0 > results[1].dice
    assert not results[1].rules.fill_holes  # the hole is real


def test_soft_histograms_equal_soft_voting_at_every_threshold():
    from ensemble.soft_image import Layer, histogram_class, vote_class
    from evaluation.search import SOFT_THRESHOLDS

    rng = np.random.default_rng(0)
    h, w = 40, 52
    layers = [
        Layer(rng.random((2, 10, 13)).astype(np.float16)),
        Layer(rng.random((2, 7, 9)).astype(np.float32)),
        Layer(rng.normal(0, 2, (2, 20, 26)).astype(np.float32), logits=True),
    ]
    gt = encode(rng.random((h, w)) < 0.4)
    weights = np.array([1.0, 2.0, 1.0])
    hist = np.zeros((2, len(SOFT_THRESHOLDS) + 1), np.int64)
    histogram_class(layers, 1, weights, SOFT_THRESHOLDS, h, w, gt, hist)
    for j, t in enumerate(SOFT_THRESHOLDS):
        kept = vote_class(layers, 1, weights, float(t), h, w)
        inter = int(hist[1, j + 1 :].sum())
        assert int(hist[:, j + 1 :].sum()) == int((kept[:, 1] - kept[:, 0]).sum())
        assert inter == intersection_area(kept, gt)


def test_tune_maps_writes_soft_settings_that_reproduce_their_dice(tmp_path):
    gen = Generator(n_images=3, n_models=2, height=96, width=96, classes=CLASSES, seed=2)
    paths = write_set(gen, tmp_path / "val", maps={"model1": 48, "model2": 24})
    shape = ["--classes", "a,b,c", "--height", 96, "--width", 96]
    r = run_cli(
        "tune",
        "--gt",
        paths["gt"],
        paths["model1"],
        paths["model2"],
        "-o",
        tmp_path / "t.yaml",
        "--maps",
        f"u={paths['maps/model1']}",
        "--maps",
        f"v={tmp_path / 'nowhere'}",
        *shape,
        "--quiet",
    )
    assert r.exit_code == 2 and "folder" in r.stderr
    r = run_cli(
        "tune",
        "--gt",
        paths["gt"],
        paths["model1"],
        paths["model2"],
        "-o",
        tmp_path / "t.yaml",
        "--maps",
        f"u={tmp_path / 'val' / 'elsewhere'}",
        *shape,
        "--quiet",
    )
    assert r.exit_code == 2
    r = run_cli(
        "tune",
        "--gt",
        paths["gt"],
        paths["model1"],
        paths["model2"],
        "-o",
        tmp_path / "t.yaml",
        "--maps",
        f"u={paths['maps/model1']}",
        "--maps",
        f"v={paths['maps/model2']}",
        *shape,
        "--quiet",
    )
    assert r.exit_code == 0, r.stderr
    soft_yaml = tmp_path / "t.soft.yaml"
    cfg = yaml.safe_load(soft_yaml.read_text())
    assert [m["name"] for m in cfg["prob_maps"]] == ["u", "v"]
    lines = r.stdout.splitlines()
    at = lines.index(next(s for s in lines if s.startswith("soft vote of")))
    claimed = {s.split()[0]: float(s.split()[2]) for s in lines[at + 2 : at + 5]}
    out = tmp_path / "soft.csv"
    # re-pointing to the same folders by name must give the same result
    r2 = run_cli("soft", "--setting", soft_yaml, "--source", f"u={paths['maps/model1']}", "-o", out, "--quiet")
    assert r2.exit_code == 0, r2.stderr
    d = dice_matrix(read_predictions(out, CLASSES, 96, 96), read_predictions(paths["gt"], CLASSES, 96, 96)).mean(0)
    for c, cls in enumerate(CLASSES):
        assert abs(d[c] - claimed[cls]) < 5e-5
