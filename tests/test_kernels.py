"""numba's ``cache=True`` checks a cached kernel only against the source stamp of the file that
defines it, but a kernel compiles the kernels it calls into itself. ``core.jit`` gives every
kernel file the stamp of all its package's kernel files, so the cache is complete as long as
no kernel calls a kernel of another package: these tests hold that rule, and show that an edit
of one kernel file recompiles the kernels of another file that call it."""

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from helpers import default_signals

ROOT = Path(__file__).resolve().parent.parent
JIT_NAMES = {"jit", "njit", "vectorize", "guvectorize", "cfunc", "generated_jit", "stencil"}
SKIP = {"tests", "bench", "build", "dist"}


def _sources() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if not (
            {part for part in p.relative_to(ROOT).parts[:-1]} & SKIP
            or any(part.startswith(".") for part in p.relative_to(ROOT).parts)
        )
    )


def _mentions_jit(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id in JIT_NAMES) or (isinstance(n, ast.Attribute) and n.attr in JIT_NAMES)
        for n in ast.walk(node)
    )


def _kernel_defs(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and any(map(_mentions_jit, n.decorator_list))]


def _is_kernel_file(p: Path) -> bool:
    from core.jit import KERNEL_FILE

    return bool(KERNEL_FILE.fullmatch(p.name))


KERNEL_FILES = [p for p in _sources() if _is_kernel_file(p)]


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_kernels_are_defined_only_in_private_kernel_modules():
    outside = [
        f"{p.relative_to(ROOT)}:{n.lineno}"
        for p in _sources()
        if not _is_kernel_file(p)
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if (isinstance(n, ast.FunctionDef) and any(map(_mentions_jit, n.decorator_list)))
        or (isinstance(n, ast.Call) and _mentions_jit(n.func) and "torch" not in ast.unparse(n.func))
    ]
    assert not outside, f"numba kernels outside a kernel file (_*kernels.py): {outside}"
    assert {_module(p).split(".")[0] for p in KERNEL_FILES} == {"core", "ensemble", "postprocess", "quality"}


def _resolve(node: ast.expr, scope: dict):
    """The object a ``name`` or ``name.attr…`` expression refers to in the module's globals."""
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, scope)
        return getattr(base, node.attr, None) if base is not None else None
    return None


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: _module(p))
def test_kernels_call_only_kernels_of_their_own_package(path):
    mod = importlib.import_module(_module(path))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    kernels = {n.name for n in _kernel_defs(tree)}
    dispatchers = {k for k, v in vars(mod).items() if isinstance(v, numba.core.dispatcher.Dispatcher)}
    foreign = []
    for fn in _kernel_defs(tree):
        for node in ast.walk(fn):
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                target = _resolve(node, vars(mod))
                if isinstance(target, numba.core.dispatcher.Dispatcher) and not (
                    target.py_func.__module__.split(".")[0] == mod.__name__.split(".")[0]
                    and _is_kernel_file(Path(target.py_func.__code__.co_filename))
                ):
                    foreign.append(f"{fn.name} -> {target.py_func.__module__}.{target.__name__}")
    assert not foreign, f"kernels calling kernels of another package (numba's cache would go stale): {foreign}"
    assert kernels and kernels <= dispatchers


@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: _module(p))
def test_kernels_are_cached_by_package_and_keep_their_python_twin(path):
    from core.jit import package_stamp

    mod = importlib.import_module(_module(path))
    for name, d in vars(mod).items():
        if isinstance(d, numba.core.dispatcher.Dispatcher) and d.py_func.__module__ == mod.__name__:
            assert type(d._cache).__name__ == "FunctionCache", f"{name} is not cache=True"
            assert d._cache._impl.locator.get_source_stamp() == package_stamp(path), f"{name}: own file's stamp"
            assert callable(d.py_func)


def test_the_rule_catches_a_cross_package_call(tmp_path, monkeypatch):
    """The check above sees a kernel that calls a kernel imported from another package."""
    pkg = tmp_path / "pkg_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "other.py").write_text("import numba\n@numba.njit\ndef g(x):\n    return x\n")
    (pkg / "_kernels.py").write_text(
        "import numba\nfrom pkg_probe.other import g\n@numba.njit\ndef f(x):\n    return g(x) + 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    with pytest.raises(AssertionError, match=r"f -> pkg_probe\.other\.g"):
        test_kernels_call_only_kernels_of_their_own_package(pkg / "_kernels.py")


_PROBE = """
import sys
sys.path[:0] = [{root!r}, {tmp!r}]
from probe_pkg._caller_kernels import caller
print(caller(1), sum(caller.stats.cache_hits.values()))
"""


def test_an_edit_of_one_kernel_file_recompiles_the_callers_in_another(tmp_path):
    """The callee's file changes, the caller's does not: the caller's cached code (which holds
    the old callee) is not used again."""
    pkg = tmp_path / "probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    head = "import numba\nimport core.jit  # noqa\n"
    (pkg / "_callee_kernels.py").write_text(head + "@numba.njit(cache=True)\ndef callee(x):\n    return x + 1\n")
    (pkg / "_caller_kernels.py").write_text(
        head + "from probe_pkg._callee_kernels import callee\n"
        "@numba.njit(cache=True)\ndef caller(x):\n    return callee(x) * 10\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run() -> list[str]:
        code = _PROBE.format(root=str(ROOT), tmp=str(tmp_path))
        return subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=default_signals,
        ).stdout.split()

    assert run() == ["20", "0"]
    assert run() == ["20", "1"]  # loaded from the cache
    (pkg / "_callee_kernels.py").write_text(head + "@numba.njit(cache=True)\ndef callee(x):\n    return x + 2\n")
    assert run() == ["30", "0"]


def test_importing_core_deletes_no_cache():
    import core
    import core.jit

    assert not hasattr(core.jit, "drop_stale_caches")
    assert "drop_stale_caches" not in Path(core.__file__).read_text(encoding="utf-8")
