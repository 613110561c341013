"""Tells the user when numba kernels are about to be compiled (first run only)."""

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


def compile_notice(echo, *modules: str) -> None:
    """Say once, before the first kernel call, that numba will compile (~10-30 s)."""
    if not kernels_cached(*modules):
        echo("compiling numba kernels (first run only; cached for later runs)…")
