"""Settings of ``select`` (one named source per class) and their resolution into per-class
rules, plus writing chosen rules back as a settings file.

A rule names a source for a class, a group of classes, or ``default``. Precedence: a class
named directly, then its group, then ``default``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import ConfigDict, Field

from core.classes import CANVAS, DEFAULT_CLASSES
from core.errors import UsageError, did_you_mean, listing, named_among, quoted, shown
from core.limits import MAX_SIDE
from settings.groups import DEFAULT, check_groups, keys_per_class
from settings.layout import WriteKeys
from settings.loader import ClassName, OutputPath
from settings.postprocess import PostprocessSection

__all__ = ["DEFAULT", "SelectSettings", "check_groups", "class_sources", "rule_table", "rules_to_settings"]


class SelectSettings(WriteKeys):
    """What a ``select`` settings file may say (unknown keys are an error)::

    sources: {ens: out/ensemble.csv, wrist: out/wrist_crop.csv, hr: out/hrnet.csv}
    groups: {wrist: [Trapezium, Trapezoid, Capitate, Hamate, Scaphoid, Lunate, Triquetrum, Pisiform]}
    select: {wrist: wrist, Pisiform: hr, default: ens}
    output: out/selected.csv
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    sources: dict[str, str] = Field(default_factory=dict)
    groups: dict[str, list[ClassName]] = Field(default_factory=dict)
    select: dict[str, str] = Field(default_factory=dict)
    output: OutputPath | None = None
    classes: list[ClassName] | None = None
    height: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    width: int = Field(default=CANVAS, ge=1, le=MAX_SIDE)
    postprocess: PostprocessSection | None = None
    overlaps: Literal["error", "first"] | None = (
        None  # exclusive classes: an overlap is an error, or the first class keeps it
    )


def rule_table(cfg: SelectSettings, sources: Sequence[str], classes: Sequence[str], where: str) -> list[str | None]:
    """The source each class takes under ``cfg.select`` (``None`` where no rule applies).

    Every name is checked: rule keys must be classes, groups or ``default``; rule values
    must be sources; a class reached through two groups that name different sources (and
    not named directly) is ambiguous.
    """
    check_groups(cfg.groups, classes, where)
    known = set(classes)
    for key, src in cfg.select.items():
        if key != DEFAULT and key not in known and key not in cfg.groups:
            groups = f"; groups: {listing(cfg.groups)}" if cfg.groups else ""
            raise UsageError(
                f"{where}: select.{shown(key)}: neither a class nor a group "
                f"({did_you_mean(key, [*classes, *cfg.groups, DEFAULT])}classes: {listing(classes)}{groups})"
            )
        if src not in sources:
            raise UsageError(
                f"{where}: select.{shown(key)}: unknown source {named_among(src, list(sources), 'sources')}"
            )
    keys = keys_per_class(cfg.select, classes, cfg.groups, where, "select", "sources")
    return [cfg.select[k] if k is not None else None for k in keys]


def class_sources(cfg: SelectSettings, sources: Sequence[str], classes: Sequence[str], where: str) -> list[str]:
    """Per-class source names; a class without a rule when there is no ``default`` is an error."""
    rules = rule_table(cfg, sources, classes, where)
    bare = [c for c, r in zip(classes, rules, strict=True) if r is None]
    if bare:
        raise UsageError(
            f"{where}: select: no rule for class {quoted(bare[0])} and no 'default'"
            + (f" ({len(bare):,} classes without a rule)" if len(bare) > 1 else "")
        )
    return rules  # type: ignore[return-value]


def rules_to_settings(
    sources: Mapping[str, str],
    rules: Sequence[str],
    classes: Sequence[str],
    output: str | None = None,
    height: int = CANVAS,
    width: int = CANVAS,
) -> dict:
    """A settings mapping that reproduces ``rules``: the most used source (first listed on a
    tie) becomes ``default``, every other class gets its own rule, in class order."""
    count = Counter(rules)
    order = list(sources)
    default = max(count, key=lambda s: (count[s], -order.index(s)))
    data: dict = {
        "sources": dict(sources),
        "select": {DEFAULT: default, **{c: r for c, r in zip(classes, rules, strict=True) if r != default}},
    }
    if output:
        data["output"] = str(output)
    if tuple(classes) != DEFAULT_CLASSES:
        data["classes"] = list(classes)
    if height != CANVAS:
        data["height"] = height
    if width != CANVAS:
        data["width"] = width
    return data
