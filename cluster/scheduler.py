"""Connecting to Dask's distributed scheduler: ``tcp://HOST:PORT`` (a running cluster) or
``local:N`` (a ``LocalCluster`` of N single-threaded worker processes, started for the run
and closed after).

Dask is imported here only: the single-machine commands never import it.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from core.errors import UsageError

_LOCAL = re.compile(r"local:(\d+)$")


def parse_address(address: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local:N``, else ``("remote", None)`` for a scheduler address
    (``tcp://``, ``tls://``, ``ucx://``, ``inproc://``); anything else is a ``UsageError``.

    >>> parse_address("local:2"), parse_address("tcp://10.0.0.5:8786")
    (('local', 2), ('remote', None))
    """
    address = str(address).strip()
    m = _LOCAL.match(address)
    if m:
        n = int(m.group(1))
        if n < 1:
            raise UsageError(f"scheduler: {address}: local:N needs N >= 1 workers", param="scheduler")
        return "local", n
    if re.match(r"(tcp|tls|ucx|inproc)://\S+$", address):
        return "remote", None
    raise UsageError(
        f"scheduler: {address!r}: expected tcp://HOST:PORT (a running scheduler) or local:N (N workers here)",
        param="scheduler",
    )


@contextlib.contextmanager
def connect(address: str, resources: dict[str, float] | None = None, timeout: float = 15) -> Iterator[Any]:
    """A ``distributed.Client`` for ``address`` (see ``parse_address``), closed at the end;
    ``local:N`` starts a ``LocalCluster`` of N worker processes of one thread each (no
    dashboard; ``resources`` given to each worker, e.g. ``{"GPU": 1}``), and closes it with the
    client. An address nothing answers at is a one-line ``UsageError``.

    Processes rather than threads: a CSV job's task reads and parses its own rows
    (``cluster.ranges``) and runs the job's checks in Python, ``tune`` searches in Python per
    class and the soft vote runs Python per image; threads of one process would take turns
    at the GIL there (``bench/scale.py``)."""
    kind, n = parse_address(address)
    from distributed import Client

    if kind == "local":
        with local_cluster(n, resources) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise UsageError(
            f"scheduler: cannot connect to {address} ({e.__class__.__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no answer'})",
            param="scheduler",
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def local_cluster(n: int, resources: dict[str, float] | None = None) -> Iterator[Any]:
    """A ``LocalCluster`` of ``n`` worker processes of one thread each (``local:N``), closed at
    the end: any free dashboard port (two runs at once must not collide on 8787), worker logs
    silenced (a task's error is the run's one-line error, said once by the client; the
    worker's own logs would add a traceback per failed task).

    The workers keep glibc's adaptive ``malloc``: Dask's default ``MALLOC_TRIM_THRESHOLD_``
    fixes the threshold above which memory is mapped afresh, so every buffer of a task (a
    chunk's rows, their RLE text, the voted rows) would be mapped and zeroed anew; tasks
    took 1.2–1.7× as long with it (the tasks of ``hard`` on 1,500 images)."""
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            resources=resources,
            silence_logs=logging.CRITICAL,
        ) as cluster,
    ):
        yield cluster


def slots(client) -> int:
    """Tasks the cluster runs at once: its workers' threads (at least 1)."""
    workers = client.scheduler_info().get("workers", {})
    return max(sum(int(w.get("nthreads", 1)) for w in workers.values()), 1)


def worker_resources(client) -> dict[str, dict[str, float]]:
    """Worker address → the resources it advertises (``--resources GPU=1``)."""
    info = client.scheduler_info()
    return {addr: dict(w.get("resources") or {}) for addr, w in info.get("workers", {}).items()}


def has_gpus(client) -> bool:
    """Whether some worker advertises a ``GPU`` resource."""
    return any(r.get("GPU", 0) > 0 for r in worker_resources(client).values())
