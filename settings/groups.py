"""Groups of classes (``groups: {wrist: [Trapezium, …]}``) and the precedence every per-class
section of a settings file follows: a class named directly, then a group holding it, then
``default``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from core.errors import UsageError, named_among, quoted, shown

DEFAULT = "default"


def check_groups(groups: Mapping[str, Sequence[str]], classes: Sequence[str], where: str) -> None:
    """Group names must not be ``default`` or a class; members must be known classes."""
    known = set(classes)
    for name, members in groups.items():
        at = f"{where}: groups.{shown(name)}"
        if name == DEFAULT:
            raise UsageError(f"{at}: 'default' is reserved for the default rule")
        if name in known:
            raise UsageError(f"{at}: group name collides with the class {quoted(name)}")
        if not members:
            raise UsageError(f"{at}: empty group")
        for m in members:
            if m not in known:
                raise UsageError(f"{at}: unknown class {named_among(m, list(classes), 'classes')}")


def keys_per_class(
    section: Mapping[str, object],
    classes: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    where: str,
    label: str,
    what: str,
    same: Callable[[str, str], bool] | None = None,
) -> list[str | None]:
    """For each class, the key of ``section`` whose entry applies: the class itself, else
    the group holding it, else ``default`` (``None`` when the section has none).

    The keys must already be known names. A class reached through several groups whose
    entries differ (``same(key_a, key_b)`` false; by default the entries compare unequal)
    and not named directly is ambiguous: a ``UsageError`` naming ``label`` and ``what``
    differs (``sources``, ``rules``).
    """
    same = same or (lambda a, b: section[a] == section[b])
    by_class: dict[str, list[str]] = {}
    for g, members in groups.items():
        if g in section:
            for m in dict.fromkeys(members):
                by_class.setdefault(m, []).append(g)
    out: list[str | None] = []
    for c in classes:
        if c in section:
            out.append(c)
        elif c in by_class:
            picks = by_class[c]
            if not all(same(picks[0], g) for g in picks[1:]):
                said = ", ".join(
                    f"{shown(g)} → {shown(section[g])}" if isinstance(section[g], str) else shown(g) for g in picks
                )
                raise UsageError(
                    f"{where}: {label}: class {quoted(c)} is in groups with different {what} ({said}); "
                    "give it its own entry"
                )
            out.append(picks[0])
        else:
            out.append(DEFAULT if DEFAULT in section else None)
    return out
