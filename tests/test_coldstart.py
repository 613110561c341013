"""Cold start: a command compiles only the kernels it uses, each once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import default_signals

ROOT = Path(__file__).resolve().parent.parent

LAZY = r"""
import json, sys, numba
sys.path.insert(0, {root!r})
from core.jit import kernels_cached
from core.warmup import precompile, steps_cached
from postprocess.cleaner import Rules, compiled
from postprocess.warmup import clean_step
import postprocess._clean_kernels, postprocess._component_kernels, postprocess._hole_kernels
import postprocess._morphology_kernels, postprocess._segment_kernels
k = {{}}
for m in [m for n, m in list(sys.modules.items()) if n.startswith("postprocess._")]:
    k.update(vars(m))

rules = [Rules(keep_largest=1, fill_holes=True), Rules(keep_largest=2, connectivity=4, fill_holes=True, max_hole=9)]
assert not kernels_cached("postprocess/_clean_kernels.py:clean_kernel") and not compiled(rules)
assert precompile(lambda msg: None, clean_step(rules)) is not None
assert compiled(rules) and steps_cached(clean_step(rules))
assert not compiled([Rules(open=1)]) and not compiled([Rules(keep_largest=1)])
assert kernels_cached("postprocess/_clean_kernels.py:clean_kernel", "postprocess/_hole_kernels.py:fill_holes_kernel")
assert not kernels_cached("postprocess/_morphology_kernels.py:open_kernel")
assert precompile(lambda msg: None, clean_step(rules)) is None  # warm: nothing done
used = {{n: len(d.signatures) for n, d in k.items() if isinstance(d, numba.core.dispatcher.Dispatcher)
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
        preexec_fn=default_signals,
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
        "distance_open_kernel",
        "distance_close_kernel",
        "disk_half_widths",
        "select_components_kernel",
    }  # the per-step path (clean(), tune) is not the Cleaner's
    assert set(counts.values()) == {1}, counts
