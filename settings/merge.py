"""Settings of ``merge``: the parts to combine and how overlaps and gaps are treated."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from core.classes import CANVAS
from core.limits import MAX_SIDE
from settings.layout import WriteKeys
from settings.loader import ClassName, OutputPath
from settings.postprocess import PostprocessSection


class MergeSettings(WriteKeys):
    """What a ``merge`` settings file may say (unknown keys are an error); flags override it,
    and positional PART files replace ``parts``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    parts: list[str] = Field(default_factory=list)
    output: OutputPath | None = None
    prefer: Literal["first", "last"] = "first"
    strict: bool = False
    classes: list[ClassName] | None = None
    height: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    width: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    postprocess: PostprocessSection | None = None
    overlaps: Literal["error", "first"] | None = (
        None  # exclusive classes: an overlap is an error, or the first class keeps it
    )
