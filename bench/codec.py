"""Codec benchmark: ours vs the plain numpy codec (and pycocotools if installed), one run.

    python bench/codec.py [--masks 58] [--repeat 7]

Masks are real-sized synthetic bones (2048², one bone per mask, from ``core.synthetic``).
Prints median per-mask times and ratios; cold numba compile and warm ``import cli`` times
are measured in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.codec import decode, encode, format_rle, parse_rle  # noqa: E402
from core.synthetic import Generator  # noqa: E402

H = W = 2048


# --- the plain numpy codec every Kaggle notebook carries ----------------------------------
def np_encode(mask: np.ndarray) -> str:
    pixels = np.concatenate([[0], mask.ravel(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


def np_decode(pairs: np.ndarray, shape=(H, W)) -> np.ndarray:
    """The cumsum decoder, from parsed ``start length`` pairs."""
    starts, lengths = pairs[:, 0] - 1, pairs[:, 1]
    delta = np.zeros(shape[0] * shape[1] + 1, np.int32)  # +1: a run may end on the last pixel
    np.add.at(delta, starts, 1)
    np.add.at(delta, starts + lengths, -1)
    return np.cumsum(delta[:-1]).astype(np.uint8).reshape(shape)


def np_parse(text: str) -> np.ndarray:
    return np.asarray(text.split(), dtype=np.int64).reshape(-1, 2)


def np_format(pairs: np.ndarray) -> str:
    return " ".join(map(str, pairs.ravel()))


def median_ms(fn, items, repeat: int) -> float:
    times = []
    for x in items:
        best = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn(x)
            best.append(time.perf_counter() - t)
        times.append(min(best))
    return float(np.median(times) * 1e3)


def fresh_python(code: str, env_extra: dict | None = None) -> float:
    env = {**os.environ, **(env_extra or {})}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--masks", type=int, default=58)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    gen = Generator(n_images=(args.masks + 28) // 29, n_models=1, seed=11)
    runs = [r for img in gen.images() for r in img.gt][: args.masks]
    masks = [decode(r) for r in runs]
    texts = [format_rle(r) for r in runs]
    pairs = [np_parse(t) for t in texts]
    assert all(np_encode(m) == t for m, t in zip(masks, texts))
    assert all((np_decode(p) == m).all() for p, m in zip(pairs[:5], masks[:5]))
    buf = np.zeros((H, W), np.uint8)
    rep = args.repeat

    rows = []
    rows.append(
        (
            "encode (mask → runs)",
            median_ms(encode, masks, rep),
            median_ms(lambda m: np.where(np.diff(np.concatenate([[0], m.ravel(), [0]])))[0], masks, rep),
        )
    )
    rows.append(
        (
            "encode (mask → text)",
            median_ms(lambda m: format_rle(encode(m)), masks, rep),
            median_ms(np_encode, masks, rep),
        )
    )
    rows.append(
        (
            "decode (runs → caller's buffer)",
            median_ms(lambda r: decode(r, out=buf), runs, rep),
            median_ms(np_decode, pairs, rep),
        )
    )
    rows.append(("parse (text → runs)", median_ms(lambda t: parse_rle(t), texts, rep), median_ms(np_parse, texts, rep)))
    rows.append(("format (runs → text)", median_ms(format_rle, runs, rep), median_ms(np_format, pairs, rep)))
    rows.append(
        (
            "parse + format",
            median_ms(lambda t: format_rle(parse_rle(t)), texts, rep),
            median_ms(lambda t: np_format(np_parse(t)), texts, rep),
        )
    )

    coco = None
    try:
        from pycocotools import mask as mask_util

        fortran = [np.asfortranarray(m) for m in masks]
        cenc = [mask_util.encode(f) for f in fortran]
        coco = (median_ms(mask_util.encode, fortran, rep), median_ms(mask_util.decode, cenc, rep))
    except ImportError:
        pass

    med_runs = int(np.median([len(r) for r in runs]))
    print(f"{len(masks)} synthetic bone masks, 2048², median {med_runs} runs; medians of per-mask best of {rep}")
    print(f"{'operation':<34}{'ours ms':>10}{'numpy ms':>10}{'ratio':>8}")
    for name, ours, base in rows:
        print(f"{name:<34}{ours:>10.4f}{base:>10.4f}{base / ours:>7.1f}×")
    if coco:
        print(
            f"pycocotools encode (C, column-major): {coco[0]:.4f} ms → ours {rows[0][1]:.4f} ms "
            f"({coco[0] / rows[0][1]:.1f}×); decode {coco[1]:.4f} ms → ours {rows[2][1]:.4f} ms "
            f"({coco[1] / rows[2][1]:.1f}×)"
        )
    else:
        print("pycocotools not installed: skipped")

    with tempfile.TemporaryDirectory() as cache:
        probe = (
            "import numpy as np; from core.codec import encode, decode, parse_rle, format_rle;"
            "m=np.zeros((64,64),np.uint8); m[3:9,5:7]=1; r=encode(m); decode(r,(64,64)); "
            "parse_rle(format_rle(r),64,64)"
        )
        cold = fresh_python(probe, {"NUMBA_CACHE_DIR": cache})
        warm = fresh_python(probe, {"NUMBA_CACHE_DIR": cache})
    imp = min(fresh_python("import cli") for _ in range(3))
    print(f"codec first use in a fresh process: cold cache {cold:.2f} s (compile), warm cache {warm:.2f} s")
    print(f"warm 'import cli': {imp:.2f} s")


if __name__ == "__main__":
    main()
