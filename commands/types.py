"""The command classes and parameter types of the command line: usage errors said in one line,
numbers range-checked before any work (``core.limits``), input files left to the readers to
judge (so that what is wrong with one is said in one line)."""

from __future__ import annotations

import click

from core.errors import shown
from core.limits import MAX_COUNT, MAX_SIDE, MAX_WORKERS


class OneLineUsageError(click.ClickException):
    """A flag click refused (an unknown option, a value out of its range), said in one line."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Command(click.Command):
    """A command whose usage errors are one line on stderr, like every other error."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            raise OneLineUsageError(f"{info_name}: {shown(e.format_message(), 300)}") from None


class Group(click.Group):
    """The command group, with ``Command``'s one-line usage errors."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            raise OneLineUsageError(shown(e.format_message(), 300)) from None

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            raise OneLineUsageError(shown(e.format_message(), 300)) from None


COUNT = click.IntRange(min=0, max=MAX_COUNT)
"""A count a flag gives: pixels, components, a radius."""
POSITIVE = click.IntRange(min=1, max=MAX_COUNT)
"""A count of at least one."""
SIDE = click.IntRange(min=1, max=MAX_SIDE)
"""An image side."""
WORKERS = click.IntRange(min=1, max=MAX_WORKERS)
"""Worker processes or threads."""


def finite_float(
    minimum: float | None = None, min_open: bool = False, maximum: float | None = None, max_open: bool = False
) -> click.ParamType:
    """A float flag that must be a finite number (not nan or inf), at least ``minimum`` and at
    most ``maximum`` (the ends excluded where ``min_open``/``max_open``)."""

    class Finite(click.FloatRange):
        def convert(self, value, param, ctx):
            v = super().convert(value, param, ctx)
            if v != v or v in (float("inf"), float("-inf")):
                self.fail(f"{value} is not a finite number", param, ctx)
            return v

    return Finite(min=minimum, min_open=min_open, max=maximum, max_open=max_open)


class InputFile(click.Path):
    """A file the command reads, shown as ``FILE`` in the help. Not checked here: the reader
    says in one line what is wrong with it (no such file, not a regular file: a folder, a FIFO,
    a device), where click would print a usage block for a folder and nothing for a FIFO."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "file"


INPUT_FILE = InputFile()
