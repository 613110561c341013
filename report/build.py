"""``build_report``: read the inputs, compute the numbers, draw the charts and the image
pages, render the HTML, and move the finished folder into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import remove_stale_temporaries, temporary_folder
from core.errors import InputError, UsageError, shown
from core.owned import owned_files, write_manifest
from report.data import ReportData, choose, score_agreement, score_with_gt
from report.pages import write_pages

MARK = ".segment-ensemble-report"


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
    columns: str | Mapping | None = None,
    rle_order: str | None = None,
    sizes: str | os.PathLike | None = None,
    instances: str | None = None,
    exclusive: bool | None = None,
    note: Callable[[str], None] | None = None,
    progress=None,
) -> ReportResult:
    """Write an HTML report of ``sources`` (name → CSV path, or ``(name, path)`` pairs) into the folder
    ``output``: ``index.html``, one page per chosen image under ``images/``, charts and
    overlay PNGs. Dice against the ground truth (``gt_csv`` or ``gt_json``) equals
    ``evaluate``'s; without ground truth the report shows agreement between sources.
    ``progress``: as in ``ensemble.hard_vote`` (one bar, "report pages"). ``quality``: also a
    page without ground truth, ``quality.html`` (``report.quality_page``: STAPLE's estimates per
    source and class and the QA flags), linked from the index. ``columns``, ``rle_order``,
    ``sizes``, ``instances``, ``exclusive``: another task's layout, as in ``ensemble.hard_vote``
    (each image is drawn at its own size; a source may be a folder of PNG label maps); with
    ``exclusive`` the leaderboard also shows the mean IoU, as ``evaluate`` does."""
    from core.classes import CANVAS, DEFAULT_CLASSES
    from core.sources import frame_of, same_file_message
    from core.warmup import READ, SCORE, precompile

    note = note or (lambda msg: None)
    classes, height, width = tuple(classes or DEFAULT_CLASSES), height or CANVAS, width or CANVAS
    frame = frame_of(
        [],
        classes,
        height,
        width,
        layout=columns,
        rle_order=rle_order,
        sizes=sizes,
        instances=instances,
        exclusive=exclusive,
    )
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
        frame,
        missing,
        quality,
        command,
        note,
        progress,
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
    frame,
    missing,
    quality,
    command,
    note,
    progress,
) -> ReportResult:
    from core.sources import bar, load
    from postprocess.orientation import orientation_warning

    classes, height, width = frame.classes, frame.height, frame.width

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

    said: set[str] = set()  # a file given twice is noted once

    def once(line: str) -> None:
        if line not in said:
            said.add(line)
            note(line)

    preds = [load(path, name, frame, once) for name, path in sources]
    names = [n for n, _ in sources]
    gt = None
    if gt_json:
        from evaluation.polygons import read_gt_json

        gt = read_gt_json(gt_json, preds[0].images, classes, height, width)
    elif gt_csv:
        gt = load(gt_csv, "ground truth", frame, once)
    for p in [*preds, *([gt] if gt_csv else [])]:  # before anything is drawn
        turned = orientation_warning(p)
        if turned is not None:
            once(f"warning: {turned}")
    if gt is not None:
        data = score_with_gt(gt, preds, names, missing, iou=frame.exclusive)
    else:
        data = score_agreement(preds, names, missing)
    choose(data, focus, pages, wanted, baselines)
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
        label = gt_csv or gt_json
        with bar(progress, len(data.pages), "report pages") as b:
            pages = write_pages(tmp, data, image_files, summary, command, label, images, note, b, numbers)
        result = ReportResult(tmp / "index.html", data, pages)
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
