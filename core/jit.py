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
        if not any((path.parent / "__pycache__").glob(f"{path.stem}.{name or '*'}-*.nbi")):
            return False
    return True
