"""The client side of a cluster run: ``run(fn, …, scheduler=…)`` runs one of the toolbox's
public functions over Dask's distributed scheduler and gives the same result as ``fn``.

1. The job's checks run with no image: for the CSV jobs here, on the client
   (``cluster.ship``), which reads each input once, while the cluster starts; for the soft vote
   on every worker at once (``cluster.tasks.prepare``; each reads its inputs meanwhile). They
   give the canonical image list, and any error the whole run would raise, with its message.
2. The images are cut into chunks of ``chunk`` images; each chunk is one task (at most
   ``in_flight`` submitted at a time) that returns its CSV rows (or scores). A CSV job's task
   reads only the byte ranges of its own images' rows (``cluster.ranges``).
3. The client writes the rows in canonical order as the chunks complete, into a temporary
   file renamed when complete (``core.atomic``), so the bytes equal the single-machine
   output for any number of workers and any chunk size, and nothing is written on failure.
   Client memory: while the checks run, the parsed inputs (as a run on one machine); then
   where each input row's line lies and the chunks in flight.

A worker lost mid-run has its chunk rerun by Dask (``distributed.scheduler.allowed-failures``);
an error raised by a task (a bad input) is re-raised here unchanged and ends the run.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cluster.plan import auto_chunk, prepare_everywhere
from cluster.scheduler import connect, has_gpus, slots
from core.errors import UsageError, plural
from core.sources import Notes, bar, is_path, named_sources
from core.window import chunks, ordered

_ROWS = {
    "hard_vote": "hard vote",
    "weighted_vote": "weighted vote",
    "clean_predictions": "postprocess",
    "soft_vote": "soft vote",
}


@dataclass
class ClusterResult:
    """What a cluster run of a CSV-writing job did.

    Attributes
    ----------
    output : str
        The CSV written.
    images, rows : int
    chunks : int
        Tasks the images were cut into.
    chunk : int
        Images per chunk.
    workers : int
        Worker threads of the cluster when the run started (tasks it runs at once).
    cleaning : list of str or None
        The inline cleaning's summary (counts summed over the chunks).
    skipped : dict
        Soft vote: map source → images it had no map for (``missing: skip``).
    notes : list of str
    seconds : dict
        ``prepare`` (the checks: on the client, for the soft vote on a worker), ``chunks``
        (from the first submit to the last row written), ``total``; ``tasks``: the chunk
        tasks' time on the workers, summed, of which ``loops`` is the images' own work (the
        rest: each chunk's checks, formatting).
    """

    output: str
    images: int
    rows: int
    chunks: int
    chunk: int
    workers: int
    cleaning: list[str] | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _paths(fn_name: str, args: tuple, kwargs: dict) -> list[tuple[str, str]]:
    """The job's input files, as ``check_outputs`` names them."""
    out: list[tuple[str, str]] = []
    if kwargs.get("settings") is not None and is_path(kwargs["settings"]):
        out.append(("the settings", str(kwargs["settings"])))
    if fn_name in ("hard_vote", "weighted_vote", "evaluate", "tune") and args:
        out += [("an input", str(p)) for p in named_sources(args[0]).values() if is_path(p)]
    if fn_name == "clean_predictions" and args and is_path(args[0]):
        out.append(("the input", str(args[0])))
    if fn_name == "soft_vote" and args and is_path(args[0]):
        out.append(("the settings", str(args[0])))
    if fn_name in ("evaluate", "tune") and len(args) > 1 and is_path(args[1]) and not os.path.isdir(args[1]):
        out.append(("the ground truth", str(args[1])))
    return out


def run(
    fn: Callable,
    *args: Any,
    scheduler: str | Any,
    chunk: int | None = None,
    ship_inputs: bool = False,
    in_flight: int | None = None,
    echo: Callable[[str], None] | None = None,
    progress=None,
    fail_once: str | None = None,
    **kwargs: Any,
):
    """``fn(*args, **kwargs)`` on a Dask cluster, with ``fn``'s result.

    Parameters
    ----------
    fn : callable
        ``hard_vote``, ``weighted_vote``, ``soft_vote``, ``clean_predictions`` (these need
        ``output=``), ``evaluate`` or ``tune``.
    scheduler : str or distributed.Client
        ``tcp://HOST:PORT`` (a running scheduler), ``local:N`` (a ``LocalCluster`` of N
        single-threaded worker processes for this run; see ``cluster.scheduler.connect``), or
        a connected ``Client``.
    chunk : int, optional
        Images per task (default: ``auto_chunk``). The output never depends on it.
    ship_inputs : bool
        Read the input CSVs here and send each task its chunk's rows (for workers that do
        not see the files); otherwise workers read the paths themselves.
    in_flight : int, optional
        Tasks submitted at a time (default: twice the worker threads, at least 2).
    echo, progress : callable, optional
        As in ``ensemble.hard_vote``.
    fail_once : str, optional
        Tests only: a marker file; the first chunk task kills its own worker process.

    Returns
    -------
    ClusterResult, Scores (``evaluate``) or TuneResult (``tune``)
    """
    name = getattr(fn, "__name__", "")
    if name not in (*_ROWS, "evaluate", "tune"):
        raise UsageError(f"scheduler: {name or fn!r} does not run on a cluster", param="scheduler")
    if chunk is not None and chunk < 1:
        raise UsageError("chunk: must be >= 1", param="chunk")
    _refuse_outputs(name, kwargs)
    if isinstance(scheduler, str):
        with _connecting(scheduler) as client:
            return _run(client, fn, name, args, kwargs, chunk, ship_inputs, in_flight, echo, progress, fail_once)
    return _run(lambda: scheduler, fn, name, args, kwargs, chunk, ship_inputs, in_flight, echo, progress, fail_once)


@contextlib.contextmanager
def _connecting(address: str) -> Iterator[Callable[[], Any]]:
    """``connect(address)`` held by a thread of its own, so that the client's own checks run
    while a ``LocalCluster`` starts (a second or two) or a scheduler answers; yields a callable
    that waits for the client (and raises ``connect``'s error). The thread also closes it (a
    Dask client is closed where it was opened), at the end however the run ends."""
    ready: Future = Future()
    done = threading.Event()

    def hold() -> None:
        try:
            with connect(address) as client:
                ready.set_result(client)
                done.wait()
        except BaseException as e:  # the run raises it, from ready.result
            if not ready.done():
                ready.set_exception(e)

    thread = threading.Thread(target=hold, name="connect", daemon=True)
    thread.start()
    try:
        yield ready.result
    finally:
        done.set()
        thread.join()


def _refuse_outputs(name: str, kwargs: dict) -> None:
    """A cluster run writes a CSV of one row per (image, class): a folder of label maps or one
    row per object are written by a run without a scheduler."""
    from core.label_write import is_label_folder

    output = kwargs.get("output")
    if name in _ROWS and output is not None and is_label_folder(output):
        raise UsageError(
            f"scheduler: a cluster run writes a CSV, not the folder of label maps {output}; run without a scheduler",
            param="scheduler",
        )
    if kwargs.get("write_instances"):
        raise UsageError(
            "scheduler: a cluster run writes one row per mask; write_instances runs without a scheduler",
            param="scheduler",
        )


def _resources(client, fn_name: str, args: tuple) -> tuple[dict | None, int]:
    """Soft vote with models: one task per GPU where workers advertise ``GPU`` (and the
    models' batch, so that chunks hold whole batches). Else no resources."""
    if fn_name != "soft_vote":
        return None, 1
    from settings.loader import load_settings
    from settings.soft import SoftSettings

    cfg, _, _ = load_settings(SoftSettings, args[0])
    if not cfg.models():
        return None, 1
    return ({"GPU": 1} if has_gpus(client) else None), max(cfg.batch_size, 1)


def _run(connected, fn, name, args, kwargs, chunk, ship, in_flight, echo, progress, fail_once):
    """The run on the client ``connected()`` gives (waited for only once the CSV jobs' checks,
    which need no cluster, are done)."""
    from core.atomic import check_outputs

    t0 = time.perf_counter()
    notes = Notes(echo)
    output = kwargs.pop("output", None)
    if name in _ROWS and output is None:
        raise UsageError("output: a cluster run writes a file; give output", param="output")
    check_outputs([("output", None if output is None else str(output))], _paths(name, args, kwargs))
    if name == "tune":
        from cluster.tune import run_tune

        return run_tune(connected(), fn, args, kwargs, ship, notes, progress, in_flight)
    if ship and name == "soft_vote":
        raise UsageError(
            "ship_inputs: soft reads maps, images and models from storage the workers see; "
            "--ship-inputs applies to CSV inputs",
            param="ship_inputs",
        )
    if name != "soft_vote":
        from cluster.ship import Shipper

        shipper = Shipper(fn, name, args, kwargs, ranged=not ship)
        prep = shipper.prepare(notes)
    client = connected()
    resources, batch = _resources(client, name, args)
    if name == "soft_vote":
        shipper = None
        prep, warming = prepare_everywhere(client, fn, args, kwargs, resources)
        for line in prep.notes:
            notes(line)
    t1 = time.perf_counter()
    n = len(prep.images)
    workers = slots(client)
    size = auto_chunk(n, workers, chunk, batch)
    bounds = chunks(n, size)
    window = in_flight or max(2 * workers, 2)
    desc = _ROWS.get(name, "evaluate")
    try:
        outs = _stream(
            client,
            fn,
            args,
            kwargs,
            bounds,
            window,
            resources,
            shipper,
            fail_once,
            prep,
            output,
            name,
            bar(progress, n, desc),
        )
    finally:
        for f in [] if shipper is not None else warming:
            f.release()
    t2 = time.perf_counter()
    seconds = {"prepare": t1 - t0, "chunks": t2 - t1, "total": t2 - t0, "tasks": outs["tasks"], "loops": outs["loops"]}
    if name == "evaluate":
        return _scores(prep, outs, output, notes, kwargs.get("iou", False))
    cleaning = None
    if prep.cleaner is not None:
        from postprocess.cleaner import Cleaner

        c = Cleaner(*prep.cleaner)
        c._counts[:] = outs["cleaning"]  # the counts of every chunk, summed
        cleaning = c.summary()
    rows = n * len(prep.classes)
    notes.quietly()(
        f"{desc}: {plural(n, 'image')} in {plural(len(bounds), 'chunk')} of ≤ {size} on "
        f"{plural(workers, 'worker thread')}, {plural(rows, 'row')} → {output}"
    )
    for src, k in outs["skipped"].items():
        notes(f"note: source {src} had no map for {plural(k, 'image')} (missing: skip; averaged over the others)")
    return ClusterResult(
        str(output), n, rows, len(bounds), size, workers, cleaning, outs["skipped"], list(notes), seconds
    )


def _stream(client, fn, args, kwargs, bounds, window, resources, shipper, fail_once, prep, output, name, progress_cm):
    """Submit the chunks (``window`` at a time), consume them in order: write CSV rows to
    ``output`` atomically, or keep scores. Returns the summed counts (and the scores)."""
    from cluster import tasks
    from core.csv_write import PredictionWriter

    total = {"cleaning": 0, "skipped": {}, "per_image": [], "per_image_iou": [], "tasks": 0.0, "loops": 0.0}
    tag = f"{os.getpid()}-{time.time_ns()}"

    def submit(k: int):
        lo, hi = bounds[k]
        key = f"{name}-chunk-{k}-{tag}"
        if shipper is not None:
            a, kw = shipper.chunk(prep.images[lo:hi])
            if shipper.ranged:  # byte ranges, and the text of files not indexed
                return client.submit(
                    tasks.ranged, fn, a, kw, lo, hi, fail_once if k == 0 else None, pure=False, key=key
                )
            # scattered first: the rows travel as data, not inside the task graph
            data = client.scatter([(a, kw)], hash=False)[0]
            return client.submit(tasks.shipped_data, fn, data, lo, hi, pure=False, key=key)
        return client.submit(
            tasks.chunk,
            fn,
            args,
            kwargs,
            lo,
            hi,
            fail_once if k == 0 else None,
            pure=False,
            resources=resources,
            key=key,
        )

    def consume(writer, b):
        for out in ordered(submit, len(bounds), window):  # later chunks keep running meanwhile
            if writer is not None:  # the rows as the chunk wrote them
                writer.write_rows(out.text, (out.hi - out.lo) * len(prep.classes))
            else:
                total["per_image"].append(out.per_image)
                total["per_image_iou"].append(out.per_image_iou)
            if out.cleaning is not None:
                total["cleaning"] = total["cleaning"] + out.cleaning
            for src, k in out.skipped.items():
                total["skipped"][src] = total["skipped"].get(src, 0) + k
            total["tasks"] += out.seconds
            total["loops"] += out.loop_seconds
            b.update(out.hi - out.lo)

    with progress_cm as b:
        if name == "evaluate":
            consume(None, b)
        else:
            with PredictionWriter(output, prep.classes) as writer:
                consume(writer, b)
    return total


def _scores(prep, outs, output, notes, iou=False):
    from evaluation.scores import Scores

    x = prep.extra
    parts = [p for p in outs["per_image"] if p is not None]
    per_image = np.concatenate(parts, axis=1) if parts else np.zeros((len(x["names"]), 0, len(x["classes"])))
    ious = [j for p, j in zip(outs["per_image"], outs["per_image_iou"], strict=True) if p is not None]
    per_image_iou = np.concatenate(ious, axis=1) if ious else per_image.copy()
    scores = Scores(list(x["names"]), list(x["paths"]), tuple(x["classes"]), len(prep.images), per_image)
    scores.iou = per_image_iou
    scores.notes = list(notes)
    if output is not None:
        scores.write(output, iou)
        notes.quietly()(f"scores → {output}")
    return scores
