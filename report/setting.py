"""Per-class summary of a settings file (``tune``'s output, a ``weighted``/``hard``, ``select``
or ``soft`` settings file): what is combined, with which weights, threshold and cleaning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_SOFT_KEYS = {"prob_maps", "model_paths", "image_root", "CLASSES", "root_path", "save_dir", "output_name"}


@dataclass
class SettingSummary:
    path: str
    kind: str  # "weighted", "select" or "soft"
    sources: list[str]
    rows: list[tuple[str, str, str, str]]  # class, combined, threshold, cleaning

    def grouped(self) -> list[tuple[str, str, str, str]]:
        """Rows with the same combination, threshold and cleaning merged into one, its
        classes listed (in class order), the most common first."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for cls, *rest in self.rows:
            groups.setdefault(tuple(rest), []).append(cls)
        ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
        out = []
        for (combined, thr, clean), names in ordered:
            label = ", ".join(names) if len(names) <= 3 else f"{len(names)} classes: {', '.join(names)}"
            out.append((label, combined, thr, clean))
        return out


def _rules_text(rules) -> str:
    if rules is None or not rules.active:
        return "—"
    parts = []
    if rules.open:
        parts.append(f"open {rules.open}")
    if rules.close:
        parts.append(f"close {rules.close}")
    if rules.min_size:
        parts.append(f"min size {rules.min_size}")
    if rules.keep_largest:
        parts.append(f"keep largest {rules.keep_largest}")
    if rules.fill_holes:
        parts.append("fill holes" + (f" ≤ {rules.max_hole}" if rules.max_hole else ""))
    if rules.connectivity != 8:
        parts.append(f"connectivity {rules.connectivity}")
    if rules.min_area > 1:
        parts.append(f"min area {rules.min_area}")
    return ", ".join(parts)


def _weights_text(names: Sequence[str], col) -> str:
    used = [(n, float(w)) for n, w in zip(names, col, strict=True) if w > 0]
    if len(used) == len(names) and len({w for _, w in used}) == 1:
        return "all equal (" + ", ".join(n for n, _ in used) + ")"
    return ", ".join(f"{n} ×{w:g}" for n, w in used)


def summarize(path: str, classes: tuple[str, ...]) -> SettingSummary:
    """Read ``path`` as the kind of settings file its keys say and describe every class."""
    from settings.loader import load_yaml, parse_model
    from settings.postprocess import resolve_rules

    data = load_yaml(path)
    if _SOFT_KEYS & set(data):
        from settings.soft import SoftSettings, soft_source_names, source_weights, thresholds

        cfg = parse_model(SoftSettings, data, path)
        names = soft_source_names(cfg)
        w = source_weights(cfg, names, classes, path)
        thr = thresholds(cfg, classes, path)
        rules = resolve_rules(cfg.postprocess, classes, path)
        rows = [(c, _weights_text(names, w[:, k]), f"{thr[k]:g}", _rules_text(rules[k])) for k, c in enumerate(classes)]
        return SettingSummary(path, "soft", names, rows)
    if {"select", "groups"} & set(data):
        from settings.select import SelectSettings, class_sources

        cfg = parse_model(SelectSettings, data, path)
        names = list(cfg.sources)
        chosen = class_sources(cfg, names, classes, path)
        rules = resolve_rules(cfg.postprocess, classes, path, groups=cfg.groups)
        rows = [(c, chosen[k], "—", _rules_text(rules[k])) for k, c in enumerate(classes)]
        return SettingSummary(path, "select", names, rows)
    from core.sources import source_names as vote_names
    from settings.vote import VoteSettings, staple_regions, threshold_vector, weight_matrix

    cfg = parse_model(VoteSettings, data, path)
    names = list(cfg.sources) if isinstance(cfg.sources, dict) else vote_names(cfg.sources)
    if not names:
        raise _no_sources(path)
    w = weight_matrix(cfg.weights, names, classes, path)
    thr = threshold_vector(cfg.threshold, classes, path)
    rules = resolve_rules(cfg.postprocess, classes, path)
    if cfg.min_votes is not None:
        thr_text = [f"≥ {cfg.min_votes} votes"] * len(classes)
    else:
        thr_text = [f"{t:g}" for t in thr]
    regions = staple_regions(cfg.staple, classes, path)
    rows = [
        (c, _weights_text(names, w[:, k]), thr_text[k], _rules_text(rules[k]))
        if regions[k] is None
        else (c, f"STAPLE ({regions[k]}) of all sources", "posterior ≥ 0.5", _rules_text(rules[k]))
        for k, c in enumerate(classes)
    ]
    return SettingSummary(path, "weighted", names, rows)


def _no_sources(path: str):
    from core.errors import UsageError

    return UsageError(f"{path}: lists no sources: the report describes settings that name what they combine")
