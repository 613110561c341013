"""``select`` (one source per class) and ``merge`` (shards and per-class files into one submission)."""

from __future__ import annotations

import click

from commands.common import (
    OUTPUT_HELP,
    echo_err,
    expected_images,
    file_twice,
    handle_errors,
    image_set_options,
    output_path,
    parse_named,
    quiet_bar,
    quiet_option,
    shape_options,
)
from commands.help import HELP
from commands.layouts import layout_kwargs, layout_options
from commands.types import INPUT_FILE, Command
from core.atomic import check_outputs
from core.errors import UsageError, named_among, plural, shown


@click.command("select", cls=Command, help=HELP["select"])
@click.option(
    "--setting",
    required=True,
    type=INPUT_FILE,
    help="YAML settings: sources, groups, select rules, output.",
)
@click.option("--output", "-o", default=None, help=f"{OUTPUT_HELP} Default: 'output:' of the settings.")
@click.option("--source", multiple=True, metavar="NAME=PATH", help="Re-point a source the settings name.")
@click.option(
    "--best-from",
    type=INPUT_FILE,
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
@layout_options(exclusive=True, overlaps=True, writes=True)
@quiet_option
@handle_errors
def select_command(setting, output, source, best_from, write_setting, classes, height, width, quiet):
    from core.classes import parse_classes
    from core.label_write import check_label_output, is_label_folder
    from fusion import select, select_rules
    from settings.loader import load_settings
    from settings.select import SelectSettings

    cfg, _, _ = load_settings(SelectSettings, setting)
    named = dict(cfg.sources)
    if not named:
        raise UsageError(f"{setting}: sources: no sources")
    for name, path in parse_named(source):
        if name not in named:
            raise UsageError(
                f"--source {shown(name)}={shown(path, 320)}: {shown(setting, 320)} names no source "
                f"{named_among(name, list(named), 'sources')}"
            )
        named[name] = path
    out = output or cfg.output
    if not out and not write_setting:
        raise UsageError("no output: give -o/--output, 'output:' in the settings, or --write-setting")
    inputs = [("the settings", setting), ("the scores file", best_from), *(("an input", p) for p in named.values())]
    if out and is_label_folder(out):
        check_label_output(out, [*inputs, ("the --write-setting file", write_setting)], "select")
        check_outputs([("--write-setting", write_setting)], inputs)
    else:
        check_outputs([("output", out), ("--write-setting", write_setting)], inputs)
    kw = dict(
        settings=setting,
        best_from=best_from,
        classes=parse_classes(classes) if classes or not cfg.classes else None,
        height=height,
        width=width,
        echo=echo_err(quiet),
    )
    if best_from:  # the choice is printed before the selection is made, then followed as a rule list
        sel = select_rules(named, **kw)
        click.echo(f"best source per class from {best_from}:\n" + "\n".join(sel.best_table()))
        kw["best_from"] = None
    if out:
        rules = sel.rules if best_from else None
        result = select(named, rules, out, progress=quiet_bar(quiet), **kw, **layout_kwargs())
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


@click.command("merge", cls=Command, help=HELP["merge"])
@click.argument("parts", nargs=-1, type=INPUT_FILE)
@click.option("--output", "-o", default=None, help=OUTPUT_HELP)
@click.option(
    "--setting",
    type=INPUT_FILE,
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
@layout_options(exclusive=True, overlaps=True, writes=True)
@quiet_option
@handle_errors
def merge_command(parts, output, setting, prefer, strict, classes, height, width, quiet):
    from core.classes import parse_classes
    from fusion import merge
    from settings.loader import load_settings
    from settings.merge import MergeSettings

    note = echo_err(quiet)
    cfg, _, _ = load_settings(MergeSettings, setting, "flags")
    files = list(parts) or cfg.parts
    if not files:
        raise UsageError("no parts: give PART.csv files or 'parts:' in the settings")
    if parts and cfg.parts:
        note(f"note: the PART files given replace the {plural(len(cfg.parts), 'part')} listed in {setting}")
    twice = file_twice([(f"part {k + 1}", p) for k, p in enumerate(files)])
    if twice:
        raise UsageError(f"{twice}: give each part once")
    out = output_path(output, cfg)
    r = merge(
        files,
        out,
        settings=setting,
        prefer=prefer,
        strict=strict,
        classes=parse_classes(classes) if classes or not cfg.classes else None,
        height=height,
        width=width,
        expected_images=expected_images(out),
        echo=note,
        progress=quiet_bar(quiet),
        **layout_kwargs(),
    )
    click.echo("\n".join(r.summary()))
