"""``cli.py demo``: a synthetic set, checked, voted (hard and soft), scored and reported
(``run_demo``), and the report it writes of its own results (``demo_report``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CLEANING = {"keep_largest": 1, "fill_holes": True}
"""The soft vote's inline cleaning (the warm-up compiles only these steps)."""


def run_demo(
    folder,
    n_images: int = 4,
    n_models: int = 3,
    seed: int = 0,
    *,
    say: Callable[[str], None] = print,
    echo: Callable[[str], None] | None = None,
    progress=None,
) -> Path:
    """Generate ``n_images`` synthetic hand X-rays with ``n_models`` simulated models into
    ``folder``, check each model's CSV, hard- and soft-vote them, score everything against
    the ground truth and write a report; each result line goes to ``say`` as it is known,
    notes to ``echo``. Returns the report's index page."""
    from core.classes import DEFAULT_CLASSES
    from core.errors import ToolError, plural
    from core.sources import bar
    from core.synthetic import Generator, demo_folder, finish_demo_folder, write_set
    from core.validate import check as check_file
    from core.warmup import READ, SCORE, precompile
    from ensemble import hard_vote, soft_vote
    from ensemble.warmup import SOFT, VOTE
    from evaluation import evaluate as evaluate_predictions
    from postprocess.cleaner import Rules
    from postprocess.warmup import clean_step
    from settings.loader import write_yaml

    demo_folder(Path(folder))
    precompile(echo or (lambda msg: None), READ, VOTE, SOFT, clean_step([Rules(**CLEANING)]), SCORE)
    gen = Generator(n_images=n_images, n_models=n_models, seed=seed)
    with bar(progress, n_images, "generate") as b:
        paths = write_set(gen, folder, maps={m: 512 for m in gen.model_names}, progress=b)
    for m in gen.model_names:
        report = check_file(paths[m])
        if not report.valid:
            raise ToolError(f"generated {paths[m]} is invalid: {report.problems[0]}")
        say(f"check {paths[m]}: valid: {report.summary()}")
    vote_path = Path(folder) / "hard_vote.csv"
    hard_vote({m: paths[m] for m in gen.model_names}, output=vote_path, progress=progress)
    soft_setting = Path(folder) / "soft_setting.yaml"
    write_yaml(
        soft_setting,
        {
            "prob_maps": [{"path": str(paths[f"maps/{m}"])} for m in gen.model_names],
            "threshold": 0.5,
            "postprocess": {"default": CLEANING},
            "save_dir": str(folder),
            "output_name": "soft_vote.csv",
        },
        "# written by `cli.py demo`: python cli.py soft --setting " + str(soft_setting) + "\n",
    )
    soft_path = Path(folder) / "soft_vote.csv"
    soft_vote(soft_setting, output=soft_path, progress=progress)
    named = {**{m: paths[m] for m in gen.model_names}, "hard vote": vote_path, "soft vote": soft_path}
    scores = evaluate_predictions(named, paths["gt"])
    say(f"\nmean Dice against {paths['gt']} ({plural(n_images, 'image')} × 29 classes):")
    for name, d in zip(named, scores.per_class, strict=True):
        say(f"  {name:<10} {d.mean():.4f}   worst class {DEFAULT_CLASSES[int(d.argmin())]} {d.min():.4f}")
    say(
        f"\nresults in {Path(folder).resolve()}: gt.csv, {', '.join(f'{m}.csv' for m in gen.model_names)}, "
        f"hard_vote.csv, soft_vote.csv (from soft_setting.yaml), maps/<model>/<image>.npz, images/"
    )
    index = demo_report(gen, Path(folder), paths, vote_path, soft_path, soft_setting)
    finish_demo_folder(Path(folder))
    return index


def demo_report(gen, folder: Path, paths: dict, hard: Path, soft: Path, setting: Path) -> Path:
    """Write the demo's stand-in X-rays to ``folder/images`` and a report of every model and
    both votes to ``folder/report``; returns the index page."""
    from PIL import Image

    from core.synthetic import xray
    from report.build import build_report

    images = folder / "images"
    images.mkdir(exist_ok=True)
    for img in gen.images():
        Image.fromarray(xray(img, gen.height, gen.width), "L").save(images / img.name, compress_level=1)
    sources = [(m, str(paths[m])) for m in gen.model_names] + [("hard_vote", str(hard)), ("soft_vote", str(soft))]
    command = (
        f"python cli.py report --gt {paths['gt']} "
        + " ".join(f"--source {n}={p}" for n, p in sources)
        + f" --images {images} --setting {setting} "
        + " ".join(f"--baseline {m}" for m in gen.model_names)
        + f" -o {folder / 'report'}"
    )
    res = build_report(
        sources,
        folder / "report",
        gt_csv=str(paths["gt"]),
        images=str(images),
        setting=str(setting),
        baselines=gen.model_names,
        pages=min(12, gen.n_images),
        command=command,
    )
    return res.index
