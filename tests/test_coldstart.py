"""Cold start (issue 15): a command compiles only the kernels it uses, each once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAZY = r"""
import json, sys, numba
sys.path.insert(0, {root!r})
from core.jit import kernels_cached
from core.warmup import precompile, steps_cached
from postprocess import _kernels as k
from postprocess.clean import Rules, compiled

rules = [Rules(keep_largest=1, fill_holes=True), Rules(keep_largest=2, connectivity=4, fill_holes=True, max_hole=9)]
assert not kernels_cached("postprocess/_kernels.py:clean_kernel") and not compiled(rules)
assert precompile(lambda msg: None, "clean", rules=rules) is not None
assert compiled(rules) and steps_cached("clean", rules=rules)
assert not compiled([Rules(open=1)]) and not compiled([Rules(keep_largest=1)])
assert kernels_cached("postprocess/_kernels.py:clean_kernel", "postprocess/_kernels.py:fill_holes_kernel")
assert not kernels_cached("postprocess/_kernels.py:open_kernel")
assert precompile(lambda msg: None, "clean", rules=rules) is None  # warm: nothing done
used = {{n: len(d.signatures) for n, d in vars(k).items() if isinstance(d, numba.core.dispatcher.Dispatcher)
        and d.signatures}}
print(json.dumps(used))
"""


def test_cleaning_compiles_only_the_steps_its_rules_take_once_each(tmp_path):
    """On an empty cache, warming up for keep-largest + fill-holes rules (two of them: one
    combination of steps) compiles the cleaning kernel once and no morphology kernel; every
    kernel it compiles has one signature (``NUMBA_CACHE_DIR`` is honoured by the checks)."""
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", LAZY.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    names = set(counts)
    assert {"clean_kernel", "label_kernel", "select_kernel", "fill_holes_kernel"} <= names
    assert not names & {
        "open_kernel",
        "close_kernel",
        "erode_kernel",
        "dilate_kernel",
        "disk_half_widths",
        "select_components_kernel",
    }  # the per-step path (clean(), tune) is not the Cleaner's
    assert set(counts.values()) == {1}, counts


def test_warm_up_compiles_for_the_live_cleaners_when_not_told_the_rules(monkeypatch):
    """``ensemble.voting`` builds its cleaner and warms up without naming its rules: the
    warm-up then takes the rules of the cleaners alive; with none, every step."""
    import importlib
    import weakref

    from core.classes import DEFAULT_CLASSES
    from core.warmup import _run_rules
    from postprocess.clean import Cleaner, Rules

    module = importlib.import_module("postprocess.clean")  # the attribute postprocess.clean is the function
    monkeypatch.setattr(module, "LIVE", weakref.WeakSet())  # none from other tests
    every = [(r.open, r.close, r.min_size, r.keep_largest, r.fill_holes) for r in _run_rules(None)]
    assert every == [(1, 1, 2, 1, True)]
    cleaner = Cleaner([Rules(min_size=5)] * len(DEFAULT_CLASSES), DEFAULT_CLASSES)
    assert set(_run_rules(None)) == {Rules(min_size=5)}
    assert _run_rules([Rules(open=2)]) == [Rules(open=2)]
    del cleaner
    import gc

    gc.collect()
    assert [(r.open, r.close, r.min_size, r.keep_largest, r.fill_holes) for r in _run_rules(None)] == every
