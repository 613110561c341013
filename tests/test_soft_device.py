"""The device engine of ``soft`` (torch, on the CPU device here and in CI) against the plain
dense torch reference on the same device — pixel for pixel, no tolerance — and against the
numba engine (equal except where the mean lies within 1e-5 of the threshold: the two engines
round in another order).

``SOFT_TEST_DEVICE=cuda python -m pytest tests/test_soft_device.py`` runs the engine and map
tests on a GPU instead (engine and reference both there); the model tests stay on the CPU,
whose reference runs the models on the CPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from soft_reference import BAND, assert_matches, layer_sets, ref_layer, ref_vote
from test_soft import (
    forget_helper,
    import_helper,
    make_helper,
    make_images,
    ref_models,
    run_cli,
    save_map,
    write_settings,
)

from core.codec import decode, encode
from core.errors import InputError
from core.predictions import read_predictions
from ensemble.soft_image import vote_image
from ensemble.torch_vote import DeviceLayer, DeviceVoter, _changes, _runs_from_changes

CLASSES = ("a", "b", "c")
DEVICE = os.environ.get("SOFT_TEST_DEVICE", "cpu")


def device_vote(layers, weights, thresholds, height, width, chunk=8):
    import torch

    dev = [
        DeviceLayer(
            torch.from_numpy(
                np.asarray(L.data).astype(np.float32)
                if L.data.dtype in (np.float64, np.uint16)
                else np.ascontiguousarray(L.data)
            ),
            logits=L.logits,
            scale=L.scale,
            box=L.box,
        )
        for L in layers
    ]
    return DeviceVoter(thresholds, height, width, DEVICE, chunk).vote(dev, weights)


def masks_of(runs, height, width):
    return np.stack([decode(r, (height, width)).astype(bool) for r in runs])


# ---------------------------------------------------------------- engine
@settings(max_examples=80, deadline=None)
@given(layer_sets(), st.integers(1, 3))
def test_device_engine_equals_dense_reference(case, chunk):
    layers, weights, thresholds, height, width = case
    probs = [ref_layer(L.data, L.logits, L.scale, L.box, height, width, DEVICE) for L in layers]
    _, expected = ref_vote(probs, weights, thresholds)
    got = masks_of(device_vote(layers, weights, thresholds, height, width, chunk), height, width)
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(layer_sets())
def test_device_engine_against_numba_engine(case):
    layers, weights, thresholds, height, width = case
    probs = [ref_layer(L.data, L.logits, L.scale, L.box, height, width) for L in layers]
    mean, _ = ref_vote(probs, weights, thresholds)
    numba = masks_of(vote_image(layers, weights, thresholds, height, width), height, width)
    device = masks_of(device_vote(layers, weights, thresholds, height, width), height, width)
    diff = numba != device
    if diff.any():
        near = np.abs(mean - np.asarray(thresholds, np.float32)[:, None, None])[diff]
        assert near.max() < BAND, f"{diff.sum()} pixels differ, |mean - thr| up to {near.max()}"


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.1, 0.5, 0.9]),
)
def test_run_boundaries_are_canonical_runs(k, h, w, seed, density):
    import torch

    masks = np.random.default_rng(seed).random((k, h, w)) < density
    edges = torch.empty((k, h * w + 1), dtype=torch.bool, device=DEVICE)
    for c0 in range(0, k, 2):  # written in chunks, read at once, as the engine does
        _changes(torch.from_numpy(masks[c0 : c0 + 2]).to(DEVICE), edges[c0 : c0 + 2])
    runs = _runs_from_changes(edges.nonzero().cpu().numpy(), k)
    for c in range(k):
        np.testing.assert_array_equal(runs[c], encode(masks[c]))
        assert runs[c].dtype == np.int64 and runs[c].shape[1] == 2


def test_full_rows_merge_and_empty_classes():
    import torch

    masks = np.zeros((3, 4, 5), bool)
    masks[0, 1:3] = True  # two full rows: one run across the row boundary
    masks[2] = True
    edges = torch.empty((3, 21), dtype=torch.bool)
    _changes(torch.from_numpy(masks), edges)
    runs = _runs_from_changes(edges.nonzero().numpy(), 3)
    assert [r.tolist() for r in runs] == [[[5, 15]], [], [[0, 20]]]


def test_bad_values_name_the_source_and_class():
    good = np.full((2, 3, 3), 0.2, np.float32)
    bad = good.copy()
    bad[1, 0, 0] = np.nan
    import torch

    voter = DeviceVoter(np.array([0.5, 0.5]), 6, 6, "cpu", chunk=1)
    with pytest.raises(InputError, match=r"m\.npy: class #2: NaN"):
        voter.vote(
            [DeviceLayer(torch.from_numpy(good)), DeviceLayer(torch.from_numpy(bad), origin="m.npy")], np.ones((2, 2))
        )
    with pytest.raises(InputError, match=r"class #1: .*outside \[0, 1\].*logits: true"):
        voter.vote([DeviceLayer(torch.from_numpy(good * 6), origin="p.npy")], np.ones((1, 2)))
    # logits may take any finite value
    assert voter.vote([DeviceLayer(torch.from_numpy(good * 60), logits=True)], np.ones((1, 2)))[0].tolist() == [[0, 36]]


def test_zero_weight_source_is_not_computed():
    import torch

    hi = torch.full((1, 4, 4), 0.9)
    junk = torch.full((1, 4, 4), float("nan"))  # never read: weight 0
    voter = DeviceVoter(np.array([0.5]), 8, 8, "cpu")
    runs = voter.vote([DeviceLayer(hi), DeviceLayer(junk)], np.array([[1.0], [0.0]]))
    assert runs[0].tolist() == [[0, 64]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=40).map(sorted))
def test_rle_text_is_format_rle(points):
    from core.codec import format_rle, rle_text
    from core.runs import normalize

    runs = normalize(np.array(points[: len(points) // 2 * 2], np.int64).reshape(-1, 2))
    assert rle_text(runs) == format_rle(runs)


# ---------------------------------------------------------------- the command
def maps_case(tmp_path):
    """Maps of five dtypes and resolutions, a box source, per-class weights/thresholds."""
    rng = np.random.default_rng(7)
    H, W = 48, 40
    stems = ["img1", "img2", "img3"]
    specs = {
        "f16": (lambda: rng.random((3, 12, 10)).astype(np.float16), {}),
        "u16": (lambda: rng.integers(0, 1001, (3, 24, 20)).astype(np.uint16), {"scale": 1000}),
        "u8": (lambda: rng.integers(0, 256, (3, 16, 8)).astype(np.uint8), {"scale": 255}),
        "logit": (lambda: rng.normal(0, 2, (3, 48, 40)).astype(np.float32), {"logits": True}),
        "crop": (lambda: rng.random((3, 7, 9)).astype(np.float64), {"boxes": str(tmp_path / "boxes.csv")}),
    }
    (tmp_path / "boxes.csv").write_text("image_name,x0,y0,x1,y1\nimg1.png,-4,30,20,60\nsub/img2.png,25,-3,50,10\n")
    arrays = {}
    for name, (make, _) in specs.items():
        for stem in stems:
            arrays[name, stem] = make()
            save_map(tmp_path / name, stem, arrays[name, stem], npz=(name == "u16"))
    cfg = {
        "CLASSES": list(CLASSES),
        "height": H,
        "width": W,
        "threshold": {"default": 0.5, "c": 0.35},
        "weights": {"default": {"f16": 1, "u16": 2, "u8": 0.5, "logit": 1, "crop": 1.5}, "b": {"logit": 0}},
        "prob_maps": [{"path": str(tmp_path / n), **extra} for n, (_, extra) in specs.items()],
        "missing": "skip",
        "num_workers": 2,
        "device": DEVICE,
    }
    cfg["prob_maps"][0]["weight"] = {"default": 1, "a": 3}
    boxes = {"img1": (30, -4, 60, 20), "img2": (-3, 25, 10, 50)}
    refs = []
    for stem in stems:  # img3 has no box: the crop source is skipped for it
        names = [n for n in specs if n != "crop" or stem in boxes]
        probs = [
            ref_layer(
                arrays[n, stem],
                specs[n][1].get("logits", False),
                specs[n][1].get("scale"),
                boxes.get(stem) if n == "crop" else None,
                H,
                W,
                DEVICE,
            )
            for n in names
        ]
        wmat = {"f16": [3, 1, 1], "u16": [2, 2, 2], "u8": [0.5] * 3, "logit": [1, 0, 1], "crop": [1.5, 1.5, 1.5]}
        refs.append(ref_vote(probs, np.array([wmat[n] for n in names]), np.array([0.5, 0.5, 0.35])))
    return cfg, refs, (H, W)


def test_maps_both_engines_against_the_dense_reference(tmp_path):
    """Per-class weights and thresholds, map weights, five dtypes, npz and npy, a box
    source, a missing box (missing: skip): the device engine equals the reference, the
    numba engine equals it outside the rounding band."""
    cfg, refs, (H, W) = maps_case(tmp_path)
    outs = {}
    for engine in ("device", "cpu"):
        out = tmp_path / f"{engine}.csv"
        res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "--engine", engine)
        assert res.exit_code == 0, res.output
        assert (f"torch on {DEVICE}" if engine == "device" else "numba on the CPU") in res.output
        assert "source crop had no map for 1 image" in res.output
        outs[engine] = read_predictions(out, CLASSES, H, W)
    for i, (mean, expected) in enumerate(refs):
        got = masks_of([outs["device"].runs(i, c) for c in range(3)], H, W)
        np.testing.assert_array_equal(got, expected)
        assert_matches([outs["cpu"].runs(i, c) for c in range(3)], mean, expected, [0.5, 0.5, 0.35])
    assert outs["device"].areas.sum() > 0


def test_class_chunk_and_workers_do_not_change_bytes(tmp_path):
    cfg, _, _ = maps_case(tmp_path)
    texts = set()
    for chunk, workers in [(1, 1), (2, 3), (29, 2)]:
        out = tmp_path / f"{chunk}-{workers}.csv"
        res = run_cli(
            "soft",
            "--setting",
            write_settings(tmp_path / "s.yaml", {**cfg, "class_chunk": chunk}),
            "-o",
            out,
            "--engine",
            "device",
            "--workers",
            workers,
            "--quiet",
        )
        assert res.exit_code == 0, res.output
        texts.add(out.read_text())
    assert len(texts) == 1


def test_inline_postprocess_and_source_repointing(tmp_path):
    cfg, _, (H, W) = maps_case(tmp_path)
    plain, cleaned = tmp_path / "plain.csv", tmp_path / "cleaned.csv"
    (tmp_path / "f16b").mkdir()
    for p in (tmp_path / "f16").iterdir():  # same maps under another folder: --source re-points
        (tmp_path / "f16b" / p.name).write_bytes(p.read_bytes())
    res = run_cli(
        "soft",
        "--setting",
        write_settings(tmp_path / "s.yaml", cfg),
        "-o",
        plain,
        "--engine",
        "device",
        "--source",
        f"f16={tmp_path / 'f16b'}",
        "-q",
    )
    assert res.exit_code == 0, res.output
    pp = {"default": {"keep_largest": 1, "fill_holes": True}}
    res = run_cli(
        "soft",
        "--setting",
        write_settings(tmp_path / "s.yaml", {**cfg, "postprocess": pp}),
        "-o",
        cleaned,
        "--engine",
        "device",
        "-q",
    )
    assert res.exit_code == 0, res.output
    again = tmp_path / "again.csv"
    res = run_cli(
        "postprocess",
        plain,
        "-o",
        again,
        "--keep-largest",
        "1",
        "--fill-holes",
        "--classes",
        "a,b,c",
        "--height",
        H,
        "--width",
        W,
        "-q",
    )
    assert res.exit_code == 0, res.output
    assert cleaned.read_text() == again.read_text()
    assert plain.read_text() != cleaned.read_text()


def test_bad_map_is_one_line_and_nothing_written(tmp_path):
    cfg, _, _ = maps_case(tmp_path)
    a = np.load(tmp_path / "f16" / "img2.npy")
    a[1, 3, 4] = 1.5
    np.save(tmp_path / "f16" / "img2.npy", a)
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "--engine", "device")
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'f16' / 'img2.npy'}: class #2: NaN or a value outside [0, 1]" in res.output
    assert "Traceback" not in res.output and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("tta", [False, True])
def test_models_device_engine_is_the_dense_reference(tmp_path, tta):
    import torch

    root = tmp_path / "train_code"
    name = make_helper(root)
    mod = import_helper(root, name)
    H, W = 40, 36
    images = make_images(tmp_path / "DCM", (H, W))
    torch.jit.save(torch.jit.trace(mod.TinyNet(3, stride=1, seed=1), torch.rand(1, 3, 16, 16)), tmp_path / "ts.pt")
    torch.save(mod.TinyNet(3, stride=2, as_dict=True, seed=2), tmp_path / "pd.pt")
    forget_helper(name)
    rng = np.random.default_rng(0)
    order = sorted(images, key=lambda q: str(q.relative_to(tmp_path / "DCM")))
    maps = {}
    for i, p in enumerate(order):
        maps[i] = rng.random((3, 10, 9)).astype(np.float16)
        save_map(tmp_path / "maps", p.stem, maps[i])
    cfg = {
        "image_root": str(tmp_path / "DCM"),
        "root_path": str(root),
        "CLASSES": list(CLASSES),
        "batch_size": 1,
        "num_workers": 2,
        "threshold": 0.5,
        "device": "cpu",
        "engine": "device",
        "model_paths": {16: [str(tmp_path / "ts.pt")], 24: [str(tmp_path / "pd.pt")]},
        "height": H,
        "width": W,
        "prob_maps": [{"path": str(tmp_path / "maps")}],
        "tta": ["hflip"] if tta else [],
        "weights": {"default": {"ts": 1, "pd": 2, "maps": 0.5}, "b": {"ts": 0}},
    }
    out = tmp_path / "sub.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out)
    assert res.exit_code == 0, res.output
    assert "torch on cpu" in res.output
    pred = read_predictions(out, CLASSES, H, W)
    assert pred.images == [p.name for p in order]
    mod = import_helper(root, name)
    loaded = [torch.jit.load(tmp_path / "ts.pt"), torch.load(tmp_path / "pd.pt", weights_only=False)]
    forget_helper(name)
    for m in loaded:
        m.eval()
    extra = {i: [ref_layer(maps[i], False, None, None, H, W)] for i in maps}
    wmat = np.array([[1, 0, 1], [2, 2, 2], [0.5, 0.5, 0.5]])  # ts, pd, maps × classes a, b, c
    refs = ref_models(order, loaded, {loaded[0]: 16, loaded[1]: 24}, tta, H, W, extra, wmat)
    assert pred.areas.sum() > 0
    for i, (_, expected) in enumerate(refs):
        np.testing.assert_array_equal(masks_of([pred.runs(i, c) for c in range(3)], H, W), expected)
    # batches of 2 and more threads: the same bytes
    res = run_cli(
        "soft",
        "--setting",
        write_settings(tmp_path / "s.yaml", {**cfg, "batch_size": 2}),
        "-o",
        tmp_path / "b2.csv",
        "--workers",
        3,
        "-q",
    )
    assert res.exit_code == 0, res.output
    b2 = read_predictions(tmp_path / "b2.csv", CLASSES, H, W)
    for i, (mean, expected) in enumerate(refs):  # batched convolutions may round differently
        assert_matches([b2.runs(i, c) for c in range(3)], mean, expected, [0.5] * 3)


def test_engine_auto_is_numba_on_the_cpu_only(tmp_path):
    cfg, _, _ = maps_case(tmp_path)
    res = run_cli(
        "soft", "--setting", write_settings(tmp_path / "s.yaml", {**cfg, "engine": "auto"}), "-o", tmp_path / "o.csv"
    )
    assert res.exit_code == 0, res.output
    assert ("numba on the CPU" if DEVICE == "cpu" else f"torch on {DEVICE}") in res.output
    res = run_cli(
        "soft", "--setting", write_settings(tmp_path / "s.yaml", {**cfg, "engine": "gpu"}), "-o", tmp_path / "o.csv"
    )
    assert res.exit_code == 2 and "engine" in res.output


def test_out_of_device_memory_is_one_line(tmp_path, monkeypatch):
    import torch

    cfg, _, _ = maps_case(tmp_path)

    def exhausted(self, layers, weights):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 128.00 MiB\nmore detail")

    monkeypatch.setattr(DeviceVoter, "vote", exhausted)
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", write_settings(tmp_path / "s.yaml", cfg), "-o", out, "--engine", "device")
    assert res.exit_code == 2, res.output
    assert "out of memory (CUDA out of memory. Tried to allocate 128.00 MiB); lower class_chunk (now 8)" in res.output
    assert "Traceback" not in res.output and not out.exists()


def test_bad_values_of_a_zero_weight_class_do_not_depend_on_the_chunk():
    import torch

    good = np.full((2, 3, 3), 0.7, np.float32)
    bad = good.copy()
    bad[1, 0, 0] = np.nan  # class 2 of the second layer, whose weight there is 0
    layers = [DeviceLayer(torch.from_numpy(good)), DeviceLayer(torch.from_numpy(bad))]
    w = np.array([[1.0, 1.0], [1.0, 0.0]])
    runs = [DeviceVoter(np.array([0.5, 0.5]), 6, 6, "cpu", chunk).vote(layers, w) for chunk in (1, 2)]
    assert [r.tolist() for r in runs[0]] == [r.tolist() for r in runs[1]] == [[[0, 36]], [[0, 36]]]


def test_source_repointing_cannot_make_a_folder_vote_twice(tmp_path):
    cfg, _, _ = maps_case(tmp_path)
    s = write_settings(tmp_path / "s.yaml", cfg)
    out = tmp_path / "o.csv"
    res = run_cli("soft", "--setting", s, "-o", out, "--source", f"u8={tmp_path / 'f16'}")
    assert res.exit_code == 2 and f"folder {tmp_path / 'f16'} would be read by two map sources" in res.output
    res = run_cli("soft", "--setting", s, "-o", out, "--source", f"nope={tmp_path / 'f16'}")
    assert res.exit_code == 2 and "no prob_maps source 'nope' (map sources: f16, u16, u8, logit, crop)" in res.output
    assert not out.exists()


def test_tf32_off_sets_full_float32_and_keeps_results(tmp_path):
    import torch

    from ensemble.models import set_tf32

    cfg, _, _ = maps_case(tmp_path)
    outs = []
    for tf32 in (True, False):
        out = tmp_path / f"tf32-{tf32}.csv"
        res = run_cli(
            "soft",
            "--setting",
            write_settings(tmp_path / "s.yaml", {**cfg, "tf32": tf32}),
            "-o",
            out,
            "--engine",
            "device",
            "-q",
        )
        assert res.exit_code == 0, res.output
        outs.append(out.read_text())
    assert outs[0] == outs[1]  # maps only: no convolution, nothing changes
    try:
        set_tf32(False)
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        set_tf32(True)
        assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    finally:
        torch.backends.cudnn.conv.fp32_precision = "tf32"  # torch's defaults
        torch.backends.cuda.matmul.fp32_precision = "ieee"


def test_a_job_with_unloaded_models_is_refused(tmp_path):
    from ensemble.soft_plan import SoftJob
    from ensemble.soft_run import run_job

    job = SoftJob(
        classes=CLASSES,
        height=4,
        width=4,
        images=[],
        names=["m"],
        weights=np.ones((1, 3)),
        thresholds=np.full(3, 0.5),
        maps=[],
        model_specs=[(8, "m.pt")],
        engine="cpu",
    )
    with pytest.raises(ValueError, match="load_models"):
        run_job(job, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
