"""``report`` (an HTML report of predictions) and ``demo`` (a synthetic set run through the toolbox)."""

from __future__ import annotations

import click

from commands.common import command_line, echo_err, handle_errors, named_sources, quiet_bar, quiet_option, shape_options
from commands.help import HELP
from commands.layouts import layout_kwargs, layout_options
from commands.types import COUNT, INPUT_FILE, Command
from core.errors import plural


@click.command(cls=Command, help=HELP["demo"])
@click.argument("folder", default="demo_output", type=click.Path(file_okay=False))
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(min=1, max=100_000),
    default=4,
    show_default=True,
    help="Images to generate.",
)
@click.option(
    "--models", "n_models", type=click.IntRange(min=1, max=64), default=3, show_default=True, help="Models to simulate."
)
@click.option("--seed", type=click.IntRange(min=0, max=2**32 - 1), default=0, show_default=True)
@click.option(
    "--task",
    type=click.Choice(["hand", "kaggle"]),
    default="hand",
    show_default=True,
    help="hand: the hand-bone set; kaggle: exclusive classes 1-4 on images of mixed non-square sizes, "
    "column-major RLE in ImageId,ClassId,EncodedPixels with sizes.csv, and PNG label maps.",
)
@quiet_option
@handle_errors
def demo(folder, n_images, n_models, seed, task, quiet):
    if task == "kaggle":
        from report.demo_kaggle import run_kaggle_demo as run
    else:
        from report.demo import run_demo as run

    index = run(folder, n_images, n_models, seed, say=click.echo, echo=echo_err(quiet), progress=quiet_bar(quiet))
    click.echo(f"report: {index.resolve()}")


@click.command(cls=Command, help=HELP["report"])
@click.argument("preds", nargs=-1, type=INPUT_FILE)
@click.option(
    "--gt",
    "gt_csv",
    type=INPUT_FILE,
    default=None,
    help="Ground-truth CSV (without ground truth the report shows agreement between sources).",
)
@click.option(
    "--gt-json",
    type=click.Path(file_okay=False),
    default=None,
    help="Ground truth as a folder of per-image polygon JSON files (as evaluate reads them).",
)
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named prediction CSV.")
@click.option(
    "--images",
    "images_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the X-rays (found by file name, recursively); without it a grey canvas.",
)
@click.option(
    "--setting",
    type=INPUT_FILE,
    default=None,
    help="Settings to summarise per class (tune's output, weighted, select or soft settings).",
)
@click.option("--focus", default=None, help="Source whose errors and worst images are shown (default: best mean).")
@click.option(
    "--pages",
    type=COUNT,
    default=12,
    show_default=True,
    help="Image pages: the worst images of the focus source (or where sources disagree most).",
)
@click.option("--image", "wanted", multiple=True, metavar="NAME", help="An image that always gets a page.")
@click.option(
    "--baseline",
    multiple=True,
    metavar="NAME",
    help="Single sources the leaderboard's gain is measured against (default: every source).",
)
@click.option(
    "--missing",
    type=click.Choice(["error", "empty"]),
    default="error",
    show_default=True,
    help="A prediction row absent for a scored (image, class): error, or an empty mask.",
)
@click.option(
    "--quality",
    is_flag=True,
    help="Also a page without ground truth (quality.html): STAPLE's sensitivity per source and class "
    "(beside the Dice with --gt) and each source's QA flags.",
)
@click.option("--output", "-o", required=True, help="Report folder (new, empty, or an earlier report).")
@shape_options
@layout_options(exclusive=True)
@quiet_option
@handle_errors
def report(
    preds,
    gt_csv,
    gt_json,
    source,
    images_dir,
    setting,
    focus,
    pages,
    wanted,
    baseline,
    missing,
    quality,
    output,
    classes,
    height,
    width,
    quiet,
):
    from core.classes import parse_classes
    from report import build_report

    res = build_report(
        named_sources(preds, source),
        output,
        gt_csv=gt_csv,
        gt_json=gt_json,
        images=images_dir,
        setting=setting,
        focus=focus,
        pages=pages,
        wanted=wanted,
        baselines=baseline,
        classes=parse_classes(classes),
        height=height,
        width=width,
        missing=missing,
        quality=quality,
        command=command_line("report", preds),
        **layout_kwargs(),
        note=echo_err(quiet),
        progress=quiet_bar(quiet),
    )
    click.echo(f"report: {plural(len(res.data.images), 'image')}, {plural(len(res.pages), 'page')} → {res.index}")
    if res.quality is not None:
        click.echo(f"without ground truth: {res.quality}")
