"""Benchmark: cleaning on runs (ours) vs the dense scipy pipeline, side by side.

    python bench/postprocess.py [--images 300] [--models 5] [--sample 200] [--seed 0]

Generates ``models × images × 29`` masks at 2048² with ``core.synthetic.Generator``
(one image at a time; nothing dense is kept), cleans every mask with keep_largest 1 +
fill_holes (8-connected objects) through the ``Cleaner`` the commands use, and runs the
scipy reference — decode, ``ndimage.label`` (8-connected), keep the largest (ties: lowest
label), ``binary_fill_holes``, encode — on an evenly spread sample of the same masks,
checking that both outputs are identical. Then times one model's whole submission CSV
(read → clean → write, in process and as the CLI command), and numba's cold compile,
cache load and warm call in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from core.classes import DEFAULT_CLASSES  # noqa: E402
from core.codec import decode, encode, format_rle  # noqa: E402
from core.predictions import PredictionWriter, read_predictions  # noqa: E402
from core.synthetic import Generator  # noqa: E402
from postprocess.clean_set import clean_all  # noqa: E402
from postprocess.cleaner import Cleaner, Rules  # noqa: E402

RULES = Rules(keep_largest=1, fill_holes=True)
EIGHT = np.ones((3, 3), bool)


def reference(runs: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """The dense pipeline: decode, label (8-conn), keep largest, fill holes, encode."""
    mask = decode(runs, buf.shape, out=buf)
    lab, n = ndimage.label(mask, EIGHT)
    if n == 0:
        return encode(mask)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    keep = lab == int(np.argmax(sizes))  # argmax: first of equal sizes = first in raster order
    return encode(ndimage.binary_fill_holes(keep))


def cold_warm() -> dict[str, float]:
    """First-call time with an empty numba cache (compile), with the cache (load), and a warm call."""
    code = (
        "import time, numpy as np\n"
        "t0 = time.perf_counter()\n"
        "from postprocess.cleaner import Cleaner, Rules\n"
        "runs = np.array([[10, 20], [2058, 2070]], np.int64)\n"
        "c = Cleaner([Rules(keep_largest=1, fill_holes=True)], ['x'], 2048, 2048)  # the commands' path\n"
        "t1 = time.perf_counter(); c(0, runs)\n"
        "t2 = time.perf_counter(); c(0, runs)\n"
        "t3 = time.perf_counter()\n"
        "print(t1 - t0, t2 - t1, t3 - t2)\n"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for label, env in (("cold", {"NUMBA_CACHE_DIR": cache}), ("cached", {})):
            r = subprocess.run(
                [sys.executable, "-c", code],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                check=True,
            )
            imp, first, warm = (float(x) for x in r.stdout.split())
            out[f"{label}_import"], out[f"{label}_first"], out[f"{label}_warm"] = imp, first, warm
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--sample", type=int, default=200, help="masks run through the scipy reference")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    classes = DEFAULT_CLASSES
    gen = Generator(n_images=args.images, n_models=args.models, seed=args.seed)
    n_masks = args.images * len(gen.model_names) * len(classes)
    every = max(n_masks // max(args.sample, 1), 1)
    cleaner = Cleaner([RULES] * len(classes), classes)
    cleaner(0, np.zeros((0, 2), np.int64))  # load the kernels before timing
    cleaner.reset()

    ours_ms, run_counts, sample = [], [], []
    t_gen = 0.0
    tmp = tempfile.TemporaryDirectory()
    csv_in = Path(tmp.name) / f"{gen.model_names[0]}.csv"
    print(
        f"generating and cleaning {n_masks:,} masks ({len(gen.model_names)} models × {args.images} images × "
        f"{len(classes)} classes, 2048²) …",
        file=sys.stderr,
    )
    k = 0
    with PredictionWriter(csv_in, classes) as writer:
        for i in range(args.images):
            t0 = time.perf_counter()
            img = gen.image(i)
            t_gen += time.perf_counter() - t0
            writer.write_image(img.name, [format_rle(r) for r in img.models[gen.model_names[0]]])
            for m in gen.model_names:
                for c, runs in enumerate(img.models[m]):
                    t0 = time.perf_counter_ns()
                    out = cleaner(c, runs)
                    ours_ms.append((time.perf_counter_ns() - t0) / 1e6)
                    run_counts.append(len(runs))
                    if k % every == 0 and len(sample) < args.sample:
                        sample.append((runs, out))
                    k += 1
            if (i + 1) % 25 == 0:
                print(f"  {i + 1}/{args.images} images", file=sys.stderr)
    ours_ms = np.array(ours_ms)

    buf = np.zeros((2048, 2048), np.uint8)
    ref_ms, differ = [], 0
    for runs, out in sample:
        t0 = time.perf_counter_ns()
        ref = reference(runs, buf)
        ref_ms.append((time.perf_counter_ns() - t0) / 1e6)
        differ += not np.array_equal(ref, out)
    ref_ms = np.array(ref_ms)
    ours_sample = np.array([ours_ms[j * every] for j in range(len(sample))])

    # One submission: read the CSV, clean all its masks, write the result.
    csv_out = Path(tmp.name) / "cleaned.csv"
    walls = {}
    read_predictions(csv_in, classes)  # imports pandas and loads the reader's kernels: not I/O
    for workers in (1, 2):
        t0 = time.perf_counter()
        preds = read_predictions(csv_in, classes)
        sub_cleaner = Cleaner([RULES] * len(classes), classes)
        clean_all(preds, sub_cleaner, str(csv_out), workers)
        walls[workers] = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "cli.py",
            "postprocess",
            str(csv_in),
            "-o",
            str(csv_out),
            "--keep-largest",
            "1",
            "--fill-holes",
            "-q",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wall_cli = time.perf_counter() - t0
    size_mb = csv_in.stat().st_size / 1e6
    cw = cold_warm()
    tmp.cleanup()

    s = cleaner.stats().sum(0)
    med_ours, med_ref = np.median(ours_ms), np.median(ref_ms)
    print(
        f"\npostprocess benchmark — keep_largest 1 + fill_holes, 8-connected, 2048², "
        f"{len(gen.model_names)} models × {args.images} images × {len(classes)} classes "
        f"(median {int(np.median(run_counts))} runs/mask; generation {t_gen:.0f} s, not timed below)"
    )
    print(f"{'':34}{'masks':>8}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}{'total s':>9}")
    print(
        f"{'ours (runs, numba, Cleaner)':34}{len(ours_ms):>8,}{med_ours:>11.4f}"
        f"{np.percentile(ours_ms, 90):>9.4f}{ours_ms.max():>9.3f}{ours_ms.sum() / 1e3:>9.2f}"
    )
    print(
        f"{'ours, same sample':34}{len(ours_sample):>8,}{np.median(ours_sample):>11.4f}"
        f"{np.percentile(ours_sample, 90):>9.4f}{ours_sample.max():>9.3f}{ours_sample.sum() / 1e3:>9.2f}"
    )
    print(
        f"{'scipy reference (dense), sample':34}{len(ref_ms):>8,}{med_ref:>11.2f}"
        f"{np.percentile(ref_ms, 90):>9.2f}{ref_ms.max():>9.1f}{ref_ms.sum() / 1e3:>9.2f}"
    )
    print(
        f"ratio of medians (same sample): {med_ref / np.median(ours_sample):,.0f}×   "
        f"(all masks vs sample: {med_ref / med_ours:,.0f}×)"
    )
    print(
        f"identity: {len(sample) - differ}/{len(sample)} sample masks identical to the scipy reference "
        f"({differ} differ)"
    )
    print(
        f"cleaned: {s[1]:,} of {s[0]:,} masks changed, {s[2]:,} components removed, {s[3]:,} holes filled, "
        f"{s[4]:,} px removed, {s[5]:,} px added"
    )
    print(
        f"one submission ({args.images} images × {len(classes)} = {args.images * len(classes):,} masks, "
        f"{size_mb:.1f} MB CSV), read → clean → write: {walls[1]:.2f} s (1 worker), {walls[2]:.2f} s (2 workers); "
        f"'cli.py postprocess' as a fresh process: {wall_cli:.2f} s"
    )
    print(
        f"numba: cold first call {cw['cold_first']:.1f} s (compile, empty cache), cached first call "
        f"{cw['cached_first'] * 1e3:.0f} ms (load), warm call {cw['cached_warm'] * 1e3:.3f} ms; "
        f"module import {cw['cached_import']:.2f} s"
    )


if __name__ == "__main__":
    main()
