"""How the CSV commands' cost grows with the number of images, against a plain pandas read of
the same files; and the hard vote on a Dask cluster of 1, 2 and 4 single-threaded worker
processes beside the one-process run.

    python bench/scale.py                          # 300, 1,500 and 7,500 images
    python bench/scale.py --sizes 300,1500 --workers 2 --repeat 1

Data: the 5 model CSVs (+ ``gt.csv``, two merge parts, a select setting) of ``bench/floor.py``
at the smallest size, grown to each larger size by repeating every row under new image names
(``r1_…``, ``r2_…``): the same masks, so the work per image is the same at every size.

**Growth.** For each command and size: the command's whole-process wall time (``python
cli.py …``, warm numba cache, best of ``--repeat``) and the floor's (a child that imports
numpy and pandas and reads the command's inputs with ``pandas.read_csv``). The marginal cost
is what a size adds over the smallest; the ratio is the command's marginal cost over the
floor's: 1.0 means each image costs what reading its rows with pandas costs.

**Cluster** (``--cluster-images``, default 1,500): the hard vote on a cluster of N
single-threaded worker processes against ``cli.py hard`` in one process, in the same run,
outputs compared byte for byte; two ways. ``local:N``: a ``LocalCluster`` started and closed
by the run (``CLUSTER_CHILD``), as ``--scheduler local:N`` does. "Running": ``cli.py hard
--scheduler tcp://…`` on a cluster started beforehand and given one run of the job first, as
on a cluster that stays up between jobs (``running_rows``). CPU: for ``local:N`` the whole
process tree's (the workers and nannies are the child's children, reaped before it exits);
for a running cluster the command's process tree, plus the workers' and the scheduler's
(this process's) growth over the run. Bytes read per worker: the growth of ``rchar`` of
``/proc/self/io`` in each worker over the run; the client's (``local:N`` only) over its call
of ``cluster.run``: the client reads and checks the inputs, each worker reads its chunks'
rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_module(name: str):
    """``bench/<name>.py`` as a module (bench/ is not put on ``sys.path``: its
    ``postprocess.py`` would shadow the package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grow(base: Path, folder: Path, factor: int) -> None:
    """``base``'s CSVs with every row repeated ``factor`` times under new image names."""
    marker = folder / f".grown-{factor}"
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    print(f"growing {base} × {factor} into {folder} …", file=sys.stderr, flush=True)
    for src in base.glob("*.csv"):
        head, _, body = src.read_bytes().partition(b"\n")
        rows = body.rstrip(b"\n")
        with open(folder / src.name, "wb") as fh:
            fh.write(head + b"\n" + rows + b"\n")
            for r in range(1, factor):
                prefix = b"r%d_" % r
                fh.write(prefix + rows.replace(b"\n", b"\n" + prefix) + b"\n")
    (folder / "select.yaml").write_text((base / "select.yaml").read_text().replace(str(base), str(folder)))
    marker.write_text("ok")


def paths_in(folder: Path) -> dict:
    return {
        "gt": folder / "gt.csv",
        "models": [folder / f"model{i}.csv" for i in range(1, 6)],
        "parts": [folder / "part1.csv", folder / "part2.csv"],
        "select": folder / "select.yaml",
    }


# The launcher reaps the command and reports its wall time and the CPU time of its whole
# process tree (os.wait4's rusage counts every descendant that was waited for).
LAUNCH = (
    "import os, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "out, err = p.communicate()\n"
    "wall = time.perf_counter() - t\n"
    "import resource\n"
    "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stderr.buffer.write(err[-4000:])\n"
    "sys.stdout.buffer.write(out[-4000:])\n"
    "print('@@', p.returncode, wall, ru.ru_utime + ru.ru_stime)\n"
)


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds of the process tree, and the command's stdout."""
    res = subprocess.run([sys.executable, "-c", LAUNCH, *map(str, cmd)], cwd=ROOT, capture_output=True)
    out = res.stdout.decode(errors="replace")
    last = out.strip().splitlines()[-1].split()
    if res.returncode != 0 or last[0] != "@@" or last[1] != "0":
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{res.stderr.decode(errors='replace')[-2000:]}")
    return float(last[2]), float(last[3]), out


def best(cmd: list[str], repeat: int) -> tuple[float, float, str]:
    runs = [run_child(cmd) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def io_and_cpu() -> tuple[int, float]:
    """This process's bytes read (``rchar``; -1 where ``/proc`` has none) and CPU seconds."""
    import resource

    u = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with open("/proc/self/io") as fh:
            rchar = int(next(line for line in fh if line.startswith("rchar")).split()[1])
    except OSError:
        rchar = -1
    return rchar, u.ru_utime + u.ru_stime


CLUSTER_CHILD = """
import json, sys
sys.path.insert(0, {root!r})


{io_and_cpu}

def main():
    from cluster.client import run
    from cluster.scheduler import connect
    from ensemble import hard_vote

    sources = {{f"model{{i}}": p for i, p in enumerate(sys.argv[3:], 1)}}
    with connect(f"local:{{sys.argv[1]}}") as client:
        start = client.run(io_and_cpu)
        mine = io_and_cpu()
        run(hard_vote, sources, output=sys.argv[2], scheduler=client)
        mine = io_and_cpu()[0] - mine[0]
        end = client.run(io_and_cpu)
    per = [[end[w][0] - start[w][0], end[w][1] - start[w][1]] for w in end]
    print(json.dumps({{"workers": per, "client": mine}}))


if __name__ == "__main__":
    main()
"""


def cluster_rows(p: dict, out: Path, workers: list[int], repeat: int) -> list[tuple]:
    """(label, wall, cpu, per-worker [bytes read, cpu], bytes the client read) for one process
    and each cluster size."""
    import json

    py = sys.executable
    models = [str(m) for m in p["models"]]
    one = out / "hard-one.csv"
    wall, cpu, _ = best([py, "cli.py", "hard", *models, "-o", one, "--quiet"], repeat)
    rows = [("one process", wall, cpu, [], None)]
    script = out / "cluster_child.py"
    script.write_text(CLUSTER_CHILD.format(root=str(ROOT), io_and_cpu=inspect.getsource(io_and_cpu)))
    for n in workers:
        target = out / f"hard-local{n}.csv"
        wall, cpu, text = best([py, script, n, target, *models], repeat)
        if target.read_bytes() != one.read_bytes():
            raise SystemExit(f"local:{n}: output differs from the one-process run")
        said = json.loads(text.strip().splitlines()[-2])
        rows.append((f"local:{n}", wall, cpu, said["workers"], said["client"]))
        print(f"local:{n}: {wall:.2f} s, CPU {cpu:.2f} s", file=sys.stderr, flush=True)
    return rows


def running_rows(p: dict, out: Path, workers: list[int], repeat: int) -> list[tuple]:
    """``cli.py hard --scheduler tcp://…`` on a running cluster of N single-threaded worker
    processes (as a user with a cluster runs it: workers started, their kernels loaded by a
    first run), against the one-process run's output. CPU: the command's process tree, the
    workers' growth, and this process's (the scheduler runs in it)."""
    from distributed import Client

    from cluster.scheduler import local_cluster

    py = sys.executable
    models = [str(m) for m in p["models"]]
    one = (out / "hard-one.csv").read_bytes()
    rows = []
    for n in workers:
        with local_cluster(n) as cluster, Client(cluster) as client:
            target = out / f"hard-running{n}.csv"
            cmd = [py, "cli.py", "hard", *models, "-o", target, "--quiet", "--scheduler", cluster.scheduler_address]
            run_child(cmd)  # the workers' first job: imports, kernels loaded
            runs = []
            for _ in range(repeat):
                before, mine = client.run(io_and_cpu), io_and_cpu()[1]
                wall, cpu, _ = run_child(cmd)
                after, mine = client.run(io_and_cpu), io_and_cpu()[1] - mine
                per = [[after[w][0] - before[w][0], after[w][1] - before[w][1]] for w in after]
                runs.append((wall, cpu + mine + sum(c for _, c in per), per))
            if target.read_bytes() != one:
                raise SystemExit(f"running cluster of {n}: output differs from the one-process run")
        wall, cpu, per = min(runs, key=lambda r: r[0])
        rows.append((f"running, {n} worker{'s' * (n > 1)}", wall, cpu, per, None))
        print(f"running cluster of {n}: {wall:.2f} s, CPU {cpu:.2f} s", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="300,1500,7500", help="image counts; each a multiple of the first")
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--only", default=None, help="comma-separated commands (default all)")
    ap.add_argument("--cluster-images", type=int, default=1500, help="0: no cluster runs")
    ap.add_argument(
        "--workers", default="1,2,4", help="worker counts of the cluster runs, local:N and running (default 1,2,4)"
    )
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "bench_scale")
    args = ap.parse_args()

    floor_mod = bench_module("floor")
    sizes = [int(s) for s in args.sizes.split(",")]
    base = args.data / str(sizes[0])
    base.mkdir(parents=True, exist_ok=True)
    floor_mod.generate(base, sizes[0])
    folders = {sizes[0]: base}
    for n in sorted({*sizes[1:], *([args.cluster_images] if args.cluster_images else [])}):
        if n % sizes[0]:
            raise SystemExit(f"--sizes/--cluster-images: {n} is not a multiple of {sizes[0]}")
        folders[n] = args.data / str(n)
        grow(base, folders[n], n // sizes[0])

    py = sys.executable
    table: dict[str, dict[int, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in sizes:
            for label, cli_args, inputs in floor_mod.scenarios(paths_in(folders[n]), tmp):
                if args.only and label not in args.only.split(","):
                    continue
                floor = best([py, "-c", floor_mod.FLOOR, *inputs], args.repeat)[0]
                ours = best([py, "cli.py", *cli_args, "--quiet"], args.repeat)[0]
                table.setdefault(label, {})[n] = (floor, ours)
                print(f"{label} @ {n}: floor {floor:.2f} s, ours {ours:.2f} s", file=sys.stderr, flush=True)
        cluster = []
        if args.cluster_images:
            workers = [int(w) for w in args.workers.split(",")]
            cluster = cluster_rows(paths_in(folders[args.cluster_images]), tmp, workers, args.repeat)
            cluster += running_rows(paths_in(folders[args.cluster_images]), tmp, workers, args.repeat)

    print(f"\n5 models × 29 classes, 2048²; {os.cpu_count()} CPU cores; best of {args.repeat}\n")
    head = " | ".join(f"{n:,}: floor / ours s" for n in sizes)
    grown = " | ".join(f"{sizes[0]:,} → {n:,}" for n in sizes[1:])
    print(f"| command | {head} | {grown} |")
    print("|---|" + "---|" * (2 * len(sizes) - 1))
    for label, per in table.items():
        cells = " | ".join(f"{per[n][0]:.2f} / {per[n][1]:.2f}" if n in per else "–" for n in sizes)
        ratios = []
        for n in sizes[1:]:
            if n in per and sizes[0] in per:
                d_floor = per[n][0] - per[sizes[0]][0]
                d_ours = per[n][1] - per[sizes[0]][1]
                ratios.append(f"{d_ours / d_floor:.1f}×" if d_floor > 0 else "–")
            else:
                ratios.append("–")
        print(f"| {label} | {cells} | {' | '.join(ratios)} |")
    if cluster:
        wall1, cpu1 = cluster[0][1], cluster[0][2]
        print(f"\nhard, {args.cluster_images:,} images: a cluster against one process\n")
        print(
            "| run | wall s | × one process | CPU s (all processes) | × one process "
            "| MB read per worker | MB read by the client |"
        )
        print("|---|---|---|---|---|---|---|")
        for label, wall, cpu, per, mine in cluster:
            read = ", ".join(f"{r / 1e6:.0f}" for r, _ in per) if per else "–"
            client = f"{mine / 1e6:.0f}" if mine is not None else "–"
            print(f"| {label} | {wall:.2f} | {wall / wall1:.2f} | {cpu:.2f} | {cpu / cpu1:.2f} | {read} | {client} |")


if __name__ == "__main__":
    main()
