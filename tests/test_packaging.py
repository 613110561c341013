"""Packaging: the [project] table matches requirements.txt, every package's ``__all__``
resolves and its docstring names what it exports."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import default_signals

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["cluster", "core", "ensemble", "evaluation", "fusion", "postprocess", "report", "settings"]


def test_project_table_matches_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert project["dependencies"] == reqs
    assert project["scripts"] == {"segment-ensemble": "cli:cli"}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_resolves_and_docstring_names_it(name):
    pkg = importlib.import_module(name)
    assert pkg.__all__ == sorted(pkg.__all__)
    for attr in pkg.__all__:
        assert getattr(pkg, attr) is not None
        assert f"``{attr}``" in pkg.__doc__, f"{name}: docstring does not mention {attr}"


def test_help_imports_no_heavy_module():
    code = "import sys, cli; print(sorted(m for m in ('numpy', 'pandas', 'numba', 'torch') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, preexec_fn=default_signals
    )
    assert out.stdout.strip() == "[]"


def test_package_imports_are_one_way():
    """Module-level imports between the packages form no cycle (core at the bottom)."""
    import ast

    packages = [*PACKAGES]
    uses: dict[str, set[str]] = {p: set() for p in packages}
    for p in packages:
        for f in (ROOT / p).rglob("*.py"):
            for node in ast.parse(f.read_text()).body:
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                else:
                    continue
                uses[p] |= {n.split(".")[0] for n in names if n.split(".")[0] in uses} - {p}
    assert not uses["core"], uses["core"]

    def reaches(a: str, b: str, seen=()) -> bool:
        return b in uses[a] or any(reaches(c, b, (*seen, a)) for c in uses[a] if c not in seen)

    cycles = [p for p in packages if reaches(p, p)]
    assert not cycles, {p: sorted(uses[p]) for p in cycles}
