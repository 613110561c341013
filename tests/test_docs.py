"""Documentation that runs: the README's Python blocks and the public modules' doctests."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
QUALITY_BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "quality.md").read_text(), re.S)

# Modules whose docstrings hold examples: the public functions and Predictions.
DOCTEST_MODULES = [
    "core.predictions",
    "core.validate",
    "core.runs",
    "ensemble.rle_votes",
    "ensemble.soft_run",
    "evaluation.scores",
    "evaluation.tune_job",
    "fusion.select_classes",
    "fusion.merge_parts",
    "postprocess.clean_files",
    "postprocess.morphology",
    "postprocess.cleaner",
    "postprocess.connected",
    "postprocess.holes",
    "ensemble.mask_vote",
    "cluster.scheduler",
    "cluster.plan",
    "core.window",
    "core.subset",
    "quality.staple",
    "quality.qa",
]


def test_readme_has_python_blocks():
    assert len(README_BLOCKS) >= 2


@pytest.mark.parametrize("k", range(len(README_BLOCKS)))
def test_readme_python_block_runs(k, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(README_BLOCKS[k], f"README.md python block {k + 1}", "exec"), {"__name__": "__readme__"})
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the examples write only where they say


@pytest.mark.parametrize("k", range(len(QUALITY_BLOCKS)))
def test_quality_doc_python_block_runs(k, tmp_path, monkeypatch, capsys):
    """docs/quality.md's Python blocks run as they are in an empty folder and write nothing."""
    monkeypatch.chdir(tmp_path)
    exec(compile(QUALITY_BLOCKS[k], f"docs/quality.md python block {k + 1}", "exec"), {"__name__": "__doc__"})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
