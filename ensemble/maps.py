"""Probability-map sources: a folder of per-image ``<stem>.npy`` / ``<stem>.npz`` files,
each one (C, h, w) array, optionally covering only a box given by a CSV table."""

from __future__ import annotations

import csv
import io
import math
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError, UsageError, shown
from core.inputs import require_file
from ensemble.soft_image import Layer

FLOAT_TYPES = (np.float16, np.float32, np.float64)
QUANTIZED_TYPES = (np.uint8, np.uint16)


def read_boxes(path: str, where: str) -> dict[str, tuple[int, int, int, int]]:
    """``{image basename: (y0, x0, y1, x1)}`` from a CSV ``image_name,x0,y0,x1,y1``
    (integer pixel coordinates, half-open: ``x0 <= x < x1``; may reach past the canvas)."""
    p = Path(path)
    require_file(p, UsageError, f"{where}: boxes file ")
    if not p.is_file():
        raise UsageError(f"{where}: boxes file {path} not found")
    out: dict[str, tuple[int, int, int, int]] = {}
    cols = ("image_name", "x0", "y0", "x1", "y1")
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in cols if c not in header]
            if missing:
                raise InputError(f"{path}:1: missing column(s) {', '.join(missing)} (expected {','.join(cols)})")
            reader.fieldnames = header
            for line, row in enumerate(reader, start=2):
                name = Path((row["image_name"] or "").strip().replace("\\", "/")).name
                if not name:
                    raise InputError(f"{path}:{line}: empty image name")
                try:
                    x0, y0, x1, y1 = (_int(row[c]) for c in cols[1:])
                except ValueError:
                    raise InputError(f"{path}:{line}: image {shown(name)}: box coordinates must be integers") from None
                if max(abs(x0), abs(y0), abs(x1), abs(y1)) > _MAX_COORD:
                    raise InputError(f"{path}:{line}: image {shown(name)}: box coordinate beyond ±{_MAX_COORD:,}")
                if x1 <= x0 or y1 <= y0:
                    raise InputError(f"{path}:{line}: image {shown(name)}: empty box (need x1 > x0 and y1 > y0)")
                if name in out:
                    raise InputError(f"{path}:{line}: image {shown(name)}: second box for the same image")
                out[name] = (y0, x0, y1, x1)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e.__class__.__name__})") from None
    return out


_MAX_COORD = 1 << 20  # a box is resampled to its own size: this bounds the tables built for it


def _int(text: str | None) -> int:
    v = float((text or "").strip())
    if not math.isfinite(v) or not v.is_integer():
        raise ValueError(text)
    return int(v)


@dataclass
class MapSource:
    """One ``prob_maps`` entry, resolved: where its files are and how to read them."""

    name: str
    folder: Path
    logits: bool = False
    scale: float | None = None
    boxes: dict[str, tuple[int, int, int, int]] | None = None
    boxes_path: str | None = None

    def __post_init__(self) -> None:
        if not self.folder.is_dir():
            raise UsageError(f"prob_maps: source {shown(self.name)}: folder {self.folder} not found")

    def stems(self) -> list[str]:
        """Sorted stems of the maps in the folder."""
        stems = {p.stem for p in self.folder.iterdir() if p.suffix in (".npy", ".npz") and p.is_file()}
        return sorted(stems)

    def file_for(self, stem: str) -> Path | None:
        """The map file of an image stem, or None; both ``.npy`` and ``.npz`` is an error."""
        found = [p for p in (self.folder / f"{stem}.npy", self.folder / f"{stem}.npz") if p.is_file()]
        if len(found) > 1:
            raise InputError(
                f"{found[0]} and {found[1]}: two maps for image {shown(stem)} in source {shown(self.name)}"
            )
        return found[0] if found else None

    def load(self, image: str, n_classes: int, exclusive: bool = False) -> Layer | None:
        """The image's map as a Layer, or None when the source has no map (or box) for it.
        Malformed files raise InputError naming the file. ``exclusive``: the map holds
        ``n_classes + 1`` channels, channel 0 the background."""
        path = self.file_for(Path(image).stem)
        if path is None:
            return None
        box = None
        if self.boxes is not None:
            box = self.boxes.get(image)
            if box is None:
                return None
        data = _read_array(path)
        self._check(path, data, n_classes, image if exclusive else None)
        return Layer(data, logits=self.logits, scale=self.scale, box=box, name=self.name, origin=str(path))

    def absent(self, image: str) -> str:
        """Why ``load`` found nothing for an image, for the error message."""
        stem = Path(image).stem
        if self.file_for(stem) is None:
            return f"source {shown(self.name)}: no map for image {shown(image)} ({self.folder}/{stem}.npy or .npz)"
        return f"source {shown(self.name)}: no box for image {shown(image)} in {self.boxes_path}"

    def _check(self, path: Path, a: np.ndarray, n_classes: int, exclusive_image: str | None = None) -> None:
        """``exclusive_image``: the image whose map must hold the background and the classes."""
        if a.ndim != 3:
            raise InputError(f"{path}: map of shape {a.shape}; expected (classes, height, width)")
        if exclusive_image is not None and a.shape[0] != n_classes + 1:
            raise InputError(
                f"{path}: image {shown(exclusive_image)}: {a.shape[0]} channels, expected {n_classes + 1} "
                f"(exclusive: channel 0 the background, then {n_classes} classes)"
            )
        if exclusive_image is None and a.shape[0] != n_classes:
            raise InputError(f"{path}: {a.shape[0]} channels, expected {n_classes} (one per class)")
        if a.shape[1] < 1 or a.shape[2] < 1:
            raise InputError(f"{path}: empty map of shape {a.shape}")
        if a.dtype in QUANTIZED_TYPES:
            if self.scale is None:
                raise InputError(
                    f"{path}: {a.dtype} map needs 'scale' in source {shown(self.name)} (probability = value / scale)"
                )
            if self.logits:
                raise InputError(f"{path}: {a.dtype} map in source {shown(self.name)}: logits must be float")
        elif a.dtype in FLOAT_TYPES:
            if self.scale is not None:
                raise InputError(
                    f"{path}: {a.dtype} map in source {shown(self.name)}: 'scale' applies to uint8/uint16 maps only"
                )
        else:
            raise InputError(f"{path}: unsupported dtype {a.dtype} (float16/32/64, or uint8/uint16 with scale)")


# numpy parses .npy headers with ``ast.literal_eval``, and CPython's ast module keeps one
# recursion counter for all threads (gh-106905): two threads parsing at once can fail with
# "SystemError: AST constructor recursion depth mismatch". Maps are read in threads (both
# soft engines), so header parsing holds this lock; decompressing the data does not.
_HEADER_LOCK = threading.Lock()


def _read_array(path: Path) -> np.ndarray:
    """A ``.npy`` file (memory-mapped: only the pages read are loaded) or the single array
    of a ``.npz`` file."""
    try:
        if path.suffix == ".npy":
            with _HEADER_LOCK:
                return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if len(names) != 1:
                shown = ", ".join(n.removesuffix(".npy") for n in names[:4])
                raise InputError(f"{path}: {len(names)} arrays ({shown}); expected exactly one")
            raw = z.read(names[0])
        with _HEADER_LOCK:
            return np.load(io.BytesIO(raw), allow_pickle=False)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = (str(e).splitlines() or [""])[0]
        raise InputError(f"{path}: cannot read map ({e.__class__.__name__}: {why})") from None
