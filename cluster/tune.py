"""``tune`` on a cluster: the checks on one worker, then one task per class (its whole
search: coverage, combination, cleaning) and, with maps, one task per chunk of images for
the soft-threshold histograms; the client assembles the ``TuneResult`` as ``tune`` does.

Each class's search reads only that class's rows (``core.subset.take_classes``), and every
number it computes is the one the single-machine search computes for that class, so the
tuned settings are identical.
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import numpy as np

from cluster.scheduler import slots
from core.classes import CANVAS
from core.sources import bar, label, named_sources
from core.window import chunks, ordered


def _ordered(client, submit, n: int, window: int, progress_cm, step=lambda r: 1) -> list:
    """``submit(k)`` for ``k < n``, ``window`` in flight, results in order."""
    out: list = []
    with progress_cm as b:
        for r in ordered(submit, n, window):
            out.append(r)
            b.update(step(r))
    return out


def run_tune(client, fn, args, kwargs, ship: bool, notes, progress, in_flight):
    from cluster import tasks
    from evaluation.search import SOFT_THRESHOLDS, tune_soft, tuned_settings
    from evaluation.tune_job import TuneResult

    start = time.time()
    tag = f"{os.getpid()}-{time.time_ns()}"
    keep: list = []
    warming: list = []  # the other workers' checks-only tasks: their inputs are read meanwhile
    if ship:
        prep = tasks.prepare(fn, args, kwargs, keep)
    else:
        from cluster.plan import prepare_everywhere

        prep, warming = prepare_everywhere(client, fn, args, kwargs, tag="tune-prepare")
    for line in prep.notes:
        notes(line)
    x = prep.extra
    cls, h, w, names = tuple(x["classes"]), x["height"], x["width"], list(x["names"])
    sources, ground_truth = named_sources(args[0]), args[1]
    missing = kwargs.get("missing", "error")
    margin = kwargs.get("margin", 1e-4)
    levels = sorted({float(v) for v in kwargs.get("levels", (0, 1, 2))})
    max_seconds = kwargs.get("max_seconds")
    staple, area_gate = tuple(x.get("staple", ())), bool(kwargs.get("area_gate"))
    deadline = start + max_seconds if max_seconds else None
    window = in_flight or max(2 * slots(client), 2)
    if ship:
        from core.subset import take_classes

        gt_full, loaded = keep[0].extra["inputs"]  # parsed here by the checks
        src_full = dict(zip(names, loaded, strict=True))

    def submit_class(c: int):
        key = f"tune-class-{c}-{tag}"
        if ship:
            part = {n: take_classes(p, [c]) for n, p in src_full.items()}
            return client.submit(
                tasks.tune_class,
                part,
                take_classes(gt_full, [c]),
                0,
                (cls[c],),
                h,
                w,
                missing,
                margin,
                levels,
                deadline,
                staple,
                area_gate,
                pure=False,
                key=key,
            )
        return client.submit(
            tasks.tune_class,
            sources,
            ground_truth,
            c,
            cls,
            h,
            w,
            missing,
            margin,
            levels,
            deadline,
            staple,
            area_gate,
            pure=False,
            key=key,
        )

    results = _ordered(client, submit_class, len(cls), window, bar(progress, len(cls), "tune", "class"))
    maps = x["maps"]
    soft = soft_settings = None
    if maps:
        from cluster.plan import auto_chunk

        n = len(prep.images)
        bounds = chunks(n, auto_chunk(n, max(window // 2, 1)))

        def submit_hist(k: int):
            lo, hi = bounds[k]
            return client.submit(
                tasks.soft_histogram_chunk,
                sources,
                ground_truth,
                maps,
                cls,
                h,
                w,
                lo,
                hi,
                pure=False,
                key=f"tune-hist-{k}-{tag}",
            )

        parts = _ordered(
            client, submit_hist, len(bounds), window, bar(progress, n, "soft histograms"), lambda r: len(r[0])
        )
        hist = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, len(cls), 2, len(SOFT_THRESHOLDS) + 1))
        areas = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, len(cls)), np.int64)
        gt_areas = SimpleNamespace(areas=areas.ravel(), rows=np.arange(areas.size).reshape(areas.shape))
        soft = tune_soft(hist, gt_areas, SOFT_THRESHOLDS, margin)
        soft_settings = {
            "CLASSES": list(cls),
            "prob_maps": [{"path": f, "name": n} for n, f in maps.items()],
            "threshold": {
                "default": 0.5,
                **{c: float(t) for c, t in zip(cls, soft.thresholds, strict=True) if t != 0.5},
            },
        }
        if (h, w) != (CANVAS, CANVAS):
            soft_settings.update(height=h, width=w)
    for f in warming:
        f.release()
    settings = tuned_settings(results, names, list(x["paths"]), cls, h, w, x.get("layout"))
    return TuneResult(
        results,
        names,
        settings,
        soft,
        soft_settings,
        list(maps),
        len(prep.images),
        list(notes),
        x["ground_truth"] if x.get("ground_truth") else label("ground truth", ground_truth),
    )
