"""Writing PNG label maps: ``-o DIR/`` (a path ending in ``/``, or an existing folder) writes one
PNG per image, named after the image stem, instead of a CSV.

- Exclusive classes: ``<stem>.png``, a label map (pixel value ``k + 1`` for the ``k``-th class
  of the class list, ``0`` the background; 8-bit up to 255 classes, else 16-bit). Classes that
  overlap cannot be one label map: an error naming the image and the classes.
- Overlapping classes: ``<stem>/<class>.png``, one binary PNG per class (0 or 255), every
  class written (an empty mask is an all-zero PNG).

Each image is drawn at its own size, from runs in the set's RLE order (column-major runs are
those of the transposed image). The PNGs are written (each atomically, ``write_png``) into a
hidden folder beside the output, which replaces the output folder only when every image is
written: a failed run leaves the output as it was. The output folder is the toolbox's to
write (``core.owned``): new, empty, or holding only what an earlier run wrote there (its
manifest lists it); a folder holding anything else is refused, naming the first such file.

``core.label_maps`` reads these folders back (and re-exports ``label_image``, ``write_png``
and ``is_label_folder``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from core.atomic import check_outputs, remove_stale_temporaries, temporary_folder
from core.codec import parse_rle
from core.errors import DataError, InputError, UsageError, shown
from core.layout import mask_of
from core.owned import owned_files, write_manifest
from core.signals import DaemonPool

MARK = ".segment-ensemble-labels"
"""The manifest of a folder of label maps the toolbox wrote."""

SUFFIX = ".png"
MAX_THREADS = 8
"""Threads writing the per-class PNGs of an image, at most."""


def is_label_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a folder of label maps (an existing folder, or a name ending in
    ``/``), rather than a CSV.

    >>> is_label_folder("labels/"), is_label_folder("vote.csv")
    (True, False)
    """
    text = str(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def label_image(
    runs: Sequence[np.ndarray],
    height: int,
    width: int,
    order: str,
    image: str,
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """The label map of one image from its classes' runs (class ``k`` → value ``k + 1``): 8-bit up
    to 255 classes, else 16-bit. Classes that overlap cannot be one label map: a ``DataError``
    naming the image and the first two classes that do (``classes``: their names, else ``#k``).

    >>> import numpy as np
    >>> label_image([np.array([[0, 2]]), np.array([[3, 4]])], 2, 2, "row", "a.png").tolist()
    [[1, 1], [0, 2]]
    >>> label_image([np.array([[0, 2]]), np.array([[3, 4]])], 2, 2, "column", "a.png").tolist()
    [[1, 0], [1, 2]]
    """
    from core.exclusivity import OverlapError, resolve_overlaps

    try:
        resolve_overlaps(runs, "error", classes=classes, image=image)
    except OverlapError as e:
        raise DataError(
            f"{str(e).removesuffix(' (exclusive classes)')}: a label map holds one class per pixel; "
            "overlapping classes are written as per-class PNGs (<stem>/<class>.png, without exclusive classes)"
        ) from None
    grid = (width, height) if order == "column" else (height, width)
    flat = np.zeros(grid[0] * grid[1], np.uint8 if len(runs) < 256 else np.uint16)
    for k, r in enumerate(runs):
        r = np.asarray(r, np.int64).reshape(-1, 2)
        lengths = r[:, 1] - r[:, 0]
        if not len(r):
            continue
        # every pixel of every run: the run's start plus its offset within the run
        at = np.arange(int(lengths.sum())) + np.repeat(r[:, 0] - np.cumsum(lengths) + lengths, lengths)
        flat[at] = k + 1
    labels = flat.reshape(grid)
    return np.ascontiguousarray(labels.T) if order == "column" else labels


def write_png(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8, or uint16 as a 16-bit PNG) as a PNG atomically (a temporary file
    beside it, renamed when complete)."""
    from PIL import Image

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")  # uint8: L; uint16: a 16-bit PNG
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _bad_name(name: str) -> bool:
    """Whether ``name`` cannot be one file name of the folder (empty, ``.``/``..``, hidden, or
    holding a path separator or a NUL)."""
    return not name or name.startswith(".") or any(ch in name for ch in "/\\\0")


def check_label_output(
    folder: str | os.PathLike,
    others: Iterable[tuple[str, str | os.PathLike | None]],
    command: str,
) -> None:
    """Refuse, before any work, a folder of label maps the toolbox may not write: a path that
    exists and is not a folder, whose parent does not exist or cannot be written, that is (or
    lies inside, or holds) one of ``others`` (``(what, path)``: the inputs, other outputs), or
    that holds a file an earlier run did not write there (``core.owned``)."""
    folder = Path(folder)
    if not str(folder).strip():
        raise UsageError("output: empty folder name", param="output")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{shown(folder)}: output: exists and is not a folder; give a folder (DIR/) or a CSV name")
    key = folder.resolve()
    if not key.parent.is_dir():
        raise UsageError(f"{shown(folder)}: folder {shown(folder.parent)} does not exist")
    for what, p in others:
        if not p:
            continue
        other = Path(p).resolve()
        if other == key or key.is_relative_to(other):
            raise UsageError(f"{shown(folder)}: output would be written inside {what} {shown(p)}")
        if other.is_relative_to(key):
            raise UsageError(f"{shown(folder)}: output folder holds {what} {shown(p)}; give another folder")
    owned_files(folder, MARK, command)
    try:
        os.rmdir(temporary_folder(key.parent, key.name))
    except OSError as e:
        raise UsageError(f"{shown(folder)}: cannot write there ({e.strerror or e.__class__.__name__})") from None


def check_prediction_output(
    output: str | os.PathLike | None,
    inputs: Iterable[tuple[str, str | os.PathLike | None]],
    command: str,
    write_instances: bool = False,
) -> None:
    """Refuse, before any work, the ``output`` of a job that writes predictions: a CSV as
    ``core.atomic.check_outputs`` says, a folder of label maps as ``check_label_output`` says;
    ``write_instances`` (one row per object) needs a CSV. ``None`` (memory) passes."""
    if write_instances and (output is None or is_label_folder(output)):
        raise UsageError(
            "write_instances: one row per object is written to a CSV; give a CSV output"
            + (f", not the folder {shown(output)}" if output is not None else ""),
            param="write_instances",
        )
    if output is not None and is_label_folder(output):
        check_label_output(output, inputs, command)
    else:
        check_outputs([("output", output)], inputs)


class LabelMapWriter:
    """``PredictionWriter``'s twin for a folder of PNG label maps (see the module): the same
    ``with`` block and ``write_image(image, rles)``, RLE text in class order; ``size_of(image)``
    gives each image's ``(height, width)``, ``order`` the RLE order, ``exclusive`` whether
    images are label maps (else per-class PNGs); ``command`` names the writer in messages and
    in the manifest. It takes images one at a time only (``blocks`` is false): jobs give it
    their per-image path. ``rows_written`` counts masks, ``files_written`` PNGs."""

    blocks = False

    def __init__(
        self,
        folder: str | os.PathLike,
        classes: Sequence[str],
        size_of: Callable[[str], tuple[int, int]],
        order: str = "row",
        exclusive: bool = False,
        command: str = "the toolbox",
    ):
        self.folder = Path(folder)
        self.classes = tuple(classes)
        self.size_of, self.order, self.exclusive, self.command = size_of, order, exclusive, command
        if not exclusive:
            bad = next((c for c in self.classes if _bad_name(c)), None)
            if bad is not None:
                raise UsageError(
                    f"{shown(folder)}: class {shown(bad)!r} cannot name a per-class PNG (<stem>/<class>.png); "
                    "rename it, write exclusive classes as label maps, or write a CSV",
                    param="output",
                )
        self.rows_written = 0
        self.files_written = 0
        self._stems: dict[str, str] = {}
        self._tmp: Path | None = None
        self._pool = None

    def __enter__(self) -> LabelMapWriter:
        key = self.folder.resolve()
        remove_stale_temporaries(key.parent, key.name)
        try:
            self._tmp = temporary_folder(key.parent, key.name)
        except OSError as e:
            raise InputError(f"{shown(self.folder)}: cannot write ({e.strerror or e.__class__.__name__})") from None
        return self

    def write_image(self, image: str, rles: Sequence[str]) -> None:
        """Write one image's PNG (or PNGs); ``rles`` in class-list order."""
        if len(rles) != len(self.classes):
            raise ValueError(f"expected {len(self.classes)} masks for {image}, got {len(rles)}")
        stem = os.path.splitext(image)[0]
        if _bad_name(stem):
            raise DataError(f"image {shown(image)}: its name cannot name a PNG of {shown(self.folder)}")
        if stem in self._stems:
            raise DataError(
                f"images {shown(self._stems[stem])} and {shown(image)} would both be written as "
                f"{shown(stem)}{SUFFIX}; write a CSV instead"
            )
        self._stems[stem] = image
        h, w = self.size_of(image)
        runs = [parse_rle(r, h, w) for r in rles]
        try:
            if self.exclusive:
                write_png(self._tmp / f"{stem}{SUFFIX}", label_image(runs, h, w, self.order, image, self.classes))
                self.files_written += 1
            else:
                (self._tmp / stem).mkdir()
                folder = self._tmp / stem

                def one(k: int) -> None:
                    mask = np.ascontiguousarray(mask_of(runs[k], h, w, self.order), np.uint8)
                    write_png(folder / f"{self.classes[k]}{SUFFIX}", mask * np.uint8(255))

                pool = self._threads() if h * w >= 1 << 16 else None  # small images: not worth a thread
                if pool is None:
                    for k in range(len(runs)):
                        one(k)
                else:  # PNG encoding releases the GIL: the classes of an image in threads
                    for future in [pool.submit(one, k) for k in range(len(runs))]:
                        future.result()
                self.files_written += len(runs)
        except OSError as e:
            why = e.strerror or e.__class__.__name__
            raise InputError(f"{shown(self.folder)}: cannot write {shown(stem)} ({why})") from None
        self.rows_written += len(rles)

    def _threads(self):
        """The threads that write an image's per-class PNGs (``None``: one core, or one class)."""
        if self._pool is None:
            try:
                cores = len(os.sched_getaffinity(0))
            except AttributeError:  # not on Linux
                cores = os.cpu_count() or 1
            n = min(MAX_THREADS, cores, len(self.classes))
            self._pool = DaemonPool(n, "png") if n > 1 else False
        return self._pool or None

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool:
            self._pool.shutdown(wait=exc_type is None, cancel=True)
        self._pool = None
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            return
        if exc_type is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return
        try:
            self._install(tmp)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):
                raise InputError(f"{shown(self.folder)}: cannot write ({e.strerror or e.__class__.__name__})") from None
            raise

    def _install(self, tmp: Path) -> None:
        """Replace the output folder by ``tmp`` whole, once the folder still holds nothing but
        an earlier run's files (the user may have put something there meanwhile)."""
        from core.signals import raise_if_signalled

        write_manifest(tmp, MARK, self.command)
        os.chmod(tmp, 0o755)
        raise_if_signalled()
        key = self.folder.resolve()
        old = None
        if key.exists():
            owned_files(key, MARK, self.command)
            old = temporary_folder(key.parent, key.name)
            os.replace(key, old / "old")
        os.replace(tmp, key)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
