"""The soft vote's plan: settings → sources (models, map folders) → a ``SoftJob`` that votes
one image (``SoftJob.vote``), and the batches of images the models run on.

Images flow one at a time: the models run on a batch of ``batch_size`` images (main thread),
then each image's maps are loaded and voted in one of ``workers`` threads (numba kernels
release the GIL), and rows are written in image order. Memory is bounded by the maps and
model outputs of the images in flight, whatever the number of images.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.classes import CLASS_CHUNK
from core.codec import format_rle
from core.errors import InputError, UsageError, shown
from core.layout import DEFAULT_LAYOUT, Layout, Sizes, transposed_runs
from core.predictions import MemoryWriter, Predictions, predictions_from_rles, writer_for
from ensemble.maps import MapSource, read_boxes
from ensemble.soft_image import Layer, vote_image, vote_image_exclusive
from postprocess.cleaner import Cleaner, build_cleaner
from settings.soft import SoftSettings, background_weights, soft_source_names, source_weights, thresholds


def find_images(root: str) -> list[tuple[str, Path]]:
    """``(basename, path)`` of every ``*.png`` under ``root`` (recursively, any case of the
    extension), sorted by relative path as the original tool did."""
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"image_root: {root} is not a folder")
    found = []
    for dirpath, _, files in os.walk(base):
        for f in files:
            if os.path.splitext(f)[1].lower() == ".png":
                p = Path(dirpath) / f
                found.append((str(p.relative_to(base)), p))
    found.sort()
    seen: dict[str, Path] = {}
    for _, p in found:
        if p.name in seen:
            raise InputError(
                f"image_root: {seen[p.name]} and {p} share the name {p.name} (the CSV names images by basename)"
            )
        seen[p.name] = p
    return [(p.name, p) for _, p in found]


@dataclass
class SoftJob:
    """Everything needed to vote every image.

    ``height`` × ``width`` is every image's size unless ``sizes`` gives each its own, or
    models run on the images (then an image's own size is that of its file). ``layout``: the
    output's columns and RLE order (column order: the runs of the transposed mask).
    ``exclusive``: maps and models give C + 1 channels, channel 0 the background, voted with
    the weights ``background``; each pixel takes the channel of the largest weighted mean."""

    classes: tuple[str, ...]
    height: int
    width: int
    images: list[tuple[str, Path | None]]
    names: list[str]  # sources: models first, then map folders
    weights: np.ndarray  # (n_sources, n_classes)
    thresholds: np.ndarray  # (n_classes,)
    maps: list[MapSource]
    models: list = field(default_factory=list)  # ModelSource, loaded by load_models
    model_specs: list[tuple[int, str]] = field(default_factory=list)
    missing: str = "error"
    tta: tuple[str, ...] = ()
    batch_size: int = 1
    workers: int = 1
    device: str | None = None
    root_path: str | None = None
    clean: Cleaner | None = None
    engine: str = "auto"  # auto | cpu (numba) | device (torch); settled by ``resolve_engine``
    class_chunk: int = CLASS_CHUNK
    tf32: bool = True  # False: models' convolutions and matrix products in full float32 on GPUs
    exclusive: bool = False
    background: np.ndarray | None = None  # (n_sources,) weights of channel 0 (exclusive)
    layout: Layout = DEFAULT_LAYOUT
    sizes: Sizes | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # image → its size, as voted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read_maps(self, name: str) -> list[Layer | None]:
        """Each map source's layer for an image, ``None`` where the source has none (file
        I/O only: safe to run ahead in threads)."""
        return [src.load(name, len(self.classes), self.exclusive) for src in self.maps]

    def size_of(self, name: str, pixels: np.ndarray | None = None) -> tuple[int, int]:
        """The image's ``(height, width)``: from ``sizes`` (an image it lacks is an error), else
        its file's (``pixels``, when models read it), else ``height`` × ``width``."""
        own = None if pixels is None else (int(pixels.shape[-2]), int(pixels.shape[-1]))
        if self.sizes is not None:
            size = self.sizes.of(name) or self.sizes.of(Path(name).stem)
            if size is None:
                raise InputError(f"{shown(self.sizes.origin)}: sizes: no size for image {shown(name)}")
            if own is not None and tuple(size) != own:
                raise InputError(
                    f"{shown(self.sizes.origin)}: sizes: image {shown(name)} is {own[0]}×{own[1]}, "
                    f"the sizes say {size[0]}×{size[1]}"
                )
            own = (int(size[0]), int(size[1]))
        size = own or (self.height, self.width)
        self.seen[name] = size
        return size

    def channel_weights(self, rows: list[int]) -> np.ndarray:
        """The weights of the image's sources ``rows``: (L, C), or (L, C + 1) with the
        background first where the classes are exclusive."""
        if not self.exclusive:
            return self.weights[rows]
        return np.column_stack([self.background[rows], self.weights[rows]])

    def present(self, name: str, n_models: int, maps: list[Layer | None]) -> list[int]:
        """Rows of ``weights`` for the image's sources: its models, then the map sources
        that have it (absent ones are counted under ``missing: skip``, an error otherwise)."""
        rows = list(range(n_models))
        for k, (src, layer) in enumerate(zip(self.maps, maps, strict=True)):
            if layer is not None:
                rows.append(len(self.model_specs) + k)
                continue
            if self.missing != "skip":
                raise InputError(f"{src.absent(name)} (missing: skip averages over the sources present)")
            with self._lock:
                self.skipped[src.name] = self.skipped.get(src.name, 0) + 1
        if not rows:
            raise InputError(f"image {shown(name)}: no source has a map for it")
        if self.exclusive and self.background[rows].sum() <= 0:
            raise InputError(
                f"image {shown(name)}: no source with weight > 0 for the background (channel 0) "
                "among the sources present"
            )
        dead = np.flatnonzero(self.weights[rows].sum(0) <= 0)
        if len(dead):
            raise InputError(
                f"image {shown(name)}: no source with weight > 0 for class {shown(self.classes[dead[0]])} "
                "among the sources present"
            )
        return rows

    def image_layers(self, name: str, logits: list[np.ndarray]) -> tuple[list[Layer], np.ndarray]:
        """The image's layers (models, then the map sources that have it) and their weights."""
        maps = self.read_maps(name)
        rows = self.present(name, len(logits), maps)
        layers = [Layer(lg, logits=True, name=n) for lg, n in zip(logits, self.names, strict=False)]
        return layers + [m for m in maps if m is not None], self.channel_weights(rows)

    def encode(
        self,
        runs: list[np.ndarray],
        fmt: Callable[[np.ndarray], str] = format_rle,
        grid: tuple[int, int] | None = None,
    ) -> list[str]:
        """One image's RLE strings in class order, cleaned first when a postprocess is set
        (on ``grid``, the ``(rows, columns)`` the runs cover; exclusive classes stay
        exclusive: the class listed first keeps a pixel that cleaning gave to two)."""
        if self.clean is not None:
            runs = [self.clean(c, r, grid) for c, r in enumerate(runs)]
            if self.exclusive:
                from core.exclusivity import resolve_overlaps

                runs, _ = resolve_overlaps(runs, "first")
        return [fmt(r) for r in runs]

    def vote(self, name: str, logits: list[np.ndarray], size: tuple[int, int] | None = None) -> list[str]:
        """The RLE strings of one image, in class order (numba engine); ``size``: the image's
        ``(height, width)`` (default ``size_of``)."""
        h, w = size or self.size_of(name)
        layers, weights = self.image_layers(name, logits)
        if self.exclusive:
            runs = vote_image_exclusive(layers, weights, h, w, len(self.classes))
        else:
            runs = vote_image(layers, weights, self.thresholds, h, w)
        if self.layout.transposed:  # column-major RLE: the runs of the transposed mask
            runs = [transposed_runs(r, h, w) for r in runs]
        return self.encode(runs, grid=self.layout.grid(h, w))


def build_job(cfg: SoftSettings, where: str) -> SoftJob:
    """Validate the settings into a job (models are not loaded yet: see ``load_models``)."""
    classes = cfg.class_list()
    specs = cfg.models()
    if not specs and not cfg.prob_maps:
        raise UsageError(f"{where}: nothing to vote: model_paths are all empty and there are no prob_maps")
    names = soft_source_names(cfg)
    weights = source_weights(cfg, names, classes, where)
    thr = thresholds(cfg, classes, where)
    layout = Layout.parse(cfg.columns, cfg.rle_order)
    if layout.cls is None and len(classes) != 1:
        raise UsageError(
            f"columns: a file without a class column holds one class, but the class list has {len(classes)}",
            param="columns",
        )
    if cfg.exclusive and "threshold" in cfg.model_fields_set:
        raise UsageError(
            f"{where}: threshold: exclusive classes take the channel of the largest weighted mean; "
            "no threshold applies (remove it)"
        )
    maps = []
    for k, m in enumerate(cfg.prob_maps):
        boxes = read_boxes(m.boxes, f"{where}: prob_maps[{k}]") if m.boxes else None
        maps.append(MapSource(names[len(specs) + k], Path(m.path), m.logits, m.scale, boxes, m.boxes))
    if cfg.image_root is not None:
        images: list[tuple[str, Path | None]] = list(find_images(cfg.image_root))
        if not images:
            raise UsageError(f"image_root: no *.png files under {cfg.image_root}")
    elif specs:
        raise UsageError(f"{where}: image_root is required to run models")
    else:
        stems = maps[0].stems()
        if not stems:
            raise UsageError(f"prob_maps: source {shown(maps[0].name)}: no .npy/.npz maps in {maps[0].folder}")
        images = [(f"{s}.png", None) for s in stems]
    if cfg.tta and not specs:
        raise UsageError(f"{where}: tta applies to model_paths; there are none")
    return SoftJob(
        classes=classes,
        height=cfg.height,
        width=cfg.width,
        images=images,
        names=names,
        weights=weights,
        thresholds=thr,
        maps=maps,
        model_specs=specs,
        missing=cfg.missing,
        tta=tuple(cfg.tta),
        batch_size=cfg.batch_size,
        workers=max(cfg.num_workers, 1),
        device=cfg.device,
        root_path=cfg.root_path,
        engine=cfg.engine,
        class_chunk=cfg.class_chunk,
        tf32=cfg.tf32,
        clean=build_cleaner(cfg.postprocess, classes, cfg.height, cfg.width, where),
        exclusive=cfg.exclusive,
        background=background_weights(cfg, names, where) if cfg.exclusive else None,
        layout=layout,
        sizes=Sizes.read(cfg.sizes, layout.image) if cfg.sizes is not None else None,
    )


def _cuda_present() -> bool:
    """Whether an NVIDIA GPU may be here, without importing torch (seconds) where the answer
    is plainly no: on Linux the driver lists its GPUs under /proc."""
    if sys.platform.startswith("linux"):
        gpus = Path("/proc/driver/nvidia/gpus")
        return gpus.is_dir() and any(gpus.iterdir())
    return True


def _torch_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def resolve_engine(job: SoftJob) -> None:
    """Settle ``job.engine`` (``cpu``: numba kernels; ``device``: torch on ``job.device``)
    and ``job.device``: ``auto`` takes the device engine when the device is not the CPU and
    torch is installed. Models and the device engine need torch: without it, a one-line
    ``UsageError`` says how to install it."""
    if (
        not job.model_specs
        and job.engine != "device"
        and (
            job.engine == "cpu"
            or job.device == "cpu"
            or (job.device in (None, "auto") and (not _cuda_present() or not _torch_installed()))
        )
    ):
        job.engine, job.device = "cpu", "cpu"
        return
    if not _torch_installed():
        needs = "models (model_paths)" if job.model_specs else f"the {job.engine} engine on device {job.device}"
        raise UsageError(f"{needs} need torch, which is not installed: pip install '.[gpu]' (or torch)")
    from ensemble.models import resolve_device

    device = resolve_device(job.device)
    job.device = str(device)
    if job.engine == "auto":
        job.engine = "cpu" if device.type == "cpu" else "device"


def load_models(job: SoftJob, warn: Callable[[str], None]) -> None:
    """Load the job's checkpoints onto ``job.device`` (see ``resolve_engine``)."""
    if not job.model_specs:
        return
    from ensemble.models import ModelSource, load_model, set_tf32

    if not job.tf32:
        set_tf32(False)
    warned: list[bool] = []

    def warn_once(msg: str) -> None:
        if not warned:
            warned.append(True)
            warn(msg)

    def load(path: str):
        # A cluster worker keeps its models across chunks (core.workercache; off otherwise).
        from core import workercache

        if not workercache.enabled() or not Path(path).is_file():
            return load_model(path, job.device, job.root_path, warn_once)
        key = (*workercache.file_key(path), str(job.device), job.root_path, job.tf32)
        return workercache.cached("model", key, lambda: load_model(path, job.device, job.root_path, warn_once))

    job.models = [
        ModelSource(name, path, size, load(path))
        for name, (size, path) in zip(job.names, job.model_specs, strict=False)
    ]


def batches(job: SoftJob):
    """``(name, model logits, (height, width))`` per image, running the models a batch at a
    time."""
    for lo in range(0, len(job.images), job.batch_size):
        batch = job.images[lo : lo + job.batch_size]
        if not job.models:
            for name, _ in batch:
                yield name, [], job.size_of(name)
            continue
        from ensemble.models import infer, read_image

        pixels = [read_image(path) for _, path in batch]
        sizes = [job.size_of(name, p) for (name, _), p in zip(batch, pixels, strict=True)]
        logits = infer(job.models, pixels, job.tta, job.device, len(job.classes), job.exclusive)
        del pixels
        for (name, _), lg, size in zip(batch, logits, sizes, strict=True):
            yield name, lg, size


class _SizedMemory(MemoryWriter):
    """``MemoryWriter`` of a soft job whose images may differ in size or whose runs are
    column-major: the ``Predictions`` carry each image's size (as voted) and the RLE order."""

    def __init__(self, job: SoftJob):
        super().__init__("soft vote", job.classes, job.height, job.width)
        self.job = job

    def predictions(self) -> Predictions:
        sizes = [self.job.seen[name] for name in self.images]
        uniform = all(s == (self.height, self.width) for s in sizes)
        return predictions_from_rles(
            self.label,
            self.classes,
            self.images,
            self.rles,
            self.height,
            self.width,
            None if uniform else sizes,
            self.job.layout.order,
        )


def soft_writer(job: SoftJob, output: str | Path | None):
    """Where the job's rows go: ``output`` laid out as the job's layout, or memory."""
    if output is None:
        return _SizedMemory(job)
    return writer_for(
        output,
        job.classes,
        job.height,
        job.width,
        "soft vote",
        job.layout,
        size_of=job.size_of,
        exclusive=job.exclusive,
        command="soft",
    )
