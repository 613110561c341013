"""The report's files: the charts, one page per chosen image (each drawn at its own size and
in its own orientation: its masks decoded on the grid their runs cover, column-major runs
transposed back) and the index page."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from core.errors import listing, plural
from report.data import CARPALS, ReportData, wrist_box
from report.render import render as _render
from report.render import shade as _shade

_HERE = Path(__file__).resolve().parent


def write_pages(
    folder: Path, data: ReportData, image_files, summary, command, gt_label, images_dir, note, progress, numbers=None
) -> list[Path]:
    """Write the report's files into ``folder``; returns the image pages written."""
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
        h, w = data.size(i)
        crops: list[Crop] = render_layers(
            folder / "images", prefix, gt_runs, src_runs, data.focus, h, w, colours, votes, data.order
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
                    name=name,
                    crops=crops,
                    bases=bases,
                    wrist=wrist,
                    xray=path is not None,
                    score=float(score[i]),
                    i=i,
                    size=(h, w),
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
        h, w = info["size"]
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
            zoom_label="zoom on the wrist" if set(classes) & set(CARPALS) else "zoom on the masks",
            base=info["bases"]["base"],
            width=w,
            height=h,
            aspect=w / h if w != h else None,  # the viewer sized so that the picture's height fits the window
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
                iou=float(data.iou[s].mean(0).mean()) if data.iou is not None else None,
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
        width=data.sources[0].width,
        height=data.sources[0].height,
        sizes=data.sizes_text(),
        iou=data.iou is not None,
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
    return [p for p, _ in page_files]
