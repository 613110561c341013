"""Atomic output: write to a temporary file in the target folder, rename when complete."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from core.errors import InputError, UsageError
from core.signals import raise_if_signalled


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """A text handle whose content replaces ``path`` only if the block ends cleanly; on any
    exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: not a regular file; expected an output file name")
    try:
        fd, tmp = _temp_file(path)
    except OSError as e:
        raise InputError(f"{path}: cannot write ({e.strerror or e.__class__.__name__})") from None
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="\n", buffering=1 << 20) as fh:
            yield fh
        raise_if_signalled()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise InputError(f"{path}: cannot write ({e.strerror or e.__class__.__name__})") from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)


def check_outputs(
    outputs: Iterable[tuple[str, str | os.PathLike | None]],
    inputs: Iterable[tuple[str, str | os.PathLike | None]],
    folders: Iterable[tuple[str, str | os.PathLike | None]] = (),
) -> None:
    """Refuse, before any work is done, an output that is not a regular file (a folder, a
    device), lies in a folder that does not exist, is the same file as an input or another
    output, or lies inside an input folder (maps, annotations: read whole).

    Arguments are ``(what, path)`` pairs; ``what`` names the role in the message (outputs:
    ``"output"``, ``"--write-setting"``; inputs: ``"an input"``, ``"the settings"``;
    folders: ``"the maps folder of source unet"``); ``None`` paths are skipped, an empty
    output path is an error."""
    taken: dict[Path, str] = {}
    for what, p in inputs:
        if p:
            taken.setdefault(Path(p).resolve(), what)
    inside = [(Path(d).resolve(), what) for what, d in folders if d]
    for what, p in outputs:
        if p is None:
            continue
        if not str(p).strip():
            raise UsageError(f"{what}: empty file name")
        path = Path(p)
        key = path.resolve()
        if key in taken:
            raise UsageError(f"{p}: {what} would overwrite {taken[key]}")
        for folder, role in inside:
            if key.is_relative_to(folder):
                raise UsageError(f"{p}: {what} would be written inside {role} {folder}")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise UsageError(f"{p}: {what}: {e.strerror or e.__class__.__name__}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{p}: {what} is a folder; give a file name")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{p}: {what} is not a regular file")
        if not key.parent.is_dir():
            raise UsageError(f"{p}: folder {path.parent} does not exist")
        _probe(path, what)
        taken[key] = f"the {what} file"


def _temp_prefix(name: str) -> str:
    # The name is cut so that a name that fits the file system also fits as a temp name; the
    # process id lets a later run tell the leftovers of a killed run from a live run's files.
    return f".{name[:100]}.{os.getpid()}."


def _temp_file(path: Path) -> tuple[int, str]:
    remove_stale_temporaries(path.parent, path.name)
    return tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)


def temporary_folder(parent: Path, name: str) -> Path:
    """A new hidden folder beside ``parent / name`` for building it whole before a rename."""
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(name), suffix=".tmp", dir=parent))


def remove_stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Remove the temporary files and folders that killed runs writing ``folder / name``
    left behind (their process is gone), and only those; returns what was removed."""
    pattern = re.compile(rf"\.{re.escape(name[:100])}\.(\d+)\.[A-Za-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _probe(path: Path, what: str) -> None:
    """Create and remove the kind of temporary file ``atomic_open`` will write, so that an
    unwritable folder or a name too long fails now rather than after the work."""
    try:
        fd, tmp = _temp_file(path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UsageError(f"{path}: {what}: cannot write there ({e.strerror or e.__class__.__name__})") from None
