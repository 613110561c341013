"""``check``: validate prediction CSVs."""

from __future__ import annotations

import sys

import click

from commands.common import (
    echo_err,
    error_line,
    exit_code,
    expected_images,
    handle_errors,
    image_set_options,
    quiet_option,
    shape_options,
    speak_flags,
)
from commands.help import HELP
from commands.layouts import layout_kwargs, layout_options
from commands.types import COUNT, INPUT_FILE, Command
from core.atomic import check_outputs
from core.errors import ToolError, printable


@click.command(cls=Command, help=HELP["check"])
@click.argument("submissions", metavar="SUBMISSION...", nargs=-1, required=True, type=INPUT_FILE)
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
@layout_options(exclusive=True)
@quiet_option
@handle_errors
def check(submissions, classes, height, width, max_problems, qa, quiet):
    from core.classes import CANVAS, parse_classes
    from core.sources import frame_of
    from core.validate import check as check_file
    from postprocess.orientation import orientation_warning

    if qa:
        check_outputs([("--qa", qa)], [(f"the submission {s}", s) for s in submissions])
    cls, expected = parse_classes(classes), expected_images()
    frame = frame_of([], cls, height, width, **_frame_args(layout_kwargs()))
    worst, valid = 0, []
    for submission in submissions:
        try:
            report = check_file(
                submission,
                cls,
                frame.height,
                frame.width,
                expected_images=expected,
                layout=frame.layout,
                sizes=frame.sizes,
                instances=frame.instances,
                exclusive=frame.exclusive,
                echo=echo_err(quiet),
            )
        except ToolError as e:
            if len(submissions) == 1:
                raise
            click.echo(error_line(e), err=True)  # the next file's report follows
            worst = max(worst, exit_code(e))
            continue
        turned = orientation_warning(report.preds)
        if turned is not None:
            report.warnings.append(turned)
        click.echo("\n".join(printable(speak_flags(line)) for line in report.lines(submission, max_problems)))
        worst = max(worst, 0 if report.valid else 1)
        if report.valid:
            valid.append(submission)
    if qa and valid:
        from commands.quality import write_qa

        write_qa(valid, qa, cls, height or CANVAS, width or CANVAS, quiet)
    elif qa:
        echo_err(quiet)(f"note: --qa {qa}: not written (no valid file)")
    sys.exit(worst)


def _frame_args(given: dict) -> dict:
    """The layout flags as ``frame_of``'s parameters."""
    args = dict(given)
    args.pop("overlaps", None)
    if "columns" in args:
        args["layout"] = args.pop("columns")
    return args
