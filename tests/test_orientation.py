"""Runs that look like those of the other RLE order: ``check`` warns (one line naming the file
and the flag to pass; exit 0), ``postprocess``, ``tune`` and ``report`` say the same on stderr
before they clean or draw. The component counts of the warning against scipy's labels of the
two dense readings; files read in their own order, square images and noise say nothing."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from helpers import run_cli
from scipy import ndimage

from core.layout import Layout, Sizes
from core.predictions import read_predictions, scan_predictions
from core.sources import Frame
from postprocess.orientation import file_orientation_warning, orientation, orientation_warning

COLUMNS = ("--columns", "image=ImageId,class=ClassId,rle=EncodedPixels")
CLASSES = ("1", "2")
NON_SQUARE = [(60, 150), (150, 60), (80, 200), (200, 80)]


def _rle(mask: np.ndarray, order: str) -> str:
    """RLE of a dense mask written the plain way, 1-indexed, in ``order``."""
    flat = (mask.T if order == "column" else mask).ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2], strict=True))


def _discs(n: int, shapes, seed: int = 0, noise: bool = False) -> list[tuple[str, str, np.ndarray]]:
    """``(image, class, mask)``: a disc of radius 4…9 per image and class (or with ``noise``
    random pixels), on images of ``shapes`` in turn."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = shapes[i % len(shapes)]
        yy, xx = np.mgrid[:h, :w]
        for c in CLASSES:
            if noise:
                m = rng.random((h, w)) < 0.02
            else:
                r = rng.uniform(4, 9)
                m = np.hypot(yy - rng.uniform(r + 1, h - r - 1), xx - rng.uniform(r + 1, w - r - 1)) < r
            out.append((f"im{i}.png", c, m))
    return out


def _write(folder, masks, order: str, shapes, n: int, name: str = "m.csv"):
    path = folder / name
    path.write_text("ImageId,ClassId,EncodedPixels\n" + "".join(f"{im},{c},{_rle(m, order)}\n" for im, c, m in masks))
    sizes = folder / "sizes.csv"
    sizes.write_text("ImageId,height,width\n" + "".join(f"im{i}.png,{h},{w}\n" for i, (h, w) in enumerate(shapes[:n])))
    return path, sizes


def _components(mask: np.ndarray, written: str, read: str) -> int:
    """8-connected components of ``mask`` written in ``written`` order and read in ``read``
    order: its flat pixels on the grid of that order (scipy, dense)."""
    h, w = mask.shape
    flat = (mask.T if written == "column" else mask).ravel()
    grid = flat.reshape((w, h) if read == "column" else (h, w))
    return ndimage.label(grid, np.ones((3, 3), int))[1]


def _expected(path, masks, written: str, read: str) -> str:
    other = "row" if read == "column" else "column"
    as_read = sum(_components(m, written, read) for _, _, m in masks)
    truth = sum(_components(m, written, other) for _, _, m in masks)
    return (
        f"warning: {path}: runs look {other}-major: the first {len(masks)} non-empty masks of non-square "
        f"images fall into {as_read:,} 8-connected components as read in {read} order, {truth:,} in {other} "
        f"order; read the file with --rle-order {other}"
    )


def _said(stderr: str) -> list[str]:
    """The orientation warnings among the lines of ``stderr`` (a progress bar's carriage
    returns end a line too)."""
    return [line for line in re.split(r"[\r\n]", stderr) if line.startswith("warning:") and "runs look" in line]


@pytest.fixture(params=["column", "row"])
def turned(request, tmp_path):
    """A file written in one order, to be read in the other: (path, sizes, written, read, masks)."""
    written = request.param
    shapes = NON_SQUARE * 3
    masks = _discs(12, shapes)
    path, sizes = _write(tmp_path, masks, written, shapes, 12)
    read = "row" if written == "column" else "column"
    return path, sizes, written, read, masks


def test_check_warns_of_runs_in_the_other_order_naming_the_flag(turned):
    path, sizes, written, read, masks = turned
    shape = (*COLUMNS, "--sizes", sizes, "--classes", ",".join(CLASSES))
    r = run_cli("check", path, *shape, "--rle-order", read)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == _expected(path, masks, written, read)
    assert lines[1].startswith(f"{path}: valid: 12 images × 2 classes") and len(lines) == 2
    r = run_cli("check", path, *shape, "--rle-order", written)
    assert r.exit_code == 0 and "warning" not in r.output, r.output


def test_postprocess_tune_and_report_say_it_first_on_stderr(turned, tmp_path):
    path, sizes, written, read, masks = turned
    for name in ("gt.csv", "a.csv", "b.csv"):
        shutil.copy(path, tmp_path / name)
    shape = (*COLUMNS, "--sizes", sizes, "--classes", ",".join(CLASSES), "--rle-order", read)
    words = _expected(path, masks, written, read)
    r = run_cli("postprocess", path, "--keep-largest", 1, "-o", tmp_path / "clean.csv", *shape)
    assert r.exit_code == 0 and _said(r.stderr) == [words] and r.stderr.startswith(words), r.output
    r = run_cli(
        "tune", "--gt", tmp_path / "gt.csv", tmp_path / "a.csv", tmp_path / "b.csv", "-o", tmp_path / "t.yaml", *shape
    )
    assert r.exit_code == 0, r.output
    said = _said(r.stderr)
    assert said == [words.replace(str(path), str(tmp_path / n)) for n in ("gt.csv", "a.csv", "b.csv")]
    r = run_cli(
        "report", "--gt", tmp_path / "gt.csv", tmp_path / "a.csv", tmp_path / "b.csv", "-o", tmp_path / "rep", *shape
    )
    assert r.exit_code == 0, r.output
    said = _said(r.stderr)
    assert said == [words.replace(str(path), str(tmp_path / n)) for n in ("a.csv", "b.csv", "gt.csv")]
    for argv in (
        ["postprocess", path, "--keep-largest", 1, "-o", tmp_path / "clean.csv"],
        ["report", "--gt", tmp_path / "gt.csv", tmp_path / "a.csv", tmp_path / "b.csv", "-o", tmp_path / "rep2"],
    ):
        r = run_cli(*argv, *shape[:-1], written)
        assert r.exit_code == 0 and "warning" not in r.stderr, r.output


def test_square_images_read_the_same_in_both_orders_and_say_nothing(tmp_path):
    shapes = [(90, 90), (64, 64)]
    masks = _discs(12, shapes)
    path, sizes = _write(tmp_path, masks, "column", shapes * 6, 12)
    for read in ("row", "column"):
        r = run_cli("check", path, *COLUMNS, "--sizes", sizes, "--classes", "1,2", "--rle-order", read)
        assert r.exit_code == 0 and "warning" not in r.output, r.output
    # one size for every image (no --sizes): square, nothing to tell apart, nothing read
    assert file_orientation_warning(path, Frame(CLASSES, 64, 64, Layout.parse(COLUMNS[1]))) is None


def test_noise_and_a_few_masks_say_nothing(tmp_path):
    """Random pixels fall apart in both readings alike; fewer than 10 fragmented masks say
    nothing either."""
    shapes = NON_SQUARE * 3
    noise = _discs(12, shapes, noise=True)
    path, sizes = _write(tmp_path, noise, "row", shapes, 12)
    layout = Layout.parse(COLUMNS[1])
    found = orientation(read_predictions(path, CLASSES, 1, 1, layout, Sizes.read(sizes, "ImageId")))
    assert found.fragmented == 24 and not found.suspicious
    few = _discs(4, shapes)  # 8 masks
    path, sizes = _write(tmp_path, few, "column", shapes, 4)
    preds = read_predictions(path, CLASSES, 1, 1, layout, Sizes.read(sizes, "ImageId"))
    assert orientation(preds).fragmented == 8 and orientation_warning(preds) is None


def test_the_sample_is_the_first_masks_in_file_order_and_the_head_of_a_file_gives_it(turned):
    path, sizes, written, read, masks = turned
    layout = Layout.parse(COLUMNS[1], read)
    table = Sizes.read(sizes, "ImageId")
    preds = read_predictions(path, CLASSES, 1, 1, layout, table)
    assert orientation(preds, sample=5).masks == 5
    first = sum(_components(m, written, read) for _, _, m in masks[:5])
    assert orientation(preds, sample=5).as_read == first
    frame = Frame(CLASSES, 1, 1, layout, table)
    whole = orientation_warning(preds)
    assert file_orientation_warning(path, frame) == whole is not None
    # the head of the file: whole lines only, the cut one left out
    size = path.stat().st_size
    head, problems = scan_predictions(path, CLASSES, 1, 1, layout, table, limit=size // 2)
    assert 0 < len(head.lines) < len(preds.lines) and not problems
    for r in range(len(head.lines)):  # the whole file's first rows
        row = head.text[head.offsets[r] : head.offsets[r + 1]].tobytes().strip()
        assert row == preds.text[preds.offsets[r] : preds.offsets[r + 1]].tobytes().strip()
    assert file_orientation_warning(path, frame, limit=size // 2).startswith(f"{path}: runs look {written}-major")
