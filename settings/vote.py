"""Settings of the voting commands (``hard``, ``weighted``) and their resolution into a
weight matrix (sources × classes) and a threshold vector (classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Union

import numpy as np
from pydantic import ConfigDict, Field

from core.classes import CANVAS
from core.errors import UsageError, as_name, did_you_mean, listing, named_among, plural, quoted, shown
from core.limits import MAX_COUNT, MAX_SIDE, MAX_WORKERS
from settings.layout import WriteKeys
from settings.loader import ClassName, OutputPath
from settings.postprocess import PostprocessSection

SourceWeights = Union[list[float], dict[str, float]]
# Weights are relative; a bound keeps their sums finite (1e308 weights summed to inf and
# silently emptied every mask) and far from float64 rounding trouble.
MAX_WEIGHT = 1e6


class VoteSettings(WriteKeys):
    """What a voting settings file may say; every key is optional. A flag replaces a key's
    value, or only its ``default`` where the key is per class (``with_default_weights``,
    ``with_default_threshold``).

    ``weights``: a list (source order), a ``{source: weight}`` mapping, or per class
    ``{default: …, <class>: …}`` where each value is a list or a (partial) mapping.
    ``threshold``: a number or ``{default: 0.5, <class>: …}``.
    ``postprocess``: cleaning applied to every voted mask (``settings.postprocess``).
    ``staple``: classes fused by pooled STAPLE over the whole input set instead of the vote,
    ``{<class>: all | disagreement}`` (the region; ``default:`` for every class, ``vote``
    to keep a class voted); their weights and threshold are not used.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    sources: Union[dict[str, str], list[str]] = Field(default_factory=dict)
    weights: Union[SourceWeights, dict[str, SourceWeights], None] = None
    threshold: Union[float, dict[str, float]] = 0.5
    min_votes: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    missing: Literal["error", "empty"] = "error"
    classes: list[ClassName] | None = None
    height: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    width: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    output: OutputPath | None = None
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    scheduler: str | None = None  # Dask: tcp://HOST:PORT or local:N (cluster/)
    chunk: int | None = Field(default=None, ge=1, le=MAX_COUNT)  # images per cluster task
    postprocess: PostprocessSection | None = None
    staple: dict[ClassName, Literal["all", "disagreement", "vote"]] | None = None


def _row(spec: SourceWeights, names: list[str], base: np.ndarray, where: str) -> np.ndarray:
    out = base.copy()
    if isinstance(spec, list):
        if len(spec) != len(names):
            raise UsageError(
                f"{where}: {plural(len(spec), 'weight')} for {plural(len(names), 'source')} ({listing(names)})"
            )
        out[:] = spec
    else:
        for k, v in spec.items():
            if k not in names:
                raise UsageError(f"{where}: unknown source {named_among(k, names, 'sources')}")
            out[names.index(k)] = v
    return out


def _per_class(weights) -> bool:
    """Whether ``weights`` is the per-class form ``{default: …, <class>: …}`` (values are
    lists or mappings) rather than one list or ``{source: weight}`` for every class."""
    return isinstance(weights, dict) and any(isinstance(v, (dict, list)) for v in weights.values())


def with_default_weights(weights, default: list[float] | None):
    """``weights`` with ``default`` in place of its default and its per-class entries kept
    (what a ``--weights`` flag does); without per-class entries, ``default`` replaces it
    whole. ``default=None`` changes nothing."""
    if default is None:
        return weights
    return {**weights, "default": default} if _per_class(weights) else default


def with_default_threshold(threshold, default: float | None):
    """``threshold`` with ``default`` in place of its default and its per-class entries kept
    (what a ``--threshold`` flag does); a single number is replaced."""
    if default is None:
        return threshold
    return {**threshold, "default": default} if isinstance(threshold, dict) else default


def default_weights(weights, names: list[str], where: str) -> np.ndarray:
    """(n_sources,) the weights of a class that has no entry of its own."""
    ones = np.ones(len(names))
    if weights is None:
        return ones
    if not _per_class(weights):
        return _row(weights, names, ones, f"{where}: weights")
    if "default" in weights:
        return _row(weights["default"], names, ones, f"{where}: weights.default")
    return ones


def default_threshold(threshold) -> float:
    """The threshold of a class that has no entry of its own."""
    return float(threshold.get("default", 0.5)) if isinstance(threshold, dict) else float(threshold)


def weight_matrix(weights, names: list[str], classes: tuple[str, ...], where: str) -> np.ndarray:
    """(n_sources, n_classes) float64 weights from any accepted ``weights`` form."""
    if _per_class(weights):
        neither = [k for k in weights if k != "default" and k not in classes and k not in names]
        if neither:
            raise UsageError(
                f"{where}: weights: {quoted(neither[0])} is neither a source nor a class "
                f"({did_you_mean(neither[0], [*names, *classes, 'default'])}sources: {listing(names)})"
            )
        as_source = [k for k in weights if k != "default" and k not in classes]
        if as_source:
            raise UsageError(
                f"{where}: weights: mixes sources ({quoted(as_source[0])}) and classes; per class, "
                f"give {{default: {{{shown(as_source[0])}: w, …}}, <class>: {{…}}}}"
            )
    default = default_weights(weights, names, where)
    w = np.repeat(default[:, None], len(classes), axis=1)
    if _per_class(weights):
        for c, cls in enumerate(classes):
            if cls in weights:
                w[:, c] = _row(weights[cls], names, default, f"{where}: weights.{shown(cls)}")
    check_weights(w, where)
    dead = [classes[c] for c in np.flatnonzero(w.sum(0) <= 0)]
    if dead:
        raise UsageError(f"{where}: all weights are 0 for class {shown(dead[0])}")
    return w


def class_overrides(
    weights: np.ndarray,
    thresholds: np.ndarray,
    default_w: np.ndarray,
    default_t: float,
    names: list[str],
    classes: tuple[str, ...],
) -> list[str]:
    """One line per class whose weights or threshold differ from the defaults, naming the
    values used (``Pisiform: weights unet 1, hrnet 0; threshold 0.4``)."""
    lines = []
    for c, cls in enumerate(classes):
        said = []
        if not np.array_equal(weights[:, c], default_w):
            said.append(f"weights {weight_listing(names, weights[:, c])}")
        if thresholds[c] != default_t:
            said.append(f"threshold {thresholds[c]:g}")
        if said:
            lines.append(f"{as_name(cls)}: {'; '.join(said)}")
    return lines


def weight_listing(names: Sequence[str], weights: np.ndarray) -> str:
    """``unet=1, hrnet=0.5``: the weight of each source, by name.

    >>> weight_listing(["unet", "2"], np.array([1.0, 0.5]))
    'unet=1, 2=0.5'
    """
    return ", ".join(f"{shown(n)}={x:g}" for n, x in zip(names, weights, strict=True))


def check_weights(w: np.ndarray, where: str) -> None:
    """Weights must be numbers in [0, MAX_WEIGHT]."""
    if not ((w >= 0) & (w <= MAX_WEIGHT)).all():
        raise UsageError(f"{where}: weights must be numbers in [0, {MAX_WEIGHT:g}]")


def class_vector(spec, classes: tuple[str, ...], default: float, where: str) -> np.ndarray:
    """(n_classes,) float64 from one number, or ``{default: x, <class>: y, …}`` (``default``
    when the mapping has none): the one "default + per-class" reading of the settings."""
    if isinstance(spec, (int, float)):
        return np.full(len(classes), float(spec))
    unknown = [k for k in spec if k != "default" and k not in classes]
    if unknown:
        raise UsageError(
            f"{where}: unknown class {quoted(unknown[0])} ({did_you_mean(unknown[0], ['default', *classes])}"
            f"expected 'default' or one of {len(classes)} classes: {listing(classes, 3)})"
        )
    row = np.full(len(classes), float(spec.get("default", default)))
    for c, name in enumerate(classes):
        if name in spec:
            row[c] = spec[name]
    return row


def threshold_vector(threshold, classes: tuple[str, ...], where: str) -> np.ndarray:
    """(n_classes,) thresholds from a number or ``{default:, <class>:}``."""
    t = class_vector(threshold, classes, 0.5, f"{where}: threshold")
    if ((t < 0) | (t >= 1) | ~np.isfinite(t)).any():
        raise UsageError(f"{where}: thresholds must lie in [0, 1)")
    return t


def staple_regions(spec: dict[str, str] | None, classes: tuple[str, ...], where: str) -> list[str | None]:
    """Per class, the STAPLE region of the ``staple:`` section (a class's own entry, else
    ``default``), or ``None`` for a class that is voted."""
    spec = spec or {}
    unknown = [k for k in spec if k != "default" and k not in classes]
    if unknown:
        raise UsageError(f"{where}: staple: unknown class {unknown[0]!r}")
    regions = [spec.get(c, spec.get("default", "vote")) for c in classes]
    return [None if r == "vote" else r for r in regions]
