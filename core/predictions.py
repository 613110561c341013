"""The prediction set: ``Predictions``, one prediction file indexed by (image, class), read and
validated by ``core.csv_read`` and written by ``core.csv_write``; in-memory sets, and the
writers a job hands its rows to (a file, or memory)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from core._rle_kernels import parse_kernel, scan_kernel
from core.atomic import atomic_open
from core.classes import CANVAS, DEFAULT_CLASSES
from core.codec import EMPTY_RUNS, RLE_ERRORS, RLEError
from core.csv_read import Problem, Table, frame_table, raise_first, read_table, text_buffer
from core.csv_write import COLUMNS, PredictionWriter, csv_field, write_predictions
from core.errors import DataError, InputError, listing, plural, quoted, where
from core.layout import DEFAULT_LAYOUT, Layout, Sizes
from core.signals import interruptible

__all__ = [
    "COLUMNS",
    "MemoryWriter",
    "PredictionWriter",
    "Predictions",
    "Problem",
    "image_positions",
    "missing_rows",
    "predictions_from_rles",
    "read_predictions",
    "scan_frame",
    "scan_predictions",
    "write_predictions",
    "writer_for",
    "written",
]


@dataclass
class Predictions(Table):
    """One prediction CSV, indexed by (image, class): the ``Table`` the reader builds (every
    RLE as bytes, a dense table of row numbers), with lookups by name or position and runs
    and masks decoded on demand."""

    _index: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, table: Table) -> Predictions:
        """The ``Predictions`` of a table the reader built (no copy)."""
        return cls(**{f.name: getattr(table, f.name) for f in fields(Table)})

    def __post_init__(self) -> None:
        self._index = {name: i for i, name in enumerate(self.images)}

    @property
    def npix(self) -> int:
        """Pixels of the largest mask (every image's when the set has one size)."""
        return self.height * self.width

    def size(self, image: int) -> tuple[int, int]:
        """``(height, width)`` of image ``image`` (a position)."""
        if self.sizes is None:
            return self.height, self.width
        h, w = self.sizes[image]
        return int(h), int(w)

    def grid(self, image: int) -> tuple[int, int]:
        """The ``(rows, columns)`` of the grid image ``image``'s runs cover: its size, or for
        column-major RLE the transposed size (see ``core.layout``)."""
        h, w = self.size(image)
        return (w, h) if self.order == "column" else (h, w)

    @property
    def uniform(self) -> bool:
        """Whether every image has the one size ``height`` × ``width``."""
        return self.sizes is None or bool((self.sizes == (self.height, self.width)).all())

    def image_index(self, name: str) -> int:
        """Position of an image (basename), or -1."""
        return self._index.get(name, -1)

    # -- construction and conversion ------------------------------------------------------

    @classmethod
    def read(
        cls,
        path: str | os.PathLike,
        classes: Sequence[str] = DEFAULT_CLASSES,
        height: int = CANVAS,
        width: int = CANVAS,
    ) -> Predictions:
        """Read and validate a prediction CSV (``image_name,class,rle``).

        Parameters
        ----------
        path : str or os.PathLike
            The CSV. Image names given as paths are matched on their basename.
        classes : sequence of str
            The class list (default: the 29 hand-bone classes).
        height, width : int
            Mask size (default 2048 × 2048).

        Returns
        -------
        Predictions

        Raises
        ------
        InputError
            (a ``ValueError``) when the file is unreadable or any row is invalid; the
            message names the file, line, image and class.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
        >>> _ = path.write_text("image_name,class,rle\\na.png,x,1 2\\na.png,y,\\n")
        >>> p = Predictions.read(path, ["x", "y"], 2, 2)
        >>> p.images, p.classes
        (['a.png'], ('x', 'y'))
        >>> p.runs("a.png", "x").tolist()
        [[0, 2]]
        """
        return read_predictions(path, classes, height, width)

    @classmethod
    def from_frame(
        cls,
        frame,
        classes: Sequence[str] | None = None,
        height: int = CANVAS,
        width: int = CANVAS,
        name: str = "DataFrame",
    ) -> Predictions:
        """Predictions from a pandas DataFrame with columns ``image_name``, ``class``, ``rle``,
        validated exactly as a file is (no disk is touched).

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per (image, class); other columns are ignored; NaN or "nan" is an
            empty mask.
        classes : sequence of str, optional
            The class list; default: the 29 hand-bone classes when every class of the
            frame is one of them, else the frame's classes in order of appearance.
        height, width : int
            Mask size (default 2048 × 2048).
        name : str
            How messages name the frame; rows are located by position (``name:row``, 0-based).

        Returns
        -------
        Predictions

        Raises
        ------
        InputError
            Missing columns, unknown classes, duplicate rows or invalid RLE; the message
            names the row, image and class.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"image_name": ["a.png", "a.png"], "class": ["x", "y"], "rle": ["2 3", ""]})
        >>> p = Predictions.from_frame(df, height=2, width=2)
        >>> p.classes, p.mask("a.png", "x").astype(int).tolist()
        (('x', 'y'), [[0, 1], [1, 1]])
        """
        preds, problems = scan_frame(frame, classes, height, width, name)
        raise_first(problems)
        return preds

    def to_frame(self):
        """The rows as a pandas DataFrame ``image_name,class,rle``: images in order, classes in
        class-list order, absent rows left out; RLE text as written.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"image_name": ["a.png"] * 2, "class": ["y", "x"], "rle": ["", "1 1"]})
        >>> Predictions.from_frame(df, classes=["x", "y"], height=2, width=2).to_frame().values.tolist()
        [['a.png', 'x', '1 1'], ['a.png', 'y', '']]
        """
        import pandas as pd

        img, cl = np.nonzero(self.rows >= 0)
        rows = self.rows[img, cl]
        rles = [self.text[self.offsets[r] : self.offsets[r + 1]].tobytes().decode("ascii").strip() for r in rows]
        return pd.DataFrame(
            {
                "image_name": np.asarray(self.images, dtype=object)[img],
                "class": np.asarray(self.classes, dtype=object)[cl],
                "rle": rles,
            }
        )

    def write(self, path: str | os.PathLike) -> int:
        """Write the rows (as ``to_frame`` orders them) to ``path`` atomically; returns rows written.

        Raises
        ------
        OSError
            When ``path`` cannot be written (nothing is left behind).
        """
        with atomic_open(Path(path)) as fh:
            fh.write(",".join(COLUMNS) + "\n")
            n = 0
            for i, name in enumerate(self.images):
                field = csv_field(name)
                for c, cname in enumerate(self.classes):
                    if self.rows[i, c] >= 0:
                        fh.write(f"{field},{csv_field(cname)},{self.rle(i, c)}\n")
                        n += 1
        return n

    # -- access ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[tuple[str, list[np.ndarray | None]]]:
        """``(image, runs)`` per image, ``runs`` in class order (``None`` where a row is absent).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"image_name": ["a.png"], "class": ["x"], "rle": ["1 2"]})
        >>> [(name, [r.tolist() for r in runs]) for name, runs in Predictions.from_frame(df, height=2, width=2)]
        [('a.png', [[[0, 2]]])]
        """
        for i, name in enumerate(self.images):
            yield (
                name,
                [
                    None if self.rows[i, c] < 0 else self.row_runs(int(self.rows[i, c]))
                    for c in range(len(self.classes))
                ],
            )

    def _position(self, image: int | str, cls: int | str) -> tuple[int, int]:
        """(image, class) positions from positions or names; an unknown name is a ``KeyError``."""
        if isinstance(image, str):
            i = self._index.get(image, -1)
            if i < 0:
                raise KeyError(f"{self.path}: no image {quoted(image)}")
            image = i
        if isinstance(cls, str):
            if cls not in self.classes:
                raise KeyError(f"{self.path}: no class {quoted(cls)}")
            cls = self.classes.index(cls)
        return image, cls

    def row(self, image: int, cls: int) -> int:
        return int(self.rows[image, cls])

    def rle(self, image: int | str, cls: int | str) -> str:
        """The RLE text of (image, class) as written in the file ("" for an empty mask)."""
        image, cls = self._position(image, cls)
        r = self.row(image, cls)
        if r < 0:
            raise KeyError((self.images[image], self.classes[cls]))
        return self.text[self.offsets[r] : self.offsets[r + 1]].tobytes().decode("ascii").strip()

    def runs(self, image: int | str, cls: int | str) -> np.ndarray:
        """Canonical runs (``(n, 2)`` int64 start, end; 0-based, end exclusive, row-major) of
        (image, class), each given by name or position; raises ``KeyError`` when the row is
        absent."""
        image, cls = self._position(image, cls)
        r = self.row(image, cls)
        if r < 0:
            raise KeyError((self.images[image], self.classes[cls]))
        return self.row_runs(r)

    def row_runs(self, r: int) -> np.ndarray:
        """Canonical runs of row ``r`` (empty for -1, an absent row)."""
        if r < 0:
            return EMPTY_RUNS
        lo, hi = self.offsets[r], self.offsets[r + 1]
        out = np.empty((int(self.run_counts[r]) + 1, 2), np.int64)
        n, code, at = parse_kernel(self.text, lo, hi, self.npix, out)
        if code:  # validated on read; only reachable if the buffer was altered
            raise RLEError(code, at)
        return out[:n]

    def mask(self, image: int | str, cls: int | str) -> np.ndarray:
        """The dense boolean mask (the image's height × width) of (image, class), built on demand."""
        i, _ = self._position(image, cls)
        rows, cols = self.grid(i)
        flat = np.zeros(rows * cols, bool)
        for a, b in self.runs(image, cls):
            flat[a:b] = True
        grid = flat.reshape(rows, cols)
        return grid.T if self.order == "column" else grid

    def locate(self, image: int, cls: int) -> str:
        """``file:line: image, class`` of a row, for error messages."""
        r = self.row(image, cls)
        line = int(self.lines[r]) if r >= 0 else None
        return where(self.path, line, self.images[image], self.classes[cls])


def predictions_from_rles(
    label: str,
    classes: Sequence[str],
    images: Sequence[str],
    rles: Sequence[Sequence[str]],
    height: int = CANVAS,
    width: int = CANVAS,
    sizes: np.ndarray | None = None,
    order: str = "row",
) -> Predictions:
    """In-memory ``Predictions`` from RLE text, ``rles[i][c]`` for image ``i``, class ``c``
    (e.g. ground truth rasterised from polygons), in RLE ``order``; ``sizes``: each image's
    ``(height, width)`` where they differ. Invalid text raises ``InputError``."""
    flat = [r for row in rles for r in row]
    if sizes is not None:
        sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
        npix = np.repeat(sizes[:, 0] * sizes[:, 1], len(classes))
        if len(sizes):
            height, width = int(sizes[:, 0].max()), int(sizes[:, 1].max())
    else:
        npix = np.full(len(flat), height * width, np.int64)
    lengths = np.fromiter((len(s) for s in flat), np.int64, len(flat))
    offsets = np.zeros(len(flat) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    text = text_buffer("".join(flat))
    codes, _, counts, areas = interruptible(scan_kernel, text, offsets, npix)
    if codes.any():
        r = int(np.flatnonzero(codes)[0])
        raise InputError(
            f"{where(label, None, images[r // len(classes)], classes[r % len(classes)])}: "
            f"invalid RLE: {RLE_ERRORS[int(codes[r])]}"
        )
    rows = np.arange(len(flat), dtype=np.int64).reshape(len(images), len(classes))
    return Predictions(
        path=label,
        classes=tuple(classes),
        height=height,
        width=width,
        images=list(images),
        rows=rows,
        text=text,
        offsets=offsets,
        lines=np.zeros(len(flat), np.int64),
        areas=areas,
        run_counts=counts,
        sizes=sizes,
        order=order,
    )


def scan_predictions(
    path: str | os.PathLike,
    classes: Sequence[str],
    height: int = CANVAS,
    width: int = CANVAS,
    layout: Layout = DEFAULT_LAYOUT,
    sizes: Sizes | None = None,
    instances: str = "error",
    limit: int | None = None,
) -> tuple[Predictions, list[Problem]]:
    """Read a prediction CSV and list every problem in it (unknown classes, duplicate rows,
    invalid RLE, bad image names); see ``core.csv_read.read_table`` for ``layout``, ``sizes``,
    ``instances`` and ``limit``. Unreadable files raise ``InputError``."""
    table, problems = read_table(path, classes, height, width, layout, sizes, instances, limit)
    return Predictions.of(table), problems


def scan_frame(
    frame, classes: Sequence[str] | None = None, height: int = CANVAS, width: int = CANVAS, name: str = "DataFrame"
) -> tuple[Predictions, list[Problem]]:
    """``scan_predictions`` for a pandas DataFrame ``image_name,class,rle`` (rows located by
    position); ``classes=None``: the hand-bone classes when the frame's are among them, else
    the frame's in order of appearance. Missing columns raise ``InputError``."""
    table, problems = frame_table(frame, classes, height, width, name)
    return Predictions.of(table), problems


def read_predictions(
    path: str | os.PathLike,
    classes: Sequence[str],
    height: int = CANVAS,
    width: int = CANVAS,
    layout: Layout = DEFAULT_LAYOUT,
    sizes: Sizes | None = None,
    instances: str = "error",
) -> Predictions:
    """Read and validate a prediction CSV; the first problem raises ``InputError``."""
    preds, problems = scan_predictions(path, classes, height, width, layout, sizes, instances)
    raise_first(problems)
    return preds


def image_positions(src: Predictions, images: Sequence[str], reference: str, label: str = "") -> np.ndarray:
    """Where each of ``images`` (those of ``reference``) sits in ``src``; a different image
    set is a ``DataError`` listing a few differences."""
    idx = np.array([src.image_index(name) for name in images], np.int64)
    absent = [images[i] for i in np.flatnonzero(idx < 0)]
    extra = sorted(set(src.images) - set(images))
    if absent or extra:
        parts = []
        if absent:
            parts.append(f"{plural(len(absent), 'image')} of {reference} missing (e.g. {listing(absent[:3])})")
        if extra:
            parts.append(f"{plural(len(extra), 'image')} not in {reference} (e.g. {listing(extra[:3])})")
        raise DataError(f"{src.path}{label}: image set differs: {'; '.join(parts)}")
    return idx


def missing_rows(preds: Predictions) -> list[Problem]:
    """The (image, class) pairs absent from the file: one problem per pair, except a class
    absent from every image (one problem for the class; usually a misspelt class name) and
    the last image of a truncated file (one problem for the truncation)."""
    absent = preds.rows < 0
    n_images = len(preds.images)
    whole = absent.all(0) if n_images > 1 else np.zeros(len(preds.classes), bool)
    out = [
        Problem(preds.path, f"no row in any of the {n_images:,} images", None, None, preds.classes[c])
        for c in np.flatnonzero(whole)
    ]
    cut = preds.truncated_image if preds.truncation is not None else -1
    out += [
        Problem(preds.path, "missing row", None, preds.images[i], preds.classes[c])
        for i, c in zip(*np.nonzero(absent & ~whole), strict=False)
        if i != cut
    ]
    return out


class MemoryWriter:
    """``PredictionWriter``'s twin that keeps the rows in memory: ``predictions()`` after
    the ``with`` block gives them as ``Predictions`` (for jobs run without an output)."""

    def __init__(self, label: str, classes: Sequence[str], height: int, width: int):
        self.label, self.classes, self.height, self.width = label, tuple(classes), height, width
        self.images: list[str] = []
        self.rles: list[Sequence[str]] = []
        self.rows_written = 0

    def __enter__(self) -> MemoryWriter:
        return self

    def write_image(self, image: str, rles: Sequence[str]) -> None:
        if len(rles) != len(self.classes):
            raise ValueError(f"expected {len(self.classes)} masks for {image}, got {len(rles)}")
        self.images.append(image)
        self.rles.append(list(rles))
        self.rows_written += len(rles)

    def __exit__(self, exc_type, exc, tb) -> None:
        pass

    def predictions(self) -> Predictions:
        return predictions_from_rles(self.label, self.classes, self.images, self.rles, self.height, self.width)


def writer_for(
    output: str | os.PathLike | None,
    classes: Sequence[str],
    height: int,
    width: int,
    label: str = "memory",
    layout: Layout = DEFAULT_LAYOUT,
    *,
    size_of=None,
    exclusive: bool = False,
    split=None,
    command: str = "the toolbox",
):
    """Where a job's images go: a ``MemoryWriter`` when ``output`` is ``None``; for a job that
    writes label maps (it gives ``size_of(image)`` → ``(height, width)``), a
    ``core.label_write.LabelMapWriter`` when ``output`` names a folder (``DIR/``, or an existing
    folder: label maps with ``exclusive``, else per-class PNGs; ``command`` names the writer);
    else a ``PredictionWriter`` laid out as ``layout`` (``split``: one row per text
    ``split(image, rle)`` gives)."""
    from core.label_write import LabelMapWriter, is_label_folder

    if output is None:
        return MemoryWriter(label, classes, height, width)
    if size_of is not None and is_label_folder(output):
        return LabelMapWriter(output, classes, size_of, layout.order, exclusive, command)
    return PredictionWriter(output, classes, layout, split)


def written(writer: PredictionWriter | MemoryWriter) -> int | Predictions:
    """What a job hands back once its writer is closed: rows written to a file, or the
    ``Predictions`` kept in memory."""
    return writer.predictions() if isinstance(writer, MemoryWriter) else writer.rows_written
