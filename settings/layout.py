"""The settings keys of other tasks' layouts, shared by every command that reads or writes
predictions: ``columns`` (``{image: NAME, class: NAME, rle: NAME}`` or the ``--columns`` text),
``rle_order`` (``row`` or ``column``), ``sizes`` (a CSV of each image's size, or a folder of
the images), ``instances`` (``union``: one row per object read as one mask) and
``exclusive`` (the classes are mutually exclusive); and, for the commands that write
predictions (``hard``, ``weighted``, ``select``, ``merge``, ``postprocess``),
``write_instances`` (one row per connected component of each mask)."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, Field


class LayoutKeys(BaseModel):
    """The layout keys, as a base of a command's settings model."""

    columns: Union[str, dict[Literal["image", "class", "rle"], str], None] = None
    rle_order: Literal["row", "column"] | None = None
    sizes: str | None = Field(default=None, min_length=1)
    instances: Literal["error", "union"] | None = None
    exclusive: bool = False


class WriteKeys(LayoutKeys):
    """The layout keys and ``write_instances``, as a base of a settings model of a command that
    writes predictions."""

    write_instances: bool = False
