"""Synthetic hand-bone X-ray predictions: ground truth and several models.

Each bone is a rotated ellipse laid out like a hand (5 rays of phalanges and metacarpals,
8 carpals, radius and ulna), drawn straight into runs one row at a time, with ragged
edges. Models see the same bones through per-(model, class) quality: worse quality means
larger shifts, scale and angle errors, rougher edges, more false-positive specks and
pinholes. Probability maps come from the same perturbed ellipses through a sigmoid of the
signed distance, at any resolution. Everything is deterministic in ``seed``, streams one
image at a time, and scales to 2048², 29 classes, hundreds of images.
"""

from __future__ import annotations

import contextlib
import math
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.classes import CANVAS, DEFAULT_CLASSES
from core.codec import format_rle
from core.errors import UsageError, shown
from core.owned import owned_files, remove_owned, write_manifest
from core.predictions import PredictionWriter
from core.runs import difference, from_rows, union


@dataclass(frozen=True)
class Ellipse:
    cy: float
    cx: float
    a: float  # semi-axis along the bone
    b: float  # semi-axis across
    theta: float  # direction of the long axis, radians from +y (down) towards +x

    def moved(self, dy=0.0, dx=0.0, sa=1.0, sb=1.0, dtheta=0.0) -> Ellipse:
        return Ellipse(self.cy + dy, self.cx + dx, self.a * sa, self.b * sb, self.theta + dtheta)


def _hand_layout() -> list[Ellipse]:
    """29 bones in the default class order on a 2048² canvas, hand pointing up."""
    bones: list[Ellipse] = []
    # (origin y, origin x, angle from vertical in degrees, bone lengths tip→base, widths)
    rays = [
        (1270, 1250, 38, (115, 165, 230), (38, 44, 50)),  # thumb: 3 bones
        (1210, 1140, 10, (95, 135, 215, 300), (30, 36, 40, 44)),
        (1200, 1045, 1, (100, 145, 235, 310), (31, 37, 41, 45)),
        (1205, 950, -8, (95, 140, 225, 295), (30, 35, 39, 42)),
        (1230, 860, -18, (85, 115, 185, 265), (27, 31, 35, 39)),
    ]
    for oy, ox, deg, lengths, widths in rays:
        th = math.radians(180 - deg)  # pointing up, tilted by deg
        # walk from base to tip, then store tip→base
        seg = []
        d = 0.0
        for length, width in zip(reversed(lengths), reversed(widths), strict=False):
            c = d + length / 2
            seg.append(Ellipse(oy + c * math.cos(th), ox + c * math.sin(th), length / 2 * 1.04, width, th))
            d += length + 6
        bones.extend(reversed(seg))
    carpals = [  # Trapezium, Trapezoid, Capitate, Hamate, Scaphoid, Lunate, Triquetrum, Pisiform
        (1315, 1215, 62, 48, 30),
        (1290, 1125, 52, 40, 10),
        (1300, 1035, 78, 52, 0),
        (1305, 925, 70, 52, -15),
        (1420, 1165, 80, 52, 40),
        (1440, 1055, 62, 55, 0),
        (1430, 945, 58, 48, -20),
        (1400, 885, 40, 36, 0),
    ]
    for cy, cx, a, b, deg in carpals:
        bones.append(Ellipse(cy, cx, a, b, math.radians(deg)))
    bones.append(Ellipse(1820, 1130, 330, 115, math.radians(-4)))  # Radius
    bones.append(Ellipse(1840, 880, 320, 72, math.radians(3)))  # Ulna
    return bones


HAND = _hand_layout()


def ellipse_rows(
    e: Ellipse, height: int, width: int, rng: np.random.Generator | None, roughness: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row pixel intervals ``[x0, x1)`` of an ellipse (pixel centres inside), with
    smooth random edge noise of about ``roughness`` pixels."""
    c, s = math.cos(e.theta), math.sin(e.theta)
    # In (row, col) = (y, x): u along axis = dy*c + dx*s, v across = -dy*s + dx*c.
    A = s * s / e.a**2 + c * c / e.b**2
    ylo = max(int(math.floor(e.cy - (e.a * abs(c) + e.b * abs(s)))), 0)
    yhi = min(int(math.ceil(e.cy + (e.a * abs(c) + e.b * abs(s)))) + 1, height)
    if ylo >= yhi:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    y = np.arange(ylo, yhi, dtype=np.int64)
    dy = y - e.cy
    B = 2 * dy * (c * s / e.a**2 - s * c / e.b**2)
    C = dy * dy * (c * c / e.a**2 + s * s / e.b**2) - 1
    disc = B * B - 4 * A * C
    inside = disc > 0
    root = np.sqrt(np.where(inside, disc, 0))
    xl = e.cx + (-B - root) / (2 * A)
    xr = e.cx + (-B + root) / (2 * A)
    if rng is not None and roughness > 0:
        n = len(y)
        knots = rng.normal(0, roughness, size=(2, n // 6 + 2))
        t = np.arange(n) / 6.0
        idx = np.arange(knots.shape[1])
        xl = xl + np.interp(t, idx, knots[0])
        xr = xr + np.interp(t, idx, knots[1])
    x0 = np.clip(np.ceil(xl).astype(np.int64), 0, width)
    x1 = np.clip(np.floor(xr).astype(np.int64) + 1, 0, width)
    x1 = np.where(inside, x1, x0)
    return y, x0, np.maximum(x1, x0)


def ellipse_runs(e: Ellipse, height: int, width: int, rng=None, roughness: float = 0.0) -> np.ndarray:
    """Canonical runs of one (rough-edged) ellipse."""
    y, x0, x1 = ellipse_rows(e, height, width, rng, roughness)
    return from_rows(y, x0, x1, width)


def signed_distance(e: Ellipse, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """First-order signed distance (pixels, positive inside) to the ellipse's boundary."""
    c, s = math.cos(e.theta), math.sin(e.theta)
    dy, dx = yy - e.cy, xx - e.cx
    u = dy * c + dx * s
    v = -dy * s + dx * c
    rho = np.sqrt((u / e.a) ** 2 + (v / e.b) ** 2) + 1e-9
    grad = np.sqrt((u / e.a**2) ** 2 + (v / e.b**2) ** 2) / rho + 1e-12
    return (1 - rho) / grad


@dataclass(frozen=True)
class SyntheticImage:
    """One image: ground-truth runs and each model's runs, per class."""

    name: str
    gt: list[np.ndarray]
    models: dict[str, list[np.ndarray]]
    shapes: dict[str, list[Ellipse]]  # each model's perturbed ellipse per class (for maps)


def model_quality(n_models: int, n_classes: int, seed: int) -> np.ndarray:
    """Per-(model, class) quality in [0, 1]: each model has a base level and is the
    planted best on a different subset of classes."""
    rng = np.random.default_rng([seed, 7])
    base = np.linspace(0.8, 0.55, n_models) if n_models > 1 else np.array([0.75])
    q = base[:, None] + rng.normal(0, 0.06, size=(n_models, n_classes))
    experts = rng.integers(0, n_models, size=n_classes)
    q[experts, np.arange(n_classes)] = 0.95
    return np.clip(q, 0.2, 0.97)


class Generator:
    """Deterministic synthetic set: ``Generator(...).images()`` yields ``SyntheticImage``.

    Model qualities depend on ``seed`` only, so two generators with the same seed and
    disjoint ``start`` ranges are validation/test splits of the same models."""

    def __init__(
        self,
        n_images: int = 4,
        n_models: int = 3,
        height: int = CANVAS,
        width: int = CANVAS,
        classes: Sequence[str] = DEFAULT_CLASSES,
        seed: int = 0,
        model_names: Sequence[str] | None = None,
        start: int = 0,
    ):
        self.n_images = n_images
        self.start = start  # first image index: disjoint ranges give splits of the same models
        self.height = height
        self.width = width
        self.classes = tuple(classes)
        self.seed = seed
        self.model_names = list(model_names or [f"model{i + 1}" for i in range(n_models)])
        self.quality = model_quality(len(self.model_names), len(self.classes), seed)

    def image_name(self, i: int) -> str:
        return f"image{1661000000000 + 7919 * (i + 1) + 1000003 * self.seed:013d}.png"

    def _layout(self, rng: np.random.Generator) -> list[Ellipse]:
        sy, sx = self.height / CANVAS, self.width / CANVAS
        k = rng.uniform(0.9, 1.08)
        rot = math.radians(rng.normal(0, 5))
        ty, tx = rng.normal(0, 40, 2)
        cr, sr = math.cos(rot), math.sin(rot)
        out = []
        for j in range(len(self.classes)):
            b = HAND[j % len(HAND)]
            y, x = b.cy - 1024, b.cx - 1024
            y, x = cr * y - sr * x, sr * y + cr * x
            jit = rng.normal(1, 0.04)
            out.append(
                Ellipse(
                    (1024 + k * y + ty) * sy,
                    (1024 + k * x + tx) * sx,
                    b.a * k * jit * sy,
                    b.b * k * jit * sx,
                    b.theta + rot,
                )
            )
        return out

    def _model_mask(self, e: Ellipse, q: float, rng: np.random.Generator) -> tuple[np.ndarray, Ellipse]:
        err = 1 - q
        scale = min(self.height, self.width) / CANVAS
        pe = e.moved(
            dy=rng.normal(0, (1 + 10 * err) * scale),
            dx=rng.normal(0, (1 + 10 * err) * scale),
            sa=rng.normal(1, 0.01 + 0.05 * err),
            sb=rng.normal(1, 0.01 + 0.06 * err),
            dtheta=rng.normal(0, math.radians(0.5 + 3 * err)),
        )
        runs = ellipse_runs(pe, self.height, self.width, rng, (0.8 + 3 * err) * max(scale, 0.25))
        for _ in range(rng.poisson(0.2 + 2.5 * err)):  # false-positive specks nearby
            r = rng.uniform(1.5, 9) * max(scale, 0.3)
            ang = rng.uniform(0, 2 * math.pi)
            dist = pe.a + rng.uniform(10, 150) * scale
            speck = Ellipse(pe.cy + dist * math.cos(ang), pe.cx + dist * math.sin(ang), r, r * rng.uniform(0.5, 1), ang)
            runs = union(runs, ellipse_runs(speck, self.height, self.width))
        for _ in range(rng.poisson(0.1 + 1.2 * err)):  # pinholes inside
            r = rng.uniform(0.8, 4) * max(scale, 0.3)
            hole = Ellipse(
                pe.cy + rng.uniform(-0.5, 0.5) * pe.a * math.cos(pe.theta),
                pe.cx + rng.uniform(-0.5, 0.5) * pe.a * math.sin(pe.theta),
                r,
                r,
                0,
            )
            runs = difference(runs, ellipse_runs(hole, self.height, self.width))
        return runs, pe

    def image(self, i: int) -> SyntheticImage:
        """Image ``i`` (independent of the others, so any subset can be regenerated)."""
        rng = np.random.default_rng([self.seed, i])
        layout = self._layout(rng)
        gt = [ellipse_runs(e, self.height, self.width, rng, 1.0 * max(self.height / CANVAS, 0.25)) for e in layout]
        models, shapes = {}, {}
        for m, name in enumerate(self.model_names):
            mrng = np.random.default_rng([self.seed, i, m + 1])
            pairs = [self._model_mask(e, self.quality[m, c], mrng) for c, e in enumerate(layout)]
            models[name] = [p[0] for p in pairs]
            shapes[name] = [p[1] for p in pairs]
        return SyntheticImage(self.image_name(i), gt, models, shapes)

    def images(self) -> Iterator[SyntheticImage]:
        for i in range(self.start, self.start + self.n_images):
            yield self.image(i)

    def prob_map(self, img: SyntheticImage, model: str, size: int, dtype=np.float16) -> np.ndarray:
        """(C, size, size) probabilities of ``model`` on ``img``: a sigmoid of the signed
        distance to its perturbed ellipses, sampled at the low-resolution pixel centres."""
        m = self.model_names.index(model)
        out = np.zeros((len(self.classes), size, size), np.float32)
        fy, fx = self.height / size, self.width / size
        centres_y = (np.arange(size) + 0.5) * fy - 0.5
        centres_x = (np.arange(size) + 0.5) * fx - 0.5
        for c, e in enumerate(img.shapes[model]):
            tau = (1.0 + 3.0 * (1 - self.quality[m, c])) * max(fy, 1.0) * 0.6
            pad = e.a + 12 * tau
            i0 = max(int((e.cy - pad) / fy), 0)
            i1 = min(int((e.cy + pad) / fy) + 2, size)
            j0 = max(int((e.cx - pad) / fx), 0)
            j1 = min(int((e.cx + pad) / fx) + 2, size)
            if i0 >= i1 or j0 >= j1:
                continue
            yy, xx = np.meshgrid(centres_y[i0:i1], centres_x[j0:j1], indexing="ij")
            z = np.clip(signed_distance(e, yy, xx) / tau, -30, 30)
            p = 1 / (1 + np.exp(-z))
            p[p < 1e-3] = 0  # keeps saved maps compressible
            out[c, i0:i1, j0:j1] = p
        return out.astype(dtype)


def write_set(
    gen: Generator, folder: str | os.PathLike, maps: dict[str, int] | None = None, progress=None
) -> dict[str, Path]:
    """Write ``gt.csv``, one ``<model>.csv`` per model and, for models named in ``maps``
    (model → map size), ``maps/<model>/<stem>.npz`` probability maps. Returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"gt": folder / "gt.csv", **{m: folder / f"{m}.csv" for m in gen.model_names}}
    maps = maps or {}
    for m in maps:
        (folder / "maps" / m).mkdir(parents=True, exist_ok=True)
        paths[f"maps/{m}"] = folder / "maps" / m
    writers = {k: PredictionWriter(paths[k], gen.classes) for k in ["gt", *gen.model_names]}
    with contextlib.ExitStack() as stack:  # every writer closed, or on an error removed
        for w in writers.values():
            stack.enter_context(w)
        for img in gen.images():
            writers["gt"].write_image(img.name, [format_rle(r) for r in img.gt])
            for m in gen.model_names:
                writers[m].write_image(img.name, [format_rle(r) for r in img.models[m]])
            for m, size in maps.items():
                np.savez_compressed(folder / "maps" / m / f"{Path(img.name).stem}.npz", prob=gen.prob_map(img, m, size))
            if progress is not None:
                progress.update(1)
    return paths


DEMO_MARK = ".segment-ensemble-demo"


def demo_folder(folder: Path) -> None:
    """Create the demo folder, or empty an earlier demo's folder of the files that demo wrote
    (its manifest lists them); a folder holding anything else is refused, naming the file.
    ``finish_demo_folder`` records what the new run wrote."""
    remove_owned(folder, owned_files(folder, DEMO_MARK, "demo"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{shown(folder)}: cannot create ({e.strerror or e.__class__.__name__})") from None


def finish_demo_folder(folder: Path) -> None:
    """Record every file of the demo folder as the demo's own."""
    write_manifest(folder, DEMO_MARK, "demo")


def xray(img: SyntheticImage, height: int, width: int) -> np.ndarray:
    """A grey (uint8) stand-in X-ray of ``img``: dark background, soft tissue around the
    hand, bones brighter where they overlap, light noise. For pictures only (demo, report)."""
    rng = np.random.default_rng(zlib.crc32(img.name.encode()))
    flat = np.full(height * width, 28.0, np.float32)
    for c, runs in enumerate(img.gt):
        level = 70 + 12 * (c % 4)
        for s, e in runs:
            flat[s:e] += level
    out = flat.reshape(height, width)
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    out += 18 * yy
    out += rng.normal(0, 3, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
