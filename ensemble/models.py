"""Model sources: checkpoints run on the images, as the original soft-voting tool did.

Each image is read as 3 channels in OpenCV's BGR order (``cv2.imread``: grey is repeated,
alpha dropped, 16-bit scaled to 8-bit) and scaled to [0, 1]; it is resized to each model's
input size with ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
(no antialiasing), which is the arithmetic of the original's ``albumentations.Resize``
(``cv2.resize`` with ``INTER_LINEAR``: half-pixel centres, edge clamping). The model's output
(a tensor, or a dict with ``"out"``) is kept as logits at its own resolution; the voting
engine upsamples it to full size and applies the sigmoid (exclusive classes: the model
outputs C + 1 channels, channel 0 the background, and the engine applies a softmax over
channels instead). ``tta: [hflip]`` averages the logits of the image and of its mirror
(mirrored back) before that.

torch is imported inside the functions: it takes seconds to import and map-only runs never
need it.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError, UsageError, quoted
from core.inputs import require_file


def resolve_device(spec: str | None):
    """``torch.device`` from the settings: CUDA when available unless ``spec`` says
    otherwise; a CUDA device that is not there is an error."""
    import torch

    if spec is None or spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise UsageError(f"device: {quoted(spec)} is not a device (cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device: {spec} requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device: {quoted(spec)} is not supported (cpu, cuda, cuda:N)")
    return dev


def set_tf32(allowed: bool) -> None:
    """Let (or forbid) CUDA convolutions and matrix products use TF32 on Ampere and later
    GPUs. torch lets cuDNN convolutions use it by default, so a model's logits on a GPU
    differ from the CPU's in the last bits; forbidding it brings them closer (not equal:
    cuDNN's choice of algorithm still changes the order of additions)."""
    import torch

    precision = "tf32" if allowed else "ieee"
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9
        conv.fp32_precision = precision
        torch.backends.cuda.matmul.fp32_precision = precision
    else:
        torch.backends.cudnn.allow_tf32 = allowed
        torch.backends.cuda.matmul.allow_tf32 = allowed


def is_torchscript(path: Path) -> bool:
    """TorchScript archives carry ``constants.pkl`` and ``code/``; ``torch.save`` files do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") for n in z.namelist())


def load_model(path: str, device, root_path: str | None, warn: Callable[[str], None]):
    """A model in eval mode on ``device``: a TorchScript file, or a whole pickled module
    (``torch.save(model)``) unpickled with ``root_path`` on ``sys.path``."""
    import torch

    p = Path(path)
    require_file(p, UsageError, "model_paths: ")
    if not p.is_file():
        raise UsageError(f"model_paths: {path}: no such file")
    try:
        if is_torchscript(p):
            model = torch.jit.load(str(p), map_location=device)
        else:
            warn(f"note: {path} is a pickled model; unpickling runs code from the file (load only files you trust)")
            if root_path and root_path not in sys.path:
                sys.path.append(root_path)
            model = torch.load(p, map_location=device, weights_only=False)
    except ModuleNotFoundError as e:
        raise UsageError(
            f"{path}: cannot unpickle: module {e.name!r} not found "
            f"(root_path {quoted(root_path)} should point at the training code)"
        ) from None
    except Exception as e:  # unpickling a user's file can fail in any way; say how, in one line
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise InputError(f"{path}: cannot load model ({e.__class__.__name__}: {msg})") from None
    if not isinstance(model, torch.nn.Module):  # TorchScript modules are nn.Modules too
        what = "a state_dict or checkpoint dict" if isinstance(model, dict) else type(model).__name__
        raise UsageError(f"{path}: holds {what}, not a whole model; save it with torch.save(model) or as TorchScript")
    model.eval()
    return model.to(device)


@dataclass
class ModelSource:
    """A loaded checkpoint and the square input size the images are resized to."""

    name: str
    path: str
    size: int
    model: Any


def read_image(path: str | Path) -> np.ndarray:
    """(3, H, W) uint8 BGR, or (1, H, W) for grey images, contiguous: the pixels
    ``cv2.imread(path)`` gives, channels first, grey not yet repeated.

    Kept as bytes until it reaches the device (``to_unit``): a twelfth of the float32 size
    to read, queue and copy for the grey X-rays of this task."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im).astype(np.int64) >> 8  # cv2 keeps the high byte of 16-bit data
                a = np.clip(a, 0, 255).astype(np.uint8)
            elif mode in ("L", "1", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"):
                a = np.array(im.convert("L" if mode in ("L", "1", "LA") else "RGB"))  # writable, for torch
            else:
                raise InputError(f"{path}: unsupported image mode {mode}")
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"{path}: cannot read image ({e.__class__.__name__})") from None
    if a.ndim == 2:
        return np.ascontiguousarray(a[None])
    return np.ascontiguousarray(a[:, :, ::-1].transpose(2, 0, 1))  # RGB -> BGR, channels first


def to_unit(pixels, device):
    """(1, 3, H, W) float32 in [0, 1], contiguous, on ``device`` from ``read_image``'s bytes.

    The divisor is a tensor on the device, not a Python number: CUDA replaces division by a
    host scalar with multiplication by its reciprocal, which rounds differently from the
    ``/ 255`` of the original tool."""
    import torch

    t = torch.from_numpy(pixels).to(device).expand(3, -1, -1)[None]  # grey: the same plane 3 times
    return t.float() / torch.tensor(255.0, dtype=torch.float32, device=device)


def _forward(model, x, path: str, n_classes: int, exclusive: bool = False):
    import torch

    out = model(x)
    if isinstance(out, dict):
        if "out" not in out:
            raise UsageError(f"{path}: model returned a dict without 'out' (keys: {', '.join(map(str, out))})")
        out = out["out"]
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"{path}: model returned {type(out).__name__}; expected a tensor or a dict with 'out'")
    if out.ndim != 4 or out.shape[0] != x.shape[0]:
        raise UsageError(f"{path}: model output of shape {tuple(out.shape)}; expected (batch, classes, h, w)")
    if exclusive and out.shape[1] != n_classes + 1:
        raise UsageError(
            f"{path}: model outputs {out.shape[1]} channels, expected {n_classes + 1} "
            f"(exclusive: channel 0 the background, then {n_classes} classes)"
        )
    if not exclusive and out.shape[1] != n_classes:
        raise UsageError(f"{path}: model outputs {out.shape[1]} channels, expected {n_classes} (one per class)")
    return out


def forward(
    models: Sequence[ModelSource],
    images: Sequence[np.ndarray],
    tta: Sequence[str],
    device,
    n_classes: int,
    exclusive: bool = False,
) -> list:
    """Logits of every model on a batch of images (``read_image`` bytes), left on ``device``:
    ``out[m]`` is (batch, C, h, w) float32 at model ``m``'s output resolution (``exclusive``:
    (batch, C + 1, h, w), channel 0 the background; TTA averages logits either way)."""
    import torch
    import torch.nn.functional as F

    out = []
    with torch.inference_mode():
        full = [to_unit(im, device) for im in images]
        resized: dict[int, Any] = {}
        for ms in models:
            if ms.size not in resized:
                resized[ms.size] = torch.cat(
                    [
                        t
                        if t.shape[-2:] == (ms.size, ms.size)
                        else F.interpolate(t, size=(ms.size, ms.size), mode="bilinear", align_corners=False)
                        for t in full
                    ]
                )
            x = resized[ms.size]
            logits = _forward(ms.model, x, ms.path, n_classes, exclusive)
            if "hflip" in tta:
                flipped = _forward(ms.model, x.flip(-1), ms.path, n_classes, exclusive).flip(-1)
                logits = (logits + flipped) / 2
            out.append(logits.float())
    return out


def infer(
    models: Sequence[ModelSource],
    images: Sequence[np.ndarray],
    tta: Sequence[str],
    device,
    n_classes: int,
    exclusive: bool = False,
) -> list[list[np.ndarray]]:
    """``forward``'s logits on the host: ``out[i][m]`` is (C, h, w) float32 for image ``i``
    and model ``m`` (the numba engine's input; ``exclusive``: C + 1 channels)."""
    arrays = [lg.cpu().numpy() for lg in forward(models, images, tta, device, n_classes, exclusive)]
    return [[a[i] for a in arrays] for i in range(len(images))]
