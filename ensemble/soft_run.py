"""``soft_vote``: a ``SoftJob`` run over its images, streamed through the engine (numba on the
CPU, or ``ensemble.torch_stream`` on a torch device) into a CSV written atomically.

Images flow one at a time: the models run on a batch of ``batch_size`` images (main thread),
then each image's maps are loaded and voted in one of ``workers`` threads (numba kernels
release the GIL), and rows are written in image order. Memory is bounded by the maps and
model outputs of the images in flight, whatever the number of images.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UsageError, listing, plural
from core.layout import DEFAULT_LAYOUT
from core.predictions import Predictions, written
from core.stream import ChunkDone, current_selection
from core.window import ordered
from ensemble.soft_plan import SoftJob, batches, build_job, load_models, resolve_engine, soft_writer
from settings.soft import SoftSettings, repoint


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
        from ensemble.torch_stream import run_device_job

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
    from ensemble.torch_stream import run_device_job

    return run_device_job(job, output, progress)


def _run_numba(job: SoftJob, output: str | Path | None, progress=None) -> int | Predictions:
    with soft_writer(job, output) as writer:
        items = batches(job)
        # The first image (all of it, with one thread) lets numba compile or load every
        # kernel before worker threads call them: first-time compilation is not thread-safe.
        for name, logits, size in items if job.workers <= 1 else itertools.islice(items, 1):
            writer.write_image(name, job.vote(name, logits, size))
            if progress is not None:
                progress.update(1)
        if job.workers <= 1:
            return written(writer)
        names: deque[str] = deque()

        def submit(_: int):
            name, logits, size = next(items)
            names.append(name)
            return pool.submit(job.vote, name, logits, size)

        with ThreadPoolExecutor(job.workers) as pool:
            for rles in ordered(submit, len(job.images) - 1, job.workers + 1):
                writer.write_image(names.popleft(), rles)
                if progress is not None:
                    progress.update(1)
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
    columns: str | dict | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    exclusive: bool | None = None,
    echo: Callable[[str], None] | None = None,
    progress=None,
) -> SoftVoteResult:
    """Soft vote of models and saved probability maps: keep a pixel where
    ``Σ wᵢ·pᵢ / Σ wᵢ > threshold`` (strict; per-class thresholds and weights allowed), on the
    CPU with numba kernels or on a device with torch (the same formula). With ``exclusive``,
    each pixel takes the channel of the largest weighted mean instead (channel 0 the
    background; ties: the lower channel).

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
    columns, rle_order : optional
        The output's column names (``"image=ImageId,class=ClassId,rle=EncodedPixels"``, or a
        mapping; without ``class`` the one class's file) and RLE order (``"row"``, or
        ``"column"``: the runs of the transposed mask). Default: the settings', else
        ``image_name,class,rle`` row-major.
    sizes : path, optional
        Each image's size where images differ: a CSV with the image column and
        ``height,width``, or a folder of the images (their headers are read); maps are
        resampled to each image's own size. Default: the settings' ``sizes``, else models'
        images at their own size and maps at ``height`` × ``width``.
    exclusive : bool, optional
        The classes are mutually exclusive: maps hold C + 1 channels, channel 0 the
        background (a softmax output; ``logits: true``: a softmax over channels is taken after
        resampling), models output C + 1 channels of logits (softmax, not sigmoid); each
        pixel takes the channel of the largest weighted mean (channel 0: no class). The
        background's weight is each source's default weight. No threshold applies; inline
        cleaning keeps the classes exclusive (the class listed first keeps a contested pixel).
        Default: the settings' ``exclusive``.
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
    for key, value in (("columns", columns), ("rle_order", rle_order), ("sizes", sizes), ("exclusive", exclusive)):
        if value is not None:
            setattr(cfg, key, str(value) if key == "sizes" else value)
    for name, folder in (maps or {}).items():
        repoint(cfg, name, str(folder), f"maps: {where}", "maps")
    job = build_job(cfg, where)
    if current_selection() is not None and job.layout.columns != DEFAULT_LAYOUT.columns:
        raise UsageError(
            f"scheduler: a cluster run writes the columns {','.join(DEFAULT_LAYOUT.columns)}; "
            f"columns {','.join(job.layout.columns)} need a run in this process",
            param="scheduler",
        )
    from settings.soft import source_bases

    renamed = [f"{b} → {n}" for b, n in zip(source_bases(cfg), job.names, strict=True) if b != n]
    if renamed:
        notes(f"note: sources with the same name were renamed ({listing(renamed)}); weights: use these names")
    out = str(output) if output is not None else None
    check_outputs(
        [("output", out)],
        [
            ("the settings", setting_path),
            *([("the sizes file", str(cfg.sizes))] if cfg.sizes else []),
            *(("a model", p) for _, p in cfg.models()),
            *(("a boxes file", m.boxes) for m in cfg.prob_maps),
        ],
        [*((f"the maps folder of {m.name}", m.folder) for m in job.maps), ("image_root", cfg.image_root)],
    )
    resolve_engine(job)
    load_models(job, notes)
    if echo is not None:
        from core.warmup import OVERLAPS, precompile
        from ensemble.warmup import SOFT, SOFT_EXCLUSIVE
        from postprocess.warmup import clean_step

        steps = [
            *([SOFT_EXCLUSIVE if job.exclusive else SOFT] if job.engine == "cpu" else []),
            *([clean_step(job.clean.rules)] if job.clean else []),
            *([OVERLAPS] if job.clean and job.exclusive else []),
        ]
        precompile(echo, *steps)
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
