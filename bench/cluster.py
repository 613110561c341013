"""Cluster benchmark: a Dask ``LocalCluster`` of 2 processes against ``--workers 2``
and one process, for the hard vote and a maps soft vote; the scheduler's overhead per chunk;
a projection to 8 and 64 workers at 10,000 images.

    python bench/cluster.py                      # hard: 5 × 300 × 29 at 2048²; soft: 20 images
    python bench/cluster.py --images 60 --soft-images 4   # quicker

Data: the hard vote's CSVs of ``bench/vote.py`` (cached under bench/out/vote) and the maps of
``bench/soft.py`` (cached under the temp folder). Every CLI run is a whole child process
(start-up and imports included), on a warm numba cache; outputs are compared byte for byte.

Measured in this process on one ``LocalCluster(2)`` (started once, reused):
- a cold and a warm ``cluster.run`` of each job (the workers parse the CSVs on their first
  chunk; warm: their cache is filled), with the time the chunk tasks spent on the workers,
  of which the images' own work;
- the scheduler's own cost per task: ``--noop`` tasks of the same size through the same
  bounded window, client round trip included;
- the client's peak RSS: a child process running ``cli.py … --scheduler tcp://…`` against
  that cluster (the workers are not its children).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_module(name: str):
    """``bench/<name>.py`` as a module, without putting bench/ on ``sys.path`` (its
    ``postprocess.py`` would shadow the package in the cluster's workers)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")
    return wall, usage.ru_maxrss / 1024


def best(cmd: list[str], repeat: int) -> tuple[float, float]:
    runs = [child(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def noop(x):
    return x


def scheduler_cost(client, n_tasks: int, window: int, payload: int) -> float:
    """Seconds per task of no-op tasks (``payload`` bytes back each), ``window`` in flight,
    consumed in order as ``cluster.run`` does."""
    from collections import deque

    blob = b"x" * payload
    t = time.perf_counter()
    pending: deque = deque()
    nxt = 0
    while nxt < n_tasks or pending:
        while nxt < n_tasks and len(pending) < window:
            pending.append(client.submit(noop, blob, pure=False))
            nxt += 1
        pending.popleft().result()
    return (time.perf_counter() - t) / n_tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--soft-images", type=int, default=20)
    ap.add_argument("--soft-data", default=str(Path(tempfile.gettempdir()) / "soft_bench_maps"))
    ap.add_argument("--repeat", type=int, default=2, help="CLI runs per row (best wall kept)")
    ap.add_argument("--project", type=int, default=10_000, help="images of the projection")
    args = ap.parse_args()

    soft_bench, vote_bench = bench_module("soft"), bench_module("vote")
    from distributed import Client, LocalCluster

    import cluster
    from cluster.plan import auto_chunk
    from ensemble import hard_vote, soft_vote

    # bench/vote.py's folder holds one size at a time: other sizes get their own folder
    default = (args.images, args.models) == (300, 5)
    folder = ROOT / "bench" / "out" / ("vote" if default else f"vote-{args.images}-{args.models}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in vote_bench.generate(folder, args.images, args.models)]
    soft_folder = Path(args.soft_data)
    soft_bench.make_data(soft_folder, args.soft_images)
    soft_yaml = soft_folder / "soft.yaml"
    py = [sys.executable, "cli.py"]
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hard = [*py, "hard", *paths, "-q"]
        soft = [*py, "soft", "--setting", soft_yaml, "-q"]
        child([*hard, "-o", tmp / "warm.csv"])  # numba cache warm, files in the page cache
        rows["hard"] = {
            "one process": best([*hard, "-o", tmp / "h1.csv"], args.repeat),
            "--workers 2": best([*hard, "-o", tmp / "h2.csv", "--workers", 2], args.repeat),
            "--scheduler local:2": best([*hard, "-o", tmp / "h3.csv", "--scheduler", "local:2"], args.repeat),
        }
        same_hard = len({(tmp / f).read_bytes() for f in ("h1.csv", "h2.csv", "h3.csv")}) == 1
        child([*soft, "-o", tmp / "warm-soft.csv", "--workers", 1])
        rows["soft"] = {
            "one process": best([*soft, "-o", tmp / "s1.csv", "--workers", 1], args.repeat),
            "--workers 2": best([*soft, "-o", tmp / "s2.csv", "--workers", 2], args.repeat),
            "--scheduler local:2": best(
                [*soft, "-o", tmp / "s3.csv", "--workers", 1, "--scheduler", "local:2"], args.repeat
            ),
        }
        same_soft = len({(tmp / f).read_bytes() for f in ("s1.csv", "s2.csv", "s3.csv")}) == 1

        t = time.perf_counter()
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
            ) as lc,
            Client(lc) as client,
        ):
            start = time.perf_counter() - t
            named = dict(zip(vote_bench_names(paths), paths, strict=True))
            runs = {}
            for kind, fn, a, kw in [
                ("hard", hard_vote, (named,), {}),
                ("soft", soft_vote, (str(soft_yaml),), {"workers": 1}),
            ]:
                out = []
                for k in range(2):  # cold worker caches, then warm
                    t = time.perf_counter()
                    r = cluster.run(fn, *a, output=tmp / f"{kind}-api{k}.csv", scheduler=client, **kw)
                    out.append((time.perf_counter() - t, r))
                runs[kind] = out
            t = time.perf_counter()
            cluster.run(hard_vote, named, output=tmp / "hard-ship.csv", scheduler=client, ship_inputs=True)
            ship_wall = time.perf_counter() - t
            same_api = all(
                (tmp / f).read_bytes() == (tmp / "h1.csv").read_bytes()
                for f in ("hard-api0.csv", "hard-api1.csv", "hard-ship.csv")
            )
            warm_hard = runs["hard"][1][1]
            payload = (tmp / "h1.csv").stat().st_size // warm_hard.chunks  # a chunk's CSV text
            per_task = scheduler_cost(client, max(4 * warm_hard.chunks, 40), 4, payload)
            bare = scheduler_cost(client, max(4 * warm_hard.chunks, 40), 4, 100)  # the scheduler alone
            client_rss = child([*hard, "-o", tmp / "h4.csv", "--scheduler", client.scheduler.address])
    parse = parse_seconds(paths)

    n = args.images
    print(
        f"\ncluster benchmark: hard vote {args.models} CSVs × {n} images × 29 classes at 2048²; soft vote "
        f"{args.soft_images} images × 5 map sources at 2048²; 2 cores, shared machine (noisy); CLI rows: "
        f"whole processes, best of {args.repeat}"
    )
    print(f"{'':<12}{'':<24}{'wall s':>8}{'peak RSS MB':>13}")
    for kind, r in rows.items():
        for name, (wall, rss) in r.items():
            print(f"{kind:<12}{name:<24}{wall:>8.2f}{rss:>13.0f}")
    print(f"outputs identical (CLI rows, API runs, --ship-inputs): hard {same_hard and same_api}, soft {same_soft}")
    print(
        f"LocalCluster(2) start-up: {start:.2f} s; client alone (cli.py hard --scheduler tcp://…, workers "
        f"warm): {client_rss[0]:.2f} s, peak RSS {client_rss[1]:.0f} MB"
    )
    print(
        f"scheduler round trip per task (no-op tasks returning {payload / 1e6:.1f} MB, as a hard-vote chunk's "
        f"rows, 4 in flight, consumed in order): o = {per_task * 1e3:.1f} ms; of which the scheduler alone "
        f"(100-byte tasks): o0 = {bare * 1e3:.1f} ms, the rest moving the rows"
    )
    print(
        f"hard, --ship-inputs (API, warm workers): {ship_wall:.2f} s; one process reads the {args.models} CSVs "
        f"in {parse:.2f} s"
    )
    consts = {}
    for kind, ((w0, cold), (w1, warm)) in runs.items():
        s0, s1 = cold.seconds, warm.seconds
        r = (s1["tasks"] - s1["loops"]) / warm.chunks
        t_img = s1["loops"] / warm.images
        p = parse if kind == "hard" else 0.0  # soft reads per image: nothing whole to parse
        # the cold checks-only task (every worker at once; the first to finish counts): the checks,
        # the parse of the inputs and the worker's warm-up (imports, loading the numba kernels)
        u = max(s0["prepare"] - s1["prepare"] - p, 0.0)
        single = rows[kind]["one process"][0]
        sched, sched0 = warm.chunks * per_task, warm.chunks * bare
        print(
            f"{kind}: {warm.chunks} chunks of ≤ {warm.chunk} (default); API run on the cluster: cold {w0:.2f} s "
            f"(checks-only task {s0['prepare']:.2f}), warm {w1:.2f} s (checks-only task {s1['prepare']:.2f}); "
            f"t_img = {t_img * 1e3:.1f} ms of image work per image; per chunk: r = {r * 1e3:.1f} ms re-running "
            f"the checks and formatting, + o; {warm.chunks} × o = {sched:.2f} s = "
            f"{100 * sched / single:.1f} % of the single-process {single:.2f} s (the scheduler alone, "
            f"{warm.chunks} × o0: {100 * sched0 / single:.1f} %); worker warm-up u = {u:.2f} s"
        )
        consts[kind] = (start, s1["prepare"], p, u, t_img, r, args.images if kind == "hard" else args.soft_images)
    N = args.project
    print(
        f"\nprojection at {N:,} images, W workers on W cores (on paper): with c = min(64, ⌈N/4W⌉) images "
        "per chunk and K = ⌈N/c⌉ chunks,\n  T(W) = start + q·N/n + P·N/n + u + max(⌈K/W⌉·(c·t_img + r·N/n), K·o)"
        "\nn the images measured, q the checks-only task (warm), P one parse of the inputs (every worker parses "
        "them at once, in its checks-only task), u a worker's warm-up, r the per-chunk checks (they scan the "
        "whole image list: taken ∝ N), o the round trip (the client consumes one chunk at a time: K·o bounds "
        "the chunks' time from below); one process: hard = its fixed cost + (P/n + t_img)·N, soft = its wall·N/n"
    )
    for kind, (st, q, p, u, t_img, r, n_meas) in consts.items():
        single = rows[kind]["one process"][0]
        # hard: the fixed cost (start-up, imports, kernels) + (parse + image work) ∝ N; soft: its own wall ∝ N
        # (the workers' t_img is inflated by 2 workers + client sharing 2 cores; start-up is small there)
        one = single * N / n_meas
        if kind == "hard":
            one = max(single - p - t_img * n_meas, 0.0) + (p / n_meas + t_img) * N
        for w in (8, 64):
            c = auto_chunk(N, w)
            k = math.ceil(N / c)
            body = max(math.ceil(k / w) * (c * t_img + r * N / n_meas), k * per_task)
            total = st + q * N / n_meas + p * N / n_meas + u + body
            print(
                f"  {kind:<5} W={w:<3} c={c:<3} K={k:<4} T ≈ {total:7.1f} s = start {st:.1f} + checks "
                f"{q * N / n_meas:.1f} + parse {p * N / n_meas:.1f} + warm-up {u:.1f} + chunks {body:.1f}; "
                f"one process ≈ {one:.0f} s ({one / total:.1f}×)"
            )


def parse_seconds(paths: list[str]) -> float:
    """One process reading and validating the CSVs (what each worker does once)."""
    from core.classes import CANVAS, DEFAULT_CLASSES
    from core.predictions import read_predictions

    read_predictions(paths[0], DEFAULT_CLASSES, CANVAS, CANVAS)  # kernels loaded
    t = time.perf_counter()
    for p in paths:
        read_predictions(p, DEFAULT_CLASSES, CANVAS, CANVAS)
    return time.perf_counter() - t


def vote_bench_names(paths: list[str]) -> list[str]:
    from core.sources import source_names

    return source_names(paths)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
