"""Report benchmark: ``cli.py report`` on 5 sources × 300 images × 29 classes (2048²) with
12 image pages, as a whole CLI process (wall time and peak RSS), cold and warm numba cache.

    python bench/report.py [--images 300] [--models 5] [--pages 12]

Data: the ``bench/vote.py`` set (``--models`` submission CSVs and the ground truth from the
project's generator, cached under bench/out/vote/) plus one stand-in grey 2048² X-ray PNG per
image (``core.synthetic.xray``, cached under bench/out/vote/xrays/). Targets: ≤ 30 s and
≤ 1 GB peak RSS on 2 cores. The ``evaluate`` of the same files is timed too, as the floor
(reading and scoring).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vote import generate, run_child  # noqa: E402


def xrays(folder: Path, n_images: int) -> Path:
    """One stand-in X-ray PNG per image under ``folder/xrays`` (written once)."""
    from PIL import Image

    from core.synthetic import Generator, xray

    out = folder / "xrays"
    marker = out / f".done-{n_images}"
    if marker.exists():
        return out
    out.mkdir(exist_ok=True)
    gen = Generator(n_images=n_images, n_models=1, seed=42)
    print(f"writing {n_images} stand-in X-rays in {out} …", flush=True)
    for img in gen.images():  # the ground truth depends on the seed only, not on the models
        Image.fromarray(xray(img, gen.height, gen.width), "L").save(out / img.name, compress_level=1)
    marker.write_text("ok")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--data", default=str(ROOT / "bench" / "out" / "vote"))
    args = ap.parse_args()

    folder = Path(args.data)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in generate(folder, args.images, args.models)]
    gt = str(folder / "gt.csv")
    images = xrays(folder, args.images)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = {"NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        base = [sys.executable, "cli.py", "report", "--gt", gt, *paths, "--pages", str(args.pages), "-q"]
        out = str(Path(tmp) / "report")
        rows.append(("report, cold numba cache", run_child([*base, "--images", str(images), "-o", out], cache)))
        rows.append(("report, warm", run_child([*base, "--images", str(images), "-o", out], cache)))
        rows.append(("report, warm, no --images (grey canvas)", run_child([*base, "-o", out], cache)))
        rows.append(
            (
                "report, warm, no --gt (agreement)",
                run_child(
                    [
                        sys.executable,
                        "cli.py",
                        "report",
                        *paths,
                        "--pages",
                        str(args.pages),
                        "-q",
                        "--images",
                        str(images),
                        "-o",
                        out,
                    ],
                    cache,
                ),
            )
        )
        rows.append(
            (
                "evaluate, warm (the floor)",
                run_child([sys.executable, "cli.py", "evaluate", "--gt", gt, *paths, "-q"], cache),
            )
        )
        run_child([*base, "--images", str(images), "-o", out], cache)
        files = [p for p in Path(out).rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
    print(f"\nreport, {args.models} sources × {args.images} images × 29 classes, 2048², {args.pages} pages")
    print(f"{'':<44}{'wall s':>9}{'peak RSS MB':>13}")
    for name, (wall, rss) in rows:
        print(f"{name:<44}{wall:>9.2f}{rss:>13.0f}")
    print(f"report folder: {len(files):,} files, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
