"""Settings of the ``soft`` command: the original soft-voting settings file, read verbatim,
plus optional extensions (probability-map sources, weights and thresholds per class, flip
TTA, device, missing maps, post-processing).

Original keys (all kept, same meaning): ``image_root``, ``root_path``, ``CLASSES``,
``batch_size``, ``num_workers``, ``threshold``, ``model_paths`` (input size → checkpoints),
``save_dir``, ``output_name``. Unknown keys are an error, so a typo never passes silently.

Other tasks' layouts (``settings.layout.LayoutKeys``): ``columns`` and ``rle_order`` of the
CSV written, ``sizes`` (each image's size, where images differ), ``exclusive`` (maps and
models give C + 1 channels, channel 0 the background; each pixel takes the channel of the
largest weighted mean, so no ``threshold`` applies). ``instances`` concerns CSVs read; the
soft vote reads none and ignores it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.classes import CANVAS, CLASS_CHUNK, DEFAULT_CLASSES, check_classes
from core.errors import UsageError, named_among, quoted
from core.limits import MAX_COUNT, MAX_SIDE, MAX_WORKERS
from core.sources import unique_names
from settings.layout import LayoutKeys
from settings.loader import ClassName, FileName, OutputPath
from settings.postprocess import PostprocessSection
from settings.vote import (
    SourceWeights,
    check_weights,
    class_vector,
    default_weights,
    threshold_vector,
    weight_matrix,
)

ClassWeights = Union[float, dict[str, float]]


class MapEntry(BaseModel):
    """A folder of per-image probability maps ``<stem>.npy`` / ``<stem>.npz``, each (C, h, w).

    ``weight``: a number or ``{default: w, <class>: w}``. ``logits``: the map holds logits
    (the sigmoid is applied after upsampling). ``scale``: uint8/uint16 maps hold
    ``probability * scale``. ``boxes``: a CSV ``image_name,x0,y0,x1,y1``; the map then covers
    only that box (pixels ``x0 <= x < x1``, ``y0 <= y < y1``), is resampled to the box size
    and placed into the canvas, clipped at its edges; it counts as probability 0 elsewhere.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    path: str
    name: str | None = None
    weight: ClassWeights = 1.0
    logits: bool = False
    scale: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    boxes: str | None = None


class SoftSettings(LayoutKeys):
    """What a soft-voting settings file may say (see the module docstring and
    ``settings/soft_maps_example.yaml``)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    # --- the original file's keys ---
    image_root: str | None = None
    root_path: str | None = None
    classes: list[ClassName] | None = Field(default=None, alias="CLASSES")
    batch_size: int = Field(default=1, ge=1, le=4096)
    num_workers: int = Field(default=1, ge=0, le=MAX_WORKERS)
    threshold: Union[float, dict[str, float]] = 0.5
    model_paths: dict[int, list[str] | None] = Field(default_factory=dict)
    save_dir: OutputPath = "."
    output_name: FileName = "output.csv"
    # --- extensions ---
    prob_maps: list[MapEntry] = Field(default_factory=list)
    weights: Union[SourceWeights, dict[str, SourceWeights], None] = None
    tta: list[Literal["hflip"]] = Field(default_factory=list)
    device: str | None = None
    engine: Literal["auto", "cpu", "device"] = "auto"
    class_chunk: int = Field(default=CLASS_CHUNK, ge=1, le=MAX_COUNT)
    tf32: bool = True
    missing: Literal["error", "skip"] = "error"
    postprocess: PostprocessSection | None = None
    height: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    width: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    scheduler: str | None = None  # Dask: tcp://HOST:PORT or local:N (cluster/)
    chunk: int | None = Field(default=None, ge=1, le=MAX_COUNT)  # images per cluster task

    @field_validator("model_paths")
    @classmethod
    def _sizes_positive(cls, v: dict[int, list[str] | None]) -> dict[int, list[str] | None]:
        for size in v:
            if not 1 <= size <= MAX_SIDE:
                raise ValueError(f"input size {size} must be in [1, {MAX_SIDE:,}]")
        return v

    @field_validator("classes")
    @classmethod
    def _classes_unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            check_classes(v, "CLASSES")
        return v

    @field_validator("prob_maps")
    @classmethod
    def _names_unique(cls, v: list[MapEntry]) -> list[MapEntry]:
        named = [m.name for m in v if m.name]
        twice = sorted({n for n in named if named.count(n) > 1})
        if twice:
            raise ValueError(f"two prob_maps sources named {quoted(twice[0])}")
        twice = folder_twice(v)
        if twice:
            raise ValueError(f"folder {twice} listed twice (give it a larger weight instead)")
        return v

    def models(self) -> list[tuple[int, str]]:
        """``(input size, checkpoint path)`` pairs in file order, empty lists skipped."""
        return [(size, p) for size, paths in self.model_paths.items() for p in (paths or [])]

    def class_list(self) -> tuple[str, ...]:
        return tuple(self.classes) if self.classes else DEFAULT_CLASSES

    def output_path(self) -> Path:
        return Path(self.save_dir) / self.output_name


def folder_twice(maps: list[MapEntry]) -> str | None:
    """The first map folder that two sources name (the same resolved path), else None: it
    would vote twice."""
    folders = [str(Path(m.path).resolve()) for m in maps]
    return next((m.path for m, f in zip(maps, folders, strict=True) if folders.count(f) > 1), None)


def repoint(cfg: SoftSettings, name: str, folder: str, where: str, param: str | None = None) -> None:
    """Point the map source ``name`` (its ``name:`` or folder name) at ``folder``, keeping
    the name that ``weights`` refer to; a name the settings lack, or a folder another source
    already reads, is an error."""
    names = soft_source_names(cfg)[len(cfg.models()) :]
    if name not in names:
        raise UsageError(f"{where}: no prob_maps source {named_among(name, names, 'map sources')}", param)
    entry = cfg.prob_maps[names.index(name)]
    entry.name, entry.path = name, folder
    twice = folder_twice(cfg.prob_maps)
    if twice:
        raise UsageError(f"{where}: folder {twice} would be read by two map sources (each would vote)", param)


def source_bases(cfg: SoftSettings) -> list[str]:
    """Each source's own name: checkpoint file stem, then map ``name`` or folder name."""
    bases = [Path(p).stem or "model" for _, p in cfg.models()]
    return bases + [m.name or Path(m.path.rstrip("/\\")).name or "maps" for m in cfg.prob_maps]


def soft_source_names(cfg: SoftSettings) -> list[str]:
    """One name per source (``source_bases`` made unique with ``-2``, ``-3`` …): the names
    ``weights:`` refers to."""
    return unique_names(source_bases(cfg))


def source_weights(cfg: SoftSettings, names: list[str], classes: tuple[str, ...], where: str) -> np.ndarray:
    """(n_sources, n_classes) weights: the top-level ``weights:`` (any form the voting
    commands accept) times each map source's own ``weight:``."""
    w = weight_matrix(cfg.weights, names, classes, where)
    n_models = len(cfg.models())
    for k, m in enumerate(cfg.prob_maps):
        w[n_models + k] *= class_vector(m.weight, classes, 1.0, f"{where}: prob_maps[{k}].weight")
    check_weights(w, where)
    dead = [classes[c] for c in np.flatnonzero(w.sum(0) <= 0)]
    if dead:
        raise UsageError(f"{where}: all weights are 0 for class {dead[0]}")
    return w


def background_weights(cfg: SoftSettings, names: list[str], where: str) -> np.ndarray:
    """(n_sources,) weights of channel 0, the background, where the classes are exclusive:
    each source's default weight (the top-level ``weights:`` default times a map source's own
    ``weight:`` default)."""
    w = default_weights(cfg.weights, names, where)
    n_models = len(cfg.models())
    for k, m in enumerate(cfg.prob_maps):
        w[n_models + k] *= m.weight if isinstance(m.weight, (int, float)) else m.weight.get("default", 1.0)
    check_weights(w[:, None], where)
    if w.sum() <= 0:
        raise UsageError(f"{where}: all weights are 0 for the background (channel 0; exclusive)")
    return w


def thresholds(cfg: SoftSettings, classes: tuple[str, ...], where: str) -> np.ndarray:
    """(n_classes,) thresholds from a number or ``{default:, <class>:}``."""
    return threshold_vector(cfg.threshold, classes, where)
