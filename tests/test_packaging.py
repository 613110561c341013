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
PACKAGES = ["cluster", "core", "ensemble", "evaluation", "fusion", "postprocess", "quality", "report", "settings"]


def _requirements(name: str) -> list[str]:
    """The requirement lines of a requirements file (comments, blanks and ``-r`` left out)."""
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-r")]


def test_project_table_matches_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == _requirements("requirements.txt")
    assert project["scripts"] == {"segment-ensemble": "cli:cli"}


def test_extras_match_requirements_dev():
    """requirements-dev.txt = requirements.txt + the extras, in the extras' order; ``dev``
    pulls in the other extras, so ``pip install -e .[dev]`` installs what the tests use."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(extras) == {"gpu", "cluster", "browser-test", "dev"}
    assert extras["dev"][0] == "segment-ensemble[gpu,cluster,browser-test]"
    listed = extras["gpu"] + extras["cluster"] + extras["browser-test"] + extras["dev"][1:]
    assert _requirements("requirements-dev.txt") == listed
    assert (ROOT / "requirements-dev.txt").read_text().count("-r requirements.txt") == 1


def test_no_exact_pins():
    """Ranges, not pins: an exact pin of torch or dask would force a download on every install."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        assert not [r for r in _requirements(name) if "==" in r], name


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or Path("/proc/driver/nvidia/gpus").is_dir(),
    reason="with an NVIDIA GPU (or off Linux) the soft vote's auto engine asks torch for the device",
)
def test_demo_needs_only_requirements_txt(tmp_path):
    """``pip install -r requirements.txt && python cli.py demo`` is the README's first
    command: the demo runs with torch, Dask, scipy and selenium unavailable."""
    code = (
        "import sys, runpy\n"
        "for m in ('torch', 'dask', 'distributed', 'scipy', 'selenium'):\n"
        "    sys.modules[m] = None\n"
        f"sys.argv = ['cli.py', 'demo', {str(tmp_path / 'demo')!r}, '--images', '1', '--models', '2', '--quiet']\n"
        "sys.path.insert(0, '.')\n"
        "runpy.run_path('cli.py', run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "demo" / "soft_vote.csv").is_file() and (tmp_path / "demo" / "report" / "index.html").is_file()


@pytest.mark.parametrize("name", PACKAGES)
def test_all_resolves_and_docstring_names_it(name):
    pkg = importlib.import_module(name)
    assert pkg.__all__ == sorted(pkg.__all__)
    for attr in pkg.__all__:
        assert getattr(pkg, attr) is not None
        assert f"``{attr}``" in pkg.__doc__, f"{name}: docstring does not mention {attr}"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_not_submodules(name):
    """``from pkg import x`` gives the object ``__all__`` promises, never a submodule of the
    same name (each name imported in a fresh process, as a user would)."""
    pkg = importlib.import_module(name)
    code = "import sys, types\n" + "".join(
        f"from {name} import {attr}\nif isinstance({attr}, types.ModuleType): print({attr!r})\n" for attr in pkg.__all__
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


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
