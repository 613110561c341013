"""Stream images through a per-image function into an atomically written prediction CSV.

With several workers, forked processes inherit everything already parsed (the function and
what it closes over), so only output text crosses process boundaries.

Workers are plain forked processes, each with its own result pipe, rather than a
``multiprocessing.Pool``: a Pool's workers share locked queues, and a worker killed while
holding a queue lock (a signal sent to the whole process group: Ctrl-C, a closed terminal)
made ``Pool.terminate`` wait for that lock forever. Here nothing is shared, so the parent
can always kill and reap its workers, and a worker runs at most a pipe's buffer ahead of
the writer (memory stays bounded).

In this process's main thread a block's work (``in_threads``) runs through
``core.signals.interruptible`` (a helper thread), so that a signal ends the run at once
however long its kernels take; an image's work runs as it is (its kernels each take one
mask, briefly, and ``postprocess.cleaner.Cleaner`` hands over the calls that may not).

A Dask cluster run (``cluster/``) runs a whole job once per chunk of images, under
``selecting(lo, hi)``: the image loops here (``collect_images``, ``write_images``,
``select_span``) then compute only images ``[lo, hi)``, keep them on the ``Selection`` and
stop the job with ``ChunkDone``. Without a selection they do what they always did.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from core.layout import DEFAULT_LAYOUT, Layout
from core.predictions import PredictionWriter
from core.signals import DaemonPool, Terminated, deferred, interruptible
from core.window import ordered

ImageWork = Callable[[int], list[str] | bytes]
CHUNK = 4  # consecutive images per worker turn: fewer switches between pipes


@dataclass
class Selection:
    """Images ``[lo, hi)`` of a job's canonical list: one chunk of a cluster run (``cluster/``).

    While a selection is active (``selecting``), a job that reaches its image loop computes
    only these images, keeps them here and stops with ``ChunkDone``: everything before the
    loop (settings, reading, validation, notes) runs exactly as on one machine, so a chunk
    fails with the same error as the whole run would. ``lo == hi`` runs the checks alone."""

    lo: int
    hi: int
    images: list[str] | None = None  # the job's whole image list, in output order
    rles: list[list[str]] = field(default_factory=list)  # per image of the chunk, class order
    text: bytes | None = None  # or the chunk's CSV rows as the output holds them (block jobs)
    work: Any = None  # the per-image function (the cluster reads its cleaner's counts)
    extra: dict[str, Any] = field(default_factory=dict)  # what a job keeps for its chunk


class ChunkDone(BaseException):
    """Raised by a job once its ``Selection`` is computed (a ``BaseException``: no handler of
    the job's own may take it for a failure)."""


_SELECTION: ContextVar[Selection | None] = ContextVar("selection", default=None)


def current_selection() -> Selection | None:
    """The active ``Selection``, or ``None`` (always, on the single-machine path)."""
    return _SELECTION.get()


@contextlib.contextmanager
def unselected() -> Iterator[None]:
    """Run the whole of what follows, outside any active selection (a cluster chunk's warm-up
    runs small jobs of its own, which must not be taken for the chunk)."""
    token = _SELECTION.set(None)
    try:
        yield
    finally:
        _SELECTION.reset(token)


@contextlib.contextmanager
def selecting(lo: int, hi: int) -> Iterator[Selection]:
    """Run a job on images ``[lo, hi)`` only (see ``Selection``)."""
    sel = Selection(lo, hi)
    token = _SELECTION.set(sel)
    try:
        yield sel
    finally:
        _SELECTION.reset(token)


def _select(images: Sequence[str], work: ImageWork, progress=None) -> None:
    """The ``Selection`` hook of a job that computes one image at a time (``work(i)``)."""
    _chunk(images, work, lambda lo, hi: [work(i) for i in range(lo, hi)], progress)


def select_span(images: Sequence[str], span_work: Callable[[int, int], list[list[str]] | bytes], progress=None) -> None:
    """The ``Selection`` hook of a job that computes spans of images at once (the votes' and
    the cleaning's block kernels): ``span_work(lo, hi)`` gives the CSV rows of images
    ``lo:hi`` as the output holds them (bytes), or their RLE strings. No-op without an active
    selection."""
    _chunk(images, span_work, span_work, progress)


def _chunk(images: Sequence[str], work: Any, span: Callable[[int, int], list[list[str]] | bytes], progress) -> None:
    """With an active selection: compute its images with ``span(lo, hi)``, keep them and the
    job's ``work`` (the cluster reads its plan or cleaner) on it, and stop the job."""
    sel = _SELECTION.get()
    if sel is None:
        return
    sel.images, sel.work = list(images), work
    start = time.perf_counter()
    lo, hi = sel.lo, min(sel.hi, len(images))
    if lo < hi:
        got = span(lo, hi)
        if isinstance(got, bytes):
            sel.text = got
        else:
            sel.rles = list(got)
        if progress is not None:
            progress.update(hi - lo)
    sel.extra["loop_seconds"] = time.perf_counter() - start  # the images' own work (benchmarks)
    raise ChunkDone


def collect_images(images: Sequence[str], work: ImageWork, progress=None) -> list[list[str]]:
    """``work(i)`` for every image, in memory (the in-memory twin of ``write_images``)."""
    _select(images, work, progress)
    out = []
    for i in range(len(images)):
        out.append(work(i))
        if progress is not None:
            progress.update(1)
    return out


def write_images(
    output: str | os.PathLike,
    classes: Sequence[str],
    images: Sequence[str],
    work: ImageWork,
    workers: int = 1,
    progress=None,
    layout: Layout = DEFAULT_LAYOUT,
    writer=None,
) -> int:
    """Write ``work(i)`` (RLE strings in class order) for every image ``i``, in order, laid out
    as ``layout`` (or handed to ``writer``, one of ``core.predictions.writer_for``'s); returns
    rows written. Nothing is left at ``output`` if anything fails."""
    _select(images, work, progress)
    writer = writer if writer is not None else PredictionWriter(output, classes, layout)
    with writer, _results(work, len(images), workers) as results:
        for name, rles in zip(images, results, strict=True):
            writer.write_image(name, rles)
            if progress is not None:
                progress.update(1)
    return writer.rows_written


def write_blocks(
    output: str | os.PathLike,
    classes: Sequence[str],
    blocks: Sequence[tuple[int, int]],
    work: Callable[[int], bytes],
    workers: int = 1,
    progress=None,
    layout: Layout = DEFAULT_LAYOUT,
    writer=None,
) -> int:
    """Write ``work(b)`` (the CSV rows of images ``blocks[b]``, every class of each, laid out as
    ``layout``) for every block, in order (to ``writer`` when given: a ``PredictionWriter`` that
    takes ``blocks``); returns rows written. Nothing is left at ``output`` if anything fails."""
    writer = writer if writer is not None else PredictionWriter(output, classes, layout)
    if not writer.blocks:
        raise TypeError(f"{type(writer).__name__} takes images one at a time: use write_images")
    with writer, _block_results(work, len(blocks), workers) as results:
        for (lo, hi), text in zip(blocks, results, strict=True):
            writer.write_rows(text, (hi - lo) * len(classes))
            if progress is not None:
                progress.update(hi - lo)
    return writer.rows_written


def collect_blocks(blocks: Sequence[tuple[int, int]], work: Callable[[int], object], progress=None) -> list:
    """``work(b)`` for every block, in order, in memory (``write_blocks``' twin)."""
    out = []
    with _block_results(work, len(blocks), 1) as results:
        for (lo, hi), value in zip(blocks, results, strict=True):
            out.append(value)
            if progress is not None:
                progress.update(hi - lo)
    return out


@contextlib.contextmanager
def _block_results(work: Callable[[int], object], n: int, workers: int) -> Iterator[Iterator]:
    """``work(b)`` for ``b`` in ``range(n)``, in order: by forked workers when asked for,
    else by threads (block work is a GIL-free kernel call)."""
    if workers > 1:
        with _results(work, n, workers) as results:
            yield results
        return
    with in_threads(work, n) as results:
        yield results


MAX_THREADS = 8
"""Threads of ``in_threads`` at most: each holds up to two blocks (a few MB each) in flight."""


def _cores() -> int:
    """The cores this process may run on (a Slurm or container CPU set, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def in_threads(work: Callable[[int], object], n: int) -> Iterator[Iterator]:
    """``work(k)`` for ``k`` in ``range(n)``, in order, by one thread per core this process may
    use (at most ``MAX_THREADS``), at most two items per thread ahead of the consumer; an
    exception comes out where its item would. For work that spends its time in kernels that
    release the GIL. A cluster chunk (``selecting`` images) runs on its worker's thread alone:
    the worker already runs a task per core; its checks-only task (no images: it reads the
    inputs) uses the threads. The threads are daemons (``core.signals.DaemonPool``): after a
    signal the run ends without waiting for the work they still run; with one thread, the
    work runs through ``core.signals.interruptible`` (a chunk's on its own thread)."""
    sel = _SELECTION.get()
    threads = min(n, MAX_THREADS, _cores()) if sel is None or sel.lo >= sel.hi else 1
    if threads <= 1:  # a chunk runs on the cluster worker's own thread
        yield (work(k) if sel is not None else interruptible(work, k) for k in range(n))
        return
    pool = DaemonPool(threads, "blocks")
    try:
        yield ordered(lambda k: pool.submit(work, k), n, 2 * threads + 1)
    except (KeyboardInterrupt, Terminated):
        pool.shutdown(wait=False, cancel=True)
        raise
    except BaseException:
        pool.shutdown(wait=True, cancel=True)
        raise
    pool.shutdown()


@contextlib.contextmanager
def _results(work: ImageWork, n: int, workers: int) -> Iterator[Iterator[list[str]]]:
    """``work(i)`` for ``i`` in ``range(n)``, in order, computed here or by forked workers
    that are killed and reaped when the block ends, however it ends."""
    workers = min(workers, n)
    if workers <= 1:
        yield (work(i) for i in range(n))
        return
    ctx = mp.get_context("fork")
    procs: list = []
    pipes: list[Connection] = []
    try:
        for w in range(workers):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(work, n, w, workers, send), daemon=True)
            with deferred():  # the fork hooks would swallow a signal's exception
                proc.start()
            send.close()
            procs.append(proc)
            pipes.append(receive)
        yield (_receive(pipes[(i // CHUNK) % workers], procs[(i // CHUNK) % workers]) for i in range(n))
    finally:
        for proc in procs:  # done, or the run failed: either way a worker has nothing left to do
            proc.kill()
        for proc in procs:
            proc.join()
        for pipe in pipes:
            pipe.close()


def _turns(n: int, w: int, workers: int) -> Iterator[int]:
    """The images worker ``w`` of ``workers`` computes: chunks ``w``, ``w + workers``, …"""
    for start in range(w * CHUNK, n, workers * CHUNK):
        yield from range(start, min(start + CHUNK, n))


def _worker(work: ImageWork, n: int, w: int, workers: int, pipe: Connection) -> None:
    try:
        for i in _turns(n, w, workers):
            pipe.send((True, work(i)))
    except Exception as e:  # re-raised in the parent, which reports it
        pipe.send((False, _portable(e)))
    finally:
        pipe.close()


def _portable(e: Exception) -> Exception:
    """``e`` if it survives pickling, else a ``RuntimeError`` with its text."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{e.__class__.__name__}: {e}")


def _receive(pipe: Connection, proc) -> list[str]:
    try:
        ok, value = pipe.recv()
    except EOFError:
        proc.join()
        if proc.exitcode is not None and proc.exitcode < 0:
            # A worker killed by a signal ends the run as that signal would have ended it.
            raise Terminated(-proc.exitcode) from None
        raise RuntimeError(f"worker process ended early (exit code {proc.exitcode})") from None
    if not ok:
        raise value
    return value
