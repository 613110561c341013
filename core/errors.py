"""Errors a user can cause, and helpers for their messages.

Every class is a ``ValueError``, the builtin family callers already catch for bad values.
An unreadable input is an ``InputError`` too, not an ``OSError``: the library wraps its own
writes in ``except OSError`` (atomic output), which must not swallow an input's error.
Errors of the operating system itself (a full disk, a refused write) stay ``OSError``.
Exit codes are the command line's business (``commands.common.exit_code``).
"""

from __future__ import annotations

from collections.abc import Sequence


class ToolError(ValueError):
    """A user-facing error: one line, no traceback."""


class InputError(ToolError):
    """An input that cannot be read or is malformed; the message names the file (or frame),
    line, image and class."""


class UsageError(ToolError):
    """A bad parameter or setting; the message names it. ``param``, when set, is the
    parameter the message starts with, which the command line may name by its flag."""

    def __init__(self, message: str, param: str | None = None):
        if param:  # a check that names its input, wrapped by one that names it too: say it once
            twice = f"{param}: {param}:"
            while message.startswith(twice):
                message = message[len(param) + 2 :]
        super().__init__(message)
        self.param = param

    def __reduce__(self):
        return (self.__class__, (str(self), self.param))


class DataError(ToolError):
    """Valid inputs whose contents fail a check (a missing row, differing image sets)."""


NAME_LIMIT = 80


def shown(name: object, limit: int = NAME_LIMIT) -> str:
    """``name`` as a message shows it: control characters escaped (``\\x00``, ``\\n``) and
    cut to ``limit`` characters with an ellipsis, so that a message stays one short line.

    >>> shown("a\\x00b")
    'a\\\\x00b'
    >>> len(shown("x" * 1000))
    80
    """
    text = printable(str(name))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str, keep: str = "") -> str:
    """``text`` with its control characters (but those in ``keep``) escaped as ``ascii`` writes
    them: a NUL or a line end in a name never reaches a terminal raw or breaks a line.

    >>> printable("a\\x00b\\nc", keep="\\n")
    'a\\\\x00b\\nc'
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else ascii(ch)[1:-1] for ch in text)


def quoted(name: object, limit: int = NAME_LIMIT) -> str:
    """``'name'``: ``shown(name)`` in quotes (double quotes when it holds a single one), as
    ``repr`` quotes a plain name.

    >>> print(quoted("Radius"), quoted("it's"), len(quoted("x" * 100)))
    'Radius' "it's" 82
    """
    text = shown(name, limit)
    return f'"{text}"' if "'" in text and '"' not in text else f"'{text}'"


_SEPARATORS = frozenset(" ,:;()='\"")


def as_name(name: object, reserved: Sequence[str] = ()) -> str:
    """A name as a summary or a table shows it: ``shown``, and quoted where it could be read as
    something else: a number, an empty name, one holding spaces or separators, or one of the
    table's own words (``reserved``: ``total``, ``mean``).

    >>> as_name("Radius"), as_name("2"), as_name("total", ["total"]), as_name("a b")
    ('Radius', "'2'", "'total'", "'a b'")
    """
    text = shown(name)
    if not text or text in reserved or _SEPARATORS.intersection(text):
        return quoted(name)
    try:
        float(text)
    except ValueError:
        return text
    return quoted(name)


def where(path, line=None, image=None, cls=None) -> str:
    """``file:line: image X, class Y`` prefix for error messages."""
    head = shown(path, 4 * NAME_LIMIT) + (f":{line}" if line is not None else "")
    parts = []
    if image is not None:
        parts.append(f"image {shown(image)}")
    if cls is not None:
        parts.append(f"class {shown(cls)}")
    return head + (": " + ", ".join(parts) if parts else "")


def listing(names: Sequence[str], count: int = 6) -> str:
    """``a, b, c`` or, past ``count`` names, ``a, b, … (12 in all)``: names in a message, each
    as ``shown`` says it."""
    names = list(names)
    said = ", ".join(shown(n) for n in names[:count])
    return said if len(names) <= count else f"{said}, … ({len(names):,} in all)"


def plural(n: int, noun: str) -> str:
    """``1 image``, ``2 images``, ``1 class``, ``3 classes``, with thousands separators."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def named_among(name: str, choices: Sequence[str], kind: str) -> str:
    """``'unte' (did you mean 'unet'? sources: unet, hrnet)``: a name that is not among
    ``choices`` (``kind``: what they are, plural), with the likely one and the list.

    >>> named_among("hrnt", ["unet", "hrnet"], "sources")
    "'hrnt' (did you mean 'hrnet'? sources: unet, hrnet)"
    """
    return f"{quoted(name)} ({did_you_mean(name, choices)}{kind}: {listing(choices) or 'none'})"


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """``did you mean 'unet'? `` when ``suggest`` finds the choice ``name`` likely misspells,
    else ``""``: the start of a parenthesis in a message."""
    guess = suggest(name, choices)
    return f"did you mean {quoted(guess)}? " if guess is not None else ""


def suggest(name: str, choices: Sequence[str]) -> str | None:
    """The choice ``name`` most likely misspells: same letters in another case, else the
    closest by ``difflib`` (ratio ≥ 0.75), else ``None``."""
    import difflib

    folded = {c.casefold(): c for c in choices}
    if name.casefold() in folded:
        return folded[name.casefold()]
    close = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None
