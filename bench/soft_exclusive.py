"""The soft vote of exclusive classes (``vote_image_exclusive``: every channel resampled and
averaged, the argmax per pixel) against the per-class soft vote (``vote_image``: each class
thresholded at 0.5 over the rectangle where it can pass) on the same maps, in one process,
numba engine on the CPU, warm (every kernel compiled first).

    python bench/soft_exclusive.py [--images 20] [--sources 5] [--classes 4] [--size 1024] [--workers 1]

Data: ``core.synthetic.Generator`` probability maps of ``--classes`` classes, one source per
model, at ``--size``² on a ``--size``² canvas; a background channel ``1 - Σ p`` (clipped at
0.01) is stacked in front and every pixel normalised to sum 1 (a softmax output). The
per-class vote reads channels 1 … C of the same normalised maps (saved as their own
files), so both votes see the same probabilities. float16 ``.npy`` files under ``--data``
(written once; read through the page cache).

Rows printed (each the best of ``--repeat`` runs of the whole job, ``soft_vote`` with
``output``, the cases taken in turn so that a busy machine slows them alike): the per-class
vote at 0.5, at 0 (every pixel can pass: the dense cost of its kernel), and written
column-major (``rle_order: column``: the runs of the transposed masks); the exclusive vote,
row-major, column-major, and with every image's size from a ``sizes`` table (the mixed-size
path on the same pixels). Ratios: to the per-class vote at 0.5, and to the
exclusive vote.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_data(folder: Path, n_images: int, n_sources: int, n_classes: int, size: int) -> None:
    from core.synthetic import Generator

    done = folder / f"done-{n_images}-{n_sources}-{n_classes}-{size}"
    if done.exists():
        return
    classes = [f"c{k + 1}" for k in range(n_classes)]
    names = [f"m{k}" for k in range(n_sources)]
    gen = Generator(
        n_images=n_images, n_models=n_sources, model_names=names, height=size, width=size, classes=classes, seed=5
    )
    for name in names:
        (folder / "excl" / name).mkdir(parents=True, exist_ok=True)
        (folder / "cls" / name).mkdir(parents=True, exist_ok=True)
    for img in gen.images():
        stem = Path(img.name).stem
        for name in names:
            p = gen.prob_map(img, name, size, np.float32)
            bg = np.clip(1 - p.sum(0), 0.01, None)
            full = np.concatenate([bg[None], p])
            full /= full.sum(0)
            np.save(folder / "excl" / name / f"{stem}.npy", full.astype(np.float16))
            np.save(folder / "cls" / name / f"{stem}.npy", full[1:].astype(np.float16))
    (folder / "sizes.csv").write_text(
        "image_name,height,width\n" + "".join(f"{img.name},{size},{size}\n" for img in gen.images())
    )
    done.touch()


def settings(folder: Path, kind: str, n_sources: int, n_classes: int, size: int, workers: int) -> dict:
    return {
        "CLASSES": [f"c{k + 1}" for k in range(n_classes)],
        "height": size,
        "width": size,
        "engine": "cpu",
        "num_workers": workers,
        "exclusive": kind == "excl",
        "prob_maps": [{"path": str(folder / kind / f"m{k}")} for k in range(n_sources)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--sources", type=int, default=5)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench_soft_exclusive"))
    a = ap.parse_args()
    make_data(a.data, a.images, a.sources, a.classes, a.size)

    from core.warmup import compile_steps
    from ensemble import soft_vote
    from ensemble.warmup import SOFT, SOFT_EXCLUSIVE

    compile_steps(SOFT, SOFT_EXCLUSIVE)
    per_class = settings(a.data, "cls", a.sources, a.classes, a.size, a.workers)
    exclusive = settings(a.data, "excl", a.sources, a.classes, a.size, a.workers)
    out = a.data / "out.csv"
    dense = {**per_class, "threshold": 0.0}  # every pixel can pass: no rectangle to skip to
    cases = [
        ("per-class soft vote (threshold 0.5)", per_class, {}),
        ("per-class soft vote (threshold 0: dense)", dense, {}),
        ("per-class, column-major RLE", per_class, {"rle_order": "column"}),
        ("exclusive soft vote (argmax of C+1)", exclusive, {}),
        ("exclusive, column-major RLE", exclusive, {"rle_order": "column"}),
        ("exclusive, sizes table (same sizes)", exclusive, {"sizes": a.data / "sizes.csv"}),
    ]
    for _, cfg, extra in cases:  # compiled, and the maps in the page cache
        soft_vote(cfg, output=out, **extra)
    print(
        f"{a.images} images × {a.sources} sources × {a.classes}+1 channels, float16 maps {a.size}² on a "
        f"{a.size}² canvas, numba engine, {a.workers} worker thread(s), best of {a.repeat} rounds "
        "(the cases taken in turn in each round):"
    )
    times = [[] for _ in cases]
    for _ in range(a.repeat):
        for k, (_, cfg, extra) in enumerate(cases):
            t = time.perf_counter()
            soft_vote(cfg, output=out, **extra)
            times[k].append(time.perf_counter() - t)
    per_class_t, exclusive_t = min(times[0]), min(times[3])
    for (label, _, _), ts in zip(cases, times, strict=True):
        t = min(ts)
        print(
            f"  {label:<40} {t:7.2f} s  {t / a.images * 1e3:7.1f} ms/image  "
            f"{t / per_class_t:6.2f}× per-class  {t / exclusive_t:5.2f}× exclusive"
        )


if __name__ == "__main__":
    main()
