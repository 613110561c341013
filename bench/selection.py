"""Benchmark of ``select`` and ``merge``: the CLI against a straightforward pandas script.

Data (written once to ``--data``, kept for later runs): 5 model CSVs × 300 images × 29
classes at 2048² from ``core.synthetic`` (about 19 MB each), plus files derived from them:
an 8-class wrist CSV naming images by relative path, and 5 image shards of model1 (60
images each, every shard repeating the next shard's first 6 images).

Scenarios, each run as ``python cli.py …`` in a child process (wall time and peak RSS of
the whole command: start-up, reading and validating every RLE, writing), against a pandas
script in its own child process (read_csv, concat/merge/drop_duplicates/reindex, to_csv;
no RLE validation, text comparison only); for ``select`` also the old scripts' way
(one boolean-mask lookup per row, run once):

- ``select``: 5 sources (4 full CSVs and the wrist CSV), rules with a group, overrides and
  a default.
- ``merge shards``: the 5 image shards → one file (identical overlaps).
- ``merge 5 full``: 5 full CSVs → one file: every row overlaps and nearly all conflict
  (the worst case: every conflicting pair is parsed and compared as runs).

"ours cold" uses an empty numba cache (includes compiling the kernels), "ours warm" the
cached kernels (best of --repeat). Outputs are compared byte for byte.

    python bench/selection.py                  # 300 images
    python bench/selection.py --images 60      # quicker
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path and its name would shadow the
# standard library's ``select`` (imported by subprocess); drop that entry before going on.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRIST = ["Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum", "Pisiform"]
N_SHARDS = 5


def make_data(folder: Path, n_images: int) -> dict:
    """Generate the CSVs and settings (skipped when already there); returns the paths."""
    import pandas as pd
    from tqdm import tqdm

    from core.synthetic import Generator, write_set

    models = [folder / f"model{k}.csv" for k in range(1, 6)]
    paths = {
        "models": models,
        "wrist": folder / "wrist.csv",
        "setting": folder / "select.yaml",
        "shards": [folder / f"shard{k}.csv" for k in range(N_SHARDS)],
    }
    done = folder / f"done-{n_images}"
    if done.exists():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    gen = Generator(n_images=n_images, n_models=5, seed=11)
    with tqdm(total=n_images, desc="generating CSVs", file=sys.stderr) as bar:
        write_set(gen, folder, progress=bar)
    df = pd.read_csv(models[4], dtype=str, keep_default_na=False)
    wrist = df[df["class"].isin(WRIST)].copy()
    wrist["image_name"] = "crops/" + wrist["image_name"]
    wrist.to_csv(paths["wrist"], index=False)
    df = pd.read_csv(models[0], dtype=str, keep_default_na=False)
    images = list(pd.unique(df["image_name"]))
    step = len(images) // N_SHARDS
    for k, path in enumerate(paths["shards"]):
        keep = images[k * step : (k + 1) * step + (step // 10 if k < N_SHARDS - 1 else 0)]
        df[df["image_name"].isin(keep)].to_csv(path, index=False)
    fingers = [f"finger-{i}" for i in range(1, 6)]
    rules = "\n".join([*(f"  {f}: m3" for f in fingers), "  Radius: m4", "  Ulna: m4"])
    paths["setting"].write_text(
        f"sources: {{ens: {models[0]}, hr: {models[1]}, m3: {models[2]}, m4: {models[3]}, wrist: {paths['wrist']}}}\n"
        f"groups: {{wrist: [{', '.join(WRIST)}]}}\n"
        f"select:\n  default: ens\n  wrist: wrist\n  Pisiform: hr\n{rules}\n"
    )
    done.touch()
    return paths


# --- the pandas baseline (run in a child process: ``bench/selection.py --pandas KIND …``) -------


def pandas_select(setting: str, out: str) -> None:
    """Per class, look the rows up in the chosen source; order by the first used source."""
    import pandas as pd
    import yaml

    from core.classes import DEFAULT_CLASSES

    cfg = yaml.safe_load(Path(setting).read_text())
    rules = {}
    for c in DEFAULT_CLASSES:
        group = [g for g, members in cfg["groups"].items() if c in members and g in cfg["select"]]
        rules[c] = cfg["select"].get(c) or (cfg["select"][group[0]] if group else cfg["select"]["default"])
    used = [n for n in cfg["sources"] if n in rules.values()]
    frames = {}
    for n in used:
        df = pd.read_csv(cfg["sources"][n], dtype=str, keep_default_na=False)
        df["image_name"] = df["image_name"].str.replace(r"^.*[\\/]", "", regex=True)
        frames[n] = df
    picked = pd.concat([frames[rules[c]][frames[rules[c]]["class"] == c] for c in DEFAULT_CLASSES])
    images = pd.unique(frames[used[0]]["image_name"])
    grid = pd.MultiIndex.from_product([images, DEFAULT_CLASSES], names=["image_name", "class"]).to_frame(index=False)
    result = grid.merge(picked[["image_name", "class", "rle"]], on=["image_name", "class"], how="left")
    if result["rle"].isna().any():
        raise SystemExit("missing rows")
    result.to_csv(out, index=False)


def pandas_select_rowwise(setting: str, out: str) -> None:
    """The old scripts' way: one boolean-mask lookup per (image, class), O(rows²)."""
    import pandas as pd
    import yaml

    from core.classes import DEFAULT_CLASSES

    cfg = yaml.safe_load(Path(setting).read_text())
    frames = {}
    for n, path in cfg["sources"].items():
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df["image_name"] = df["image_name"].str.replace(r"^.*[\\/]", "", regex=True)
        frames[n] = df
    rows = []
    for image in pd.unique(frames["ens"]["image_name"]):
        for c in DEFAULT_CLASSES:
            group = [g for g, members in cfg["groups"].items() if c in members and g in cfg["select"]]
            df = frames[cfg["select"].get(c) or (cfg["select"][group[0]] if group else cfg["select"]["default"])]
            rows.append((image, c, df.loc[(df["image_name"] == image) & (df["class"] == c), "rle"].iloc[0]))
    pd.DataFrame(rows, columns=["image_name", "class", "rle"]).to_csv(out, index=False)


def pandas_merge(parts: list[str], out: str) -> None:
    """Concat, keep the first file's row per (image, class), fill gaps with empty masks."""
    import pandas as pd

    from core.classes import DEFAULT_CLASSES

    frames = []
    for k, p in enumerate(parts):
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        df["image_name"] = df["image_name"].str.replace(r"^.*[\\/]", "", regex=True)
        df["part"] = k
        frames.append(df)
    rows = pd.concat(frames, ignore_index=True)
    images = pd.unique(rows["image_name"])
    chosen = rows.drop_duplicates(["image_name", "class"], keep="first")
    both = rows.merge(chosen[["image_name", "class", "rle"]], on=["image_name", "class"], suffixes=("", "_chosen"))
    conflicts = both[both["rle"] != both["rle_chosen"]][["image_name", "class"]].drop_duplicates()
    full = pd.MultiIndex.from_product([images, DEFAULT_CLASSES], names=["image_name", "class"])
    result = chosen.set_index(["image_name", "class"])["rle"].reindex(full, fill_value="").reset_index()
    result.to_csv(out, index=False)
    print(f"{len(conflicts)} conflicting rows", file=sys.stderr)


# --- timing ---------------------------------------------------------------------------------


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process; raises if it fails."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_maxrss / 1024


def scenario(name: str, ours: list[str], baseline: list[str], out_ours: Path, out_base: Path, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cold = timed(ours, env={**os.environ, "NUMBA_CACHE_DIR": cache})
    warm = min(timed(ours) for _ in range(repeat))
    base = min(timed(baseline) for _ in range(repeat))
    same = out_ours.read_bytes() == out_base.read_bytes()
    return {"name": name, "cold": cold, "warm": warm, "base": base, "same": same, "size": out_ours.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench_select")
    ap.add_argument("--repeat", type=int, default=3, help="Warm runs (best is reported).")
    ap.add_argument("--pandas", nargs="+", help=argparse.SUPPRESS)  # child mode: KIND ARGS…
    args = ap.parse_args()
    if args.pandas:
        kind, *rest = args.pandas
        if kind == "merge":
            pandas_merge(rest[:-1], rest[-1])
        else:
            (pandas_select if kind == "select" else pandas_select_rowwise)(*rest)
        return

    folder = args.data / f"n{args.images}"
    paths = make_data(folder, args.images)
    py, me, cli = sys.executable, str(Path(__file__).resolve()), str(ROOT / "cli.py")
    out = folder / "out"
    out.mkdir(exist_ok=True)
    models = [str(p) for p in paths["models"]]
    shards = [str(p) for p in paths["shards"]]
    rows = [
        scenario(
            "select (5 sources)",
            [py, cli, "select", "--setting", str(paths["setting"]), "-o", str(out / "sel.csv"), "-q"],
            [py, me, "--pandas", "select", str(paths["setting"]), str(out / "sel_pd.csv")],
            out / "sel.csv",
            out / "sel_pd.csv",
            args.repeat,
        ),
        scenario(
            f"merge {N_SHARDS} shards",
            [py, cli, "merge", *shards, "-o", str(out / "shards.csv"), "-q"],
            [py, me, "--pandas", "merge", *shards, str(out / "shards_pd.csv")],
            out / "shards.csv",
            out / "shards_pd.csv",
            args.repeat,
        ),
        scenario(
            "merge 5 full (all conflict)",
            [py, cli, "merge", *models, "-o", str(out / "full.csv"), "-q"],
            [py, me, "--pandas", "merge", *models, str(out / "full_pd.csv")],
            out / "full.csv",
            out / "full_pd.csv",
            args.repeat,
        ),
    ]
    total = sum(p.stat().st_size for p in paths["models"]) / 1e6
    print(
        f"\n{args.images} images × 29 classes at 2048², 5 model CSVs ({total:.0f} MB); "
        f"wall s (peak RSS MB), child processes, best of {args.repeat} warm runs\n"
    )
    head = f"{'scenario':<30} {'pandas':>15} {'ours warm':>15} {'ours cold':>15} {'pandas/ours':>12}  output"
    print(head)
    print("-" * len(head))
    for r in rows:
        cell = lambda t: f"{t[0]:6.2f} ({t[1]:5.0f})"
        print(
            f"{r['name']:<30} {cell(r['base']):>15} {cell(r['warm']):>15} {cell(r['cold']):>15} "
            f"{r['base'][0] / r['warm'][0]:11.2f}×  {'identical' if r['same'] else 'DIFFERENT'}"
        )
    rowwise = timed([py, me, "--pandas", "rowwise", str(paths["setting"]), str(out / "sel_rows.csv")])
    same = (out / "sel_rows.csv").read_bytes() == (out / "sel.csv").read_bytes()
    print(
        f"\nselect with per-row pandas lookups, as the old scripts did: {rowwise[0]:.2f} s ({rowwise[1]:.0f} MB), "
        f"{rowwise[0] / rows[0]['warm'][0]:.1f}× ours warm; output {'identical' if same else 'DIFFERENT'}"
    )
    rows.append({"same": same})
    if not all(r["same"] for r in rows):
        raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
