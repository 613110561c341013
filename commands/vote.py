"""The voting commands: ``hard``, ``weighted`` and ``soft``."""

from __future__ import annotations

import click

from commands.common import (
    call,
    cluster_options,
    echo_cleaning,
    echo_err,
    handle_errors,
    parse_named,
    quiet_bar,
    quiet_option,
    vote_command,
    vote_options,
)
from commands.help import HELP
from commands.layouts import layout_options
from commands.types import INPUT_FILE, POSITIVE, WORKERS, Command
from core.errors import UsageError, named_among, shown


@click.command(cls=Command, help=HELP["hard"])
@vote_options
@click.option(
    "--min-votes",
    type=POSITIVE,
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


@click.command(cls=Command, help=HELP["weighted"])
@vote_options
@click.option(
    "--weights",
    default=None,
    help="Comma-separated weights, one per source, in order; replace the settings' default weights, "
    "per-class entries stay.",
)
@click.option("--min-votes", type=POSITIVE, default=None, help="As in 'hard' (ignores weights' size).")
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


@click.command(cls=Command, help=HELP["soft"])
@click.option(
    "--setting",
    required=True,
    type=INPUT_FILE,
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
    type=WORKERS,
    default=None,
    help="Images voted at once, in threads (default: num_workers of the settings).",
)
@click.option("--source", multiple=True, metavar="NAME=DIR", help="Re-point the prob_maps source NAME to DIR.")
@layout_options(exclusive=True, instances=False)
@cluster_options
@quiet_option
@handle_errors
def soft(setting, output, device, engine, workers, source, quiet):
    from ensemble import soft_vote
    from settings.loader import load_settings
    from settings.soft import SoftSettings, soft_source_names

    note = echo_err(quiet)
    cfg, _, _ = load_settings(SoftSettings, setting)
    names = soft_source_names(cfg)[len(cfg.models()) :]
    repoint = dict(parse_named(source))
    for name, folder in repoint.items():
        if name not in names:
            raise UsageError(
                f"--source {shown(name)}={shown(folder, 320)}: {shown(setting, 320)} has no prob_maps source "
                f"{named_among(name, names, 'map sources')}"
            )
    out = output if output else cfg.output_path()  # a str keeps the "/" of a folder of label maps
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
        progress=quiet_bar(quiet),
    )
    echo_cleaning(result)
    if not output:  # the settings chose the path, maybe by default: say where it went, --quiet or not
        click.echo(f"output: {out}")
