"""``check``: validate prediction CSVs."""

from __future__ import annotations

import sys

import click

from commands.common import (
    COUNT,
    Command,
    echo_err,
    expected_images,
    handle_errors,
    image_set_options,
    quiet_option,
    shape_options,
)
from commands.help import HELP
from core.atomic import check_outputs


@click.command(cls=Command, help=HELP["check"])
@click.argument("submission", type=click.Path(dir_okay=False))
@shape_options
@click.option("--max-problems", type=COUNT, default=20, show_default=True, help="Problems listed before a count.")
@click.option(
    "--qa",
    "qa",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FLAGS.csv",
    help="Also write per-mask QA flags (fragments, missing, area) there; they do not change the exit code.",
)
@image_set_options
@quiet_option
@handle_errors
def check(submission, classes, height, width, max_problems, qa, quiet):
    from core.classes import CANVAS, parse_classes
    from core.validate import check as check_file

    if qa:
        check_outputs([("--qa", qa)], [("the submission", submission)])
    report = check_file(
        submission,
        parse_classes(classes),
        height or CANVAS,
        width or CANVAS,
        expected_images=expected_images(),
        echo=echo_err(quiet),
    )
    click.echo("\n".join(report.lines(submission, max_problems)))
    if qa and report.valid:
        from commands.quality import write_qa

        write_qa([submission], qa, parse_classes(classes), height or CANVAS, width or CANVAS, quiet)
    elif qa:
        echo_err(quiet)(f"note: --qa {qa}: not written (the file is invalid)")
    sys.exit(0 if report.valid else 1)
