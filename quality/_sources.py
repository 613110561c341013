"""Prediction sources for ``quality``: read, name and align them; write text atomically.

Only ``core``'s stable names are used (``Predictions``, the errors, the class defaults), so
this package depends on nothing above the operations layer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np

from core import Predictions
from core.classes import CANVAS, DEFAULT_CLASSES
from core.errors import DataError, InputError, UsageError, plural

Source = Union[str, os.PathLike, Predictions]
"""A prediction CSV path or a ``Predictions`` already read."""


def is_path(source: object) -> bool:
    """Whether ``source`` is a path (``str`` or ``os.PathLike``)."""
    return isinstance(source, (str, os.PathLike))


def source_names(sources: Sequence[Source], names: Sequence[str] | None) -> list[str]:
    """``names`` checked (one per source, unique, non-empty), or names made from the file stems
    (``Predictions`` by the stem of their ``path``), made unique with ``-2``, ``-3`` …"""
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(sources):
            raise UsageError(f"names: {len(names)} names for {plural(len(sources), 'source')}", param="names")
        if any(not n for n in names) or len(set(names)) != len(names):
            raise UsageError("names: names must be non-empty and unique", param="names")
        return names
    out: list[str] = []
    for k, s in enumerate(sources):
        base = Path(s if is_path(s) else s.path).stem or f"source{k + 1}"
        name, n = base, 2
        while name in out:
            name, n = f"{base}-{n}", n + 1
        out.append(name)
    return out


def split_sources(
    sources: Mapping[str, Source] | Sequence[Source], names: Sequence[str] | None
) -> tuple[list[Source], list[str]]:
    """Sources and their names from a mapping (name → source) or a sequence (``names`` or stems)."""
    if isinstance(sources, Mapping):
        if names is not None:
            raise UsageError("names: give names or a mapping of names to sources, not both", param="names")
        return list(sources.values()), source_names(list(sources.values()), list(sources))
    if isinstance(sources, (str, os.PathLike, Predictions)):
        raise UsageError("sources: expected several sources (a sequence or a mapping)", param="sources")
    sources = list(sources)
    return sources, source_names(sources, names)


def load(
    sources: Sequence[Source], classes: Sequence[str] | None, height: int | None, width: int | None
) -> list[Predictions]:
    """Every source as ``Predictions``. Paths are read with ``classes``, ``height``, ``width``
    (default: those of the first ``Predictions`` given, else the 29 hand-bone classes and
    2048²); ``Predictions`` must already have them (``DataError`` otherwise)."""
    given = [s for s in sources if isinstance(s, Predictions)]
    bad = [s for s in sources if not isinstance(s, Predictions) and not is_path(s)]
    if bad:
        raise UsageError(f"sources: expected paths or Predictions, got {type(bad[0]).__name__}", param="sources")
    ref = given[0] if given else None
    classes = tuple(classes) if classes is not None else (ref.classes if ref else DEFAULT_CLASSES)
    height = height if height is not None else (ref.height if ref else CANVAS)
    width = width if width is not None else (ref.width if ref else CANVAS)
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(f"{name}: expected a positive integer, got {value!r}", param=name)
    out = []
    for s in sources:
        p = s if isinstance(s, Predictions) else Predictions.read(s, classes, height, width)
        if p.classes != classes or (p.height, p.width) != (height, width):
            raise DataError(
                f"{p.path}: classes or mask size differ ({len(p.classes)} classes, {p.height}×{p.width}; "
                f"expected {len(classes)} classes, {height}×{width})"
            )
        out.append(p)
    return out


@dataclass
class Aligned:
    """Sources joined on the first source's images: ``rows[s, i, c]`` is source ``s``'s row of
    image ``i`` and class ``c`` (-1: absent, an empty mask)."""

    sources: list[Predictions]
    images: list[str]
    rows: np.ndarray
    n_missing: int

    def npix(self, i: int) -> int:
        """Pixels of image ``i`` (its own size: images may differ)."""
        h, w = self.sources[0].size(i)
        return h * w

    def stacked(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """All masks of image ``i`` stacked class by class, sources in order within a class:
        mask ``c * S + s`` is ``runs[bounds[m]:bounds[m+1]]``."""
        masks = [
            self.sources[s].row_runs(int(self.rows[s, i, c]))
            for c in range(self.rows.shape[2])
            for s in range(len(self.sources))
        ]
        bounds = np.zeros(len(masks) + 1, np.int64)
        np.cumsum([len(m) for m in masks], out=bounds[1:])
        runs = np.concatenate(masks) if masks else np.zeros((0, 2), np.int64)
        return np.ascontiguousarray(runs, np.int64).reshape(-1, 2), bounds


def align(sources: Sequence[Predictions], missing: str) -> Aligned:
    """Join sources on (image, class), images in the first source's order. Differing image sets
    are a ``DataError``; an absent row is one too unless ``missing == "empty"`` (an empty mask)."""
    if missing not in ("error", "empty"):
        raise UsageError(f"missing: expected 'error' or 'empty', got {missing!r}", param="missing")
    first = sources[0]
    images = list(first.images)
    rows = np.empty((len(sources), len(images), len(first.classes)), np.int64)
    for s, src in enumerate(sources):
        idx = np.array([src.image_index(name) for name in images], np.int64)
        absent = [images[k] for k in np.flatnonzero(idx < 0)]
        extra = sorted(set(src.images) - set(images))
        if absent or extra:
            example = absent[:1] or extra[:1]
            raise DataError(
                f"{src.path}: image set differs from {first.path} ({len(absent)} missing, {len(extra)} extra; "
                f"e.g. {example[0]})"
            )
        rows[s] = src.rows[idx] if len(idx) else np.zeros((0, len(first.classes)), np.int64)
    n_missing = int((rows < 0).sum())
    if n_missing and missing == "error":
        s, i, c = (int(x[0]) for x in np.nonzero(rows < 0))
        raise DataError(
            f"{sources[s].path}: image {images[i]}, class {first.classes[c]}: missing row "
            f"({n_missing:,} missing in all; missing='empty' reads them as empty masks)"
        )
    return Aligned(list(sources), images, rows, n_missing)


def check_output(output: str | os.PathLike | None, inputs: Sequence[Source], what: str = "output") -> str | None:
    """``output`` as a string, refused (``UsageError``) when it is one of the input files."""
    if output is None:
        return None
    out = Path(output)
    for s in inputs:
        p = Path(s) if is_path(s) else Path(s.path)
        with contextlib.suppress(OSError):
            if out.exists() and p.exists() and out.resolve() == p.resolve():
                raise UsageError(f"{what}: {output} is also an input", param=what)
    return str(output)


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[IO[str]]:
    """A text handle whose content replaces ``path`` only when the block ends cleanly; on an
    exception the temporary file (``.<name>.<pid>.*.tmp`` beside ``path``, as ``core`` names
    its own) is removed and ``path`` is left as it was. A folder that does not exist or a file
    that cannot be written is an ``InputError``."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: output folder {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: not a regular file; expected an output file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise InputError(f"{path}: cannot write ({e.strerror or e.__class__.__name__})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def csv_field(text: str) -> str:
    """A CSV field: quoted when it holds a comma, quote or line break."""
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def number(x: float) -> str:
    """A float as written to a CSV: the shortest text that reads back to the same value."""
    return repr(float(x))


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def bar(progress, total: int, desc: str):
    """``progress(total=…, desc=…, unit="img")`` (a context manager with ``update(n)``), or one
    that shows nothing when ``progress`` is ``None``."""
    if progress is None:
        return contextlib.nullcontext(_NoBar())
    return progress(total=total, desc=desc, unit="img")
