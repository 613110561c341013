"""Atomic output: write to a temporary file in the target folder, rename when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from core.errors import InputError, UsageError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text handle whose content replaces ``path`` only if the block ends cleanly; on any
    exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected an output file name")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="\n", buffering=1 << 20) as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike | None]],
                  inputs: Iterable[tuple[str, str | os.PathLike | None]]) -> None:
    """Refuse, before any work is done, an output that is a folder, lies in a folder that
    does not exist, or is the same file as an input or another output.

    Both arguments are ``(what, path)`` pairs; ``what`` names the role in the message
    (outputs: ``"output"``, ``"--write-setting"``; inputs: ``"an input"``, ``"the
    settings"``); ``None`` paths are skipped."""
    taken: dict[Path, str] = {}
    for what, p in inputs:
        if p:
            taken.setdefault(Path(p).resolve(), what)
    for what, p in outputs:
        if not p:
            continue
        path = Path(p)
        key = path.resolve()
        if key in taken:
            raise UsageError(f"{p}: {what} would overwrite {taken[key]}")
        if path.is_dir():
            raise UsageError(f"{p}: {what} is a folder; give a file name")
        if not key.parent.is_dir():
            raise UsageError(f"{p}: folder {path.parent} does not exist")
        taken[key] = f"the {what} file"
