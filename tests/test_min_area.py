"""The ``min_area`` cleaning rule (a whole-mask decision after the other steps) against the
dense reference of ``test_postprocess`` (scipy.ndimage), through ``clean``, the ``Cleaner``'s
block path and the commands, and its settings."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import run_cli
from hypothesis import given
from hypothesis import strategies as st
from test_postprocess import (
    FAST,
    SHAPE,
    SMALL,
    assert_file_equals,
    cleaned_reference,
    conns,
    dataset,  # noqa: F401  (a fixture)
    dense,
    masks,
    ref_pipeline,
    section,
    shape_args,
)

from core.codec import encode
from core.errors import UsageError
from core.predictions import read_predictions
from postprocess.cleaner import STAT_FIELDS, Cleaner, Rules, clean
from settings.postprocess import resolve_rules


def test_the_reference_gate_is_last():
    m = np.zeros((6, 6), bool)
    m[0:2, 0:2] = True  # 4 px
    m[4, 4] = True  # a speck
    assert ref_pipeline(m, Rules(min_area=5)).sum() == 5  # the speck still counts
    assert ref_pipeline(m, Rules(min_area=6)).sum() == 0
    assert ref_pipeline(m, Rules(keep_largest=1, min_area=5)).sum() == 0  # area after keep_largest
    assert ref_pipeline(m, Rules(keep_largest=1, min_area=4)).sum() == 4


@FAST
@given(
    ms=st.lists(masks(), min_size=1, max_size=4),
    conn=conns,
    keep=st.integers(0, 2),
    fill=st.booleans(),
    min_area=st.integers(0, 40),
)
def test_min_area_matches_the_dense_reference(ms, conn, keep, fill, min_area):
    h, w = 13, 17
    ms = [np.pad(m[:h, :w], ((0, h - min(h, m.shape[0])), (0, w - min(w, m.shape[1])))) for m in ms]
    rules = Rules(keep_largest=keep, fill_holes=fill, connectivity=conn, min_area=min_area)
    expect = [ref_pipeline(m, rules) for m in ms]
    for m, e in zip(ms, expect):
        assert np.array_equal(dense(clean(encode(m), h, w, rules), (h, w)), e)
    # the Cleaner's block path (one kernel call for several masks), and its counts
    runs = [encode(m) for m in ms]
    bounds = np.zeros(len(runs) + 1, np.int64)
    np.cumsum([len(r) for r in runs], out=bounds[1:])
    cleaner = Cleaner([rules], ["x"], h, w)
    out, out_bounds = cleaner.many(0, np.concatenate(runs).reshape(-1, 2), bounds)
    for k, e in enumerate(expect):
        got = out[out_bounds[k] : out_bounds[k + 1]]
        assert np.array_equal(got, encode(e))
    stats = dict(zip(STAT_FIELDS, cleaner.stats()[0].tolist()))
    if rules.active:
        before = ref_pipeline_without_gate(ms, rules)
        assert stats["masks_emptied"] == sum(0 < b.sum() < min_area for b in before)
        assert stats["pixels_removed"] == sum(int((m & ~e).sum()) for m, e in zip(ms, expect))
        assert stats["pixels_added"] == sum(int((e & ~m).sum()) for m, e in zip(ms, expect))
        assert stats["changed"] == sum(not np.array_equal(m, e) for m, e in zip(ms, expect))


def ref_pipeline_without_gate(ms, rules):
    return [ref_pipeline(m, rules.model_copy(update={"min_area": 0})) for m in ms]


def test_rules_key_range_and_describe():
    assert not Rules(min_area=1).active and Rules(min_area=2).active
    assert Rules(keep_largest=1, min_area=300).describe() == "keep 1, min area 300"
    for bad in (-1, 1.5, "3", 2**62 + 1, True):
        with pytest.raises(UsageError, match="min_area"):
            resolve_rules(section({"default": {"min_area": bad}}), ["x"], "s.yaml")
    data = {"default": {"keep_largest": 1}, "y": {"min_area": 50}}
    rules = resolve_rules(section(data), ["x", "y"], "s.yaml", {"min_area": 7})
    assert rules == [Rules(keep_largest=1, min_area=7), Rules(keep_largest=1, min_area=50)]


def test_postprocess_min_area_flag_and_setting(dataset, tmp_path):  # noqa: F811
    folder, paths = dataset
    src = read_predictions(paths["model2"], SMALL, *SHAPE)
    areas = np.sort(src.areas[src.rows[:, 1]])
    gate = int(areas[len(areas) // 2])  # empties about half of class c1's masks
    pp = tmp_path / "pp.yaml"
    pp.write_text(yaml.safe_dump({"default": {"keep_largest": 1}, "c1": {"min_area": gate}}))
    out = tmp_path / "o.csv"
    r = run_cli("postprocess", paths["model2"], "-o", out, "--setting", pp, *shape_args())
    assert r.exit_code == 0, r.output
    rules = [Rules(keep_largest=1), Rules(keep_largest=1, min_area=gate), Rules(keep_largest=1), Rules(keep_largest=1)]
    assert_file_equals(out, cleaned_reference(src, rules))
    head, *rows = r.stdout.splitlines()
    assert head.split()[-1] == "emptied"
    c1 = next(line for line in rows if line.startswith("c1"))
    emptied = sum(0 < ref_pipeline(dense(src.runs(i, 1), SHAPE), Rules(keep_largest=1)).sum() < gate for i in range(5))
    assert emptied > 0 and c1.split()[-1] == str(emptied)
    # the flag alone (every class), and the table without the column when no class has a gate
    r = run_cli("postprocess", paths["model2"], "-o", out, "--min-area", gate, *shape_args(), "-q")
    assert r.exit_code == 0, r.output
    assert_file_equals(out, cleaned_reference(src, [Rules(min_area=gate)] * len(SMALL)))
    r = run_cli("postprocess", paths["model2"], "-o", out, "--keep-largest", 1, *shape_args(), "-q")
    assert "emptied" not in r.stdout
    r = run_cli("postprocess", paths["model2"], "-o", out, "--min-area", 1, *shape_args(), "-q")
    assert r.exit_code == 2 and "--min-area 1" in r.stderr


def test_inline_min_area_in_a_vote(dataset, tmp_path):  # noqa: F811
    folder, paths = dataset
    s = tmp_path / "v.yaml"
    s.write_text(yaml.safe_dump({"postprocess": {"default": {"min_area": 400}}}))
    plain, gated = tmp_path / "plain.csv", tmp_path / "gated.csv"
    models = [paths["model1"], paths["model2"], paths["model3"]]
    assert run_cli("hard", *models, "-o", plain, *shape_args(), "-q").exit_code == 0
    r = run_cli("hard", *models, "-o", gated, "--setting", s, *shape_args())
    assert r.exit_code == 0, r.output
    voted = read_predictions(plain, SMALL, *SHAPE)
    assert_file_equals(gated, cleaned_reference(voted, [Rules(min_area=400)] * len(SMALL)))
    assert "emptied" in r.stdout
