"""What runs on the workers: one public function of the toolbox on one chunk of images.

Every task turns on the worker's cache (``core.workercache``: the input CSVs are parsed and
the models loaded once per worker, not once per chunk) and runs the same public function
with the same parameters as the single-machine command, under ``core.stream.selecting``:
settings, reading and every check run as they do on one machine, so a bad input fails a
chunk with the very error the whole run would give; then only the chunk's images are
computed. A task returns plain data (CSV text, counts, arrays), never live objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Prepared:
    """What the checks-only run (``lo == hi``) found: the canonical image list, the notes the
    job made (to be echoed by the client, as on one machine) and the job's shape."""

    images: list[str]
    notes: list[str]
    classes: tuple[str, ...] = ()
    cleaner: tuple | None = None  # (rules, classes, height, width) of the inline cleaning
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChunkOut:
    """One chunk's result: CSV rows (``text``, UTF-8, canonical order), or ``per_image``
    scores (and ``per_image_iou``); the cleaning counts and the maps skipped, summed by the
    client."""

    lo: int
    hi: int
    text: bytes = b""
    per_image: Any = None
    per_image_iou: Any = None
    cleaning: Any = None
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # the whole task on the worker
    loop_seconds: float = 0.0  # of which the images' own work (the rest: the job's checks, formatting)


def _select(fn: Callable, args: tuple, kwargs: dict, lo: int, hi: int, echo: Callable | None, cache: bool = True):
    """``fn(*args, **kwargs)`` on images ``[lo, hi)``; returns the ``Selection``. ``cache``:
    turn this process's ``workercache`` on (a worker; not the client that ships inputs)."""
    from core import workercache
    from core.stream import ChunkDone, selecting

    if cache:
        workercache.enable()
    with selecting(lo, hi) as sel:
        try:
            fn(*args, **kwargs, echo=echo, progress=None)
        except ChunkDone:
            return sel
    raise RuntimeError(f"{getattr(fn, '__name__', fn)} ended without reaching its image loop")


def _parts(sel) -> tuple[tuple[str, ...], Any]:
    """The job's classes and inline cleaner, from its per-image function (votes: the
    ``VotePlan``; postprocess: ``partial(_image, preds, cleaner)``) or its soft job."""
    job = sel.extra.get("job")
    if job is not None:
        return tuple(job.classes), job.clean
    work = sel.work
    plan = getattr(work, "__self__", None)
    if plan is not None and hasattr(plan, "aligned"):
        return tuple(plan.aligned.sources[0].classes), plan.clean
    if isinstance(work, functools.partial):
        preds, cleaner = work.args[:2]
        return tuple(preds.classes), cleaner
    return (), None


def prepare(fn: Callable, args: tuple, kwargs: dict, keep: list | None = None) -> Prepared:
    """Run every check of the job and no image: the image list, notes and shape (``keep``,
    when given, receives the ``Selection``: the client that ships inputs, running this in
    its own process without the worker cache, reads the parsed inputs there)."""
    notes: list[str] = []
    sel = _select(fn, args, kwargs, 0, 0, notes.append, cache=keep is None)
    if keep is not None:
        keep.append(sel)
    classes, cleaner = _parts(sel)
    spec = (cleaner.rules, cleaner.classes, cleaner.height, cleaner.width) if cleaner is not None else None
    extra = {k: v for k, v in sel.extra.items() if k not in ("job", "inputs")}  # live objects stay here
    return Prepared(list(sel.images or []), notes, classes, spec, extra)


def rows_text(images, rles, classes) -> bytes:
    """The CSV rows of these images exactly as ``PredictionWriter`` writes them (UTF-8)."""
    from core.csv_write import csv_field

    fields = [csv_field(c) for c in classes]
    out = []
    for name, row in zip(images, rles, strict=True):
        f = csv_field(name)
        out.append("".join(f"{f},{c},{r}\n" for c, r in zip(fields, row, strict=True)))
    return "".join(out).encode()


def chunk(fn: Callable, args: tuple, kwargs: dict, lo: int, hi: int, fail_once: str | None = None) -> ChunkOut:
    """Images ``[lo, hi)`` of the job: their CSV rows (or scores), cleaning counts, skips.

    ``fail_once`` (tests only): a marker file; the first task to create it kills its own
    worker process, as a machine lost mid-run would be."""
    import time

    if fail_once is not None:
        _die_once(fail_once)
    start = time.perf_counter()
    sel = _select(fn, args, kwargs, lo, hi, None)
    out = ChunkOut(lo, hi, loop_seconds=sel.extra.get("loop_seconds", 0.0))
    if "per_image" in sel.extra:
        out.per_image = sel.extra["per_image"]
        out.per_image_iou = sel.extra.get("per_image_iou")
    else:
        classes, cleaner = _parts(sel)
        out.text = sel.text if sel.text is not None else rows_text(sel.images[lo:hi], sel.rles, classes)
        if cleaner is not None:
            out.cleaning = cleaner.stats()
        job = sel.extra.get("job")
        if job is not None:
            out.skipped = dict(job.skipped)
    out.seconds = time.perf_counter() - start
    return out


def shipped(fn: Callable, args: tuple, kwargs: dict, lo: int, hi: int) -> ChunkOut:
    """The job on sources the client sent (in-memory ``Predictions`` of this chunk's images
    only, in ``args``/``kwargs``): the whole function runs, on the chunk."""
    from core import workercache
    from core.stream import ChunkDone, selecting

    workercache.enable()
    n = hi - lo
    with selecting(0, n) as sel:
        try:
            fn(*args, **kwargs, echo=None, progress=None)
        except ChunkDone:
            pass
    out = ChunkOut(lo, hi)
    if "per_image" in sel.extra:
        out.per_image = sel.extra["per_image"]
        out.per_image_iou = sel.extra.get("per_image_iou")
        return out
    classes, cleaner = _parts(sel)
    out.text = sel.text if sel.text is not None else rows_text(sel.images[:n], sel.rles, classes)
    if cleaner is not None:
        out.cleaning = cleaner.stats()
    return out


def ranged(fn: Callable, args: tuple, kwargs: dict, lo: int, hi: int, fail_once: str | None = None) -> ChunkOut:
    """``shipped`` on the rows the task reads itself: the ``cluster.ranges.FileRows`` in its
    arguments, loaded here (``fail_once`` as in ``chunk``)."""
    import time

    from cluster.ranges import resolve

    if fail_once is not None:
        _die_once(fail_once)
    start = time.perf_counter()
    out = shipped(fn, resolve(args), resolve(kwargs), lo, hi)
    out.seconds = time.perf_counter() - start
    return out


def shipped_data(fn: Callable, data: tuple[tuple, dict], lo: int, hi: int) -> ChunkOut:
    """``shipped`` with its arguments scattered as one ``(args, kwargs)`` object."""
    return shipped(fn, data[0], data[1], lo, hi)


def _die_once(marker: str) -> None:
    import os

    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)


# -- tune ------------------------------------------------------------------------------


def _tune_inputs(sources: dict, ground_truth, classes, height, width):
    from core.sources import Frame, load

    def quiet(msg: str) -> None:
        pass

    frame = Frame(tuple(classes), height, width)
    gt = load(ground_truth, "ground truth", frame, quiet)
    loaded = [load(p, n, frame, quiet) for n, p in sources.items()]
    return gt, loaded


def tune_class(
    sources: dict,
    ground_truth,
    c: int,
    classes,
    height: int,
    width: int,
    missing: str,
    margin: float,
    levels,
    deadline: float | None,
    staple=(),
    area_gate: bool = False,
):
    """The whole search of class ``c`` (combination with the ``staple`` regions, cleaning, the
    area gate with ``area_gate``): a ``ClassResult``. ``deadline`` is wall-clock
    (``time.time()``): machines share no monotonic clock."""
    import time

    from core import workercache
    from core.subset import take_classes
    from evaluation.search import coverage, tune_cleaning, tune_combination, tune_gates

    workercache.enable()
    gt, loaded = _tune_inputs(sources, ground_truth, classes, height, width)
    gt1 = take_classes(gt, [c])
    src1 = [take_classes(p, [c]) for p in loaded]
    local = None if deadline is None else time.monotonic() + (deadline - time.time())
    cov = coverage(gt1, src1, list(sources), missing)
    results = tune_combination(cov, [classes[c]], margin, levels, local, staple)
    tune_cleaning(results, gt1, src1, margin, missing=missing, deadline=local)
    if area_gate:
        tune_gates(results, gt1, src1, margin, missing, local)
    return results[0]


def soft_histogram_chunk(
    sources: dict, ground_truth, maps: dict, classes, height: int, width: int, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """The soft-threshold histograms of ground-truth images ``[lo, hi)`` and their areas."""
    from pathlib import Path

    from core import workercache
    from core.sources import Frame, load
    from core.subset import take_images
    from ensemble.maps import MapSource
    from evaluation.search import SOFT_THRESHOLDS, soft_histograms

    workercache.enable()
    gt = load(ground_truth, "ground truth", Frame(tuple(classes), height, width), lambda m: None)
    part = take_images(gt, gt.images[lo:hi])
    hist = soft_histograms(part, [MapSource(n, Path(d)) for n, d in maps.items()], SOFT_THRESHOLDS)
    return hist, part.areas[part.rows]
