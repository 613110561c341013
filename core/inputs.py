"""Input paths: what a command reads must be a regular file.

A folder, a FIFO or a device given where a file is read would otherwise read as "no such
file" (``Path.is_file`` is false), block (a FIFO waits for a writer) or never end
(``/dev/zero``). Every reader asks ``not_regular`` first and says the kind in its message.
"""

from __future__ import annotations

import os
import stat

from core.errors import InputError, shown

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular(path: str | os.PathLike) -> str | None:
    """``not a regular file (a folder)`` (or a FIFO, a device, a socket) when ``path`` exists
    and is no regular file (links followed); ``None`` for a regular file or a path that does
    not exist (its reader says so in its own words).

    >>> not_regular("/")
    'not a regular file (a folder)'
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, unreachable, or a NUL in the name
        return None
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind})"


def is_file(path: str | os.PathLike) -> bool:
    """``Path.is_file`` that is false, not an error, for a name the system refuses (too long)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def require_file(path: str | os.PathLike, error: type[Exception] = InputError, prefix: str = "") -> None:
    """Raise ``error("[prefix]PATH: not a regular file (…)")`` when ``path`` exists and is no
    regular file; a missing path is left to the caller's own message."""
    why = not_regular(path)
    if why is not None:
        raise error(f"{prefix}{shown(path, 320)}: {why}")
