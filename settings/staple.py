"""Settings of the ``staple`` command (``quality.staple``): the sources, the two outputs and the
parameters of STAPLE or SIMPLE; every key optional, flags override them::

    sources: {unet: test/unet.csv, hrnet: test/hrnet.csv, effnet: test/effnet.csv}
    output: out/staple.csv          # the fused masks
    estimates: out/estimates.csv    # each source's estimates per class
    region: disagreement
    confidence: 0.5
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import ConfigDict, Field

from core.classes import CANVAS
from core.limits import MAX_SIDE
from settings.layout import LayoutKeys
from settings.loader import ClassName, OutputPath

MAX_ITERATIONS = 10_000
"""The most EM iterations (or SIMPLE rounds) a settings file may ask for."""


class StapleSettings(LayoutKeys):
    """What a ``staple --setting`` file may say (see ``quality.staple.staple`` for each
    parameter). ``sources``: ``{name: path}`` or a list of paths (named by file stem)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sources: Union[dict[str, str], list[str]] = Field(default_factory=dict)
    output: OutputPath | None = None
    estimates: OutputPath | None = None
    method: Literal["staple", "simple"] = "staple"
    scope: Literal["pooled", "image"] = "pooled"
    region: Literal["all", "disagreement"] = "all"
    prior: Literal["fixed", "estimate"] = "fixed"
    confidence: float = Field(default=0.5, ge=0, le=1)
    init_sensitivity: float = Field(default=0.99, gt=0, lt=1)
    init_specificity: float = Field(default=0.99, gt=0, lt=1)
    alpha: float = Field(default=1.0, ge=0, le=1e6)
    max_iter: int = Field(default=100, ge=1, le=MAX_ITERATIONS)
    missing: Literal["error", "empty"] = "error"
    classes: list[ClassName] | None = None
    height: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    width: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
