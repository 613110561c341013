"""Prediction sources as the public functions accept them — a path, a ``Predictions``, a
pandas DataFrame ``image_name,class,rle``, or a mapping of names to any of these — and the
notes and progress bars a job reports through.

Jobs never print: a note goes to ``Notes`` (kept on the result, and echoed as it happens
when the caller passes ``echo``, as the command line does, so that a warning precedes the
error it explains); progress goes to an optional ``progress(total, desc, unit)`` factory
of context managers with ``update(n)`` (a tqdm bar in the command line).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from core.errors import UsageError, plural, where
from core.layout import DEFAULT_LAYOUT, Layout, Sizes
from core.predictions import Predictions, read_predictions
from core.stream import in_threads

Source = Union[str, os.PathLike, Predictions, Any]  # Any: a pandas DataFrame
"""One prediction source: a CSV path, a ``Predictions`` or a DataFrame ``image_name,class,rle``."""

Sources = Union[Mapping[str, Source], Sequence[Source]]
"""Several sources: a mapping name → source, or a sequence (named by file stem, else ``source1`` …)."""

Progress = Callable[..., contextlib.AbstractContextManager]


class Notes(list):
    """Notes of a job, in order, each once; each is also passed to ``echo`` (when given) as it
    is made."""

    def __init__(self, echo: Callable[[str], None] | None = None):
        super().__init__()
        self.echo = echo

    def __call__(self, message: str) -> None:
        if message in self:  # a file read twice (given twice, or as ground truth too) is noted once
            return
        self.append(message)
        if self.echo is not None:
            self.echo(message)

    def quietly(self) -> Callable[[str], None]:
        """The echo alone (messages not kept, e.g. the compile notice), or a no-op."""
        return self.echo or (lambda message: None)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def bar(progress: Progress | None, total: int, desc: str, unit: str = "img"):
    """``progress(total=…, desc=…, unit=…)`` or a context manager of a bar that shows nothing."""
    if progress is None:
        return contextlib.nullcontext(_NoBar())
    return progress(total=total, desc=desc, unit=unit)


def is_path(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike))


def unique_names(bases: list[str]) -> list[str]:
    """Names made unique with a numeric suffix (``a``, ``a-2``, ``a-3`` …), in order."""
    names: list[str] = []
    for base in bases:
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def source_names(sources: Sequence[Source]) -> list[str]:
    """Names for unnamed sources: file stems (in-memory ones ``source1``, ``source2`` …), made
    unique with a numeric suffix."""
    return unique_names([(Path(s).stem or "source") if is_path(s) else f"source{k + 1}" for k, s in enumerate(sources)])


def named_sources(sources: Sources | None, parameter: str = "sources") -> dict[str, Source]:
    """``sources`` as a dict name → source (see ``Sources``)."""
    if sources is None:
        return {}
    if isinstance(sources, Mapping):
        return dict(sources)
    if is_path(sources) or isinstance(sources, Predictions) or hasattr(sources, "columns"):
        raise UsageError(f"{parameter}: give several sources (a list or a mapping), not one", param=parameter)
    items = list(sources)
    return dict(zip(source_names(items), items, strict=True))


def label(name: str, source: Source) -> str:
    """How messages name a source: its path, else its own name."""
    if is_path(source):
        return str(source)
    if isinstance(source, Predictions):
        return source.path
    return name


@dataclass(frozen=True)
class Frame:
    """What the prediction sets of a job share: the classes, the images' size (``height`` ×
    ``width``, or each image's own from ``sizes``), how files lay them out (``layout``: column
    names and RLE order), whether one row per object is read as their union (``instances``)
    and whether the classes are mutually exclusive."""

    classes: tuple[str, ...]
    height: int
    width: int
    layout: Layout = DEFAULT_LAYOUT
    sizes: Sizes | None = None
    instances: str = "error"
    exclusive: bool = False


def load(source: Source, name: str, frame: Frame, note: Callable[[str], None]) -> Predictions:
    """Any ``Source`` as ``Predictions`` of the frame's classes and sizes: a path is read (with a
    note when images are named by path, a warning when the file looks truncated), a folder of
    PNG label maps decoded, a DataFrame validated in memory, a ``Predictions`` checked to match."""
    classes, height, width = frame.classes, frame.height, frame.width
    if isinstance(source, Predictions):
        if tuple(source.classes) != tuple(classes) or (source.height, source.width) != (height, width):
            raise UsageError(
                f"{source.path}: Predictions of {plural(len(source.classes), 'class')} on "
                f"{source.height}×{source.width}, expected {plural(len(classes), 'class')} on "
                f"{height}×{width}",
                param="sources",
            )
        return source
    if hasattr(source, "columns"):
        return Predictions.from_frame(source, classes, height, width, name=name)
    if not is_path(source):
        raise UsageError(
            f"source {name}: expected a path, Predictions or DataFrame, got {type(source).__name__}", param="sources"
        )
    from core.label_maps import is_label_folder, label_predictions

    if is_label_folder(source):
        return label_predictions(source, frame.classes, frame.layout.order)
    preds = _read(source, frame)
    for line in reading_notes(preds):
        note(line)
    return preds


def reading_notes(preds: Predictions) -> list[str]:
    """What a job says of a file it read: images named by path (a note), a file that looks
    truncated (a warning: the missing-row error that follows is its consequence) or whose
    last line lacks its line end (a warning: a cut inside the last number reads as valid)."""
    out = []
    if preds.paths_stripped:
        out.append(
            f"note: {where(preds.path)}: {plural(preds.paths_stripped, 'row')} name images by path; "
            "matched on the basename"
        )
    if preds.truncation is not None:
        out.append(f"warning: {preds.truncation}")
    elif preds.unterminated is not None:
        out.append(f"warning: {preds.unterminated}")
    return out


def _read(path, frame: Frame) -> Predictions:
    """``read_predictions``, through the worker cache when a cluster worker enabled it."""
    from core import workercache

    def read() -> Predictions:
        return read_predictions(
            path, frame.classes, frame.height, frame.width, frame.layout, frame.sizes, frame.instances
        )

    if not workercache.enabled():
        return read()
    try:
        origin = frame.sizes.origin if frame.sizes is not None else None
        key = (
            *workercache.file_key(path),
            frame.classes,
            frame.height,
            frame.width,
            frame.layout,
            origin,
            frame.instances,
        )
    except OSError:  # unreadable: let the reader say so, in its words
        return read()
    return workercache.cached("csv", key, read)


def load_all(
    sources: Mapping[str, Source] | Sequence[tuple[str, Source]],
    frame: Frame,
    note: Callable[[str], None],
) -> list[Predictions]:
    """``load`` of every source (name → source, or pairs), files read concurrently (the
    tokenizer and the RLE check release the GIL); notes and the first error come in the
    sources' order, as if read one after another."""
    items = list(sources.items()) if isinstance(sources, Mapping) else list(sources)
    held: list[list[str]] = [[] for _ in items]

    def read(k: int) -> Predictions:
        name, src = items[k]
        return load(src, name, frame, held[k].append)

    loaded = []
    with in_threads(read, len(items)) as results:
        for k, preds in enumerate(results):
            loaded.append(preds)
            for line in held[k]:
                note(line)
    return loaded


def same_file_message(named: list[tuple[str, str]]) -> str | None:
    """``PATH: given twice (A and B)`` (or ``same file as``) for the first two ``(role,
    path)`` pairs that resolve to the same file; None when all differ."""
    seen: dict[Path, tuple[str, str]] = {}
    for role, path in named:
        key = Path(path).resolve()
        if key in seen:
            a, pa = seen[key]
            return (
                f"{path}: given twice ({a} and {role})" if pa == path else f"{path}: same file as {pa} ({a} and {role})"
            )
        seen[key] = (role, path)
    return None


def frame_of(
    sources,
    classes: Sequence[str] | None,
    height: int | None,
    width: int | None,
    cfg: Any = None,
    label: str = "classes",
    layout: Layout | str | Mapping | None = None,
    sizes: Sizes | str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    rle_order: str | None = None,
) -> Frame:
    """The ``Frame`` of a job. Classes, height and width: the parameters, else the settings'
    (``cfg``, when it sets them), else those of the first in-memory ``Predictions`` among
    ``sources``, else the 29 hand-bone classes on the 2048² canvas; ``label`` names the
    settings' class list in messages. The layout (a ``Layout``, or ``columns`` as
    ``--columns`` or the settings give them, with ``rle_order``), the sizes (a ``Sizes``, or a
    file or folder ``--sizes`` names), ``instances`` and ``exclusive``: the parameters, else
    the settings' ``columns``, ``rle_order``, ``sizes``, ``instances`` and ``exclusive``."""
    from core.classes import CANVAS, DEFAULT_CLASSES, check_classes

    memory = next((s for s in sources if isinstance(s, Predictions)), None)
    given = cfg.model_fields_set if cfg is not None else set()

    def pick(value, key, default):
        if value is not None:
            return value
        if key in given or memory is None:
            return getattr(cfg, key) if cfg is not None and hasattr(cfg, key) else default
        return getattr(memory, key)

    if classes is not None:
        cls = tuple(classes)
    elif cfg is not None and getattr(cfg, "classes", None):
        cls = check_classes(cfg.classes, label)
    else:
        cls = tuple(memory.classes) if memory is not None else DEFAULT_CLASSES

    def setting(value, key):
        return value if value is not None else getattr(cfg, key, None) if cfg is not None else None

    if not isinstance(layout, Layout):
        order = setting(rle_order, "rle_order")
        layout = Layout.parse(setting(layout, "columns"), order) if (layout or order or cfg) else DEFAULT_LAYOUT
    sizes = setting(sizes, "sizes")
    if sizes is not None and not isinstance(sizes, Sizes):
        sizes = Sizes.read(sizes, layout.image)
    instances = setting(instances, "instances") or "error"
    if instances not in ("error", "union"):
        raise UsageError(f"instances: {instances!r}: expected error or union", param="instances")
    return Frame(
        cls,
        pick(height, "height", CANVAS),
        pick(width, "width", CANVAS),
        layout,
        sizes,
        instances,
        bool(setting(exclusive, "exclusive")),
    )
