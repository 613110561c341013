"""Every command's output on a generated set, byte for byte, against a recorded digest.

The digests in ``golden_outputs.json`` were recorded from this build; a change to any
command's output (CSV, YAML, stdout, report files) fails here. After a deliberate change of
output, record them again with ``GOLDEN_WRITE=1 python -m pytest tests/test_golden.py``
and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers import run_cli

GOLDEN = Path(__file__).with_name("golden_outputs.json")

# (name, argv with {d} for the demo folder and {o} for the output folder, files written under {o})
RUNS = [
    ("check", ["check", "{d}/model1.csv"], []),
    ("hard", ["hard", "{d}/model1.csv", "{d}/model2.csv", "{d}/model3.csv", "-o", "{o}/hard.csv"], ["hard.csv"]),
    (
        "hard-min-votes",
        ["hard", "{d}/model1.csv", "{d}/model2.csv", "{d}/model3.csv", "--min-votes", "1", "-o", "{o}/union.csv"],
        ["union.csv"],
    ),
    (
        "weighted",
        [
            "weighted",
            "{d}/model1.csv",
            "{d}/model2.csv",
            "{d}/model3.csv",
            "--weights",
            "3,1,1",
            "--threshold",
            "0.4",
            "-o",
            "{o}/weighted.csv",
        ],
        ["weighted.csv"],
    ),
    ("soft", ["soft", "--setting", "{d}/soft_setting.yaml", "-o", "{o}/soft.csv"], ["soft.csv"]),
    (
        "evaluate",
        [
            "evaluate",
            "--gt",
            "{d}/gt.csv",
            "{d}/model1.csv",
            "{d}/model2.csv",
            "{d}/model3.csv",
            "-o",
            "{o}/scores.csv",
        ],
        ["scores.csv"],
    ),
    ("evaluate-csv", ["evaluate", "--gt", "{d}/gt.csv", "{d}/model1.csv", "--format", "csv"], []),
    (
        "select",
        [
            "select",
            "--setting",
            "{o}/select.yaml",
            "--best-from",
            "{o}/scores.csv",
            "-o",
            "{o}/selected.csv",
            "--write-setting",
            "{o}/chosen.yaml",
        ],
        ["selected.csv", "chosen.yaml"],
    ),
    ("merge", ["merge", "{o}/part1.csv", "{o}/part2.csv", "-o", "{o}/merged.csv"], ["merged.csv"]),
    (
        "postprocess",
        [
            "postprocess",
            "{d}/model2.csv",
            "--keep-largest",
            "1",
            "--fill-holes",
            "--min-size",
            "40",
            "-o",
            "{o}/clean.csv",
        ],
        ["clean.csv"],
    ),
    (
        "postprocess-morphology",
        [
            "postprocess",
            "{d}/model3.csv",
            "--open",
            "3",
            "--close",
            "2",
            "--connectivity",
            "4",
            "--max-hole",
            "50",
            "--fill-holes",
            "-o",
            "{o}/morph.csv",
        ],
        ["morph.csv"],
    ),
    (
        "tune",
        [
            "tune",
            "--gt",
            "{d}/gt.csv",
            "{d}/model1.csv",
            "{d}/model2.csv",
            "{d}/model3.csv",
            "--levels",
            "0,1,2",
            "-o",
            "{o}/tuned.yaml",
        ],
        ["tuned.yaml"],
    ),
    (
        "report",
        [
            "report",
            "--gt",
            "{d}/gt.csv",
            "{d}/model1.csv",
            "{d}/model2.csv",
            "--images",
            "{d}/images",
            "--pages",
            "2",
            "-o",
            "{o}/report",
        ],
        ["report"],
    ),
]


def _digest(path: Path, folders: tuple[Path, ...]) -> str:
    data = path.read_bytes()
    if path.suffix in (".csv", ".yaml", ".html", ".js", ".css", ".txt"):
        for k, f in enumerate(folders):
            data = data.replace(str(f).encode(), f"<folder{k}>".encode())
    return hashlib.sha256(data).hexdigest()


def _tree(path: Path, folders: tuple[Path, ...]) -> dict[str, str]:
    if path.is_file():
        return {path.name: _digest(path, folders)}
    # The report's manifest holds digests of files that name the (temporary) folders: left out.
    return {
        str(p.relative_to(path)): _digest(p, folders)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".segment-ensemble-report"
    }


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, dict[str, str]]:
    from report.demo import run_demo

    d = tmp_path_factory.mktemp("demo")
    o = tmp_path_factory.mktemp("out")
    run_demo(d, n_images=3, say=lambda msg: None)
    (o / "select.yaml").write_text(
        f"sources: {{model1: {d}/model1.csv, model2: {d}/model2.csv, model3: {d}/model3.csv}}\n"
        "select: {default: model1}\n"
    )
    lines = (d / "model1.csv").read_text().splitlines(keepends=True)
    (o / "part1.csv").write_text("".join(lines[:40]))
    (o / "part2.csv").write_text(lines[0] + "".join(lines[30:]))
    found = {}
    for name, argv, files in RUNS:
        args = [a.format(d=d, o=o) for a in argv] + ["--quiet"]
        result = run_cli(*args)
        assert result.exit_code == 0, (name, result.output)
        got = {
            "stdout": hashlib.sha256(result.stdout.replace(str(d), "<d>").replace(str(o), "<o>").encode()).hexdigest()
        }
        for f in files:
            got.update({f"{f}/{k}" if k != f else f: v for k, v in _tree(o / f, (d, o)).items()})
        found[name] = got
    return found


def test_outputs_match_the_recorded_digests(outputs):
    if os.environ.get("GOLDEN_WRITE"):
        GOLDEN.write_text(json.dumps(outputs, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(GOLDEN.read_text())
    assert sorted(outputs) == sorted(recorded)
    for name in recorded:
        assert outputs[name] == recorded[name], name
