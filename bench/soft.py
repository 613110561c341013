"""Benchmark of ``soft`` on saved probability maps: ours against a plain torch reference.

Data: 5 map sources (three at 1024², two at 512², float16 ``.npy``) × N images × 29
classes from ``core.synthetic.Generator.prob_map``, written once to ``--data`` (kept for
later runs). Each side runs in its own child process so that wall time and peak RSS are its
own: ours cold (fresh numba cache: includes compilation) and warm, then the reference
(upsample every map to 2048² with ``F.interpolate(bilinear, align_corners=False)``,
weighted mean, ``> threshold``, encode). Outputs are compared pixel for pixel; differences
are allowed only where the reference mean lies within 1e-4 of the threshold, and the number
of such pixels is printed.

    python bench/soft.py                 # 20 images (≈4.3 GB of maps under /tmp)
    python bench/soft.py --images 4      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCES = [
    ("unet", 1024, 1.0),
    ("hrnet", 1024, 1.5),
    ("segformer", 1024, 0.8),
    ("deeplab", 512, 1.2),
    ("fcn", 512, 0.7),
]
THRESHOLD = 0.5
BAND = 1e-4


def make_data(folder: Path, n_images: int) -> None:
    """Write the maps and a settings file (skipped when already there)."""
    import numpy as np
    from tqdm import tqdm

    from core.synthetic import Generator

    done = folder / f"done-{n_images}"
    if done.exists():
        return
    gen = Generator(n_images=n_images, n_models=len(SOURCES), model_names=[s[0] for s in SOURCES], seed=3)
    for name, _, _ in SOURCES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for img in tqdm(gen.images(), total=n_images, desc="writing maps", file=sys.stderr):
        for name, size, _ in SOURCES:
            np.save(folder / name / f"{Path(img.name).stem}.npy", gen.prob_map(img, name, size))
    lines = [f"threshold: {THRESHOLD}", "num_workers: 2", "prob_maps:"]
    for name, _, w in SOURCES:
        lines += [f"  - path: {folder / name}", f"    weight: {w}"]
    (folder / "soft.yaml").write_text("\n".join(lines) + "\n")
    done.touch()


def run_ours(folder: Path, out: Path) -> dict:
    from ensemble.soft_plan import build_job
    from ensemble.soft_run import run_job
    from settings.loader import load_yaml, parse_model
    from settings.soft import SoftSettings

    cfg = parse_model(SoftSettings, load_yaml(folder / "soft.yaml"), "bench")
    t = time.perf_counter()
    job = build_job(cfg, "bench")
    run_job(job, out)
    return {"seconds": time.perf_counter() - t}


def run_reference(folder: Path, out: Path, band_out: Path) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from core.classes import DEFAULT_CLASSES
    from core.codec import encode, format_rle
    from core.predictions import PredictionWriter

    encode(np.zeros((64, 64), bool))  # compile outside the timing
    t = time.perf_counter()
    stems = sorted(p.stem for p in (folder / SOURCES[0][0]).glob("*.npy"))
    wsum = sum(s[2] for s in SOURCES)
    band = 0
    with PredictionWriter(out, DEFAULT_CLASSES) as wr, PredictionWriter(band_out, DEFAULT_CLASSES) as wb:
        for stem in stems:
            acc = None
            for name, _, w in SOURCES:
                a = torch.from_numpy(np.load(folder / name / f"{stem}.npy")).float()[None]
                up = F.interpolate(a, size=(2048, 2048), mode="bilinear", align_corners=False)[0]
                if acc is None:
                    acc = up.mul_(w)
                else:
                    acc.add_(up, alpha=w)
                del up, a
            mean = acc.div_(wsum)
            near = ((mean - THRESHOLD).abs_() < BAND).numpy()
            band += int(near.sum())
            mask = (mean > THRESHOLD).numpy()
            wr.write_image(f"{stem}.png", [format_rle(encode(m)) for m in mask])
            wb.write_image(f"{stem}.png", [format_rle(encode(m)) for m in near])
            del acc, mean, mask, near
    return {"seconds": time.perf_counter() - t, "band": band}


def child(side: str, folder: Path, out: Path) -> None:
    if side == "ours":
        res = run_ours(folder, out)
    else:
        res = run_reference(folder, out, out.with_suffix(".band.csv"))
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


def spawn(side: str, folder: Path, out: Path, env: dict | None = None) -> dict:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--side", side, "--data", str(folder), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode:
        sys.exit(f"{side} failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t
    return res


def compare(ours: Path, ref: Path, band: Path) -> tuple[int, int, int]:
    """(differing pixels, of which outside the band, rows with a difference)."""
    from core.classes import DEFAULT_CLASSES
    from core.predictions import read_predictions
    from core.runs import area, difference, intersection, union

    a, b, n = (read_predictions(p, DEFAULT_CLASSES) for p in (ours, ref, band))
    diff = outside = rows = 0
    for i, name in enumerate(b.images):
        ia = a.image_index(name)
        for c in range(len(DEFAULT_CLASSES)):
            ra, rb = a.runs(ia, c), b.runs(i, c)
            xor = difference(union(ra, rb), intersection(ra, rb))
            if len(xor):
                rows += 1
                diff += area(xor)
                outside += area(difference(xor, n.runs(n.image_index(name), c)))
    return diff, outside, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "soft_bench_maps"))
    ap.add_argument("--side", choices=["ours", "ref"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = Path(args.data)
    if args.side:
        child(args.side, folder, Path(args.out))
        return
    folder.mkdir(parents=True, exist_ok=True)
    make_data(folder, args.images)
    n = len(list((folder / SOURCES[0][0]).glob("*.npy")))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp / "numba"))
        cold = spawn("ours", folder, tmp / "ours.csv", env)
        warm = spawn("ours", folder, tmp / "ours.csv", env)
        ref = spawn("ref", folder, tmp / "ref.csv")
        diff, outside, rows = compare(tmp / "ours.csv", tmp / "ref.csv", tmp / "ref.band.csv")
    maps_mb = sum(p.stat().st_size for s in SOURCES for p in (folder / s[0]).glob("*.npy")) / 2**20
    print(
        f"\nsoft vote: {n} images × 29 classes, 5 float16 map sources (3 × 1024², 2 × 512²), "
        f"{maps_mb:,.0f} MB of .npy maps, threshold {THRESHOLD}, 2048² canvas"
    )
    print(f"{'':28}{'wall s':>9}{'process s':>11}{'peak RSS MB':>13}{'vs reference':>14}")
    for label, r in [("torch reference", ref), ("ours, cold (numba compile)", cold), ("ours, warm", warm)]:
        print(
            f"{label:<28}{r['seconds']:>9.2f}{r['process_seconds']:>11.2f}{r['peak_rss_mb']:>13,.0f}"
            f"{ref['seconds'] / r['seconds']:>13.1f}×"
        )
    print(f"pixels with the reference mean within {BAND:g} of the threshold: {ref['band']:,}")
    print(f"differing pixels: {diff:,} in {rows} masks; outside that band: {outside:,}")
    if outside:
        sys.exit("FAIL: outputs differ beyond the threshold band")


if __name__ == "__main__":
    main()
