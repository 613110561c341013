"""Whether numba's caches of the kernels are warm.

Every kernel lives in its package's ``_kernels.py`` and calls only kernels of that same
file, so numba's own check of a cached kernel against its file is complete: nothing here
ever deletes a cache (``tests/test_kernels.py`` holds the rule).
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent

KERNEL_PACKAGES = ("core", "ensemble", "evaluation", "fusion", "postprocess")
"""The packages whose modules may hold or call numba kernels."""


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
