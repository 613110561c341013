"""``select``: per-class source rules (groups, overrides, default), partial sources, missing
rows, path-style image names, settings errors, atomic output, best-model choice from a
scores file; outputs checked against an independent pandas reference."""

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
from rle_reference import basename, read_frame, rle_text, write_csv

import cli
from core.classes import DEFAULT_CLASSES
from core.errors import DataError, InputError, UsageError
from core.predictions import read_predictions
from fusion.best_source import best_rules, read_scores
from fusion.select_classes import select
from settings.select import SelectSettings, class_sources, rule_table

H, W = 6, 7
WRIST = ["Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform"]
CLASSES = ["finger-1", "finger-2", *WRIST, "Radius"]


def run(*args):
    res = CliRunner().invoke(cli.cli, [str(a) for a in args])
    assert "Traceback" not in res.output, res.output
    return res


def masks(seed: int, images, classes):
    rng = np.random.default_rng(seed)
    return {(i, c): rng.random((H, W)) < rng.uniform(0, 0.6) for i in images for c in classes}


def source_csv(path, m, images, classes, prefix=""):
    return write_csv(path, [(prefix + i, c, rle_text(m[i, c])) for i in images for c in classes])


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def reference(paths: dict[str, str], rules: dict[str, str], classes) -> pd.DataFrame:
    """Independent pandas select: images in the order of the first listed source that a
    class uses, classes in list order, each (image, class) looked up in its source."""
    used = [n for n in paths if n in rules.values()]
    frames = {}
    for n in used:
        df = read_frame(paths[n])
        df["image_name"] = basename(df["image_name"])
        frames[n] = df
    images = pd.unique(frames[used[0]]["image_name"])
    lookup = {n: df.set_index(["image_name", "class"])["rle"] for n, df in frames.items()}
    rows = [(i, c, lookup[rules[c]].loc[(i, c)].strip()) for i in images for c in classes]
    return pd.DataFrame(rows, columns=["image_name", "class", "rle"])


def effective_rules(cfg: dict, classes) -> dict[str, str]:
    """Precedence as documented: class, then group, then default (independent of the code)."""
    out = {}
    for c in classes:
        if c in cfg["select"]:
            out[c] = cfg["select"][c]
            continue
        via = [cfg["select"][g] for g, members in cfg.get("groups", {}).items() if c in members and g in cfg["select"]]
        out[c] = via[0] if via else cfg["select"]["default"]
    return out


# --- rules -----------------------------------------------------------------------------------


def test_rules_class_beats_group_beats_default():
    cfg = SelectSettings(
        sources={"ens": "e.csv", "wrist": "w.csv", "hr": "h.csv"},
        groups={"wrist": WRIST},
        select={"wrist": "wrist", "Pisiform": "hr", "default": "ens"},
    )
    rules = class_sources(cfg, list(cfg.sources), CLASSES, "s.yaml")
    assert rules == ["ens", "ens", *["wrist"] * 7, "hr", "ens"]


def test_rules_without_default_need_every_class():
    cfg = SelectSettings(sources={"a": "a.csv"}, select={"finger-1": "a"})
    assert rule_table(cfg, ["a"], CLASSES[:2], "s.yaml") == ["a", None]
    with pytest.raises(UsageError, match=r"s\.yaml: select: no rule for class 'finger-2' and no 'default'"):
        class_sources(cfg, ["a"], CLASSES[:2], "s.yaml")


def test_rules_two_groups_with_different_sources_are_ambiguous_unless_named():
    cfg = SelectSettings(
        sources={"a": "a.csv", "b": "b.csv"},
        groups={"g1": ["Radius"], "g2": ["Radius"]},
        select={"g1": "a", "g2": "b", "default": "a"},
    )
    with pytest.raises(UsageError, match="class 'Radius' is in groups with different sources"):
        class_sources(cfg, ["a", "b"], CLASSES, "s.yaml")
    cfg.select["Radius"] = "b"
    assert class_sources(cfg, ["a", "b"], CLASSES, "s.yaml")[-1] == "b"


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"groups": {"wrist": ["Trapezium", "Wrist9"]}, "select": {"default": "ens"}},
            r"s\.yaml: groups\.wrist: unknown class 'Wrist9'",
        ),
        ({"select": {"Radiuss": "ens", "default": "ens"}}, r"s\.yaml: select\.Radiuss: neither a class nor a group"),
        ({"select": {"Radius": "ensemble", "default": "ens"}}, r"s\.yaml: select\.Radius: unknown source 'ensemble'"),
        ({"select": {"default": "hrnet"}}, r"s\.yaml: select\.default: unknown source 'hrnet'"),
        (
            {"groups": {"Radius": ["Ulna"]}, "select": {"default": "ens"}},
            r"s\.yaml: groups\.Radius: group name collides with the class 'Radius'",
        ),
        ({"groups": {"default": ["Radius"]}, "select": {"default": "ens"}}, r"s\.yaml: groups\.default: .*reserved"),
        ({"groups": {"g": []}, "select": {"default": "ens"}}, r"s\.yaml: groups\.g: empty group"),
        ({"select": {"Radius": "ens"}}, r"s\.yaml: select: no rule for class 'finger-1' and no 'default'"),
        (
            {"select": {"default": "ens"}, "postprocess": {"min_size": 3}},
            r"s\.yaml: postprocess: 'min_size' must sit under 'default:' or a class name",
        ),
        ({"select": {"default": "ens"}, "postprocess": {"Radiuss": {"min_size": 3}}}, r"s\.yaml: postprocess.*Radiuss"),
        ({"select": {"default": "ens"}, "height": 0}, r"s\.yaml: height: "),
    ],
)
def test_bad_settings_give_one_line_usage_errors(tmp_path, monkeypatch, data, message):
    monkeypatch.chdir(tmp_path)
    images = ["img1.png"]
    source_csv(tmp_path / "e.csv", masks(0, images, CLASSES), images, CLASSES)
    write_yaml(tmp_path / "s.yaml", {"sources": {"ens": "e.csv"}, **data})
    res = run(
        "select", "--setting", "s.yaml", "-o", "out.csv", "--classes", ",".join(CLASSES), "--height", H, "--width", W
    )
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert sorted(os.listdir(tmp_path)) == ["e.csv", "s.yaml"]  # nothing written


def test_unknown_source_flag_and_missing_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path / "s.yaml", {"sources": {"ens": "e.csv"}, "select": {"default": "ens"}})
    res = run("select", "--setting", "s.yaml", "--source", "ensemble=x.csv", "-o", "o.csv")
    assert res.exit_code == 2 and "s.yaml names no source 'ensemble' (sources: ens)" in res.stderr
    res = run("select", "--setting", "s.yaml")
    assert res.exit_code == 2 and "no output" in res.stderr
    res = run("select", "--setting", "s.yaml", "-o", "e.csv")
    assert res.exit_code == 2 and "would overwrite an input" in res.stderr


# --- selecting -------------------------------------------------------------------------------


def test_select_wrist_only_source_and_path_names(tmp_path, monkeypatch):
    """An 8-class wrist CSV with images named by relative path, an ensemble, an HRNet."""
    monkeypatch.chdir(tmp_path)
    images = [f"image{k}.png" for k in range(5)]
    ens = source_csv(tmp_path / "ens.csv", masks(1, images, CLASSES), images, CLASSES)
    wrist_order = images[::-1]  # row order of a source does not matter
    wrist = source_csv(tmp_path / "wrist.csv", masks(2, images, WRIST), wrist_order, WRIST, prefix="ID04/")
    hr = source_csv(tmp_path / "hr.csv", masks(3, images, CLASSES), images[2:] + images[:2], CLASSES)
    cfg = {
        "sources": {"ens": "ens.csv", "wrist": "wrist.csv", "hr": "hr.csv"},
        "groups": {"wrist": WRIST},
        "select": {"wrist": "wrist", "Pisiform": "hr", "default": "ens"},
        "output": "sel.csv",
        "classes": CLASSES,
        "height": H,
        "width": W,
    }
    write_yaml(tmp_path / "s.yaml", cfg)
    res = run("select", "--setting", "s.yaml")
    assert res.exit_code == 0, res.output
    assert "ens: 15 rows (3 classes)" in res.stdout
    assert "wrist: 35 rows (7 classes)" in res.stdout and "hr: 5 rows (1 class)" in res.stdout
    assert "wrist.csv: 40 rows name images by path; matched on the basename" in res.stderr
    got = read_frame(tmp_path / "sel.csv")
    rules = effective_rules(cfg, CLASSES)
    pd.testing.assert_frame_equal(got, reference({"ens": ens, "wrist": wrist, "hr": hr}, rules, CLASSES))
    assert list(pd.unique(got["image_name"])) == images


def test_images_follow_first_listed_used_source(tmp_path):
    images = [f"i{k}.png" for k in range(4)]
    m = masks(4, images, CLASSES)
    a = read_predictions(source_csv(tmp_path / "a.csv", m, images, CLASSES), CLASSES, H, W)
    b = read_predictions(source_csv(tmp_path / "b.csv", m, images[::-1], CLASSES), CLASSES, H, W)
    # 'a' is listed first but no class uses it: the order is b's
    plan = select({"a": a, "b": b}, ["b"] * len(CLASSES), tmp_path / "o.csv")
    assert plan.images == images[::-1] and plan.rows_by_source() == {"b": 4 * len(CLASSES)}
    assert list(pd.unique(read_frame(tmp_path / "o.csv")["image_name"])) == images[::-1]


def test_missing_row_fails_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images = ["a.png", "b.png"]
    source_csv(tmp_path / "ens.csv", masks(5, images, CLASSES), images, CLASSES)
    rows = [(i, c, "") for i in images for c in WRIST if (i, c) != ("b.png", "Lunate")]
    write_csv(tmp_path / "wrist.csv", rows)
    (tmp_path / "out.csv").write_text("old\n")
    write_yaml(
        tmp_path / "s.yaml",
        {
            "sources": {"ens": "ens.csv", "wrist": "wrist.csv"},
            "groups": {"w": WRIST},
            "select": {"w": "wrist", "default": "ens"},
        },
    )
    res = run(
        "select",
        "--setting",
        "s.yaml",
        "-o",
        "out.csv",
        "--write-setting",
        "chosen.yaml",
        "--classes",
        ",".join(CLASSES),
        "--height",
        H,
        "--width",
        W,
    )
    assert res.exit_code == 1
    assert res.stderr.strip() == (
        "error: wrist.csv: image b.png, class Lunate: missing row (source wrist is "
        "selected for Lunate; 1 selected row missing in all)"
    )
    assert (tmp_path / "out.csv").read_text() == "old\n"  # untouched
    assert sorted(os.listdir(tmp_path)) == ["ens.csv", "out.csv", "s.yaml", "wrist.csv"]  # no temp files


def test_selecting_a_class_a_partial_source_lacks_is_an_error(tmp_path):
    images = ["a.png"]
    ens = read_predictions(source_csv(tmp_path / "e.csv", masks(6, images, CLASSES), images, CLASSES), CLASSES, H, W)
    wr = read_predictions(source_csv(tmp_path / "w.csv", masks(7, images, WRIST), images, WRIST), CLASSES, H, W)
    with pytest.raises(DataError, match=r"w\.csv: image a\.png, class Radius: missing row"):
        select({"ens": ens, "wrist": wr}, ["ens"] * (len(CLASSES) - 1) + ["wrist"], tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_differing_image_sets_are_an_error(tmp_path):
    m = masks(8, ["a.png", "b.png"], CLASSES)
    a = read_predictions(source_csv(tmp_path / "a.csv", m, ["a.png"], CLASSES), CLASSES, H, W)
    b = read_predictions(source_csv(tmp_path / "b.csv", m, ["a.png", "b.png"], CLASSES), CLASSES, H, W)
    with pytest.raises(DataError, match=r"b\.csv \(source b\): image set differs: 1 image not in .*a\.csv"):
        select({"a": a, "b": b}, ["a", "b"] * 5 + ["a"], tmp_path / "o.csv")


def test_rle_strings_are_copied_unchanged(tmp_path):
    """Touching runs and extra spaces stay as written (nothing is decoded and re-encoded)."""
    write_csv(tmp_path / "a.csv", [("x.png", "finger-1", "1 2 3 2"), ("x.png", "finger-2", " 5  3 ")])
    a = read_predictions(tmp_path / "a.csv", CLASSES[:2], H, W)
    select({"a": a}, ["a", "a"], tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_text().splitlines()[1:] == ["x.png,finger-1,1 2 3 2", "x.png,finger-2,5  3"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n_images=st.integers(1, 4), n_sources=st.integers(1, 3), data=st.data())
def test_select_matches_pandas_reference(tmp_path_factory, seed, n_images, n_sources, data):
    tmp = tmp_path_factory.mktemp("sel")
    classes = CLASSES[:5]
    names = [f"s{k}" for k in range(n_sources)]
    pick = st.sampled_from(names)
    group = data.draw(st.lists(st.sampled_from(classes), unique=True, max_size=3))
    cfg = {
        "groups": {"grp": group} if group else {},
        "select": {
            "default": data.draw(pick),
            **({"grp": data.draw(pick)} if group else {}),
            **{c: data.draw(pick) for c in data.draw(st.lists(st.sampled_from(classes), unique=True))},
        },
    }
    rules = effective_rules(cfg, classes)
    images = [f"img{k}.png" for k in range(n_images)]
    paths = {}
    for k, n in enumerate(names):
        held = [c for c in classes if rules[c] == n or data.draw(st.booleans())]
        order = data.draw(st.permutations(images))
        prefix = data.draw(st.sampled_from(["", "ID01/", "a/b\\"]))
        paths[n] = source_csv(tmp / f"{n}.csv", masks(seed + k, images, classes), order, held, prefix)
    cfg.update(sources=paths, classes=classes, height=H, width=W, output=str(tmp / "out.csv"))
    res = run("select", "--setting", write_yaml(tmp / "s.yaml", cfg), "-q")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(read_frame(tmp / "out.csv"), reference(paths, rules, classes))


# --- best model from scores --------------------------------------------------------------------


def scores_csv(path, rows):
    pd.DataFrame(rows, columns=["source", "class", "dice"]).to_csv(path, index=False)
    return str(path)


def test_best_rules_ties_go_to_first_listed_and_fallback(tmp_path):
    classes = ["c1", "c2", "c3", "c4"]
    path = scores_csv(
        tmp_path / "s.csv",
        [
            ("a", "c1", 0.8),
            ("b", "c1", 0.9),
            ("c", "c1", 0.85),
            ("a", "c2", 0.7),
            ("b", "c2", 0.7),
            ("c", "c2", 0.7),  # tie: a listed first
            ("c", "c3", 0.5),
            ("b", "c3", 0.6),  # a has no score for c3: does not compete
            ("zz", "c1", 1.0),
            ("a", "mean", 0.9),  # other source and class: ignored
        ],
    )
    s = read_scores(path, ["a", "b", "c"], classes)
    assert s.other_sources == {"zz": 1} and s.other_classes == {"mean": 1}
    rules, fell = best_rules(s.dice, ["a", "b", "c"], classes, [None, None, None, "c"], "set.yaml")
    assert rules == ["b", "a", "b", "c"] and fell == ["c4"]
    s2 = read_scores(path, ["c", "b", "a"], classes)  # listing order decides ties
    assert best_rules(s2.dice, ["c", "b", "a"], classes, [None] * 3 + ["a"], "x")[0][1] == "c"
    with pytest.raises(UsageError, match="class 'c4': no source has a score and the settings give no rule"):
        best_rules(s.dice, ["a", "b", "c"], classes, [None] * 4, "set.yaml")


@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([("a", "c1", "x")], None, r"s\.csv:2: source a, class c1: dice 'x' is not a number"),
        ([("a", "c1", "nan")], None, r"s\.csv:2: .*not in \[0, 1\]"),
        ([("a", "c1", "1.5")], None, r"s\.csv:2: source a, class c1: dice '1.5' is not in \[0, 1\]"),
        (
            [("a", "c1", 0.5), ("a", "c1", 0.6)],
            None,
            r"s\.csv:3: source a, class c1: duplicate row \(first at line 2\)",
        ),
        ([("q", "c1", 0.5)], None, r"s\.csv: no row names one of the sources \(a, b\)"),
        ([("a", "c1", 0.5)], "model,class,score", r"s\.csv:1: missing column\(s\) source, dice"),
    ],
)
def test_bad_scores_files(tmp_path, rows, header, message):
    path = scores_csv(tmp_path / "s.csv", rows)
    if header:
        text = (tmp_path / "s.csv").read_text().splitlines()
        (tmp_path / "s.csv").write_text("\n".join([header, *text[1:]]) + "\n")
    with pytest.raises(InputError, match=message):
        read_scores(path, ["a", "b"], ["c1", "c2"])


def test_best_from_cli_writes_rules_that_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    classes = CLASSES
    images = [f"im{k}.png" for k in range(3)]
    for k, n in enumerate(["ens", "wrist", "hr"]):
        held = WRIST if n == "wrist" else classes
        source_csv(tmp_path / f"{n}.csv", masks(20 + k, images, held), images, held)
    rng = np.random.default_rng(0)
    rows = [(n, c, round(float(rng.uniform(0.5, 0.9)), 3)) for n in ["ens", "hr"] for c in classes if c != "Radius"]
    rows += [("wrist", c, 0.95) for c in WRIST[:3]] + [("wrist", "Hamate", 0.1)]
    rows += [("ens", "Scaphoid", 0.99), ("hr", "Scaphoid", 0.99)]  # tie between ens and hr: ens listed first
    rows = [r for r in rows if not (r[1] == "Scaphoid" and r[2] != 0.99)]
    scores_csv(tmp_path / "scores.csv", rows)
    write_yaml(
        tmp_path / "s.yaml",
        {
            "sources": {"ens": "ens.csv", "wrist": "wrist.csv", "hr": "hr.csv"},
            "select": {"Radius": "hr"},
            "classes": classes,
            "height": H,
            "width": W,
        },
    )
    res = run(
        "select", "--setting", "s.yaml", "--best-from", "scores.csv", "-o", "best.csv", "--write-setting", "chosen.yaml"
    )
    assert res.exit_code == 0, res.output
    # independent choice: highest dice, first listed on ties; Radius has no scores -> its rule
    frame = pd.DataFrame(rows, columns=["source", "class", "dice"])
    order = {"ens": 0, "wrist": 1, "hr": 2}
    frame["rank"] = frame["source"].map(order)
    best = frame.sort_values(["class", "dice", "rank"], ascending=[True, False, True]).groupby("class").head(1)
    expected = dict(zip(best["class"], best["source"], strict=True)) | {"Radius": "hr"}
    assert expected["Scaphoid"] == "ens"
    assert "Radius" in res.stdout and "no scores; rule from s.yaml" in res.stdout
    paths = {n: f"{n}.csv" for n in order}
    pd.testing.assert_frame_equal(read_frame("best.csv"), reference(paths, expected, classes))
    chosen = yaml.safe_load((tmp_path / "chosen.yaml").read_text())
    assert effective_rules(chosen, classes) == expected
    assert chosen["sources"] == paths and chosen["output"] == "best.csv"
    res = run("select", "--setting", "chosen.yaml", "-o", "again.csv")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "best.csv").read_bytes()


def test_source_flag_repoints_a_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images = ["a.png", "b.png"]
    source_csv(tmp_path / "val.csv", masks(30, images, CLASSES), images, CLASSES)
    test_path = source_csv(tmp_path / "test.csv", masks(31, images, CLASSES), images, CLASSES)
    write_yaml(
        tmp_path / "s.yaml",
        {"sources": {"m": "val.csv"}, "select": {"default": "m"}, "classes": CLASSES, "height": H, "width": W},
    )
    res = run("select", "--setting", "s.yaml", "--source", "m=test.csv", "-o", "o.csv", "--write-setting", "w.yaml")
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(
        read_frame("o.csv"), reference({"m": test_path}, dict.fromkeys(CLASSES, "m"), CLASSES)
    )
    assert yaml.safe_load((tmp_path / "w.yaml").read_text())["sources"] == {"m": "test.csv"}


def test_write_setting_alone_and_its_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_yaml(
        tmp_path / "s.yaml",
        {"sources": {"a": "a.csv", "b": "b.csv"}, "groups": {"w": WRIST}, "select": {"w": "b", "default": "a"}},
    )
    scores_csv(tmp_path / "sc.csv", [("a", "Radius", 0.5), ("b", "Radius", 0.6)])
    res = run("select", "--setting", "s.yaml", "--best-from", "sc.csv", "--write-setting", "c.yaml")
    assert res.exit_code == 0, res.output  # no output: the sources are not read at all
    chosen = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert effective_rules(chosen, list(DEFAULT_CLASSES)) == {
        c: "b" if c in WRIST or c == "Radius" else "a" for c in DEFAULT_CLASSES
    }
    res = run("select", "--setting", "s.yaml", "--write-setting", "nowhere/c.yaml", "-o", "o.csv")
    assert res.exit_code == 2 and "nowhere/c.yaml: folder nowhere does not exist" in res.stderr
    res = run("select", "--setting", "s.yaml", "--write-setting", "s.yaml")
    assert res.exit_code == 2 and "would overwrite the settings" in res.stderr
    assert sorted(os.listdir(tmp_path)) == ["c.yaml", "s.yaml", "sc.csv"]
