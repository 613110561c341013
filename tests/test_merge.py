"""``merge``: shards and per-class files into one canonical CSV; overlaps compared as masks,
conflicts with and without ``--strict``, missing rows, order, atomic output; checked
against an independent pandas/dense-numpy reference."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rle_reference import basename, dense, read_frame, rle_text, write_csv

import cli
from core._block_kernels import same_runs_kernel
from core.errors import DataError
from core.predictions import read_predictions
from fusion.merge_parts import merge
from fusion.merge_plan import plan_merge

H, W = 5, 6
CLASSES = ["a", "b", "c"]
SHAPE = ["--classes", ",".join(CLASSES), "--height", str(H), "--width", str(W)]


def run(*args):
    res = CliRunner().invoke(cli.cli, [str(a) for a in args])
    assert "Traceback" not in res.output, res.output
    return res


def mask(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((H, W)) < rng.uniform(0, 0.7)


def reference(paths, classes, prefer):
    """Independent merge: pandas for the join, dense masks for the comparison."""
    frames = []
    for k, p in enumerate(paths):
        df = read_frame(p)
        df["image_name"] = basename(df["image_name"].str.strip())
        df["rle"] = df["rle"].str.strip()
        df["part"] = k
        frames.append(df)
    rows = pd.concat(frames, ignore_index=True)
    images = list(pd.unique(rows["image_name"]))
    key = ["image_name", "class"]
    chosen = rows.sort_values("part", ascending=prefer == "first", kind="stable").drop_duplicates(key)
    both = rows.merge(chosen[[*key, "rle"]].rename(columns={"rle": "chosen"}), on=key)
    both["differs"] = [
        not np.array_equal(dense(a, H, W), dense(b, H, W)) for a, b in zip(both["rle"], both["chosen"], strict=True)
    ]
    per_cell = both.groupby(key)["differs"].agg(["any", "size"])
    full = pd.MultiIndex.from_product([images, classes], names=key)
    out = chosen.set_index(key)["rle"].reindex(full, fill_value="").reset_index()
    counts = {
        "missing": int((~full.isin(chosen.set_index(key).index)).sum()),
        "overlaps": int((per_cell["size"] > 1).sum()),
        "conflicts": int(per_cell["any"].sum()),
    }
    return out[["image_name", "class", "rle"]], counts


def report_counts(stdout: str) -> dict:
    m1 = re.search(r"([\d,]+) rows? expected, ([\d,]+) present, ([\d,]+) missing", stdout)
    m2 = re.search(r"overlaps: ([\d,]+) rows? in several files: ([\d,]+) identical, ([\d,]+) conflicting", stdout)
    n = {k: int(v.replace(",", "")) for k, v in zip(["expected", "present", "missing"], m1.groups(), strict=True)}
    n |= {k: int(v.replace(",", "")) for k, v in zip(["overlaps", "identical", "conflicts"], m2.groups(), strict=True)}
    return n


def test_shards_and_class_files_make_one_canonical_file(tmp_path):
    imgs = [f"im{k}.png" for k in range(5)]
    m = {(i, c): mask(k * 7 + j) for k, i in enumerate(imgs) for j, c in enumerate(CLASSES)}
    # shard 1: images 0-2 classes a,b; shard 2: images 3-4 classes a,b (path-style names); class file: c
    p1 = write_csv(tmp_path / "s1.csv", [(i, c, rle_text(m[i, c])) for i in imgs[:3] for c in "ba"])
    p2 = write_csv(tmp_path / "s2.csv", [("fold2/" + i, c, rle_text(m[i, c])) for i in imgs[3:] for c in "ab"])
    p3 = write_csv(tmp_path / "c.csv", [(i, "c", rle_text(m[i, "c"])) for i in imgs[::-1]])
    out = tmp_path / "out.csv"
    res = run("merge", p1, p2, p3, "-o", out, "--strict", *SHAPE)
    assert res.exit_code == 0, res.output
    got = read_frame(out)
    assert list(got["image_name"]) == [i for i in imgs for _ in CLASSES]
    assert list(got["class"]) == CLASSES * len(imgs)
    assert all(np.array_equal(dense(r, H, W), m[i, c]) for i, c, r in got.itertuples(index=False))
    assert report_counts(res.stdout) == {
        "expected": 15,
        "present": 15,
        "missing": 0,
        "overlaps": 0,
        "identical": 0,
        "conflicts": 0,
    }
    assert "s2.csv: 4 rows name images by path" in res.stderr


def test_identical_overlaps_compare_masks_not_text(tmp_path):
    m = mask(1) | np.eye(H, W, dtype=bool)
    p1 = write_csv(tmp_path / "p1.csv", [("x.png", c, rle_text(m)) for c in CLASSES])
    p2 = write_csv(tmp_path / "p2.csv", [("x.png", c, rle_text(m, split=True)) for c in CLASSES])
    assert rle_text(m) != rle_text(m, split=True)
    res = run("merge", p1, p2, "-o", tmp_path / "o.csv", "--strict", "--prefer", "last", *SHAPE)
    assert res.exit_code == 0, res.output
    assert report_counts(res.stdout)["identical"] == 3 and report_counts(res.stdout)["conflicts"] == 0
    assert set(read_frame(tmp_path / "o.csv")["rle"]) == {rle_text(m, split=True)}  # the preferred file's text


def conflict_files(tmp_path):
    p1 = write_csv(tmp_path / "p1.csv", [("x.png", c, "1 3") for c in CLASSES] + [("y.png", "a", "2 2")])
    p2 = write_csv(tmp_path / "p2.csv", [("y.png", c, "4 1") for c in CLASSES] + [("x.png", "b", "1 3")])
    return p1, p2


@pytest.mark.parametrize("prefer, y_a", [("first", "2 2"), ("last", "4 1")])
def test_conflicts_take_the_preferred_file(tmp_path, prefer, y_a):
    p1, p2 = conflict_files(tmp_path)
    res = run("merge", p1, p2, "-o", tmp_path / "o.csv", "--prefer", prefer, *SHAPE)
    assert res.exit_code == 0, res.output
    got = read_frame(tmp_path / "o.csv")
    assert got.loc[(got["image_name"] == "y.png") & (got["class"] == "a"), "rle"].item() == y_a
    assert report_counts(res.stdout) == {
        "expected": 6,
        "present": 6,
        "missing": 0,
        "overlaps": 2,
        "identical": 1,
        "conflicts": 1,
    }
    assert f"taken from the {prefer} file (first: image y.png, class a: " in res.stdout
    assert list(got["image_name"]) == ["x.png"] * 3 + ["y.png"] * 3


def test_strict_conflict_exits_1_naming_image_class_and_files(tmp_path):
    p1, p2 = conflict_files(tmp_path)
    out = tmp_path / "o.csv"
    res = run("merge", p1, p2, "-o", out, "--strict", *SHAPE)
    assert res.exit_code == 1
    assert res.stderr.strip() == (f"error: image y.png, class a: {p1}:5 and {p2}:2 differ (1 conflicting row in all)")
    assert sorted(os.listdir(tmp_path)) == ["p1.csv", "p2.csv"]
    with pytest.raises(DataError, match="class a: .*p2.csv:2 and .*p1.csv:5 differ"):
        merge([read_predictions(p, CLASSES, H, W) for p in (p1, p2)], out, prefer="last", strict=True)
    assert not out.exists()


def test_missing_rows_are_empty_masks_or_a_strict_error(tmp_path):
    p1 = write_csv(tmp_path / "p1.csv", [("x.png", "a", "1 2"), ("y.png", "b", "3 1")])
    out = tmp_path / "o.csv"
    out.write_text("previous\n")
    res = run("merge", p1, "-o", out, "--strict", *SHAPE)
    assert res.exit_code == 1
    assert res.stderr.strip() == "error: image x.png, class b: no file holds this row (4 of 6 rows missing)"
    assert out.read_text() == "previous\n" and sorted(os.listdir(tmp_path)) == ["o.csv", "p1.csv"]
    res = run("merge", p1, "-o", out, *SHAPE)
    assert res.exit_code == 0, res.output
    assert "6 rows expected, 2 present, 4 missing (written as empty masks; first: image x.png, class b)" in res.stdout
    got = read_frame(out)
    assert list(got["rle"]) == ["1 2", "", "", "", "3 1", ""]


def test_merge_settings_file_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p1, p2 = conflict_files(tmp_path)
    (tmp_path / "m.yaml").write_text(
        yaml.safe_dump(
            {
                "parts": ["p1.csv", "p2.csv"],
                "output": "o.csv",
                "prefer": "last",
                "classes": CLASSES,
                "height": H,
                "width": W,
            }
        )
    )
    res = run("merge", "--setting", "m.yaml")
    assert res.exit_code == 0, res.output
    assert read_frame("o.csv")["rle"].tolist()[3] == "4 1"
    (tmp_path / "bad.yaml").write_text("parts: [p1.csv]\noutput: o.csv\npostprocess: {min_size: -3}\n")
    res = run("merge", "--setting", "bad.yaml")
    assert res.exit_code == 2 and res.stderr.startswith("error: bad.yaml: postprocess")
    res = run("merge", "p1.csv", "-o", "p1.csv", *SHAPE)
    assert res.exit_code == 2 and "output would overwrite an input" in res.stderr
    write_csv(tmp_path / "bad.csv", [("x.png", "a", "3 1 1 1")])
    res = run("merge", "p1.csv", "bad.csv", "-o", "z.csv", *SHAPE)
    assert res.exit_code == 2 and res.stderr.startswith("error: bad.csv:2: image x.png, class a: invalid RLE")
    assert not (tmp_path / "z.csv").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_parts=st.integers(1, 4),
    n_images=st.integers(1, 4),
    prefer=st.sampled_from(["first", "last"]),
    strict=st.booleans(),
    data=st.data(),
)
def test_merge_matches_reference(tmp_path_factory, seed, n_parts, n_images, prefer, strict, data):
    tmp = tmp_path_factory.mktemp("merge")
    pool = [f"img{k}.png" for k in range(n_images)]
    cells = [(i, c) for i in pool for c in CLASSES]
    paths = []
    for k in range(n_parts):
        held = data.draw(st.lists(st.sampled_from(cells), unique=True, min_size=1))
        prefix = data.draw(st.sampled_from(["", "ID7/"]))
        rows = []
        for j, (i, c) in enumerate(held):
            variant = data.draw(st.sampled_from(["same", "same-split", "other"]))
            m = mask(seed + cells.index((i, c))) if variant != "other" else mask(seed + 1000 * (k + 1) + j)
            rows.append((prefix + i, c, rle_text(m, split=variant == "same-split")))
        paths.append(write_csv(tmp / f"p{k}.csv", rows))
    expected, counts = reference(paths, CLASSES, prefer)
    out = tmp / "out.csv"
    res = run("merge", *paths, "-o", out, "--prefer", prefer, *SHAPE, *(["--strict"] if strict else []))
    if strict and (counts["conflicts"] or counts["missing"]):
        assert res.exit_code == 1 and not out.exists()
        return
    assert res.exit_code == 0, res.output
    got = report_counts(res.stdout)
    assert {k: got[k] for k in counts} == counts
    assert got["expected"] == len(expected) and got["present"] == len(expected) - counts["missing"]
    pd.testing.assert_frame_equal(read_frame(out), expected)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), split=st.booleans())
def test_same_runs_kernel_matches_dense_comparison(seed, n, split):
    rng = np.random.default_rng(seed)
    a = [rng.random((H, W)) < 0.4 for _ in range(n)]
    b = [x.copy() if rng.random() < 0.5 else rng.random((H, W)) < 0.4 for x in a]
    ta = [rle_text(x) for x in a]
    tb = [rle_text(x, split=split) for x in b]

    def pack(texts):
        buf = np.frombuffer("".join(texts).encode(), np.uint8)
        offs = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).astype(np.int64)
        return buf, offs

    (bufa, offa), (bufb, offb) = pack(ta), pack(tb)
    rows = np.arange(n, dtype=np.int64)
    perm = rng.permutation(n).astype(np.int64)
    truth = np.array([np.array_equal(a[i], b[j]) for i, j in zip(rows, perm, strict=True)])
    for fn in (same_runs_kernel, same_runs_kernel.py_func):
        assert np.array_equal(fn(bufa, offa, rows, bufb, offb, perm, H * W), truth)


def test_plan_counts_rows_taken_per_part(tmp_path):
    p1, p2 = conflict_files(tmp_path)
    parts = [read_predictions(p, CLASSES, H, W) for p in (p1, p2)]
    assert plan_merge(parts, "first").rows_by_part() == [4, 2]
    assert plan_merge(parts, "last").rows_by_part() == [2, 4]
