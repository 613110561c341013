"""Tuning on a validation split, applied to a test split of the same models.

    python bench/tune.py [--val 100] [--test 100] [--models 5]

Splits: ``core.synthetic.Generator(seed=42)`` — model qualities depend on the seed only —
with images 0…val-1 for validation and 100000… for test: the same five models (each the
planted best on different classes), different hands. Tunes on validation (`cli.py tune`),
applies the settings to the test files (`cli.py weighted --setting … --source NAME=…`), and
scores on test: each model, the hard vote, the tuned combination, and the oracle that picks
the best model per class on test itself. With the maps of three models (512², 512², 256²):
the soft vote at 0.5 and with per-class thresholds tuned on validation (`tune --maps`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.classes import DEFAULT_CLASSES  # noqa: E402
from core.predictions import read_predictions  # noqa: E402
from core.synthetic import Generator, write_set  # noqa: E402
from evaluation.scores import score as evaluate  # noqa: E402

MAP_SIZES = {"model1": 512, "model2": 512, "model3": 256}


def split(folder: Path, n: int, models: int, start: int) -> Generator:
    gen = Generator(n_images=n, n_models=models, seed=42, start=start)
    marker = folder / f".done-{n}-{models}-{start}"
    if not marker.exists():
        print(
            f"generating {folder.name}: {models} models × {n} images (and maps of {', '.join(MAP_SIZES)}) …", flush=True
        )
        write_set(gen, folder, maps=MAP_SIZES)
        marker.write_text("ok")
    return gen


def cli(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "cli.py", *map(str, args), "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--val", type=int, default=100)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--data", default=str(ROOT / "bench" / "out" / "tune"))
    args = ap.parse_args()
    root = Path(args.data)
    val, test = root / "val", root / "test"
    gen = split(val, args.val, args.models, 0)
    split(test, args.test, args.models, 100000)
    names = gen.model_names
    tuned = root / "tuned.yaml"
    t_tune = cli(
        "tune",
        "--gt",
        val / "gt.csv",
        *[f"--source={m}={val / m}.csv" for m in names],
        "-o",
        tuned,
        *[f"--maps={m}={val / 'maps' / m}" for m in MAP_SIZES],
    )
    cli("weighted", "--setting", tuned, *[f"--source={m}={test / m}.csv" for m in names], "-o", test / "tuned.csv")
    cli("hard", *[test / f"{m}.csv" for m in names], "-o", test / "hard.csv")
    soft = root / "tuned.soft.yaml"
    test_maps = [f"--source={m}={test / 'maps' / m}" for m in MAP_SIZES]
    cli("soft", "--setting", soft, *test_maps, "-o", test / "soft_tuned.csv")
    plain = yaml.safe_load(soft.read_text()) | {"threshold": 0.5}
    (root / "plain.soft.yaml").write_text(yaml.safe_dump(plain))
    cli("soft", "--setting", root / "plain.soft.yaml", *test_maps, "-o", test / "soft_plain.csv")

    gt = read_predictions(test / "gt.csv", DEFAULT_CLASSES)
    preds = [read_predictions(test / f"{m}.csv", DEFAULT_CLASSES) for m in names]
    extra = [
        read_predictions(test / f"{k}.csv", DEFAULT_CLASSES) for k in ("hard", "tuned", "soft_plain", "soft_tuned")
    ]
    s = evaluate(gt, preds + extra, names + ["hard vote", "tuned", "soft 0.5", "soft tuned"])
    pc = s.per_class
    oracle = pc[: len(names)].max(0).mean()
    best_single = int(np.argmax(s.overall[: len(names)]))
    print(
        f"\ntest split: {args.test} images × 29 classes, 2048²; tuned on {args.val} validation images "
        f"in {t_tune:.1f} s (whole `tune` process)"
    )
    print(f"{'method (scored on test)':<44}{'mean Dice':>10}")
    for k, name in enumerate(names):
        print(f"{'single model ' + name:<44}{s.overall[k]:>10.4f}")
    print(f"{'best single model (' + names[best_single] + ')':<44}{s.overall[best_single]:>10.4f}")
    print(f"{'hard vote of all models':<44}{s.overall[len(names)]:>10.4f}")
    print(f"{'tuned on validation, applied to test':<44}{s.overall[len(names) + 1]:>10.4f}")
    print(f"{'oracle: best model per class chosen on test':<44}{oracle:>10.4f}")
    print(f"{'soft vote of three models (maps), at 0.5':<44}{s.overall[len(names) + 2]:>10.4f}")
    print(f"{'soft vote, per-class thresholds tuned on val':<44}{s.overall[len(names) + 3]:>10.4f}")
    wins = int((pc[len(names) + 1] > pc[len(names)] + 1e-9).sum())
    print(f"tuned beats the hard vote on {wins}/29 classes")


if __name__ == "__main__":
    main()
