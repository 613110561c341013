"""The client's plan of a cluster run: how many images a task takes, and the checks run on
every worker before the first chunk."""

from __future__ import annotations

import math
import os
import time

DEFAULT_CHUNK = 64
"""Images per task at most; ``auto_chunk`` takes fewer so that every worker gets 4 tasks."""


def auto_chunk(n_images: int, n_workers: int, chunk: int | None = None, multiple: int = 1) -> int:
    """Images per chunk: ``chunk`` when given, else at most ``DEFAULT_CHUNK`` and small enough
    for 4 chunks per worker; rounded up to a multiple of ``multiple`` (the models' batch).

    >>> auto_chunk(300, 2), auto_chunk(10_000, 8), auto_chunk(10, 2, 7), auto_chunk(300, 2, multiple=4)
    (38, 64, 7, 40)
    """
    if chunk is None:
        chunk = max(1, min(DEFAULT_CHUNK, math.ceil(n_images / max(4 * n_workers, 1))))
    return max(multiple, math.ceil(chunk / multiple) * multiple)


def prepare_everywhere(client, fn, args, kwargs, resources=None, tag: str = "prepare"):
    """Run the checks-only task on every worker at once and return the first to finish
    (with the futures of the others, which the caller keeps until the run ends).

    One would do for the checks; on every worker, the inputs are read (and the models
    loaded) while the first finishes, instead of on each worker's first chunk after it:
    one parse of the inputs on the critical path instead of two. A failure is the same
    on every worker: the first is raised."""
    from distributed import wait

    from cluster import tasks

    key = f"{tag}-{os.getpid()}-{time.time_ns()}"
    workers = list(client.scheduler_info().get("workers", {})) or [None]
    futures = [
        client.submit(
            tasks.prepare,
            fn,
            args,
            kwargs,
            pure=False,
            resources=resources,
            key=f"{key}-{i}",
            workers=None if w is None else [w],
            allow_other_workers=True,
        )
        for i, w in enumerate(workers)
    ]
    done, _ = wait(futures, return_when="FIRST_COMPLETED")
    first = next(f for f in futures if f in done)
    try:
        return first.result(), [f for f in futures if f is not first]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
