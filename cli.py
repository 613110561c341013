"""Command line: ``python cli.py COMMAND …`` (see ``python cli.py --help``).

The commands live in ``commands/``: each parses its flags, makes one call to the toolbox's
public functions, and prints the result; ``commands.common`` holds the shared plumbing (errors
and exit codes, common options, notes, progress). Heavy imports (numpy, pandas, numba, torch)
happen inside the commands so that ``--help`` and start-up stay fast.
"""

from __future__ import annotations

import click

from commands.check import check
from commands.clean import postprocess
from commands.fusion import merge_command, select_command
from commands.help import HELP
from commands.quality import staple
from commands.report import demo, report
from commands.scores import evaluate, tune
from commands.types import Group
from commands.vote import hard, soft, weighted


@click.group(cls=Group, help=HELP["cli"], context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    pass


for command in (
    check,
    hard,
    weighted,
    soft,
    select_command,
    merge_command,
    postprocess,
    staple,
    evaluate,
    tune,
    report,
    demo,
):
    cli.add_command(command)


if __name__ == "__main__":
    cli()
