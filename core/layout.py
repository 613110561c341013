"""How a task lays out its predictions: the CSV's column names and RLE order (``Layout``), and
each image's size (``Sizes``). Decided once at the edges — the readers and writers — so that the
run algebra in between sees one canonical form: runs over a known grid per image.

Column-major RLE numbers pixels top to bottom, then left to right (Kaggle's usual order): its
runs are the row-major runs of the transposed image. So a column-major image of ``h × w`` is
held as the runs of a ``w × h`` grid; everything one-dimensional (votes, selection, merging,
areas, Dice) needs nothing more, and the geometry (components, holes, opening and closing,
pictures) works on that grid, transposing back only to draw.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.codec import decode, encode
from core.errors import InputError, UsageError, shown
from core.limits import MAX_SIDE

ORDERS = ("row", "column")
ROLES = ("image", "class", "rle")


@dataclass(frozen=True)
class Layout:
    """The columns of a prediction CSV (``class=None``: a file of one class, without a class
    column) and the order of its RLE (``row`` or ``column``).

    >>> Layout.parse("image=ImageId,class=ClassId,rle=EncodedPixels", "column").columns
    ('ImageId', 'ClassId', 'EncodedPixels')
    >>> Layout.parse("image=ImageId,rle=EncodedPixels").cls is None
    True
    """

    image: str = "image_name"
    cls: str | None = "class"
    rle: str = "rle"
    order: str = "row"

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise UsageError(f"rle_order: {self.order!r}: expected row or column", param="rle_order")
        names = [n for n in (self.image, self.cls, self.rle) if n is not None]
        if any(not n.strip() for n in names):
            raise UsageError("columns: a column name is empty", param="columns")
        if len(set(names)) < len(names):
            raise UsageError(f"columns: one column named for two roles ({', '.join(names)})", param="columns")

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in the order they are written."""
        return tuple(n for n in (self.image, self.cls, self.rle) if n is not None)

    @property
    def transposed(self) -> bool:
        """Whether runs are those of the transposed image (column-major RLE)."""
        return self.order == "column"

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """The grid an image's runs cover: ``(height, width)``, transposed for column order."""
        return (width, height) if self.transposed else (height, width)

    @classmethod
    def parse(cls, columns: str | Mapping[str, str | None] | None = None, order: str | None = None) -> Layout:
        """A layout from ``--columns image=NAME,class=NAME,rle=NAME`` (or the settings' mapping
        ``{image: NAME, class: NAME, rle: NAME}``) and ``--rle-order``; roles left out keep
        their default names, except ``class``: a spec without it means a file of one class."""
        if columns is None:
            return cls(order=order or "row")
        if isinstance(columns, str):
            pairs = {}
            for part in columns.split(","):
                role, eq, name = part.partition("=")
                if not eq:
                    raise UsageError(
                        f"columns: {shown(part)!r}: expected ROLE=NAME (roles: image, class, rle)", param="columns"
                    )
                pairs[role.strip()] = name.strip()
            columns = pairs
        unknown = [r for r in columns if r not in ROLES]
        if unknown:
            raise UsageError(f"columns: unknown role {shown(unknown[0])!r} (roles: image, class, rle)", param="columns")
        return cls(
            image=columns.get("image") or "image_name",
            cls=columns.get("class"),
            rle=columns.get("rle") or "rle",
            order=order or "row",
        )


DEFAULT_LAYOUT = Layout()


def runs_of(mask: np.ndarray, order: str = "row") -> np.ndarray:
    """The canonical runs of a dense ``height`` × ``width`` mask in RLE ``order``.

    >>> import numpy as np
    >>> m = np.array([[1, 1], [0, 0]], bool)
    >>> runs_of(m).tolist(), runs_of(m, "column").tolist()
    ([[0, 2]], [[0, 1], [2, 3]])
    """
    return encode(mask.T if order == "column" else mask)


def mask_of(runs: np.ndarray, height: int, width: int, order: str = "row") -> np.ndarray:
    """The dense ``height`` × ``width`` mask of ``runs`` given in RLE ``order``."""
    if order == "column":
        return decode(runs, (width, height)).T
    return decode(runs, (height, width))


def transposed_runs(runs: np.ndarray, height: int, width: int) -> np.ndarray:
    """The canonical runs of the transposed mask (``width`` × ``height``) of canonical runs
    over ``height`` × ``width``: a row-major mask's column-major runs. Only the mask's
    bounding box is made dense, so the cost follows the mask, not the image.

    >>> import numpy as np
    >>> transposed_runs(np.array([[0, 2], [3, 4]]), 2, 3).tolist()  # [[1, 1, 0], [1, 0, 0]]
    [[0, 3]]
    """
    runs = np.asarray(runs, np.int64).reshape(-1, 2)
    if not len(runs):
        return np.zeros((0, 2), np.int64)
    r0 = int(runs[0, 0]) // width
    r1 = (int(runs[-1, 1]) - 1) // width + 1
    box = decode(runs - r0 * width, (r1 - r0, width))
    cols = np.flatnonzero(box.any(0))
    c0, c1 = int(cols[0]), int(cols[-1]) + 1
    n = r1 - r0 + 1  # a background pixel ends each transposed row: no run crosses rows
    t = np.zeros((c1 - c0, n), np.uint8)
    t[:, :-1] = box[:, c0:c1].T
    sub = encode(t)
    start = (c0 + sub[:, 0] // n) * height + r0 + sub[:, 0] % n
    stop = start + (sub[:, 1] - sub[:, 0])
    touch = start[1:] == stop[:-1]  # a run down to the last row, the next from row 0 of the next column
    if touch.any():
        start, stop = start[np.r_[True, ~touch]], stop[np.r_[~touch, True]]
    return np.stack([start, stop], 1)


@dataclass(frozen=True)
class Sizes:
    """Each image's ``(height, width)``: ``table`` where it names the image, else one size for
    every image (``height`` × ``width``; ``None`` when a table must name every image)."""

    height: int | None
    width: int | None
    table: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    origin: str = ""

    def of(self, image: str) -> tuple[int, int] | None:
        """The size of ``image``, or ``None`` when nothing gives it."""
        size = self.table.get(image)
        if size is None and self.height is not None and self.width is not None:
            return self.height, self.width
        return size

    @property
    def uniform(self) -> bool:
        """Whether every image has the one size."""
        return not self.table and self.height is not None

    @classmethod
    def one(cls, height: int, width: int) -> Sizes:
        return cls(height, width)

    @classmethod
    def read(cls, path: str | os.PathLike, image_column: str = "image_name") -> Sizes:
        """Sizes from ``--sizes``: a CSV with the image column and ``height,width``, or a folder
        of the images (sizes read from the files' headers, without decoding the pixels)."""
        path = Path(path)
        if path.is_dir():
            return cls._from_images(path)
        if not path.is_file():
            raise InputError(f"{shown(path)}: sizes: no such file or folder")
        return cls._from_csv(path, image_column)

    @classmethod
    def _from_csv(cls, path: Path, image_column: str) -> Sizes:
        import csv

        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{shown(path)}: cannot read sizes ({e.__class__.__name__})") from None
        if not rows:
            raise InputError(f"{shown(path)}: empty sizes file (expected {image_column},height,width)")
        header = [h.strip() for h in rows[0]]
        missing = [c for c in (image_column, "height", "width") if c not in header]
        if missing:
            raise InputError(
                f"{shown(path)}:1: sizes: missing column(s) {', '.join(missing)} (header is {shown(','.join(header))})"
            )
        at = [header.index(c) for c in (image_column, "height", "width")]
        table: dict[str, tuple[int, int]] = {}
        for line, row in enumerate(rows[1:], start=2):
            if not any(f.strip() for f in row):
                continue
            try:
                name, h, w = (row[k].strip() for k in at)
                size = (int(h), int(w))
            except (IndexError, ValueError):
                raise InputError(f"{shown(path)}:{line}: sizes: expected {image_column},height,width") from None
            if not all(1 <= s <= MAX_SIDE for s in size):
                raise InputError(f"{shown(path)}:{line}: image {shown(name)}: size {h}×{w} out of [1, {MAX_SIDE:,}]")
            if name in table and table[name] != size:
                raise InputError(f"{shown(path)}:{line}: image {shown(name)}: two sizes given")
            table[_basename(name)] = size
        return cls(None, None, table, str(path))

    @classmethod
    def _from_images(cls, folder: Path) -> Sizes:
        from PIL import Image, UnidentifiedImageError

        table: dict[str, tuple[int, int]] = {}
        for p in sorted(folder.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
                continue
            try:
                with Image.open(p) as im:
                    w, h = im.size
            except (OSError, UnidentifiedImageError):
                raise InputError(f"{shown(p)}: sizes: cannot read the image's header") from None
            table.setdefault(p.name, (h, w))
            table.setdefault(p.stem, (h, w))
        if not table:
            raise InputError(f"{shown(folder)}: sizes: holds no image files")
        return cls(None, None, table, str(folder))


def _basename(name: str) -> str:
    return name[max(name.rfind("/"), name.rfind("\\")) + 1 :]
