"""IoU of ``evaluate``: per (image, class) ``(|A∩B| + ε) / (|A∪B| + ε)`` with Dice's ε, from the
same intersections as Dice, against a dense reference; the reports show it only when asked,
and their default output stays what it was."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import masks

from core.codec import encode, format_rle
from core.predictions import predictions_from_rles
from core.runs import EPS, iou, iou_of_areas
from core.score import dice_matrix, score_matrices
from evaluation.scores import Scores, evaluate


def dense_iou(a, b):
    a, b = a != 0, b != 0
    return ((a & b).sum() + 1e-4) / ((a | b).sum() + 1e-4)


def dense_dice(a, b):
    a, b = a != 0, b != 0
    return (2 * (a & b).sum() + 1e-4) / (a.sum() + b.sum() + 1e-4)


@st.composite
def mask_pairs(draw):
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    if draw(st.booleans()):
        h, w = (1, w) if draw(st.booleans()) else (h, 1)

    def fit(m):
        out = np.zeros((h, w), bool)
        out[: min(h, m.shape[0]), : min(w, m.shape[1])] = m[:h, :w] != 0
        return out

    n_img = draw(st.integers(1, 4))
    n_cls = draw(st.integers(1, 3))
    pair = st.tuples(masks(max_side=20), masks(max_side=20))
    pairs = [[tuple(map(fit, draw(pair))) for _ in range(n_cls)] for _ in range(n_img)]
    return pairs, h, w


@given(mask_pairs())
def test_iou_on_runs_equals_dense(case):
    pairs, h, w = case
    classes = [f"k{c}" for c in range(len(pairs[0]))]
    imgs = [f"i{k}.png" for k in range(len(pairs))]
    gt = predictions_from_rles("gt", classes, imgs, [[format_rle(encode(a)) for a, _ in row] for row in pairs], h, w)
    pr = predictions_from_rles(
        "pr", classes, imgs[::-1], [[format_rle(encode(b)) for _, b in row] for row in pairs[::-1]], h, w
    )
    dice, jac = score_matrices(pr, gt)
    want = np.array([[dense_iou(a, b) for a, b in row] for row in pairs])
    np.testing.assert_allclose(jac, want, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(dice, dice_matrix(pr, gt))
    np.testing.assert_allclose(dice, [[dense_dice(a, b) for a, b in row] for row in pairs], rtol=0, atol=1e-15)
    for row, got in zip(pairs, jac, strict=True):
        for (a, b), j in zip(row, got, strict=True):
            assert iou(encode(a), encode(b)) == j


def test_iou_formula_edges():
    assert iou_of_areas(0, 0, 0) == 1.0  # two empty masks
    assert iou_of_areas(0, 5, 0) == EPS / (5 + EPS)
    assert iou_of_areas(4, 4, 4) == 1.0
    d = 2 * 3 / (5 + 4)  # Dice and IoU of the same areas: J = D / (2 - D) without ε
    assert abs(iou_of_areas(3, 5, 4, eps=0) - d / (2 - d)) < 1e-15


def frames():
    gt = pd.DataFrame(
        {"image_name": ["a.png", "a.png", "b.png", "b.png"], "class": ["x", "y"] * 2, "rle": ["1 4", "", "3 2", "1 1"]}
    )
    p = pd.DataFrame(
        {"image_name": ["a.png", "a.png", "b.png", "b.png"], "class": ["x", "y"] * 2, "rle": ["2 4", "", "", "1 2"]}
    )
    return gt, p


def test_evaluate_reports_iou_per_class_only_when_asked(tmp_path):
    gt, p = frames()
    s = evaluate({"p": p, "gt": gt}, gt, classes=["x", "y"], height=3, width=3, output=tmp_path / "plain.csv")
    # a.png: x 3 of 5 pixels, y both empty; b.png: x 0 of 2, y 1 of 2
    e = EPS
    want = np.array([[[(3 + e) / (5 + e), 1.0], [e / (2 + e), (1 + e) / (2 + e)]], [[1.0, 1.0], [1.0, 1.0]]])
    np.testing.assert_array_equal(s.iou, want)
    np.testing.assert_allclose(s.iou_per_class, want.mean(1), rtol=0, atol=0)
    np.testing.assert_allclose(s.iou_overall, want.mean(1).mean(1), rtol=0, atol=0)
    # the default reports hold no IoU
    assert (tmp_path / "plain.csv").read_text() == s.csv() and "iou" not in s.csv()
    assert s.csv().splitlines()[0] == "source,class,dice"
    assert "IoU" not in s.table() and "iou" not in s.json()
    # asked for: a column, a second table, two keys
    lines = s.csv(iou=True).splitlines()
    assert lines[0] == "source,class,dice,iou" and len(lines) == 5
    assert lines[1] == f"p,x,{s.per_class[0, 0]:.6f},{s.iou_per_class[0, 0]:.6f}"
    assert [line.rsplit(",", 1)[0] for line in lines[1:]] == s.csv().splitlines()[1:]
    table = s.table(iou=True).splitlines()
    assert table[0] == "Dice" and "IoU" in table
    k = table.index("IoU")
    assert table[1 : k - 1] == s.table().splitlines()[:-1]  # the Dice block as the default table shows it
    assert table[k + 1].split() == ["class", "p", "gt"] and table[-1] == s.table().splitlines()[-1]
    j = json.loads(s.json(iou=True))
    first = next(iter(j.values()))
    assert first["iou_mean"] == pytest.approx(float(s.iou_overall[0]))
    assert first["iou_per_class"] == {"x": float(s.iou_per_class[0, 0]), "y": (1 + (1 + e) / (2 + e)) / 2}
    evaluate({"p": p}, gt, classes=["x", "y"], height=3, width=3, output=tmp_path / "iou.csv", iou=True)
    assert (tmp_path / "iou.csv").read_text().splitlines()[0] == "source,class,dice,iou"


def test_scores_without_iou_say_so():
    s = Scores(["p"], ["p.csv"], ("x",), 1, np.ones((1, 1, 1)))
    assert s.csv() == "source,class,dice\np,x,1.000000\n"
    with pytest.raises(ValueError, match="no IoU"):
        s.csv(iou=True)
