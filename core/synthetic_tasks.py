"""A synthetic set of another task than the hand bones, laid out as Kaggle competitions lay
out theirs: mutually exclusive classes (``'1'`` … ``'4'``), images of several non-square
sizes, column-major RLE in ``ImageId,ClassId,EncodedPixels`` with a ``sizes.csv``; ground
truth, several models' CSVs, and the same predictions as folders of PNG label maps.

Each image is a few rotated ellipses per class painted in class order (a later class covers an
earlier one: the classes stay exclusive). Models see the same ellipses through per-(model,
class) quality: shifted, scaled, sometimes missed or given another class, with false-positive
specks. The images are small, so each is drawn as a dense label map; everything is
deterministic in ``seed``.
"""

from __future__ import annotations

import contextlib
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.codec import format_rle
from core.csv_write import PredictionWriter
from core.layout import Layout, runs_of
from core.synthetic import model_quality

KAGGLE_CLASSES = ("1", "2", "3", "4")
KAGGLE_COLUMNS = "image=ImageId,class=ClassId,rle=EncodedPixels"
KAGGLE_LAYOUT = Layout.parse(KAGGLE_COLUMNS, "column")
TASK_SIZES = ((128, 320), (320, 128), (96, 256), (160, 400), (200, 120), (144, 360))
"""``(height, width)`` of the images, in turn: none square (square images read the same in
both RLE orders, up to a transpose)."""


@dataclass(frozen=True)
class Blob:
    cy: float
    cx: float
    ry: float
    rx: float
    theta: float
    cls: int  # position in the class list


@dataclass(frozen=True)
class TaskImage:
    """One image: its name, ``(height, width)`` and label maps (0 the background, ``k`` the
    ``k``-th class) of the ground truth and of each model."""

    name: str
    size: tuple[int, int]
    gt: np.ndarray
    models: dict[str, np.ndarray]


def paint(blobs: Sequence[Blob], height: int, width: int) -> np.ndarray:
    """The label map of ``blobs`` painted in order (a later blob covers an earlier one)."""
    yy, xx = np.mgrid[:height, :width]
    out = np.zeros((height, width), np.uint8)
    for b in blobs:
        c, s = math.cos(b.theta), math.sin(b.theta)
        dy, dx = yy - b.cy, xx - b.cx
        u, v = dy * c + dx * s, -dy * s + dx * c
        out[(u / b.ry) ** 2 + (v / b.rx) ** 2 <= 1] = b.cls + 1
    return out


class TaskGenerator:
    """Deterministic synthetic set of exclusive classes on non-square images of mixed sizes:
    ``TaskGenerator(...).images()`` yields ``TaskImage``; models are named ``m0``, ``m1`` …"""

    def __init__(
        self,
        n_images: int = 4,
        n_models: int = 3,
        seed: int = 0,
        classes: Sequence[str] = KAGGLE_CLASSES,
        sizes: Sequence[tuple[int, int]] = TASK_SIZES,
        model_names: Sequence[str] | None = None,
    ):
        self.n_images = n_images
        self.seed = seed
        self.classes = tuple(classes)
        self.sizes = tuple(sizes)
        self.model_names = list(model_names or [f"m{k}" for k in range(n_models)])
        self.quality = model_quality(len(self.model_names), len(self.classes), seed)

    def image_name(self, i: int) -> str:
        return f"img{i:05d}.png"

    def size(self, i: int) -> tuple[int, int]:
        return self.sizes[(i + self.seed) % len(self.sizes)]

    def _blobs(self, rng: np.random.Generator, height: int, width: int) -> list[Blob]:
        side = min(height, width)
        out = []
        for c in range(len(self.classes)):
            for _ in range(int(rng.integers(1, 3))):
                ry, rx = rng.uniform(0.05, 0.16, 2) * side
                out.append(
                    Blob(
                        rng.uniform(0.15, 0.85) * height,
                        rng.uniform(0.15, 0.85) * width,
                        ry,
                        rx,
                        rng.uniform(0, math.pi),
                        c,
                    )
                )
        return out

    def _model_blobs(self, blobs: list[Blob], m: int, rng: np.random.Generator, side: int) -> list[Blob]:
        out = []
        for b in blobs:
            err = 1 - self.quality[m, b.cls]
            if rng.random() < 0.25 * err:  # missed
                continue
            cls = b.cls
            if rng.random() < 0.3 * err:  # given another class
                cls = int(rng.integers(len(self.classes)))
            out.append(
                Blob(
                    b.cy + rng.normal(0, 1 + 0.06 * err * side),
                    b.cx + rng.normal(0, 1 + 0.06 * err * side),
                    b.ry * rng.normal(1, 0.03 + 0.2 * err),
                    b.rx * rng.normal(1, 0.03 + 0.2 * err),
                    b.theta + rng.normal(0, 0.05 + 0.3 * err),
                    cls,
                )
            )
            for _ in range(rng.poisson(0.3 + 2 * err)):  # false-positive specks nearby
                r = rng.uniform(1.5, 0.03 * side + 2)
                ang = rng.uniform(0, 2 * math.pi)
                dist = max(b.ry, b.rx) + rng.uniform(3, 0.2 * side)
                out.append(Blob(b.cy + dist * math.cos(ang), b.cx + dist * math.sin(ang), r, r, 0.0, cls))
        return out

    def image(self, i: int) -> TaskImage:
        """Image ``i`` (independent of the others)."""
        height, width = self.size(i)
        rng = np.random.default_rng([self.seed, i, 101])
        blobs = self._blobs(rng, height, width)
        models = {}
        for m, name in enumerate(self.model_names):
            mrng = np.random.default_rng([self.seed, i, 101, m + 1])
            models[name] = paint(self._model_blobs(blobs, m, mrng, min(height, width)), height, width)
        return TaskImage(self.image_name(i), (height, width), paint(blobs, height, width), models)

    def images(self) -> Iterator[TaskImage]:
        for i in range(self.n_images):
            yield self.image(i)


def label_rles(labels: np.ndarray, n_classes: int, order: str) -> list[str]:
    """The RLE text of each class of a label map, in RLE ``order``."""
    return [format_rle(runs_of(labels == k + 1, order)) for k in range(n_classes)]


def write_task_set(
    gen: TaskGenerator,
    folder: str | os.PathLike,
    layout: Layout = KAGGLE_LAYOUT,
    pngs: bool = True,
    images: bool = True,
    progress=None,
) -> dict[str, Path]:
    """Write ``gt.csv`` and one ``<model>.csv`` per model laid out as ``layout``, ``sizes.csv``
    (``<image column>,height,width``), with ``pngs`` the same predictions as label maps
    ``pngs/<model>/<stem>.png`` (and ``pngs/gt``), with ``images`` grey stand-in pictures
    ``images/<name>`` for a report. Returns the paths (keys ``gt``, each model, ``sizes``,
    ``pngs/<model>``, ``images``)."""
    from PIL import Image

    from core.label_maps import write_png

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keys = ["gt", *gen.model_names]
    paths = {k: folder / f"{k}.csv" for k in keys}
    paths["sizes"] = folder / "sizes.csv"
    if pngs:
        for k in keys:
            paths[f"pngs/{k}"] = folder / "pngs" / k
            paths[f"pngs/{k}"].mkdir(parents=True, exist_ok=True)
    if images:
        paths["images"] = folder / "images"
        paths["images"].mkdir(exist_ok=True)
    writers = {k: PredictionWriter(paths[k], gen.classes, layout) for k in keys}
    sizes = [f"{layout.image},height,width\n"]
    with contextlib.ExitStack() as stack:  # every writer closed, or on an error removed
        for w in writers.values():
            stack.enter_context(w)
        for img in gen.images():
            sizes.append(f"{img.name},{img.size[0]},{img.size[1]}\n")
            for k in keys:
                labels = img.gt if k == "gt" else img.models[k]
                writers[k].write_image(img.name, label_rles(labels, len(gen.classes), layout.order))
                if pngs:
                    write_png(paths[f"pngs/{k}"] / f"{Path(img.name).stem}.png", labels)
            if images:
                Image.fromarray(task_picture(img), "L").save(paths["images"] / img.name, compress_level=1)
            if progress is not None:
                progress.update(1)
    paths["sizes"].write_text("".join(sizes), encoding="utf-8")
    return paths


def task_picture(img: TaskImage) -> np.ndarray:
    """A grey (uint8) stand-in picture of ``img``: each class a little brighter than the
    background, light noise. For pictures only (demo, report)."""
    rng = np.random.default_rng(zlib.crc32(img.name.encode()))
    out = 40.0 + 30.0 * img.gt.astype(np.float32)
    out += 20 * np.linspace(0, 1, img.size[0], dtype=np.float32)[:, None]
    out += rng.normal(0, 4, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
