"""Ground truth from polygon annotations (one JSON file per image), rasterised to runs.

Rasteriser: Pillow's ``ImageDraw.polygon(fill=1, outline=1)`` on integer vertices (rounded to
the nearest pixel), which, like OpenCV's ``fillPoly``, counts boundary pixels as inside: an
axis-aligned rectangle with corners (x0, y0), (x1, y1) covers (x1-x0+1)·(y1-y0+1) pixels.
Each polygon is drawn on its own bounding box only, so a 2048² canvas is never allocated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.classes import CANVAS
from core.codec import EMPTY_RUNS, encode, format_rle
from core.errors import InputError, quoted, shown
from core.inputs import require_file
from core.predictions import Predictions, predictions_from_rles
from core.runs import normalize, union

_MAX_BOX = 1 << 26  # 64 Mpx (16× a 2048² image): bounds the drawing buffer


def polygon_runs(points, height: int, width: int) -> np.ndarray:
    """Runs of one filled polygon (boundary included), clipped to the image. Vertices must
    be finite and the bounding box at most ``_MAX_BOX`` pixels (else ``ValueError``): the
    polygon is drawn on its whole bounding box."""
    from PIL import Image, ImageDraw

    xy = np.asarray(points, dtype=np.float64)
    if xy.size % 2 or xy.ndim > 2 or (xy.ndim == 2 and xy.shape[1] != 2):
        raise ValueError("points must be [[x, y], …] or [x, y, x, y, …]")
    xy = xy.reshape(-1, 2)
    if len(xy) == 0:
        return EMPTY_RUNS
    if not np.isfinite(xy).all():
        raise ValueError("points must be finite numbers")
    span = xy.max(0) - xy.min(0) + 1
    if span[0] * span[1] > _MAX_BOX:
        raise ValueError(f"polygon's bounding box {span[0]:.0f}×{span[1]:.0f} px is larger than {_MAX_BOX:,} px")
    pts = np.rint(xy).astype(np.int64)
    x0, y0 = np.maximum(pts.min(0), 0)
    x1, y1 = np.minimum(pts.max(0), [width - 1, height - 1])
    if x0 > x1 or y0 > y1:
        return EMPTY_RUNS
    # Draw on the polygon's full bounding box (so clipping cannot change its shape).
    bx0, by0 = pts.min(0)
    bw, bh = pts.max(0) - pts.min(0) + 1
    img = Image.new("L", (int(bw), int(bh)), 0)
    ImageDraw.Draw(img).polygon([(int(x - bx0), int(y - by0)) for x, y in pts], fill=1, outline=1)
    box = np.asarray(img)[y0 - by0 : y1 - by0 + 1, x0 - bx0 : x1 - bx0 + 1]
    # A zero column on the right keeps every run inside its row; then shift rows into place.
    padded = np.zeros((box.shape[0], box.shape[1] + 1), np.uint8)
    padded[:, :-1] = box
    local = encode(padded)
    row, col = np.divmod(local[:, 0], padded.shape[1])
    start = (y0 + row) * width + x0 + col
    return normalize(np.stack([start, start + local[:, 1] - local[:, 0]], 1))


def read_gt_json(
    folder: str | Path, images: Sequence[str], classes: Sequence[str], height: int = CANVAS, width: int = CANVAS
) -> Predictions:
    """Ground truth for ``images`` from ``<folder>/**/<stem>.json`` polygon files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    files: dict[str, Path] = {}
    twice: dict[str, Path] = {}
    for p in sorted(folder.rglob("*.json")):
        if p.stem in files:
            twice[p.stem] = p
        files.setdefault(p.stem, p)
    index = {c: k for k, c in enumerate(classes)}
    rles = []
    for name in images:
        stem = Path(name).stem
        path = files.get(stem)
        if path is None:
            raise InputError(f"{folder}: image {shown(name)}: no annotation file {stem}.json")
        if stem in twice:
            raise InputError(f"{files[stem]} and {twice[stem]}: two annotation files for image {shown(name)}")
        require_file(path)
        try:
            anns = json.loads(path.read_text(encoding="utf-8-sig"))["annotations"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: not a polygon annotation file ({e.__class__.__name__}: {e})") from None
        masks = [EMPTY_RUNS] * len(classes)
        for k, ann in enumerate(anns):
            label = ann.get("label") if isinstance(ann, dict) else None
            if label not in index:
                raise InputError(f"{path}: annotation #{k + 1}: image {shown(name)}: unknown label {quoted(label)}")
            try:
                runs = polygon_runs(ann["points"], height, width)
            except (KeyError, ValueError, TypeError) as e:
                why = str(e) if isinstance(e, ValueError) else e.__class__.__name__
                raise InputError(
                    f"{path}: annotation #{k + 1}: image {shown(name)}, class {shown(label)}: bad points ({why})"
                ) from None
            masks[index[label]] = union(masks[index[label]], runs)
        rles.append([format_rle(m) for m in masks])
    return predictions_from_rles(str(folder), classes, images, rles, height, width)
