"""``tune --staple`` and ``tune --area-gate``: the STAPLE candidates and the area gate scored
from the coverage histograms equal STAPLE's fused masks and the gated masks scored against the
ground truth, and the settings written make ``weighted`` reproduce on the validation files
exactly the Dice that tune reports, class by class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from core.predictions import Predictions, read_predictions
from core.runs import dice
from core.score import dice_matrix
from evaluation import tune
from evaluation.candidates import best_gate, pattern_dice, pooled_patterns, staple_candidates
from evaluation.search import coverage
from quality import staple
from quality.tables import pooled_histograms

H, W = 24, 20
CLASSES = ["a", "b", "c", "d"]
IMAGES = [f"i{i}.png" for i in range(6)]
SHAPE = ["--classes", ",".join(CLASSES), "--height", str(H), "--width", str(W)]


def rle_of(mask: np.ndarray) -> str:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.reshape(-1).astype(np.int8), [0]])))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2]))


def frame(masks: np.ndarray, images=IMAGES, classes=CLASSES) -> pd.DataFrame:
    rows = [(im, c, rle_of(masks[i, k])) for i, im in enumerate(images) for k, c in enumerate(classes)]
    return pd.DataFrame(rows, columns=["image_name", "class", "rle"])


def validation_set(seed: int = 7):
    """Five noisy copies of a truth (flip rates 3 % … 25 %) for classes a, b, c, where STAPLE
    weighs the sources better than equal votes; class d: two blocks of 30 px in half the
    images, and in the other half (empty in the truth) one of 45 px every source marks."""
    rng = np.random.default_rng(seed)
    truth = rng.random((len(IMAGES), len(CLASSES), H, W)) < 0.35
    truth[:, 3] = False
    truth[:3, 3, 2:7, 2:8] = True  # two pieces of 30 px: no cleaning rule removes a 45 px false positive alone
    truth[:3, 3, 12:17, 10:16] = True
    sources = {}
    for k, rate in enumerate((0.03, 0.08, 0.12, 0.2, 0.25)):
        noisy = truth ^ (rng.random(truth.shape) < rate)
        noisy[:, 3] = truth[:, 3]
        noisy[3:, 3, 18:23, 2:11] = True  # a false positive of 45 px
        sources[f"m{k + 1}"] = noisy
    return truth, sources


@pytest.fixture
def files(tmp_path):
    truth, sources = validation_set()
    gt = tmp_path / "gt.csv"
    frame(truth).to_csv(gt, index=False)
    paths = {}
    for name, m in sources.items():
        paths[name] = tmp_path / f"{name}.csv"
        frame(m).to_csv(paths[name], index=False)
    return gt, paths


def preds(masks, name):
    return Predictions.from_frame(frame(masks), CLASSES, H, W, name=name)


def test_pooled_patterns_and_staple_candidates_equal_staple():
    truth, sources = validation_set(3)
    gt = preds(truth, "gt")
    loaded = [preds(m, n) for n, m in sources.items()]
    cov = coverage(gt, loaded, list(sources))
    rows = np.stack([p.rows for p in loaded])
    hist = pooled_histograms(loaded, rows, range(len(CLASSES)))
    for c in range(len(CLASSES)):
        assert np.array_equal(pooled_patterns(cov, c), hist[c])
    for region, _accept, value in staple_candidates(cov, 1):
        fused = staple(dict(zip(sources, loaded)), classes=CLASSES, height=H, width=W, region=region)
        expected = np.mean([dice(fused.runs(i, 1), gt.runs(i, 1)) for i in range(len(IMAGES))])
        assert value == pytest.approx(expected, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 4), st.booleans())
def test_pattern_dice_equals_the_dense_dice_pattern_zero_included(seed, n, zero):
    rng = np.random.default_rng(seed)
    h, w = 5, 7
    masks = rng.random((3, n, 1, h, w)) < rng.uniform(0.1, 0.9)
    truth = rng.random((3, 1, h, w)) < 0.4
    images = ["x.png", "y.png", "z.png"]
    gt = Predictions.from_frame(frame(truth, images, ["k"]), ["k"], h, w, name="gt")
    loaded = [Predictions.from_frame(frame(masks[:, j], images, ["k"]), ["k"], h, w) for j in range(n)]
    cov = coverage(gt, loaded, [f"s{j}" for j in range(n)])
    accept = rng.random(1 << n) < 0.5
    accept[0] = zero
    pattern = sum(masks[:, j, 0].astype(int) << j for j in range(n))
    fused = accept[pattern]
    expect = np.mean([(2 * (f & t).sum() + 1e-4) / (f.sum() + t.sum() + 1e-4) for f, t in zip(fused, truth[:, 0])])
    assert pattern_dice(accept, cov, 0) == pytest.approx(expect, rel=1e-14)


def test_best_gate_scores_every_gate():
    areas = np.array([0, 4, 4, 60, 90, 7])
    keep = np.array([1.0, 0.0, 0.1, 0.9, 0.95, 0.2])
    drop = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    best, mean = best_gate(areas, keep, drop)
    for t in range(0, 100):
        got = np.where((areas > 0) & (areas < t), drop, keep).mean()
        assert got <= mean + 1e-12
    assert (best, mean) == (34, pytest.approx(np.where(areas < 34, drop, keep).mean()))  # midpoint of 7 and 60
    assert best_gate(np.zeros(3, np.int64), np.ones(3), np.ones(3)) is None
    assert best_gate(np.array([5, 9]), np.zeros(2), np.ones(2)) == (10, 1.0)  # dropping all: largest + 1


def test_tune_staple_and_area_gate_round_trip(files, tmp_path):
    gt, paths = files
    out = tmp_path / "tuned.yaml"
    r = run_cli("tune", "--gt", gt, *paths.values(), "--staple", "--area-gate", "-o", out, *SHAPE, "-q")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load(out.read_text())
    assert cfg["staple"] and set(cfg["staple"]) <= {"a", "b", "c"}
    assert set(cfg["staple"].values()) <= {"all", "disagreement"}
    assert cfg["postprocess"]["d"] == {"min_area": 53}  # between 45 and 60
    assert "fused by pooled STAPLE" in out.read_text().splitlines()[2]
    lib = tune(
        {n: str(p) for n, p in paths.items()}, str(gt), staple=True, area_gate=True, classes=CLASSES, height=H, width=W
    )
    assert lib.settings == {**cfg, "sources": {n: str(p) for n, p in paths.items()}}
    lines = {line.split()[0]: line for line in r.stdout.splitlines()}
    for cls in cfg["staple"]:
        assert f"STAPLE {cfg['staple'][cls]}" in lines[cls]
    assert "min area" in lines["d"]
    # applied to the validation files (copies standing in for test files), weighted gives
    # exactly the Dice tune reports, class by class
    moved = {}
    for n, p in paths.items():
        moved[n] = tmp_path / f"test_{n}.csv"
        moved[n].write_bytes(p.read_bytes())
    applied = tmp_path / "applied.csv"
    r = run_cli("weighted", "--setting", out, *(f"--source={n}={p}" for n, p in moved.items()), "-o", applied, "-q")
    assert r.exit_code == 0, r.output
    truth = read_predictions(gt, CLASSES, H, W)
    d = dice_matrix(read_predictions(applied, CLASSES, H, W), truth).mean(0)
    for c, res in enumerate(lib.results):
        assert d[c] == pytest.approx(res.final, abs=1e-12), res.cls
    assert lib.results[3].final == 1.0 and lib.results[3].dice < 0.6


def test_without_the_flags_nothing_changes(files, tmp_path):
    gt, paths = files
    named = {n: str(p) for n, p in paths.items()}
    plain = tune(named, str(gt), classes=CLASSES, height=H, width=W)
    assert "staple" not in plain.settings and "min_area" not in str(plain.settings)


def test_staple_is_left_out_when_sources_hold_more_images(files, tmp_path):
    gt, paths = files
    lines = gt.read_text().splitlines(keepends=True)
    small = tmp_path / "small_gt.csv"
    small.write_text("".join(lines[: 1 + 4 * len(CLASSES)]))
    notes = []
    r = tune(
        {n: str(p) for n, p in paths.items()},
        str(small),
        staple=True,
        classes=CLASSES,
        height=H,
        width=W,
        echo=notes.append,
    )
    assert "staple" not in r.settings
    assert any("STAPLE not tried" in n for n in notes)
