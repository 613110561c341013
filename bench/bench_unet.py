"""A small U-Net for ``bench/soft_device.py``: real convolutions, skip connections and
bilinear up-sampling, plus a fixed intensity prior so that each class's mask is one bone of
the generated X-rays (bone ``c`` is drawn at grey level ``LEVELS[c]``), as a trained model's
would be, with realistic run counts.

It is a module of its own so that a pickled model (``torch.save(model)``) unpickles with
this folder as ``root_path``, as users' training code does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

BACKGROUND = 12  # grey level outside the bones


def level(c: int) -> int:
    """Grey level of bone ``c`` in the generated images."""
    return 40 + 7 * c


class SmallUNet(nn.Module):
    """3 → ``n_classes`` logits at ``1 / out_stride`` of the input size."""

    def __init__(self, n_classes: int = 29, width: int = 16, out_stride: int = 1, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        w = width
        self.enc1 = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU())
        self.mid = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU())
        self.dec2 = nn.Sequential(nn.Conv2d(6 * w, 2 * w, 3, padding=1), nn.ReLU())
        self.dec1 = nn.Sequential(nn.Conv2d(3 * w, w, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(w if out_stride == 1 else 4 * w, n_classes, 1)
        self.out_stride = out_stride
        self.register_buffer("levels", torch.tensor([level(c) for c in range(n_classes)], dtype=torch.float32))

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        if self.out_stride == 1:
            d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0, mode="bilinear"), e2], 1))
            feat = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="bilinear"), e1], 1))
            grey = x.mean(1, keepdim=True)
        else:  # a 1/4-resolution head on the bottleneck
            feat = m
            grey = F.avg_pool2d(x.mean(1, keepdim=True), 4)
        grey = grey * 255
        edges = (grey - F.avg_pool2d(grey, 3, stride=1, padding=1, count_include_pad=False)).abs()
        prior = 3.0 - (grey - self.levels[None, :, None, None]).abs() - 2.0 * edges  # bone c, not its rim
        return 2.0 * prior + 0.05 * self.head(feat)
