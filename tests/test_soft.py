"""Soft voting (``cli.py soft``): the engine against a plain torch computation, models
(TorchScript and pickled), maps of every dtype/resolution, boxes, settings and errors.

A pixel may differ from the torch reference only where the reference mean lies within
1e-5 of the threshold (float32 rounding order); everything else must match exactly.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import default_signals  # noqa: E402
from soft_reference import assert_matches, layer_sets, ref_layer, ref_vote  # noqa: E402

import cli  # noqa: E402
from core.errors import InputError, UsageError  # noqa: E402
from core.predictions import read_predictions  # noqa: E402
from ensemble._soft_kernels import bbox_above, fused_kernel  # noqa: E402
from ensemble.maps import MapSource  # noqa: E402
from ensemble.resample import axis_table  # noqa: E402
from ensemble.soft_image import Layer, vote_class, vote_image  # noqa: E402
from settings.loader import parse_model  # noqa: E402
from settings.soft import SoftSettings  # noqa: E402

CLASSES = ("a", "b", "c")


def run_cli(*args):
    return CliRunner().invoke(cli.cli, [str(a) for a in args], catch_exceptions=False)


# ---------------------------------------------------------------- engine
def test_axis_table_is_torch_interpolation():
    import torch
    import torch.nn.functional as F

    sizes = [(1, 7), (5, 5), (7, 3), (512, 2048), (1024, 2048), (333, 2048), (2048, 1000), (2048, 517), (3, 1)]
    for n_in, n_out in sizes:
        x = torch.rand(n_in, dtype=torch.float32)
        want = F.interpolate(x[None, None, None], size=(1, n_out), mode="bilinear", align_corners=False)[0, 0, 0]
        i0, i1, l0, l1 = axis_table(n_in, n_out)
        a = x.numpy()
        got = a[i0] * l0 + a[i1] * l1
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1.2e-7)
        assert i0.min() >= 0 and i1.max() <= n_in - 1


def test_bbox_above():
    a = np.zeros((6, 7), np.float32)
    assert bbox_above(a, 0.5) == (0, 0, 0, 0)
    a[2, 3] = 0.7
    a[4, 1] = 0.6
    assert bbox_above(a, 0.5) == (2, 5, 1, 4)
    a[0, 6] = np.nan
    assert bbox_above(a, 0.5) == (0, 5, 1, 7)
    assert bbox_above(np.array([[3, 200]], np.uint8), 100) == (0, 1, 1, 2)
    rng = np.random.default_rng(0)
    for _ in range(20):  # the compiled kernel and its Python twin agree
        b = rng.random((rng.integers(1, 9), rng.integers(1, 9))).astype(np.float32)
        assert bbox_above(b, 0.8) == bbox_above.py_func(b, 0.8)


@settings(max_examples=80, deadline=None)
@given(layer_sets())
def test_engine_equals_torch(case):
    layers, weights, thresholds, height, width = case
    probs = [ref_layer(L.data, L.logits, L.scale, L.box, height, width) for L in layers]
    mean, expected = ref_vote(probs, weights, thresholds)
    assert_matches(vote_image(layers, weights, thresholds, height, width), mean, expected, thresholds)


@pytest.mark.parametrize("size", [1, 3, 17, 64, 100])
def test_resolutions_and_full_width_runs(size):
    # A map that passes almost everywhere gives runs spanning whole rows: they must merge.
    rng = np.random.default_rng(size)
    data = (0.6 + 0.4 * rng.random((2, size, size))).astype(np.float32)
    data[1, : size // 2] = 0.2
    layers = [Layer(data)]
    w = np.ones((1, 2))
    thr = np.array([0.5, 0.5])
    runs = vote_image(layers, w, thr, 50, 60)
    mean, expected = ref_vote([ref_layer(data, False, None, None, 50, 60)], w, thr)
    assert_matches(runs, mean, expected, thr)
    assert len(runs[0]) == 1 and tuple(runs[0][0]) == (0, 3000)


def test_support_skip_is_exact_near_box_edges():
    # Confident pixels only at the map's corners, box hanging over every canvas edge.
    data = np.zeros((1, 8, 8), np.float16)
    data[0, 0, 0] = data[0, 7, 7] = data[0, 0, 7] = 1.0
    for box in [(-5, -5, 20, 20), (10, 10, 40, 41), (-3, 20, 25, 37), (0, 0, 1, 1)]:
        layer = Layer(data, box=box)
        probs = [ref_layer(data, False, None, box, 32, 32)]
        mean, expected = ref_vote(probs, np.ones((1, 1)), [0.3])
        assert_matches(vote_image([layer], np.ones((1, 1)), np.array([0.3]), 32, 32), mean, expected, [0.3])


@pytest.mark.parametrize(
    "dtype, value, scale, logits",
    [
        (np.float16, np.nextafter(np.float16(0.5), np.float16(1)), None, False),
        (np.float32, np.nextafter(np.float32(0.5), np.float32(1)), None, False),
        (np.uint8, 128, 255.0, False),
        (np.uint16, 501, 1000.0, False),
        (np.float16, np.float16(0.001), None, True),
        (np.float32, np.float32(1e-6), None, True),
    ],
)
def test_support_keeps_a_single_sample_just_above_threshold(dtype, value, scale, logits):
    base = -20 if logits else 0
    data = np.full((1, 9, 7), base, dtype)
    data[0, 4, 3] = value
    layer = Layer(data, logits=logits, scale=scale)
    runs = vote_class([layer], 0, np.ones(1), 0.5, 9, 7)  # same size: the sample itself
    assert runs.tolist() == [[4 * 7 + 3, 4 * 7 + 4]]
    data[0, 3:6, 2:5] = value  # 4x upsampled, a 3x3 patch gives pixels above the threshold
    mean, expected = ref_vote([ref_layer(data, logits, scale, None, 36, 28)], np.ones((1, 1)), [0.5])
    big = vote_image([layer], np.ones((1, 1)), np.array([0.5]), 36, 28)
    assert expected.any() and len(big[0]) > 0
    assert_matches(big, mean, expected, [0.5])


def test_fused_kernel_twin_on_one_layer():
    # The numba kernel and its Python twin agree (same inputs as vote_class builds).
    rng = np.random.default_rng(1)
    data = rng.random((1, 5, 6)).astype(np.float32)
    i0y, i1y, l0y, l1y = axis_table(5, 9)
    i0x, i1x, l0x, l1x = axis_table(6, 11)
    args = (
        data.reshape(-1),
        np.zeros(1, np.int64),
        np.array([6]),
        i0y[None],
        i1y[None],
        l0y[None],
        l1y[None],
        i0x[None],
        i1x[None],
        l0x[None],
        l1x[None],
        np.array([0]),
        np.array([11]),
        np.ones(1, np.float32),
        np.zeros(1, np.bool_),
        np.float32(0.5),
        0,
        0,
        11,
    )
    np.testing.assert_array_equal(fused_kernel(*args), fused_kernel.py_func(*args))


def test_zero_weight_source_is_left_out():
    hi = np.full((1, 4, 4), 0.9, np.float32)
    lo = np.full((1, 4, 4), 0.1, np.float32)
    runs = vote_class([Layer(hi), Layer(lo)], 0, np.array([1.0, 0.0]), 0.5, 8, 8)
    assert tuple(runs[0]) == (0, 64)
    assert len(vote_class([Layer(hi), Layer(lo)], 0, np.array([1.0, 1.0]), 0.5, 8, 8)) == 0


# ---------------------------------------------------------------- map files, settings
def save_map(folder: Path, stem: str, array: np.ndarray, npz: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if npz:
        np.savez_compressed(folder / f"{stem}.npz", prob=array)
    else:
        np.save(folder / f"{stem}.npy", array)


def write_settings(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_maps_only_workers_give_the_same_output(tmp_path):
    from core.synthetic import Generator

    gen = Generator(n_images=3, n_models=2, height=128, width=128, classes=CLASSES, seed=4)
    for img in gen.images():
        save_map(tmp_path / "m1", Path(img.name).stem, gen.prob_map(img, "model1", 64))
        save_map(tmp_path / "m2", Path(img.name).stem, gen.prob_map(img, "model2", 32), npz=True)
    base = {
        "CLASSES": list(CLASSES),
        "height": 128,
        "width": 128,
        "prob_maps": [{"path": str(tmp_path / "m1")}, {"path": str(tmp_path / "m2")}],
    }
    texts = []
    for workers in (1, 3):
        out = tmp_path / f"w{workers}.csv"
        res = run_cli(
            "soft", "--setting", write_settings(tmp_path / "s.yaml", base), "-o", out, "--workers", workers, "--quiet"
        )
        assert res.exit_code == 0, res.output
        texts.append(out.read_text())
    assert texts[0] == texts[1]
    assert len(read_predictions(tmp_path / "w1.csv", CLASSES, 128, 128).images) == 3
    assert sum(len(r) for r in texts[0].splitlines()) > 500  # the maps give non-empty masks


def test_missing_map_error_and_skip(tmp_path):
    a = np.full((3, 4, 4), 0.8, np.float32)
    b = np.full((3, 4, 4), 0.1, np.float32)
    save_map(tmp_path / "one", "x", a)
    save_map(tmp_path / "one", "y", a)
    save_map(tmp_path / "two", "x", b)
    cfg = {
        "CLASSES": list(CLASSES),
        "height": 8,
        "width": 8,
        "prob_maps": [{"path": str(tmp_path / "one")}, {"path": str(tmp_path / "two")}],
    }
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "--quiet")
    assert res.exit_code == 2
    assert "source two: no map for image y.png" in res.output and not out.exists()
    cfg["missing"] = "skip"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out)
    assert res.exit_code == 0, res.output
    assert "source two had no map for 1 image" in res.output
    pred = read_predictions(out, CLASSES, 8, 8)
    assert pred.rle(0, 0) == ""  # x: mean 0.45
    assert pred.rle(1, 0) == "1 64"  # y: only 'one' present, 0.8


def test_maps_with_image_root_follow_the_images(tmp_path):
    # image_root decides the images (sorted by relative path); maps are found by stem.
    for rel in ("ID2/b.png", "ID1/z.png"):
        (tmp_path / "DCM" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "DCM" / rel).write_bytes(b"")  # never read: no models
    save_map(tmp_path / "m", "z", np.full((3, 2, 2), 0.9, np.float32))
    save_map(tmp_path / "m", "b", np.full((3, 2, 2), 0.2, np.float32))
    save_map(tmp_path / "m", "extra", np.full((3, 2, 2), 0.9, np.float32))
    cfg = {
        "image_root": str(tmp_path / "DCM"),
        "CLASSES": list(CLASSES),
        "height": 4,
        "width": 4,
        "prob_maps": [{"path": str(tmp_path / "m")}],
    }
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "-q")
    assert res.exit_code == 0, res.output
    pred = read_predictions(out, CLASSES, 4, 4)
    assert pred.images == ["z.png", "b.png"]
    assert [pred.rle(0, c) for c in range(3)] == ["1 16"] * 3 and pred.rle(1, 0) == ""


@pytest.mark.parametrize(
    "case, message",
    [
        ("channels", "2 channels, expected 3"),
        ("ndim", "expected (classes, height, width)"),
        ("noscale", "needs 'scale'"),
        ("twoarrays", "expected exactly one"),
        ("dtype", "unsupported dtype int32"),
        ("bothfiles", "two maps for image x"),
        ("garbage", "cannot read map"),
    ],
)
def test_bad_map_files(tmp_path, case, message):
    folder = tmp_path / "maps"
    folder.mkdir()
    good = np.zeros((3, 4, 4), np.float32)
    if case == "channels":
        np.save(folder / "x.npy", good[:2])
    elif case == "ndim":
        np.save(folder / "x.npy", good[0])
    elif case == "noscale":
        np.save(folder / "x.npy", good.astype(np.uint8))
    elif case == "twoarrays":
        np.savez(folder / "x.npz", a=good, b=good)
    elif case == "dtype":
        np.save(folder / "x.npy", good.astype(np.int32))
    elif case == "bothfiles":
        np.save(folder / "x.npy", good)
        np.savez(folder / "x.npz", a=good)
    else:
        (folder / "x.npy").write_bytes(b"not a numpy file")
    cfg = {"CLASSES": list(CLASSES), "height": 8, "width": 8, "prob_maps": [{"path": str(folder)}]}
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", tmp_path / "o.csv", "-q")
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


def test_bad_boxes(tmp_path):
    folder = tmp_path / "maps"
    save_map(folder, "x", np.zeros((3, 4, 4), np.float32))
    src = MapSource("m", folder, boxes={})
    assert src.load("x.png", 3) is None and "no box for image x.png" in src.absent("x.png")
    for text, msg in [
        ("image_name,x0,y0,x1\n", "missing column(s) y1"),
        ("image_name,x0,y0,x1,y1\nx.png,1,2,1,5\n", "empty box"),
        ("image_name,x0,y0,x1,y1\nx.png,1.5,2,3,5\n", "must be integers"),
        ("image_name,x0,y0,x1,y1\nx.png,1,2,3,5\nx.png,1,2,3,5\n", ":3: image x.png: second box"),
    ]:
        (tmp_path / "b.csv").write_text(text)
        cfg = {"CLASSES": list(CLASSES), "prob_maps": [{"path": str(folder), "boxes": str(tmp_path / "b.csv")}]}
        res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", tmp_path / "o.csv")
        assert res.exit_code == 2 and msg in res.output, res.output


ORIGINAL = """\
image_root: /data/test/DCM          # walked recursively for *.png; CSV image_name = basename
root_path: /path/to/training/code   # put on sys.path so pickled models can be unpickled
CLASSES: [finger-1, finger-2, finger-3, finger-4, finger-5, finger-6, finger-7, finger-8, finger-9,
  finger-10, finger-11, finger-12, finger-13, finger-14, finger-15, finger-16, finger-17, finger-18,
  finger-19, Trapezium, Trapezoid, Capitate, Hamate, Scaphoid, Lunate, Triquetrum, Pisiform, Radius, Ulna]
batch_size: 2
num_workers: 2
threshold: 0.5
model_paths:                        # input size -> list of checkpoints (torch.save(model))
  512: []
  1024: [/ckpt/best_model1.pt, /ckpt/best_model2.pt]
  1536: []
  2048: []
save_dir: ./soft_ensemble
output_name: output.csv
"""


def test_original_settings_parse_verbatim():
    cfg = parse_model(SoftSettings, yaml.safe_load(ORIGINAL), "orig")
    assert cfg.models() == [(1024, "/ckpt/best_model1.pt"), (1024, "/ckpt/best_model2.pt")]
    assert cfg.class_list()[0] == "finger-1" and len(cfg.class_list()) == 29
    assert (cfg.batch_size, cfg.num_workers, cfg.threshold) == (2, 2, 0.5)
    assert cfg.output_path() == Path("soft_ensemble/output.csv")
    assert cfg.image_root == "/data/test/DCM" and cfg.root_path == "/path/to/training/code"
    shipped = yaml.safe_load((ROOT / "soft_voting_setting.yaml").read_text())
    assert set(shipped) == set(yaml.safe_load(ORIGINAL))
    assert parse_model(SoftSettings, shipped, "shipped").class_list() == cfg.class_list()
    example = parse_model(
        SoftSettings, yaml.safe_load((ROOT / "settings" / "soft_maps_example.yaml").read_text()), "example"
    )
    assert example.prob_maps and example.tta == ["hflip"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"threshhold": 0.5}, "threshhold: unknown key"),
        ({"prob_maps": [{"path": "x", "wieght": 2}]}, "prob_maps.0.wieght: unknown key"),
        ({"model_paths": {"big": []}}, "model_paths.big"),
        ({"tta": ["vflip"]}, "tta.0"),
        ({"missing": "empty"}, "missing"),
        ({"CLASSES": ["a", "a"]}, "listed twice"),
    ],
)
def test_bad_settings_keys(tmp_path, data, message):
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", data))
    assert res.exit_code == 2
    assert message in res.output and len(res.output.strip().splitlines()) == 1


def test_settings_errors(tmp_path):
    (tmp_path / "m").mkdir()
    cases = [
        ({}, "nothing to vote"),
        ({"prob_maps": [{"path": str(tmp_path / "nope")}]}, "folder"),
        ({"prob_maps": [{"path": str(tmp_path / "m")}]}, "no .npy/.npz maps"),
        ({"model_paths": {8: [str(tmp_path / "x.pt")]}}, "image_root is required"),
        ({"image_root": str(tmp_path / "m"), "model_paths": {8: ["x.pt"]}}, "no *.png files"),
        ({"image_root": str(tmp_path / "none"), "model_paths": {8: ["x.pt"]}}, "is not a folder"),
        ({"prob_maps": [{"path": str(tmp_path / "m")}], "weights": {"zz": 1}}, "unknown source 'zz' (sources: m)"),
        ({"prob_maps": [{"path": str(tmp_path / "m")}], "threshold": {"Radius": 1.5}}, "thresholds must lie"),
        ({"prob_maps": [{"path": str(tmp_path / "m"), "weight": 0}]}, "all weights are 0"),
        ({"prob_maps": [{"path": str(tmp_path / "m")}], "tta": ["hflip"]}, "tta applies to model_paths"),
        ({"prob_maps": [{"path": str(tmp_path / "m")}], "postprocess": {"min_size": 10}}, "postprocess"),
    ]
    np.save(tmp_path / "keep.npy", np.zeros(1))
    for data, message in cases:
        if "no .npy" not in message and data.get("prob_maps"):
            np.save(tmp_path / "m" / "x.npy", np.zeros((29, 2, 2), np.float32))
        res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", data), "-o", tmp_path / "o.csv")
        assert res.exit_code == 2, (data, res.output)
        assert message in res.output, (message, res.output)
        (tmp_path / "m" / "x.npy").unlink(missing_ok=True)


# ---------------------------------------------------------------- models
HELPER = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    """3 -> C classes; stride 2 makes the output half the input size; dict output optional."""

    def __init__(self, n_classes, stride=1, as_dict=False, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, n_classes, 3, padding=1, stride=stride)
        self.as_dict = as_dict

    def forward(self, x):
        y = self.conv(x * 4 - 2)
        return {"out": y, "aux": y} if self.as_dict else y
'''


def make_helper(root: Path) -> str:
    """Write the helper module under a fresh name (so unpickling must find it via root_path)."""
    name = f"tinynet_{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.py").write_text(HELPER)
    return name


def import_helper(root: Path, name: str):
    sys.path.insert(0, str(root))
    try:
        module = __import__(name)
    finally:
        sys.path.remove(str(root))
    return module


def forget_helper(name: str) -> None:
    sys.modules.pop(name, None)


def make_images(root: Path, size: tuple[int, int]) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(3)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    smooth = ((np.sin(yy / 7.0) + np.cos(xx / 5.0)) * 60 + 128).astype(np.uint8)
    paths = [root / "ID001" / "b.png", root / "ID002" / "a.PNG", root / "ID002" / "c.png"]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth, "L").save(paths[0])
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(paths[1])
    Image.fromarray(smooth.astype(np.uint16) * 257 + 3).save(paths[2])
    (root / "ID002" / "notes.txt").write_text("not an image")
    return paths


def ref_image(path: Path) -> np.ndarray:
    """(H, W, 3) BGR float32 /255, as cv2.imread would read it (written independently)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a, a, a], axis=-1)
    return a[:, :, ::-1].astype(np.float32) / 255


def ref_models(paths, models, size_of, tta, height, width, extra_probs=None, weights=None):
    """Mean of sigmoid(upsampled logits) over models (and extra prob maps), per image."""
    import torch
    import torch.nn.functional as F

    means = []
    with torch.no_grad():
        for i, p in enumerate(paths):
            x = torch.from_numpy(ref_image(p).transpose(2, 0, 1).copy())[None]
            probs = []
            for m in models:
                s = size_of[m]
                xi = (
                    x if x.shape[-2:] == (s, s) else F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
                )
                out = m(xi)
                out = out["out"] if isinstance(out, dict) else out
                if tta:
                    f = m(xi.flip(-1))
                    out = (out + (f["out"] if isinstance(f, dict) else f).flip(-1)) / 2
                up = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=False)
                probs.append(torch.sigmoid(up)[0])
            probs += (extra_probs or {}).get(i, [])
            w = np.ones((len(probs), probs[0].shape[0])) if weights is None else weights
            means.append(ref_vote(probs, w, np.full(probs[0].shape[0], 0.5)))
    return means


@pytest.mark.parametrize("tta", [False, True])
def test_models_torchscript_and_pickled(tmp_path, tta):
    import torch

    root = tmp_path / "train_code"
    name = make_helper(root)
    mod = import_helper(root, name)
    H, W = 40, 36
    images = make_images(tmp_path / "DCM", (H, W))
    scripted = torch.jit.trace(mod.TinyNet(3, stride=1, seed=1), torch.rand(1, 3, 16, 16))
    torch.jit.save(scripted, tmp_path / "ts.pt")
    pick_dict = mod.TinyNet(3, stride=2, as_dict=True, seed=2)
    torch.save(pick_dict, tmp_path / "pd.pt")
    pick_plain = mod.TinyNet(3, stride=1, seed=3)
    torch.save(pick_plain, tmp_path / "pp.pt")
    forget_helper(name)
    # one map source mixed in, weighted like a model
    rng = np.random.default_rng(0)
    maps = {}
    for i, p in enumerate(sorted(images, key=lambda q: str(q.relative_to(tmp_path / "DCM")))):
        maps[i] = rng.random((3, 10, 9)).astype(np.float16)
        save_map(tmp_path / "maps", p.stem, maps[i])
    cfg = {
        "image_root": str(tmp_path / "DCM"),
        "root_path": str(root),
        "CLASSES": list(CLASSES),
        "batch_size": 2,
        "num_workers": 2,
        "threshold": 0.5,
        "model_paths": {
            16: [str(tmp_path / "ts.pt")],
            24: [str(tmp_path / "pd.pt")],
            36: [],
            40: [str(tmp_path / "pp.pt")],
        },
        "save_dir": str(tmp_path / "out"),
        "output_name": "sub.csv",
        "height": H,
        "width": W,
        "prob_maps": [{"path": str(tmp_path / "maps")}],
        "device": "cpu",
    }
    if tta:
        cfg["tta"] = ["hflip"]
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg))
    assert res.exit_code == 0, res.output
    assert "unpickling runs code" in res.output and res.output.count("unpickling runs code") == 1
    out = read_predictions(tmp_path / "out" / "sub.csv", CLASSES, H, W)
    order = sorted(images, key=lambda q: str(q.relative_to(tmp_path / "DCM")))
    assert out.images == [p.name for p in order] == ["b.png", "a.PNG", "c.png"]
    mod = import_helper(root, name)
    loaded = [
        torch.jit.load(tmp_path / "ts.pt"),
        torch.load(tmp_path / "pd.pt", weights_only=False),
        torch.load(tmp_path / "pp.pt", weights_only=False),
    ]
    forget_helper(name)
    for m in loaded:
        m.eval()
    sizes = {loaded[0]: 16, loaded[1]: 24, loaded[2]: 40}
    extra = {i: [ref_layer(maps[i], False, None, None, H, W)] for i in maps}
    refs = ref_models(order, loaded, sizes, tta, H, W, extra)
    assert any(out.areas[out.rows[i]].sum() > 0 for i in range(3))
    for i, (mean, expected) in enumerate(refs):
        assert_matches([out.runs(i, c) for c in range(3)], mean, expected, [0.5] * 3)


def test_original_file_at_full_size(tmp_path):
    """The original keys only (no extensions): 2048² canvas, two input sizes, pickled models."""
    import torch

    root = tmp_path / "code"
    name = make_helper(root)
    mod = import_helper(root, name)
    img = tmp_path / "DCM" / "ID040" / "image1661319116107.png"
    img.parent.mkdir(parents=True)
    from PIL import Image

    yy, xx = np.mgrid[:2048, :2048]
    Image.fromarray(((yy // 8 + xx // 16) % 256).astype(np.uint8), "L").save(img)
    nets = [mod.TinyNet(2, seed=5), mod.TinyNet(2, stride=2, seed=6)]
    torch.save(nets[0], tmp_path / "m32.pt")
    torch.save(nets[1], tmp_path / "m64.pt")
    forget_helper(name)
    text = (
        f"image_root: {tmp_path / 'DCM'}\nroot_path: {root}\nCLASSES: [Radius, Ulna]\nbatch_size: 2\n"
        f"num_workers: 2\nthreshold: 0.5\nmodel_paths:\n  32: [{tmp_path / 'm32.pt'}]\n"
        f"  64: [{tmp_path / 'm64.pt'}]\n  1024: []\nsave_dir: {tmp_path / 'soft_ensemble'}\n"
        "output_name: output.csv\n"
    )
    (tmp_path / "orig.yaml").write_text(text)
    res = run_cli("soft", "--setting", tmp_path / "orig.yaml", "--quiet")
    assert res.exit_code == 0, res.output
    out = read_predictions(tmp_path / "soft_ensemble" / "output.csv", ("Radius", "Ulna"))
    mod = import_helper(root, name)
    loaded = [torch.load(tmp_path / f, weights_only=False).eval() for f in ("m32.pt", "m64.pt")]
    forget_helper(name)
    ((mean, expected),) = ref_models([img], loaded, dict(zip(loaded, (32, 64), strict=True)), False, 2048, 2048)
    assert 0 < out.areas.sum() < 2 * 2048 * 2048
    assert_matches([out.runs(0, c) for c in range(2)], mean, expected, [0.5, 0.5])


def test_model_errors(tmp_path):
    import torch

    root = tmp_path / "code"
    name = make_helper(root)
    mod = import_helper(root, name)
    make_images(tmp_path / "DCM", (12, 12))
    torch.save(mod.TinyNet(2), tmp_path / "two.pt")  # wrong channel count
    torch.save(mod.TinyNet(3).state_dict(), tmp_path / "sd.pt")
    torch.jit.save(torch.jit.trace(mod.TinyNet(3), torch.rand(1, 3, 8, 8)), tmp_path / "ok_ts.pt")
    torch.save(mod.TinyNet(3), tmp_path / "ok.pt")
    forget_helper(name)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    base = {"image_root": str(tmp_path / "DCM"), "CLASSES": list(CLASSES), "height": 12, "width": 12, "device": "cpu"}
    cases = [  # the wrong root_path first: a later case puts the right one on sys.path
        (
            {"root_path": str(tmp_path / "wrong"), "model_paths": {8: [str(tmp_path / "ok.pt")]}},
            f"module '{name}' not found",
        ),
        ({"root_path": str(root), "model_paths": {8: [str(tmp_path / "two.pt")]}}, "outputs 2 channels, expected 3"),
        ({"model_paths": {8: [str(tmp_path / "sd.pt")]}}, "not a whole model"),
        ({"model_paths": {8: [str(tmp_path / "nope.pt")]}}, "no such file"),
        ({"model_paths": {8: [str(tmp_path / "junk.pt")]}}, "cannot load model"),
        ({"model_paths": {8: [str(tmp_path / "ok_ts.pt")]}, "device": "cuda:7"}, "device"),
        ({"model_paths": {8: [str(tmp_path / "ok_ts.pt")]}, "weights": [1, 1]}, "2 weights for 1 source"),
    ]
    for extra, message in cases:
        res = run_cli(
            "soft",
            "--setting",
            write_settings(tmp_path / "s.yaml", {**base, **extra}),
            "-o",
            tmp_path / "o.csv",
            "--quiet",
        )
        assert res.exit_code == 2, (extra, res.output)
        assert message in res.output, (message, res.output)
        assert "Traceback" not in res.output and not (tmp_path / "o.csv").exists()


def test_read_image_modes(tmp_path):
    from PIL import Image

    from ensemble.models import read_image, to_unit

    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255  # red
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((2, 3), 7, np.uint8)]), "RGBA").save(tmp_path / "rgba.png")
    a = read_image(tmp_path / "rgb.png")
    assert a.shape == (3, 2, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
    assert (a[2] == 255).all() and (a[:2] == 0).all()  # BGR
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), a)
    Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3), "L").save(tmp_path / "grey.png")
    g = read_image(tmp_path / "grey.png")
    assert g.shape == (1, 2, 3) and g.flags.c_contiguous
    x = to_unit(g, "cpu")
    assert x.shape == (1, 3, 2, 3) and x.is_contiguous()
    np.testing.assert_array_equal(x[0].numpy(), np.repeat(np.arange(6, dtype=np.float32).reshape(1, 2, 3) / 255, 3, 0))
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="cannot read image"):
        read_image(tmp_path / "bad.png")


def test_duplicate_image_basenames(tmp_path):
    from ensemble.soft_plan import find_images

    for d in ("A", "B"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "x.png").write_bytes(b"")
    with pytest.raises(InputError, match="share the name x.png"):
        find_images(str(tmp_path))
    with pytest.raises(UsageError, match="not a folder"):
        find_images(str(tmp_path / "none"))


def test_import_cli_stays_light():
    import subprocess

    code = "import sys, cli; print(sorted(m for m in ('torch', 'numpy', 'numba', 'pandas') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, preexec_fn=default_signals
    )
    assert out.stdout.strip() == "[]"


def test_map_headers_are_parsed_one_thread_at_a_time(tmp_path):
    """numpy parses .npy headers with ast, which CPython does not make thread-safe
    (gh-106905); the reader threads take turns for the header, not for the data."""
    import threading

    from ensemble import maps

    a = np.arange(24, dtype=np.float16).reshape(2, 3, 4)
    save_map(tmp_path, "x", a)
    save_map(tmp_path, "y", a, npz=True)
    for name in ("x.npy", "y.npz"):
        got = []
        with maps._HEADER_LOCK:
            t = threading.Thread(target=lambda n=name, out=got: out.append(maps._read_array(tmp_path / n)))
            t.start()
            t.join(0.3)
            assert t.is_alive() and not got  # waiting for the header lock
        t.join(5)
        np.testing.assert_array_equal(got[0], a)
    (tmp_path / "z.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"z\.npz: cannot read map \(BadZipFile"):
        maps._read_array(tmp_path / "z.npz")
