"""A per-process cache of parsed inputs and loaded models, off unless ``enable`` is called.

Cluster workers (``cluster/``) run a public function once per chunk of images; without a
cache every chunk would parse the whole input CSVs again and load the models again. A worker
turns the cache on once, and ``core.sources.load`` and ``ensemble.soft_plan.load_models``
then keep what they made, keyed by the file's resolved path, size and modification time
(a file rewritten between runs is read again). The single-machine commands never enable
it, so nothing changes for them.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_lock = threading.Lock()
_cache: OrderedDict[Hashable, Any] | None = None
_limit = 0
_making: dict[Hashable, threading.Lock] = {}  # keys being made, each with the lock its waiters take
loads: Counter = Counter()
"""How many times each kind of thing (``"csv"``, ``"model"``) was made while enabled."""


def enable(entries: int = 32) -> None:
    """Keep up to ``entries`` things (least recently used dropped first)."""
    global _cache, _limit
    with _lock:
        if _cache is None:
            _cache = OrderedDict()
        _limit = entries


def enabled() -> bool:
    return _cache is not None


def file_key(path: str | os.PathLike) -> tuple:
    """``(resolved path, size, mtime_ns)``: what identifies a file's content here."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def tree_key(folder: str | os.PathLike) -> tuple:
    """``(resolved folder, digest of every file's relative path, size and mtime_ns)``: a
    folder's content changes when any file in it does (its own mtime would not say so)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    root = os.path.realpath(folder)
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            st = os.stat(os.path.join(dirpath, f))
            digest.update(
                f"{os.path.relpath(os.path.join(dirpath, f), root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode(
                    "utf-8", "surrogateescape"
                )
            )
    return root, digest.hexdigest()


def cached(kind: str, key: Hashable, make: Callable[[], Any]) -> Any:
    """``make()``, kept under ``(kind, key)`` when the cache is enabled. Failures are not
    kept (the next call raises the same error again)."""
    if _cache is None:
        return make()
    full = (kind, key)
    with _lock:
        if full in _cache:
            _cache.move_to_end(full)
            return _cache[full]
        making = _making.setdefault(full, threading.Lock())
    # One thread makes it; the worker's other threads wait for it rather than parsing the same
    # file (or loading the same model) at once. The global lock is not held: other keys go on.
    with making:
        with _lock:
            if full in _cache:
                _cache.move_to_end(full)
                return _cache[full]
        try:
            value = make()
        except BaseException:
            with _lock:
                _making.pop(full, None)
            raise
        with _lock:  # kept before the key is released: a thread arriving now finds it
            loads[kind] += 1
            _cache[full] = value
            while len(_cache) > _limit:
                _cache.popitem(last=False)
            _making.pop(full, None)
    return value
