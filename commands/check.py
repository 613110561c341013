"""``check``: validate prediction CSVs."""

from __future__ import annotations

import sys

import click

from commands.common import (
    INPUT_FILE,
    echo_err,
    expected_images,
    handle_errors,
    image_set_options,
    quiet_option,
    shape_options,
)
from commands.help import HELP


@click.command(help=HELP["check"])
@click.argument("submission", type=INPUT_FILE)
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
        expected_images=expected_images(),
        echo=echo_err(quiet),
    )
    click.echo("\n".join(report.lines(submission, max_problems)))
    sys.exit(0 if report.valid else 1)
