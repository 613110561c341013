"""``postprocess``: clean every mask of a prediction CSV."""

from __future__ import annotations

import click

from commands.common import (
    OUTPUT_HELP,
    call,
    cluster_options,
    echo_err,
    handle_errors,
    nothing_to_do,
    output_path,
    quiet_bar,
    quiet_option,
    shape_options,
)
from commands.help import HELP
from commands.layouts import layout_kwargs, layout_options
from commands.types import COUNT, INPUT_FILE, POSITIVE, WORKERS, Command
from core.errors import UsageError


@click.command(cls=Command, help=HELP["postprocess"])
@click.argument("input_csv", metavar="IN.csv", type=INPUT_FILE)
@click.option("--output", "-o", default=None, help=OUTPUT_HELP)
@click.option("--open", "open_r", type=COUNT, default=None, help="Opening by a disk of radius R (0: off).")
@click.option("--close", "close_r", type=COUNT, default=None, help="Closing by a disk of radius R (0: off).")
@click.option("--min-size", type=COUNT, default=None, help="Drop components with fewer than N pixels.")
@click.option(
    "--keep-largest",
    type=COUNT,
    default=None,
    help="Keep the K largest components (ties: first in raster order; 0: all).",
)
@click.option("--fill-holes/--no-fill-holes", default=None, help="Fill holes (background not reaching the border).")
@click.option(
    "--max-hole",
    type=POSITIVE,
    default=None,
    help="With --fill-holes: fill only holes of at most N pixels.",
)
@click.option(
    "--min-area",
    type=COUNT,
    default=None,
    help="Last, empty a mask left with fewer than N pixels (a whole-mask gate; 0: off).",
)
@click.option(
    "--connectivity",
    type=click.Choice(["4", "8"]),
    default=None,
    help="Object connectivity (default 8); holes use the other one.",
)
@click.option(
    "--setting",
    type=INPUT_FILE,
    default=None,
    help="YAML rules: 'default' plus per-class overrides; flags override 'default'.",
)
@click.option("--workers", type=WORKERS, default=None, help="Worker processes (default 1).")
@shape_options
@cluster_options
@layout_options(exclusive=True, writes=True)
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
    min_area,
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
    out = output_path(output, cfg)
    flags = dict(
        open=open_r,
        close=close_r,
        min_size=min_size,
        keep_largest=keep_largest,
        fill_holes=fill_holes,
        max_hole=max_hole,
        min_area=min_area,
        connectivity=int(connectivity) if connectivity else None,
    )
    cls = parse_classes(classes) if classes or not cfg.classes else None
    warn_of_orientation(input_csv, cls, height, width, cfg, setting or "flags", echo_err(quiet))
    try:
        result = call(
            clean_predictions,
            input_csv,
            settings=setting,
            cfg=cfg,
            rules=flags,
            output=out,
            classes=cls,
            height=height,
            width=width,
            workers=workers,
            echo=echo_err(quiet),
            progress=quiet_bar(quiet),
        )
    except UsageError as e:
        if e.param != "rules":
            raise
        raise nothing_to_do(flags, setting) from None
    click.echo("\n".join(result.summary if hasattr(result, "summary") else result.cleaning))


def warn_of_orientation(path, classes, height, width, cfg, where: str, echo) -> None:
    """Say, before the job cleans, when the file's runs look like those of the other RLE order
    (``postprocess.orientation``; from the head of the file: the job reads it whole)."""
    from core.errors import ToolError
    from core.sources import frame_of
    from postprocess.orientation import file_orientation_warning

    given = layout_kwargs()
    try:
        frame = frame_of(
            [path],
            classes,
            height,
            width,
            cfg,
            where,
            given.get("columns"),
            given.get("sizes"),
            given.get("instances"),
            rle_order=given.get("rle_order"),
        )
    except ToolError:  # the job says why, in its words
        return
    turned = file_orientation_warning(path, frame)
    if turned is not None:
        echo(f"warning: {turned}")
