"""The flags of other tasks' layouts, shared by the commands that read or write predictions:
``--columns``, ``--rle-order``, ``--sizes``, ``--instances``, ``--exclusive`` (and
``--overlaps`` where classes of several sources meet, ``--write-instances`` where a command
writes predictions). Kept in the click context, like the
cluster options, so that the commands' signatures stay as they are; ``layout_kwargs`` gives
them back as the jobs' parameters, and flags replace the settings' keys of the same names."""

from __future__ import annotations

from typing import Any

import click

from commands.types import INPUT_FILE


def _keep(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"layout.{param.name}"] = value
    return value


def layout_options(exclusive: bool = True, overlaps: bool = False, writes: bool = False, instances: bool = True):
    """Decorate a command with the layout flags (``exclusive``: also ``--exclusive``;
    ``overlaps``: also ``--overlaps``; ``writes``: also ``--write-instances``; ``instances``:
    also ``--instances``, for commands that read CSVs)."""

    def decorate(f):
        if writes:
            f = click.option(
                "--write-instances",
                "write_instances",
                is_flag=True,
                default=None,
                expose_value=False,
                callback=_keep,
                help="Write one row per connected component (8-connected) of each mask, an empty mask as one "
                "row with an empty RLE (read back with --instances union); -o must be a CSV.",
            )(f)
        if overlaps:
            f = click.option(
                "--overlaps",
                type=click.Choice(["error", "first"]),
                default=None,
                expose_value=False,
                callback=_keep,
                help="With --exclusive: two classes marking one pixel is an error (default), or the class "
                "listed first keeps it.",
            )(f)
        if exclusive:
            f = click.option(
                "--exclusive",
                is_flag=True,
                default=None,
                expose_value=False,
                callback=_keep,
                help="The classes are mutually exclusive (each pixel at most one class)"
                + ("; -o DIR/ writes label maps." if writes else "."),
            )(f)
        if instances:
            f = click.option(
                "--instances",
                type=click.Choice(["error", "union"]),
                default=None,
                expose_value=False,
                callback=_keep,
                help="Several rows of one image and class (one per object): an error (default), or read as one mask.",
            )(f)
        f = click.option(
            "--sizes",
            type=INPUT_FILE,
            default=None,
            metavar="FILE|DIR",
            expose_value=False,
            callback=_keep,
            help="Each image's size: a CSV with the image column and height,width, or a folder of the images "
            "(sizes from their headers). Default: --height × --width for every image.",
        )(f)
        f = click.option(
            "--rle-order",
            "rle_order",
            type=click.Choice(["row", "column"]),
            default=None,
            expose_value=False,
            callback=_keep,
            help="RLE pixel order: row (left to right, then down; default) or column (top to bottom, "
            "then right; Kaggle's usual).",
        )(f)
        f = click.option(
            "--columns",
            default=None,
            metavar="image=NAME,class=NAME,rle=NAME",
            expose_value=False,
            callback=_keep,
            help="The CSVs' column names (default image_name,class,rle); without class= a file holds one class.",
        )(f)
        return f

    return decorate


def layout_kwargs() -> dict[str, Any]:
    """The layout flags given, as the jobs' keyword arguments (``None`` values left out)."""
    meta = click.get_current_context().meta
    keys = ("columns", "rle_order", "sizes", "instances", "exclusive", "overlaps", "write_instances")
    return {k: meta[f"layout.{k}"] for k in keys if meta.get(f"layout.{k}") is not None}
