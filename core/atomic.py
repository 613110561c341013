"""Atomic output: write to a temporary file in the target folder, rename when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from core.errors import InputError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text handle whose content replaces ``path`` only if the block ends cleanly; on any
    exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
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
