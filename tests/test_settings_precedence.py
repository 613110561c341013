"""Settings and flags without silent surprises: a flag replaces the settings' default and
per-class entries stay, a file votes once unless asked, a settings file's groups work in its
``postprocess:`` section, and ``soft`` says where its default output goes."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
import yaml
from helpers import CLASSES, run_cli

from core.errors import UsageError
from core.predictions import read_predictions
from core.synthetic import Generator, write_set
from settings.vote import (
    class_overrides,
    default_threshold,
    default_weights,
    threshold_vector,
    weight_matrix,
    with_default_threshold,
    with_default_weights,
)

H, W = 96, 80
SHAPE = ["--classes", ",".join(CLASSES), "--height", H, "--width", W]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    gen = Generator(n_images=3, n_models=3, height=H, width=W, classes=CLASSES, seed=11)
    paths = write_set(gen, folder)
    return [paths[m] for m in gen.model_names]


def _expect_vote(out, models, weights: dict[int, list[float]], thresholds: dict[int, float]) -> None:
    """``out`` holds, per class ``c``, the dense vote of ``models`` with ``weights[c]`` and
    ``thresholds[c]``."""
    got = read_predictions(out, CLASSES, H, W)
    src = [read_predictions(p, CLASSES, H, W) for p in models]
    assert got.images == src[0].images
    for i in range(len(got.images)):
        for c in range(len(CLASSES)):
            ms = [ref.decode(p.runs(i, c), (H, W)) for p in src]
            np.testing.assert_array_equal(
                got.runs(i, c),
                ref.encode(ref.vote(ms, weights[c], thresholds[c])),
                err_msg=f"image {i}, class {CLASSES[c]}",
            )


def _settings(tmp_path, data: dict):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"classes": list(CLASSES), "height": H, "width": W, **data}))
    return path


# --- a flag replaces the settings' default; per-class entries stay ----------------


def test_weights_and_threshold_flags_keep_per_class_entries(synth, tmp_path):
    m1, m2, m3 = synth
    s = _settings(
        tmp_path,
        {
            "sources": {"m1": str(m1), "m2": str(m2), "m3": str(m3)},
            "weights": {"default": {"m1": 1, "m2": 1, "m3": 1}, "b": {"m2": 0}},
            "threshold": {"default": 0.5, "c": 0.2},
        },
    )
    out = tmp_path / "w.csv"
    r = run_cli("weighted", "--setting", s, "--weights", "1,1,2", "--threshold", 0.4, "-o", out)
    assert r.exit_code == 0, r.stderr
    # b keeps m2 at 0 over the flag's new default; c keeps its own threshold
    _expect_vote(out, synth, {0: [1, 1, 2], 1: [1, 0, 2], 2: [1, 1, 2]}, {0: 0.4, 1: 0.4, 2: 0.2})
    assert "weights: m1=1, m2=1, m3=2\nper class (default: weights m1=1, m2=1, m3=2; threshold 0.4):" in r.stderr
    assert "  b: weights m1=1, m2=0, m3=2\n" in r.stderr and "  c: threshold 0.2\n" in r.stderr
    assert "  a:" not in r.stderr
    r = run_cli("weighted", "--setting", s, "--weights", "1,1,2", "-o", tmp_path / "q.csv", "--quiet")
    assert r.exit_code == 0 and r.stderr == ""


def test_hard_threshold_flag_keeps_a_class_threshold(synth, tmp_path):
    s = _settings(tmp_path, {"threshold": {"default": 0.5, "a": 0.1}})
    out = tmp_path / "h.csv"
    r = run_cli("hard", *synth, "--setting", s, "--threshold", 0.6, "-o", out)
    assert r.exit_code == 0, r.stderr
    _expect_vote(out, synth, {c: [1, 1, 1] for c in range(3)}, {0: 0.1, 1: 0.6, 2: 0.6})
    assert "  a: threshold 0.1" in r.stderr


def test_a_flag_replaces_settings_without_per_class_entries(synth, tmp_path):
    s = _settings(tmp_path, {"weights": [5, 1, 1], "threshold": 0.3})
    out = tmp_path / "w.csv"
    r = run_cli("weighted", *synth, "--setting", s, "--weights", "1,2,1", "--threshold", 0.5, "-o", out)
    assert r.exit_code == 0, r.stderr
    _expect_vote(out, synth, {c: [1, 2, 1] for c in range(3)}, {c: 0.5 for c in range(3)})
    assert "per class" not in r.stderr  # every class uses the default
    assert r.stderr.count("weights: model1=1, model2=2, model3=1\n") == 1  # said once, by source name


def test_a_bad_flag_is_named_as_the_flag(synth, tmp_path):
    s = _settings(tmp_path, {"weights": {"default": [1, 1, 1], "b": [0, 1, 1]}})
    r = run_cli("weighted", *synth, "--setting", s, "--weights", "1,1", "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and r.stderr == "error: --weights: 2 weights for 3 sources (model1, model2, model3)\n"
    r = run_cli("weighted", *synth, "--setting", s, "--threshold", 1.5, "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "error: --threshold: thresholds must lie in [0, 1)" in r.stderr


def test_flag_merging_in_the_library():
    names, classes = ["u", "h", "n"], ("a", "Pisiform", "c")
    spec = {"default": {"u": 1, "h": 1, "n": 2}, "Pisiform": {"h": 0}}
    merged = with_default_weights(spec, [1.0, 1.0, 1.0])
    assert merged == {"default": [1.0, 1.0, 1.0], "Pisiform": {"h": 0}} and spec["default"] == {"u": 1, "h": 1, "n": 2}
    w = weight_matrix(merged, names, classes, "s.yaml")
    np.testing.assert_array_equal(w, [[1, 1, 1], [1, 0, 1], [1, 1, 1]])
    assert with_default_weights([1, 2, 3], [4.0, 5.0, 6.0]) == [4.0, 5.0, 6.0]
    assert with_default_weights({"u": 2}, [1.0, 1.0, 1.0]) == [1.0, 1.0, 1.0]
    assert with_default_weights(spec, None) is spec
    t = with_default_threshold({"default": 0.5, "c": 0.4}, 0.7)
    np.testing.assert_array_equal(threshold_vector(t, classes, "s.yaml"), [0.7, 0.7, 0.4])
    assert with_default_threshold(0.5, 0.7) == 0.7 and with_default_threshold({"c": 0.4}, None) == {"c": 0.4}
    assert default_threshold(t) == 0.7 and default_threshold(0.3) == 0.3
    np.testing.assert_array_equal(default_weights(merged, names, "s.yaml"), [1, 1, 1])
    lines = class_overrides(w, threshold_vector(t, classes, "s.yaml"), np.ones(3), 0.7, names, classes)
    assert lines == ["Pisiform: weights u=1, h=0, n=1", "c: threshold 0.4"]


# --- a file votes once unless asked -----------------------------------------------


def test_positional_csvs_next_to_settings_sources_are_refused(synth, tmp_path):
    m1, m2, m3 = synth
    s = _settings(tmp_path, {"sources": {"m1": str(m1), "m2": str(m2), "m3": str(m3)}})
    out = tmp_path / "o.csv"
    for cmd in ("hard", "weighted"):
        for quiet in ([], ["--quiet"]):
            r = run_cli(cmd, "--setting", s, *synth, "-o", out, *quiet)
            assert r.exit_code == 2, r.stderr
            assert r.stderr.strip() == (
                f"error: {s} lists sources (m1, m2, m3); positional CSVs would vote next to "
                "them: re-point one with --source NAME=PATH, or remove 'sources' from the "
                "settings"
            )
    r = run_cli("weighted", "--setting", s, m2, "-o", out)  # one extra file: still refused
    assert r.exit_code == 2 and "positional CSVs would vote next to them" in r.stderr
    assert not out.exists()


def test_a_file_given_twice_is_an_error_unless_allowed(synth, tmp_path):
    m1, m2, m3 = synth
    out = tmp_path / "o.csv"
    other = m1.parent / ".." / m1.parent.name / m1.name  # the same file, spelled differently
    for quiet in ([], ["--quiet"]):
        r = run_cli("hard", m1, m2, other, "-o", out, *SHAPE, *quiet)
        assert r.exit_code == 2 and not out.exists()
        assert r.stderr.strip() == (
            f"error: {other}: same file as {m1} (source model1 and source model1-2): each "
            "copy would vote; give it once (a larger weight counts it more) or pass "
            "--allow-duplicate"
        )
    s = _settings(tmp_path, {"sources": {"x": str(m1), "y": str(m2), "z": str(m1)}})
    r = run_cli("weighted", "--setting", s, "-o", out)
    assert r.exit_code == 2 and "given twice (source x and source z)" in r.stderr
    r = run_cli("weighted", m1, m2, "--source", f"again={m1}", "-o", out, *SHAPE)
    assert r.exit_code == 2 and "given twice (source model1 and source again)" in r.stderr
    # asked for: each copy votes, exactly as a weight of 2 would
    r = run_cli("weighted", m1, m2, m3, other, "--allow-duplicate", "-o", out, *SHAPE)
    assert r.exit_code == 0 and "each copy votes (--allow-duplicate)" in r.stderr
    _expect_vote(out, synth, {c: [2, 1, 1] for c in range(3)}, {c: 0.5 for c in range(3)})


def test_a_source_flag_cannot_silently_replace_a_positional_csv(synth, tmp_path):
    m1, m2, m3 = synth
    r = run_cli("hard", m1, m2, "--source", f"model1={m3}", "-o", tmp_path / "o.csv", *SHAPE)
    assert r.exit_code == 2
    assert f"--source model1={m3}: a positional CSV is already named 'model1' ({m1}); give another name" in r.stderr


def test_other_commands_refuse_a_file_twice(synth, tmp_path):
    m1, m2, _ = synth
    other = f"{m1.parent}/./{m1.name}"
    r = run_cli("merge", m1, m2, other, "-o", tmp_path / "o.csv", *SHAPE)
    assert r.exit_code == 2 and f"{other}: same file as {m1} (part 1 and part 3): give each part once" in r.stderr
    r = run_cli("evaluate", "--gt", m2, m1, other, *SHAPE)
    assert r.exit_code == 2 and f"{other}: same file as {m1} (source model1 and source model1-2)" in r.stderr
    r = run_cli("tune", "--gt", m2, m1, "--source", f"x={other}", "-o", tmp_path / "t.yaml", *SHAPE)
    assert r.exit_code == 2 and "(source model1 and source x): tune each file once" in r.stderr
    maps = tmp_path / "maps"
    maps.mkdir()
    r = run_cli(
        "tune", "--gt", m2, m1, m2, "--maps", f"a={maps}", "--maps", f"b={maps}/", "-o", tmp_path / "t.yaml", *SHAPE
    )
    assert r.exit_code == 2 and "(--maps a and --maps b): give each maps folder once" in r.stderr
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "t.yaml").exists()


def test_merge_says_when_part_files_replace_the_settings_parts(synth, tmp_path):
    m1, m2, m3 = synth
    s = _settings(tmp_path, {"parts": [str(m3)]})
    r = run_cli("merge", m1, m2, "--setting", s, "-o", tmp_path / "o.csv")
    assert r.exit_code == 0, r.stderr
    assert f"note: the PART files given replace the 1 part listed in {s}" in r.stderr
    assert f"{m3}" not in r.stdout and f"{m1}: " in r.stdout


# --- a file's groups work in its postprocess section -------------------------------

GROUP_RULES = {"default": {"fill_holes": True}, "g": {"keep_largest": 1, "min_size": 30}, "b": {"open": 2}}
EXPANDED = {"default": {"fill_holes": True}, "a": {"keep_largest": 1, "min_size": 30}, "b": {"open": 2}}


def test_select_postprocess_accepts_the_files_groups(synth, tmp_path):
    m1, m2, _ = synth
    base = {"sources": {"x": str(m1), "y": str(m2)}, "groups": {"g": ["a", "b"]}, "select": {"g": "y", "default": "x"}}
    raw, inline, after = tmp_path / "raw.csv", tmp_path / "inline.csv", tmp_path / "after.csv"
    r = run_cli("select", "--setting", _settings(tmp_path, base), "-o", raw, "--quiet")
    assert r.exit_code == 0, r.stderr
    r = run_cli(
        "select", "--setting", _settings(tmp_path, {**base, "postprocess": GROUP_RULES}), "-o", inline, "--quiet"
    )
    assert r.exit_code == 0, r.stderr
    assert "postprocess (inline)" in r.stdout
    # the same as cleaning afterwards with the group written out class by class
    pp = tmp_path / "pp.yaml"
    pp.write_text(yaml.safe_dump(EXPANDED))
    r = run_cli("postprocess", raw, "--setting", pp, "-o", after, *SHAPE, "--quiet")
    assert r.exit_code == 0, r.stderr
    assert inline.read_text() == after.read_text() != raw.read_text()


def test_group_keys_in_the_library():
    from postprocess.cleaner import Rules, build_cleaner
    from settings.postprocess import PostprocessFile
    from settings.postprocess import resolve_rules as resolve

    def resolve_rules(section, *args, **kwargs):
        return resolve(PostprocessFile.model_validate({"postprocess": section}).postprocess, *args, **kwargs)

    rules = resolve_rules(GROUP_RULES, CLASSES, "s.yaml", groups={"g": ["a", "b"]})
    assert rules == [
        Rules(keep_largest=1, min_size=30, fill_holes=True),
        Rules(open=2, fill_holes=True),
        Rules(fill_holes=True),
    ]  # a: group; b: its own entry beats the group; c: default
    assert rules == resolve_rules(EXPANDED, CLASSES, "s.yaml")
    assert resolve_rules({"g": None}, CLASSES, "s.yaml", groups={"g": ["c"]})[2] is None
    flags = {"min_size": 5}  # a flag still changes only the default
    assert resolve_rules({"g": {"keep_largest": 1}}, CLASSES, "s.yaml", flags, {"g": ["a"]}) == [
        Rules(keep_largest=1, min_size=5),
        Rules(min_size=5),
        Rules(min_size=5),
    ]
    section = PostprocessFile.model_validate({"postprocess": GROUP_RULES}).postprocess
    assert build_cleaner(section, CLASSES, 8, 8, "s.yaml", groups={"g": ["a", "b"]}).rules == rules
    with pytest.raises(UsageError, match=r"s\.yaml: postprocess: unknown class 'g' \(expected 'default'"):
        resolve_rules({"g": {"keep_largest": 1}}, CLASSES, "s.yaml")  # no groups: not a name
    with pytest.raises(UsageError, match=r"s\.yaml: postprocess: unknown class 'h' .*; groups: g\)"):
        resolve_rules({"h": {"keep_largest": 1}}, CLASSES, "s.yaml", groups={"g": ["a"]})
    two = {"g1": ["a"], "g2": ["a", "b"]}
    with pytest.raises(UsageError, match=r"postprocess: class 'a' is in groups with different rules \(g1, g2\)"):
        resolve_rules({"g1": {"keep_largest": 1}, "g2": {"keep_largest": 2}}, CLASSES, "s.yaml", groups=two)
    same = resolve_rules({"g1": {"keep_largest": 1}, "g2": {"keep_largest": 1}}, CLASSES, "s.yaml", groups=two)
    assert same[0] == same[1] == Rules(keep_largest=1)
    with pytest.raises(UsageError, match=r"groups\.b: group name collides with the class 'b'"):
        resolve_rules({}, CLASSES, "s.yaml", groups={"b": ["a"]})


def test_select_postprocess_group_errors_through_the_cli(synth, tmp_path):
    m1, m2, _ = synth
    base = {
        "sources": {"x": str(m1), "y": str(m2)},
        "groups": {"g1": ["a"], "g2": ["a", "c"]},
        "select": {"default": "x"},
    }
    s = _settings(tmp_path, {**base, "postprocess": {"g1": {"keep_largest": 1}, "g2": {"min_size": 9}}})
    r = run_cli("select", "--setting", s, "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and not (tmp_path / "o.csv").exists()
    assert r.stderr.strip() == (
        f"error: {s}: postprocess: class 'a' is in groups with different rules (g1, g2); give it its own entry"
    )
    s = _settings(
        tmp_path, {**base, "postprocess": {"g1": {"keep_largest": 1}, "g2": {"min_size": 9}, "a": {"min_size": 1}}}
    )
    assert run_cli("select", "--setting", s, "-o", tmp_path / "o.csv", "--quiet").exit_code == 0


# --- soft's default output is documented and printed ---------------------------------


def test_soft_without_an_output_writes_and_names_output_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "x.npy", np.full((3, 2, 2), 0.8, np.float32))
    s = tmp_path / "soft.yaml"
    s.write_text(yaml.safe_dump({"CLASSES": list(CLASSES), "height": 4, "width": 4, "prob_maps": [{"path": "maps"}]}))
    r = run_cli("soft", "--setting", s)
    assert r.exit_code == 0, r.stderr
    assert f"note: no -o and no save_dir/output_name in {s}: writing output.csv in the current folder" in r.stderr
    assert r.stdout.strip().splitlines()[-1] == "output: output.csv"
    assert (tmp_path / "output.csv").read_text().splitlines()[1:] == ["x.png,a,1 16", "x.png,b,1 16", "x.png,c,1 16"]
    r = run_cli("soft", "--setting", s, "--quiet")  # the path is the result: printed even when quiet
    assert r.exit_code == 0 and r.stderr == "" and r.stdout.strip() == "output: output.csv"
    s.write_text(
        yaml.safe_dump(
            {"CLASSES": list(CLASSES), "height": 4, "width": 4, "prob_maps": [{"path": "maps"}], "save_dir": "out"}
        )
    )
    r = run_cli("soft", "--setting", s, "-q")
    assert r.exit_code == 0 and r.stdout.strip() == "output: out/output.csv" and (tmp_path / "out/output.csv").exists()
    r = run_cli("soft", "--setting", s, "-o", "mine.csv")
    assert r.exit_code == 0 and "output:" not in r.stdout and "no -o" not in r.stderr and "→ mine.csv" in r.stderr


def test_soft_help_names_the_default_output():
    text = " ".join(run_cli("soft", "--help").stdout.split())
    assert "./output.csv in the current folder). Without -o the path is printed." in text
    assert "else save_dir/output_name (default ./output.csv, as the original tool)" in text
