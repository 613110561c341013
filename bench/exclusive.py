"""The vote over exclusive labels (``ensemble.exclusive.exclusive_vote``, one sweep over every
(source, class) mask of an image) against the per-class vote (``ensemble.mask_vote.vote``,
one sweep per class), timed in one process on the same runs, warm (compiled first).

    python bench/exclusive.py [--classes 4] [--sources 5] [--repeat 20] [--real DIR]

Data: the project's generator at 2048² (``--classes`` bones, the carpals first: their masks
overlap at their borders; ``--sources`` models), and with ``--real`` the real sample's CSVs
(the first ``--sources`` ``model*.csv``, the same classes, its first image). Each
figure is the best of ``--repeat`` calls on one image. The cold compile times of both
kernels are printed too (each in a child process on an empty numba cache).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CARPALS = ("Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform")


def picked(n_classes: int) -> list[str]:
    """The carpal bones first (their masks touch), then the other classes in their order."""
    from core.classes import DEFAULT_CLASSES

    return [*CARPALS, *(c for c in DEFAULT_CLASSES if c not in CARPALS)][:n_classes]


def synthetic(n_classes: int, n_sources: int) -> list[list[np.ndarray]]:
    from core.classes import DEFAULT_CLASSES
    from core.synthetic import Generator

    gen = Generator(n_images=1, n_models=n_sources, classes=DEFAULT_CLASSES, seed=7)
    img = gen.image(0)
    pick = [DEFAULT_CLASSES.index(c) for c in picked(n_classes)]
    return [[img.models[m][c] for c in pick] for m in gen.model_names]


def real(folder: Path, n_classes: int, n_sources: int) -> list[list[np.ndarray]]:
    from core.classes import DEFAULT_CLASSES
    from core.predictions import read_predictions

    out = []
    for path in sorted(folder.glob("model*.csv"))[:n_sources]:
        p = read_predictions(path, DEFAULT_CLASSES, 2048, 2048)
        out.append([p.runs(0, c) for c in picked(n_classes)])
    return out


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def compare(name: str, masks: list[list[np.ndarray]], repeat: int) -> None:
    from core.exclusivity import overlaps
    from ensemble.exclusive import exclusive_vote
    from ensemble.mask_vote import vote

    n_src, n_cls = len(masks), len(masks[0])
    per_class = [[masks[s][c] for s in range(n_src)] for c in range(n_cls)]
    exclusive_vote(masks), [vote(p) for p in per_class]  # compiled (or loaded) first
    t_excl = best(lambda: exclusive_vote(masks), repeat)
    t_vote = best(lambda: [vote(p) for p in per_class], repeat)
    runs = sum(len(r) for m in masks for r in m)
    out = exclusive_vote(masks)
    voted = [vote(p) for p in per_class]
    print(
        f"{name}: {n_src} sources × {n_cls} classes, {runs:,} runs in all; exclusive_vote {t_excl * 1e3:.2f} ms, "
        f"per-class vote ×{n_cls} {t_vote * 1e3:.2f} ms ({t_excl / t_vote:.2f}×); "
        f"overlapping pixels: per-class votes {overlaps(voted):,}, exclusive vote {overlaps(out):,}"
    )


COLD = """
import sys, time
sys.path.insert(0, {root!r})
import numba
import numpy as np
numba.njit(lambda a: a[:-1].copy().sum())(np.ones(3))  # numba's own start-up, not counted
from ensemble.exclusive import exclusive_vote
from ensemble.mask_vote import vote
a, b = np.array([[0, 4]]), np.array([[2, 6]])
t = time.process_time()
{call}
print(f"cold first call of {name}: {{time.process_time() - t:.2f}} s of CPU (compiled and cached)")
"""


def cold(name: str, call: str) -> None:
    """The first call of ``call`` on an empty numba cache, in a child process."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        code = COLD.format(root=str(ROOT), call=call, name=name)
        subprocess.run([sys.executable, "-c", code], env=env, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--sources", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--real", type=Path, default=None)
    a = ap.parse_args()
    compare("synthetic 2048²", synthetic(a.classes, a.sources), a.repeat)
    if a.real is not None:
        compare(f"real sample {a.real.name} 2048²", real(a.real, a.classes, a.sources), a.repeat)
    cold("exclusive_vote", "exclusive_vote([[a, b], [b, a]])")
    cold("vote", "vote([a, b])")


if __name__ == "__main__":
    main()
