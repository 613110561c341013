import json

import numpy as np
import pytest
from helpers import CLASSES, run_cli, write_csv
from hypothesis import given
from hypothesis import strategies as st
from strategies import masks

from core.codec import decode, encode, format_rle
from core.predictions import predictions_from_rles, read_predictions
from core.score import dice_matrix
from core.synthetic import Generator, write_set
from evaluation.polygons import polygon_runs


def dense_dice(a, b):
    a, b = a != 0, b != 0
    return (2 * (a & b).sum() + 1e-4) / (a.sum() + b.sum() + 1e-4)


@given(st.lists(st.tuples(masks(max_side=20, min_side=20), masks(max_side=20, min_side=20)), min_size=1, max_size=4))
def test_dice_on_runs_equals_dense(pairs):
    pairs = [(a[:20, :20], b[:20, :20]) for a, b in pairs]
    imgs = [f"i{k}.png" for k in range(len(pairs))]
    gt = predictions_from_rles("gt", ["x"], imgs, [[format_rle(encode(a))] for a, _ in pairs], 20, 20)
    pr = predictions_from_rles("pr", ["x"], imgs[::-1], [[format_rle(encode(b))] for _, b in pairs[::-1]], 20, 20)
    got = dice_matrix(pr, gt)[:, 0]
    np.testing.assert_allclose(got, [dense_dice(a, b) for a, b in pairs], rtol=0, atol=1e-15)


def test_polygon_rasteriser_on_known_shapes():
    rect = decode(polygon_runs([[1, 2], [5, 2], [5, 4], [1, 4]], 10, 10), (10, 10))
    assert rect.sum() == 5 * 3 and rect[2:5, 1:6].all()  # boundary pixels inside, like fillPoly
    tri = decode(polygon_runs([[0, 0], [6, 0], [0, 6]], 10, 10), (10, 10))
    assert tri.sum() == 28 and all(tri[y, : 7 - y].all() and tri[y, 7 - y :].sum() == 0 for y in range(7))
    clipped = decode(polygon_runs([[-5, 8], [20, 8], [20, 30], [-5, 30]], 10, 10), (10, 10))
    assert clipped.sum() == 20 and clipped[8:].all()
    assert polygon_runs([[20, 20], [30, 20], [30, 30]], 10, 10).shape == (0, 2)
    diamond = decode(polygon_runs([[4.4, 0], [8, 4], [4, 8], [0, 4]], 9, 9), (9, 9))
    assert diamond.sum() == 41 and diamond[4].all() and diamond[0].sum() == 1  # 1+3+5+7+9+7+5+3+1


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ev")
    gen = Generator(n_images=3, n_models=2, height=64, width=64, classes=CLASSES, seed=1)
    return gen, write_set(gen, folder)


def test_evaluate_cli_formats_and_scores_file(synth, tmp_path):
    gen, paths = synth
    args = [
        "evaluate",
        "--gt",
        paths["gt"],
        paths["model1"],
        "--source",
        f"second={paths['model2']}",
        "--classes",
        "a,b,c",
        "--height",
        64,
        "--width",
        64,
        "--quiet",
    ]
    r = run_cli(*args, "-o", tmp_path / "scores.csv")
    assert r.exit_code == 0, r.stderr
    gt = read_predictions(paths["gt"], CLASSES, 64, 64)
    expected = {}
    for name, m in (("model1", "model1"), ("second", "model2")):
        p = read_predictions(paths[m], CLASSES, 64, 64)
        expected[name] = [
            np.mean(
                [
                    dense_dice(decode(p.runs(p.image_index(n), c), (64, 64)), decode(gt.runs(i, c), (64, 64)))
                    for i, n in enumerate(gt.images)
                ]
            )
            for c in range(3)
        ]
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0] == "source,class,dice" and len(lines) == 7
    for line in lines[1:]:
        name, cls, d = line.split(",")
        assert abs(float(d) - expected[name][CLASSES.index(cls)]) < 1e-6
    table = r.stdout.splitlines()
    assert table[0].split() == ["class", "model1", "second"] and table[-2].startswith("mean")
    assert sum(s.count("*") for s in table[1:4]) == 3
    j = json.loads(run_cli(*args, "--format", "json").stdout)
    assert set(j) == {str(paths["model1"]), str(paths["model2"])}
    assert abs(j[str(paths["model1"])]["mean"] - np.mean(expected["model1"])) < 1e-9


def test_evaluate_gt_json(tmp_path):
    (tmp_path / "ann" / "ID1").mkdir(parents=True)
    (tmp_path / "ann" / "ID1" / "img.json").write_text(
        json.dumps(
            {
                "annotations": [
                    {"label": "a", "points": [[0, 0], [3, 0], [3, 1], [0, 1]]},
                    {"label": "c", "points": [[5, 5], [6, 5], [6, 6], [5, 6]]},
                ]
            }
        )
    )
    pred = write_csv(tmp_path / "p.csv", [("ID1/img.png", "a", "1 4"), ("img.png", "b", ""), ("img.png", "c", "1 1")])
    r = run_cli(
        "evaluate",
        "--gt-json",
        tmp_path / "ann",
        pred,
        "--classes",
        "a,b,c",
        "--height",
        8,
        "--width",
        8,
        "--format",
        "csv",
        "--quiet",
    )
    assert r.exit_code == 0, r.stderr
    d = {line.split(",")[1]: float(line.split(",")[2]) for line in r.stdout.splitlines()[1:]}
    assert d["b"] == 1.0 and abs(d["a"] - (2 * 4 + 1e-4) / (4 + 8 + 1e-4)) < 1e-6 and d["c"] < 1e-4
    (tmp_path / "ann" / "ID1" / "img.json").write_text(json.dumps({"annotations": [{"label": "zz", "points": []}]}))
    r = run_cli("evaluate", "--gt-json", tmp_path / "ann", pred, "--classes", "a,b,c", "--height", 8, "--width", 8)
    assert r.exit_code == 2 and "unknown label 'zz'" in r.stderr


def test_evaluate_missing_rows(tmp_path):
    gt = write_csv(tmp_path / "gt.csv", [("x.png", c, "1 1") for c in CLASSES])
    pred = write_csv(tmp_path / "p.csv", [("x.png", "a", "1 1")])
    base = ["evaluate", "--gt", gt, pred, "--classes", "a,b,c", "--height", 4, "--width", 4, "--format", "csv"]
    r = run_cli(*base)
    assert r.exit_code == 1 and "p.csv: image x.png, class b: missing row (2 missing in all" in r.stderr
    r = run_cli(*base, "--missing", "empty", "--quiet")
    assert r.exit_code == 0 and r.stdout.splitlines()[1] == "p,a,1.000000"
