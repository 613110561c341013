"""Soft voting on a torch device (a GPU, or the CPU for tests): the dense formula, computed
where the models' outputs already are, with only run boundaries sent back to the host.

For each chunk of classes, every source is upsampled to its rectangle (the canvas, or its
box) with ``F.interpolate(mode="bilinear", align_corners=False)``, passed through
``torch.sigmoid`` when it holds logits, multiplied by its weight and added to an
accumulator in source order; the accumulator is divided by the sum of the weights and
compared with the threshold (strict ``>``). That is the plain dense computation

    mean = (w₀·p₀ + w₁·p₁ + …) / Σ wᵢ;   keep = mean > t

op for op in float32, so on any one device the masks equal a dense reference pixel for
pixel; with equal weights it is the original tool's ``sum / count``. A source outside its
box adds nothing (exactly the ``+ w·0`` of the reference), and a source whose weights are
all 0 for a chunk is not computed at all.

Run boundaries are found on the device: a class mask, flattened row-major and padded with
a background pixel at each end, changes value exactly at the starts and stops of its
canonical runs (runs touching across rows merge by construction), and one ``nonzero`` per
image lists those positions in order. Only these positions cross to the host.

torch is imported by the caller; this module only uses the tensors it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.classes import CLASS_CHUNK
from core.errors import InputError


@dataclass
class DeviceLayer:
    """One source's (C, h, w) map for one image, already on the device (any float dtype,
    or uint8/uint16 with ``scale``). ``box`` is ``(y0, x0, y1, x1)`` as in ``soft.Layer``."""

    data: object  # torch.Tensor
    logits: bool = False
    scale: float | None = None
    box: tuple[int, int, int, int] | None = None
    origin: str = ""


class DeviceVoter:
    """Votes images on one device with fixed thresholds, canvas and class chunk;
    ``transpose``: the runs returned are those of the transposed masks (column-major RLE)."""

    def __init__(
        self,
        thresholds: np.ndarray,
        height: int,
        width: int,
        device,
        chunk: int = CLASS_CHUNK,
        transpose: bool = False,
    ):
        import torch

        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.device = torch.device(device)
        self.height, self.width, self.chunk, self.transpose = height, width, chunk, transpose
        self.thresholds = torch.as_tensor(np.asarray(thresholds, np.float32), device=self.device)

    def vote(self, layers: list[DeviceLayer], weights: np.ndarray) -> list[np.ndarray]:
        """Canonical runs of every class: ``weights`` is (L, C), one row per layer."""
        import torch

        w = np.asarray(weights, np.float32)
        if w.shape != (len(layers), len(self.thresholds)):
            raise ValueError(f"weights of shape {w.shape} for {len(layers)} layers and {len(self.thresholds)} classes")
        wsum = torch.from_numpy(w).sum(0)  # on the host, as a reference computes it
        if not (wsum > 0).all():
            raise ValueError("every class needs a layer with a positive weight")
        checks: list[tuple[int, int, object]] = []
        with torch.inference_mode():
            wd, wsd = torch.from_numpy(w).to(self.device), wsum.to(self.device)
            # Every class's changes go into one buffer and one ``nonzero`` reads them: the
            # host waits for the device once per image, not once per chunk (the value checks
            # are copied after it, when the device is already done).
            edges = torch.empty((w.shape[1], self.height * self.width + 1), dtype=torch.bool, device=self.device)
            for c0 in range(0, w.shape[1], self.chunk):
                c1 = min(c0 + self.chunk, w.shape[1])
                mask = self._chunk_mask(layers, w, wd, wsd, c0, c1, checks)
                _changes(mask.transpose(1, 2) if self.transpose else mask, edges[c0:c1])
            found = edges.nonzero().cpu().numpy()
            bad = torch.cat([flags for _, _, flags in checks]).cpu().numpy() if checks else np.zeros(0, bool)
        if bad.any():
            self._raise_bad(layers, checks, bad)
        return _runs_from_changes(found, w.shape[1])

    def _chunk_mask(self, layers, w, wd, wsum, c0: int, c1: int, checks: list):
        import torch
        import torch.nn.functional as F

        acc = torch.zeros((c1 - c0, self.height, self.width), dtype=torch.float32, device=self.device)
        for k, layer in enumerate(layers):
            if not w[k, c0:c1].any():
                continue
            x = _unit_values(layer, c0, c1, self.device)
            # Only classes the layer votes for are checked, whatever the chunk: as the numba
            # engine, a map's values matter only where its weight does.
            checks.append((k, c0, _bad_classes(x, layer.logits) & (wd[k, c0:c1] > 0)))
            y0, x0, y1, x1 = layer.box if layer.box is not None else (0, 0, self.height, self.width)
            ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y1, self.height), min(x1, self.width)
            if ys >= ye or xs >= xe:
                continue  # the box lies off the canvas: the layer adds 0 everywhere
            up = F.interpolate(x[None], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
            up = up[:, ys - y0 : ye - y0, xs - x0 : xe - x0]
            if layer.logits:
                up.sigmoid_()
            # In place, one op at a time: the same roundings as ``acc + w * p`` written densely.
            up.mul_(wd[k, c0:c1, None, None])
            left_out = np.flatnonzero(w[k, c0:c1] == 0)
            if len(left_out):  # 0 · NaN is NaN: a class the layer does not vote for gets exactly 0
                up[torch.from_numpy(left_out).to(self.device)] = 0
            acc[:, ys:ye, xs:xe] += up
        acc /= wsum[c0:c1, None, None]
        return acc > self.thresholds[c0:c1, None, None]

    def _raise_bad(self, layers, checks, bad) -> None:
        _raise_bad(layers, checks, bad)


class ExclusiveDeviceVoter:
    """Votes images whose classes are mutually exclusive on one device, with a fixed canvas:
    every layer holds C + 1 channels, channel 0 the background, and a pixel takes the channel
    of the largest weighted mean (ties: the lower channel; channel 0 means no class). The
    same formula as ``soft_image.vote_image_exclusive``, computed as the plain dense

        mean = (w₀·p₀ + w₁·p₁ + …) / Σ wᵢ  per channel;   label = argmax over channels

    op for op in float32 (``p`` through ``torch.softmax`` over channels after resampling when
    a layer holds logits), so on any one device the labels equal a dense reference pixel for
    pixel; ``torch.argmax`` returns the first of equal maxima. All channels of an image are
    on the device at once ((C + 1)·H·W floats, and one layer's resampled map); only the run
    boundaries of classes 1 … C come back (``transpose``: those of the transposed labels, for
    column-major RLE).
    """

    def __init__(self, height: int, width: int, device, transpose: bool = False):
        import torch

        self.device = torch.device(device)
        self.height, self.width, self.transpose = height, width, transpose

    def vote(self, layers: list[DeviceLayer], weights: np.ndarray) -> list[np.ndarray]:
        """Canonical runs of classes 1 … C: ``weights`` is (L,) per layer or (L, C + 1) per
        layer and channel, >= 0, with a positive sum for every channel."""
        import torch
        import torch.nn.functional as F

        if not layers:
            raise ValueError("no layers")
        n_ch = int(layers[0].data.shape[0])
        for k, layer in enumerate(layers):
            if int(layer.data.shape[0]) != n_ch:
                raise InputError(
                    f"{layer.origin or f'source #{k + 1}'}: {int(layer.data.shape[0])} channels, expected {n_ch} "
                    "(as the first map)"
                )
        w = np.asarray(weights, np.float32)
        if w.ndim == 1 and w.shape == (len(layers),):
            w = np.repeat(w[:, None], n_ch, 1)
        if w.shape != (len(layers), n_ch):
            raise ValueError(f"weights of shape {w.shape} for {len(layers)} layers of {n_ch} channels")
        if not (np.isfinite(w).all() and (w >= 0).all()):
            raise ValueError("weights must be finite and >= 0")
        wsum = torch.from_numpy(w).sum(0)  # on the host, as a reference computes it
        if not (wsum > 0).all():
            raise ValueError("every channel needs a layer with a positive weight")
        checks: list[tuple[int, int, object]] = []
        h, w_ = self.height, self.width
        with torch.inference_mode():
            wd, wsd = torch.from_numpy(w).to(self.device), wsum.to(self.device)
            acc = torch.zeros((n_ch, h, w_), dtype=torch.float32, device=self.device)
            for k, layer in enumerate(layers):
                if not w[k].any():
                    continue
                x = _unit_values(layer, 0, n_ch, self.device)
                checks.append((k, 0, _bad_classes(x, layer.logits)))
                y0, x0, y1, x1 = layer.box if layer.box is not None else (0, 0, h, w_)
                ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w_)
                if ys >= ye or xs >= xe:
                    continue  # the box lies off the canvas: the layer adds 0 everywhere
                up = F.interpolate(x[None], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
                up = up[:, ys - y0 : ye - y0, xs - x0 : xe - x0]
                if layer.logits:
                    up = torch.softmax(up, 0)
                up.mul_(wd[k, :, None, None])
                left_out = np.flatnonzero(w[k] == 0)
                if len(left_out):  # 0 · NaN is NaN: a channel the layer does not vote for gets exactly 0
                    up[torch.from_numpy(left_out).to(self.device)] = 0
                acc[:, ys:ye, xs:xe] += up
            acc /= wsd[:, None, None]
            label = acc.argmax(0)
            del acc
            if self.transpose:
                label = label.T
            classes = torch.arange(1, n_ch, device=self.device)[:, None, None]
            edges = torch.empty((n_ch - 1, h * w_ + 1), dtype=torch.bool, device=self.device)
            _changes(label[None] == classes, edges)
            found = edges.nonzero().cpu().numpy()
            bad = torch.cat([flags for _, _, flags in checks]).cpu().numpy() if checks else np.zeros(0, bool)
        if bad.any():
            _raise_bad(layers, checks, bad, exclusive=True)
        return _runs_from_changes(found, n_ch - 1)


def _raise_bad(layers, checks, bad, exclusive: bool = False) -> None:
    """Raise ``InputError`` for the first map flagged in ``bad`` (the concatenated flags of
    ``checks``: ``(layer, first class, flags)``); ``exclusive``: channel 0 is the background."""
    from ensemble.soft_image import channel_name

    pos = 0
    for k, c0, flags in checks:
        row = bad[pos : pos + len(flags)]
        pos += len(flags)
        hits = np.flatnonzero(row)
        if len(hits):
            layer, c = layers[k], c0 + int(hits[0])
            what = "NaN in the map" if layer.logits else "NaN or a value outside [0, 1] in the map"
            hint = "" if layer.logits or layer.scale is not None else " (logits need 'logits: true')"
            raise InputError(f"{layer.origin or f'source #{k + 1}'}: {channel_name(c, exclusive)}: {what}{hint}")


def _unit_values(layer: DeviceLayer, c0: int, c1: int, device):
    """Classes ``c0:c1`` of a layer as float32 on the device (quantized maps divided by
    ``scale`` with a device-side divisor: see ``models.to_unit``)."""
    import torch

    x = layer.data[c0:c1].to(device)
    if layer.scale is not None:
        return x.float() / torch.tensor(layer.scale, dtype=torch.float32, device=device)
    return x.float()


def _bad_classes(x, logits: bool):
    """Per class of ``x``: NaN anywhere, or (probabilities) a value outside [0, 1]."""
    import torch

    flat = x.flatten(1)
    if logits:
        return torch.isnan(flat).any(1)
    return ~((flat >= 0) & (flat <= 1)).all(1)


def _changes(mask, out) -> None:
    """Into ``out`` (k, h·w + 1) bool: where each class's mask, flattened row-major and
    padded with a background pixel at each end, changes value; those flat positions are
    its runs' starts and stops (runs touching across rows merge by construction)."""
    import torch

    flat = mask.flatten(1)
    n = flat.shape[1]
    out[:, 0] = flat[:, 0]
    out[:, n] = flat[:, n - 1]
    torch.ne(flat[:, 1:], flat[:, :-1], out=out[:, 1:n])


def _runs_from_changes(found: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """The (n, 2) runs of every class from ``nonzero``'s (class, position) rows, which come
    sorted by class, then position."""
    cuts = np.searchsorted(found[:, 0], np.arange(n_classes + 1))
    return [
        np.ascontiguousarray(found[cuts[c] : cuts[c + 1], 1].reshape(-1, 2), dtype=np.int64) for c in range(n_classes)
    ]
