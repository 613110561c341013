"""STAPLE benchmark: speed against the hard vote on the same inputs in one process, and
accuracy of the majority vote, STAPLE (pooled, all pixels / disagreement only) and SIMPLE
against the ground truth; do the pooled sensitivities rank the sources as their Dice does?

    python bench/staple.py [--images 30] [--models 5] [--size 2048] [--repeat 5] [--seed 0]

Data: ``--models`` prediction CSVs × ``--images`` images × 29 classes at ``--size``² from the
project's generator (``core.synthetic``), cached under bench/out/. Every method writes its CSV
to the same folder. Each method's first call is timed apart (it loads or compiles numba's
cache); then the methods run ``--repeat`` times, interleaved, and the best wall and CPU
(process) times are kept — CPU time is the fairer figure on a machine shared with other
work (every method here is single-threaded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def generate(folder: Path, n_images: int, n_models: int, size: int, seed: int) -> tuple[Path, dict[str, Path]]:
    """The ground truth and the models' CSVs (written once, then reused)."""
    from core.synthetic import Generator, write_set

    gen = Generator(n_images=n_images, n_models=n_models, height=size, width=size, seed=seed)
    marker = folder / ".done"
    if not marker.exists():
        print(f"generating {n_models} models × {n_images} images × 29 classes at {size}² in {folder} …", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        write_set(gen, folder)
        marker.write_text("ok")
    return folder / "gt.csv", {m: folder / f"{m}.csv" for m in gen.model_names}


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0 … n-1 along the last axis (ties broken by position)."""
    return np.argsort(np.argsort(x, axis=-1, kind="stable"), axis=-1, kind="stable").astype(float)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation along the last axis."""
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean(-1, keepdims=True)
    rb -= rb.mean(-1, keepdims=True)
    return (ra * rb).sum(-1) / np.sqrt((ra**2).sum(-1) * (rb**2).sum(-1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=30)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from ensemble import hard_vote
    from evaluation import evaluate
    from quality import staple

    folder = ROOT / "bench" / "out" / f"staple-{args.models}x{args.images}-{args.size}-s{args.seed}"
    gt, models = generate(folder, args.images, args.models, args.size, args.seed)
    size = {"height": args.size, "width": args.size}
    methods = ("majority", "staple-all", "staple-disagreement", "staple-image", "simple")
    out = {k: folder / f"out-{k}.csv" for k in methods}
    results = {}
    runs = {
        "majority": lambda: hard_vote({m: str(p) for m, p in models.items()}, output=out["majority"], **size),
        "staple-all": lambda: staple(models, output=out["staple-all"], **size),
        "staple-disagreement": lambda: staple(models, output=out["staple-disagreement"], region="disagreement", **size),
        "staple-image": lambda: staple(models, output=out["staple-image"], scope="image", **size),
        "simple": lambda: staple(models, output=out["simple"], method="simple", **size),
    }
    first = {}
    for name, fn in runs.items():
        t = time.perf_counter()
        results[name] = fn()
        first[name] = time.perf_counter() - t
    wall = {k: np.inf for k in runs}
    cpu = {k: np.inf for k in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[name] = min(wall[name], time.perf_counter() - t)
            cpu[name] = min(cpu[name], time.process_time() - c)

    print(f"\n{args.models} sources × {args.images} images × 29 classes at {args.size}², best of {args.repeat}")
    print(f"{'method':<22} {'first call':>10} {'wall':>8} {'cpu':>8} {'cpu / majority':>15}")
    for name in runs:
        print(
            f"{name:<22} {first[name]:>9.3f}s {wall[name]:>7.3f}s {cpu[name]:>7.3f}s "
            f"{cpu[name] / cpu['majority']:>14.2f}×"
        )

    every = {k: str(v) for k, v in [*models.items(), *out.items()]}
    scored = evaluate(every, str(gt), **size)
    overall = dict(zip(scored.names, scored.overall))
    print(f"\nmean Dice against the ground truth (mean over classes of the mean over {args.images} images)")
    for name in [*models, *out]:
        print(f"  {name:<22} {overall[name]:.4f}")

    names = list(models)
    true_dice = scored.per_class[: len(names)]  # (sources, classes)
    st = results["staple-all"]
    sens = st.sensitivity[0]  # (sources, classes)
    spec = st.specificity[0]
    rho = spearman(sens.T, true_dice.T)
    top = (sens.argmax(0) == true_dice.argmax(0)).mean()
    order_sens = [names[j] for j in np.argsort(-sens.mean(1))]
    order_dice = [names[j] for j in np.argsort(-true_dice.mean(1))]
    print("\npooled STAPLE (all pixels): do the sensitivities rank the sources as their Dice does?")
    print(f"  overall (mean over classes): by sensitivity {order_sens}")
    same = "same" if order_sens == order_dice else "differs"
    print(f"                               by true Dice   {order_dice}  → {same}")
    print(f"  per class: Spearman ρ mean {np.nanmean(rho):.3f} (min {np.nanmin(rho):.3f}); ", end="")
    print(f"best source agrees in {top:.0%} of classes")
    both = spearman((sens + spec).T, true_dice.T)
    print(f"  (sensitivity + specificity: per-class ρ mean {np.nanmean(both):.3f})")
    kept = results["simple"].kept[0]
    print(f"\nSIMPLE dropped, per source (classes of 29): {dict(zip(names, (~kept).sum(1).tolist()))}")


if __name__ == "__main__":
    main()
