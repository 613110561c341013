"""The dense torch reference of soft voting and a strategy for its inputs, shared by the
numba engine's tests (test_soft.py) and the device engine's (test_soft_device.py)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from core.codec import decode
from ensemble.soft_image import Layer

BAND = 1e-5


def ref_layer(data, logits, scale, box, height, width, device="cpu"):
    """(C, H, W) float32 probabilities of one map on the canvas, straight from torch."""
    import torch
    import torch.nn.functional as F

    a = torch.from_numpy(np.asarray(data).astype(np.float32)).to(device)
    if scale is not None:  # true division (a host scalar divisor would become a reciprocal on CUDA)
        a = a / torch.tensor(np.float32(scale), device=device)
    y0, x0, y1, x1 = box if box is not None else (0, 0, height, width)
    up = F.interpolate(a[None], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
    if logits:
        up = torch.sigmoid(up)
    canvas = torch.zeros(a.shape[0], height, width, device=device)
    ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y1, height), min(x1, width)
    if ys < ye and xs < xe:
        canvas[:, ys:ye, xs:xe] = up[:, ys - y0 : ye - y0, xs - x0 : xe - x0]
    return canvas


def ref_vote(probs, weights, thresholds):
    """Weighted mean of (C, H, W) tensors, per-class weights (L, C), strict threshold; on the
    probabilities' device, returned to the host."""
    import torch

    device = probs[0].device
    w = torch.from_numpy(np.asarray(weights, np.float32))
    acc = sum(w[k].to(device)[:, None, None] * p for k, p in enumerate(probs))
    mean = acc / w.sum(0).to(device)[:, None, None]
    keep = mean > torch.from_numpy(np.asarray(thresholds, np.float32)).to(device)[:, None, None]
    return mean.cpu().numpy(), keep.cpu().numpy()


def assert_matches(runs_per_class, mean, expected, thresholds):
    h, w = mean.shape[1:]
    for c, runs in enumerate(runs_per_class):
        got = decode(runs, (h, w)).astype(bool)
        diff = got != expected[c]
        if diff.any():
            worst = np.abs(mean[c][diff] - np.float32(thresholds[c])).max()
            assert worst < BAND, f"class {c}: {diff.sum()} pixels differ, |mean - thr| up to {worst}"


@st.composite
def layer_sets(draw):
    height = draw(st.integers(1, 40))
    width = draw(st.integers(1, 40))
    n_classes = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        kind = draw(st.sampled_from(["f16", "f32", "f64", "u8", "u16", "logit16", "logit32", "blobs"]))
        shape = (n_classes, h, w)
        logits, scale = False, None
        if kind == "u8":
            data, scale = rng.integers(0, 256, shape).astype(np.uint8), 255.0
        elif kind == "u16":
            data, scale = rng.integers(0, 1001, shape).astype(np.uint16), 1000.0
        elif kind.startswith("logit"):
            data, logits = rng.normal(0, 3, shape).astype(np.float16 if kind == "logit16" else np.float32), True
        elif kind == "blobs":  # mostly zero with a few confident pixels, like real maps
            data = np.zeros(shape, np.float32)
            idx = rng.integers(0, [n_classes, h, w], size=(3, 3))
            data[idx[:, 0], idx[:, 1], idx[:, 2]] = rng.uniform(0.5, 1, 3)
        else:
            data = rng.random(shape).astype({"f16": np.float16, "f32": np.float32, "f64": np.float64}[kind])
        box = None
        if draw(st.booleans()):
            y0 = draw(st.integers(-15, height + 2))
            x0 = draw(st.integers(-15, width + 2))
            box = (y0, x0, y0 + draw(st.integers(1, 50)), x0 + draw(st.integers(1, 50)))
        layers.append(Layer(data, logits=logits, scale=scale, box=box))
    weights = np.array(
        draw(
            st.lists(
                st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.5]), min_size=n_classes, max_size=n_classes),
                min_size=len(layers),
                max_size=len(layers),
            )
        )
    )
    weights[0, weights.sum(0) == 0] = 1.0
    thresholds = np.array(
        draw(st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.5, 0.7, 0.9]), min_size=n_classes, max_size=n_classes))
    )
    return layers, weights, thresholds, height, width
