"""One row per object: ``--write-instances`` writes each mask as one row per connected component
(8-connected), an empty mask as one row with an empty RLE, as Airbus- or SIIM-style files hold
them. Checked against ``scipy.ndimage.label`` on dense masks (both RLE orders, images of
mixed sizes), and by reading the file back with ``--instances union``: the masks again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from strategies import masks

from core.layout import Layout, Sizes
from core.predictions import read_predictions
from postprocess.instances import instance_split

EIGHT = np.ones((3, 3), bool)
COLS = ("ImageId", "ClassId", "EncodedPixels")
KAGGLE = ["--columns", "image=ImageId,class=ClassId,rle=EncodedPixels"]


def rle(mask: np.ndarray, order: str) -> str:
    """RLE of a dense mask written the plain way: 1-indexed starts in ``order``."""
    flat = (mask.T if order == "column" else mask).ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2], strict=True))


def scipy_components(mask: np.ndarray, order: str) -> list[np.ndarray]:
    """The 8-connected components of ``mask``, in the RLE order of their first pixel."""
    grid = mask.T if order == "column" else mask
    labels, n = ndimage.label(grid, EIGHT)
    parts = [labels == k for k in range(1, n + 1)]  # numbered in raster order of the grid
    return [p.T if order == "column" else p for p in parts]


@settings(max_examples=200, deadline=None)
@given(mask=masks(max_side=30, dtypes=[np.bool_]), order=st.sampled_from(["row", "column"]))
def test_a_mask_splits_into_its_scipy_components_in_rle_order(mask, order):
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    got = instance_split(lambda image: (h, w), order)("x.png", rle(mask, order))
    want = [rle(p, order) for p in scipy_components(mask, order)] or [""]
    assert got == want


# ------------------------------------------------------------------ the commands
SIZES = {"a.jpg": (6, 9), "b.jpg": (1, 7), "c.jpg": (8, 1), "d.jpg": (5, 5)}
CLASSES = ["1", "2"]


@pytest.fixture(scope="module", params=["row", "column"])
def sources(request, tmp_path_factory):
    order = request.param
    folder = tmp_path_factory.mktemp(f"inst_{order}")
    (folder / "sizes.csv").write_text(
        "ImageId,height,width\n" + "".join(f"{k},{h},{w}\n" for k, (h, w) in SIZES.items())
    )
    rng = np.random.default_rng(5)
    for m in range(3):
        lines = ["ImageId,ClassId,EncodedPixels"]
        for name, (h, w) in SIZES.items():
            for c in CLASSES:
                mask = rng.random((h, w)) < (0.0 if (name, c) == ("d.jpg", "2") else 0.35)
                lines.append(f"{name},{c},{rle(mask, order)}")
        (folder / f"m{m}.csv").write_text("\n".join(lines) + "\n")
    flags = [*KAGGLE, "--rle-order", order, "--sizes", folder / "sizes.csv", "--classes", ",".join(CLASSES)]
    return folder, order, flags


@pytest.mark.parametrize("command", ["hard", "weighted", "select", "merge", "postprocess"])
def test_each_command_writes_one_row_per_component_and_union_reads_the_masks_back(sources, tmp_path, command):
    folder, order, flags = sources
    files = [folder / f"m{m}.csv" for m in range(3)]
    setting = tmp_path / "s.yaml"
    setting.write_text(
        yaml.safe_dump({"sources": {f"m{m}": str(f) for m, f in enumerate(files)}, "select": {"default": "m1"}})
    )
    args = {
        "hard": [*files],
        "weighted": [*files, "--weights", "1,2,1"],
        "select": ["--setting", setting],
        "merge": [files[0], files[1], "--prefer", "last"],
        "postprocess": [files[2], "--fill-holes"],
    }[command]
    plain = run_cli(command, *args, "-o", tmp_path / "masks.csv", *flags, "-q")
    assert plain.exit_code == 0, plain.output
    split = run_cli(command, *args, "-o", tmp_path / "objects.csv", *flags, "--write-instances", "-q")
    assert split.exit_code == 0, split.output

    layout = Layout.parse("image=ImageId,class=ClassId,rle=EncodedPixels", order)
    sizes = Sizes.read(folder / "sizes.csv", "ImageId")
    want = read_predictions(tmp_path / "masks.csv", CLASSES, 1, 1, layout, sizes)
    back = read_predictions(tmp_path / "objects.csv", CLASSES, 1, 1, layout, sizes, instances="union")
    rows = pd.read_csv(tmp_path / "objects.csv", dtype=str, keep_default_na=False)
    assert back.images == want.images
    for name in want.images:
        for c in CLASSES:
            mask = want.mask(name, c)
            np.testing.assert_array_equal(back.mask(name, c), mask)
            mine = rows[(rows.ImageId == name) & (rows.ClassId == c)].EncodedPixels.tolist()
            assert mine == ([rle(p, order) for p in scipy_components(mask, order)] or [""])
    assert list(rows.columns) == list(COLS)
    assert rows.ImageId.tolist() == sorted(rows.ImageId.tolist())  # image by image, in the input's order


def test_the_settings_key_and_the_library_parameter_write_instances(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("image_name,class,rle\na.png,k,1 1 3 1 9 1\nb.png,k,\n")
    setting = tmp_path / "merge.yaml"
    setting.write_text(yaml.safe_dump({"write_instances": True, "classes": ["k"], "height": 3, "width": 3}))
    r = run_cli("merge", one, "-o", tmp_path / "out.csv", "--setting", setting, "-q")
    assert r.exit_code == 0, r.output
    assert (
        tmp_path / "out.csv"
    ).read_text() == "image_name,class,rle\na.png,k,1 1\na.png,k,3 1\na.png,k,9 1\nb.png,k,\n"
    from fusion import merge

    with pytest.raises(ValueError, match="write_instances: one row per object is written to a CSV; give a CSV output"):
        merge([str(one)], classes=["k"], height=3, width=3, write_instances=True)
