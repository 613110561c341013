"""The soft-voting job: settings → sources (models, map folders) → images streamed through
the engine → CSV written atomically.

Images flow one at a time: the models run on a batch of ``batch_size`` images (main thread),
then each image's maps are loaded and voted in one of ``workers`` threads (numba kernels
release the GIL), and rows are written in image order. Memory is bounded by the maps and
model outputs of the images in flight, whatever the number of images.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.classes import CLASS_CHUNK
from core.codec import format_rle
from core.errors import InputError, UsageError, plural
from core.predictions import Predictions, writer_for, written
from core.stream import ChunkDone, current_selection
from ensemble.maps import MapSource, read_boxes
from ensemble.soft import Layer, vote_image
from postprocess.clean import Cleaner
from settings.postprocess import build_cleaner
from settings.soft import SoftSettings, repoint, soft_source_names, source_weights, thresholds


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
    """Everything needed to vote every image."""

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
    skipped: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read_maps(self, name: str) -> list[Layer | None]:
        """Each map source's layer for an image, ``None`` where the source has none (file
        I/O only: safe to run ahead in threads)."""
        return [src.load(name, len(self.classes)) for src in self.maps]

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
            raise InputError(f"image {name}: no source has a map for it")
        dead = np.flatnonzero(self.weights[rows].sum(0) <= 0)
        if len(dead):
            raise InputError(
                f"image {name}: no source with weight > 0 for class {self.classes[dead[0]]} among the sources present"
            )
        return rows

    def image_layers(self, name: str, logits: list[np.ndarray]) -> tuple[list[Layer], np.ndarray]:
        """The image's layers (models, then the map sources that have it) and their weights."""
        maps = self.read_maps(name)
        rows = self.present(name, len(logits), maps)
        layers = [Layer(lg, logits=True, name=n) for lg, n in zip(logits, self.names, strict=False)]
        return layers + [m for m in maps if m is not None], self.weights[rows]

    def encode(self, runs: list[np.ndarray], fmt: Callable[[np.ndarray], str] = format_rle) -> list[str]:
        """One image's RLE strings in class order, cleaned first when a postprocess is set."""
        if self.clean is not None:
            runs = [self.clean(c, r) for c, r in enumerate(runs)]
        return [fmt(r) for r in runs]

    def vote(self, name: str, logits: list[np.ndarray]) -> list[str]:
        """The RLE strings of one image, in class order (numba engine)."""
        layers, w = self.image_layers(name, logits)
        return self.encode(vote_image(layers, w, self.thresholds, self.height, self.width))


def build_job(cfg: SoftSettings, where: str) -> SoftJob:
    """Validate the settings into a job (models are not loaded yet: see ``load_models``)."""
    classes = cfg.class_list()
    specs = cfg.models()
    if not specs and not cfg.prob_maps:
        raise UsageError(f"{where}: nothing to vote: model_paths are all empty and there are no prob_maps")
    names = soft_source_names(cfg)
    weights = source_weights(cfg, names, classes, where)
    thr = thresholds(cfg, classes, where)
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
            raise UsageError(f"prob_maps: source {maps[0].name}: no .npy/.npz maps in {maps[0].folder}")
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
    )


def _cuda_present() -> bool:
    """Whether an NVIDIA GPU may be here, without importing torch (seconds) where the answer
    is plainly no: on Linux the driver lists its GPUs under /proc."""
    if sys.platform.startswith("linux"):
        gpus = Path("/proc/driver/nvidia/gpus")
        return gpus.is_dir() and any(gpus.iterdir())
    return True


def resolve_engine(job: SoftJob) -> None:
    """Settle ``job.engine`` (``cpu``: numba kernels; ``device``: torch on ``job.device``)
    and ``job.device``: ``auto`` takes the device engine when the device is not the CPU."""
    if (
        not job.model_specs
        and job.engine != "device"
        and (job.engine == "cpu" or job.device == "cpu" or (job.device in (None, "auto") and not _cuda_present()))
    ):
        job.engine, job.device = "cpu", "cpu"
        return
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


def _batches(job: SoftJob):
    """``(name, model logits)`` per image, running the models a batch at a time."""
    for lo in range(0, len(job.images), job.batch_size):
        batch = job.images[lo : lo + job.batch_size]
        if not job.models:
            for name, _ in batch:
                yield name, []
            continue
        from ensemble.models import infer, read_image

        pixels = [read_image(path) for _, path in batch]
        logits = infer(job.models, pixels, job.tta, job.device, len(job.classes))
        del pixels
        for (name, _), lg in zip(batch, logits, strict=True):
            yield name, lg


def run_job(job: SoftJob, output: str | Path | None, progress=None) -> int | Predictions:
    """Vote every image with the job's engine and write the CSV atomically; returns rows
    written (without ``output``: the voted ``Predictions``). Call ``resolve_engine`` and
    ``load_models`` first when the job has models."""
    if job.engine == "auto":
        resolve_engine(job)
    if job.model_specs and not job.models:
        raise ValueError("the job's models are not loaded: call load_models(job, warn) first")
    if current_selection() is not None:
        _run_selection(job, progress)
    if job.engine == "device":
        from ensemble.device_job import run_device_job

        return run_device_job(job, output, progress)
    return _run_numba(job, output, progress)


def _run_selection(job: SoftJob, progress=None) -> None:
    """Vote only the active ``Selection``'s images (a cluster chunk), keep them there, stop."""
    sel = current_selection()
    sel.images = [n for n, _ in job.images]
    sel.extra["job"] = job  # the cluster sums its skipped maps and cleaning counts
    job.images = job.images[sel.lo : sel.hi]
    if job.images:
        start = time.perf_counter()
        preds = (_run_device if job.engine == "device" else _run_numba)(job, None, progress)
        sel.extra["loop_seconds"] = time.perf_counter() - start
        sel.rles = [[preds.rle(i, c) for c in range(len(job.classes))] for i in range(len(preds.images))]
    raise ChunkDone


def _run_device(job: SoftJob, output, progress=None):
    from ensemble.device_job import run_device_job

    return run_device_job(job, output, progress)


def _run_numba(job: SoftJob, output: str | Path | None, progress=None) -> int | Predictions:
    with writer_for(output, job.classes, job.height, job.width, "soft vote") as writer:
        items = _batches(job)
        # The first image (all of it, with one thread) lets numba compile or load every
        # kernel before worker threads call them: first-time compilation is not thread-safe.
        for name, logits in items if job.workers <= 1 else itertools.islice(items, 1):
            writer.write_image(name, job.vote(name, logits))
            if progress is not None:
                progress.update(1)
        if job.workers <= 1:
            return written(writer)
        with ThreadPoolExecutor(job.workers) as pool:
            pending: deque = deque()
            try:
                for name, logits in items:
                    pending.append((name, pool.submit(job.vote, name, logits)))
                    while len(pending) > job.workers:
                        done_name, fut = pending.popleft()
                        writer.write_image(done_name, fut.result())
                        if progress is not None:
                            progress.update(1)
                while pending:
                    done_name, fut = pending.popleft()
                    writer.write_image(done_name, fut.result())
                    if progress is not None:
                        progress.update(1)
            except BaseException:
                for _, fut in pending:
                    fut.cancel()
                raise
    return written(writer)


@dataclass
class SoftVoteResult:
    """What ``soft_vote`` did.

    Attributes
    ----------
    predictions : Predictions or None
        The voted masks, when no ``output`` was given.
    output : str or None
        The CSV written.
    images : list of str
    rows : int
    engine : str
        ``"cpu"`` (numba kernels) or ``"device"`` (torch on ``device``).
    device : str
    sources : list of str
        Source names (checkpoint stems, then map folders or their ``name:``), as weights use them.
    n_models, n_maps : int
    tta : bool
    skipped : dict
        Map source → images it had no map for (``missing: skip``).
    cleaning : list of str or None
        The inline cleaning's summary table.
    notes : list of str
    """

    predictions: Predictions | None
    output: str | None
    images: list[str]
    rows: int
    engine: str
    device: str
    sources: list[str]
    n_models: int
    n_maps: int
    tta: bool
    skipped: dict[str, int]
    cleaning: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """``soft vote (numba on the CPU): 2 map sources, 4 images, 116 rows → OUT``."""
        from core.errors import plural

        kinds = []
        if self.n_models:
            kinds.append(f"{plural(self.n_models, 'model')} on {self.device}" + (" with hflip TTA" if self.tta else ""))
        if self.n_maps:
            kinds.append(plural(self.n_maps, "map source"))
        engine = f"torch on {self.device}" if self.engine == "device" else "numba on the CPU"
        return (
            f"soft vote ({engine}): {' + '.join(kinds)}, {plural(len(self.images), 'image')}, "
            f"{plural(self.rows, 'row')} → {self.output or 'memory'}"
        )


def soft_vote(
    settings: str | os.PathLike | dict | SoftSettings,
    *,
    output: str | os.PathLike | None = None,
    maps: dict[str, str | os.PathLike] | None = None,
    device: str | None = None,
    engine: str | None = None,
    workers: int | None = None,
    echo: Callable[[str], None] | None = None,
    progress=None,
) -> SoftVoteResult:
    """Soft vote of models and saved probability maps: keep a pixel where
    ``Σ wᵢ·pᵢ / Σ wᵢ > threshold`` (strict; per-class thresholds and weights allowed), on the
    CPU with numba kernels or on a device with torch (the same formula).

    Parameters
    ----------
    settings : path, dict or SoftSettings
        The soft-voting settings (the original ``soft_voting_setting.yaml`` keys, and
        ``prob_maps``, ``weights``, ``threshold``, ``tta``, ``missing``, ``postprocess``,
        ``engine``, ``height``, ``width`` …).
    output : path, optional
        Write the result there (streamed, atomic); else it is returned in memory.
    maps : mapping, optional
        Re-point map sources: name (its ``name:`` or folder name) → folder.
    device : str, optional
        ``cpu``, ``cuda``, ``cuda:N`` (default: the settings', else CUDA when available).
    engine : {"auto", "cpu", "device"}, optional
        Default: the settings' (``auto``: the device engine unless the device is the CPU).
    workers : int, optional
        Images voted at once, in threads (default: the settings' ``num_workers``).
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.

    Returns
    -------
    SoftVoteResult

    Raises
    ------
    UsageError
        Bad settings or parameters (``param`` names a parameter).
    InputError, DataError
        Unreadable or invalid maps, models or images; a missing map without ``missing: skip``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name, p in [("m1", 0.9), ("m2", 0.2)]:
    ...     (folder / name).mkdir()
    ...     np.save(folder / name / "a.npy", np.full((2, 4, 4), p, np.float32))
    >>> r = soft_vote({"CLASSES": ["x", "y"], "height": 4, "width": 4, "engine": "cpu",
    ...                "prob_maps": [{"path": str(folder / "m1")}, {"path": str(folder / "m2")}]})
    >>> r.predictions.rle("a.png", "x"), r.sources
    ('1 16', ['m1', 'm2'])
    """
    from core.atomic import check_outputs
    from core.sources import Notes, bar
    from settings.loader import load_settings

    notes = Notes(echo)
    cfg, setting_path, where = load_settings(SoftSettings, settings)
    cfg = cfg.model_copy(deep=True)
    if device is not None:
        cfg.device = device
    if engine is not None:
        cfg.engine = engine
    if workers is not None:
        cfg.num_workers = workers
    for name, folder in (maps or {}).items():
        repoint(cfg, name, str(folder), f"maps: {where}", "maps")
    job = build_job(cfg, where)
    from settings.soft import source_bases

    renamed = [f"{b} → {n}" for b, n in zip(source_bases(cfg), job.names, strict=True) if b != n]
    if renamed:
        notes(f"note: sources with the same name were renamed ({', '.join(renamed)}); weights: use these names")
    out = str(output) if output is not None else None
    check_outputs(
        [("output", out)],
        [
            ("the settings", setting_path),
            *(("a model", p) for _, p in cfg.models()),
            *(("a boxes file", m.boxes) for m in cfg.prob_maps),
        ],
        [*((f"the maps folder of {m.name}", m.folder) for m in job.maps), ("image_root", cfg.image_root)],
    )
    resolve_engine(job)
    load_models(job, notes)
    if echo is not None:
        from core.warmup import precompile

        precompile(
            echo,
            *(["soft"] if job.engine == "cpu" else []),
            *(["clean"] if job.clean else []),
            rules=job.clean.rules if job.clean else None,
        )
    with bar(progress, len(job.images), "soft vote") as b:
        done = run_job(job, out, b)
    preds = done if out is None else None
    rows = done if out is not None else len(job.images) * len(job.classes)
    result = SoftVoteResult(
        preds,
        out,
        [n for n, _ in job.images],
        rows,
        job.engine,
        str(job.device),
        list(job.names),
        len(job.models),
        len(job.maps),
        bool(job.tta),
        dict(job.skipped),
        job.clean.summary() if job.clean is not None else None,
    )
    notes.quietly()(result.describe())
    for name, n in job.skipped.items():
        notes(f"note: source {name} had no map for {plural(n, 'image')} (missing: skip; averaged over the others)")
    result.notes = list(notes)
    return result
