"""Every numeric flag and setting of every command, given extreme values (huge, negative, not
a number, infinite, not an integer): one line on stderr and a non-zero exit, never a
traceback, and nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CLASSES, run_cli, write_csv

HUGE = "99999999999999999999"
BAD_INTS = [HUGE, "-1", "4611686018427387905", "nan", "1.5", "1e400"]
BAD_FLOATS = ["nan", "inf", "-inf", "1e400", "x"]
SHAPE = ["--classes", ",".join(CLASSES), "--height", "4", "--width", "4"]


@pytest.fixture
def files(tmp_path):
    rows = [(f"i{k}.png", c, "1 3") for k in range(2) for c in CLASSES]
    a = write_csv(tmp_path / "a.csv", rows)
    b = write_csv(tmp_path / "b.csv", rows)
    maps = tmp_path / "maps"
    maps.mkdir()
    for k in range(2):
        np.save(maps / f"i{k}.npy", np.full((len(CLASSES), 2, 2), 0.7, np.float32))
    return {"a": a, "b": b, "maps": maps, "out": tmp_path / "out.csv", "dir": tmp_path}


# (command, arguments before the flag, flags that take an integer, flags that take a float)
COMMANDS = [
    ("check", ["{a}"], ["--max-problems", "--height", "--width", "--expect-images"], []),
    ("hard", ["{a}", "{b}", "-o", "{out}"], ["--min-votes", "--workers", "--height", "--chunk"], ["--threshold"]),
    ("weighted", ["{a}", "{b}", "-o", "{out}"], ["--min-votes", "--width"], ["--threshold"]),
    (
        "postprocess",
        ["{a}", "-o", "{out}"],
        ["--open", "--close", "--min-size", "--keep-largest", "--max-hole", "--min-area", "--workers", "--height"],
        [],
    ),
    ("evaluate", ["--gt", "{a}", "{b}"], ["--height", "--expect-images", "--chunk"], []),
    (
        "staple",
        ["{a}", "{b}", "-o", "{out}"],
        ["--width"],
        ["--confidence", "--init-sensitivity", "--init-specificity", "--alpha"],
    ),
    ("tune", ["--gt", "{a}", "{b}", "-o", "{dir}/t.yaml"], ["--width"], ["--margin", "--max-seconds"]),
    ("merge", ["{a}", "-o", "{out}"], ["--height", "--expect-images"], []),
    ("report", ["--gt", "{a}", "{b}", "-o", "{dir}/rep"], ["--pages", "--height"], []),
    ("demo", ["{dir}/demo"], ["--images", "--models", "--seed"], []),
]


def _cases():
    for command, before, ints, floats in COMMANDS:
        for flag in ints:
            for value in BAD_INTS:
                yield pytest.param(command, before, flag, value, id=f"{command}{flag}={value}")
        for flag in floats:
            for value in BAD_FLOATS:
                yield pytest.param(command, before, flag, value, id=f"{command}{flag}={value}")


def _one_line_error(r) -> None:
    assert r.exit_code not in (0, None), r.output
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: "), r.stderr


@pytest.mark.parametrize("command, before, flag, value", list(_cases()))
def test_extreme_flag_values(files, command, before, flag, value):
    shape = [] if command == "demo" else [a for a in SHAPE if not (flag in ("--height", "--width") and a == flag)]
    if flag in ("--height", "--width"):
        shape = ["--classes", ",".join(CLASSES), "--height" if flag == "--width" else "--width", "4"]
    args = [a.format(**files) for a in before] + shape + [flag, value, "-q"]
    if command == "postprocess" and flag == "--max-hole":
        args.append("--fill-holes")
    r = run_cli(command, *args)
    _one_line_error(r)
    assert not files["out"].exists()


@pytest.mark.parametrize(
    "flag",
    ["--open", "--close", "--min-size", "--keep-largest", "--max-hole", "--min-area"],
)
def test_the_largest_counts_act_as_the_whole_image(files, flag):
    """A count beyond what the image holds, up to the limit, is honoured: the largest radius
    opens away every mask and closes the image to its masks' hull, any other count acts as
    the image itself; the run ends quickly either way."""
    extra = ["--fill-holes"] if flag == "--max-hole" else []
    r = run_cli("postprocess", files["a"], "-o", files["out"], flag, str(2**62), *extra, *SHAPE, "-q")
    assert r.exit_code == 0, r.output
    assert files["out"].read_text().count("\n") == 1 + 2 * len(CLASSES)


@pytest.mark.parametrize(
    "key, value",
    [
        ("keep_largest", HUGE),
        ("keep_largest", "-1"),
        ("min_size", "1e400"),
        ("open", HUGE),
        ("close", "-5"),
        ("max_hole", "0"),
        ("connectivity", "6"),
        ("min_area", HUGE),
        ("min_area", "-3"),
        ("min_area", "2.5"),
    ],
)
def test_extreme_cleaning_settings(files, key, value):
    pp = files["dir"] / "pp.yaml"
    pp.write_text(f"default: {{{key}: {value}}}\n")
    r = run_cli("postprocess", files["a"], "-o", files["out"], "--setting", pp, *SHAPE, "-q")
    _one_line_error(r)
    assert "pp.yaml" in r.stderr and key in r.stderr


@pytest.mark.parametrize(
    "text",
    [
        "height: 99999999999999999999\n",
        "width: 0\n",
        "threshold: .nan\n",
        "threshold: .inf\n",
        "workers: 100000\n",
        "min_votes: 99999999999999999999\n",
        "weights: [.nan, 1]\n",
        "weights: [1e400, 1]\n",
    ],
)
def test_extreme_vote_settings(files, text):
    s = files["dir"] / "s.yaml"
    s.write_text(f"sources: [{files['a']}, {files['b']}]\nclasses: [{', '.join(CLASSES)}]\n" + text)
    r = run_cli("hard", "--setting", s, "-o", files["out"], "-q")
    _one_line_error(r)


@pytest.mark.parametrize(
    "text",
    [
        "height: 99999999999999999999\n",
        "threshold: .nan\n",
        "batch_size: 99999999999999999999\n",
        "num_workers: -1\n",
        "prob_maps: [{path: MAPS, scale: .inf}]\n",
        "model_paths: {99999999999999999999: []}\n",
    ],
)
def test_extreme_soft_settings(files, text):
    s = files["dir"] / "s.yaml"
    body = f"CLASSES: [{', '.join(CLASSES)}]\nheight: 4\nwidth: 4\nsave_dir: {files['dir']}\n"
    if "prob_maps" not in text:
        body += f"prob_maps: [{{path: {files['maps']}}}]\n"
    s.write_text(body + text.replace("MAPS", str(files["maps"])))
    r = run_cli("soft", "--setting", s, "-o", files["out"], "-q")
    _one_line_error(r)


@pytest.mark.parametrize(
    "text",
    [
        "confidence: .nan\n",
        "confidence: 1.5\n",
        "init_sensitivity: 1.0\n",
        "alpha: .inf\n",
        "max_iter: 99999999999999999999\n",
        "max_iter: 0\n",
        "height: 0\n",
    ],
)
def test_extreme_staple_settings(files, text):
    s = files["dir"] / "s.yaml"
    s.write_text(f"sources: [{files['a']}, {files['b']}]\nclasses: [{', '.join(CLASSES)}]\n" + text)
    r = run_cli("staple", "--setting", s, "-o", files["out"], "-q")
    _one_line_error(r)
    assert "s.yaml" in r.stderr
