"""Command line: ``python cli.py COMMAND …`` (see ``python cli.py --help``).

Commands are thin shells: they parse flags, make one call, and print the result; the shared
plumbing (errors and exit codes, common options, notes, progress) is in ``cli_common``. Heavy
imports (numpy, pandas, numba, torch) happen inside the commands so that ``--help`` and
start-up stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli_common import (
    _bar,
    _command_line,
    _echo_cleaning,
    _echo_err,
    _expected_images,
    _named_sources,
    _nothing_to_do,
    _numbers,
    _output,
    _parse_named,
    _twice,
    call,
    cluster_options,
    handle_errors,
    image_set_options,
    quiet_option,
    shape_options,
    vote_command,
    vote_options,
)
from cli_help import HELP
from core.atomic import check_outputs
from core.errors import UsageError, plural


@click.group(help=HELP["cli"], context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    pass


@cli.command(help=HELP["check"])
@click.argument("submission", type=click.Path(dir_okay=False))
@shape_options
@click.option(
    "--max-problems", type=click.IntRange(min=0), default=20, show_default=True, help="Problems listed before a count."
)
@image_set_options
@quiet_option
@handle_errors
def check(submission, classes, height, width, max_problems, quiet):
    from core.classes import CANVAS, parse_classes
    from core.validate import check as check_file

    report = check_file(
        submission,
        parse_classes(classes),
        height or CANVAS,
        width or CANVAS,
        expected_images=_expected_images(),
        echo=_echo_err(quiet),
    )
    click.echo("\n".join(report.lines(submission, max_problems)))
    sys.exit(0 if report.valid else 1)


@cli.command(help=HELP["hard"])
@vote_options
@click.option(
    "--min-votes",
    type=click.IntRange(min=1),
    default=None,
    help="Keep where at least K sources agree (1 = union, n = intersection).",
)
@handle_errors
def hard(
    inputs,
    source,
    setting,
    output,
    threshold,
    missing,
    workers,
    allow_duplicate,
    classes,
    height,
    width,
    quiet,
    min_votes,
):
    vote_command(
        "hard",
        inputs,
        source,
        setting,
        output,
        None,
        threshold,
        min_votes,
        missing,
        workers,
        classes,
        height,
        width,
        quiet,
        allow_duplicate,
    )


@cli.command(help=HELP["weighted"])
@vote_options
@click.option(
    "--weights",
    default=None,
    help="Comma-separated weights, one per source, in order; replace the settings' default weights, "
    "per-class entries stay.",
)
@click.option("--min-votes", type=click.IntRange(min=1), default=None, help="As in 'hard' (ignores weights' size).")
@handle_errors
def weighted(
    inputs,
    source,
    setting,
    output,
    threshold,
    missing,
    workers,
    allow_duplicate,
    classes,
    height,
    width,
    quiet,
    weights,
    min_votes,
):
    vote_command(
        "weighted",
        inputs,
        source,
        setting,
        output,
        weights,
        threshold,
        min_votes,
        missing,
        workers,
        classes,
        height,
        width,
        quiet,
        allow_duplicate,
    )


@cli.command(help=HELP["demo"])
@click.argument("folder", default="demo_output", type=click.Path(file_okay=False))
@click.option(
    "--images", "n_images", type=click.IntRange(min=1), default=4, show_default=True, help="Images to generate."
)
@click.option(
    "--models", "n_models", type=click.IntRange(min=1), default=3, show_default=True, help="Models to simulate."
)
@click.option("--seed", default=0, show_default=True)
@quiet_option
@handle_errors
def demo(folder, n_images, n_models, seed, quiet):
    from report.demo import run_demo

    index = run_demo(folder, n_images, n_models, seed, say=click.echo, echo=_echo_err(quiet), progress=_bar(quiet))
    click.echo(f"report: {index.resolve()}")


@cli.command(help=HELP["evaluate"])
@click.argument("preds", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--gt", "gt_csv", type=click.Path(dir_okay=False), default=None, help="Ground-truth CSV.")
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
@quiet_option
@handle_errors
def evaluate(preds, gt_csv, gt_json, source, fmt, output, missing, classes, height, width, quiet):
    from core.classes import parse_classes
    from evaluation import evaluate as evaluate_predictions

    if (gt_csv is None) == (gt_json is None):
        raise UsageError("give exactly one of --gt GT.csv or --gt-json DIR")
    named = _named_sources(preds, source)
    if not named:
        raise UsageError("no predictions to evaluate")
    if gt_json:
        check_outputs([("output", output)], [], [("the --gt-json folder", gt_json)])
    scores = call(
        evaluate_predictions,
        named,
        gt_csv or gt_json,
        missing=missing,
        classes=parse_classes(classes),
        height=height,
        width=width,
        output=output,
        expected_images=_expected_images(output),
        echo=_echo_err(quiet),
        progress=_bar(quiet),
    )
    click.echo({"table": scores.table, "csv": scores.csv, "json": scores.json}[fmt]().rstrip("\n"))


@cli.command(help=HELP["report"])
@click.argument("preds", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--gt",
    "gt_csv",
    type=click.Path(dir_okay=False),
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
    type=click.Path(dir_okay=False),
    default=None,
    help="Settings to summarise per class (tune's output, weighted, select or soft settings).",
)
@click.option("--focus", default=None, help="Source whose errors and worst images are shown (default: best mean).")
@click.option(
    "--pages",
    type=click.IntRange(min=0),
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
@click.option("--output", "-o", required=True, help="Report folder (new, empty, or an earlier report).")
@shape_options
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
    output,
    classes,
    height,
    width,
    quiet,
):
    from core.classes import parse_classes
    from report import build_report

    res = build_report(
        _named_sources(preds, source),
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
        command=_command_line("report", preds),
        note=_echo_err(quiet),
        progress=_bar(quiet),
    )
    click.echo(f"report: {plural(len(res.data.images), 'image')}, {plural(len(res.pages), 'page')} → {res.index}")


@cli.command(help=HELP["tune"])
@click.argument("inputs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--gt", "gt_csv", required=True, type=click.Path(dir_okay=False), help="Validation ground truth CSV.")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="A named validation prediction.")
@click.option("--output", "-o", required=True, help="Tuned settings file to write (YAML).")
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=1e-4,
    show_default=True,
    help="Accept a choice only when it beats the hard vote's class mean Dice by more than this.",
)
@click.option("--levels", default="0,1,2", show_default=True, help="Weight levels of the grid search.")
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0, min_open=True),
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
@shape_options
@cluster_options
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
    named = _named_sources(inputs, source)
    if len(named) < 2:
        raise UsageError("tune needs at least two sources")
    named_maps = _named_sources((), maps, "--maps")
    twice = _twice([(f"--maps {n}", d) for n, d in named_maps.items()])
    if twice:  # soft would refuse the tuned soft settings
        raise UsageError(f"{twice}: give each maps folder once")
    if soft_output is None and output.strip():
        soft_output = str(Path(output).with_suffix("")) + ".soft.yaml"
    check_outputs(
        [("output", output), *([("--soft-output", soft_output)] if maps else [])],
        [("the ground truth", gt_csv), *(("an input", p) for p in named.values())],
        [(f"the --maps folder of {n}", d) for n, d in named_maps.items()],
    )
    lv = sorted(set(_numbers("--levels", levels)))
    if not all(0 <= x <= MAX_WEIGHT for x in lv) or not any(lv):
        raise UsageError(f"--levels must lie in [0, {MAX_WEIGHT:g}] with at least one positive level")
    note = _echo_err(quiet)
    result = call(
        tune_sources,
        named,
        gt_csv,
        maps=named_maps,
        margin=margin,
        levels=lv,
        max_seconds=max_seconds,
        missing=missing,
        classes=parse_classes(classes),
        height=height,
        width=width,
        echo=note,
        progress=_bar(quiet),
    )
    result.write(output, result.header(output))
    click.echo(result.report())
    note(f"tuned settings → {output}")
    if result.soft is not None:
        result.write_soft(soft_output, result.header(soft_output, soft=True))
        click.echo("\n" + result.soft_report())
        note(f"tuned soft settings → {soft_output}")


@cli.command("select", help=HELP["select"])
@click.option(
    "--setting",
    required=True,
    type=click.Path(dir_okay=False),
    help="YAML settings: sources, groups, select rules, output.",
)
@click.option("--output", "-o", default=None, help="Output CSV (written atomically; default: 'output:').")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="Re-point a source the settings name.")
@click.option(
    "--best-from",
    type=click.Path(dir_okay=False),
    default=None,
    help="Scores CSV (source,class,dice): per class take the source with the highest Dice.",
)
@click.option(
    "--write-setting",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the rules used as a settings file (atomically).",
)
@shape_options
@quiet_option
@handle_errors
def select_command(setting, output, source, best_from, write_setting, classes, height, width, quiet):
    from core.classes import parse_classes
    from fusion import select, select_rules
    from settings.loader import load_settings
    from settings.select import SelectSettings

    cfg, _, _ = load_settings(SelectSettings, setting)
    named = dict(cfg.sources)
    if not named:
        raise UsageError(f"{setting}: sources: no sources")
    for name, path in _parse_named(source):
        if name not in named:
            raise UsageError(
                f"--source {name}={path}: {setting} names no source {name!r} (sources: {', '.join(named)})"
            )
        named[name] = path
    out = output or cfg.output
    if not out and not write_setting:
        raise UsageError("no output: give -o/--output, 'output:' in the settings, or --write-setting")
    check_outputs(
        [("output", out), ("--write-setting", write_setting)],
        [("the settings", setting), ("the scores file", best_from), *(("an input", p) for p in named.values())],
    )
    kw = dict(
        settings=setting,
        best_from=best_from,
        classes=parse_classes(classes) if classes or not cfg.classes else None,
        height=height,
        width=width,
        echo=_echo_err(quiet),
    )
    if best_from:  # the choice is printed before the selection is made, then followed as a rule list
        sel = select_rules(named, **kw)
        click.echo(f"best source per class from {best_from}:\n" + "\n".join(sel.best_table()))
        kw["best_from"] = None
    if out:
        result = select(named, sel.rules if best_from else None, out, progress=_bar(quiet), **kw)
        sel = result.selection
        click.echo("\n".join(result.summary(named)))
    elif not best_from:
        sel = select_rules(named, **kw)
    if write_setting:
        sel.write(
            write_setting,
            out,
            header=f"# written by 'cli.py select' from {setting}" + (f" and {best_from}" if best_from else "") + "\n",
        )
        click.echo(f"rules written to {write_setting}")


@cli.command("merge", help=HELP["merge"])
@click.argument("parts", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--output", "-o", default=None, help="Output CSV (written atomically).")
@click.option(
    "--setting",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML settings (parts, output, prefer, strict, classes, height, width); flags override it, "
    "PART files replace 'parts'.",
)
@click.option(
    "--prefer",
    type=click.Choice(["first", "last"]),
    default=None,
    help="Which file's row wins where rows differ (default first).",
)
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help="Exit 1 on a conflicting overlap or a missing (image, class) row; nothing is written.",
)
@shape_options
@image_set_options
@quiet_option
@handle_errors
def merge_command(parts, output, setting, prefer, strict, classes, height, width, quiet):
    from core.classes import parse_classes
    from fusion import merge
    from settings.loader import load_settings
    from settings.merge import MergeSettings

    note = _echo_err(quiet)
    cfg, _, _ = load_settings(MergeSettings, setting, "flags")
    files = list(parts) or cfg.parts
    if not files:
        raise UsageError("no parts: give PART.csv files or 'parts:' in the settings")
    if parts and cfg.parts:
        note(f"note: the PART files given replace the {plural(len(cfg.parts), 'part')} listed in {setting}")
    twice = _twice([(f"part {k + 1}", p) for k, p in enumerate(files)])
    if twice:
        raise UsageError(f"{twice}: give each part once")
    out = _output(output, cfg)
    r = merge(
        files,
        out,
        settings=setting,
        prefer=prefer,
        strict=strict,
        classes=parse_classes(classes) if classes or not cfg.classes else None,
        height=height,
        width=width,
        expected_images=_expected_images(out),
        echo=note,
        progress=_bar(quiet),
    )
    click.echo("\n".join(r.summary()))


@cli.command(help=HELP["soft"])
@click.option(
    "--setting",
    required=True,
    type=click.Path(dir_okay=False),
    help="Soft-voting settings (the original soft_voting_setting.yaml works as is).",
)
@click.option(
    "--output",
    "-o",
    default=None,
    help="Output CSV, written atomically (default: save_dir/output_name of the settings, which default "
    "to . and output.csv: ./output.csv in the current folder). Without -o the path is printed.",
)
@click.option("--device", default=None, help="Device for models: cpu, cuda, cuda:N (default: CUDA when available).")
@click.option(
    "--engine",
    type=click.Choice(["auto", "cpu", "device"]),
    default=None,
    help="Vote with numba kernels on the CPU (cpu) or with torch on --device (device); "
    "auto (default): device unless the device is the CPU.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Images voted at once, in threads (default: num_workers of the settings).",
)
@click.option("--source", multiple=True, metavar="NAME=DIR", help="Re-point the prob_maps source NAME to DIR.")
@cluster_options
@quiet_option
@handle_errors
def soft(setting, output, device, engine, workers, source, quiet):
    from ensemble import soft_vote
    from settings.loader import load_settings
    from settings.soft import SoftSettings, soft_source_names

    note = _echo_err(quiet)
    cfg, _, _ = load_settings(SoftSettings, setting)
    names = soft_source_names(cfg)[len(cfg.models()) :]
    repoint = dict(_parse_named(source))
    for name, folder in repoint.items():
        if name not in names:
            raise UsageError(
                f"--source {name}={folder}: {setting} has no prob_maps source {name!r} "
                f"(map sources: {', '.join(names) or 'none'})"
            )
    out = Path(output) if output else cfg.output_path()
    if not output and not {"save_dir", "output_name"} & cfg.model_fields_set:
        note(f"note: no -o and no save_dir/output_name in {setting}: writing {out} in the current folder")
    if not output:
        out.parent.mkdir(parents=True, exist_ok=True)
    result = call(
        soft_vote,
        setting,
        cfg=cfg,
        output=out,
        maps=repoint,
        device=device,
        engine=engine,
        workers=workers,
        echo=note,
        progress=_bar(quiet),
    )
    _echo_cleaning(result)
    if not output:  # the settings chose the path, maybe by default: say where it went, --quiet or not
        click.echo(f"output: {out}")


@cli.command(help=HELP["postprocess"])
@click.argument("input_csv", metavar="IN.csv", type=click.Path(dir_okay=False))
@click.option("--output", "-o", default=None, help="Output CSV (written atomically).")
@click.option(
    "--open", "open_r", type=click.IntRange(min=0), default=None, help="Opening by a disk of radius R (0: off)."
)
@click.option(
    "--close", "close_r", type=click.IntRange(min=0), default=None, help="Closing by a disk of radius R (0: off)."
)
@click.option("--min-size", type=click.IntRange(min=0), default=None, help="Drop components with fewer than N pixels.")
@click.option(
    "--keep-largest",
    type=click.IntRange(min=0),
    default=None,
    help="Keep the K largest components (ties: first in raster order; 0: all).",
)
@click.option("--fill-holes/--no-fill-holes", default=None, help="Fill holes (background not reaching the border).")
@click.option(
    "--max-hole",
    type=click.IntRange(min=1),
    default=None,
    help="With --fill-holes: fill only holes of at most N pixels.",
)
@click.option(
    "--connectivity",
    type=click.Choice(["4", "8"]),
    default=None,
    help="Object connectivity (default 8); holes use the other one.",
)
@click.option(
    "--setting",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML rules: 'default' plus per-class overrides; flags override 'default'.",
)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default 1).")
@shape_options
@cluster_options
@quiet_option
@handle_errors
def postprocess(
    input_csv,
    output,
    open_r,
    close_r,
    min_size,
    keep_largest,
    fill_holes,
    max_hole,
    connectivity,
    setting,
    workers,
    classes,
    height,
    width,
    quiet,
):
    from core.classes import parse_classes
    from postprocess import clean_predictions
    from settings.loader import load_yaml, parse_model
    from settings.postprocess import PostprocessFile

    data = load_yaml(setting) if setting else {}
    cfg = parse_model(PostprocessFile, data if "postprocess" in data else {"postprocess": data}, setting or "flags")
    out = _output(output, cfg)
    flags = dict(
        open=open_r,
        close=close_r,
        min_size=min_size,
        keep_largest=keep_largest,
        fill_holes=fill_holes,
        max_hole=max_hole,
        connectivity=int(connectivity) if connectivity else None,
    )
    try:
        result = call(
            clean_predictions,
            input_csv,
            settings=setting,
            cfg=cfg,
            rules=flags,
            output=out,
            classes=parse_classes(classes) if classes or not cfg.classes else None,
            height=height,
            width=width,
            workers=workers,
            echo=_echo_err(quiet),
            progress=_bar(quiet),
        )
    except UsageError as e:
        if e.param != "rules":
            raise
        raise _nothing_to_do(flags, setting) from None
    click.echo("\n".join(result.summary if hasattr(result, "summary") else result.cleaning))


if __name__ == "__main__":
    cli()
