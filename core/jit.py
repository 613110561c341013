"""numba's caches of the kernels: one source stamp per package, and whether they are warm.

Kernels live in private modules named ``_*kernels.py`` (``core/_rle_kernels.py``, …) and call
only kernels of their own package. numba compiles a called kernel into its caller, but checks
a cached kernel only against the source stamp of the file that defines it; so a kernel file
imports this module first, which makes the stamp of every kernel file the stamp of all the
kernel files of its package together. An edit to any of them invalidates the caches of the
whole package, and nothing ever has to delete a cache (``tests/test_kernels.py`` holds the
rule).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent

KERNEL_PACKAGES = ("core", "ensemble", "evaluation", "fusion", "postprocess", "quality")
"""The packages whose modules may hold or call numba kernels."""

KERNEL_FILE = re.compile(r"_(\w+_)?kernels\.py")
"""The names of the modules that hold kernels."""


def kernel_files(folder: str | os.PathLike) -> list[Path]:
    """The kernel files of a package folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if KERNEL_FILE.fullmatch(p.name))


@functools.cache
def _file_digest(path: str, mtime: float, size: int) -> bytes:
    # mtime and size are the cache key: an edit made while the process runs is hashed again.
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).digest()


def package_stamp(py_file: str | os.PathLike) -> tuple:
    """The source stamp numba keeps for a kernel of ``py_file``: the names and contents of all
    the kernel files of its package."""
    stamp = []
    for p in kernel_files(Path(py_file).parent):
        st = p.stat()
        stamp.append((p.name, _file_digest(str(p), st.st_mtime, st.st_size)))
    return tuple(stamp)


class _PackageStamp:
    """A numba cache locator mixin: kernel files get their package's stamp; any other file is
    left to numba's own locators."""

    def get_source_stamp(self):
        return package_stamp(self._py_file)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not KERNEL_FILE.fullmatch(os.path.basename(py_file)):
            return None
        return super().from_function(py_func, py_file)


def _register_locators() -> None:
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    if any(issubclass(c, _PackageStamp) for c in impl._locator_classes):
        return
    ours = []
    for name in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator"):
        base = getattr(caching, name, None) or getattr(caching, "_" + name)
        ours.append(type(f"Package{name}", (_PackageStamp, base), {}))
    impl._locator_classes[:0] = ours


_register_locators()


def kernels_cached(*kernels: str) -> bool:
    """True when every named kernel has a numba cache index: ``"core/_kernels.py:vote_kernel"``
    names one kernel, a bare file (``"core/_kernels.py"``) any kernel of it."""
    for spec in kernels:
        module, _, name = spec.partition(":")
        path = _ROOT / module
        if not any(_cache_dir(path).glob(f"{path.stem}.{name or '*'}-*.nbi")):
            return False
    return True


def _cache_dir(source: Path) -> Path:
    """Where numba caches the kernels of ``source``: ``__pycache__`` beside it, or under
    ``NUMBA_CACHE_DIR`` when that is set (numba's own sub-folder naming)."""
    import os

    root = os.environ.get("NUMBA_CACHE_DIR")
    if root:
        from numba.core.caching import _CacheLocator

        return Path(root) / _CacheLocator.get_suitable_cache_subpath(str(source))
    return source.parent / "__pycache__"


def overloads_cached(kernel, *examples: tuple) -> bool:
    """True when numba's cache of ``kernel`` (a ``cache=True`` dispatcher) holds a
    compilation for the argument types of each of ``examples`` (tuples of example arguments,
    typed as a call types them), for kernels with several specialisations where
    ``kernels_cached`` only tells that one is cached. Reads the cache's index through
    numba's private ``_cache`` (numba 0.5x–0.6x); anything unexpected answers False (cold:
    the caller compiles, as it would have)."""
    import numba

    try:
        index = kernel._cache._cache_file._load_index()
        cached = {key[0] for key in index}
        return all(tuple(numba.typeof(a) for a in args) in cached for args in examples)
    except Exception:  # noqa: BLE001 — a numba without these internals: say cold
        return False
