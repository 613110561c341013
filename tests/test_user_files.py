"""Files the toolbox did not write are never deleted or overwritten: the demo folder's
manifest, output paths from settings that stay where the settings say, and the temporary
files of killed runs (removed, and only those)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CLASSES, default_signals, run_cli, write_csv

from core.atomic import remove_stale_temporaries


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


def test_demo_onto_an_earlier_demo_replaces_all_of_its_files(tmp_path):
    d = tmp_path / "d"
    assert run_cli("demo", d, "--images", 2, "--quiet").exit_code == 0
    assert run_cli("demo", d, "--images", 1, "--quiet").exit_code == 0
    assert len(_rows(d / "soft_vote.csv")) == len(_rows(d / "gt.csv")) == 29
    assert [len(list((d / "maps" / m).iterdir())) for m in ("model1", "model2", "model3")] == [1, 1, 1]
    assert len(list((d / "images").iterdir())) == 1


@pytest.mark.parametrize("where", ["top", "maps", "report"])
def test_demo_refuses_a_folder_holding_a_file_of_the_users(tmp_path, where):
    d = tmp_path / "d"
    assert run_cli("demo", d, "--images", 1, "--quiet").exit_code == 0
    mine = {"top": d / "my_model.csv", "maps": d / "maps" / "model1" / "extra.npz", "report": d / "report" / "x"}
    mine[where].write_text("the user's")
    before = _snapshot(d)
    r = run_cli("demo", d, "--images", 2, "--quiet")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert f"holds {mine[where].relative_to(d).as_posix()}, which `demo` did not write" in r.stderr
    assert _snapshot(d) == before


def test_demo_refuses_a_folder_it_never_wrote(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "gt.csv").write_text("keep")
    r = run_cli("demo", d, "--images", 1, "--quiet")
    assert r.exit_code == 2 and "holds gt.csv, which `demo` did not write" in r.stderr
    assert (d / "gt.csv").read_text() == "keep" and [p.name for p in d.iterdir()] == ["gt.csv"]


@pytest.fixture
def tiny(tmp_path):
    rows = [(f"img{i}.png", c, "1 3") for i in range(2) for c in CLASSES]
    return write_csv(tmp_path / "a.csv", rows), write_csv(tmp_path / "b.csv", rows)


@pytest.mark.parametrize(
    "text, key",
    [
        ("save_dir: out\noutput_name: ../x.csv\n", "output_name"),
        ("save_dir: out\noutput_name: sub/x.csv\n", "output_name"),
        ("save_dir: ../out\noutput_name: x.csv\n", "save_dir"),
        ("save_dir: out/../..\noutput_name: x.csv\n", "save_dir"),
    ],
)
def test_soft_settings_output_stays_in_save_dir(tmp_path, monkeypatch, text, key):
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    monkeypatch.chdir(work)
    (tmp_path / "x.csv").write_text("the user's")
    (work / "s.yaml").write_text(text + "prob_maps: [{path: maps}]\n")
    r = run_cli("soft", "--setting", "s.yaml", "--quiet")
    assert r.exit_code == 2 and f"s.yaml: {key}:" in r.stderr and r.stderr.count("\n") == 1
    assert (tmp_path / "x.csv").read_text() == "the user's"


@pytest.mark.parametrize("command", ["hard", "select", "merge"])
def test_settings_output_may_not_leave_its_folder(tmp_path, monkeypatch, tiny, command):
    a, b = tiny
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    body = {
        "hard": f"sources: [{a}, {b}]\n",
        "select": f"sources: {{a: {a}}}\nselect: {{default: a}}\nclasses: [{', '.join(CLASSES)}]\n",
        "merge": f"parts: [{a}]\nclasses: [{', '.join(CLASSES)}]\n",
    }[command]
    (tmp_path / "s.yaml").write_text(body + "output: sub/../../x.csv\n")
    r = run_cli(command, "--setting", "s.yaml", "--quiet")
    assert r.exit_code == 2 and "s.yaml: output: 'sub/../../x.csv' leaves its folder" in r.stderr
    assert not (tmp_path.parent / "x.csv").exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"], preexec_fn=default_signals)
    p.wait()
    return p.pid


def test_a_run_removes_what_killed_runs_of_its_output_left_and_nothing_else(tmp_path, tiny):
    a, b = tiny
    dead, live = _dead_pid(), os.getppid()
    stale = tmp_path / f".vote.csv.{dead}.abcd_123.tmp"
    stale_dir = tmp_path / f".vote.csv.{dead}.zzzzzzzz.tmp"
    kept = {
        tmp_path / f".vote.csv.{live}.abcd_123.tmp": "a live run's",
        tmp_path / ".vote.csv.tmp": "the user's",
        tmp_path / f".other.csv.{dead}.abcd_123.tmp": "another output's",
        tmp_path / f".vote.csv.{dead}.abcd_123.tmp.bak": "the user's",
    }
    stale.write_text("left by a killed run")
    stale_dir.mkdir()
    (stale_dir / "index.html").write_text("left by a killed report")
    for p, text in kept.items():
        p.write_text(text)
    assert (
        run_cli(
            "hard", a, b, "--classes", ",".join(CLASSES), "--height", 4, "--width", 4, "-o", tmp_path / "vote.csv", "-q"
        ).exit_code
        == 0
    )
    assert not stale.exists() and not stale_dir.exists()
    assert all(p.read_text() == text for p, text in kept.items())


def test_stale_temporaries_of_a_report_folder(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".rep.{dead}.q1w2e3r4.tmp").mkdir()
    (tmp_path / f".rep.{dead}.q1w2e3r4.tmp" / "index.html").write_text("x")
    (tmp_path / "rep").mkdir()
    assert [p.name for p in remove_stale_temporaries(tmp_path, "rep")] == [f".rep.{dead}.q1w2e3r4.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
