"""Ordered work in flight: a window of submitted items whose results are consumed in order,
and the chunks that cut a run of items into chunks.

Every place that streams work uses ``ordered``: threads voting images, threads reading
images ahead of a GPU, Dask tasks of a cluster run. Whatever runs the work (a thread pool, a
Dask client), a submitted item is a future with ``result()`` and ``cancel()``; at most
``window`` are in flight, so memory stays bounded by the window, and the results come out in
submission order however the work finishes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Future(Protocol):
    """What ``submit`` returns: ``concurrent.futures.Future`` and ``distributed.Future`` both are."""

    def result(self) -> Any: ...

    def cancel(self) -> Any: ...


def ordered(submit: Callable[[int], Future], n: int, window: int) -> Iterator[Any]:
    """The results of ``submit(k)`` for ``k`` in ``range(n)``, in order of ``k``, with at most
    ``window`` items submitted and not yet consumed. An exception comes out where its item
    would; items still in flight are cancelled when the consumer stops early or fails.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     list(ordered(lambda k: pool.submit(pow, k, 2), 5, window=2))
    [0, 1, 4, 9, 16]
    """
    window = max(int(window), 1)
    pending: deque = deque()
    nxt = 0
    try:
        while nxt < n or pending:
            while nxt < n and len(pending) < window:
                pending.append(submit(nxt))
                nxt += 1
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` spans of ``size`` items covering ``range(n)``.

    >>> chunks(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]
