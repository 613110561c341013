"""Hard-vote benchmark: ours (whole CLI process, cold and warm numba cache) vs a dense numpy
reference, side by side in one run, outputs compared.

    python bench/vote.py [--images 300] [--models 5] [--ref-images 300]

Data: ``--models`` submission CSVs × ``--images`` images × 29 classes at 2048² from the
project's generator (cached under bench/out/). Each side runs in its own child process so
its wall time and peak RSS are its own. The reference decodes every mask to a dense
2048² array, sums the votes, thresholds and re-encodes — the usual script, written well.
With ``--ref-images`` < ``--images`` the reference runs on the first images only and its
time per image is compared.
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


def generate(folder: Path, n_images: int, n_models: int) -> list[Path]:
    from core.synthetic import Generator, write_set

    marker = folder / f".done-{n_images}-{n_models}"
    gen = Generator(n_images=n_images, n_models=n_models, seed=42)
    if not marker.exists():
        print(f"generating {n_models} × {n_images} × 29 at 2048² in {folder} …", flush=True)
        write_set(gen, folder)
        marker.write_text("ok")
    return [folder / f"{m}.csv" for m in gen.model_names]


def run_child(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024


def reference(paths: list[str], out: str, n_images: int) -> None:
    """Dense numpy hard vote of the first ``n_images`` images (runs in a child process)."""
    import numpy as np
    import pandas as pd

    frames = [pd.read_csv(p, keep_default_na=False) for p in paths]
    images = list(dict.fromkeys(frames[0]["image_name"]))[:n_images]
    lookups = [dict(zip(zip(f["image_name"], f["class"]), f["rle"])) for f in frames]
    classes = list(dict.fromkeys(frames[0]["class"]))
    h = w = 2048
    rows = []
    for name in images:
        for cls in classes:
            votes = np.zeros(h * w, np.uint8)
            for lk in lookups:
                s = np.asarray(str(lk[(name, cls)]).split(), dtype=np.int64)
                m = np.zeros(h * w, np.uint8)
                for a, n in zip(s[0::2] - 1, s[1::2]):
                    m[a : a + n] = 1
                votes += m
            keep = (votes / len(paths) > 0.5).astype(np.int8)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], keep, [0]])))
            r = edges.reshape(-1, 2)
            rows.append((name, cls, " ".join(f"{a + 1} {b - a}" for a, b in r)))
    pd.DataFrame(rows, columns=["image_name", "class", "rle"]).to_csv(out, index=False)


def compare(ours: str, ref: str) -> tuple[int, int]:
    """(rows compared, rows that differ)."""
    import pandas as pd

    a = pd.read_csv(ours, keep_default_na=False).set_index(["image_name", "class"])["rle"]
    b = pd.read_csv(ref, keep_default_na=False).set_index(["image_name", "class"])["rle"]
    a = a.loc[b.index]
    return len(b), int((a.astype(str).to_numpy() != b.astype(str).to_numpy()).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--ref-images", type=int, default=None, help="images for the reference (default all)")
    ap.add_argument("--data", default=str(ROOT / "bench" / "out" / "vote"))
    ap.add_argument("--reference-child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference_child:
        *paths, out, n = args.reference_child
        reference(paths, out, int(n))
        return

    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in generate(folder, args.images, args.models)]
    n_ref = min(args.ref_images or args.images, args.images)
    cli = [sys.executable, "cli.py", "hard", *paths, "--quiet"]
    with tempfile.TemporaryDirectory() as tmp:
        cache = {"NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        out = str(Path(tmp) / "ours.csv")
        cold = run_child([*cli, "-o", out], cache)
        warm = run_child([*cli, "-o", out], cache)
        warm2 = run_child([*cli, "-o", str(Path(tmp) / "ours2.csv"), "--workers", "2"], cache)
        ref_out = str(Path(tmp) / "ref.csv")
        ref = run_child([sys.executable, __file__, "--reference-child", *paths, ref_out, str(n_ref)])
        n_rows, n_diff = compare(out, ref_out)
        same_workers = Path(out).read_bytes() == (Path(tmp) / "ours2.csv").read_bytes()

    per_img_ref = ref[0] / n_ref
    print(f"\nhard vote, {args.models} CSVs × {args.images} images × 29 classes, 2048² (reference on {n_ref} images)")
    print(f"{'':<34}{'wall s':>9}{'s/image':>10}{'peak RSS MB':>13}{'speed-up':>10}")
    for name, (wall, rss) in [
        ("ours, cold numba cache", cold),
        ("ours, warm cache", warm),
        ("ours, warm, --workers 2", warm2),
    ]:
        print(
            f"{name:<34}{wall:>9.2f}{wall / args.images:>10.4f}{rss:>13.0f}{per_img_ref / (wall / args.images):>9.1f}×"
        )
    print(f"{'dense numpy reference':<34}{ref[0]:>9.2f}{per_img_ref:>10.4f}{ref[1]:>13.0f}{1:>9.1f}×")
    print(f"outputs: {n_rows} rows compared, {n_diff} differ; --workers 2 output identical: {same_workers}")


if __name__ == "__main__":
    main()
