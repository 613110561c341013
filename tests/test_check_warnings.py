"""``check`` warns (one line each, naming the file; the file stays valid, exit 0) when the
last line has no line end and when images look smaller than the mask size; the other
commands warn of the missing line end once per file. ``check`` takes several files."""

from __future__ import annotations

import pytest
from helpers import run_cli

from core.validate import MIN_RUNS, check

SHAPE = ("--classes", "x,y", "--height", 64, "--width", 64)
UNTERMINATED = (
    "the last line has no line end; a file cut inside its last number still reads as valid "
    "(…130 as …1): is the file complete?"
)


def _rows(images=("a.png", "b.png"), rle=lambda i, c: "1 130") -> str:
    lines = ["image_name,class,rle"]
    lines += [f"{im},{c},{rle(i, c)}" for i, im in enumerate(images) for c in ("x", "y")]
    return "\n".join(lines)


def _spread(i: int, c: str) -> str:
    """Runs in every quarter of a 64×64 mask: one per 4th row, then a last run of 130 pixels."""
    return " ".join(f"{1 + r * 64 + i} 3" for r in range(0, 60, 4)) + " 3900 130"


def test_a_last_line_without_line_end_is_a_warning_of_a_valid_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(_rows(rle=_spread))
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0 and "Traceback" not in r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"warning: {path}:5: {UNTERMINATED}"
    assert lines[1].startswith(f"{path}: valid: 2 images × 2 classes") and len(lines) == 2
    # The cut this warns of: "… 3900 130" cut to "… 3900 1" still reads as a valid file.
    path.write_text(_rows(rle=_spread)[:-2])
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == f"warning: {path}:5: {UNTERMINATED}"
    path.write_text(_rows(rle=_spread) + "\n")
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0 and "warning" not in r.output


def test_other_commands_warn_of_the_missing_line_end_once_per_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(_rows(rle=_spread))
    other = tmp_path / "t.csv"
    other.write_text(_rows(rle=_spread) + "\n")
    warning = f"warning: {path}:5: {UNTERMINATED}"
    for argv in (
        ["hard", path, path, other, "--allow-duplicate", "-o", tmp_path / "o.csv"],
        ["postprocess", path, "--min-size", 2, "-o", tmp_path / "p.csv"],
        ["merge", path, other, "-o", tmp_path / "m.csv"],
        ["evaluate", "--gt", path, path, other],
        ["report", "--gt", path, path, other, "-o", tmp_path / "rep"],
    ):
        r = run_cli(*argv, *SHAPE)
        assert r.exit_code == 0, (argv, r.output)
        assert r.stderr.count(warning) == 1, (argv, r.stderr)
        assert "Traceback" not in r.output
    r = run_cli("hard", path, other, "-o", tmp_path / "q.csv", *SHAPE, "--quiet")
    assert r.exit_code == 0 and r.stderr == ""


def test_images_whose_runs_all_end_in_the_first_quarter_are_a_warning(tmp_path):
    # A 16×16 prediction of each image, written as if the masks were 64×64: every run ends
    # before pixel 257 of 4,096.
    def small(i, c):
        return " ".join(f"{1 + r * 16 + i} 4" for r in range(16))

    path = tmp_path / "s.csv"
    path.write_text(_rows(rle=small) + "\n")
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0 and "Traceback" not in r.output
    assert r.stdout.splitlines()[0] == (
        f"warning: {path}: 2 images (a.png, b.png) have every run within the first quarter of the 64×64 "
        "pixels (the last ends at pixel 245 of 4,096): are they smaller than 64×64? give the size with "
        "--height/--width"
    )
    # One image spread over the mask: only the other is named.
    path.write_text(_rows(rle=lambda i, c: _spread(i, c) if i == 0 else small(i, c)) + "\n")
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0 and r.stdout.splitlines()[0] == (
        f"warning: {path}: 1 image (b.png) has every run within the first quarter of the 64×64 "
        "pixels (the last ends at pixel 245 of 4,096): is it smaller than 64×64? give the size with "
        "--height/--width"
    )
    assert len(r.stdout.splitlines()) == 2


def _dots(n: int) -> str:
    """``n`` one-pixel runs on every other pixel of the first row."""
    return " ".join(f"{1 + 2 * k} 1" for k in range(n))


@pytest.mark.parametrize(
    "rle, warned",
    [
        (lambda i, c: "1 1024", False),  # one run a class, however large: too little to go on
        (lambda i, c: _dots(MIN_RUNS - MIN_RUNS // 2 - 1 if c == "x" else MIN_RUNS // 2), False),
        (lambda i, c: _dots(MIN_RUNS - MIN_RUNS // 2 if c == "x" else MIN_RUNS // 2), True),  # MIN_RUNS in all
        (lambda i, c: "1 2 1024 1" if c == "x" else _dots(MIN_RUNS), True),  # ends on pixel H·W/4
        (lambda i, c: "1 2 1025 1" if c == "x" else _dots(MIN_RUNS), False),  # one pixel past it
        (lambda i, c: "", False),
    ],
)
def test_the_small_image_rule(tmp_path, rle, warned):
    """Warned when the image's valid masks hold at least MIN_RUNS runs in all and the last run
    ends at or before pixel H·W/4 (1,024 of 4,096 here)."""
    path = tmp_path / "s.csv"
    path.write_text(_rows(images=("a.png",), rle=rle) + "\n")
    report = check(path, ["x", "y"], 64, 64)
    assert report.valid
    assert any("first quarter" in w for w in report.warnings) == warned, report.warnings


def test_invalid_rows_do_not_count_for_the_small_image_rule(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(f"image_name,class,rle\na.png,x,{_dots(6)}\na.png,y,{_dots(12)} 5000 1\n")
    report = check(path, ["x", "y"], 64, 64)
    assert not report.valid and report.warnings == []


def test_check_takes_several_files_each_reported_in_turn(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(_rows(rle=_spread) + "\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(_rows(rle=lambda i, c: "1 0") + "\n")
    unterminated = tmp_path / "warn.csv"
    unterminated.write_text(_rows(rle=_spread))
    r = run_cli("check", good, unterminated, *SHAPE)
    assert r.exit_code == 0
    out = r.stdout.splitlines()
    assert len(out) == 3 and out[0].startswith(f"{good}: valid:")
    assert out[1] == f"warning: {unterminated}:5: {UNTERMINATED}" and out[2].startswith(f"{unterminated}: valid:")
    r = run_cli("check", good, bad, unterminated, *SHAPE, "--max-problems", 1)
    assert r.exit_code == 1
    out = r.stdout.splitlines()
    assert out[0].startswith(f"{good}: valid:") and out[-1].startswith(f"{unterminated}: valid:")
    assert f"{bad}: INVALID (4 problems)" in r.stdout and "… and 3 more problems" in r.stdout
    r = run_cli("check", good, tmp_path / "missing.csv", bad, tmp_path, *SHAPE)
    assert r.exit_code == 2  # the worst: an unreadable file
    assert r.stderr.splitlines() == [
        f"error: {tmp_path / 'missing.csv'}: no such file",
        f"error: {tmp_path}: holds no *.png label maps",  # a folder of predictions is read as label maps
    ]
    assert r.stdout.splitlines()[0].startswith(f"{good}: valid:") and f"{bad}: INVALID" in r.stdout
    r = run_cli("check", *SHAPE)
    assert r.exit_code == 2 and "Missing argument 'SUBMISSION...'" in r.stderr
