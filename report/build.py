"""``build_report``: read the inputs, compute the numbers, draw the charts and the image
pages, render the HTML, and move the finished folder into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import remove_stale_temporaries, temporary_folder
from core.errors import InputError, UsageError, listing, plural, shown
from core.owned import owned_files, write_manifest
from report.data import ReportData, choose, score_agreement, score_with_gt, wrist_box
from report.render import render as _render
from report.render import shade as _shade

MARK = ".segment-ensemble-report"
_HERE = Path(__file__).resolve().parent


@dataclass
class ReportResult:
    """What ``build_report`` wrote and the numbers it showed."""

    index: Path
    data: ReportData
    pages: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quality: Path | None = None  # the page without ground truth, when asked for
    numbers: object = None  # its numbers (``report.quality_page.QualityNumbers``)


def check_output_folder(out: str | os.PathLike) -> Path:
    """The report folder: new, empty, or an earlier report holding only the files it wrote
    (they are replaced); anything else is a ``UsageError`` naming the first file the report
    did not write, before any work. The folder's parent must be writable."""
    out = Path(out)
    if not str(out).strip():
        raise UsageError("output: empty folder name")
    owned_files(out, MARK, "report")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{shown(out)}: folder {shown(out.parent)} does not exist")
    try:
        probe = Path(tempfile.mkdtemp(prefix=f".{out.name[:100]}.", suffix=".probe", dir=parent))
        probe.rmdir()
    except OSError as e:
        raise UsageError(f"{shown(out)}: cannot write there ({e.strerror or e.__class__.__name__})") from None
    return out


def index_images(folder: str | os.PathLike) -> dict[str, Path]:
    """``basename → path`` of every image file under ``folder`` (recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder (--images)")
    found: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp") and p.is_file():
            found.setdefault(p.name, p)
    return found


def build_report(
    sources: Mapping[str, str] | Sequence[tuple[str, str]],
    output: str | os.PathLike,
    *,
    gt_csv: str | None = None,
    gt_json: str | None = None,
    images: str | None = None,
    setting: str | None = None,
    focus: str | None = None,
    pages: int = 12,
    wanted: Sequence[str] = (),
    baselines: Sequence[str] = (),
    classes: Sequence[str] | None = None,
    height: int | None = None,
    width: int | None = None,
    missing: str = "error",
    quality: bool = False,
    command: str = "",
    note: Callable[[str], None] | None = None,
    progress=None,
) -> ReportResult:
    """Write an HTML report of ``sources`` (name → CSV path, or ``(name, path)`` pairs) into the folder
    ``output``: ``index.html``, one page per chosen image under ``images/``, charts and
    overlay PNGs. Dice against the ground truth (``gt_csv`` or ``gt_json``) equals
    ``evaluate``'s; without ground truth the report shows agreement between sources.
    ``progress``: as in ``ensemble.hard_vote`` (one bar, "report pages"). ``quality``: also a
    page without ground truth, ``quality.html`` (``report.quality_page``: STAPLE's estimates per
    source and class and the QA flags), linked from the index."""
    from core.classes import CANVAS, DEFAULT_CLASSES
    from core.sources import bar, same_file_message
    from core.warmup import READ, SCORE, precompile

    note = note or (lambda msg: None)
    classes, height, width = tuple(classes or DEFAULT_CLASSES), height or CANVAS, width or CANVAS
    sources = list(sources.items()) if isinstance(sources, Mapping) else list(sources)
    if not sources:
        raise UsageError("no predictions: give CSVs or --source NAME=PATH")
    twice = same_file_message([(f"source {n}", p) for n, p in sources])
    if twice:
        raise UsageError(twice)
    if quality:
        from quality.warmup import QA, STAPLE

        precompile(note, READ, SCORE, STAPLE, QA)
    else:
        precompile(note, READ, SCORE)
    with bar(progress, len(wanted) + pages, "report pages") as b:
        return _build(
            sources,
            output,
            gt_csv,
            gt_json,
            images,
            setting,
            focus,
            pages,
            wanted,
            baselines,
            classes,
            height,
            width,
            missing,
            quality,
            command,
            note,
            b,
        )


def _build(
    sources,
    output,
    gt_csv,
    gt_json,
    images,
    setting,
    focus,
    pages,
    wanted,
    baselines,
    classes,
    height,
    width,
    missing,
    quality,
    command,
    note,
    progress,
) -> ReportResult:
    from core.predictions import read_predictions
    from core.sources import reading_notes

    if gt_csv and gt_json:
        raise UsageError("give at most one of --gt GT.csv or --gt-json DIR")
    if pages < 0:
        raise UsageError("--pages must be >= 0")
    out = check_output_folder(output)
    image_files = index_images(images) if images else None
    summary = None
    if setting:
        from report.setting import summarize

        summary = summarize(setting, classes)

    preds = []
    said: set[str] = set()  # a file given twice is noted once
    for _, path in sources:
        p = read_predictions(path, classes, height, width)
        for line in reading_notes(p):
            if line not in said:
                said.add(line)
                note(line)
        preds.append(p)
    names = [n for n, _ in sources]
    if gt_csv or gt_json:
        if gt_json:
            from evaluation.polygons import read_gt_json

            gt = read_gt_json(gt_json, preds[0].images, classes, height, width)
        else:
            gt = read_predictions(gt_csv, classes, height, width)
            for line in reading_notes(gt):
                if line not in said:
                    note(line)
        data = score_with_gt(gt, preds, names, missing)
    else:
        data = score_agreement(preds, names, missing)
    choose(data, focus, pages, wanted, baselines)
    if progress is not None and hasattr(progress, "total"):
        progress.total = len(data.pages)
        progress.refresh()
    for n in data.notes:
        note(f"note: {n}")
    numbers = None
    if quality:
        from report.quality_page import quality_numbers

        numbers = quality_numbers(data, missing)

    parent = out.resolve().parent
    remove_stale_temporaries(parent, out.name)
    tmp = temporary_folder(parent, out.name)
    try:
        result = _write(tmp, data, image_files, summary, command, gt_csv or gt_json, images, note, progress, numbers)
        write_manifest(tmp, MARK, "report")
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            owned_files(out, MARK, "report")  # nothing of the user's came in while the report was drawn
            old = temporary_folder(parent, out.name)
            os.replace(out, old / "r")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise InputError(f"{shown(out)}: cannot write the report ({e.strerror or e.__class__.__name__})") from None
        raise
    result.index = out / "index.html"
    result.pages = [out / p.relative_to(tmp) for p in result.pages]
    if numbers is not None:
        result.quality, result.numbers = out / "quality.html", numbers
    return result


def _write(
    folder: Path, data: ReportData, image_files, summary, command, gt_label, images_dir, note, progress, numbers=None
) -> ReportResult:
    from report import charts
    from report.overlays import (
        FN_COLOUR,
        FP_COLOUR,
        Crop,
        class_colours,
        hex_colour,
        load_xray,
        render_layers,
        thumbnail,
        vote_colours,
        write_bases,
    )

    (folder / "assets").mkdir()
    (folder / "images").mkdir()
    for f in ("report.css", "browser.js"):
        shutil.copyfile(_HERE / "static" / f, folder / "assets" / f)
    classes = data.classes
    h, w = data.sources[0].height, data.sources[0].width
    colours = class_colours(len(classes))
    votes = vote_colours(len(data.sources))

    # charts
    chart_files = {"heatmap": "assets/heatmap.png"}
    if data.has_gt:
        charts.heatmap(
            data.per_class,
            data.names,
            classes,
            folder / chart_files["heatmap"],
            "Dice per class (mean over images); the best source of each class is framed",
        )
        chart_files["spread"] = "assets/spread.png"
        charts.spread(
            data.per_image[data.focus],
            classes,
            folder / chart_files["spread"],
            f"{data.names[data.focus]}: Dice per image, per class",
        )
        table_cols = data.names
        class_values = data.per_class.T
    else:
        pair_class = data.pair_dice.mean(1)
        charts.heatmap(
            pair_class,
            data.pair_names(),
            classes,
            folder / chart_files["heatmap"],
            "Mean Dice between two sources, per class",
            mark_best=False,
        )
        chart_files["areas"] = "assets/areas.png"
        areas = data.areas()
        charts.heatmap(
            areas,
            data.names,
            classes,
            folder / chart_files["areas"],
            "Mean mask area (pixels) per class",
            fmt="{:,.0f}",
            cmap="viridis",
            mark_best=False,
        )
        table_cols = data.pair_names()
        class_values = pair_class.T

    # image pages
    score = data.image_score(data.focus) if data.has_gt else data.pair_dice.mean((0, 2))
    missing_xray = []
    page_files, tiles = [], []
    n_worst = data.n_worst
    for k, i in enumerate(data.pages):
        name = data.images[i]
        prefix = f"p{k:03d}-"
        gt_runs = [data.gt.runs(i, c) for c in range(len(classes))] if data.has_gt else None
        src_runs = []
        for s, src in enumerate(data.sources):
            r = int(data.positions[s][i])
            src_runs.append(
                [
                    src.runs(r, c) if r >= 0 and src.rows[r, c] >= 0 else np.zeros((0, 2), np.int64)
                    for c in range(len(classes))
                ]
            )
        crops: list[Crop] = render_layers(
            folder / "images", prefix, gt_runs, src_runs, data.focus, h, w, colours, votes
        )
        ref = [c for c in crops if "gt" in c.files] or crops
        wrist = wrist_box({c.cls: c.box for c in ref}, classes, h, w)
        path = None
        if image_files is not None:
            path = image_files.get(name)
            if path is None:
                missing_xray.append(name)
        xray = load_xray(path, h, w)
        bases = write_bases(xray, folder / "images", prefix, wrist)
        thumb = thumbnail(xray, crops, folder / "images", f"{prefix}thumb.png", "errors" if data.has_gt else "votes")
        page = folder / "images" / f"{prefix}page.html"
        worst_c = int(np.argmin(data.per_image[data.focus, i]))
        tiles.append(
            dict(
                href=f"images/{page.name}",
                thumb=f"images/{thumb}",
                name=name,
                score=float(score[i]),
                worst=classes[worst_c],
                worst_value=float(data.per_image[data.focus, i, worst_c]),
                wanted=k >= n_worst,
            )
        )
        page_files.append(
            (
                page,
                dict(
                    name=name, crops=crops, bases=bases, wrist=wrist, xray=path is not None, score=float(score[i]), i=i
                ),
            )
        )
        if progress is not None:
            progress.update(1)
    if missing_xray:
        msg = (
            f"{images_dir}: no image file for {plural(len(missing_xray), 'page image')} (first: "
            f"{listing(missing_xray[:3])}); those pages show a grey canvas"
        )
        note(f"note: {msg}")
        data.notes.append(msg)

    layer_defs = []
    if data.has_gt:
        layer_defs.append(("errors", f"errors of {data.names[data.focus]}", True))
        layer_defs.append(("gt", "ground truth", False))
    layer_defs += [(f"s{s}", n, False) for s, n in enumerate(data.names)]
    layer_defs.append(("votes", "vote count", not data.has_gt))
    for k, (page, info) in enumerate(page_files):
        layers = []
        for lid, label, on in layer_defs:
            imgs = []
            for crop in info["crops"]:
                if lid in crop.files:
                    x0, y0, x1, y1 = crop.box
                    style = (
                        f"left:{100 * x0 / w:.4f}%;top:{100 * y0 / h:.4f}%;"
                        f"width:{100 * (x1 - x0) / w:.4f}%;height:{100 * (y1 - y0) / h:.4f}%"
                    )
                    imgs.append(dict(src=crop.files[lid], cls=crop.cls, style=style))
            layers.append(dict(id=lid, label=label, on=on, images=imgs))
        i = info["i"]
        values = data.per_image[:, i, :].T  # Dice against the ground truth, or mean agreement with the others
        rows = [
            dict(
                index=c,
                cls=cls,
                colour=hex_colour(colours[c]),
                values=[float(v) for v in values[c]],
                shades=[_shade(float(v)) for v in values[c]],
            )
            for c, cls in enumerate(classes)
        ]
        present = [dict(index=c.cls, name=classes[c.cls]) for c in info["crops"]]
        wrist = info["wrist"]
        wrist_style = ""
        if wrist:
            x0, y0, x1, y1 = wrist
            wrist_style = (
                f"left:{100 * x0 / w:.4f}%;top:{100 * y0 / h:.4f}%;"
                f"width:{100 * (x1 - x0) / w:.4f}%;height:{100 * (y1 - y0) / h:.4f}%"
            )
        html = _render(
            "image.html.j2",
            root="../",
            name=info["name"],
            has_gt=data.has_gt,
            focus=data.names[data.focus],
            score=info["score"],
            xray=info["xray"],
            layers=layers,
            present=present,
            wrist=list(wrist) if wrist else None,
            wrist_src=info["bases"].get("wrist"),
            wrist_style=wrist_style,
            base=info["bases"]["base"],
            width=w,
            height=h,
            table_cols=data.names,
            rows=rows,
            fp=hex_colour(FP_COLOUR),
            fn=hex_colour(FN_COLOUR),
            votes=[hex_colour(v) for v in votes],
            prev=page_files[k - 1][0].name if k else None,
            next=page_files[k + 1][0].name if k + 1 < len(page_files) else None,
        )
        page.write_text(html, encoding="utf-8")

    if numbers is not None:
        from report.quality_page import write_quality_page

        pages = {info["name"]: f"images/{page.name}" for page, info in page_files}
        write_quality_page(folder, data, numbers, pages, gt_label)
    per_class = data.per_class
    leaderboard = []
    for name, mean, gain in data.leaderboard():
        s = data.names.index(name)
        wc = int(np.argmin(per_class[s]))
        leaderboard.append(
            dict(
                name=name,
                mean=mean,
                gain=gain,
                focus=s == data.focus,
                worst=classes[wc],
                worst_value=float(per_class[s, wc]),
            )
        )
    html = _render(
        "index.html.j2",
        root="",
        has_gt=data.has_gt,
        gt_label=gt_label,
        n_sources=len(data.names),
        n_images=len(data.images),
        images=data.images,
        classes=classes,
        width=w,
        height=h,
        sources=[
            dict(name=n, path=src.path, focus=s == data.focus)
            for s, (n, src) in enumerate(zip(data.names, data.sources, strict=True))
        ],
        images_dir=images_dir,
        setting=summary,
        command=command,
        notes=data.notes,
        leaderboard=leaderboard,
        baseline_names=[data.names[b] for b in data.baselines],
        charts=chart_files,
        table_cols=table_cols,
        class_table=[dict(cls=cls, values=[float(v) for v in class_values[c]]) for c, cls in enumerate(classes)],
        focus=data.names[data.focus],
        pages=tiles,
        fp=hex_colour(FP_COLOUR),
        fn=hex_colour(FN_COLOUR),
        quality_page="quality.html" if numbers is not None else None,
    )
    (folder / "index.html").write_text(html, encoding="utf-8")
    return ReportResult(folder / "index.html", data, [p for p, _ in page_files])
