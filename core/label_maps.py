"""PNG label maps: a folder of ``<stem>.png`` images where a pixel's value is its class (``0`` the
background, ``k`` the ``k``-th class of the class list; 8- or 16-bit), for mutually exclusive
classes; or, for overlapping classes, a folder of per-class binary PNGs ``<stem>/<class>.png``
(any non-zero pixel is the class).

Reading turns each image into RLE text per class (in the run's RLE order, so that the run
algebra sees the same canonical runs as from a CSV) and its size; writing does the reverse
(``core.label_write``: ``label_image``, ``write_png`` and the jobs' ``LabelMapWriter``). Sizes
come from the files themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from core.codec import format_rle
from core.errors import InputError, plural, shown
from core.label_write import is_label_folder, label_image, write_png
from core.layout import runs_of

__all__ = [
    "image_files",
    "is_label_folder",
    "label_image",
    "label_predictions",
    "read_class_folder",
    "read_label_folder",
    "read_label_map",
    "write_png",
]

SUFFIX = ".png"


def _open(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I;16", "I;16B", "I;16L", "I", "1"):
                raise InputError(
                    f"{shown(path)}: a label map must be a one-channel 8- or 16-bit PNG, not mode {im.mode}"
                )
            return np.asarray(im)
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"{shown(path)}: cannot read as PNG ({e.__class__.__name__})") from None


def image_files(folder: str | os.PathLike, per_class: bool) -> list[Path]:
    """The label maps of ``folder``, sorted by name: ``<stem>.png`` files, or with
    ``per_class`` the ``<stem>/`` folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{shown(folder)}: no such folder of label maps")
    if per_class:
        found = sorted(p for p in folder.iterdir() if p.is_dir())
    else:
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() == SUFFIX and p.is_file())
    if not found:
        what = "per-image folders of class PNGs" if per_class else "*.png label maps"
        raise InputError(f"{shown(folder)}: holds no {what}")
    return found


def read_label_map(path: Path, classes: Sequence[str], order: str = "row") -> tuple[list[str], tuple[int, int]]:
    """One exclusive label map: the RLE text of each class (``order``: ``row`` or ``column``)
    and the image's ``(height, width)``. A value beyond the class list is an ``InputError``
    naming the file, the value and the pixel."""
    labels = _open(path)
    if labels.ndim != 2:
        raise InputError(f"{shown(path)}: a label map must have one channel")
    top = int(labels.max()) if labels.size else 0
    if top > len(classes):
        y, x = (int(v[0]) for v in np.nonzero(labels == top))
        raise InputError(
            f"{shown(path)}: pixel value {top} at row {y}, column {x} is outside the class list "
            f"({plural(len(classes), 'class')}: values 0 to {len(classes)})"
        )
    rles = [format_rle(runs_of(labels == k + 1, order)) for k in range(len(classes))]
    return rles, (int(labels.shape[0]), int(labels.shape[1]))


def read_class_folder(folder: Path, classes: Sequence[str], order: str = "row") -> tuple[list[str], tuple[int, int]]:
    """One image's per-class binary PNGs ``folder/<class>.png`` (a class without a file is an
    empty mask; a file of an unknown class is an error); every PNG must have the same size."""
    known = set(classes)
    files = {p.stem: p for p in folder.iterdir() if p.suffix.lower() == SUFFIX}
    unknown = sorted(set(files) - known)
    if unknown:
        raise InputError(f"{shown(folder)}: {shown(unknown[0])}.png names no class of the class list")
    size = None
    masks = {}
    for name, p in files.items():
        m = _open(p) != 0
        if m.ndim != 2:
            raise InputError(f"{shown(p)}: a class mask must have one channel")
        if size is not None and m.shape != size:
            raise InputError(
                f"{shown(p)}: {m.shape[0]}×{m.shape[1]}, where the image's other masks are {size[0]}×{size[1]}"
            )
        size = m.shape
        masks[name] = m
    if size is None:
        raise InputError(f"{shown(folder)}: holds no class PNG")
    rles = [format_rle(runs_of(masks[c], order)) if c in masks else "" for c in classes]
    return rles, (int(size[0]), int(size[1]))


def read_label_folder(
    folder: str | os.PathLike, classes: Sequence[str], order: str = "row", per_class: bool = False
) -> Iterator[tuple[str, list[str], tuple[int, int]]]:
    """``(image name, RLE text per class, (height, width))`` of every label map of ``folder``,
    in name order; the image name is ``<stem>.png``."""
    for p in image_files(folder, per_class):
        rles, size = (read_class_folder if per_class else read_label_map)(p, classes, order)
        yield (p.name if not per_class else f"{p.name}{SUFFIX}"), rles, size


def label_predictions(folder: str | os.PathLike, classes: Sequence[str], order: str = "row"):
    """A folder of PNG label maps (exclusive classes) or of per-image folders of class PNGs,
    as ``Predictions`` in RLE ``order``, each image at its own size."""
    from core.predictions import predictions_from_rles

    per_class = Path(folder).is_dir() and any(p.is_dir() for p in Path(folder).iterdir())
    images, rles, sizes = [], [], []
    for image, text, size in read_label_folder(folder, classes, order, per_class):
        images.append(image)
        rles.append(text)
        sizes.append(size)
    return predictions_from_rles(str(folder), classes, images, rles, sizes=sizes, order=order)
