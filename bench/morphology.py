"""Benchmark: opening and closing by a disk at radii 1 … 100000 on 2048² masks.

    python bench/morphology.py [--images 4] [--blobs 3] [--radii 1,10,100,1000,100000] [--repeat 3]

Two sets of masks, one process: the bones of ``core.synthetic.Generator`` (``images`` × 29
classes of one model: ellipses with nearby specks and pinholes, the masks the postprocess
command cleans) and ``blobs`` masks of random overlapping discs spread over the whole image
(bounding box ≈ the image: the most pixels a kernel's window can hold). Each mask is cleaned
by a ``Cleaner`` whose rules take one step, ``open`` or ``close`` at the radius, one mask per
call as the commands' inline cleaning does; the best of ``repeat`` passes is printed per
(set, step, radius), with the ratios of the largest radius's time and of the slowest radius's
time to the smallest radius's. Compilation happens before timing (one warm-up call per
step). A radius beyond the image's larger side acts as that side
(``postprocess.morphology.effective_radius``); each mask is opened or closed by the cheaper
of the row-by-row and the distance method (``postprocess._morphology_kernels``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.codec import encode  # noqa: E402
from core.synthetic import Generator  # noqa: E402
from postprocess.cleaner import Cleaner, Rules  # noqa: E402

SIZE = 2048


def bones(n_images: int) -> list[np.ndarray]:
    """Every class mask of model1 on ``n_images`` generated images."""
    gen = Generator(n_images=n_images, n_models=1, seed=0)
    return [runs for img in gen.images() for runs in img.models["model1"]]


def blobs(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` masks of 40 random discs (radius 20 … 200) over the whole image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:SIZE, :SIZE]
    out = []
    for _ in range(n):
        m = np.zeros((SIZE, SIZE), bool)
        for cy, cx, r in zip(rng.uniform(0, SIZE, 40), rng.uniform(0, SIZE, 40), rng.uniform(20, 200, 40), strict=True):
            m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        out.append(encode(m))
    return out


def timed(masks: list[np.ndarray], rules: Rules, repeat: int) -> float:
    """Best total time over ``repeat`` passes of cleaning every mask with ``rules``."""
    cleaner = Cleaner([rules], ["x"], SIZE, SIZE)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for runs in masks:
            cleaner(0, runs)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--blobs", type=int, default=3)
    ap.add_argument("--radii", default="1,10,100,1000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    radii = [int(r) for r in args.radii.split(",")]

    t0 = time.perf_counter()
    sets = {f"bones ({args.images} images × 29)": bones(args.images), f"blobs ({args.blobs})": blobs(args.blobs)}
    print(f"masks generated in {time.perf_counter() - t0:.1f} s")
    tiny = [np.array([[0, 3]], np.int64)]
    t0 = time.perf_counter()
    for step in ("open", "close"):
        timed(tiny, Rules(**{step: 1}), 1)
    print(f"warm-up (compile or cache load) {time.perf_counter() - t0:.1f} s")

    for name, masks in sets.items():
        pixels = sum(int((r[:, 1] - r[:, 0]).sum()) for r in masks)
        print(f"\n{name}: {len(masks)} masks, {pixels:,} pixels")
        last, worst = f"r={radii[-1]}/r={radii[0]}", f"max/r={radii[0]}"
        print(f"{'step':<6} " + " ".join(f"{'r=' + str(r):>10}" for r in radii) + f" {last:>14} {worst:>10}")
        for step in ("open", "close"):
            times = [timed(masks, Rules(**{step: r}), args.repeat) for r in radii]
            cells = " ".join(f"{t * 1000:>8.1f}ms" for t in times)
            print(f"{step:<6} {cells} {times[-1] / times[0]:>14.2f} {max(times) / times[0]:>10.2f}")


if __name__ == "__main__":
    main()
