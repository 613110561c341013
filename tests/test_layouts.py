"""Other tasks' layouts: column names, files without a class column, column-major RLE, each
image at its own size, one row per object. Written by the toolbox and read back, and read
from files written by a plain reference, pixel for pixel against dense masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.codec import format_rle
from core.csv_write import write_predictions
from core.errors import InputError, UsageError
from core.layout import Layout, Sizes, mask_of, runs_of
from core.predictions import read_predictions

KAGGLE = Layout.parse("image=ImageId,class=ClassId,rle=EncodedPixels", "column")


def _reference_rle(mask: np.ndarray, order: str) -> str:
    """RLE of a dense mask written the plain way: 1-indexed starts in ``order``."""
    flat = (mask.T if order == "column" else mask).ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    starts, stops = edges[::2], edges[1::2]
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(starts, stops, strict=True))


@st.composite
def image_sets(draw):
    n_images = draw(st.integers(1, 4))
    n_classes = draw(st.integers(1, 3))
    shapes = [(draw(st.integers(1, 7)), draw(st.integers(1, 7))) for _ in range(n_images)]
    masks = [
        [
            np.array(draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), bool).reshape(h, w)
            for _ in range(n_classes)
        ]
        for h, w in shapes
    ]
    return shapes, masks, n_classes


@settings(max_examples=60, deadline=None)
@given(data=image_sets(), order=st.sampled_from(["row", "column"]), with_class=st.booleans())
def test_a_file_of_any_layout_reads_as_its_dense_masks(tmp_path_factory, data, order, with_class):
    shapes, masks, n_classes = data
    if not with_class:
        masks = [m[:1] for m in masks]
        n_classes = 1
    classes = [str(k + 1) for k in range(n_classes)]
    layout = Layout.parse(
        f"image=ImageId,{'class=ClassId,' if with_class else ''}rle=EncodedPixels",
        order,
    )
    folder = tmp_path_factory.mktemp("layout")
    header = ",".join(layout.columns)
    lines = [header]
    for i, image in enumerate(masks):
        for c, m in enumerate(image):
            row = [f"im{i}", *([classes[c]] if with_class else []), _reference_rle(m, order)]
            lines.append(",".join(row))
    path = folder / "ref.csv"
    path.write_text("\n".join(lines) + "\n")
    (folder / "sizes.csv").write_text(
        "ImageId,height,width\n" + "".join(f"im{i},{h},{w}\n" for i, (h, w) in enumerate(shapes))
    )
    sizes = Sizes.read(folder / "sizes.csv", "ImageId")
    preds = read_predictions(path, classes, 1, 1, layout, sizes)
    for i, image in enumerate(masks):
        assert preds.size(i) == shapes[i]
        for c, m in enumerate(image):
            np.testing.assert_array_equal(preds.mask(f"im{i}", classes[c]), m)
    # written back by the toolbox in the same layout: the same bytes as the plain writer
    out = folder / "out.csv"
    write_predictions(
        out,
        classes,
        [(f"im{i}", [format_rle(runs_of(m, order)) for m in image]) for i, image in enumerate(masks)],
        layout,
    )
    assert out.read_text() == path.read_text()


def test_runs_of_and_mask_of_are_inverse_in_both_orders():
    rng = np.random.default_rng(1)
    for h, w in [(1, 9), (9, 1), (5, 7)]:
        m = rng.random((h, w)) > 0.5
        for order in ("row", "column"):
            np.testing.assert_array_equal(mask_of(runs_of(m, order), h, w, order), m)


def test_a_run_past_its_own_image_names_the_image_and_size(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ImageId,ClassId,EncodedPixels\nsmall,1,1 4\nsmall,2,10 4\nbig,1,1 12\nbig,2,\n")
    (tmp_path / "sizes.csv").write_text("ImageId,height,width\nsmall,3,4\nbig,4,5\n")
    sizes = Sizes.read(tmp_path / "sizes.csv", "ImageId")
    with pytest.raises(
        InputError,
        match=r"m.csv:3: image small, class 2: invalid RLE: run extends past the last pixel of its 3×4 image",
    ):
        read_predictions(path, ["1", "2"], 1, 1, KAGGLE, sizes)


def test_an_image_without_a_size_is_named(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ImageId,ClassId,EncodedPixels\na,1,1 1\nb,1,1 1\n")
    (tmp_path / "sizes.csv").write_text("ImageId,height,width\na,2,2\n")
    with pytest.raises(InputError, match=r"m.csv:3: image b, class 1: no size for this image in .*sizes.csv"):
        read_predictions(path, ["1"], 1, 1, KAGGLE, Sizes.read(tmp_path / "sizes.csv", "ImageId"))


def test_columns_that_do_not_match_name_the_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ImageId,EncodedPixels\na,1 1\n")
    with pytest.raises(InputError, match=r"m.csv:1: missing column\(s\) image_name, class, rle .*--columns"):
        read_predictions(path, ["1"], 2, 2)
    preds = read_predictions(path, ["1"], 2, 2, Layout.parse("image=ImageId,rle=EncodedPixels"))
    assert preds.rle("a", "1") == "1 1"
    with pytest.raises(UsageError, match="a file without a class column holds one class"):
        read_predictions(path, ["1", "2"], 2, 2, Layout.parse("image=ImageId,rle=EncodedPixels"))


def test_one_row_per_object_is_an_error_unless_read_as_their_union(tmp_path):
    path = tmp_path / "ships.csv"
    path.write_text("ImageId,EncodedPixels\nx.jpg,1 2\nx.jpg,7 2\nx.jpg,2 2\ny.jpg,\n")
    layout = Layout.parse("image=ImageId,rle=EncodedPixels", "column")
    with pytest.raises(InputError, match=r"ships.csv:3: image x.jpg, class ship: duplicate row .*--instances union"):
        read_predictions(path, ["ship"], 3, 3, layout)
    preds = read_predictions(path, ["ship"], 3, 3, layout, instances="union")
    assert preds.rle("x.jpg", "ship") == "1 3 7 2" and preds.rle("y.jpg", "ship") == ""
    assert preds.areas[preds.row(0, 0)] == 5


def test_sizes_from_a_folder_of_images_read_their_headers(tmp_path):
    from PIL import Image

    Image.new("L", (7, 3)).save(tmp_path / "a.png")
    Image.new("RGB", (2, 5)).save(tmp_path / "b.jpg")
    sizes = Sizes.read(tmp_path)
    assert sizes.of("a.png") == (3, 7) and sizes.of("b") == (5, 2) and sizes.of("c.png") is None
