"""What a command reads is bounded and must be a regular file.

A line longer than the longest legal row for the mask size is an error as soon as it is
seen, before the rest of the file is read (memory does not grow with the bad line); a
folder, a FIFO or a device given where a file is read says so in one line (exit 2) for
every input path of every command.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from helpers import CLASSES, ROOT, run_cli, write_csv

from core.csv_bytes import CHUNK, LINE_SLACK, longest_line, read_bounded
from core.errors import InputError

SIDE = ("--classes", "a,b,c", "--height", 64, "--width", 64)
BOUND = longest_line(64 * 64)


def test_the_bound_is_the_longest_canonical_rle_plus_slack():
    # 4,096 pixels: 4,096 runs of 'dddd dddd ' at most (10 characters each).
    assert BOUND == 4096 * 10 + LINE_SLACK == 1_089_536
    assert longest_line(2048 * 2048) == 4_194_304 * 16 + LINE_SLACK
    widest = " ".join(f"{p} 1" for p in range(1, 4097, 2))  # every other pixel: the most runs a mask has
    assert len(f"image.png,a,{widest}") < BOUND


def _one_line_error(r, text):
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {text}\n"
    assert "Traceback" not in r.output


def test_an_overlong_line_is_one_line_error_naming_file_line_and_bound(tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes(b"image_name,class,rle\nx.png,a,1 2\nx.png,b," + b"1 1 " * (1 << 20) + b"\nx.png,c,\n")
    r = run_cli("check", path, *SIDE)
    _one_line_error(
        r,
        f"{path}:3: line longer than 1,089,536 characters, more than a row of 64×64 masks can need; "
        "stopped reading there (are --height and --width right?)",
    )
    good = write_csv(tmp_path / "good.csv", [("x.png", c, "1 2") for c in CLASSES])
    r = run_cli("hard", good, path, "-o", tmp_path / "o.csv", *SIDE)
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {path}:3: line longer than 1,089,536 characters")
    assert not (tmp_path / "o.csv").exists()


def test_a_line_at_the_bound_is_read():
    data = b"h\n" + b"x" * BOUND + b"\n" + b"y" * BOUND
    assert read_bounded(io.BytesIO(data), "f", BOUND, "64×64") == data
    with pytest.raises(InputError, match=r"^f:2: line longer than 1,089,536 characters"):
        read_bounded(io.BytesIO(b"h\n" + b"x" * (BOUND + 1) + b"\n"), "f", BOUND, "64×64")
    with pytest.raises(InputError, match=r"^f:3: line longer"):  # the last line, without a line end
        read_bounded(io.BytesIO(b"h\nok\n" + b"x" * (BOUND + 1)), "f", BOUND, "64×64")


class _Endless(io.RawIOBase):
    """A file of one header, one short row and then an endless line: bytes made as they are
    asked for, and counted. Reading it whole never ends."""

    def __init__(self):
        self.served = 0
        self.head = b"image_name,class,rle\nx.png,a,1 2\nx.png,b,"

    def readable(self):
        return True

    def readinto(self, buf):
        n = len(buf)
        chunk = (self.head + b"1 1 " * (n // 4 + 1))[:n] if self.served == 0 else b"9" * n
        buf[:n] = chunk
        self.served += n
        return n


@pytest.mark.parametrize("bound", [BOUND, longest_line(2048 * 2048)])
def test_reading_stops_at_the_first_overlong_line(bound):
    stream = io.BufferedReader(_Endless(), buffer_size=1 << 16)
    with pytest.raises(InputError, match=r"^endless\.csv:3: line longer than"):
        read_bounded(stream, "endless.csv", bound, "H×W")
    # Read: the bad line up to its bound, and at most one chunk (and a buffer) past it.
    assert bound < stream.raw.served <= bound + min(CHUNK, bound) + (1 << 17)


def test_peak_memory_does_not_grow_with_the_bad_line(tmp_path):
    """``check`` of a file whose one field is 64 MB (64×64 masks: a bound of about 1 MB) stays
    within a few MB of ``check`` of a valid file, in a fresh process each."""
    good = write_csv(tmp_path / "good.csv", [("x.png", c, "1 2") for c in CLASSES])
    bad = tmp_path / "bad.csv"
    with open(bad, "wb") as fh:
        fh.write(b"image_name,class,rle\nx.png,a,")
        for _ in range(64):
            fh.write(b"1 1 " * (1 << 18))
        fh.write(b"\n")
    probe = (
        "import resource, sys\n"
        "from click.testing import CliRunner\n"
        "import cli\n"
        "r = CliRunner().invoke(cli.cli, sys.argv[1:])\n"
        "print(r.exit_code, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )

    def peak(path) -> tuple[int, int]:
        args = [sys.executable, "-c", probe, "check", str(path), *map(str, SIDE)]
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
        code, kib = out.stdout.split()[-2:]
        return int(code), int(kib)

    (good_code, good_kib), (bad_code, bad_kib) = peak(good), peak(bad)
    assert (good_code, bad_code) == (0, 2)
    assert bad_kib - good_kib < 16 * 1024, (good_kib, bad_kib)  # the field alone is 64 MiB


# --- every input path must be a regular file ------------------------------------------


@pytest.fixture
def inputs(tmp_path):
    f = {
        "a": write_csv(tmp_path / "a.csv", [("x.png", c, "1 2") for c in CLASSES]),
        "b": write_csv(tmp_path / "b.csv", [("x.png", c, "2 2") for c in CLASSES]),
        "folder": tmp_path / "folder",
        "maps": tmp_path / "maps",
        "out": tmp_path / "o.csv",
    }
    f["folder"].mkdir()
    f["maps"].mkdir()
    np.save(f["maps"] / "x.npy", np.full((3, 2, 2), 0.8, np.float32))
    return f


def _soft_setting(f, tmp_path, **extra):
    path = tmp_path / "soft.yaml"
    cfg = {"CLASSES": list(CLASSES), "height": 4, "width": 4, "prob_maps": [{"path": str(f["maps"]), **extra}]}
    path.write_text(yaml.safe_dump(cfg))
    return path


SMALL = ("--classes", "a,b,c", "--height", 4, "--width", 4)


def _cases(f, bad, tmp_path):
    """(command line, the bad path as the message names it) for every input of every command."""
    o = f["out"]
    select = tmp_path / "select.yaml"
    select.write_text(f"sources: {{a: {f['a']}, b: {bad}}}\nselect: {{default: b}}\n")
    good_select = tmp_path / "good_select.yaml"
    good_select.write_text(f"sources: {{a: {f['a']}, b: {f['b']}}}\nselect: {{default: a}}\n")
    return [
        (["check", bad], bad),
        (["check", f["a"], "--images-from", bad], bad),
        (["hard", f["a"], bad, "-o", o], bad),
        (["weighted", f["a"], "--source", f"b={bad}", "-o", o], bad),
        (["hard", f["a"], f["b"], "--setting", bad, "-o", o], bad),
        (["soft", "--setting", bad, "-o", o], bad),
        (["soft", "--setting", _soft_setting(f, tmp_path, boxes=str(bad)), "-o", o], bad),
        (["select", "--setting", select, "-o", o], bad),
        (["select", "--setting", good_select, "--best-from", bad, "-o", o], bad),
        (["merge", f["a"], bad, "-o", o], bad),
        (["merge", f["a"], f["b"], "--setting", bad, "-o", o], bad),
        (["postprocess", bad, "--min-size", 2, "-o", o], bad),
        (["postprocess", f["a"], "--setting", bad, "-o", o], bad),
        (["evaluate", "--gt", bad, f["a"]], bad),
        (["evaluate", "--gt", f["a"], bad], bad),
        (["tune", "--gt", f["a"], f["a"], bad, "-o", tmp_path / "t.yaml"], bad),
        (["report", "--gt", bad, f["a"], "-o", tmp_path / "rep"], bad),
        (["report", "--gt", f["a"], f["b"], "--setting", bad, "-o", tmp_path / "rep"], bad),
    ]


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_inputs_that_are_not_regular_files_are_named_so(inputs, tmp_path, kind):
    bad = inputs["folder"] if kind == "folder" else "/dev/zero"
    said = "a folder" if kind == "folder" else "a character device"
    for argv, path in _cases(inputs, bad, tmp_path):
        small = () if argv[0] == "soft" else SMALL
        r = run_cli(*argv, *small, "--quiet")
        assert r.exit_code == 2, (argv, r.output)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, r.stderr)
        # a folder where predictions go is read as PNG label maps: an empty one holds none
        named = f"{path}: not a regular file ({said})" in lines[0] or (
            kind == "folder" and f"{path}: holds no *.png label maps" in lines[0]
        )
        assert named, (argv, r.stderr)
        assert "Traceback" not in r.output and not inputs["out"].exists()
    r = run_cli("check", inputs["a"], "--classes", bad)  # a class list given as a path
    assert r.exit_code == 2 and "--classes" in r.stderr and "not a regular file" in r.stderr


def test_a_fifo_is_refused_without_waiting_for_a_writer(inputs, tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for argv in (["check", fifo], ["hard", inputs["a"], fifo, "-o", inputs["out"], *SMALL]):
        out = subprocess.run(
            [sys.executable, "cli.py", *map(str, argv)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 2 and out.stderr == f"error: {fifo}: not a regular file (a FIFO)\n", out.stderr
