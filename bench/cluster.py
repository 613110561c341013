"""Cluster benchmark (issue 14): a Dask ``LocalCluster`` of 2 processes against ``--workers 2``
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
    from cluster.run import auto_chunk
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
            "--scheduler local:2": best([*soft, "-o", tmp / "s3.csv", "--workers", 1, "--scheduler", "local:2"],
                                        args.repeat),
        }
        same_soft = len({(tmp / f).read_bytes() for f in ("s1.csv", "s2.csv", "s3.csv")}) == 1

        t = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=50) as lc, Client(lc) as client:
            start = time.perf_counter() - t
            named = dict(zip(vote_bench_names(paths), paths, strict=True))
            runs = {}
            for kind, fn, a, kw in [("hard", hard_vote, (named,), {}),
                                    ("soft", soft_vote, (str(soft_yaml),), {"workers": 1})]:
                out = []
                for k in range(2):  # cold worker caches, then warm
                    t = time.perf_counter()
                    r = cluster.run(fn, *a, output=tmp / f"{kind}-api{k}.csv", scheduler=client, **kw)
                    out.append((time.perf_counter() - t, r))
                runs[kind] = out
            n_chunks = runs["hard"][1][1].chunks
            per_task = scheduler_cost(client, max(4 * n_chunks, 40), 4, 64 * 29 * 700)
            client_rss = child([*hard, "-o", tmp / "h4.csv", "--scheduler", client.scheduler.address])

    n = args.images
    print(f"\ncluster benchmark: hard vote {args.models} CSVs × {n} images × 29 classes at 2048²; soft vote "
          f"{args.soft_images} images × 5 map sources at 2048²; 2 cores, shared machine (noisy)")
    print(f"{'':<12}{'':<24}{'wall s':>8}{'peak RSS MB':>13}")
    for kind, r in rows.items():
        for name, (wall, rss) in r.items():
            print(f"{kind:<12}{name:<24}{wall:>8.2f}{rss:>13.0f}")
    print(f"outputs identical: hard {same_hard}, soft {same_soft}")
    print(f"LocalCluster(2) start-up: {start:.2f} s; client alone (cli.py hard --scheduler tcp://…): "
          f"{client_rss[0]:.2f} s, peak RSS {client_rss[1]:.0f} MB")
    print(f"scheduler round trip per task (no-op tasks, 1.3 MB back each, 4 in flight): {per_task * 1e3:.1f} ms")
    proj = {}
    for kind, ((w0, cold), (w1, warm)) in runs.items():
        s0, s1 = cold.seconds, warm.seconds
        per_chunk = (s1["tasks"] - s1["loops"]) / warm.chunks
        t_img = s1["loops"] / warm.images
        parse = max(s0["tasks"] - s1["tasks"], 0.0) / 2  # per worker: its first chunk parses the inputs
        single = rows[kind]["one process"][0]
        sched = warm.chunks * per_task
        print(f"{kind}: {warm.chunks} chunks of ≤ {warm.chunk}; API run cold {w0:.2f} s (prepare "
              f"{s0['prepare']:.2f}), warm {w1:.2f} s (prepare {s1['prepare']:.2f}); image work "
              f"{t_img * 1e3:.1f} ms/image; per chunk: checks re-run {per_chunk * 1e3:.1f} ms + scheduler "
              f"{per_task * 1e3:.1f} ms; scheduler total {sched:.2f} s = {100 * sched / single:.1f} % of the "
              f"single-process {single:.2f} s; input parse per worker {parse:.2f} s")
        proj[kind] = (start, s1["prepare"], parse, t_img, per_chunk)
    N = args.project
    print(f"\nprojection at {N:,} images (on paper): T(W) = start + prepare·N/n + parse·N/n + "
          "⌈⌈N/c⌉/W⌉·(c·t_img + r·N/n) with c = min(64, ⌈N/4W⌉), bounded below by ⌈N/c⌉·o "
          "(the client's round trip per task); n the measured images, r the per-chunk checks "
          "(they scan the whole image list: ∝ N), o the scheduler round trip")
    for kind, (st, prep, parse, t_img, r) in proj.items():
        n_meas = n if kind == "hard" else args.soft_images
        for w in (8, 64):
            c = auto_chunk(N, w)
            chunks = math.ceil(N / c)
            body = math.ceil(chunks / w) * (c * t_img + r * N / n_meas)
            total = st + prep * N / n_meas + parse * N / n_meas + max(body, chunks * per_task)
            print(f"  {kind:<5} W={w:<3} c={c:<3} chunks={chunks:<4} ≈ {total:8.1f} s "
                  f"(start {st:.1f} + prepare {prep * N / n_meas:.1f} + parse {parse * N / n_meas:.1f} + "
                  f"chunks {max(body, chunks * per_task):.1f})")


def vote_bench_names(paths: list[str]) -> list[str]:
    from core.sources import source_names

    return source_names(paths)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
