"""Names in messages: user-supplied names (image, class, source, group, settings key, file)
are cut at 80 characters with an ellipsis and have their control characters escaped in every
message; misspelt names get a "did you mean"; a parameter is named once; ``weighted`` says
which weight went to which source; summaries and tables read well whatever the class names.
"""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import run_cli, write_csv

from core.errors import UsageError
from ensemble.rle_votes import weighted_vote

SMALL = ("--classes", "a,b,c", "--height", 4, "--width", 4)
HUGE = "x" * 100_000
NUL = "a\x00b"


def _rows(images=("p.png", "q.png"), classes="abc", rle="1 2"):
    return [(i, c, rle) for i in images for c in classes]


@pytest.fixture
def files(tmp_path):
    return {
        "a": write_csv(tmp_path / "a.csv", _rows()),
        "b": write_csv(tmp_path / "b.csv", _rows(rle="2 2")),
        "dir": tmp_path,
    }


def _settings(path, data) -> str:
    path.write_text(yaml.safe_dump(data, width=10**9, sort_keys=False))  # long keys as YAML writes them ('? key')
    return str(path)


def _clean(r, max_line: int = 1000) -> list[str]:
    """The lines of a run's output, checked: no raw control character, no name longer than
    80 characters, no overlong line, no traceback."""
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert "\x00" not in out and "x" * 81 not in out, out[:300]
    lines = [line for line in re.split(r"[\r\n]", out) if line.strip()]
    assert all(len(line) <= max_line for line in lines), max(len(line) for line in lines)
    return lines


# --- a 100,000-character or NUL-holding name, everywhere it can appear ---------------


def test_a_huge_class_name_in_a_file_is_cut_in_one_short_line(files, tmp_path):
    path = write_csv(tmp_path / "c.csv", [*_rows(), ("p.png", HUGE, "1 1")])
    cut = "x" * 79 + "…"
    r = run_cli("check", path, *SMALL)
    assert r.exit_code == 1
    assert _clean(r)[0] == (
        f"{path}:8: image p.png, class {cut}: unknown class '{cut}' (expected one of 3 classes: a, b, c)"
    )
    r = run_cli("hard", files["a"], path, "-o", tmp_path / "o.csv", *SMALL)
    assert r.exit_code == 2 and len(_clean(r)) == 1 and r.stderr.startswith(f"error: {path}:8: image p.png")


def test_a_nul_in_a_name_is_escaped(files, tmp_path):
    path = write_csv(tmp_path / "c.csv", [*_rows(), ("p.png", NUL, "1 1")])
    r = run_cli("check", path, *SMALL)
    assert r.exit_code == 1
    assert _clean(r)[0] == (
        f"{path}:8: image p.png, class a\\x00b: unknown class 'a\\x00b' (expected one of 3 classes: a, b, c)"
    )
    names = tmp_path / "list.txt"
    names.write_text(f"p.png\nq.png\n{NUL}\n")
    r = run_cli("check", files["a"], "--images-from", names, *SMALL)
    assert r.exit_code == 1 and f"1 image of {names} missing (a\\x00b)" in _clean(r)[0]


def _cases(f, tmp_path, name: str) -> list[list]:
    """Command lines that put ``name`` in a message, each through another door."""
    d, o = f["dir"], tmp_path / "o.csv"
    img = write_csv(d / "img.csv", _rows(images=("p.png", "q.png", name)))
    cls = write_csv(d / "cls.csv", [*_rows(), ("p.png", name, "1 1")])
    two = {"sources": {"a": str(f["a"]), "b": str(f["b"])}}
    scores = d / "scores.csv"
    scores.write_text(f"source,class,dice\n{name},a,0.5\na,{name},0.5\na,a,x{name}\n")
    s = lambda n, data: _settings(d / f"{n}.yaml", data)  # noqa: E731
    return [
        ["check", cls],
        ["hard", f["a"], img, "-o", o],
        ["hard", f["a"], cls, "-o", o],
        ["evaluate", "--gt", img, f["a"]],
        ["evaluate", "--gt", f["a"], img],
        ["report", "--gt", f["a"], img, "-o", d / "rep"],
        ["report", "--gt", f["a"], f["a"], f["b"], "--focus", name[:5000], "-o", d / "rep2"],
        ["hard", f["a"], f["b"], "--setting", s("key", {name: 1}), "-o", o],
        ["weighted", "--setting", s("src", {"sources": {name: str(f["a"])}, "weights": {"y": 1}}), "-o", o],
        ["weighted", f["a"], f["b"], "--setting", s("wcls", {"weights": {"default": [1, 1], name: [1, 2]}}), "-o", o],
        ["weighted", f["a"], f["b"], "--setting", s("thr", {"threshold": {"default": 0.5, name: 0.2}}), "-o", o],
        ["weighted", f["a"], "--source", f"{name[:5000]}={f['b']}", "-o", o],
        ["weighted", "--setting", s("src2", two), "--source", f"{name[:5000]}={f['b']}", "-o", o],
        ["postprocess", f["a"], "--setting", s("pp", {name: {"keep_largest": 1}}), "-o", o],
        ["postprocess", f["a"], "--setting", s("ppkey", {"default": {name: 1}}), "-o", o],
        ["select", "--setting", s("sel", {**two, "select": {"default": "a", "b": name}}), "-o", o],
        ["select", "--setting", s("sel2", {**two, "select": {"default": "a", name: "b"}}), "-o", o],
        ["select", "--setting", s("grp", {**two, "groups": {"g": ["a", name]}, "select": {"default": "a"}}), "-o", o],
        ["select", "--setting", s("grp2", {**two, "groups": {name: ["a"]}, "select": {name + "q": "b"}}), "-o", o],
        ["select", "--setting", s("sel3", {**two, "select": {"default": "a"}}), "--best-from", scores, "-o", o],
        ["merge", f["a"], img, "-o", o],
    ]


@pytest.mark.parametrize("name", [HUGE, NUL], ids=["huge", "nul"])
def test_every_message_shows_a_name_cut_and_escaped(files, tmp_path, name):
    for argv in _cases(files, tmp_path, name):
        r = run_cli(*argv, *SMALL, "--quiet")
        assert r.exit_code in (0, 1, 2), (argv, r.output[:300])
        _clean(r)
        if r.exit_code:
            assert len(r.stdout.splitlines() + r.stderr.splitlines()) <= 3, (argv, r.output[:500])


def test_a_file_name_too_long_for_the_system_is_one_line(files):
    r = run_cli("check", files["a"], "--classes", "a,b,c," + "y" * 5000)
    assert r.exit_code == 1 and "Traceback" not in r.output  # a class list, not a file
    r = run_cli("check", files["a"], "--classes", "/" + "y" * 5000 + ".txt")
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.output


# --- did you mean --------------------------------------------------------------------


def test_misspelt_names_in_settings_get_a_suggestion(files, tmp_path):
    two = {"sources": {"unet": str(files["a"]), "hrnet": str(files["b"])}}
    wrist = {"groups": {"wrist": ["a", "b"]}}
    s = lambda n, data: _settings(tmp_path / f"{n}.yaml", data)  # noqa: E731
    o = tmp_path / "o.csv"
    cases = [
        (
            ["weighted", "--setting", s("w", {**two, "weights": {"unte": 1, "hrnet": 1}}), "-o", o],
            "weights: unknown source 'unte' (did you mean 'unet'? sources: unet, hrnet)",
        ),
        (
            ["weighted", "--setting", s("w2", {**two, "weights": {"default": [1, 1], "B": [1, 2]}}), "-o", o],
            "weights: 'B' is neither a source nor a class (did you mean 'b'? sources: unet, hrnet)",
        ),
        (
            ["weighted", "--setting", s("t", {**two, "threshold": {"default": 0.5, "C": 0.2}}), "-o", o],
            "threshold: unknown class 'C' (did you mean 'c'? expected 'default' or one of 3 classes: a, b, c)",
        ),
        (
            ["weighted", "--setting", s("w3", two), "--source", f"hrnt={files['b']}", "-o", o],
            "names no source 'hrnt' (did you mean 'hrnet'? sources: unet, hrnet)",
        ),
        (
            ["select", "--setting", s("s", {**two, "select": {"default": "unte"}}), "-o", o],
            "select.default: unknown source 'unte' (did you mean 'unet'? sources: unet, hrnet)",
        ),
        (
            ["select", "--setting", s("s2", {**two, **wrist, "select": {"default": "unet", "wirst": "hrnet"}})],
            "select.wirst: neither a class nor a group (did you mean 'wrist'? classes: a, b, c; groups: wrist)",
        ),
        (
            ["select", "--setting", s("s3", {**two, "select": {"defualt": "unet"}}), "-o", o],
            "select.defualt: neither a class nor a group (did you mean 'default'? classes: a, b, c)",
        ),
        (
            ["select", "--setting", s("g", {**two, "groups": {"wrist": ["a", "B"]}, "select": {"default": "unet"}})],
            "groups.wrist: unknown class 'B' (did you mean 'b'? classes: a, b, c)",
        ),
        (
            ["select", "--setting", s("s4", {**two, "select": {"default": "unet"}}), "--source", f"unte={files['b']}"],
            "names no source 'unte' (did you mean 'unet'? sources: unet, hrnet)",
        ),
        (
            ["postprocess", files["a"], "--setting", s("p", {"default": {"keep_largest": 1}, "B": {"min_size": 2}})],
            "postprocess: unknown class 'B' (did you mean 'b'? expected 'default' or one of 3 classes: a, b, c)",
        ),
    ]
    for argv, said in cases:
        r = run_cli(*argv, *([] if "-o" in argv else ["-o", o]), *SMALL)
        assert r.exit_code == 2, (argv, r.output)
        assert len(r.stderr.splitlines()) == 1 and said in r.stderr, (argv, r.stderr)


# --- a parameter named once; the weights said by source ----------------------------


def test_a_parameter_is_named_once(files, tmp_path):
    r = run_cli("weighted", files["a"], files["b"], files["a"], "--weights", "2,1", "-o", tmp_path / "o.csv", *SMALL)
    assert r.exit_code == 2 and r.stderr == "error: --weights: 2 weights for 3 sources (a, b, a-2)\n"
    with pytest.raises(UsageError, match=r"^weights: 2 weights for 3 sources \(a, b, a-2\)$"):
        weighted_vote([files["a"], files["b"], files["a"]], weights=[2, 1], classes=["a", "b", "c"], height=4, width=4)


def test_weighted_says_which_weight_went_to_which_source(files, tmp_path):
    c = write_csv(tmp_path / "model3.csv", _rows(rle="3 2"))
    argv = ["weighted", files["a"], files["b"], c, "--weights", "3,1,1", "-o", tmp_path / "o.csv", *SMALL]
    r = run_cli(*argv)
    assert r.exit_code == 0 and r.stderr.count("weights: a=3, b=1, model3=1\n") == 1
    assert run_cli(*argv, "--quiet").stderr == ""
    r = run_cli("hard", files["a"], files["b"], c, "-o", tmp_path / "h.csv", *SMALL)
    assert r.exit_code == 0 and "weights:" not in r.stderr


# --- summaries and tables with any class names -----------------------------------------


@pytest.fixture
def numbered(tmp_path):
    """Two predictions whose classes are named 1, 2, 3 (2 is empty everywhere in the first)."""
    rows = [(i, c, "" if c == "2" else "1 1 9 3") for i in ("p.png", "q.png") for c in "123"]
    return write_csv(tmp_path / "m1.csv", rows), write_csv(tmp_path / "m2.csv", _rows(classes="123", rle="2 3"))


NUMBERED = ("--classes", "1,2,3", "--height", 4, "--width", 4)


def test_summaries_read_well_when_class_names_are_numbers(numbered, tmp_path):
    m1, m2 = numbered
    r = run_cli("check", m1, *NUMBERED)
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "empty masks per class: '2': 2; first: p.png (class '2'), q.png (class '2')"
    r = run_cli("postprocess", m1, "--min-size", 2, "-o", tmp_path / "p.csv", *NUMBERED, "--quiet")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "class  rules   masks  changed  objects removed  holes filled  px removed    px added",
        "'1'    min 2       2        2                2             0           2           0",
        "'2'    min 2       2        0                0             0           0           0",
        "'3'    min 2       2        2                2             0           2           0",
        "total              6        4                4             0           4           0",
    ]
    r = run_cli("evaluate", "--gt", m1, m2, *NUMBERED, "--quiet")
    assert r.exit_code == 0
    assert [line.split()[0] for line in r.stdout.splitlines()[1:5]] == ["'1'", "'2'", "'3'", "mean"]
