"""``cli.py demo --task kaggle``: a synthetic set of another task — exclusive classes, images of
mixed non-square sizes, column-major RLE in ``ImageId,ClassId,EncodedPixels`` with a
``sizes.csv``, the same predictions as PNG label maps — checked, voted (exclusive plurality),
scored (Dice and IoU), cleaned and reported, as the hand-bone demo does for its set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CLEANING = {"min_size": 30, "fill_holes": True}
"""The cleaning of the vote (the warm-up compiles only these steps)."""


def run_kaggle_demo(
    folder,
    n_images: int = 4,
    n_models: int = 3,
    seed: int = 0,
    *,
    say: Callable[[str], None] = print,
    echo: Callable[[str], None] | None = None,
    progress=None,
) -> Path:
    """Generate ``n_images`` images of four exclusive classes with ``n_models`` simulated models
    into ``folder`` (``core.synthetic_tasks``), then run the loop a user of such a set runs:
    check each model's CSV, hard-vote them with ``exclusive`` (and the PNG label maps, to the
    same result), evaluate, clean the vote, evaluate again and write a report. Each result
    line goes to ``say`` as it is known, notes to ``echo``. Returns the report's index page.
    The folder follows the demo's rules (``core.synthetic.demo_folder``)."""
    from core.errors import ToolError, plural
    from core.sources import bar, frame_of
    from core.synthetic import demo_folder, finish_demo_folder
    from core.synthetic_tasks import KAGGLE_COLUMNS, TaskGenerator, write_task_set
    from core.validate import check as check_file
    from core.warmup import OVERLAPS, READ, SCORE, precompile
    from ensemble import hard_vote
    from ensemble.warmup import EXCLUSIVE
    from evaluation import evaluate
    from postprocess import clean_predictions
    from postprocess.cleaner import Rules
    from postprocess.orientation import orientation_warning
    from postprocess.warmup import clean_blocks_step
    from report.build import build_report

    folder = Path(folder)
    demo_folder(folder)
    quiet = echo or (lambda msg: None)
    precompile(quiet, READ, OVERLAPS, EXCLUSIVE, clean_blocks_step([Rules(**CLEANING)]), SCORE)
    gen = TaskGenerator(n_images=n_images, n_models=n_models, seed=seed)
    with bar(progress, n_images, "generate") as b:
        paths = write_task_set(gen, folder, progress=b)
    classes = list(gen.classes)
    layout = dict(columns=KAGGLE_COLUMNS, rle_order="column", sizes=str(paths["sizes"]))
    frame = frame_of([], classes, None, None, layout=KAGGLE_COLUMNS, rle_order="column", sizes=paths["sizes"])
    models = gen.model_names
    for m in models:
        report = check_file(
            paths[m], classes, frame.height, frame.width, layout=frame.layout, sizes=frame.sizes, exclusive=True
        )
        turned = orientation_warning(report.preds)
        if not report.valid or turned is not None:
            raise ToolError(f"generated {paths[m]} is {'invalid' if not report.valid else 'turned'}")
        say(f"check {paths[m]}: valid: {report.summary()}")
    vote = folder / "vote.csv"
    hard_vote({m: paths[m] for m in models}, output=vote, classes=classes, exclusive=True, progress=progress, **layout)
    from_pngs = folder / "vote_from_pngs.csv"
    hard_vote(
        {m: paths[f"pngs/{m}"] for m in models},
        output=from_pngs,
        classes=classes,
        exclusive=True,
        columns=KAGGLE_COLUMNS,
        rle_order="column",
        progress=progress,
    )
    same = from_pngs.read_bytes() == vote.read_bytes()
    say(f"hard --exclusive of the PNG label maps (pngs/<model>/): {'the same' if same else 'NOT the same'} vote")
    clean = folder / "clean.csv"
    cleaned = clean_predictions(vote, rules=CLEANING, output=clean, classes=classes, progress=progress, **layout)
    named = {**{m: paths[m] for m in models}, "vote": vote, "clean": clean}
    scores = evaluate(
        named, paths["gt"], classes=classes, exclusive=True, output=folder / "scores.csv", progress=progress, **layout
    )
    say(f"\nmean Dice and IoU against {paths['gt']} ({plural(n_images, 'image')} × {len(classes)} exclusive classes):")
    for name, d, j in zip(named, scores.overall, scores.iou_overall, strict=True):
        say(f"  {name:<6} Dice {d:.4f}   IoU {j:.4f}")
    say("cleaning of the vote (min size 30, fill holes):")
    for line in cleaned.summary:
        say(f"  {line}")
    say(
        f"\nresults in {folder.resolve()}: gt.csv, {', '.join(f'{m}.csv' for m in models)} (column-major, "
        "ImageId,ClassId,EncodedPixels), sizes.csv, pngs/<model>/<image>.png (label maps), vote.csv, "
        "vote_from_pngs.csv, clean.csv, scores.csv, images/"
    )
    sources = [(m, str(paths[m])) for m in models] + [("vote", str(vote)), ("clean", str(clean))]
    flags = f"--columns {KAGGLE_COLUMNS} --rle-order column --sizes {paths['sizes']} --classes {','.join(classes)}"
    command = (
        f"python cli.py report --gt {paths['gt']} "
        + " ".join(f"--source {n}={p}" for n, p in sources)
        + f" --images {paths['images']} {flags} --exclusive "
        + " ".join(f"--baseline {m}" for m in models)
        + f" -o {folder / 'report'}"
    )
    res = build_report(
        sources,
        folder / "report",
        gt_csv=str(paths["gt"]),
        images=str(paths["images"]),
        baselines=models,
        pages=min(12, n_images),
        classes=classes,
        exclusive=True,
        command=command,
        **layout,
    )
    finish_demo_folder(folder)
    return res.index
