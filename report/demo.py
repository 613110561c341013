"""The report that ``cli.py demo`` writes of its own results."""

from __future__ import annotations

from pathlib import Path


def demo_report(gen, folder: Path, paths: dict, hard: Path, soft: Path, setting: Path) -> Path:
    """Write the demo's stand-in X-rays to ``folder/images`` and a report of every model and
    both votes to ``folder/report``; returns the index page."""
    from PIL import Image

    from core.synthetic import xray
    from report.build import build_report

    images = folder / "images"
    images.mkdir(exist_ok=True)
    for img in gen.images():
        Image.fromarray(xray(img, gen.height, gen.width), "L").save(images / img.name, compress_level=1)
    sources = [(m, str(paths[m])) for m in gen.model_names] + [("hard_vote", str(hard)), ("soft_vote", str(soft))]
    command = f"python cli.py report --gt {paths['gt']} " + " ".join(f"--source {n}={p}" for n, p in sources) + \
        f" --images {images} --setting {setting} " + " ".join(f"--baseline {m}" for m in gen.model_names) + \
        f" -o {folder / 'report'}"
    res = build_report(sources, folder / "report", gt_csv=str(paths["gt"]), images=str(images),
                       setting=str(setting), baselines=gen.model_names, pages=min(12, gen.n_images),
                       command=command)
    return res.index
