"""`report`: the numbers equal evaluate's, every picture it references exists and opens,
overlay colours on a tiny case, bad input, and the pages in a real headless Chromium."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import default_signals, run_cli, write_csv

from core.classes import DEFAULT_CLASSES
from core.codec import format_rle
from core.synthetic import Generator, write_set

SIZE = 256


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """5 images × 29 classes at 256², three models; ground truth and X-rays."""
    from PIL import Image

    from core.synthetic import xray

    folder = tmp_path_factory.mktemp("report_set")
    gen = Generator(n_images=5, n_models=3, height=SIZE, width=SIZE, seed=3)
    paths = write_set(gen, folder)
    (folder / "xr").mkdir()
    for img in gen.images():
        Image.fromarray(xray(img, SIZE, SIZE), "L").save(folder / "xr" / img.name)
    return folder, gen, paths


def _report(folder, paths, out, *extra):
    return run_cli(
        "report",
        "--gt",
        paths["gt"],
        *(paths[m] for m in ("model1", "model2", "model3")),
        "--height",
        SIZE,
        "--width",
        SIZE,
        "-o",
        out,
        "-q",
        *extra,
    )


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[str] = []
        self.cells: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.refs.append(a[key])
        if tag == "td":
            self.cells.append(a)


def _parse(path: Path) -> _Collect:
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_numbers_equal_evaluate(small_set, tmp_path):
    folder, gen, paths = small_set
    out = tmp_path / "rep"
    r = _report(folder, paths, out, "--pages", 2)
    assert r.exit_code == 0, r.output
    assert f"→ {out / 'index.html'}" in r.stdout
    ev = run_cli(
        "evaluate",
        "--gt",
        paths["gt"],
        paths["model1"],
        paths["model2"],
        paths["model3"],
        "--height",
        SIZE,
        "--width",
        SIZE,
        "--format",
        "json",
        "-q",
    )
    scores = json.loads(ev.stdout)
    html = (out / "index.html").read_text()
    means = dict(re.findall(r'data-source="([^"]+)" data-mean="([0-9.]+)"', html))
    for m in gen.model_names:
        assert means[m] == f"{scores[str(paths[m])]['mean']:.4f}"
    cells = re.findall(r'data-col="([^"]+)" data-cls="([^"]+)">([0-9.]+)<', html)
    assert len(cells) == 3 * 29
    for col, cls, value in cells:
        assert value == f"{scores[str(paths[col])]['per_class'][cls]:.4f}"
    # the leaderboard is sorted and the gain is over the best other source
    order = [float(means[m]) for m in re.findall(r'data-source="([^"]+)"', html)]
    assert order == sorted(order, reverse=True)


def test_image_page_numbers_equal_per_image_dice(small_set, tmp_path):
    from core.predictions import read_predictions
    from core.score import dice_matrix

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 1, "--focus", "model2").exit_code == 0
    page = out / "images" / "p000-page.html"
    name = re.search(r"<h1>([^<]+)</h1>", page.read_text()).group(1)
    gt = read_predictions(paths["gt"], DEFAULT_CLASSES, SIZE, SIZE)
    i = gt.images.index(name)
    d2 = dice_matrix(read_predictions(paths["model2"], DEFAULT_CLASSES, SIZE, SIZE), gt)
    assert i == int(np.argmin(d2.mean(1)))  # the focus source's worst image
    values = re.findall(r'data-col="model2">([0-9.]+)<', page.read_text())
    assert values == [f"{v:.4f}" for v in d2[i]]


def test_every_referenced_file_exists_and_opens(small_set, tmp_path):
    from PIL import Image

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    r = _report(folder, paths, out, "--pages", 2, "--images", folder / "xr", "--image", gen.image_name(4))
    assert r.exit_code == 0, r.output
    pages = sorted((out / "images").glob("*.html"))
    assert len(pages) == 3  # two worst + the one asked for (unless it is among them)
    n_png = 0
    for html in [out / "index.html", *pages]:
        for ref in _parse(html).refs:
            assert not ref.startswith(("http:", "https:", "//")), ref  # nothing from the network
            target = (html.parent / ref).resolve()
            assert target.is_file(), f"{html.name}: {ref}"
            if target.suffix == ".png":
                with Image.open(target) as im:
                    im.load()
                    assert im.size[0] > 0
                n_png += 1
    assert n_png > 100
    assert not list(tmp_path.glob(".*tmp"))  # the temporary folder was renamed into place


def _tiny_case(tmp_path):
    """16×16, classes a and b; gt of a: rows 2..5, cols 2..9; model p: rows 2..5, cols 4..11
    (cols 2-3 false negative, 10-11 false positive)."""
    w = 16

    def rect(y0, y1, x0, x1):
        m = np.zeros((w, w), np.uint8)
        m[y0:y1, x0:x1] = 1
        from core.codec import encode

        return format_rle(encode(m))

    gt = write_csv(tmp_path / "gt.csv", [("i.png", "a", rect(2, 6, 2, 10)), ("i.png", "b", rect(10, 12, 3, 5))])
    p = write_csv(tmp_path / "p.csv", [("i.png", "a", rect(2, 6, 4, 12)), ("i.png", "b", rect(10, 12, 3, 5))])
    q = write_csv(tmp_path / "q.csv", [("i.png", "a", rect(2, 6, 2, 10)), ("i.png", "b", "")])
    return gt, p, q


def test_overlay_pixel_colours(tmp_path):
    from PIL import Image

    from report.overlays import FN_COLOUR, FP_COLOUR, class_colours

    gt, p, q = _tiny_case(tmp_path)
    out = tmp_path / "rep"
    r = run_cli(
        "report", "--gt", gt, p, q, "--focus", "p", "--classes", "a,b", "--height", 16, "--width", 16, "-o", out, "-q"
    )
    assert r.exit_code == 0, r.output
    colours = class_colours(2)
    # class a's box is the union of all masks of a: rows 2..5, cols 2..11
    with Image.open(out / "images" / "p000-errors-0.png") as im:
        err = im.convert("RGBA")
    assert err.size == (10, 4)
    assert err.getpixel((0, 0))[:3] == FN_COLOUR  # col 2: in gt, missed by p
    assert err.getpixel((9, 0))[:3] == FP_COLOUR  # col 11: marked by p, not in gt
    assert err.getpixel((4, 1))[:3] == colours[0]  # col 6: correct → class colour
    assert err.getpixel((9, 0))[3] == 255 and err.getpixel((0, 0))[3] == 255
    with Image.open(out / "images" / "p000-s0-0.png") as im:  # source p's own layer
        s0 = im.convert("RGBA")
    assert s0.getpixel((0, 0))[3] == 0 and s0.getpixel((5, 2)) == (*colours[0], 255)
    with Image.open(out / "images" / "p000-votes-0.png") as im:
        votes = im.convert("RGBA")
    from report.overlays import UNANIMOUS_ALPHA, vote_colours

    two, one = vote_colours(2)[1], vote_colours(2)[0]
    assert votes.getpixel((5, 0))[:3] == two and votes.getpixel((0, 0))[:3] == one
    assert votes.getpixel((5, 0))[3] == UNANIMOUS_ALPHA and votes.getpixel((0, 0))[3] == 255
    # class b: q has nothing, p equals gt: no false positive or negative, correct pixels only
    with Image.open(out / "images" / "p000-errors-1.png") as im:
        px = np.asarray(im.convert("RGBA")).reshape(-1, 4)
    assert {tuple(int(v) for v in x[:3]) for x in px} == {colours[1]}
    assert not (out / "images" / "p000-s1-1.png").exists()  # an empty mask writes no layer


def test_agreement_mode_without_gt(small_set, tmp_path):
    from core.predictions import read_predictions
    from core.score import dice_matrix

    folder, gen, paths = small_set
    out = tmp_path / "rep"
    r = run_cli(
        "report",
        paths["model1"],
        paths["model2"],
        paths["model3"],
        "--height",
        SIZE,
        "--width",
        SIZE,
        "--pages",
        2,
        "-o",
        out,
        "-q",
    )
    assert r.exit_code == 0, r.output
    html = (out / "index.html").read_text()
    assert "agreement" in html and (out / "assets" / "areas.png").is_file()
    a, b = (read_predictions(paths[m], DEFAULT_CLASSES, SIZE, SIZE) for m in ("model1", "model2"))
    d = dice_matrix(a, b).mean(0)
    cells = re.findall(r'data-col="model1 · model2" data-cls="([^"]+)">([0-9.]+)<', html)
    assert cells == [(c, f"{v:.4f}") for c, v in zip(DEFAULT_CLASSES, d)]


def test_setting_summary(small_set, tmp_path):
    folder, gen, paths = small_set
    setting = tmp_path / "tuned.yaml"
    setting.write_text(
        f"sources: {{model1: {paths['model1']}, model2: {paths['model2']}, model3: {paths['model3']}}}\n"
        "weights: {default: {model1: 1, model2: 1, model3: 1}, Pisiform: {model1: 2, model2: 0, "
        "model3: 1}}\nthreshold: {default: 0.5, Pisiform: 0.4}\n"
        "postprocess: {Lunate: {keep_largest: 1, fill_holes: true}}\n"
    )
    out = tmp_path / "rep"
    r = _report(folder, paths, out, "--pages", 0, "--setting", setting, "--baseline", "model2")
    assert r.exit_code == 0, r.output
    html = (out / "index.html").read_text()
    assert '<td class="wrap">Pisiform</td><td>model1 ×2, model3 ×1</td><td>0.4</td><td>—</td>' in html
    assert (
        '<td class="wrap">Lunate</td><td>all equal (model1, model2, model3)</td><td>0.5</td>'
        "<td>keep largest 1, fill holes</td>" in html
    )
    assert "(model2)" in html  # the gain's baseline
    assert f"python cli.py report {paths['model1']} " in html and "--baseline model2" in html  # the command line


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--focus", "modle2"], 2, "--focus modle2: no source of that name (did you mean 'model2'?"),
        (["--image", "nope.png"], 2, "--image nope.png: not among the 5 scored images"),
        (["--baseline", "x"], 2, "--baseline x: no source of that name"),
        (["--images", "missing_dir"], 2, "no such folder (--images)"),
    ],
)
def test_bad_input_is_one_line(small_set, tmp_path, extra, code, message):
    folder, gen, paths = small_set
    r = _report(folder, paths, tmp_path / "rep", *extra)
    assert r.exit_code == code
    assert message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "rep").exists() and not list(tmp_path.glob(".rep*"))


def test_images_folder_without_a_file_is_a_note(small_set, tmp_path):
    folder, gen, paths = small_set
    xr = tmp_path / "xr"  # an images folder that holds none of the images
    xr.mkdir()
    r = run_cli(
        "report",
        "--gt",
        paths["gt"],
        paths["model1"],
        paths["model2"],
        "--height",
        SIZE,
        "--width",
        SIZE,
        "--pages",
        2,
        "--images",
        xr,
        "-o",
        tmp_path / "rep2",
    )
    assert r.exit_code == 0
    assert "no image file for 2 page images" in r.stderr
    assert "grey canvas" in (tmp_path / "rep2" / "index.html").read_text()


def test_gt_missing_images_is_a_note_and_missing_rows_an_error(small_set, tmp_path):
    from core.predictions import read_predictions, write_predictions

    folder, gen, paths = small_set
    gt = read_predictions(paths["gt"], DEFAULT_CLASSES, SIZE, SIZE)
    part = tmp_path / "gt_part.csv"
    write_predictions(
        part, DEFAULT_CLASSES, [(n, [gt.rle(i, c) for c in range(29)]) for i, n in enumerate(gt.images[:3])]
    )
    r = run_cli(
        "report",
        "--gt",
        part,
        paths["model1"],
        paths["model2"],
        "--height",
        SIZE,
        "--width",
        SIZE,
        "--pages",
        1,
        "-o",
        tmp_path / "rep",
    )
    assert r.exit_code == 0
    assert "2 of its 5 images not in the ground truth and not scored" in r.stderr
    # a prediction lacking ground-truth images: an error, as evaluate's
    r = run_cli(
        "report",
        "--gt",
        paths["gt"],
        part,
        paths["model1"],
        "--height",
        SIZE,
        "--width",
        SIZE,
        "-o",
        tmp_path / "rep3",
        "-q",
    )
    assert r.exit_code == 1 and "missing row" in r.stderr and r.stderr.count("\n") == 1


def test_output_folder_rules(small_set, tmp_path):
    folder, gen, paths = small_set
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    r = _report(folder, paths, busy, "--pages", 0)
    assert r.exit_code == 2 and "folder holds keep.txt, which `report` did not write" in r.stderr
    assert (busy / "keep.txt").read_text() == "mine"
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 1).exit_code == 0
    assert _report(folder, paths, out, "--pages", 0).exit_code == 0  # an earlier report is replaced
    assert not list((out / "images").glob("*.html"))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "plant",
    [
        lambda out: (out / "model1.csv").write_text("image_name,class,rle\n"),
        lambda out: (out / "notes" / "mine.txt").parent.mkdir() or (out / "notes" / "mine.txt").write_text("x"),
        lambda out: (out / "empty-folder").mkdir(),
        lambda out: (out / "images" / "extra.png").write_bytes(b"png"),
        lambda out: (out / "index.html").write_text("edited by hand"),
        lambda out: (out / ".segment-ensemble-report").write_text("{}"),
    ],
    ids=["csv", "subfolder", "empty-folder", "file-among-pages", "edited-page", "emptied-manifest"],
)
def test_a_report_onto_an_earlier_one_keeps_every_file_it_did_not_write(small_set, tmp_path, plant):
    folder, gen, paths = small_set
    out = tmp_path / "rep"
    assert _report(folder, paths, out, "--pages", 1).exit_code == 0
    plant(out)
    before = _snapshot(out)
    dirs = sorted(p for p in out.rglob("*") if p.is_dir())
    r = _report(folder, paths, out, "--pages", 0)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "`report`" in r.stderr
    assert _snapshot(out) == before
    assert sorted(p for p in out.rglob("*") if p.is_dir()) == dirs
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary folder left beside it


def test_a_report_folder_that_cannot_be_written_is_refused_before_the_work(small_set, tmp_path):
    import os

    folder, gen, paths = small_set
    if os.geteuid() == 0:
        r = _report(folder, paths, "/proc/report", "--pages", 0)
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        r = _report(folder, paths, locked / "report", "--pages", 0)
    assert r.exit_code == 2 and "cannot write there" in r.stderr and r.stderr.count("\n") == 1


# ---------------------------------------------------------------- a real browser
def test_in_headless_chromium():
    """The checks of ``browser_checks.py`` (every picture loads, no console error, the
    leaderboard is visible, toggling a layer hides it, class filter, opacity, zoom, the
    layout at 1280 and 1920 px, the page without ground truth) in headless Chromium, run by
    a pytest of their own: selenium and the browser stay out of this process, whose later
    tests run threads."""
    import subprocess
    import sys

    import chromium

    why = chromium.why_unavailable()
    if why:
        pytest.skip(f"headless Chromium unavailable: {why}")
    here = Path(__file__).resolve().parent
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(here / "browser_checks.py")],
        cwd=here.parent,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=default_signals,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "5 passed" in r.stdout, r.stdout[-2000:]


def test_demo_writes_a_report(tmp_path):
    r = run_cli("demo", tmp_path / "d", "--images", 1, "--models", 2, "-q")
    assert r.exit_code == 0, r.output
    index = tmp_path / "d" / "report" / "index.html"
    assert f"report: {index.resolve()}" in r.stdout
    html = index.read_text()
    assert "hard_vote" in html and "soft_vote" in html and (tmp_path / "d" / "report" / "images").is_dir()


def test_gt_json_numbers_equal_evaluate(tmp_path):
    pred = write_csv(tmp_path / "p.csv", [("img.png", "a", "1 4 9 4"), ("img.png", "b", "20 3")])
    other = write_csv(tmp_path / "q.csv", [("img.png", "a", "1 2"), ("img.png", "b", "")])
    (tmp_path / "ann" / "ID1").mkdir(parents=True)
    (tmp_path / "ann" / "ID1" / "img.json").write_text(
        json.dumps({"annotations": [{"label": "a", "points": [[0, 0], [3, 0], [3, 1], [0, 1]]}]})
    )
    flags = ["--classes", "a,b", "--height", 8, "--width", 8]
    ev = run_cli("evaluate", "--gt-json", tmp_path / "ann", pred, other, *flags, "--format", "json", "-q")
    r = run_cli("report", "--gt-json", tmp_path / "ann", pred, other, *flags, "-o", tmp_path / "rep", "-q")
    assert r.exit_code == 0, r.output
    html = (tmp_path / "rep" / "index.html").read_text()
    for path, name in ((pred, "p"), (other, "q")):
        mean = json.loads(ev.stdout)[str(path)]["mean"]
        assert f'data-source="{name}" data-mean="{mean:.4f}"' in html


def test_agreement_needs_the_same_images_and_two_sources(small_set, tmp_path):
    from core.predictions import read_predictions, write_predictions

    folder, gen, paths = small_set
    m1 = read_predictions(paths["model1"], DEFAULT_CLASSES, SIZE, SIZE)
    part = tmp_path / "part.csv"
    write_predictions(
        part, DEFAULT_CLASSES, [(n, [m1.rle(i, c) for c in range(29)]) for i, n in enumerate(m1.images[:4])]
    )
    r = run_cli("report", paths["model1"], part, "--height", SIZE, "--width", SIZE, "-o", tmp_path / "rep", "-q")
    assert r.exit_code == 1 and "image set differs" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("report", paths["model1"], "--height", SIZE, "--width", SIZE, "-o", tmp_path / "rep", "-q")
    assert r.exit_code == 2 and "at least two" in r.stderr


def test_xray_of_another_size_is_an_error(small_set, tmp_path):
    from PIL import Image

    folder, gen, paths = small_set
    xr = tmp_path / "xr"
    xr.mkdir()
    for i in range(5):
        Image.new("L", (SIZE // 2, SIZE // 2), 40).save(xr / gen.image_name(i))
    r = _report(folder, paths, tmp_path / "rep", "--pages", 1, "--images", xr)
    assert r.exit_code == 2 and "image is 128×128, the masks 256×256" in r.stderr
    assert not (tmp_path / "rep").exists() and not list(tmp_path.glob(".rep*"))


def test_sixteen_bit_xray_is_scaled(tmp_path):
    from PIL import Image

    from report.overlays import load_xray

    a = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(a).save(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as im:
        assert im.mode.startswith("I")
    img = load_xray(tmp_path / "x.png", 8, 8)
    px = np.asarray(img)
    assert img.mode == "L" and px.min() == 0 and px.max() == 255
