"""PNG label maps as outputs: ``-o DIR/`` writes ``<stem>.png`` label maps (exclusive classes)
or ``<stem>/<class>.png`` binary masks (overlapping classes), each image at its own size, from
runs in either RLE order. Checked against dense numpy masks written independently here: the
PNGs as Pillow reads them, the folder read back as predictions, and each command's PNG output
against its own CSV output. Then the folder rules: only what the toolbox wrote is replaced, a
folder holding anything else is refused naming the file, a failed run leaves it as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import DataError, UsageError
from core.label_maps import label_predictions
from core.label_write import MARK, LabelMapWriter, check_label_output
from core.predictions import writer_for

KAGGLE = ["--columns", "image=ImageId,class=ClassId,rle=EncodedPixels"]


# ------------------------------------------------------------------ dense references
def rle(mask: np.ndarray, order: str) -> str:
    """RLE of a dense mask written the plain way: 1-indexed starts in ``order``."""
    flat = (mask.T if order == "column" else mask).ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    return " ".join(f"{a + 1} {b - a}" for a, b in zip(edges[::2], edges[1::2], strict=True))


def dense(text: str, h: int, w: int, order: str) -> np.ndarray:
    """The dense mask of RLE ``text`` of an ``h`` × ``w`` image in ``order``."""
    flat = np.zeros(h * w, bool)
    values = [int(v) for v in text.split()]
    for start, length in zip(values[::2], values[1::2], strict=True):
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape(w, h).T if order == "column" else flat.reshape(h, w)


def csv_masks(path, classes, order: str, sizes: dict, columns=("image_name", "class", "rle")):
    """``{(image, class): dense mask}`` of a CSV, decoded here (pandas, no toolbox code)."""
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    image, cls, text = columns
    return {(r[image], r[cls]): dense(r[text], *sizes[r[image]], order) for _, r in df.iterrows()}


def png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@st.composite
def image_sets(draw, exclusive: bool):
    """Images of random sizes (1×N and N×1 included), each with ``n`` class masks: exclusive
    (one random label map) or overlapping (independent masks)."""
    n_classes = draw(st.integers(1, 4))
    images = {}
    for k in range(draw(st.integers(1, 4))):
        h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        if exclusive:
            labels = rng.integers(0, n_classes + 1, (h, w))
            masks = [labels == c + 1 for c in range(n_classes)]
        else:
            masks = [rng.random((h, w)) < draw(st.sampled_from([0.0, 0.3, 0.7, 1.0])) for _ in range(n_classes)]
        images[f"im{k}.{draw(st.sampled_from(['jpg', 'png', 'tif']))}"] = masks
    return [f"k{c}" for c in range(n_classes)], images


def write_set(folder, classes, images, order, exclusive):
    """Write ``images`` through ``writer_for`` (the jobs' writer) into ``folder``."""
    sizes = {name: masks[0].shape for name, masks in images.items()}
    writer = writer_for(
        f"{folder}/", classes, 1, 1, layout=_layout(order), size_of=sizes.__getitem__, exclusive=exclusive
    )
    assert isinstance(writer, LabelMapWriter)
    with writer as w:
        for name, masks in images.items():
            w.write_image(name, [rle(m, order) for m in masks])
    return writer


def _layout(order):
    from core.layout import Layout

    return Layout(order=order)


# ------------------------------------------------------------------ library round trips
@settings(max_examples=40, deadline=None)
@given(data=image_sets(exclusive=True), order=st.sampled_from(["row", "column"]))
def test_label_maps_hold_one_plus_the_class_index_and_read_back_as_the_masks(tmp_path_factory, data, order):
    classes, images = data
    folder = tmp_path_factory.mktemp("labels")
    writer = write_set(folder, classes, images, order, exclusive=True)
    assert writer.rows_written == len(images) * len(classes) and writer.files_written == len(images)
    for name, masks in images.items():
        expected = np.zeros(masks[0].shape, np.uint8)
        for c, m in enumerate(masks):
            expected[m] = c + 1
        got = png(folder / f"{name.rsplit('.', 1)[0]}.png")
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)
    back = label_predictions(folder, classes, order)
    assert back.images == sorted(f"{n.rsplit('.', 1)[0]}.png" for n in images)
    for name, masks in images.items():
        for c, m in enumerate(masks):
            np.testing.assert_array_equal(back.mask(f"{name.rsplit('.', 1)[0]}.png", c), m)


@settings(max_examples=40, deadline=None)
@given(data=image_sets(exclusive=False), order=st.sampled_from(["row", "column"]))
def test_per_class_pngs_hold_each_mask_and_read_back_as_the_masks(tmp_path_factory, data, order):
    classes, images = data
    folder = tmp_path_factory.mktemp("per_class")
    write_set(folder, classes, images, order, exclusive=False)
    for name, masks in images.items():
        stem = name.rsplit(".", 1)[0]
        assert sorted(p.name for p in (folder / stem).iterdir()) == sorted(f"{c}.png" for c in classes)
        for c, m in zip(classes, masks, strict=True):
            np.testing.assert_array_equal(png(folder / stem / f"{c}.png"), m.astype(np.uint8) * 255)
    back = label_predictions(folder, classes, order)
    for name, masks in images.items():
        i = back.image_index(f"{name.rsplit('.', 1)[0]}.png")
        assert back.size(i) == masks[0].shape
        for c, m in enumerate(masks):
            np.testing.assert_array_equal(back.mask(i, c), m)


def test_more_than_255_classes_make_a_16_bit_label_map(tmp_path):
    classes = [f"c{k}" for k in range(300)]
    masks = [np.zeros((2, 3), bool) for _ in classes]
    masks[299][1, 2] = masks[0][0, 0] = masks[255][0, 1] = True
    write_set(tmp_path / "out", classes, {"x.png": masks}, "row", exclusive=True)
    got = png(tmp_path / "out" / "x.png")
    assert got.dtype == np.uint16 and got.tolist() == [[1, 256, 0], [0, 0, 300]]
    back = label_predictions(tmp_path / "out", classes)
    assert back.rle("x.png", "c299") == "6 1"


def test_overlapping_classes_cannot_be_one_label_map_and_nothing_is_written(tmp_path):
    a = np.array([[1, 1, 0]], bool)
    b = np.array([[0, 1, 1]], bool)
    with pytest.raises(DataError) as e:
        write_set(tmp_path / "out", ["bone", "tendon"], {"ok.png": [a, ~a], "x.png": [a, b]}, "row", exclusive=True)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("image x.png: classes bone and tendon overlap on 1 pixel: a label map holds one class")
    assert "per-class PNGs" in message
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_images_of_one_stem_and_names_that_cannot_be_files_are_refused(tmp_path):
    m = [np.ones((1, 1), bool)]
    with pytest.raises(DataError, match=r"images a.png and a.jpg would both be written as a.png"):
        write_set(tmp_path / "out", ["k"], {"a.png": m, "a.jpg": m}, "row", exclusive=True)
    with pytest.raises(UsageError, match=r"class 'a/b' cannot name a per-class PNG"):
        write_set(tmp_path / "out", ["a/b"], {"a.png": m}, "row", exclusive=False)
    write_set(tmp_path / "out", ["a/b"], {"a.png": m}, "row", exclusive=True)  # a label map names no class
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]


# ------------------------------------------------------------------ the folder rules
def test_a_rerun_replaces_only_what_the_toolbox_wrote(tmp_path):
    out = tmp_path / "out"
    one = {"a.png": [np.eye(3, dtype=bool)], "b.png": [np.ones((2, 2), bool)]}
    write_set(out, ["k"], one, "row", exclusive=True)
    manifest = json.loads((out / MARK).read_text())
    assert sorted(manifest["files"]) == ["a.png", "b.png"]
    write_set(out, ["k"], {"c.png": [np.zeros((1, 4), bool)]}, "row", exclusive=False)  # another set, per class
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [MARK, "c", "c/k.png"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"out: folder holds notes.txt, which `hard` did not write"):
        check_label_output(out, [], "hard")
    (out / "notes.txt").unlink()
    (out / "c" / "k.png").write_bytes(b"changed")
    with pytest.raises(UsageError, match=r"c/k.png was changed after `hard` wrote it"):
        check_label_output(out, [], "hard")


def test_a_folder_that_is_an_input_or_holds_one_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(UsageError, match=r"output would be written inside an input"):
        check_label_output(tmp_path / "in", [("an input", tmp_path / "in")], "hard")
    with pytest.raises(UsageError, match=r"output would be written inside an input"):
        check_label_output(tmp_path / "in" / "sub", [("an input", tmp_path / "in")], "hard")
    with pytest.raises(UsageError, match=r"output folder holds an input"):
        check_label_output(tmp_path, [("an input", tmp_path / "x.csv")], "hard")
    with pytest.raises(UsageError, match=r"exists and is not a folder"):
        check_label_output(tmp_path / "x.csv", [], "hard")
    with pytest.raises(UsageError, match=r"folder .*nowhere does not exist"):
        check_label_output(tmp_path / "nowhere" / "out", [], "hard")


# ------------------------------------------------------------------ the commands
SIZES = {"a.jpg": (5, 7), "b.jpg": (1, 6), "c.jpg": (6, 1), "d.jpg": (4, 4)}
CLASSES = ["1", "2", "3"]


@pytest.fixture(scope="module", params=["row", "column"])
def kaggle_set(request, tmp_path_factory):
    """Three sources of exclusive classes and three of overlapping ones, Kaggle columns, in
    one RLE order, images of mixed sizes; and the sizes file."""
    order = request.param
    folder = tmp_path_factory.mktemp(f"set_{order}")
    rng = np.random.default_rng(7)
    (folder / "sizes.csv").write_text(
        "ImageId,height,width\n" + "".join(f"{k},{h},{w}\n" for k, (h, w) in SIZES.items())
    )
    for kind in ("excl", "over"):
        for m in range(3):
            lines = ["ImageId,ClassId,EncodedPixels"]
            for name, (h, w) in SIZES.items():
                labels = rng.integers(0, 4, (h, w))
                for c in CLASSES:
                    mask = labels == int(c) if kind == "excl" else rng.random((h, w)) < 0.4
                    lines.append(f"{name},{c},{rle(mask, order)}")
            (folder / f"{kind}{m}.csv").write_text("\n".join(lines) + "\n")
    flags = [*KAGGLE, "--rle-order", order, "--sizes", folder / "sizes.csv", "--classes", ",".join(CLASSES)]
    return folder, order, flags


def _same_as_csv(folder, order, out_dir, out_csv, exclusive):
    """The PNGs of ``out_dir`` hold exactly the masks of ``out_csv``, decoded here."""
    want = csv_masks(out_csv, CLASSES, order, SIZES, ("ImageId", "ClassId", "EncodedPixels"))
    for name, (h, w) in SIZES.items():
        stem = name.rsplit(".", 1)[0]
        if exclusive:
            got = png(out_dir / f"{stem}.png")
            assert got.shape == (h, w)
            for c in CLASSES:
                np.testing.assert_array_equal(got == int(c), want[name, c], err_msg=f"{name} {c}")
        else:
            for c in CLASSES:
                got = png(out_dir / stem / f"{c}.png")
                np.testing.assert_array_equal(got != 0, want[name, c], err_msg=f"{name} {c}")


@pytest.mark.parametrize(
    "command,exclusive",
    [
        ("hard", True),
        ("hard", False),
        ("weighted", True),
        ("merge", False),
        ("merge", True),
        ("postprocess", False),
        ("postprocess", True),
    ],
)
def test_a_command_writes_as_pngs_what_it_writes_as_a_csv(kaggle_set, tmp_path, command, exclusive):
    folder, order, flags = kaggle_set
    kind = "excl" if exclusive else "over"
    sources = [folder / f"{kind}{m}.csv" for m in range(3)]
    args = {
        "hard": [*sources],
        "weighted": [*sources, "--weights", "1,2,0.5"],
        "merge": [sources[0]],
        "postprocess": [sources[0], "--min-size", "2", "--fill-holes"],
    }[command]
    extra = ["--exclusive"] if exclusive else []
    csv_run = run_cli(command, *args, "-o", tmp_path / "out.csv", *flags, *extra, "-q")
    assert csv_run.exit_code == 0, csv_run.output
    png_run = run_cli(command, *args, "-o", f"{tmp_path / 'out'}/", *flags, *extra, "-q")
    assert png_run.exit_code == 0, png_run.output
    _same_as_csv(folder, order, tmp_path / "out", tmp_path / "out.csv", exclusive)
    # the folder reads back as the same predictions (image names: <stem>.png)
    back = run_cli("merge", tmp_path / "out", "-o", tmp_path / "back.csv", *flags, *extra, "-q")
    assert back.exit_code == 0, back.output
    png_sizes = {f"{k.rsplit('.', 1)[0]}.png": s for k, s in SIZES.items()}
    got = csv_masks(tmp_path / "back.csv", CLASSES, order, png_sizes, KAGGLE_COLS)
    want = csv_masks(tmp_path / "out.csv", CLASSES, order, SIZES, KAGGLE_COLS)
    assert {(n.replace(".jpg", ".png"), c): m.tolist() for (n, c), m in want.items()} == {
        k: m.tolist() for k, m in got.items()
    }


KAGGLE_COLS = ("ImageId", "ClassId", "EncodedPixels")


def test_select_writes_pngs_and_refuses_a_setting_file_inside_the_folder(kaggle_set, tmp_path):
    import yaml

    folder, order, flags = kaggle_set
    setting = tmp_path / "s.yaml"
    sources = {f"m{m}": str(folder / f"excl{m}.csv") for m in range(3)}
    setting.write_text(yaml.safe_dump({"sources": sources, "select": {"default": "m0", "2": "m1"}}))
    for out in (tmp_path / "sel.csv", f"{tmp_path / 'sel'}/"):
        r = run_cli("select", "--setting", setting, "-o", out, *flags, "--exclusive", "--overlaps", "first", "-q")
        assert r.exit_code == 0, r.output
    _same_as_csv(folder, order, tmp_path / "sel", tmp_path / "sel.csv", exclusive=True)
    inside = tmp_path / "sel" / "r.yaml"
    out = f"{tmp_path / 'sel'}/"
    r = run_cli("select", "--setting", setting, "-o", out, "--write-setting", inside, *flags, "--exclusive")
    assert r.exit_code == 2 and "output folder holds the --write-setting file" in r.output
    assert not inside.exists()


def test_the_cli_refuses_a_folder_of_the_users_and_leaves_it_alone(kaggle_set, tmp_path):
    folder, _, flags = kaggle_set
    out = tmp_path / "labels"
    out.mkdir()
    (out / "keep.png").write_bytes(b"user's")
    sources = [folder / f"excl{m}.csv" for m in range(3)]
    r = run_cli("hard", *sources, "-o", out, *flags, "--exclusive", "-q")
    assert r.exit_code == 2
    [line] = r.output.strip().splitlines()
    assert line.startswith("error: ") and line.endswith(
        "labels: folder holds keep.png, which `hard` did not write; give a new or empty folder"
    )
    assert [p.name for p in out.iterdir()] == ["keep.png"]


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("image_name,class,rle\na.png,k,1 1\n")
    r = run_cli("merge", one, "-o", f"{tmp_path / 'out'}/", "--classes", "k", "--height", 2, "--width", 2, "-q")
    assert r.exit_code == 0, r.output
    before = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*.*")}
    two = tmp_path / "two.csv"
    two.write_text("image_name,class,rle\nb.png,k,2 1\nb.jpg,k,\n")
    r = run_cli("merge", two, "-o", tmp_path / "out", "--classes", "k", "--height", 2, "--width", 2, "-q")
    assert r.exit_code == 1 and "images b.png and b.jpg would both be written as b.png" in r.output
    after = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*.*")}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv", "out", "two.csv"]  # no temporary left


def test_one_row_per_object_and_a_cluster_run_take_a_csv(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("image_name,class,rle\na.png,k,1 1\n")
    shape = ["--classes", "k", "--height", 2, "--width", 2]
    r = run_cli("merge", one, "-o", f"{tmp_path / 'out'}/", "--write-instances", *shape)
    assert r.exit_code == 2 and "--write-instances: one row per object is written to a CSV" in r.output
    from cluster import run
    from postprocess import clean_predictions

    kw = dict(rules={"min_size": 2}, scheduler="local:1", classes=["k"], height=2, width=2)
    with pytest.raises(UsageError, match="scheduler: a cluster run writes a CSV, not the folder of label maps"):
        run(clean_predictions, str(one), output=f"{tmp_path}/out/", **kw)
    with pytest.raises(UsageError, match="scheduler: a cluster run writes one row per mask; write_instances runs"):
        run(clean_predictions, str(one), output=f"{tmp_path}/out.csv", write_instances=True, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv"]


def test_hard_reads_png_folders_and_writes_label_maps(tmp_path):
    """The issue's own example: ``hard pngs/m0 … -o labels/ --exclusive --classes 1,2,3,4``."""
    rng = np.random.default_rng(3)
    shapes = {"x.png": (3, 5), "y.png": (4, 2)}
    labels = {}
    for m in range(3):
        (tmp_path / f"m{m}").mkdir()
        for name, shape in shapes.items():
            labels[m, name] = rng.integers(0, 5, shape).astype(np.uint8)
            Image.fromarray(labels[m, name]).save(tmp_path / f"m{m}" / name)
    r = run_cli("hard", *(tmp_path / f"m{m}" for m in range(3)), "-o", f"{tmp_path}/labels/", "--exclusive",
                "--classes", "1,2,3,4", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    for name in shapes:
        stack = np.stack([labels[m, name] for m in range(3)])
        counts = np.stack([(stack == v).sum(0) for v in range(5)])  # background first: ties go to it
        np.testing.assert_array_equal(png(tmp_path / "labels" / name), counts.argmax(0))


def test_postprocess_keeps_exclusive_classes_exclusive(tmp_path):
    """A ring of class a around a pixel of class b: filling a's hole claims b's pixel, which goes
    to a (listed first); classes that overlap as given are an error naming the image."""
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    (tmp_path / "in.csv").write_text(f"image_name,class,rle\nx.png,a,{rle(ring, 'row')}\nx.png,b,5 1\n")
    shape = ["--classes", "a,b", "--height", 3, "--width", 3, "--fill-holes", "-q"]
    r = run_cli("postprocess", tmp_path / "in.csv", "-o", f"{tmp_path / 'out'}/", "--exclusive", *shape)
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(png(tmp_path / "out" / "x.png"), np.ones((3, 3)))
    (tmp_path / "bad.csv").write_text("image_name,class,rle\nx.png,a,1 2\nx.png,b,2 2\n")
    r = run_cli("postprocess", tmp_path / "bad.csv", "-o", tmp_path / "o.csv", "--exclusive", *shape)
    assert r.exit_code == 1
    assert r.output.strip().endswith("bad.csv: image x.png: classes a and b overlap on 1 pixel (exclusive classes)")
    assert not (tmp_path / "o.csv").exists()


def test_large_images_write_their_classes_in_threads_exactly(tmp_path):
    rng = np.random.default_rng(11)
    masks = [rng.random((300, 257)) < p for p in (0.1, 0.5, 0.9)]
    write_set(tmp_path / "out", ["a", "b", "c"], {"big.png": masks}, "column", exclusive=False)
    for c, m in zip("abc", masks, strict=True):
        np.testing.assert_array_equal(png(tmp_path / "out" / "big" / f"{c}.png"), m.astype(np.uint8) * 255)


@pytest.mark.parametrize("exclusive", [True, False])
def test_soft_writes_label_maps_equal_to_its_csv(tmp_path, exclusive):
    """``soft -o DIR/``: the same masks as the CSV it writes, as label maps (exclusive) or
    per-class PNGs."""
    from core.label_maps import label_predictions

    rng = np.random.default_rng(3)
    maps = tmp_path / "maps"
    maps.mkdir()
    channels = 3 if exclusive else 2
    for k in range(2):
        np.save(maps / f"im{k}.npy", rng.random((channels, 4, 5)).astype(np.float32))
    setting = tmp_path / "s.yaml"
    setting.write_text(
        f"CLASSES: [a, b]\nheight: 4\nwidth: 5\nprob_maps: [{{path: {maps}}}]\n"
        + ("exclusive: true\n" if exclusive else "threshold: 0.5\n")
    )
    csv = tmp_path / "soft.csv"
    assert run_cli("soft", "--setting", setting, "-o", csv, "-q").exit_code == 0
    r = run_cli("soft", "--setting", setting, "-o", f"{tmp_path / 'png'}/", "-q")
    assert r.exit_code == 0, r.output
    from core.predictions import read_predictions

    want = read_predictions(csv, ["a", "b"], 4, 5)
    got = label_predictions(tmp_path / "png", ["a", "b"])
    for name in want.images:
        i = got.image_index(Path(name).stem + ".png")
        for c in ("a", "b"):
            np.testing.assert_array_equal(got.mask(i, c), want.mask(name, c))
