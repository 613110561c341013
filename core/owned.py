"""Folders the toolbox writes whole (a report, a demo set): a manifest of what it wrote, so
that a rerun replaces exactly those files and never a file it did not write.

The manifest is a JSON file inside the folder, listing every file written with its size and
SHA-256. A folder may be reused only while it holds nothing else: a file the manifest does not
list, or one changed since, is the user's, and the folder is refused with its name.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from core.errors import UsageError, shown

_VERSION = 1


def owned_files(folder: str | os.PathLike, marker: str, command: str) -> list[Path]:
    """The files an earlier ``command`` run wrote into ``folder``, read from its manifest
    ``marker``, after checking that the folder holds nothing else (``[]`` for a new or empty
    folder). A file that is not listed, or is listed but changed, is a ``UsageError`` naming
    it; so is a non-empty folder without a manifest."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{shown(folder)}: exists and is not a folder; give a folder")
    if not folder.is_dir():
        return []
    present = sorted(p for p in folder.rglob("*") if not p.is_dir() or not any(p.iterdir()))
    if not present:
        return []
    listed = _read_manifest(folder / marker)
    if listed is None:
        first = present[0].relative_to(folder)
        raise UsageError(
            f"{shown(folder)}: folder holds {shown(first)}, which `{command}` did not write; give a new or empty folder"
        )
    for p in present:
        rel = p.relative_to(folder).as_posix()
        if p.name == marker and p.parent == folder:
            continue
        if rel not in listed:
            raise UsageError(
                f"{shown(folder)}: folder holds {shown(rel)}, which `{command}` did not write; move it or give "
                "another folder"
            )
        if not p.is_file() or _digest(p) != listed[rel]:
            raise UsageError(
                f"{shown(folder)}: {shown(rel)} was changed after `{command}` wrote it; move it or give another folder"
            )
    return [folder / rel for rel in listed if (folder / rel).is_file()] + [folder / marker]


def write_manifest(folder: str | os.PathLike, marker: str, command: str) -> None:
    """Record every file now under ``folder`` (except the manifest) as written by ``command``."""
    folder = Path(folder)
    files = {
        p.relative_to(folder).as_posix(): _digest(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not (p.name == marker and p.parent == folder)
    }
    text = json.dumps({"written_by": command, "version": _VERSION, "files": files}, indent=0)
    (folder / marker).write_text(text + "\n", encoding="utf-8")


def remove_owned(folder: str | os.PathLike, files: list[Path]) -> None:
    """Delete ``files`` (as ``owned_files`` returned them) and the folders they leave empty
    under ``folder``; nothing else."""
    folder = Path(folder)
    parents = set()
    for p in files:
        p.unlink(missing_ok=True)
        parents.update(q for q in p.parents if q != folder and q.is_relative_to(folder))
    for d in sorted(parents, key=lambda q: len(q.parts), reverse=True):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _read_manifest(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return None
    return files


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"{path.stat().st_size}:{h.hexdigest()}"
