"""``report --quality``: the page without ground truth shows the library's numbers (STAPLE's
estimates, pooled on the disagreement; each source's QA flags), beside the Dice that
``evaluate`` gives, and every link and picture of it resolves; without the flag the report
is unchanged."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
from test_report import SIZE, _parse, _report, small_set  # noqa: F401  (small_set is a fixture)

from core.classes import DEFAULT_CLASSES
from core.predictions import read_predictions
from core.score import dice_matrix
from quality import qa_flags, staple

MODELS = ("model1", "model2", "model3")


class _Rows(HTMLParser):
    """Attributes of every cell and row carrying data, and each flag row's link."""

    def __init__(self):
        super().__init__()
        self.cells: list[dict] = []
        self.flags: list[dict] = []
        self._row: dict | None = None
        self._source: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "qa-flags" in (a.get("class") or ""):
            self._source = a["data-source"]
        if tag == "td" and "data-sensitivity" in a:
            self.cells.append(a)
        if tag == "tr" and "data-flag" in a:
            self._row = {**a, "source": self._source, "href": None}
            self.flags.append(self._row)
        if tag == "a" and self._row is not None:
            self._row["href"] = a["href"]

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None


def test_quality_page_numbers_equal_the_library(small_set, tmp_path):  # noqa: F811
    folder, gen, paths = small_set
    out = tmp_path / "rep"
    r = _report(folder, paths, out, "--pages", 3, "--quality")
    assert r.exit_code == 0, r.output
    assert f"without ground truth: {out / 'quality.html'}" in r.stdout
    page = out / "quality.html"
    named = {m: str(paths[m]) for m in MODELS}
    est = staple(named, region="disagreement", height=SIZE, width=SIZE)
    rows = _Rows()
    rows.feed(page.read_text(encoding="utf-8"))
    assert len(rows.cells) == len(MODELS) * len(DEFAULT_CLASSES)
    for cell in rows.cells:
        j, c = MODELS.index(cell["data-source"]), DEFAULT_CLASSES.index(cell["data-cls"])
        assert float(cell["data-sensitivity"]) == est.sensitivity[0, j, c]  # the same bits
        assert float(cell["data-specificity"]) == est.specificity[0, j, c]
    # the CSVs beside the page are the library's
    assert pd.read_csv(out / "staple_estimates.csv").values.tolist() == est.estimates_frame().values.tolist()
    flags = pd.read_csv(out / "qa_flags.csv")
    listed = {m: qa_flags(str(paths[m]), height=SIZE, width=SIZE) for m in MODELS}
    expected = pd.concat([r.frame().assign(source=m) for m, r in listed.items()])
    assert flags.values.tolist() == expected[["source", "image_name", "class", "flag", "value"]].values.tolist()
    # every flag on the page is the library's, flag for flag (missing and area first), with a
    # link exactly where the image has a page
    pages = {}
    for p in (out / "images").glob("p*-page.html"):
        pages[re.search(r"<h1>([^<]+)</h1>", p.read_text()).group(1)] = f"images/{p.name}"
    for m, rep in listed.items():
        shown = [f for f in rows.flags if f["source"] == m]
        want = sorted(rep.flags, key=lambda f: f.flag == "fragments")[:500]
        assert [(f["data-image"], f["data-cls"], f["data-flag"]) for f in shown] == [
            (f.image, f.cls, f.flag) for f in want
        ]
        assert [float(f["data-value"]) for f in shown] == [float(f.value) for f in want]
        assert [f["href"] for f in shown] == [pages.get(f.image) for f in want]
    assert any(f["href"] for f in rows.flags)
    # the Dice beside it is evaluate's; the ranking sentence follows from both
    gt = read_predictions(paths["gt"], DEFAULT_CLASSES, SIZE, SIZE)
    dice = np.stack([dice_matrix(read_predictions(paths[m], DEFAULT_CLASSES, SIZE, SIZE), gt).mean(0) for m in MODELS])
    top = int((est.sensitivity[0].argmax(0) == dice.argmax(0)).sum())
    assert f"best by Dice in {top} of 29 classes" in page.read_text()
    html = page.read_text()
    for m, d in zip(MODELS, dice.mean(1)):
        assert re.search(rf"<td>{m}</td>.*?<td class=\"num\">{d:.4f}</td>", html, re.S)


def test_quality_page_links_resolve_and_index_links_to_it(small_set, tmp_path):  # noqa: F811
    from PIL import Image

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 2, "--quality", "--images", folder / "xr").exit_code == 0
    assert "quality.html" in _parse(out / "index.html").refs
    refs = _parse(out / "quality.html").refs
    assert {"index.html", "staple_estimates.csv", "qa_flags.csv", "assets/sensitivity.png"} <= set(refs)
    assert "assets/dice_beside.png" in refs
    for ref in refs:
        assert not ref.startswith(("http:", "https:", "//")), ref
        target = out / ref
        assert target.is_file(), ref
        if target.suffix == ".png":
            with Image.open(target) as im:
                im.load()
    manifest = (out / ".segment-ensemble-report").read_text()
    assert all(f'"{name}"' in manifest for name in ("quality.html", "qa_flags.csv", "assets/sensitivity.png"))


def test_without_ground_truth_and_without_the_flag(small_set, tmp_path):  # noqa: F811
    folder, gen, paths = small_set
    out = tmp_path / "agree"
    models = [str(paths[m]) for m in MODELS]
    r = _report_no_gt(models, out, "--quality")
    assert r.exit_code == 0, r.output
    html = (out / "quality.html").read_text()
    assert "assets/sensitivity.png" in html and "dice_beside" not in html and "rank by Dice" not in html
    plain = tmp_path / "plain"
    assert _report_no_gt(models, plain).exit_code == 0
    assert not (plain / "quality.html").exists() and "quality" not in (plain / "index.html").read_text()
    assert _report_no_gt(models[:2], tmp_path / "two", "--quality").exit_code == 0  # two sources are enough
    r = _report_no_gt(models[:1], tmp_path / "one", "--quality", "--gt", str(paths["gt"]))
    assert r.exit_code == 2 and "--quality" in r.stderr and r.stderr.count("\n") == 1


def _report_no_gt(models, out, *extra):
    from helpers import run_cli

    return run_cli("report", *models, "--height", SIZE, "--width", SIZE, "-o", out, "-q", *extra)
