"""Soft voting of exclusive classes: maps of C + 1 channels (channel 0 the background), the
channel of the largest weighted mean per pixel (ties: the lower channel).

The reference is the plain dense computation on the CPU: every map resampled with torch's
``F.interpolate`` (as ``soft_reference.ref_layer`` does), through ``torch.softmax`` over
channels when it holds logits, placed into the canvas (0 outside its box), then in numpy
float32 ``acc = Σ w·p`` in layer order, ``acc / Σw`` and ``np.argmax`` (first maximum). The
device engine (torch, on the CPU device here) must equal it pixel for pixel; the numba engine
may differ only where the reference's two best means lie within 1e-5 (float32 rounding in
another order).

``SOFT_TEST_DEVICE=cuda python -m pytest tests/test_soft_exclusive.py`` runs the device
engine on a GPU, its reference resampling there too.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from soft_reference import BAND

from core.codec import decode
from core.errors import InputError
from ensemble import _soft_kernels
from ensemble import soft_image as soft_image_module
from ensemble.soft_image import Layer, vote_image_exclusive
from ensemble.torch_vote import DeviceLayer, ExclusiveDeviceVoter

DEVICE = os.environ.get("SOFT_TEST_DEVICE", "cpu")


# ---------------------------------------------------------------- reference
def ref_canvas(layer: Layer, height: int, width: int, device: str = "cpu"):
    """(K, H, W) float32 of one map on the canvas: resampled, softmax over channels for
    logits (on the box's resampled pixels), 0 outside its box."""
    import torch
    import torch.nn.functional as F

    a = torch.from_numpy(np.asarray(layer.data).astype(np.float32)).to(device)
    if layer.scale is not None:
        a = a / torch.tensor(np.float32(layer.scale), device=device)
    y0, x0, y1, x1 = layer.box if layer.box is not None else (0, 0, height, width)
    up = F.interpolate(a[None], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
    canvas = torch.zeros(a.shape[0], height, width, device=device)
    ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    if ys < ye and xs < xe:
        crop = up[:, ys - y0 : ye - y0, xs - x0 : xe - x0]
        canvas[:, ys:ye, xs:xe] = torch.softmax(crop, 0) if layer.logits else crop
    return canvas.cpu().numpy()


def ref_exclusive(layers, weights, height, width, device="cpu"):
    """``(mean, labels)``: (K, H, W) weighted means and (H, W) labels, 0 the background; the
    maps resampled on ``device`` (the engine's), the rest in numpy (IEEE float32 products,
    sums and quotients are the same on every device)."""
    import torch

    n_ch = layers[0].data.shape[0]
    w = np.asarray(weights, np.float32)
    if w.ndim == 1:
        w = np.repeat(w[:, None], n_ch, 1)
    acc = np.zeros((n_ch, height, width), np.float32)
    for k, layer in enumerate(layers):
        if w[k].any():
            acc = acc + w[k][:, None, None] * ref_canvas(layer, height, width, device)
    mean = acc / torch.from_numpy(w).sum(0).numpy()[:, None, None]
    return mean, np.argmax(mean, 0)


def labels_of(runs, height, width):
    out = np.zeros((height, width), np.int64)
    for c, r in enumerate(runs):
        m = decode(r, (height, width)).astype(bool)
        assert not (out[m] > 0).any(), "classes overlap"
        assert r.dtype == np.int64 and (r[:, 1] > r[:, 0]).all() and (r[1:, 0] > r[:-1, 1]).all()
        out[m] = c + 1
    return out


def assert_near_ties_only(got, expected, mean):
    """Pixels may differ only where the label taken is within BAND of the best mean."""
    diff = got != expected
    if diff.any():
        best = mean.max(0)[diff]
        taken = np.take_along_axis(mean, got[None], 0)[0][diff]
        assert (best - taken).max() < BAND, f"{diff.sum()} pixels differ, by up to {(best - taken).max()}"


def device_vote(layers, weights, height, width):
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
    return ExclusiveDeviceVoter(height, width, DEVICE).vote(dev, weights)


# ---------------------------------------------------------------- inputs
@st.composite
def exclusive_sets(draw):
    """Layers of K = C + 1 channels (1 to 5 classes), of every kind of map, some with boxes,
    some repeated or with equal channels (exact ties); weights per layer or per channel."""
    height = draw(st.integers(1, 30))
    width = draw(st.integers(1, 30))
    if draw(st.booleans()):
        height, width = (1, width) if draw(st.booleans()) else (height, 1)
    n_ch = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = []
    for _ in range(draw(st.integers(1, 6))):
        h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
        kind = draw(st.sampled_from(["softmax", "f16", "f64", "u8", "u16", "logit16", "logit32", "blobs", "ties"]))
        shape = (n_ch, h, w)
        logits, scale = False, None
        if kind == "softmax":  # a real softmax output
            e = np.exp(rng.normal(0, 2, shape))
            data = (e / e.sum(0)).astype(np.float32)
        elif kind == "u8":
            data, scale = rng.integers(0, 256, shape).astype(np.uint8), 255.0
        elif kind == "u16":
            data, scale = rng.integers(0, 1001, shape).astype(np.uint16), 1000.0
        elif kind.startswith("logit"):
            data, logits = rng.normal(0, 3, shape).astype(np.float16 if kind == "logit16" else np.float32), True
        elif kind == "blobs":
            data = np.zeros(shape, np.float32)
            idx = rng.integers(0, [n_ch, h, w], size=(3, 3))
            data[idx[:, 0], idx[:, 1], idx[:, 2]] = rng.uniform(0.5, 1, 3)
        elif kind == "ties":  # few distinct values, channels copied onto others
            data = rng.choice(np.array([0.0, 0.25, 0.5], np.float32), shape)
            data[rng.integers(0, n_ch)] = data[rng.integers(0, n_ch)]
        else:
            data = rng.random(shape).astype(np.float16 if kind == "f16" else np.float64)
        box = None
        if draw(st.booleans()):
            y0 = draw(st.integers(-10, height + 2))
            x0 = draw(st.integers(-10, width + 2))
            box = (y0, x0, y0 + draw(st.integers(1, 40)), x0 + draw(st.integers(1, 40)))
        layers.append(Layer(data, logits=logits, scale=scale, box=box))
        if draw(st.integers(0, 4)) == 0:
            layers.append(layers[-1])  # the same map twice
    values = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.5])
    if draw(st.booleans()):
        weights = np.array(draw(st.lists(values, min_size=len(layers), max_size=len(layers))))
        if not weights.any():
            weights[0] = 1.0
    else:
        weights = np.array(draw(st.lists(values, min_size=len(layers) * n_ch, max_size=len(layers) * n_ch)))
        weights = weights.reshape(len(layers), n_ch)
        weights[0, weights.sum(0) == 0] = 1.0
    return layers, weights, height, width


# ---------------------------------------------------------------- the engines
@settings(max_examples=100, deadline=None)
@given(exclusive_sets())
def test_numba_engine_equals_dense_reference(case):
    layers, weights, height, width = case
    mean, expected = ref_exclusive(layers, weights, height, width)
    got = labels_of(vote_image_exclusive(layers, weights, height, width), height, width)
    assert_near_ties_only(got, expected, mean)


@settings(max_examples=100, deadline=None)
@given(exclusive_sets())
def test_device_engine_equals_dense_reference_exactly(case):
    layers, weights, height, width = case
    _, expected = ref_exclusive(layers, weights, height, width, DEVICE)
    runs = device_vote(layers, weights, height, width)
    assert len(runs) == layers[0].data.shape[0] - 1
    np.testing.assert_array_equal(labels_of(runs, height, width), expected)


@settings(max_examples=40, deadline=None)
@given(exclusive_sets())
def test_numba_and_device_engines_agree(case):
    layers, weights, height, width = case
    mean, _ = ref_exclusive(layers, weights, height, width)
    numba = labels_of(vote_image_exclusive(layers, weights, height, width), height, width)
    device = labels_of(device_vote(layers, weights, height, width), height, width)
    assert_near_ties_only(numba, device, mean)


@pytest.mark.parametrize("engine", ["numba", "device"])
def test_ties_go_to_the_lower_channel(engine):
    vote = vote_image_exclusive if engine == "numba" else device_vote
    rng = np.random.default_rng(0)
    base = rng.random((5, 6)).astype(np.float32)
    same = np.stack([base, base, base])  # three equal channels: all background
    assert [r.tolist() for r in vote([Layer(same)], np.ones(1), 9, 11)] == [[], []]
    two = np.stack([base * 0.5, base, base])  # classes 1 and 2 tie above the background: class 1
    runs = vote([Layer(two)], np.ones(1), 9, 11)
    assert [r.tolist() for r in runs] == [[[0, 99]], []]
    # the same map twice with equal weights: the mean is the map itself, ties kept
    runs2 = vote([Layer(two), Layer(two)], np.ones(2), 9, 11)
    assert [r.tolist() for r in runs2] == [r.tolist() for r in runs]


def test_logits_go_through_a_softmax_over_channels():
    # Logits (0, ln 3, -20): a softmax gives (1/4, 3/4, ~0), a sigmoid would give (1/2, 3/4, ~0).
    # Averaged with probabilities (0.7, 0.3, 0): class 1 wins (0.525 over 0.475) only by the softmax.
    logits = np.zeros((3, 2, 2), np.float32)
    logits[1] = np.log(3)
    logits[2] = -20
    probs = np.zeros((3, 2, 2), np.float32)
    probs[0], probs[1] = 0.7, 0.3
    for vote in (vote_image_exclusive, device_vote):
        assert vote([Layer(logits, logits=True)], np.ones(1), 2, 2)[0].tolist() == [[0, 4]]
        assert vote([Layer(logits, logits=True), Layer(probs)], np.ones(2), 2, 2)[0].tolist() == [[0, 4]]


def test_weight_zero_removes_a_layer_from_a_channel():
    a = np.zeros((3, 2, 2), np.float32)
    a[1] = 0.6
    a[0] = 0.4
    b = np.zeros((3, 2, 2), np.float32)
    b[2] = 1.0
    for vote in (vote_image_exclusive, device_vote):
        assert [r.tolist() for r in vote([Layer(a), Layer(b)], np.ones(2), 2, 2)] == [[], [[0, 4]]]
        w = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # b does not vote for channel 2: its mean is a's 0
        assert [r.tolist() for r in vote([Layer(a), Layer(b)], w, 2, 2)] == [[[0, 4]], []]
        w = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # only b votes for channel 2: its mean is 1
        assert [r.tolist() for r in vote([Layer(a), Layer(b)], w, 2, 2)] == [[], [[0, 4]]]


def test_boxes_add_nothing_outside():
    inside = np.zeros((2, 3, 3), np.float32)
    inside[1] = 1.0
    for vote in (vote_image_exclusive, device_vote):
        runs = vote([Layer(inside, box=(1, 1, 3, 4))], np.ones(1), 4, 5)
        assert runs[0].tolist() == [[6, 9], [11, 14]]


def test_errors():
    good = np.full((3, 2, 2), 0.3, np.float32)
    with pytest.raises(InputError, match=r"m1\.npy: 2 channels, expected 3 \(the background and 2 classes\)"):
        vote_image_exclusive([Layer(good), Layer(good[:2], origin="m1.npy")], np.ones(2), 4, 4)
    with pytest.raises(InputError, match=r"layer #1: 3 channels, expected 5"):
        vote_image_exclusive([Layer(good)], np.ones(1), 4, 4, n_classes=4)
    with pytest.raises(ValueError, match="weights of shape"):
        vote_image_exclusive([Layer(good)], np.ones((1, 2)), 4, 4)
    with pytest.raises(ValueError, match="channel #2: every weight is 0"):
        vote_image_exclusive([Layer(good)], np.array([[1.0, 1.0, 0.0]]), 4, 4)
    with pytest.raises(ValueError, match=">= 0"):
        vote_image_exclusive([Layer(good)], np.array([-1.0]), 4, 4)
    bad = good.copy()
    bad[2, 0, 0] = 1.5
    with pytest.raises(InputError, match=r"b\.npy: channel 2 \(class #2\): value 1\.5 outside \[0, 1\]"):
        vote_image_exclusive([Layer(bad, origin="b.npy")], np.ones(1), 4, 4)
    with pytest.raises(InputError, match=r"b\.npy: channel 2 \(class #2\): NaN or a value outside"):
        _device_bad(bad)
    with pytest.raises(InputError, match=r"source #2: 2 channels, expected 3"):
        device_vote([Layer(good), Layer(good[:2])], np.ones(2), 4, 4)
    with pytest.raises(ValueError, match="every channel needs"):
        device_vote([Layer(good)], np.array([[1.0, 0.0, 1.0]]), 4, 4)


def _device_bad(bad):
    import torch

    ExclusiveDeviceVoter(4, 4, DEVICE).vote([DeviceLayer(torch.from_numpy(bad), origin="b.npy")], np.ones(1))


def test_argmax_kernel_and_its_python_twins_agree(monkeypatch):
    rng = np.random.default_rng(5)
    layers = [
        Layer(rng.random((3, 4, 5)).astype(np.float32)),
        Layer(rng.normal(0, 2, (3, 3, 3)).astype(np.float32), logits=True, box=(-1, 2, 6, 9)),
    ]
    weights = np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 3.0]])
    compiled = vote_image_exclusive(layers, weights, 7, 8)
    monkeypatch.setattr(_soft_kernels, "_hrow", _soft_kernels._hrow.py_func)
    monkeypatch.setattr(_soft_kernels, "_layer_channels", _soft_kernels._layer_channels.py_func)
    monkeypatch.setattr(soft_image_module, "argmax_kernel", _soft_kernels.argmax_kernel.py_func)
    python = vote_image_exclusive(layers, weights, 7, 8)
    assert [r.tolist() for r in python] == [r.tolist() for r in compiled]
    assert any(len(r) for r in compiled)
