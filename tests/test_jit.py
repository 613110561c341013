import os

from core.jit import KERNEL_PACKAGES, drop_stale_caches


def test_caches_older_than_any_kernel_source_are_dropped(tmp_path):
    pkg = tmp_path / KERNEL_PACKAGES[0]
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "kernels.py").write_text("import numba as nb\n@nb.njit(cache=True)\ndef f(x):\n    return x\n")
    (pkg / "plain.py").write_text("x = 1\n")
    old = pkg / "__pycache__" / "caller.f-2.py311.nbi"
    new = pkg / "__pycache__" / "caller.f-2.py311.1.nbc"
    old.write_bytes(b"")
    new.write_bytes(b"")
    os.utime(old, (1_000, 1_000))
    os.utime(pkg / "kernels.py", (2_000, 2_000))
    os.utime(pkg / "plain.py", (9_000, 9_000))  # not a kernel source: does not count
    os.utime(new, (3_000, 3_000))
    assert drop_stale_caches(tmp_path) == 1
    assert not old.exists() and new.exists()
    assert drop_stale_caches(tmp_path) == 0
