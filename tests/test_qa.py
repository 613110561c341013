"""``quality.qa``: per-mask flags against a dense reference (``scipy.ndimage.label``, numpy
median and MAD) on generated sets with planted missing masks, specks and outlying areas."""

from __future__ import annotations

import doctest
import importlib
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from core import Predictions
from core.errors import UsageError
from quality import Flag, qa_flags, write_flags
from quality import _kernels as K
from quality.qa import FLAGS, MAD_SCALE, MEAN_AD_SCALE

ROOT = Path(__file__).resolve().parent.parent


def rle_of(mask: np.ndarray) -> str:
    flat = np.concatenate([[0], mask.reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2]))


def frame_of(masks: np.ndarray, absent=()) -> pd.DataFrame:
    """``masks[image, class]`` (H × W) as a frame; ``absent`` (image, class) pairs left out."""
    rows = [
        (f"img{i}.png", f"k{c}", rle_of(masks[i, c]))
        for i in range(masks.shape[0])
        for c in range(masks.shape[1])
        if (i, c) not in absent
    ]
    return pd.DataFrame(rows, columns=["image_name", "class", "rle"])


def preds_of(masks: np.ndarray, absent=()) -> Predictions:
    h, w = masks.shape[2:]
    classes = [f"k{c}" for c in range(masks.shape[1])]
    return Predictions.from_frame(frame_of(masks, absent), classes, h, w, name="set")


@st.composite
def qa_sets(draw) -> np.ndarray:
    """Dense ``masks[image, class, y, x]``: per class a blob per image, with planted empty
    masks (a few images, sometimes none), specks (one or a few pixels anywhere, corners and
    row ends included), blobs grown or shrunk (outlying areas), identical areas (MAD 0)."""
    n_images = draw(st.integers(1, 24))
    n_classes = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = np.zeros((n_images, n_classes, h, w), bool)
    for c in range(n_classes):
        kind = draw(st.sampled_from(["blobs", "blobs", "same", "noise", "empty"]))
        for i in range(n_images):
            if kind == "noise":
                out[i, c] = rng.random((h, w)) < rng.uniform(0, 0.6)
            elif kind == "same":
                out[i, c, : max(1, h // 2), : max(1, w // 2)] = True
            elif kind == "blobs":
                bh, bw = rng.integers(1, h + 1), rng.integers(1, w + 1)
                y, x = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
                out[i, c, y : y + bh, x : x + bw] = True
            if kind != "empty" and rng.random() < 0.3:  # specks
                for _ in range(rng.integers(1, 4)):
                    out[i, c, rng.integers(0, h), rng.integers(0, w)] = True
        if kind != "empty":
            for i in rng.choice(n_images, size=rng.integers(0, 3), replace=True):  # planted missing
                out[i, c] = False
    return out


def reference(masks: np.ndarray, connectivity=8, min_share=0.95, max_deviation=5.0):
    """The flags, computed densely: scipy labels, numpy median and MAD."""
    n_images, n_classes = masks.shape[:2]
    structure = np.ones((3, 3)) if connectivity == 8 else None
    flags = {}
    areas = masks.reshape(n_images, n_classes, -1).sum(2)
    for c in range(n_classes):
        non_empty = areas[:, c] > 0
        share = non_empty.sum() / n_images
        a = areas[non_empty, c]
        spread = 0.0
        if len(a):
            med = np.median(a)
            mad = np.median(np.abs(a - med))
            spread = MAD_SCALE * mad if mad > 0 else MEAN_AD_SCALE * np.mean(np.abs(a - med))
        for i in range(n_images):
            parts = ndimage.label(masks[i, c], structure=structure)[1]
            if parts > 1:
                flags[i, c, "fragments"] = parts
            if not non_empty[i] and share >= min_share:
                flags[i, c, "missing"] = share
            if non_empty[i] and spread > 0 and abs(areas[i, c] - med) > max_deviation * spread:
                flags[i, c, "area"] = (areas[i, c] - med) / spread
    order = sorted(flags, key=lambda k: (k[0], k[1], FLAGS.index(k[2])))
    return [(f"img{i}.png", f"k{c}", f, flags[i, c, f]) for i, c, f in order]


def as_tuples(report):
    return [(f.image, f.cls, f.flag, f.value) for f in report.flags]


@given(qa_sets(), st.sampled_from([4, 8]))
def test_flags_equal_the_dense_reference(masks, connectivity):
    r = qa_flags(preds_of(masks), connectivity=connectivity)
    assert as_tuples(r) == reference(masks, connectivity)
    for c, s in enumerate(r.summary):
        assert s.non_empty == int(masks[:, c].any((1, 2)).sum()) and s.images == masks.shape[0]
        assert (s.fragments, s.missing, s.area) == tuple(
            sum(1 for f in r.flags if f.cls == f"k{c}" and f.flag == flag) for flag in FLAGS
        )


@given(qa_sets(), st.floats(0.05, 1.0), st.floats(0.5, 8.0))
@settings(max_examples=60)
def test_thresholds_against_the_reference(masks, min_share, max_deviation):
    r = qa_flags(preds_of(masks), min_share=min_share, max_deviation=max_deviation)
    assert as_tuples(r) == reference(masks, 8, min_share, max_deviation)


def test_planted_problems_are_found():
    masks = np.zeros((40, 2, 30, 30), bool)
    masks[:, :, 5:15, 5:15] = True
    masks[np.arange(40), 0, 5, 5 + np.arange(40) % 10] = False  # areas 99 or so
    masks[7, 0] = False  # missing
    masks[11, 0, 20, 20] = True  # a speck
    masks[13, 1, 2:28, 2:28] = True  # a far larger mask
    r = qa_flags(preds_of(masks))
    got = as_tuples(r)
    assert ("img7.png", "k0", "missing", 39 / 40) in got
    assert ("img11.png", "k0", "fragments", 2) in got
    areas = {f[:2]: f[3] for f in got if f[2] == "area"}
    assert areas[("img13.png", "k1")] > 5  # 676 pixels against 39 × 100
    # with every other k0 area equal (99), the speck's extra pixel is an outlying area too
    assert set(areas) == {("img13.png", "k1"), ("img11.png", "k0")}
    s = r.summary[1]
    assert s.spread_rule == "mean_ad" and s.median_area == 100  # 39 equal areas: MAD 0
    assert got == reference(masks)
    assert "4 flags: 1 fragments, 1 missing, 2 area" in r.table()


def test_mad_zero_and_all_equal():
    masks = np.zeros((10, 1, 4, 4), bool)
    masks[:, 0, :2, :2] = True
    r = qa_flags(preds_of(masks))
    assert r.flags == [] and r.summary[0].spread_rule == "none"
    masks[0, 0] = True  # area 16 against nine 4s: MAD 0, mean absolute deviation 1.2
    r = qa_flags(preds_of(masks))
    assert r.summary[0].spread_rule == "mean_ad"
    assert as_tuples(r) == [("img0.png", "k0", "area", 12 / (MEAN_AD_SCALE * 1.2))] == reference(masks)
    masks[1, 0] = True  # two 16s: mean absolute deviation 2.4, z 3.99: no flag
    assert qa_flags(preds_of(masks)).flags == []


def test_absent_rows_read_as_empty_masks():
    masks = np.ones((20, 2, 2, 2), bool)
    r = qa_flags(preds_of(masks, absent={(3, 0)}))
    assert as_tuples(r) == [("img3.png", "k0", "missing", 0.95)]


def test_paths_writer_and_frames(tmp_path):
    masks = np.zeros((20, 2, 6, 7), bool)
    masks[:, :, 1:4, 1:5] = True
    masks[2, 1] = False
    masks[5, 0, 1, 1], masks[5, 0, 5, 6] = False, True  # a speck, the area unchanged
    path = tmp_path / "p.csv"
    frame_of(masks).to_csv(path, index=False)
    r = qa_flags(path, classes=["k0", "k1"], height=6, width=7)
    assert r.path == str(path)
    out = tmp_path / "flags.csv"
    assert r.write(out) == 2
    assert out.read_text() == "image_name,class,flag,value\nimg2.png,k1,missing,0.95\nimg5.png,k0,fragments,2\n"
    back = pd.read_csv(out)
    assert back.values.tolist() == r.frame().values.tolist()
    assert r.summary_frame()["missing"].tolist() == [0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.csv", "p.csv"]  # no temporary left
    with pytest.raises(ZeroDivisionError):
        with_failure = [Flag("a", "b", "area", 1.0)]
        write_flags(_Exploding(with_failure), out)
    assert out.read_text().startswith("image_name,class,flag,value\nimg2.png")  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.csv", "p.csv"]


class _Exploding(list):
    def __iter__(self):
        yield from super().__iter__()
        raise ZeroDivisionError


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"connectivity": 6}, "connectivity"),
        ({"min_share": 0}, "min_share"),
        ({"min_share": 1.5}, "min_share"),
        ({"max_deviation": -1}, "max_deviation"),
        ({"max_deviation": float("inf")}, "max_deviation"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, param):
    with pytest.raises(UsageError) as e:
        qa_flags(preds_of(np.zeros((1, 1, 2, 2), bool)), **kwargs)
    assert e.value.param == param


@given(qa_sets(), st.sampled_from([0, 1]))
@settings(max_examples=60)
def test_components_are_counted_as_scipy_counts_them(masks, diagonal):
    from postprocess.connected import component_areas

    preds = preds_of(masks)
    for i in range(masks.shape[0]):
        for c in range(masks.shape[1]):
            n = len(component_areas(preds.runs(i, c), preds.width, 8 if diagonal else 4))
            assert n == ndimage.label(masks[i, c], structure=np.ones((3, 3)) if diagonal else None)[1]


def test_doctests():
    result = doctest.testmod(importlib.import_module("quality.qa"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_quality_is_packaged_and_sits_below_the_votes():
    """The package ships (pyproject's package list) and sits at the operations layer: above
    core, settings and the cleaning, below the votes, fusion and everything after them."""
    import ast

    import quality

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "quality" in packages
    assert quality.__all__ == sorted(quality.__all__)
    assert all(f"``{name}``" in quality.__doc__ for name in quality.__all__)
    upper = {"ensemble", "fusion", "evaluation", "report", "cluster", "commands", "cli"}
    for f in (ROOT / "quality").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & upper, f"{f.name} imports {names}"
        assert len(f.read_text().splitlines()) <= 500, f"{f.name} is over 500 lines"


def test_quality_kernels_follow_the_kernel_rules():
    """As ``tests/test_kernels.py`` holds for the other packages: cached, a Python twin, and
    calls only to kernels of this same file."""
    import ast

    import numba

    path = Path(K.__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.decorator_list]
    names = {n.name for n in defs}
    for name, d in vars(K).items():
        if isinstance(d, numba.core.dispatcher.Dispatcher):
            assert name in names and type(d._cache).__name__ == "FunctionCache"
            assert d.py_func.__module__ == "quality._kernels"
    for fn in defs:
        for node in ast.walk(fn):
            if isinstance(node, ast.Name) and isinstance(getattr(K, node.id, None), numba.core.dispatcher.Dispatcher):
                assert node.id in names, f"{fn.name} calls {node.id} of another file"
