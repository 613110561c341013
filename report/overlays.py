"""Image-page pictures (Pillow): the X-ray, and per layer and class a transparent PNG of the
class's box that the browser stacks over it.

One image at a time: every mask of a class (ground truth and each source) is decoded with
the project's codec into a reused full-size buffer, cropped to the box around all of them,
and written as a small palette PNG at full resolution (the overview shows them scaled down,
the wrist zoom at their own resolution). Colours:

- a class layer (ground truth, a source): the class colour;
- the errors layer of the focus source: true positive in the class colour (translucent),
  false positive ``FP_COLOUR``, false negative ``FN_COLOUR``;
- the vote count: how many sources mark the pixel, ``vote_colours(n)`` (translucent where
  every source does).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FP_COLOUR = (255, 0, 255)  # magenta: marked by the focus source, not in the ground truth
FN_COLOUR = (0, 255, 255)  # cyan: in the ground truth, missed by the focus source
TP_ALPHA = 120
UNANIMOUS_ALPHA = 90  # pixels every source marks: translucent, so that disagreement stands out
OVERVIEW = 1024  # width of the X-ray shown on an image page
GREY = 96


def class_colours(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct colours, one per class (golden-angle hues, softer than the error
    colours, so that no class looks like a false positive or negative)."""
    out = []
    for k in range(n):
        h = (k * 0.381966 + 0.02) % 1.0
        s = 0.55 + 0.2 * (k % 2)
        v = 0.95 - 0.12 * ((k // 2) % 2)
        r, g, b = colorsys.hsv_to_rgb(h, s, v)
        out.append((round(r * 255), round(g * 255), round(b * 255)))
    return out


def vote_colours(n: int) -> list[tuple[int, int, int]]:
    """Colour of 1 … n votes (matplotlib's 'plasma', dark to bright)."""
    from matplotlib import colormaps

    cmap = colormaps["plasma"]
    return [tuple(round(255 * x) for x in cmap(0.15 + 0.8 * (k / max(n - 1, 1)))[:3]) for k in range(n)]


def hex_colour(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{int(x):02x}" for x in rgb)


def runs_box(runs: np.ndarray, width: int) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` half-open box of a mask given as runs (None when empty)."""
    if not len(runs):
        return None
    first = runs[:, 0] // width
    last = (runs[:, 1] - 1) // width
    y0, y1 = int(first.min()), int(last.max()) + 1
    if (first != last).any():  # a run wraps to the next row: it covers whole rows' ends
        return 0, y0, width, y1
    return int((runs[:, 0] % width).min()), y0, int(((runs[:, 1] - 1) % width).max()) + 1, y1


def union_box(boxes):
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@dataclass
class Crop:
    """One class's box on a page and the layer PNGs written for it (layer → file name)."""

    cls: int
    box: tuple[int, int, int, int]
    files: dict[str, str] = field(default_factory=dict)


def _palette_png(index: np.ndarray, colours: Sequence[tuple[int, int, int]], alphas: Sequence[int], path: Path):
    """Write ``index`` (0 transparent, k ≥ 1 → colours[k-1]) as a palette PNG."""
    from PIL import Image

    img = Image.fromarray(index, "P")
    pal = [0, 0, 0]
    for c in colours:
        pal += list(c)
    img.putpalette(pal + [0] * (768 - len(pal)))
    img.info["transparency"] = bytes([0, *alphas])
    img.save(path, optimize=False, compress_level=3, transparency=bytes([0, *alphas]))


def render_layers(
    folder: Path,
    prefix: str,
    gt_runs: list[np.ndarray] | None,
    src_runs: list[list[np.ndarray]],
    focus: int,
    height: int,
    width: int,
    colours,
    votes,
    order: str = "row",
) -> list[Crop]:
    """Write every layer PNG of one image into ``folder`` (files named ``prefix…``).

    ``gt_runs[c]`` and ``src_runs[s][c]`` are runs per class, over the ``height`` × ``width``
    image in RLE ``order`` (``column``: the runs of the transposed image, decoded on that grid
    and transposed back). Layers: ``gt``, ``s<k>`` per source, ``votes`` and, with ground
    truth, ``errors`` (of source ``focus``). A layer with no pixel in a class writes no file."""
    from core._rle_kernels import decode_kernel

    turned = order == "column"
    grid_rows, grid_cols = (width, height) if turned else (height, width)  # the grid the runs cover
    n_src = len(src_runs)
    n_cls = len(src_runs[0]) if src_runs else 0
    bufs = [np.zeros((grid_rows, grid_cols), np.uint8) for _ in range(n_src + (gt_runs is not None))]
    crops = []
    for c in range(n_cls):
        masks = [r[c] for r in src_runs] + ([gt_runs[c]] if gt_runs is not None else [])
        box = union_box(runs_box(r, grid_cols) for r in masks)
        if box is None:
            continue
        x0, y0, x1, y1 = box  # on the grid
        crop = Crop(c, (y0, x0, y1, x1) if turned else box)  # on the image
        cut = []
        for buf, runs in zip(bufs, masks, strict=True):
            if len(runs):
                # The buffers are zero outside the last box used (cleared below), so only the
                # box is ever touched: no 2048² clearing per mask.
                decode_kernel(np.ascontiguousarray(runs, np.int64), buf.reshape(-1))
                piece = buf[y0:y1, x0:x1].astype(bool)
                cut.append(np.ascontiguousarray(piece.T) if turned else piece)
                buf[y0:y1, x0:x1] = 0
            else:
                cut.append(None)

        def put(layer, index, cols, alphas, c=c, crop=crop):
            name = f"{prefix}{layer}-{c}.png"
            _palette_png(index, cols, alphas, folder / name)
            crop.files[layer] = name

        shape = (x1 - x0, y1 - y0) if turned else (y1 - y0, x1 - x0)
        for s in range(n_src):
            if cut[s] is not None:
                put(f"s{s}", cut[s].view(np.uint8), [colours[c]], [255])
        count = np.zeros(shape, np.uint8)
        for s in range(n_src):
            if cut[s] is not None:
                count += cut[s]
        if count.any():
            put("votes", count, votes, [255] * (len(votes) - 1) + [UNANIMOUS_ALPHA])
        if gt_runs is not None:
            g = cut[-1] if cut[-1] is not None else np.zeros(shape, bool)
            p = cut[focus] if cut[focus] is not None else np.zeros(shape, bool)
            if cut[-1] is not None:
                put("gt", g.view(np.uint8), [colours[c]], [255])
            err = np.zeros(shape, np.uint8)
            err[g & p] = 1
            err[p & ~g] = 2
            err[g & ~p] = 3
            if err.any():
                put("errors", err, [colours[c], FP_COLOUR, FN_COLOUR], [TP_ALPHA, 255, 255])
        crops.append(crop)
    return crops


def load_xray(path: Path | None, height: int, width: int):
    """The X-ray as an 8-bit grey Pillow image (grey canvas when ``path`` is None). 16-bit
    images are scaled by their own range; a size other than the masks' is an error."""
    from PIL import Image

    from core.errors import InputError

    if path is None:
        return Image.new("L", (width, height), GREY)
    try:
        with Image.open(path) as im:
            im.load()
            if im.size != (width, height):
                raise InputError(f"{path}: image is {im.size[0]}×{im.size[1]}, the masks {width}×{height}")
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                a = np.asarray(im, np.float64)
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else a * 0
                return Image.fromarray(np.rint(a).astype(np.uint8), "L")
            return im.convert("L")
    except OSError as e:
        raise InputError(f"{path}: cannot read image ({e.__class__.__name__}: {e})") from None


def write_bases(xray, folder: Path, prefix: str, wrist: tuple[int, int, int, int] | None) -> dict[str, str]:
    """``base``: the X-ray at ``OVERVIEW`` px wide; ``wrist``: the wrist box at full size."""
    from PIL import Image

    w, h = xray.size
    out = {}
    small = xray if w <= OVERVIEW else xray.resize((OVERVIEW, round(h * OVERVIEW / w)), Image.Resampling.BILINEAR)
    small.save(folder / f"{prefix}base.png", compress_level=3)
    out["base"] = f"{prefix}base.png"
    if wrist is not None:
        xray.crop(wrist).save(folder / f"{prefix}wrist.png", compress_level=3)
        out["wrist"] = f"{prefix}wrist.png"
    return out


def thumbnail(xray, crops: list[Crop], folder: Path, name: str, layer: str, size: int = 200) -> str:
    """A small composite: the X-ray with ``layer``'s class crops pasted over it."""
    from PIL import Image

    w, h = xray.size
    scale = size / w
    thumb = xray.resize((size, round(h * scale)), Image.Resampling.BILINEAR).convert("RGBA")
    for crop in crops:
        if layer not in crop.files:
            continue
        x0, y0, x1, y1 = crop.box
        tw, th = max(round((x1 - x0) * scale), 1), max(round((y1 - y0) * scale), 1)
        with Image.open(folder / crop.files[layer]) as im:
            piece = im.convert("RGBA").resize((tw, th), Image.Resampling.BOX)
        thumb.alpha_composite(piece, (round(x0 * scale), round(y0 * scale)))
    thumb.convert("RGB").save(folder / name, compress_level=3)
    return name
