"""Benchmark of ``cli.py soft`` with models on a device against the original soft-voting loop.

Data (generated once under ``--data``, kept for later runs): N grey 2048² PNG X-rays of the
synthetic hand (bone ``c`` drawn at its own grey level, ±1 noise) and three small U-Nets
(``bench/bench_unet.py``): a TorchScript one at 1024² input, a pickled one at 1024² input
with a 1/4-resolution output, a TorchScript one at 512² input.

Each side runs as its own child process (wall time from spawn to exit: start-up, imports,
model loading and writing included):

* **original** — the seed tool's loop: ``cv2.imread(path) / 255``, ``cv2.resize`` (bilinear)
  per input size, model, ``F.interpolate`` to 2048², sigmoid, sum, ``/ count``, ``> 0.5``,
  ``.cpu()``, numpy RLE per class, CSV at the end (Pillow + torch resize where OpenCV is
  missing; said in the output);
* **forward** — the three models' forward passes alone on inputs already on the device,
  timed with device synchronisation: the floor of any soft vote;
* **ours** — ``python cli.py soft --setting … --device D`` (engine auto: the device engine on
  a GPU). ``--engines cpu`` adds the numba engine (``--engine cpu``) for comparison.

Printed: wall times and ratios, the time outside the forward passes per image, peak device
memory (``torch.cuda.max_memory_allocated``), peak host RSS, and the pixels where ours and
the original differ (as a fraction of the original's mask area).

    python bench/soft_device.py --device cuda --images 96
    python bench/soft_device.py --device cpu --images 4      # no GPU: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

MODELS = [("unet_ts", 1024, 1, "ts"), ("unet_quarter", 1024, 4, "pickle"), ("unet_small", 512, 1, "ts")]
THRESHOLD = 0.5
SIZE = 2048


# ---------------------------------------------------------------- data
def _write_image(args) -> None:
    i, folder, n_images = args
    import numpy as np
    from bench_unet import BACKGROUND, level
    from PIL import Image

    from core.synthetic import Generator

    gen = Generator(n_images=n_images, n_models=1, seed=11)
    img = gen.image(i)
    flat = np.full(SIZE * SIZE, BACKGROUND, np.int16)
    for c, runs in enumerate(img.gt):
        for s, e in runs:
            flat[s:e] = level(c)
    flat += np.random.default_rng(i).integers(-1, 2, flat.size).astype(np.int16)
    pixels = np.clip(flat, 0, 255).astype(np.uint8).reshape(SIZE, SIZE)
    sub = Path(folder) / f"ID{i // 10:03d}"
    sub.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "L").save(sub / img.name)


def make_data(folder: Path, n_images: int) -> None:
    """Write the images, the models and the settings file (skipped when already there)."""
    done = folder / f"done-{n_images}"
    if done.exists():
        return
    from multiprocessing import Pool

    import torch

    sys.path.insert(0, str(BENCH))
    from bench_unet import SmallUNet

    with Pool(min(os.cpu_count() or 1, 16)) as pool:
        pool.map(_write_image, [(i, str(folder / "DCM"), n_images) for i in range(n_images)])
    paths = {}
    for k, (name, size, stride, kind) in enumerate(MODELS):
        net = SmallUNet(out_stride=stride, seed=k).eval()
        paths[name] = folder / f"{name}.pt"
        if kind == "ts":
            torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, size, size)), paths[name])
        else:
            torch.save(net, paths[name])
    sizes: dict[int, list[str]] = {}
    for name, size, _, _ in MODELS:
        sizes.setdefault(size, []).append(str(paths[name]))
    lines = [
        f"image_root: {folder / 'DCM'}",
        f"root_path: {BENCH}",
        "batch_size: 2",
        "num_workers: 8",
        f"threshold: {THRESHOLD}",
        "model_paths:",
    ]
    lines += [f"  {size}: [{', '.join(p)}]" for size, p in sizes.items()]
    lines += [f"save_dir: {folder}", "output_name: ours.csv"]
    (folder / "soft.yaml").write_text("\n".join(lines) + "\n")
    done.touch()


def image_paths(folder: Path) -> list[Path]:
    """As the original tool listed them: every PNG under the root, sorted by relative path."""
    return sorted((folder / "DCM").rglob("*.png"), key=lambda p: str(p.relative_to(folder / "DCM")))


def load_models(folder: Path, device):
    import torch

    sys.path.insert(0, str(BENCH))
    out = []
    for name, size, _, kind in MODELS:
        path = folder / f"{name}.pt"
        m = (
            torch.jit.load(str(path), map_location=device)
            if kind == "ts"
            else torch.load(path, map_location=device, weights_only=False)
        )
        out.append((m.eval().to(device), size))
    return out


# ---------------------------------------------------------------- the original loop
def rle_encode(mask):
    """The seed tool's encoder: numpy, one class mask at a time."""
    import numpy as np

    pixels = mask.flatten()
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def run_original(folder: Path, device: str, out: Path) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from core.classes import DEFAULT_CLASSES

    try:
        import cv2
    except ImportError:
        cv2 = None
    models = load_models(folder, device)
    rows = []
    with torch.no_grad():
        for path in image_paths(folder):
            if cv2 is not None:
                image = cv2.imread(str(path)) / 255.0
            else:
                from PIL import Image

                with Image.open(path) as im:
                    image = np.repeat(np.asarray(im.convert("L"))[:, :, None], 3, axis=2) / 255.0
            inputs = {}
            for size in {s for _, s in models}:
                if cv2 is not None:
                    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
                    inputs[size] = torch.from_numpy(resized.transpose(2, 0, 1)).float()[None].to(device)
                else:
                    t = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None]
                    inputs[size] = F.interpolate(t, size=(size, size), mode="bilinear").to(device)
            total = None
            for model, size in models:
                out_ = model(inputs[size])
                prob = torch.sigmoid(F.interpolate(out_, size=(SIZE, SIZE), mode="bilinear"))
                total = prob if total is None else total + prob
            mask = ((total / len(models)) > THRESHOLD).cpu().numpy()[0]
            for c, cls in enumerate(DEFAULT_CLASSES):
                rows.append(f"{path.name},{cls},{rle_encode(mask[c])}\n")
    out.write_text("image_name,class,rle\n" + "".join(rows))
    return {"resize": "cv2" if cv2 is not None else "torch (no OpenCV here)"}


def run_forward(folder: Path, device: str) -> dict:
    """The models' forward passes alone, inputs prepared beforehand (one image at a time)."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    models = load_models(folder, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    seconds = 0.0
    with torch.no_grad():
        for path in image_paths(folder):
            with Image.open(path) as im:
                g = torch.from_numpy(np.array(im.convert("L"))).to(device).float() / 255
            x = g[None, None].expand(1, 3, *g.shape)
            inputs = {s: F.interpolate(x, size=(s, s), mode="bilinear") for s in {s for _, s in models}}
            sync()
            t = time.perf_counter()
            for model, size in models:
                model(inputs[size])
            sync()
            seconds += time.perf_counter() - t
    return {"forward_seconds": seconds}


def run_ours(folder: Path, device: str, engine: str, out: Path) -> dict:
    import cli

    try:
        cli.cli(
            [
                "soft",
                "--setting",
                str(folder / "soft.yaml"),
                "--device",
                device,
                "--engine",
                engine,
                "-o",
                str(out),
                "--quiet",
            ],
            standalone_mode=False,
        )
    except SystemExit as e:
        if e.code:
            raise
    return {}


# ---------------------------------------------------------------- driver
def child(kind: str, folder: Path, device: str, out: Path, stats: Path, engine: str) -> None:
    if kind == "original":
        result = run_original(folder, device, out)
    elif kind == "forward":
        result = run_forward(folder, device)
    elif kind == "startup":  # the fixed cost any torch program pays: interpreter, torch, device
        import torch

        torch.zeros(1, device=device).cpu()
        result = {}
    elif kind == "profile":  # the main thread's time, by function: what the device waits on
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.runcall(run_ours, folder, device, engine, out)
        text = io.StringIO()
        stats_ = pstats.Stats(prof, stream=text)
        stats_.sort_stats("cumulative").print_stats(45)
        stats_.sort_stats("tottime").print_stats(20)
        stats_.print_callers("builtins.compile")
        result = {"profile": text.getvalue()}
    else:
        result = run_ours(folder, device, engine, out)
    peak = None
    if "torch" in sys.modules:
        import torch

        if device.startswith("cuda"):
            peak = torch.cuda.max_memory_allocated() / 2**20
    result.update(peak_device_mb=peak, rss_mb=peak_rss_mb())
    stats.write_text(json.dumps(result))


def peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` where Linux gives it: ``ru_maxrss``
    survives ``exec``, so a child would report its parent's peak if that was larger."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def spawn(kind: str, args, out: Path, engine: str = "auto") -> dict:
    stats = args.data / f"stats-{kind}-{engine}.json"
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--data",
        str(args.data),
        "--device",
        args.device,
        "--out",
        str(out),
        "--stats",
        str(stats),
        "--engine",
        engine,
    ]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    result = json.loads(stats.read_text())
    result["wall"] = time.perf_counter() - t
    return result


def compare(ours: Path, original: Path) -> tuple[int, int]:
    """(pixels that differ, pixels of the original's masks) over every image and class."""
    from core.classes import DEFAULT_CLASSES
    from core.predictions import read_predictions
    from core.runs import difference

    a = read_predictions(ours, DEFAULT_CLASSES)
    b = read_predictions(original, DEFAULT_CLASSES)
    if sorted(a.images) != sorted(b.images):
        raise SystemExit("ours and the original name different images")
    differ = area = 0
    for i, name in enumerate(b.images):
        j = a.images.index(name)
        for c in range(len(DEFAULT_CLASSES)):
            ra, rb = a.runs(j, c), b.runs(i, c)
            area += int((rb[:, 1] - rb[:, 0]).sum())
            for d in (difference(ra, rb), difference(rb, ra)):
                differ += int((d[:, 1] - d[:, 0]).sum())
    return differ, area


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--data", type=Path, default=None, help="Data folder (default /tmp/soft_device_bench-N).")
    ap.add_argument("--engines", default="auto", help="Our engines to time, comma-separated (auto, cpu, device).")
    ap.add_argument("--profile", action="store_true", help="Also run ours once under cProfile and print the top.")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--stats", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--engine", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.data = args.data or Path(f"/tmp/soft_device_bench-{args.images}")
    if args.child:
        child(args.child, args.data, args.device, args.out, args.stats, args.engine)
        return
    args.data.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    make_data(args.data, args.images)
    print(
        f"data: {args.images} images 2048² and 3 models in {args.data} ({time.perf_counter() - t:.1f} s)",
        file=sys.stderr,
    )
    n = args.images
    original = spawn("original", args, args.data / "original.csv")
    forward = spawn("forward", args, args.data / "unused.csv")
    startup = spawn("startup", args, args.data / "unused.csv")["wall"]
    fwd = forward["forward_seconds"]
    rows = [("original loop", original)]
    for engine in args.engines.split(","):
        res = spawn("ours", args, args.data / f"ours-{engine}.csv", engine)
        res["differ"], res["area"] = compare(args.data / f"ours-{engine}.csv", args.data / "original.csv")
        rows.append((f"cli.py soft --engine {engine}", res))

    def mb(v):
        return "—" if v is None else f"{v:,.0f} MB"

    print(
        f"\nsoft vote, {n} images 2048², 3 models (1024² TorchScript, 1024² pickled 1/4-res output, "
        f"512² TorchScript), device {args.device}; original resize: {original['resize']}"
    )
    print(
        f"models' forward passes alone: {fwd:.2f} s ({1000 * fwd / n:.1f} ms per image); start-up of a "
        f"process that imports torch and touches the device: {startup:.2f} s\n"
    )
    print(
        "| | wall | vs original | outside forward, per image | same, less start-up | peak device memory | "
        "peak host RSS | pixels differing from the original |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows:
        diff = "—" if "differ" not in r else f"{r['differ']:,} ({r['differ'] / max(r['area'], 1):.2e} of mask area)"
        print(
            f"| {label} | {r['wall']:.1f} s | {original['wall'] / r['wall']:.2f}× | "
            f"{1000 * (r['wall'] - fwd) / n:.1f} ms | {1000 * (r['wall'] - fwd - startup) / n:.1f} ms | "
            f"{mb(r['peak_device_mb'])} | {mb(r['rss_mb'])} | {diff} |"
        )
    if args.profile:
        engine = args.engines.split(",")[0]
        prof = spawn("profile", args, args.data / "profiled.csv", engine)
        print(f"\ncProfile of the main thread, --engine {engine} ({prof['wall']:.1f} s under the profiler):")
        print(prof["profile"])


if __name__ == "__main__":
    main()
