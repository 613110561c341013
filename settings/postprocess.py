"""Settings of the cleaning step: a ``default`` entry plus per-class overrides, resolved
into one ``Rules`` per class (``postprocess.build_cleaner`` makes the ``Cleaner``).

The same mapping is the ``postprocess:`` section of every combining command's settings and
the ``--setting`` file of ``postprocess`` (bare, or under a ``postprocess:`` key)::

    default: {keep_largest: 1, fill_holes: true, min_size: 50}
    finger-5: {keep_largest: 2}     # may legitimately split: keep two pieces
    Lunate: {min_area: 300}         # a mask left with fewer pixels is emptied
    Pisiform: {max_hole: 200}       # fill only small holes
    Trapezoid: null                 # no cleaning at all (null or false)

A class entry overrides only the keys it names; the rest come from ``default`` (which
command-line flags override). A class missing from the mapping takes ``default``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt
from pydantic_core import PydanticCustomError

from core.classes import CANVAS
from core.errors import UsageError, did_you_mean, listing, quoted
from core.limits import MAX_COUNT, MAX_SIDE, MAX_WORKERS
from settings.groups import check_groups, keys_per_class
from settings.layout import WriteKeys
from settings.loader import ClassName


class Rules(BaseModel):
    """What to do to one class's masks, in this order (defaults: nothing): opening and closing
    by a disk of radius ``open`` / ``close``, dropping components of fewer than ``min_size``
    pixels, keeping the ``keep_largest`` largest, filling holes (with ``max_hole``: only holes
    of at most that many pixels); components are ``connectivity``-connected. Last, a decision
    on the whole mask: ``min_area`` empties a mask left with fewer pixels (a presence gate: a
    class whose small masks are mostly false positives).

    One entry of a ``postprocess:`` section (``default`` or a class), every key optional;
    frozen and hashable, as the cleaning uses it.

    >>> Rules(keep_largest=1, fill_holes=True).describe()
    'keep 1, fill'
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    open: StrictInt = Field(default=0, ge=0, le=MAX_COUNT, description="opening by a disk of this radius (0: off)")
    close: StrictInt = Field(default=0, ge=0, le=MAX_COUNT, description="closing by a disk of this radius (0: off)")
    min_size: StrictInt = Field(default=0, ge=0, le=MAX_COUNT, description="drop components with fewer pixels")
    keep_largest: StrictInt = Field(default=0, ge=0, le=MAX_COUNT, description="keep the k largest components (0: all)")
    fill_holes: StrictBool = False
    max_hole: StrictInt | None = Field(default=None, ge=1, le=MAX_COUNT, description="fill only holes up to this size")
    connectivity: Literal[4, 8] = 8
    min_area: StrictInt = Field(
        default=0, ge=0, le=MAX_COUNT, description="empty a mask left with fewer pixels (after the other steps)"
    )

    @property
    def active(self) -> bool:
        """Whether these rules can change a mask."""
        return bool(
            self.open or self.close or self.min_size > 1 or self.keep_largest or self.fill_holes or self.min_area > 1
        )

    def describe(self) -> str:
        """Short human form, e.g. ``open 2, keep 1, fill<=50, conn 4``."""
        parts = []
        if self.open:
            parts.append(f"open {self.open}")
        if self.close:
            parts.append(f"close {self.close}")
        if self.min_size > 1:
            parts.append(f"min {self.min_size}")
        if self.keep_largest:
            parts.append(f"keep {self.keep_largest}")
        if self.fill_holes:
            parts.append("fill" if self.max_hole is None else f"fill<={self.max_hole}")
        if parts and self.connectivity == 4:
            parts.append("conn 4")
        if self.min_area > 1:
            parts.append(f"min area {self.min_area}")
        return ", ".join(parts) or "-"


def _false_is_none(v: Any) -> Any:
    return None if v is False else v


RULE_KEYS = tuple(Rules.model_fields)


def _no_rules_at_top(v: Any) -> Any:
    # A common slip: rules written straight into the section instead of under 'default:'.
    for key in v if isinstance(v, dict) else ():
        if key in RULE_KEYS:
            raise PydanticCustomError("rule_at_top", "'{key}' must sit under 'default:' or a class name", {"key": key})
    return v


ClassEntry = Annotated[Rules | None, BeforeValidator(_false_is_none)]
PostprocessSection = Annotated[dict[str, ClassEntry], BeforeValidator(_no_rules_at_top)]
"""The ``postprocess:`` mapping: ``default`` and class names → options (null/false: none)."""


class PostprocessFile(WriteKeys):
    """A ``postprocess --setting`` file in its long form (the bare form is just the section)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    postprocess: PostprocessSection = Field(default_factory=dict)
    classes: list[ClassName] | None = None
    height: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    width: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    output: str | None = None
    scheduler: str | None = None  # Dask: tcp://HOST:PORT or local:N (cluster/)
    chunk: int | None = Field(default=None, ge=1, le=MAX_COUNT)  # images per cluster task


def resolve_rules(
    section: PostprocessSection | None,
    classes: Sequence[str],
    where: str,
    flags: dict[str, Any] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> list[Rules | None]:
    """One ``Rules`` (or ``None``: leave alone) per class. ``flags`` (non-None values)
    override the ``default`` entry's keys; class entries still win for keys they name.
    With ``groups`` (the settings file's ``groups:``), a key may name a group: its entry
    applies to the group's classes, a class's own entry beating its group's, a group's
    beating ``default``."""
    section = dict(section or {})
    groups = groups or {}
    check_groups(groups, classes, where)
    for key in section:
        if key == "default" or key in classes or key in groups:
            continue
        also = f"; groups: {listing(groups)}" if groups else ""
        raise UsageError(
            f"{where}: postprocess: unknown class {quoted(key)} ({did_you_mean(key, ['default', *classes, *groups])}"
            f"expected 'default' or one of {len(classes)} classes: {listing(classes, 3)}{also})"
        )
    default = section.get("default") or Rules()
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    if given:
        default = Rules.model_validate({**default.model_dump(exclude_unset=True), **given})
    if default.max_hole is not None and not default.fill_holes:
        origin = "rules" if "max_hole" in given else "postprocess.default"
        raise UsageError(f"{where}: {origin}: max_hole needs fill_holes: true")
    merged = {
        key: _over(default, entry, f"{where}: postprocess.{key}") for key, entry in section.items() if key != "default"
    }
    merged["default"] = default
    keys = keys_per_class(section, classes, groups, where, "postprocess", "rules", lambda a, b: merged[a] == merged[b])
    return [merged[k] if k is not None else default for k in keys]


def _over(default: Rules, entry: Rules | None, where: str) -> Rules | None:
    """``entry``'s keys over ``default`` (``None``: leave the class alone)."""
    if entry is None:
        return None
    merged = default.model_copy(update={k: getattr(entry, k) for k in entry.model_fields_set})
    if merged.max_hole is not None and not merged.fill_holes and "fill_holes" not in entry.model_fields_set:
        raise UsageError(f"{where}: max_hole needs fill_holes: true")
    return merged
