"""Messages: truncated files, image sets, unknown names and keys, notes and warnings, the
compile step's line, counts and tables."""

from __future__ import annotations

import re

import pytest
from helpers import CLASSES, default_signals, run_cli, write_csv

from core.errors import InputError
from core.predictions import read_predictions

SHAPE = ("--classes", "a,b,c", "--height", 4, "--width", 4)


def full_rows(images, rle="1 2"):
    return [(img, c, rle) for img in images for c in CLASSES]


def csv_bytes(rows) -> bytes:
    return ("image_name,class,rle\n" + "".join(f"{i},{c},{r}\n" for i, c, r in rows)).encode()


# --- a file cut mid-line or at a line end says it looks truncated ---------------


def test_cut_mid_rle_is_one_truncation_line(tmp_path):
    data = csv_bytes(full_rows(["x.png", "y.png"]))
    path = tmp_path / "cut.csv"
    path.write_bytes(data[: data.rfind(b"y.png,b,1 2") + len("y.png,b,1")])  # "1 2" cut to "1"
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0] == (
        f"{path}: file looks truncated: last line 6 has no newline and invalid RLE: odd number "
        "of values (RLE needs start/length pairs) at value #1; image y.png has 2 of 3 classes"
    )
    assert not any("missing row" in s for s in lines)  # y.png, c is part of the truncation, not a flood
    assert "INVALID (1 problem)" in lines[-1]
    with pytest.raises(InputError, match=r"cut\.csv: file looks truncated: last line 6"):
        read_predictions(path, CLASSES, 4, 4)
    r = run_cli("hard", path, path, "-o", tmp_path / "o.csv", *SHAPE, "--allow-duplicate")
    assert r.exit_code == 2 and "file looks truncated" in r.stderr and not (tmp_path / "o.csv").exists()


def test_cut_inside_the_class_field(tmp_path):
    data = csv_bytes(full_rows(["x.png", "y.png"]))
    path = tmp_path / "cut.csv"
    path.write_bytes(data[: data.rfind(b"y.png,b,") + len("y.png,b")])
    with pytest.raises(
        InputError, match=re.escape("cut.csv: file looks truncated: last line 6 has no newline and 2 of 3 fields")
    ):
        read_predictions(path, CLASSES, 4, 4)
    assert run_cli("check", path, *SHAPE).exit_code == 2  # unreadable, as before


def test_cut_at_a_line_end_reports_the_incomplete_image(tmp_path):
    data = csv_bytes(full_rows(["x.png", "y.png"]))
    path = tmp_path / "cut.csv"
    path.write_bytes(data[: data.rfind(b"\ny.png,c")])  # last line complete, newline and last row gone
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == (
        f"{path}: file looks truncated: last line 6 has no newline; image y.png has 2 of 3 classes"
    )
    assert "missing row" not in r.stdout and "INVALID (1 problem)" in r.stdout
    other = write_csv(tmp_path / "other.csv", full_rows(["x.png", "y.png"]))
    r = run_cli("hard", path, other, other, "-o", tmp_path / "o.csv", *SHAPE, "--allow-duplicate")
    assert r.exit_code == 1  # the missing row is still the error; the warning explains it
    assert f"warning: {path}: file looks truncated" in r.stderr and "missing row" in r.stderr


def test_complete_file_without_final_newline_is_valid(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_bytes(csv_bytes(full_rows(["x.png", "y.png"])).rstrip(b"\n"))
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0 and "truncated" not in r.output
    assert read_predictions(path, CLASSES, 4, 4).truncation is None


# --- one line per distinct unknown class, with a count and a suggestion ---------


def test_unknown_classes_once_each_with_suggestion(tmp_path):
    rows = [(f"i{k}.png", c, "1 1") for k in range(50) for c in ("A", "b", "cc")]
    path = write_csv(tmp_path / "case.csv", rows)
    r = run_cli("check", path, *SHAPE, "--max-problems", 100)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert f"{path}:2: image i0.png, class A: unknown class 'A' (50 rows, first here; did you mean 'a'?)" in lines
    # 'cc' is not close enough to 'c' for a guess: the class list instead
    assert any(
        s.startswith(
            f"{path}:4: image i0.png, class cc: unknown class 'cc' (50 rows, first here; "
            "expected one of 3 classes: a, b, c)"
        )
        for s in lines
    )
    assert f"{path}: class a: no row in any of the 50 images" in lines
    assert "INVALID (4 problems)" in lines[-1]  # 2 unknown names + 2 absent classes, not 200 lines
    with pytest.raises(
        InputError, match=re.escape("unknown class 'A' (50 rows, first here; did you mean 'a'?) (and 1 more problem)")
    ):
        read_predictions(path, CLASSES, 4, 4)


def test_suggestion_for_a_misspelt_hand_bone(tmp_path):
    from core.classes import DEFAULT_CLASSES
    from core.errors import suggest

    assert suggest("trapezium", DEFAULT_CLASSES) == "Trapezium"
    assert suggest("Trapezuim", DEFAULT_CLASSES) == "Trapezium"
    assert suggest("finger_3", DEFAULT_CLASSES) == "finger-3"
    assert suggest("Femur", DEFAULT_CLASSES) is None


# --- --expect-images and --images-from ------------------------------------------


@pytest.fixture
def image_set(tmp_path):
    """Three of four images (cut at an image boundary), a sample submission of all four
    (one row per image and class) and a plain list with a fifth name."""
    full = write_csv(tmp_path / "full.csv", full_rows(["w.png", "x.png", "y.png", "z.png"]))
    three = write_csv(tmp_path / "three.csv", full_rows(["w.png", "x.png", "y.png"]))
    sample = write_csv(tmp_path / "sample.csv", full_rows(["dir/w.png", "x.png", "y.png", "z.png"], ""))
    listing = tmp_path / "list.txt"
    listing.write_text("w.png\nx.png\n\ny.png\nz.png\nv.png\n")
    return full, three, sample, listing


def test_check_reports_missing_and_extra_images(image_set):
    full, three, sample, listing = image_set
    assert run_cli("check", three, *SHAPE).exit_code == 0  # the cut is invisible without a reference
    r = run_cli("check", three, *SHAPE, "--images-from", sample, "--expect-images", 4)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[:2] == [f"{three}: 3 images, expected 4 (1 fewer)", f"{three}: 1 image of {sample} missing (z.png)"]
    r = run_cli("check", full, *SHAPE, "--images-from", listing)
    assert r.exit_code == 1 and f"{full}: 1 image of {listing} missing (v.png)" in r.stdout
    r = run_cli("check", full, *SHAPE, "--images-from", three)
    assert r.exit_code == 1 and f"{full}: 1 image not in {three} (z.png)" in r.stdout
    assert run_cli("check", full, *SHAPE, "--images-from", sample, "--expect-images", 4).exit_code == 0


def test_many_differences_are_counted_with_the_first_names(tmp_path):
    names = [f"i{k:04d}.png" for k in range(1200)]
    sub = write_csv(tmp_path / "sub.csv", full_rows(names[:12]))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(names) + "\n")
    r = run_cli("check", sub, *SHAPE, "--images-from", listing)
    assert f"{sub}: 1,188 images of {listing} missing (first: i0012.png, i0013.png, i0014.png)" in r.stdout


def test_commands_exit_1_before_writing(image_set, tmp_path):
    full, three, sample, _ = image_set
    out = tmp_path / "out.csv"
    for args in (["hard", full, three, three, "--allow-duplicate"], ["weighted", three, full], ["merge", three]):
        r = run_cli(*args, "-o", out, *SHAPE, "--images-from", sample)
        assert r.exit_code == 1, (args, r.output)
        assert (
            f"error: {three}: 1 image of {sample} missing (z.png)" in r.stderr
            or f"error: the merged parts ({three}): 1 image of {sample} missing (z.png)" in r.stderr
        )
        assert not out.exists()
    r = run_cli("merge", three, "-o", out, *SHAPE, "--expect-images", 4)
    assert r.exit_code == 1 and "3 images, expected 4 (1 fewer)" in r.stderr and not out.exists()
    r = run_cli("evaluate", "--gt", full, three, *SHAPE, "--expect-images", 4, "-o", out)
    assert r.exit_code == 1 and f"error: {three}: 3 images, expected 4" in r.stderr and not out.exists()
    assert run_cli("merge", three, full, "-o", out, *SHAPE, "--images-from", sample).exit_code == 0
    r = run_cli("hard", full, full, full, "--allow-duplicate", "-o", out, *SHAPE, "--expect-images", 4)
    assert r.exit_code == 0


def test_image_list_files(tmp_path):
    from core.imageset import read_image_list

    (tmp_path / "s.csv").write_text("id,image_name,class\n1,a/x.png,c\n2,a/x.png,d\n3,y.png,c\n")
    assert read_image_list(tmp_path / "s.csv") == ["x.png", "y.png"]
    (tmp_path / "l.txt").write_text("\ufeffx.png\r\nb\\y.png\r\n")
    assert read_image_list(tmp_path / "l.txt") == ["x.png", "y.png"]
    (tmp_path / "bad.csv").write_text("id,name\n1,x.png\n")
    with pytest.raises(InputError, match=r"bad\.csv:1: no image_name column \(header is id,name\)"):
        read_image_list(tmp_path / "bad.csv")
    r = run_cli("check", tmp_path / "s.csv", *SHAPE, "--images-from", tmp_path / "nope.txt")
    assert r.exit_code == 2 and "nope.txt: no such file" in r.stderr


# --- an unknown settings key lists the valid keys of its section ----------------


def _keys(model) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items())


@pytest.mark.parametrize(
    "command, yaml_text, expected",
    [
        ("hard", "treshold: 0.4\n", "s.yaml: treshold: unknown key (did you mean 'threshold'? valid keys: {vote})"),
        (
            "hard",
            "postprocess: {default: {keep_larges: 1}}\n",
            "s.yaml: postprocess.default.keep_larges: unknown key (did you mean 'keep_largest'? "
            "valid keys: open, close, "
            "min_size, keep_largest, fill_holes, max_hole, connectivity, min_area)",
        ),
        (
            "soft",
            "prob_maps: [{path: m, wieght: 2}]\n",
            "s.yaml: prob_maps.0.wieght: unknown key (did you mean 'weight'? valid keys: path, name, weight, logits, "
            "scale, boxes)",
        ),
        ("merge", "parts: [a.csv]\nzzz: 1\n", "s.yaml: zzz: unknown key (valid keys: {merge})"),
    ],
)
def test_unknown_settings_key_lists_valid_keys(tmp_path, monkeypatch, command, yaml_text, expected):
    from settings.merge import MergeSettings
    from settings.vote import VoteSettings

    assert "threshold, min_votes" in _keys(VoteSettings) and "parts, output, prefer" in _keys(MergeSettings)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(yaml_text)
    args = [command, "--setting", "s.yaml"] + (["a.csv", "b.csv", "-o", "o.csv"] if command == "hard" else [])
    r = run_cli(*args)
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: " + expected.format(vote=_keys(VoteSettings), merge=_keys(MergeSettings))


# --- --best-from names the sources the scores file holds ------------------------


def test_best_from_with_other_source_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("unet", "hrnet"):
        write_csv(tmp_path / f"{name}.csv", full_rows(["x.png"]))
    (tmp_path / "s.yaml").write_text(
        "sources: {unet: unet.csv, hrnet: hrnet.csv}\nselect: {default: unet}\n"
        "classes: [a, b, c]\nheight: 4\nwidth: 4\n"
    )
    (tmp_path / "scores.csv").write_text(
        "source,class,dice\n" + "".join(f"{s},{c},0.5\n" for s in ("unet_v2", "hrnet_v2") for c in CLASSES)
    )
    r = run_cli("select", "--setting", "s.yaml", "--best-from", "scores.csv", "-o", "o.csv")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "error: scores.csv: no row names one of the sources (unet, hrnet) and one of the "
        "classes; the file's sources: unet_v2, hrnet_v2; its classes: a, b, c"
    )
    (tmp_path / "scores.csv").write_text(
        "source,class,dice\n" + "".join(f"{s},{c},0.5\n" for s in ("unet", "hrnet_v2") for c in CLASSES)
    )
    r = run_cli("select", "--setting", "s.yaml", "--best-from", "scores.csv", "-o", "o.csv")
    assert r.exit_code == 0, r.output
    assert "note: scores.csv: ignored 3 rows of other sources (hrnet_v2)" in r.stderr
    assert "note: scores.csv has no score for source hrnet of s.yaml (its other sources: hrnet_v2)" in r.stderr


# --- evaluate says how many prediction images it did not score -----------------


def test_evaluate_notes_unscored_images(tmp_path):
    names = [f"i{k:03d}.png" for k in range(288)]
    gt = write_csv(tmp_path / "gt.csv", full_rows(names[:100]))
    pred = write_csv(tmp_path / "pred.csv", full_rows(names))
    r = run_cli("evaluate", "--gt", gt, pred, *SHAPE)
    assert r.exit_code == 0, r.output
    assert (
        f"note: {pred}: 188 of its 288 images are not in the ground truth and not scored (first: i100.png, "
        "i101.png, i102.png); scores cover the 100 ground-truth images"
    ) in r.stderr
    assert "(100 images; * marks the best source per row)" in r.stdout
    assert "not scored" not in run_cli("evaluate", "--gt", gt, pred, *SHAPE, "--quiet").stderr


# --- tune on few validation images warns --------------------------------------


def test_tune_warns_on_few_images(tmp_path):
    from evaluation.search import ADVISED_IMAGES, CLEANING_GRID, candidates, few_images_warning

    gt = write_csv(tmp_path / "gt.csv", full_rows([f"i{k}.png" for k in range(4)]))
    m1 = write_csv(tmp_path / "m1.csv", full_rows([f"i{k}.png" for k in range(4)]))
    m2 = write_csv(tmp_path / "m2.csv", full_rows([f"i{k}.png" for k in range(4)]))
    args = ["tune", "--gt", gt, "--source", f"m1={m1}", "--source", f"m2={m2}", "-o", tmp_path / "t.yaml", *SHAPE]
    r = run_cli(*args)
    assert r.exit_code == 0, r.output
    n, k = len(candidates(["m1", "m2"])), len(CLEANING_GRID)
    assert (
        f"warning: tuning on 4 images: each of the 3 per-class choices (among {n} combinations, then {k} "
        f"cleaning rules) rests on 4 images, so it may fit their noise (30 or more images advised)"
    ) in r.stderr
    assert "warning" not in run_cli(*args, "--quiet").stderr
    assert few_images_warning(ADVISED_IMAGES, CLASSES, ["m1", "m2"]) is None
    assert "on 1 image:" in few_images_warning(1, CLASSES, ["m1", "m2"])


# --- the compile step has its own line, before the progress bar ---------------


def test_compile_line_comes_before_the_bar(tmp_path, monkeypatch):
    import core.jit

    calls = []
    monkeypatch.setattr(core.jit, "kernels_cached", lambda *modules: calls.append(modules) or False)
    a = write_csv(tmp_path / "a.csv", full_rows(["x.png", "y.png"]))
    b = write_csv(tmp_path / "b.csv", full_rows(["x.png", "y.png"], "2 3"))
    c = write_csv(tmp_path / "c.csv", full_rows(["x.png", "y.png"], "1 4"))
    r = run_cli("hard", a, b, c, "-o", tmp_path / "o.csv", *SHAPE)
    assert r.exit_code == 0, r.output
    assert "core/_block_kernels.py:vote_block_kernel" in calls[0] and "core/_csv_kernels.py:tokenize_kernel" in calls[0]
    lines = r.stderr.splitlines()
    assert re.fullmatch(r"compiling numba kernels \(first run only, ~\d+ s; cached afterwards\)…", lines[0])
    assert re.fullmatch(r"compiled in \d+\.\d s", lines[1])
    assert "hard vote:" in r.stderr.split("\n", 2)[2]  # the bar (desc "hard vote") only after both lines
    monkeypatch.setattr(core.jit, "kernels_cached", lambda *modules: True)
    r = run_cli("hard", a, b, c, "-o", tmp_path / "o.csv", *SHAPE)
    assert "compiling" not in r.stderr and "compiled in" not in r.stderr  # warm cache: no message


WARM_CHECK = r"""
import sys, numba
sys.path[:0] = [{root!r}, {tests!r}]
from click.testing import CliRunner
import cli
from core.jit import KERNEL_PACKAGES
from core.warmup import COPY, READ, SCORE, compile_steps
from ensemble.warmup import MAPS, SOFT, VOTE, VOTE_MASKS
from evaluation.warmup import TUNE
from fusion.warmup import MERGE
from postprocess.warmup import clean_blocks_step, clean_step
from quality.warmup import QA, SIMPLE, STAPLE
from settings.postprocess import Rules

def signatures():
    out = {{}}
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] in KERNEL_PACKAGES:
            for attr, f in vars(mod).items():
                if isinstance(f, numba.core.dispatcher.Dispatcher):
                    out[f"{{name}}.{{attr}}"] = set(f.signatures)
    return out

import ensemble.vote_plan, ensemble.soft_image, fusion.merge_parts, postprocess.clean_set  # every kernel module
import core.score, evaluation.search, quality.staple, quality.qa, quality.tables
rules = None if {rules!r} is None else [Rules(**{rules!r})]
named = dict(read=READ, copy=COPY, score=SCORE, vote=VOTE, vote_masks=VOTE_MASKS, soft=SOFT, maps=MAPS, merge=MERGE,
             tune=TUNE, clean=clean_step(rules), clean_blocks=clean_blocks_step(rules), staple=STAPLE, simple=SIMPLE,
             qa=QA)
compile_steps(*(named[s] for s in {steps!r}))
before = signatures()
r = CliRunner().invoke(cli.cli, {args!r}, catch_exceptions=False)
assert r.exit_code == 0, r.output
after = signatures()
new = {{k: v - before.get(k, set()) for k, v in after.items() if v - before.get(k, set())}}
print("NEW", new)
"""


def write_maps(folder, paths) -> str:
    """A soft settings file over maps of every kind the numba engine reads (float16, float32,
    float64, uint8 and uint16 with a scale, logits, a box source), with inline cleaning."""
    import numpy as np
    import yaml

    from core.classes import DEFAULT_CLASSES
    from core.predictions import read_predictions

    rng = np.random.default_rng(5)
    kinds = {
        "f16": ({}, np.float16),
        "f32": ({}, np.float32),
        "f64": ({}, np.float64),
        "u8": ({"scale": 255}, np.uint8),
        "u16": ({"scale": 1000}, np.uint16),
        "lg": ({"logits": True}, np.float32),
        "box": ({"boxes": str(folder / "boxes.csv")}, np.float16),
    }
    images = read_predictions(paths["gt"], DEFAULT_CLASSES, 64, 64).images
    (folder / "boxes.csv").write_text("image_name,x0,y0,x1,y1\n" + "".join(f"{n},3,4,40,50\n" for n in images))
    for name, (extra, dtype) in kinds.items():
        (folder / name).mkdir()
        for image in images:
            p = rng.random((29, 16, 16))
            a = p * extra["scale"] if "scale" in extra else (p * 8 - 4 if "logits" in extra else p)
            np.save(folder / name / f"{image[:-4]}.npy", a.astype(dtype))
    cfg = {
        "height": 64,
        "width": 64,
        "prob_maps": [{"path": str(folder / n), **kinds[n][0]} for n in kinds],
        "postprocess": {"default": {"keep_largest": 1, "fill_holes": True}},
    }
    (folder / "soft.yaml").write_text(yaml.safe_dump(cfg))
    return str(folder / "soft.yaml")


KEEP_FILL = {"keep_largest": 1, "fill_holes": True}


@pytest.mark.parametrize(
    "steps, rules, command",
    [
        (
            ("read", "vote", "vote_masks", "clean"),
            KEEP_FILL,
            ["hard", "{m1}", "{m2}", "{m1}", "--allow-duplicate", "-o", "{out}", "--setting", "{pp}"],
        ),
        (("read", "vote"), None, ["weighted", "{m1}", "{m2}", "--weights", "1,2", "-o", "{out}"]),
        (
            ("read", "vote", "vote_masks", "staple"),
            None,
            ["weighted", "{m1}", "{m2}", "-o", "{out}", "--setting", "{st}"],
        ),
        (("read", "merge", "copy"), None, ["merge", "{m1}", "{m2}", "-o", "{out}"]),
        (("read", "score"), None, ["evaluate", "--gt", "{gt}", "{m1}"]),
        (("read", "tune"), None, ["tune", "--gt", "{gt}", "{m1}", "{m2}", "-o", "{yaml}"]),
        (
            ("read", "tune", "staple"),
            None,
            ["tune", "--gt", "{gt}", "{m1}", "{m2}", "--staple", "--area-gate", "-o", "{yaml}"],
        ),
        (
            ("read", "tune", "maps"),
            None,
            [
                "tune",
                "--gt",
                "{gt}",
                "{m1}",
                "{m2}",
                "--maps",
                "model1={maps}/f16",
                "--maps",
                "model2={maps}/f64",
                "-o",
                "{yaml}",
            ],
        ),
        (
            ("read", "clean_blocks"),
            {**KEEP_FILL, "open": 1},
            ["postprocess", "{m1}", "-o", "{out}", "--keep-largest", "1", "--fill-holes", "--open", "1"],
        ),
        (("read",), None, ["check", "{m1}"]),
        (("read", "qa"), None, ["check", "{m1}", "--qa", "{out}"]),
        (("read", "staple"), None, ["staple", "{m1}", "{m2}", "{gt}", "-o", "{out}", "--estimates", "{yaml}"]),
        (
            ("read", "staple"),
            None,
            ["staple", "{m1}", "{m2}", "--scope", "image", "--region", "disagreement", "-o", "{out}"],
        ),
        (("read", "simple"), None, ["staple", "{m1}", "{m2}", "{gt}", "--method", "simple", "-o", "{out}"]),
        (("soft", "clean"), KEEP_FILL, ["soft", "--setting", "{soft}", "-o", "{out}", "--engine", "cpu"]),
    ],
)
def test_warm_up_compiles_every_kernel_the_run_uses(tmp_path, steps, rules, command):
    """In a fresh process, after the warm-up steps (for ``clean``: with the run's cleaning
    rules, which the commands pass on) a real run (29 classes, 64², realistic masks) calls
    no kernel with argument types the warm-up did not compile."""
    import subprocess
    import sys
    from pathlib import Path

    from core.synthetic import Generator, write_set

    root = Path(__file__).resolve().parent.parent
    paths = write_set(Generator(n_images=3, n_models=2, height=64, width=64, seed=2), tmp_path)
    (tmp_path / "pp.yaml").write_text("postprocess: {default: {keep_largest: 1, fill_holes: true}}\n")
    (tmp_path / "st.yaml").write_text("staple: {default: disagreement, Radius: vote, Ulna: all}\n")
    maps = write_maps(tmp_path, paths)
    fill = {
        "m1": paths["model1"],
        "m2": paths["model2"],
        "gt": paths["gt"],
        "out": tmp_path / "o.csv",
        "pp": tmp_path / "pp.yaml",
        "st": tmp_path / "st.yaml",
        "yaml": tmp_path / "t.yaml",
        "soft": maps,
        "maps": tmp_path,
    }
    shape = [] if command[0] == "soft" else ["--height", "64", "--width", "64"]  # soft: in its settings
    args = [a.format(**fill) for a in command] + shape + ["-q"]
    script = WARM_CHECK.format(root=str(root), tests=str(root / "tests"), steps=steps, rules=rules, args=args)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        preexec_fn=default_signals,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "NEW {}"


# --- counts with separators and plurals, a table in 100 columns, empty masks ---


def test_merge_and_select_counts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [f"i{k:03d}.png" for k in range(400)]
    write_csv(tmp_path / "p.csv", full_rows(names))
    r = run_cli("merge", "p.csv", "-o", "o.csv", *SHAPE)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "merge: 1 file → o.csv: 400 images × 3 classes: 1,200 rows expected, 1,200 present, 0 missing",
        "  overlaps: 0 rows in several files: 0 identical, 0 conflicting",
        "  p.csv: 1,200 rows taken",
    ]
    (tmp_path / "s.yaml").write_text(
        "sources: {a: p.csv, b: o.csv}\nselect: {c: b, default: a}\nclasses: [a, b, c]\nheight: 4\nwidth: 4\n"
    )
    r = run_cli("select", "--setting", "s.yaml", "-o", "sel.csv")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "select: 400 images × 3 classes, 1,200 rows → sel.csv",
        "  a: 800 rows (2 classes) from p.csv",
        "  b: 400 rows (1 class) from o.csv",
    ]


def test_evaluate_table_fits_100_columns(tmp_path):
    gt = write_csv(tmp_path / "gt.csv", full_rows(["x.png", "y.png"]))
    stems = [
        "model_unet_resnet34_experiment_long_fold0",
        "model_unet_resnet34_experiment_long_fold1",
        "hrnet_w48_ocr_experiment_2026_11_28_final",
        "segformer_b5_1024_longer_name_run3",
        "m5",
    ]
    preds = [write_csv(tmp_path / f"{s}.csv", full_rows(["x.png", "y.png"], f"1 {k + 1}")) for k, s in enumerate(stems)]
    r = run_cli("evaluate", "--gt", gt, *preds, *SHAPE, "-q")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0].split() == [
        "class",
        "model_un…g_fold0",
        "model_un…g_fold1",
        "hrnet_w4…8_final",
        "segforme…me_run3",
        "m5",
    ]
    assert lines[5:] == [
        "(2 images; * marks the best source per row)",
        "  model_un…g_fold0 = model_unet_resnet34_experiment_long_fold0",
        "  model_un…g_fold1 = model_unet_resnet34_experiment_long_fold1",
        "  hrnet_w4…8_final = hrnet_w48_ocr_experiment_2026_11_28_final",
        "  segforme…me_run3 = segformer_b5_1024_longer_name_run3",
    ]
    dice_2 = (2 * 2 + 1e-4) / (2 + 2 + 1e-4)  # prediction "1 2" equals the ground truth
    assert lines[1].split()[1:3] == ["0.6667", f"{dice_2:.4f}*"]


def test_evaluate_table_with_many_sources_is_split(tmp_path):
    from evaluation.scores import _labels, shorten

    gt = write_csv(tmp_path / "gt.csv", full_rows(["x.png"]))
    preds = [write_csv(tmp_path / f"source{k:02d}.csv", full_rows(["x.png"])) for k in range(12)]
    r = run_cli("evaluate", "--gt", gt, *preds, *SHAPE, "-q")
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    headers = [s.split() for s in lines if s.startswith("class")]
    assert len(headers) == 2 and sum(len(h) - 1 for h in headers) == 12
    assert [h for hs in headers for h in hs[1:]] == [f"source{k:02d}" for k in range(12)]
    assert shorten("abcdefghij", 5) == "ab…ij" and shorten("abc", 5) == "abc"
    assert _labels(["experiment_a_fold0_final", "experiment_b_fold0_final"], 9) == ["1:ex…inal", "2:ex…inal"]


def test_check_names_empty_masks(tmp_path):
    rows = [(f"i{k}.png", c, "" if (c == "b" or (c == "c" and k < 2)) else "1 1") for k in range(7) for c in CLASSES]
    path = write_csv(tmp_path / "e.csv", rows)
    r = run_cli("check", path, *SHAPE)
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        "empty masks per class: b: 7, c: 2; first: i0.png (class b), i0.png (class c), i1.png (class b), "
        "i1.png (class c), i2.png (class b), …",
        f"{path}: valid: 7 images × 3 classes, 21 rows, 9 empty masks, 12 runs, total area 12 px",
    ]
    one = write_csv(tmp_path / "one.csv", [("x.png", c, "1 1") for c in CLASSES])
    assert len(run_cli("check", one, *SHAPE).stdout.splitlines()) == 1  # no empty mask, no list
