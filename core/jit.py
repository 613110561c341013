"""Where numba keeps its caches: whether they are warm, and dropping stale ones."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def kernels_cached(*modules: str) -> bool:
    """True when every named module (e.g. ``"core/codec.py"``) has numba cache files."""
    for mod in modules:
        path = _ROOT / mod
        cache = path.parent / "__pycache__"
        if not any(cache.glob(f"{path.stem}.*.nbi")):
            return False
    return True


KERNEL_PACKAGES = ("core", "ensemble", "evaluation", "fusion", "postprocess")


def drop_stale_caches(root: Path = _ROOT) -> int:
    """Delete numba cache files older than the newest kernel source; returns how many.

    numba checks a cached kernel only against its own file, but kernels inline kernels from
    other modules (``core.sweep`` into the vote, ``postprocess.rows`` into the cleaner), so an
    edit there would leave callers running old code. Only sources that define kernels count.
    """
    sources = [p for pkg in KERNEL_PACKAGES for p in (root / pkg).glob("*.py") if b"njit" in p.read_bytes()]
    if not sources:
        return 0
    newest = max(p.stat().st_mtime for p in sources)
    dropped = 0
    for pkg in KERNEL_PACKAGES:
        for cache in (root / pkg / "__pycache__").glob("*.nb[ic]"):
            try:
                if cache.stat().st_mtime < newest:
                    cache.unlink()
                    dropped += 1
            except OSError:  # read-only install or a concurrent run: numba copes
                pass
    return dropped
