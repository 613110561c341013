"""Other layouts against the hand-bone one, on the same pixels: ``hard``, ``evaluate`` and
``postprocess`` (keep the largest component, fill holes) through their library functions, in
one process, warm (every path run once first), each the best of ``--repeat`` runs.

    python bench/layouts.py [--images 40] [--models 5] [--height 1024 --width 1536] [--repeat 3]

The set: the project's generator (29 classes, ``--models`` models and the ground truth) on a
non-square ``height`` × ``width`` canvas, written four times:

- ``row``: ``image_name,class,rle``, row-major, one size (``--height``/``--width``): the
  hand-bone path, the baseline;
- ``column``: ``ImageId,ClassId,EncodedPixels``, column-major, one size;
- ``mixed``: row-major, each image padded (bottom and right) to its own size, given by a
  ``sizes.csv`` (up to +15 % per side);
- ``column+mixed``: both (the usual Kaggle set).

Every path computes the same masks: the votes, the cleaned masks and the scores are compared
(areas of every row, and the mean Dice) before the times are printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KAGGLE = "image=ImageId,class=ClassId,rle=EncodedPixels"
PATHS = ("row", "column", "mixed", "column+mixed")


def pad(i: int, height: int, width: int) -> tuple[int, int]:
    """Image ``i``'s own size on the mixed path."""
    return height + (i * 37) % (height * 15 // 100 + 1), width + (i * 53) % (width * 15 // 100 + 1)


def write_sets(folder: Path, n_images: int, n_models: int, height: int, width: int) -> dict[str, dict]:
    """The four layouts of one generated set; per path the job keyword arguments and the files."""
    from core.classes import DEFAULT_CLASSES
    from core.codec import decode, format_rle
    from core.csv_write import PredictionWriter
    from core.layout import Layout, runs_of
    from core.synthetic import Generator

    gen = Generator(n_images=n_images, n_models=n_models, height=height, width=width, seed=11)
    keys = ["gt", *gen.model_names]
    layouts = {"row": Layout(), "column": Layout.parse(KAGGLE, "column")}
    layouts["mixed"], layouts["column+mixed"] = layouts["row"], layouts["column"]
    sets, writers = {}, {}
    for path, layout in layouts.items():
        d = folder / path.replace("+", "_")
        d.mkdir()
        sets[path] = {"files": {k: d / f"{k}.csv" for k in keys}, "dir": d}
        writers[path] = {k: PredictionWriter(d / f"{k}.csv", DEFAULT_CLASSES, layout) for k in keys}
        for w in writers[path].values():
            w.__enter__()
    sizes = ["image_name,height,width\n"]
    for i, img in enumerate(gen.images()):
        h, w = pad(i, height, width)
        sizes.append(f"{img.name},{h},{w}\n")
        for k in keys:
            masks = img.gt if k == "gt" else img.models[k]
            dense = [decode(r, (height, width)) for r in masks]
            big = [np.pad(m, ((0, h - height), (0, w - width))) for m in dense]
            rles = {
                "row": [format_rle(r) for r in masks],
                "column": [format_rle(runs_of(m, "column")) for m in dense],
                "mixed": [format_rle(runs_of(m)) for m in big],
                "column+mixed": [format_rle(runs_of(m, "column")) for m in big],
            }
            for path in PATHS:
                writers[path][k].write_image(img.name, rles[path])
    for ws in writers.values():
        for w in ws.values():
            w.__exit__(None, None, None)
    (folder / "sizes.csv").write_text("".join(sizes))
    (folder / "sizes_kaggle.csv").write_text("".join(sizes).replace("image_name,", "ImageId,", 1))
    kwargs = {
        "row": dict(height=height, width=width),
        "column": dict(height=height, width=width, columns=KAGGLE, rle_order="column"),
        "mixed": dict(sizes=str(folder / "sizes.csv")),
        "column+mixed": dict(columns=KAGGLE, rle_order="column", sizes=str(folder / "sizes_kaggle.csv")),
    }
    for path in PATHS:
        sets[path]["kwargs"] = kwargs[path]
    return sets, gen.model_names


def jobs(s: dict, models: list[str]) -> dict:
    """The three jobs of one path, each a callable writing into the path's folder."""
    from ensemble import hard_vote
    from evaluation import evaluate
    from postprocess import clean_predictions

    f, kw, d = s["files"], s["kwargs"], s["dir"]
    sources = {m: f[m] for m in models}
    return {
        "hard": lambda: hard_vote(sources, output=d / "vote.csv", **kw),
        "evaluate": lambda: evaluate(sources, f["gt"], **kw),
        "postprocess": lambda: clean_predictions(
            f[models[0]], rules={"keep_largest": 1, "fill_holes": True}, output=d / "clean.csv", **kw
        ),
    }


def read(path: Path, kw: dict):
    """A file of one path, read with its layout."""
    from core.classes import DEFAULT_CLASSES
    from core.sources import frame_of, load

    frame = frame_of(
        [],
        DEFAULT_CLASSES,
        kw.get("height"),
        kw.get("width"),
        layout=kw.get("columns"),
        rle_order=kw.get("rle_order"),
        sizes=kw.get("sizes"),
    )
    return load(path, path.stem, frame, lambda m: None)


def areas(path: Path, kw: dict) -> np.ndarray:
    """The area of every (image, class) row of a written file, read with its layout."""
    p = read(path, kw)
    return p.areas[p.rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1536)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        sets, models = write_sets(Path(tmp), a.images, a.models, a.height, a.width)
        print(
            f"{a.images} images × 29 classes, {a.models} models and the ground truth, "
            f"{a.height}×{a.width} (mixed: up to +15 % per side); written in {time.perf_counter() - t:.1f} s"
        )
        run = {path: jobs(sets[path], models) for path in PATHS}
        results = {path: {name: job() for name, job in run[path].items()} for path in PATHS}  # warm-up
        base = sets["row"]
        for path in PATHS[1:]:
            s = sets[path]
            for out in ("vote.csv", "clean.csv"):
                same = np.array_equal(areas(s["dir"] / out, s["kwargs"]), areas(base["dir"] / out, base["kwargs"]))
                assert same, (path, out)
            assert np.array_equal(results[path]["evaluate"].per_image, results["row"]["evaluate"].per_image), path
        print("the same masks and scores on every path (areas of every row of the vote and the cleaned file)")
        runs = {}
        for path in PATHS:
            f = sets[path]["files"]
            runs[path] = sum(int(read(f[m], sets[path]["kwargs"]).run_counts.sum()) for m in models)
            print(f"  {path}: {runs[path]:,} runs in the models' files (a run down a column is not one along a row)")
        times = {path: {} for path in PATHS}
        for _ in range(a.repeat):  # interleaved: a load spike hits every path alike
            for path in PATHS:
                for name, job in run[path].items():
                    t = time.perf_counter()
                    job()
                    dt = time.perf_counter() - t
                    times[path][name] = min(times[path].get(name, dt), dt)
        print(f"\n{'job':<12}" + "".join(f"{p:>22}" for p in PATHS))
        for name in ("hard", "evaluate", "postprocess"):
            row = times["row"][name]
            cells = [f"{row:>20.3f} s"] + [
                f"{times[p][name]:>9.3f} s ({times[p][name] / row:4.2f}×)".rjust(22) for p in PATHS[1:]
            ]
            print(f"{name:<12}" + "".join(cells))
        print("\nper run (time / runs of the models' files, against row):")
        for name in ("hard", "evaluate", "postprocess"):
            row = times["row"][name] / runs["row"]
            print(f"{name:<12}" + "".join(f"{times[p][name] / runs[p] / row:>20.2f}×" for p in PATHS[1:]))


if __name__ == "__main__":
    main()
