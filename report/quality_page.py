"""The report's page without ground truth (``quality.html``): each source's sensitivity per class
as STAPLE estimates it from the sources' agreement alone (pooled over the images, on the
pixels where they disagree), beside its Dice against the ground truth when there is one, and
the QA flags of each source with links to the image pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from report.data import ReportData

MAX_LISTED = 500
"""Flags listed per source on the page; all of them are in ``qa_flags.csv``."""

REGION = "disagreement"
"""STAPLE's region on the page: the sources' unanimous pixels are fixed, so the background's
weight does not pull every specificity to 1 and the sensitivities rank the sources."""


@dataclass
class QualityNumbers:
    """STAPLE's estimates (``quality.StapleResult``, pooled, region ``REGION``) and each
    source's ``quality.QAReport``, by name."""

    estimates: object
    qa: dict


def quality_numbers(data: ReportData, missing: str = "error") -> QualityNumbers:
    """STAPLE and the QA flags of the report's sources (as loaded for it)."""
    from core.errors import UsageError
    from quality import MAX_SOURCES, qa_flags, staple

    if not 2 <= len(data.sources) <= MAX_SOURCES:
        raise UsageError(f"--quality: STAPLE estimates 2 to {MAX_SOURCES} sources, got {len(data.sources)}")
    est = staple(dict(zip(data.names, data.sources)), region=REGION, fuse=False, missing=missing)
    return QualityNumbers(est, {n: qa_flags(src) for n, src in zip(data.names, data.sources)})


def _rank_agreement(sens: np.ndarray, dice: np.ndarray) -> tuple[int, float]:
    """Classes whose best source by sensitivity is the best by Dice, and the mean over classes
    of Spearman's rank correlation between the two (sources × classes arrays; ties by position)."""
    top = int((sens.argmax(0) == dice.argmax(0)).sum())
    ra = np.argsort(np.argsort(sens, 0, kind="stable"), 0, kind="stable").astype(float)
    rb = np.argsort(np.argsort(dice, 0, kind="stable"), 0, kind="stable").astype(float)
    ra -= ra.mean(0)
    rb -= rb.mean(0)
    rho = (ra * rb).sum(0) / np.sqrt((ra**2).sum(0) * (rb**2).sum(0))
    return top, float(np.nanmean(rho))


def write_quality_page(
    folder: Path, data: ReportData, numbers: QualityNumbers, pages: Mapping[str, str], gt_label: str | None
) -> Path:
    """Write ``quality.html``, its two heat maps (``assets/``) and the CSVs behind it
    (``staple_estimates.csv``, ``qa_flags.csv``) into the report ``folder``; ``pages`` maps an
    image name to its page (relative to the folder)."""
    from quality import write_flags
    from report import charts
    from report.render import render

    est = numbers.estimates
    names, classes = data.names, data.classes
    sens, spec = est.sensitivity[0], est.specificity[0]  # (sources, classes)
    tall = dict(best_per="row", labels_top=True)
    charts.heatmap(sens.T, classes, names, folder / "assets" / "sensitivity.png", "", **tall)
    dice = data.per_class if data.has_gt else None
    if dice is not None:
        charts.heatmap(dice.T, classes, names, folder / "assets" / "dice_beside.png", "", **tall)
    est.write_estimates(folder / "staple_estimates.csv")
    write_flags({n: r.flags for n, r in numbers.qa.items()}, folder / "qa_flags.csv")
    top, rho = _rank_agreement(sens, dice) if dice is not None else (None, None)
    mean_dice = dice.mean(1) if dice is not None else None
    summary = [
        dict(
            name=n,
            sens=float(sens[j].mean()),
            spec=float(spec[j].mean()),
            dice=None if mean_dice is None else float(mean_dice[j]),
            rank_sens=int((sens.mean(1) > sens[j].mean()).sum()) + 1,
            rank_dice=None if mean_dice is None else int((mean_dice > mean_dice[j]).sum()) + 1,
        )
        for j, n in enumerate(names)
    ]
    per_class = [
        dict(
            cls=cls,
            cells=[
                dict(source=n, value=repr(float(sens[j, c])), spec=repr(float(spec[j, c]))) for j, n in enumerate(names)
            ],
            iterations=int(est.iterations[0, c]),
        )
        for c, cls in enumerate(classes)
    ]
    qa = []
    for n, r in numbers.qa.items():
        rows = [
            dict(
                image=f.image,
                cls=f.cls,
                flag=f.flag,
                value=repr(f.value) if f.flag != "fragments" else str(int(f.value)),
                shown=f"{int(f.value)}" if f.flag == "fragments" else f"{f.value:.3f}",
                href=pages.get(f.image),
            )
            for f in sorted(r.flags, key=lambda f: f.flag == "fragments")[:MAX_LISTED]  # rarer flags first
        ]
        counts = {k: sum(getattr(s, k) for s in r.summary) for k in ("fragments", "missing", "area")}
        qa.append(dict(name=n, path=r.path, rows=rows, total=len(r.flags), counts=counts, images=len(r.images)))
    html = render(
        "quality.html.j2",
        root="",
        gt_label=gt_label,
        has_gt=dice is not None,
        names=names,
        classes=classes,
        n_images=len(est.images),
        summary=summary,
        per_class=per_class,
        top=top,
        rho=rho,
        qa=qa,
        max_listed=MAX_LISTED,
        region=REGION,
    )
    page = folder / "quality.html"
    page.write_text(html, encoding="utf-8")
    return page
