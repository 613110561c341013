"""Per-class best source from a validation scores file (``source,class,dice``)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.errors import InputError, UsageError, listing, quoted
from core.inputs import require_file

SCORE_COLUMNS = ("source", "class", "dice")


@dataclass
class ScoresFile:
    """Dice per (source, class) from a scores file; NaN where the file has no row.
    Rows naming other sources or classes are ignored and counted (name → rows)."""

    path: str
    dice: np.ndarray  # (n_sources, n_classes) float64
    other_sources: dict[str, int] = field(default_factory=dict)
    other_classes: dict[str, int] = field(default_factory=dict)


def read_scores(path: str | os.PathLike, sources: Sequence[str], classes: Sequence[str]) -> ScoresFile:
    """Read a scores CSV. Rows for sources or classes not listed are ignored (and counted);
    a duplicate (source, class), a non-numeric or non-finite Dice raise ``InputError``."""
    path = str(path)
    require_file(path)
    s_index = {s: k for k, s in enumerate(sources)}
    c_index = {c: k for k, c in enumerate(classes)}
    dice = np.full((len(sources), len(classes)), np.nan)
    seen: dict[tuple[int, int], int] = {}
    other_sources: dict[str, int] = {}
    other_classes: dict[str, int] = {}
    held: tuple[dict[str, None], dict[str, None]] = ({}, {})  # every source and class named, in order
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise InputError(f"{path}: empty file (expected header {','.join(SCORE_COLUMNS)})")
            missing = [c for c in SCORE_COLUMNS if c not in header]
            if missing:
                raise InputError(
                    f"{path}:1: missing column(s) {', '.join(missing)} "
                    f"(expected {','.join(SCORE_COLUMNS)}; header is {','.join(header)})"
                )
            col = [header.index(c) for c in SCORE_COLUMNS]
            for row in reader:
                if not any(x.strip() for x in row):
                    continue
                line = reader.line_num
                if len(row) != len(header):
                    raise InputError(f"{path}:{line}: {len(row)} fields, expected {len(header)}")
                src, cls, value = (row[k].strip() for k in col)
                held[0][src] = held[1][cls] = None
                try:
                    d = float(value)
                except ValueError:
                    raise InputError(
                        f"{path}:{line}: source {src}, class {cls}: dice {quoted(value)} is not a number"
                    ) from None
                if not 0 <= d <= 1:
                    raise InputError(f"{path}:{line}: source {src}, class {cls}: dice {quoted(value)} is not in [0, 1]")
                if src not in s_index:
                    other_sources[src] = other_sources.get(src, 0) + 1
                    continue
                if cls not in c_index:
                    other_classes[cls] = other_classes.get(cls, 0) + 1
                    continue
                at = (s_index[src], c_index[cls])
                if at in seen:
                    raise InputError(
                        f"{path}:{line}: source {src}, class {cls}: duplicate row (first at line {seen[at]})"
                    )
                seen[at] = line
                dice[at] = d
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read as a UTF-8 CSV ({e.__class__.__name__})") from None
    if not seen:
        said = (
            f"; the file's sources: {listing(list(held[0]))}; its classes: {listing(list(held[1]))}"
            if held[0]
            else "; the file has no rows"
        )
        raise InputError(f"{path}: no row names one of the sources ({listing(sources)}) and one of the classes{said}")
    return ScoresFile(path, dice, other_sources, other_classes)


def best_rules(
    dice: np.ndarray, sources: Sequence[str], classes: Sequence[str], fallback: Sequence[str | None], where: str
) -> tuple[list[str], list[str]]:
    """Per class, the source with the highest Dice (a tie goes to the source listed first);
    a class no source has a score for takes ``fallback[c]`` (the settings' rule).

    Returns the rules and the classes that fell back; a class with neither a score nor a
    rule raises ``UsageError``.
    """
    rules: list[str] = []
    fell_back: list[str] = []
    for c, cls in enumerate(classes):
        col = dice[:, c]
        scored = np.flatnonzero(~np.isnan(col))
        if scored.size:
            best = col[scored].max()
            rules.append(sources[int(scored[col[scored] == best][0])])
        elif fallback[c] is not None:
            rules.append(fallback[c])  # type: ignore[arg-type]
            fell_back.append(cls)
        else:
            raise UsageError(
                f"{where}: class {quoted(cls)}: no source has a score and the settings give no rule "
                f"for it (add a 'default' or a rule under 'select:')"
            )
    return rules, fell_back
