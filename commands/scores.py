"""``evaluate`` (Dice against ground truth) and ``tune`` (per-class choices from validation data)."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import (
    call,
    cluster_options,
    echo_err,
    expected_images,
    file_twice,
    handle_errors,
    image_set_options,
    named_sources,
    numbers,
    quiet_bar,
    quiet_option,
    shape_options,
)
from commands.help import HELP
from commands.layouts import layout_kwargs, layout_options
from commands.types import INPUT_FILE, Command, finite_float
from core.atomic import check_outputs
from core.errors import UsageError


@click.command(cls=Command, help=HELP["evaluate"])
@click.argument("preds", nargs=-1, type=INPUT_FILE)
@click.option("--gt", "gt_csv", type=INPUT_FILE, default=None, help="Ground-truth CSV.")
@click.option(
    "--gt-json",
    type=click.Path(file_okay=False),
    default=None,
    help="Ground truth as a folder of per-image polygon JSON files (found by image stem).",
)
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named prediction.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--output", "-o", default=None, help="Write source,class,dice rows (the scores file).")
@click.option(
    "--missing",
    type=click.Choice(["error", "empty"]),
    default="error",
    show_default=True,
    help="A prediction row absent for a ground-truth (image, class): error, or score it as empty.",
)
@shape_options
@image_set_options
@cluster_options
@layout_options(exclusive=True)
@quiet_option
@handle_errors
def evaluate(preds, gt_csv, gt_json, source, fmt, output, missing, classes, height, width, quiet):
    from core.classes import parse_classes
    from core.inputs import require_file
    from evaluation import evaluate as evaluate_predictions

    if (gt_csv is None) == (gt_json is None):
        raise UsageError("give exactly one of --gt GT.csv or --gt-json DIR")
    named = named_sources(preds, source)
    if not named:
        raise UsageError("no predictions to evaluate")
    if gt_json:
        check_outputs([("output", output)], [], [("the --gt-json folder", gt_json)])
    elif not Path(gt_csv).is_dir():  # a folder is PNG label maps; polygon files come by --gt-json
        require_file(gt_csv)
    scores = call(
        evaluate_predictions,
        named,
        gt_csv or gt_json,
        missing=missing,
        classes=parse_classes(classes),
        height=height,
        width=width,
        output=output,
        expected_images=expected_images(output),
        echo=echo_err(quiet),
        progress=quiet_bar(quiet),
    )
    iou = bool(layout_kwargs().get("exclusive"))
    click.echo({"table": scores.table, "csv": scores.csv, "json": scores.json}[fmt](iou=iou).rstrip("\n"))


@click.command(cls=Command, help=HELP["tune"])
@click.argument("inputs", nargs=-1, type=INPUT_FILE)
@click.option("--gt", "gt_csv", required=True, type=INPUT_FILE, help="Validation ground truth CSV.")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named validation prediction.")
@click.option("--output", "-o", required=True, help="Tuned settings file to write (YAML).")
@click.option(
    "--margin",
    type=finite_float(0),
    default=1e-4,
    show_default=True,
    help="Accept a choice only when it beats the hard vote's class mean Dice by more than this.",
)
@click.option("--levels", default="0,1,2", show_default=True, help="Weight levels of the grid search.")
@click.option(
    "--max-seconds",
    type=finite_float(0, min_open=True),
    default=None,
    help="Time budget of the search (seconds; the best found so far is kept).",
)
@click.option("--missing", type=click.Choice(["error", "empty"]), default="error", show_default=True)
@click.option(
    "--maps",
    "maps",
    multiple=True,
    metavar="NAME=DIR",
    help="Validation probability maps (float probabilities) for per-class soft-vote thresholds.",
)
@click.option("--soft-output", default=None, help="Soft settings to write with --maps (default: OUTPUT.soft.yaml).")
@click.option(
    "--staple",
    "staple",
    is_flag=True,
    help="Also try pooled STAPLE (region all, then disagreement) per class, scored like the votes.",
)
@click.option(
    "--area-gate",
    is_flag=True,
    help="Also try per class an area gate on the final masks (the cleaning rule min_area).",
)
@shape_options
@cluster_options
@layout_options(exclusive=False)
@quiet_option
@handle_errors
def tune(
    inputs,
    gt_csv,
    source,
    output,
    margin,
    levels,
    max_seconds,
    missing,
    maps,
    soft_output,
    staple,
    area_gate,
    classes,
    height,
    width,
    quiet,
):
    import math

    from core.classes import parse_classes
    from evaluation import tune as tune_sources
    from settings.vote import MAX_WEIGHT

    if not math.isfinite(margin) or (max_seconds is not None and math.isnan(max_seconds)):
        raise UsageError("--margin must be a finite number >= 0 and --max-seconds a number > 0")
    named = named_sources(inputs, source)
    if len(named) < 2:
        raise UsageError("tune needs at least two sources")
    named_maps = named_sources((), maps, "--maps")
    twice = file_twice([(f"--maps {n}", d) for n, d in named_maps.items()])
    if twice:  # soft would refuse the tuned soft settings
        raise UsageError(f"{twice}: give each maps folder once")
    if soft_output is None and output.strip():
        soft_output = str(Path(output).with_suffix("")) + ".soft.yaml"
    check_outputs(
        [("output", output), *([("--soft-output", soft_output)] if maps else [])],
        [("the ground truth", gt_csv), *(("an input", p) for p in named.values())],
        [(f"the --maps folder of {n}", d) for n, d in named_maps.items()],
    )
    lv = sorted(set(numbers("--levels", levels)))
    if not all(0 <= x <= MAX_WEIGHT for x in lv) or not any(lv):
        raise UsageError(f"--levels must lie in [0, {MAX_WEIGHT:g}] with at least one positive level")
    note = echo_err(quiet)
    result = call(
        tune_sources,
        named,
        gt_csv,
        maps=named_maps,
        margin=margin,
        levels=lv,
        max_seconds=max_seconds,
        missing=missing,
        staple=staple,
        area_gate=area_gate,
        classes=parse_classes(classes),
        height=height,
        width=width,
        echo=note,
        progress=quiet_bar(quiet),
    )
    result.write(output, result.header(output))
    click.echo(result.report())
    note(f"tuned settings → {output}")
    if result.soft is not None:
        result.write_soft(soft_output, result.header(soft_output, soft=True))
        click.echo("\n" + result.soft_report())
        note(f"tuned soft settings → {soft_output}")
