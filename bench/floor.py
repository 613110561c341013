"""CSV commands against the read floor: each command's whole-process wall time beside
the time a bare process takes to read the same inputs.

    python bench/floor.py [--images 300] [--repeat 3] [--data FOLDER]

Data: 5 model CSVs × ``--images`` images × 29 classes at 2048², plus ``gt.csv``, from the
project's generator as in ``bench/vote.py`` (cached in ``--data``, default
``$TMPDIR/bench_floor/<images>``; the 300-image set takes a few minutes to write). Two merge
parts (first half of the images from model1, second half from model2) and a select setting
using all five models are written beside them.

For each command (check, hard, weighted, evaluate, select, merge, postprocess):

- **floor**: a child ``python`` that imports numpy and pandas and reads the command's input
  files with ``pandas.read_csv(path, dtype=str, keep_default_na=False)``;
- **warm**: ``python cli.py …`` as a child process, numba cache filled;
- **cold**: the same on an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a fresh folder,
  which the cached kernels honour; checked: the folder must hold index files afterwards);
- **peak RSS**: the command's own ``ru_maxrss`` from ``os.wait4`` in a small launcher process
  (the best warm run's).

Floor and warm are the best of ``--repeat``; they are measured in the same run, alternately.
Below the table, each side's start-up: the floor process and ``cli.py check`` on a one-image
file (imports; for us also numba's initialisation and loading cached kernels).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOOR = "import sys, numpy, pandas\nfor p in sys.argv[1:]:\n    pandas.read_csv(p, dtype=str, keep_default_na=False)\n"


def generate(folder: Path, n_images: int) -> dict[str, Path]:
    """The 5 × n set (cached), two merge parts and a select setting; returns the paths."""
    from core.synthetic import Generator, write_set

    gen = Generator(n_images=n_images, n_models=5, seed=42)
    marker = folder / f".done-{n_images}-5"
    if not marker.exists():
        print(f"generating 5 × {n_images} × 29 at 2048² (+ gt) in {folder} …", file=sys.stderr, flush=True)
        write_set(gen, folder)
        marker.write_text("ok")
    paths = {
        "gt": folder / "gt.csv",
        "models": [folder / f"{m}.csv" for m in gen.model_names],
        "parts": [folder / "part1.csv", folder / "part2.csv"],
        "select": folder / "select.yaml",
    }
    if not all(p.exists() for p in [*paths["parts"], paths["select"]]):
        import pandas as pd

        a = pd.read_csv(paths["models"][0], dtype=str, keep_default_na=False)
        b = pd.read_csv(paths["models"][1], dtype=str, keep_default_na=False)
        images = list(dict.fromkeys(a["image_name"]))
        first = set(images[: len(images) // 2])
        a[a["image_name"].isin(first)].to_csv(paths["parts"][0], index=False)
        b[~b["image_name"].isin(first)].to_csv(paths["parts"][1], index=False)
        classes = list(gen.classes)
        names = [p.stem for p in paths["models"]]
        sources = ", ".join(f"{n}: {p}" for n, p in zip(names, paths["models"]))
        # every model chosen for some class, so select reads all five files
        rules = "".join(f"  {c}: {names[i % 5]}\n" for i, c in enumerate(classes) if i % 5)
        paths["select"].write_text(f"sources: {{{sources}}}\nselect:\n  default: {names[0]}\n{rules}")
    return paths


# The child is started by this small launcher, not by the benchmark itself: a child's ru_maxrss
# also counts the memory map it was forked (vfork'ed) from, which for the benchmark process can
# be hundreds of MB; the launcher's is ~15 MB, below any command's own peak.
LAUNCH = (
    "import os, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "err = p.stderr.read()\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "wall = time.perf_counter() - t\n"
    "sys.stderr.buffer.write(err[-4000:])\n"
    "print(os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss)\n"
)


def run_child(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the command's own, via ``os.wait4`` in a launcher)."""
    res = subprocess.run(
        [sys.executable, "-c", LAUNCH, *cmd], cwd=ROOT, capture_output=True, env={**os.environ, **(env or {})}
    )
    code, wall, rss = res.stdout.split()
    if res.returncode != 0 or int(code) != 0:
        raise SystemExit(f"failed ({code.decode()}): {' '.join(cmd)}\n{res.stderr.decode(errors='replace')}")
    return float(wall), int(rss) / 1024


def scenarios(p: dict, out: Path) -> list[tuple[str, list[str], list[Path]]]:
    """(label, cli arguments, input files the command reads)."""
    m = [str(x) for x in p["models"]]
    return [
        ("check", ["check", m[0]], [p["models"][0]]),
        ("hard", ["hard", *m, "-o", str(out / "hard.csv")], p["models"]),
        ("weighted", ["weighted", *m, "--weights", "1,2,1,1,1", "-o", str(out / "weighted.csv")], p["models"]),
        ("evaluate", ["evaluate", "--gt", str(p["gt"]), *m, "-o", str(out / "scores.csv")], [p["gt"], *p["models"]]),
        ("select", ["select", "--setting", str(p["select"]), "-o", str(out / "select.csv")], p["models"]),
        ("merge", ["merge", *map(str, p["parts"]), "-o", str(out / "merge.csv")], p["parts"]),
        (
            "postprocess",
            ["postprocess", m[0], "--keep-largest", "1", "--fill-holes", "-o", str(out / "post.csv")],
            [p["models"][0]],
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for floor and warm (default 3)")
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data folder (default $TMPDIR/bench_floor/<images>; reused when present)",
    )
    ap.add_argument("--only", default=None, help="comma-separated commands to run (default all)")
    args = ap.parse_args()

    folder = args.data or Path(tempfile.gettempdir()) / "bench_floor" / str(args.images)
    folder.mkdir(parents=True, exist_ok=True)
    paths = generate(folder, args.images)
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, cli_args, inputs in scenarios(paths, tmp):
            if args.only and label not in args.only.split(","):
                continue
            cli = [py, "cli.py", *cli_args, "--quiet"]
            floor_cmd = [py, "-c", FLOOR, *map(str, inputs)]
            cache = tmp / f"numba-{label}"
            cache.mkdir()
            env = {"NUMBA_CACHE_DIR": str(cache)}
            cold, _ = run_child(cli, env)
            if not any(cache.rglob("*.nbi")):
                raise SystemExit(f"{label}: NUMBA_CACHE_DIR not honoured (no index files in {cache})")
            warm, floor, rss = float("inf"), float("inf"), 0.0
            for _ in range(args.repeat):
                f, _ = run_child(floor_cmd)
                w, r = run_child(cli, env)
                floor, rss = min(floor, f), (r if w < warm else rss)
                warm = min(warm, w)
            rows.append((label, floor, warm, cold, rss))
            print(
                f"{label}: floor {floor:.2f} s, warm {warm:.2f} s, cold {cold:.2f} s, {rss:.0f} MB",
                file=sys.stderr,
                flush=True,
            )

    # Start-up: what each side pays before reading anything (imports; for us also numba's
    # target initialisation and loading cached kernels), on a one-image file.
    one = folder / "one_image.csv"
    if not one.exists():
        lines = paths["models"][0].read_text().splitlines()[:30]
        one.write_text("\n".join(lines) + "\n")
    ours_up, floor_up = float("inf"), float("inf")
    for _ in range(args.repeat):
        floor_up = min(floor_up, run_child([py, "-c", FLOOR, str(one)])[0])
        ours_up = min(ours_up, run_child([py, "cli.py", "check", str(one), "--quiet"])[0])

    print(f"\n5 models × {args.images} images × 29 classes, 2048²; best of {args.repeat}\n")
    print("| command | floor s | warm s | ratio | cold s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for label, floor, warm, cold, rss in rows:
        print(f"| {label} | {floor:.2f} | {warm:.2f} | {warm / floor:.1f}× | {cold:.2f} | {rss:.0f} |")
    print(f"\nstart-up on a one-image file: floor {floor_up:.2f} s, `cli.py check` {ours_up:.2f} s")


if __name__ == "__main__":
    main()
