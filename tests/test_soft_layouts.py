"""The soft vote of other tasks: exclusive classes (C + 1 channels, channel 0 the background,
the channel of the largest weighted mean), images of their own sizes, CSVs of other columns
and column-major RLE; maps and softmax models, on both engines (torch on the CPU device).

Outputs are read back by a plain parser (``dense_rows``: 1-indexed ``start length`` pairs in
the file's pixel order) and compared with the dense references of ``soft_reference`` and
``test_soft_exclusive``: the device engine pixel for pixel, the numba engine except where the
reference's best two means (per class: the mean and the threshold) lie within 1e-5.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from soft_reference import BAND, ref_layer, ref_vote
from test_soft import forget_helper, import_helper, make_helper, ref_image, run_cli, save_map, write_settings
from test_soft_exclusive import assert_near_ties_only, ref_exclusive

from core.errors import UsageError
from core.exclusivity import overlap_counts, resolve_overlaps
from core.layout import runs_of, transposed_runs
from ensemble import soft_vote
from ensemble.soft_image import Layer

DEVICE = os.environ.get("SOFT_TEST_DEVICE", "cpu")
CLASSES = ["1", "2", "3", "4"]
KAGGLE = ["--columns", "image=ImageId,class=ClassId,rle=EncodedPixels", "--rle-order", "column"]
SIZES = {"a.png": (30, 20), "b.png": (17, 41), "c.png": (1, 9)}


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(0, 1))
def test_transposed_runs_are_the_runs_of_the_transposed_mask(h, w, seed, density):
    rng = np.random.default_rng(seed)
    mask = rng.random((h, w)) < density
    if seed % 3 == 0:  # whole columns: runs that touch across the transposed rows
        mask[:, rng.integers(0, w) :] = True
    got = transposed_runs(runs_of(mask), h, w)
    assert got.dtype == np.int64 and got.shape[1] == 2
    np.testing.assert_array_equal(got, runs_of(mask.T))


def dense_rows(path: Path, sizes: dict, order: str, columns=("ImageId", "ClassId", "EncodedPixels")):
    """``{(image, class): dense bool mask}`` of a CSV, decoded the plain way, and its header."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == tuple(columns), rows[0]
    out = {}
    for row in rows[1:]:
        image, cls, text = row if len(columns) == 3 else (row[0], CLASSES[0], row[1])
        h, w = sizes[image]
        flat = np.zeros(h * w, bool)
        numbers = [int(x) for x in text.split()]
        for start, length in zip(numbers[::2], numbers[1::2], strict=True):
            flat[start - 1 : start - 1 + length] = True
        out[image, cls] = flat.reshape(w, h).T if order == "column" else flat.reshape(h, w)
    return out


def labels_from(masks: dict, image: str, n_classes: int, size) -> np.ndarray:
    out = np.zeros(size, np.int64)
    for c in range(n_classes):
        m = masks[image, CLASSES[c]]
        assert not (out[m] > 0).any(), "classes overlap"
        out[m] = c + 1
    return out


def softmax_map(rng, shape, dtype=np.float32):
    e = np.exp(rng.normal(0, 2, shape))
    return (e / e.sum(0)).astype(dtype)


def exclusive_maps(tmp_path: Path):
    """Three sources of 5 channels for images of three sizes: float16 softmax (low
    resolution), float32 logits (at each image's size), uint8 with a scale; per-source
    weights and a class whose weights differ. Returns the settings and each image's layers
    and (L, C + 1) weights, as the reference takes them."""
    rng = np.random.default_rng(11)
    layers: dict[str, list[Layer]] = {}
    for image, (h, w) in SIZES.items():
        stem = Path(image).stem
        probs = softmax_map(rng, (5, 7, 6), np.float16)
        logits = rng.normal(0, 2, (5, h, w)).astype(np.float32)
        quant = (softmax_map(rng, (5, 4, 9)) * 255).round().astype(np.uint8)
        save_map(tmp_path / "soft", stem, probs)
        save_map(tmp_path / "logit", stem, logits, npz=True)
        save_map(tmp_path / "quant", stem, quant)
        layers[image] = [Layer(probs), Layer(logits, logits=True), Layer(quant, scale=255.0)]
    rows = "".join(f"{k},{h},{w}\n" for k, (h, w) in SIZES.items())
    (tmp_path / "sizes.csv").write_text("image_name,height,width\n" + rows)
    (tmp_path / "kaggle_sizes.csv").write_text("ImageId,height,width\n" + rows)
    cfg = {
        "CLASSES": CLASSES,
        "exclusive": True,
        "prob_maps": [
            {"path": str(tmp_path / "soft")},
            {"path": str(tmp_path / "logit"), "logits": True, "weight": 2},
            {"path": str(tmp_path / "quant"), "scale": 255, "weight": {"default": 1, "3": 0}},
        ],
        "weights": {"default": [1, 1, 0.5], "2": [0, 1, 1]},
        "device": DEVICE,
    }
    # channels: background (default weights), classes 1 … 4
    weights = np.array(
        [
            [1, 1, 0, 1, 1],
            [2, 2, 2, 2, 2],
            [0.5, 0.5, 1, 0, 0.5],
        ],
        np.float64,
    )
    return cfg, layers, weights


@pytest.mark.parametrize("engine", ["device", "cpu"])
def test_exclusive_maps_of_mixed_sizes_in_column_order(tmp_path, engine):
    cfg, layers, weights = exclusive_maps(tmp_path)
    out = tmp_path / f"{engine}.csv"
    res = run_cli(
        "soft",
        "--setting",
        write_settings(tmp_path / "s.yaml", cfg),
        "-o",
        out,
        *KAGGLE,
        "--sizes",
        tmp_path / "kaggle_sizes.csv",
        "--engine",
        engine,
        "--workers",
        2,
    )
    assert res.exit_code == 0, res.output
    masks = dense_rows(out, SIZES, "column")
    assert len(masks) == len(SIZES) * len(CLASSES)
    for image, size in SIZES.items():
        mean, expected = ref_exclusive(layers[image], weights, *size, DEVICE if engine == "device" else "cpu")
        got = labels_from(masks, image, len(CLASSES), size)
        if engine == "device":
            np.testing.assert_array_equal(got, expected)
        else:
            assert_near_ties_only(got, expected, mean)
        assert len(np.unique(expected)) > 2  # the vote is not trivial


def test_exclusive_flag_and_settings_key_agree(tmp_path):
    cfg, _, _ = exclusive_maps(tmp_path)
    cfg["sizes"] = str(tmp_path / "sizes.csv")
    texts = []
    for flag in (False, True):
        data = {k: v for k, v in cfg.items() if k != "exclusive" or not flag}
        out = tmp_path / f"{flag}.csv"
        args = ["--exclusive"] if flag else []
        res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", data), "-o", out, *args, "-q")
        assert res.exit_code == 0, res.output
        texts.append(out.read_text())
    assert texts[0] == texts[1] and texts[0].splitlines()[0] == "image_name,class,rle"


def test_exclusive_in_memory_result_carries_sizes_and_order(tmp_path):
    cfg, layers, weights = exclusive_maps(tmp_path)
    result = soft_vote(cfg, engine="device", sizes=tmp_path / "sizes.csv", rle_order="column")
    preds = result.predictions
    assert preds.order == "column" and preds.images == list(SIZES)
    for i, (image, size) in enumerate(SIZES.items()):
        _, expected = ref_exclusive(layers[image], weights, *size, DEVICE)
        for c in range(len(CLASSES)):
            np.testing.assert_array_equal(preds.mask(i, c), expected == c + 1)


@pytest.mark.parametrize("engine", ["device", "cpu"])
def test_per_class_vote_of_mixed_sizes_in_column_order(tmp_path, engine):
    """Overlapping classes: each image at its size from a folder of the images, the runs
    of the transposed masks, columns without a class column (one class)."""
    from PIL import Image

    rng = np.random.default_rng(3)
    (tmp_path / "images").mkdir()
    probs = {}
    for image, (h, w) in SIZES.items():
        Image.fromarray(np.zeros((h, w), np.uint8)).save(tmp_path / "images" / image)
        probs[image] = [rng.random((1, 5, 4)).astype(np.float32), rng.normal(0, 2, (1, 9, 3)).astype(np.float16)]
        save_map(tmp_path / "p", Path(image).stem, probs[image][0])
        save_map(tmp_path / "l", Path(image).stem, probs[image][1])
    cfg = {
        "CLASSES": ["1"],
        "threshold": 0.45,
        "prob_maps": [{"path": str(tmp_path / "p")}, {"path": str(tmp_path / "l"), "logits": True, "weight": 1.5}],
        "sizes": str(tmp_path / "images"),
        "columns": {"image": "ImageId", "rle": "EncodedPixels"},
        "rle_order": "column",
        "device": DEVICE,
        "engine": engine,
    }
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "-q")
    assert res.exit_code == 0, res.output
    masks = dense_rows(out, SIZES, "column", ("ImageId", "EncodedPixels"))
    ref_device = DEVICE if engine == "device" else "cpu"
    for image, (h, w) in SIZES.items():
        layers = [ref_layer(probs[image][0], False, None, None, h, w, ref_device)]
        layers.append(ref_layer(probs[image][1], True, None, None, h, w, ref_device))
        mean, keep = ref_vote(layers, np.array([[1.0], [1.5]]), [0.45])
        diff = masks[image, "1"] != keep[0]
        if engine == "device":
            assert not diff.any()
        else:
            assert not diff.any() or np.abs(mean[0][diff] - np.float32(0.45)).max() < BAND


def test_exclusive_inline_postprocess_keeps_classes_exclusive(tmp_path):
    """Class 1 a ring around class 2: filling holes gives class 1 the pixels of class 2,
    which the class listed first keeps; the same as postprocess on the plain vote, resolved."""
    h, w = 12, 14
    maps = np.full((3, h, w), 0.1, np.float32)
    maps[0] = 0.8
    maps[0, 2:10, 2:12] = 0.1
    maps[1, 2:10, 2:12] = 0.8
    maps[1, 4:8, 4:10] = 0.1
    maps[2, 4:8, 4:10] = 0.8
    save_map(tmp_path / "m", "x", maps)
    (tmp_path / "sizes.csv").write_text(f"ImageId,height,width\nx.png,{h},{w}\n")
    base = {"CLASSES": ["ring", "core"], "exclusive": True, "prob_maps": [{"path": str(tmp_path / "m")}]}
    layout = [*KAGGLE, "--sizes", tmp_path / "sizes.csv"]
    plain, cleaned, again = tmp_path / "plain.csv", tmp_path / "cleaned.csv", tmp_path / "again.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", base), "-o", plain, *layout, "-q")
    assert res.exit_code == 0, res.output
    res = run_cli("postprocess", plain, "-o", again, "--fill-holes", "--classes", "ring,core", *layout, "-q")
    assert res.exit_code == 0, res.output
    sizes = {"x.png": (h, w)}
    naive = dense_rows(again, sizes, "column")
    masks = [runs_of(naive["x.png", c]) for c in ("ring", "core")]
    assert overlap_counts(masks)[0] == 24  # the hole, filled, is the core
    resolved, _ = resolve_overlaps(masks, "first")
    pp = {**base, "postprocess": {"default": {"fill_holes": True}}}
    for engine in ("cpu", "device"):
        res = run_cli(
            "soft", "--setting", write_settings(tmp_path / "s.yaml", pp), "-o", cleaned, *layout, "--engine", engine
        )
        assert res.exit_code == 0, res.output
        assert "postprocess (inline)" in res.output
        got = dense_rows(cleaned, sizes, "column")
        for c, name in enumerate(("ring", "core")):
            np.testing.assert_array_equal(runs_of(got["x.png", name]), resolved[c])
        ring = np.zeros((h, w), bool)
        ring[2:10, 2:12] = True
        np.testing.assert_array_equal(got["x.png", "ring"], ring)
        assert not got["x.png", "core"].any()


def test_exclusive_errors_are_one_line_and_write_nothing(tmp_path):
    cfg, _, _ = exclusive_maps(tmp_path)
    cfg["sizes"] = str(tmp_path / "sizes.csv")
    out = tmp_path / "o.csv"

    def fails(data, *args, code=2):
        res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", data), "-o", out, *args)
        assert res.exit_code == code, res.output
        assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        return res.output

    bad = tmp_path / "soft" / "b.npy"
    good = np.load(bad)
    np.save(bad, good[:4])  # the classes only, without the background
    for engine in ("cpu", "device"):
        message = fails(cfg, "--engine", engine, "-q")
        assert f"{bad}: image b.png: 4 channels, expected 5 (exclusive: channel 0 the background" in message
    np.save(bad, good)
    message = fails({**cfg, "threshold": 0.5}, "-q")
    assert "threshold: exclusive classes take the channel of the largest weighted mean" in message
    (tmp_path / "sizes.csv").write_text("image_name,height,width\na.png,30,20\n")
    message = fails(cfg, "-q")
    assert "sizes.csv: sizes: no size for image b.png" in message
    per_class = {"default": [0, 0, 0], **{c: [1, 1, 1] for c in CLASSES}}
    message = fails({**cfg, "sizes": None, "exclusive": False, "weights": per_class}, "--exclusive", "-q")
    assert "all weights are 0 for the background (channel 0; exclusive)" in message
    two = fails({**cfg, "sizes": None, "columns": "image=ImageId,rle=EncodedPixels"}, "-q")
    assert "a file without a class column holds one class, but the class list has 4" in two


def test_cluster_chunks_refuse_other_column_names(tmp_path):
    from core.stream import selecting

    cfg, _, _ = exclusive_maps(tmp_path)
    with selecting(0, 0), pytest.raises(UsageError, match="a cluster run writes the columns image_name,class,rle"):
        soft_vote(cfg, output=tmp_path / "o.csv", columns="image=ImageId,class=ClassId,rle=EncodedPixels")


# ---------------------------------------------------------------- softmax models
def model_case(tmp_path, n_out: int):
    """A TorchScript model of ``n_out`` channels and two images of their own sizes."""
    import torch
    from PIL import Image

    root = tmp_path / "code"
    name = make_helper(root)
    mod = import_helper(root, name)
    net = mod.TinyNet(n_out, seed=4)
    torch.jit.save(torch.jit.trace(net, torch.rand(1, 3, 16, 16)), tmp_path / "ts.pt")
    forget_helper(name)
    rng = np.random.default_rng(9)
    images = {"g.png": (40, 36), "r.png": (26, 50)}
    (tmp_path / "DCM").mkdir()
    yy, xx = np.mgrid[:40, :36]
    Image.fromarray(((np.sin(yy / 5) + np.cos(xx / 3)) * 60 + 128).astype(np.uint8), "L").save(
        tmp_path / "DCM" / "g.png"
    )
    Image.fromarray(rng.integers(0, 256, (26, 50, 3), dtype=np.uint8), "RGB").save(tmp_path / "DCM" / "r.png")
    return torch.jit.load(tmp_path / "ts.pt").eval(), images


def ref_model_probs(model, path: Path, size: int, tta: bool, height: int, width: int) -> Layer:
    """The model's output at the image's size through a softmax over channels, as the full
    resolution probability map of a layer (resampling it again is the identity)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        x = torch.from_numpy(ref_image(path).transpose(2, 0, 1).copy())[None]
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out = model(x)
        if tta:
            out = (out + model(x.flip(-1)).flip(-1)) / 2
        up = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)[0]
        return Layer(torch.softmax(up, 0).numpy())


@pytest.mark.parametrize("engine, tta", [("device", False), ("device", True), ("cpu", True)])
def test_softmax_models_on_images_of_their_own_sizes(tmp_path, engine, tta):
    model, images = model_case(tmp_path, len(CLASSES) + 1)
    rng = np.random.default_rng(2)
    maps = {}
    for image in images:
        maps[image] = softmax_map(rng, (5, 8, 8))
        save_map(tmp_path / "maps", Path(image).stem, maps[image])
    cfg = {
        "image_root": str(tmp_path / "DCM"),
        "CLASSES": CLASSES,
        "exclusive": True,
        "model_paths": {16: [str(tmp_path / "ts.pt")]},
        "prob_maps": [{"path": str(tmp_path / "maps"), "weight": 0.5}],
        "tta": ["hflip"] if tta else [],
        "device": "cpu",
        "engine": engine,
    }
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, *KAGGLE, "-q")
    assert res.exit_code == 0, res.output
    masks = dense_rows(out, images, "column")
    for image, (h, w) in images.items():
        # the model's softmax is already at full size: its reference layer is exact there
        layers = [ref_model_probs(model, tmp_path / "DCM" / image, 16, tta, h, w), Layer(maps[image])]
        mean, expected = ref_exclusive(layers, np.array([1.0, 0.5]), h, w)
        got = labels_from(masks, image, len(CLASSES), (h, w))
        if engine == "device":
            np.testing.assert_array_equal(got, expected)
        else:
            assert_near_ties_only(got, expected, mean)
        assert len(np.unique(expected)) > 2


def test_softmax_model_errors(tmp_path):
    _, images = model_case(tmp_path, len(CLASSES))  # the classes only: no background channel
    cfg = {
        "image_root": str(tmp_path / "DCM"),
        "CLASSES": CLASSES,
        "exclusive": True,
        "model_paths": {16: [str(tmp_path / "ts.pt")]},
        "device": "cpu",
    }
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "-q")
    assert res.exit_code == 2, res.output
    assert "model outputs 4 channels, expected 5 (exclusive: channel 0 the background, then 4 classes)" in res.output
    assert not out.exists()
    (tmp_path / "sizes.csv").write_text("image_name,height,width\ng.png,40,36\nr.png,26,51\n")
    res = run_cli(
        "soft",
        "--setting",
        write_settings(tmp_path / "s.yaml", {**cfg, "exclusive": False}),
        "-o",
        out,
        "--sizes",
        tmp_path / "sizes.csv",
        "-q",
    )
    assert res.exit_code == 2, res.output
    assert "sizes: image r.png is 26×50, the sizes say 26×51" in res.output and not out.exists()
