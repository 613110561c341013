"""Documentation that runs: every ```python block of README.md and docs/*.md, the public
modules' doctests, and every relative link of those pages."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = [
    "cluster",
    "commands",
    "core",
    "ensemble",
    "evaluation",
    "fusion",
    "postprocess",
    "quality",
    "report",
    "settings",
]


def _blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


BLOCKS = [(p.relative_to(ROOT).as_posix(), k, src) for p in PAGES for k, src in enumerate(_blocks(p))]


def _modules() -> list[str]:
    """Every module of the packages, found on disk (so that moving a module moves its
    doctests with it)."""
    found = []
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = _modules()


def test_pages_have_python_blocks():
    pages = {page for page, _, _ in BLOCKS}
    assert {"README.md", "docs/api.md", "docs/cluster.md"} <= pages, pages


@pytest.mark.parametrize("page,k,src", BLOCKS, ids=[f"{page}#{k + 1}" for page, k, _ in BLOCKS])
def test_python_block_runs(page, k, src, tmp_path, monkeypatch, capsys):
    """Each block runs on its own in an empty working directory; a file it leaves there must
    be one it names (the examples write only where they say)."""
    monkeypatch.chdir(tmp_path)
    before = {p.name for p in ROOT.iterdir()}
    exec(compile(src, f"{page} python block {k + 1}", "exec"), {"__name__": "__docs__"})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert [name for name in left if name not in src] == [], f"{page} block {k + 1} wrote {left}"
    assert {p.name for p in ROOT.iterdir()} == before, "a docs example wrote into the repository"


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_functions_have_examples():
    """The doctests above found examples: each package's public functions carry them."""
    finder = doctest.DocTestFinder()
    examples = {}
    for name in MODULES:
        for test in finder.find(importlib.import_module(name)):
            if test.examples:
                examples[test.name.rsplit(".", 1)[-1]] = len(test.examples)
    public = ["check", "hard_vote", "weighted_vote", "soft_vote", "vote", "evaluate", "tune", "select", "merge"]
    public += ["clean_predictions", "clean", "components", "fill_holes", "opening", "dice", "auto_chunk"]
    assert [f for f in public if f not in examples] == []


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # not inside code blocks
    text = re.sub(r"`[^`\n]*`", "", text)
    return [link for link in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_relative_links_exist(page):
    """Every relative link (``[text](path)`` or ``[text](path#anchor)``) names a file or
    folder that exists, relative to the page; an anchor names a heading of its target."""
    assert page.is_file()
    missing = []
    for link in _links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            missing.append(link)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            missing.append(link)
    assert missing == [], f"{page.name}: broken links {missing}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_documentation_pages_exist():
    for name in ("commands", "formats", "api", "gpu", "cluster", "performance"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
    for path in ("bench/README.md", "CONTRIBUTING.md"):
        assert (ROOT / path).is_file(), path
