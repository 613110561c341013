"""Another task end to end (``demo --task kaggle``: exclusive classes, mixed non-square sizes,
column-major RLE in ``ImageId,ClassId,EncodedPixels``, a sizes file, PNG label maps): the
issue's commands on it, the report (its numbers equal evaluate's; every overlay, put back on
its image, is the dense mask), and tune's choices equal to those on the same masks laid out
as the hand-bone set."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

from core.synthetic_tasks import KAGGLE_CLASSES, KAGGLE_COLUMNS, TaskGenerator, label_rles, write_task_set

FLAGS = ("--columns", KAGGLE_COLUMNS, "--rle-order", "column", "--classes", "1,2,3,4")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kaggle") / "d"
    r = run_cli("demo", folder, "--task", "kaggle", "--images", 6, "--models", 5, "-q")
    assert r.exit_code == 0, r.output
    return folder, r.stdout


def test_the_demo_runs_the_loop_and_its_files_take_the_issues_commands(demo, tmp_path):
    folder, said = demo
    assert "hard --exclusive of the PNG label maps (pngs/<model>/): the same vote" in said
    assert said.strip().splitlines()[-1] == f"report: {(folder / 'report' / 'index.html').resolve()}"
    for name in ("gt.csv", "sizes.csv", "vote.csv", "clean.csv", "scores.csv", ".segment-ensemble-demo"):
        assert (folder / name).is_file(), name
    assert (folder / "m0.csv").read_text().startswith("ImageId,ClassId,EncodedPixels\n")
    sizes = (folder / "sizes.csv").read_text().splitlines()
    assert sizes[0] == "ImageId,height,width" and len({tuple(s.split(",")[1:]) for s in sizes[1:]}) == 6
    flags = (*FLAGS, "--sizes", folder / "sizes.csv")
    r = run_cli("check", folder / "m0.csv", *flags)
    assert r.exit_code == 0 and "warning" not in r.output and ": valid: 6 images × 4 classes" in r.stdout
    r = run_cli("check", folder / "m0.csv", *flags[:2], *flags[4:], "--exclusive")  # read row by row
    assert r.exit_code == 0 and "runs look column-major" in r.stdout and "--rle-order column" in r.stdout
    models = [folder / f"m{k}.csv" for k in range(5)]
    r = run_cli("hard", *models, "-o", tmp_path / "vote.csv", *flags, "--exclusive", "-q")
    assert r.exit_code == 0 and (tmp_path / "vote.csv").read_bytes() == (folder / "vote.csv").read_bytes()
    r = run_cli("evaluate", "--gt", folder / "gt.csv", models[0], "-o", tmp_path / "s.csv", *flags, "-q")
    assert r.exit_code == 0 and (tmp_path / "s.csv").read_text().startswith("source,class,dice\n")
    r = run_cli(
        "postprocess", tmp_path / "vote.csv", "-o", tmp_path / "c.csv", "--min-size", 30, "--fill-holes", *flags
    )
    assert r.exit_code == 0 and (tmp_path / "c.csv").read_bytes() == (folder / "clean.csv").read_bytes()
    pngs = [folder / "pngs" / f"m{k}" for k in range(5)]
    r = run_cli("hard", *pngs, "-o", tmp_path / "p.csv", "--exclusive", "--classes", "1,2,3,4", "-q")
    assert r.exit_code == 0, r.output
    # the vote of the label maps, written row-major in the default layout: the same masks
    from core.layout import Sizes
    from core.predictions import read_predictions
    from core.sources import frame_of, load

    sizes = Sizes.read(folder / "sizes.csv", "ImageId")
    frame = frame_of([], list(KAGGLE_CLASSES), None, None, layout=KAGGLE_COLUMNS, rle_order="column", sizes=sizes)
    vote = load(folder / "vote.csv", "vote", frame, lambda m: None)
    png = read_predictions(tmp_path / "p.csv", KAGGLE_CLASSES, 1, 1, sizes=sizes)
    assert png.images == vote.images
    for i in range(len(vote.images)):
        for c in KAGGLE_CLASSES:
            np.testing.assert_array_equal(png.mask(i, c), vote.mask(i, c))


class _Page(HTMLParser):
    """The viewer's size and the overlay images of one image page."""

    def __init__(self):
        super().__init__()
        self.size = None
        self.layers: list[tuple[str, dict]] = []
        self.layer = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id") == "viewer":
            self.size = int(a["data-height"]), int(a["data-width"])
        if tag == "div" and "data-layer" in a:
            self.layer = a["data-layer"]
        if tag == "img" and self.layer and "data-cls" in a:
            self.layers.append((self.layer, a))


def test_the_report_scores_equal_evaluate_and_its_overlays_are_the_dense_masks(demo, tmp_path):
    from PIL import Image

    from core.sources import frame_of, load

    folder, _ = demo
    flags = (*FLAGS, "--sizes", folder / "sizes.csv")
    models = [folder / f"m{k}.csv" for k in range(5)]
    ev = run_cli("evaluate", "--gt", folder / "gt.csv", *models, *flags, "--exclusive", "--format", "json", "-q")
    scores = json.loads(ev.stdout)
    out = folder / "report"
    html = (out / "index.html").read_text()
    means = dict(re.findall(r'data-source="([^"]+)" data-mean="([0-9.]+)"', html))
    ious = re.findall(r'data-iou="([0-9.]+)"', html)
    assert len(ious) == 7  # five models, the vote and the cleaned vote
    for k, m in enumerate(models):
        assert means[f"m{k}"] == f"{scores[str(m)]['mean']:.4f}"
        assert f"{scores[str(m)]['iou_mean']:.4f}" in ious
    assert "6 sizes, from 200×120 to 160×400 px (height × width)" in html
    frame = frame_of(
        [], list(KAGGLE_CLASSES), None, None, layout=KAGGLE_COLUMNS, rle_order="column", sizes=folder / "sizes.csv"
    )
    sets = {"gt": load(folder / "gt.csv", "gt", frame, print)}
    sets.update({f"s{k}": load(m, m.stem, frame, print) for k, m in enumerate(models)})
    pages = sorted((out / "images").glob("p*-page.html"))
    assert len(pages) == 6
    checked = 0
    for page in pages:
        parsed = _Page()
        parsed.feed(page.read_text())
        name = re.search(r"<h1>([^<]+)</h1>", page.read_text()).group(1)
        i = sets["gt"].images.index(name)
        h, w = sets["gt"].size(i)
        assert parsed.size == (h, w) and h != w
        with Image.open(out / "images" / page.name.replace("page.html", "base.png")) as im:
            assert im.size == (w, h)  # the picture at its own size, not transposed
        drawn = {}
        for layer, a in parsed.layers:
            if layer not in sets:
                continue
            box = [float(v) for v in re.findall(r"([0-9.]+)%", a["style"])]  # left, top, width, height
            x0, y0 = round(box[0] * w / 100), round(box[1] * h / 100)
            with Image.open(out / "images" / a["src"]) as im:
                piece = np.asarray(im) > 0
            assert abs(box[2] * w / 100 - piece.shape[1]) < 1e-3 and abs(box[3] * h / 100 - piece.shape[0]) < 1e-3
            canvas = np.zeros((h, w), bool)
            canvas[y0 : y0 + piece.shape[0], x0 : x0 + piece.shape[1]] = piece
            drawn[layer, int(a["data-cls"])] = canvas
        for (layer, c), canvas in drawn.items():
            np.testing.assert_array_equal(canvas, sets[layer].mask(name, KAGGLE_CLASSES[c]), err_msg=f"{page} {layer}")
            checked += 1
        for layer, preds in sets.items():  # a mask with pixels has its layer
            for c, cls in enumerate(KAGGLE_CLASSES):
                assert ((layer, c) in drawn) == bool(preds.mask(name, cls).any()), (page, layer, cls)
    assert checked > 100


def _hand_layout(folder: Path, column_folder: Path, gen: TaskGenerator) -> dict[str, Path]:
    """The same masks as the generated set, laid out as the hand-bone set: ``image_name,class,rle``,
    row-major, every image padded (bottom and right) to one size."""
    from core.csv_write import write_predictions

    side_h, side_w = max(h for h, _ in gen.sizes), max(w for _, w in gen.sizes)
    folder.mkdir()
    paths = {}
    images = list(gen.images())
    for key in ["gt", *gen.model_names]:
        rows = []
        for img in images:
            labels = img.gt if key == "gt" else img.models[key]
            padded = np.zeros((side_h, side_w), labels.dtype)
            padded[: labels.shape[0], : labels.shape[1]] = labels
            rows.append((img.name, label_rles(padded, len(gen.classes), "row")))
        paths[key] = folder / f"{key}.csv"
        write_predictions(paths[key], gen.classes, rows)
    return paths, (side_h, side_w)


def test_tune_chooses_alike_on_the_column_major_mixed_size_set_and_its_hand_bone_layout(tmp_path):
    from evaluation import tune

    gen = TaskGenerator(n_images=12, n_models=3, seed=5)
    kaggle = write_task_set(gen, tmp_path / "k", pngs=False, images=False)
    plain, (h, w) = _hand_layout(tmp_path / "p", tmp_path / "k", gen)
    a = tune(
        {m: kaggle[m] for m in gen.model_names},
        kaggle["gt"],
        classes=gen.classes,
        columns=KAGGLE_COLUMNS,
        rle_order="column",
        sizes=kaggle["sizes"],
    )
    b = tune({m: plain[m] for m in gen.model_names}, plain["gt"], classes=gen.classes, height=h, width=w)
    for key in ("weights", "threshold", "postprocess"):
        assert a.settings.get(key) == b.settings.get(key), key
    assert a.report() == b.report()
    assert [r.rules for r in a.results] == [r.rules for r in b.results]
    assert any(r.rules is not None and r.rules.active for r in a.results)  # some cleaning was chosen
    r = run_cli(
        "tune",
        "--gt",
        kaggle["gt"],
        *(kaggle[m] for m in gen.model_names),
        "-o",
        tmp_path / "t.yaml",
        *FLAGS,
        "--sizes",
        kaggle["sizes"],
        "-q",
    )
    assert r.exit_code == 0 and "warning" not in r.output, r.output
    import yaml

    tuned = yaml.safe_load((tmp_path / "t.yaml").read_text())
    assert tuned["columns"] == {"image": "ImageId", "class": "ClassId", "rle": "EncodedPixels"}
    assert tuned["rle_order"] == "column" and "columns" not in b.settings
    r = run_cli(
        "weighted", "--setting", tmp_path / "t.yaml", "--sizes", kaggle["sizes"], "-o", tmp_path / "w.csv", "-q"
    )
    assert r.exit_code == 0 and (tmp_path / "w.csv").read_text().startswith("ImageId,ClassId,EncodedPixels\n")


def test_images_smaller_than_their_own_sizes_are_named_against_them(tmp_path):
    """With a sizes file, an image is measured against its own size, not the largest."""
    (tmp_path / "sizes.csv").write_text("ImageId,height,width\nsmall.png,8,8\nbig.png,64,64\n")
    rle = " ".join(f"{1 + r * 64} 8" for r in range(12))  # 12 runs in the top rows of 64×64
    (tmp_path / "m.csv").write_text(f"ImageId,ClassId,EncodedPixels\nsmall.png,1,1 64\nbig.png,1,{rle}\n")
    flags = ("--columns", "image=ImageId,class=ClassId,rle=EncodedPixels", "--classes", "1")
    r = run_cli("check", tmp_path / "m.csv", *flags, "--sizes", tmp_path / "sizes.csv")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (
        f"warning: {tmp_path / 'm.csv'}: 1 image (big.png) has every run within the first quarter of its own "
        "size's pixels: is it smaller than the sizes given?"
    )


def test_a_second_kaggle_demo_replaces_only_what_the_first_wrote(tmp_path):
    folder = tmp_path / "d"
    assert run_cli("demo", folder, "--task", "kaggle", "--images", 3, "--models", 4, "-q").exit_code == 0
    assert (folder / "m3.csv").is_file() and (folder / "pngs" / "m3").is_dir()
    r = run_cli("demo", folder, "--task", "kaggle", "--images", 1, "--models", 2, "-q")
    assert r.exit_code == 0, r.output
    assert not (folder / "m3.csv").exists() and not (folder / "pngs" / "m3").exists()
    assert sorted(p.name for p in (folder / "pngs" / "m0").iterdir()) == ["img00000.png"]
    (folder / "mine.txt").write_text("a user's file")
    r = run_cli("demo", folder, "--task", "kaggle", "--images", 1, "-q")
    assert r.exit_code == 2 and "mine.txt" in r.output and (folder / "mine.txt").read_text() == "a user's file"


def test_quality_counts_each_image_on_its_own_grid_and_pixels(demo):
    """report --quality on such a set: the QA fragments are the dense masks' components, the
    STAPLE histograms count each image's own pixels."""
    from scipy import ndimage

    from core.sources import frame_of, load
    from quality import qa_flags
    from quality.tables import pooled_histograms

    folder, _ = demo
    frame = frame_of(
        [], list(KAGGLE_CLASSES), None, None, layout=KAGGLE_COLUMNS, rle_order="column", sizes=folder / "sizes.csv"
    )
    loaded = [load(folder / f"m{k}.csv", f"m{k}", frame, print) for k in range(3)]
    m0 = loaded[0]
    report = qa_flags(m0, classes=KAGGLE_CLASSES, height=m0.height, width=m0.width)
    fragments = {(f.image, f.cls): f.value for f in report.flags if f.flag == "fragments"}
    assert fragments
    for i, name in enumerate(m0.images):
        for cls in KAGGLE_CLASSES:
            n = ndimage.label(m0.mask(i, cls), np.ones((3, 3), int))[1]
            assert fragments.get((name, cls), 0) == (n if n > 1 else 0), (name, cls)
    rows = np.stack([p.rows for p in loaded])
    hist = pooled_histograms(loaded, rows, range(len(KAGGLE_CLASSES)))
    pixels = sum(h * w for h, w in (m0.size(i) for i in range(len(m0.images))))
    assert (hist.sum(1) == pixels).all()


@pytest.mark.parametrize(
    "rules",
    [
        dict(keep_largest=1, fill_holes=True),
        dict(min_size=7, max_hole=5, fill_holes=True, connectivity=4),
        dict(open=2, close=3),
        dict(open=40, close=60, min_size=10**6, keep_largest=10**6),  # beyond the small images: bounded per mask
        dict(close=25, keep_largest=2, fill_holes=True),
    ],
)
def test_a_block_of_masks_of_mixed_sizes_cleans_each_as_a_call_of_its_own(rules):
    from core.layout import runs_of
    from postprocess.cleaner import Cleaner, Rules

    rng = np.random.default_rng(3)
    grids = [(9, 31), (31, 9), (1, 40), (40, 1), (24, 24), (12, 50), (50, 12)]
    masks = []
    for h, w in grids:
        noisy = rng.random((h, w)) < 0.35
        blob = np.hypot(*np.mgrid[-h / 2 : h / 2 : complex(0, h), -w / 2 : w / 2 : complex(0, w)]) < min(h, w) / 2.5
        masks.append(runs_of(noisy | blob))
    cleaner = Cleaner([Rules(**rules)], ["x"], 64, 64)
    bounds = np.concatenate([[0], np.cumsum([len(m) for m in masks])]).astype(np.int64)
    out, out_bounds = cleaner.many(0, np.concatenate(masks), bounds, grids=np.array(grids))
    one = Cleaner([Rules(**rules)], ["x"], 64, 64)
    for k, (m, grid) in enumerate(zip(masks, grids, strict=True)):
        np.testing.assert_array_equal(out[out_bounds[k] : out_bounds[k + 1]], one(0, m, grid), err_msg=str(grid))
    assert (cleaner.stats() == one.stats()).all()
