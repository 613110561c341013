"""Bad flags and inputs across commands: one-line errors with the documented exit code, refused
before any work, and no input ever overwritten."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import yaml
from helpers import CLASSES, run_cli, write_csv

from core.atomic import atomic_write_text
from core.classes import parse_classes
from core.errors import InputError, UsageError
from ensemble.maps import read_boxes
from fusion.best_source import read_scores

SMALL = ("--classes", "a,b,c", "--height", 4, "--width", 4)


@pytest.fixture
def files(tmp_path):
    """Two predictions, a ground truth, a map folder and settings files, all tiny."""
    f = {
        "a": write_csv(tmp_path / "a.csv", [("x.png", c, "1 2") for c in CLASSES]),
        "b": write_csv(tmp_path / "b.csv", [("x.png", c, "2 2") for c in CLASSES]),
        "gt": write_csv(tmp_path / "gt.csv", [("x.png", c, "1 3") for c in CLASSES]),
        "scores": tmp_path / "scores.csv",
        "vote": tmp_path / "vote.yaml",
        "select": tmp_path / "select.yaml",
        "pp": tmp_path / "pp.yaml",
        "merge": tmp_path / "merge.yaml",
        "soft": tmp_path / "soft.yaml",
        "maps": tmp_path / "maps",
    }
    f["scores"].write_text("source,class,dice\n" + "".join(f"{s},{c},0.5\n" for s in "ab" for c in CLASSES))
    f["vote"].write_text(f"sources: {{a: {f['a']}, b: {f['b']}}}\n")
    f["select"].write_text(f"sources: {{a: {f['a']}, b: {f['b']}}}\nselect: {{default: a}}\n")
    f["pp"].write_text("default: {keep_largest: 1}\n")
    f["merge"].write_text("prefer: last\n")
    f["maps"].mkdir()
    np.save(f["maps"] / "x.npy", np.full((3, 2, 2), 0.8, np.float32))
    f["soft"].write_text(
        yaml.safe_dump({"CLASSES": list(CLASSES), "height": 4, "width": 4, "prob_maps": [{"path": str(f["maps"])}]})
    )
    return f


def _overwrites(f):
    """(command line, the input it names as output) pairs."""
    return [
        (["hard", f["a"], f["b"], "-o", f["a"], *SMALL], f["a"]),
        (["hard", "--setting", f["vote"], "-o", f["vote"], *SMALL], f["vote"]),
        (["weighted", "--setting", f["vote"], "-o", f["vote"], *SMALL], f["vote"]),
        (["merge", f["a"], f["b"], "--setting", f["merge"], "-o", f["merge"], *SMALL], f["merge"]),
        (["postprocess", f["a"], "--setting", f["pp"], "-o", f["pp"], *SMALL], f["pp"]),
        (["evaluate", "--gt", f["gt"], f["a"], "-o", f["gt"], *SMALL], f["gt"]),
        (["evaluate", "--gt", f["gt"], f["a"], "-o", f["a"], *SMALL], f["a"]),
        (["tune", "--gt", f["gt"], f["a"], f["b"], "-o", f["gt"], *SMALL], f["gt"]),
        (
            [
                "tune",
                "--gt",
                f["gt"],
                f["a"],
                f["b"],
                "-o",
                f["scores"].with_suffix(".yaml"),
                "--maps",
                f"m={f['maps']}",
                "--soft-output",
                f["scores"].with_suffix(".yaml"),
                *SMALL,
            ],
            None,
        ),
        (["select", "--setting", f["select"], "--best-from", f["scores"], "-o", f["scores"], *SMALL], f["scores"]),
        (["soft", "--setting", f["soft"], "-o", f["soft"]], f["soft"]),
    ]


def test_an_output_never_overwrites_an_input(files):
    for args, victim in _overwrites(files):
        before = victim.read_bytes() if victim else None
        r = run_cli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "would overwrite" in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        if victim:
            assert victim.read_bytes() == before


def test_an_output_that_is_a_folder_is_refused_up_front(files, tmp_path):
    """A folder output is a folder of PNG label maps (``core.label_write``): this one holds the
    inputs, which the toolbox did not write, so it is refused before any work."""
    before = sorted(tmp_path.rglob("*"))
    for cmd in (
        ["hard", files["a"], files["b"]],
        ["postprocess", files["a"], "--keep-largest", 1],
        ["merge", files["a"], files["b"]],
    ):
        r = run_cli(*cmd, "-o", tmp_path, *SMALL)
        assert r.exit_code == 2 and "output folder holds " in r.stderr and "input" in r.stderr, r.output
        assert len(r.stderr.strip().splitlines()) == 1 and sorted(tmp_path.rglob("*")) == before
    r = run_cli("evaluate", "--gt", files["gt"], files["a"], "-o", tmp_path / "nowhere" / "s.csv", *SMALL)
    assert r.exit_code == 2 and "does not exist" in r.stderr
    with pytest.raises(InputError, match="not a regular file"):
        atomic_write_text(tmp_path, "x")


def test_class_lists_from_files(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text("[' a', b]\n")
    assert parse_classes(str(good)) == ("a", "b")
    (tmp_path / "c.txt").write_text("\ufeffa\nb\n")
    assert parse_classes(str(tmp_path / "c.txt")) == ("a", "b")
    cases = {
        "bad.yaml": b"[a, b\n",
        "latin.txt": b"caf\xe9\n",
        "nested.yaml": b"[[a, b], c]\n",
        "map.yaml": b"{a: 1}\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UsageError, match=name):
            parse_classes(str(tmp_path / name))
    with pytest.raises(UsageError, match="no such file"):
        parse_classes(str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match="empty class name"):
        parse_classes(str(_write(tmp_path / "e.yaml", "[a, '']\n")))
    r = run_cli("check", tmp_path / "x.csv", "--classes", tmp_path / "bad.yaml")
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 1


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--models", 0],
        ["demo", "--images", 0],
        ["demo", "--images", -1],
        ["check", "x.csv", "--max-problems", -1],
        ["tune", "--gt", "g.csv", "a.csv", "b.csv", "-o", "t.yaml", "--margin", -1],
        ["tune", "--gt", "g.csv", "a.csv", "b.csv", "-o", "t.yaml", "--max-seconds", 0],
    ],
)
def test_flag_ranges(args, tmp_path):
    r = run_cli(*args, "--quiet")
    assert r.exit_code == 2 and "Invalid value" in r.output
    assert not list(tmp_path.iterdir())


def test_tune_refuses_nan_and_missing_map_folders_before_any_work(files, tmp_path):
    out = tmp_path / "t.yaml"
    r = run_cli("tune", "--gt", files["gt"], files["a"], files["b"], "-o", out, "--margin", "nan", *SMALL)
    assert r.exit_code == 2 and "--margin" in r.stderr
    r = run_cli("tune", "--gt", files["gt"], files["a"], files["b"], "-o", out, "--maps", f"m={tmp_path}/no", *SMALL)
    assert r.exit_code == 2 and "folder" in r.stderr and "not found" in r.stderr
    assert not out.exists() and "coverage" not in r.stderr


def test_weights_mixing_sources_and_classes_name_the_mix(files, tmp_path):
    s = _write(tmp_path / "w.yaml", "weights: {a: {b: 1}, b: {a: 0}}\n")
    r = run_cli(
        "weighted",
        files["a"],
        files["b"],
        "--setting",
        s,
        "-o",
        tmp_path / "o.csv",
        "--classes",
        "b,c,d",
        "--height",
        4,
        "--width",
        4,
    )
    # 'a' is a source, 'b' both a source and a class: the mix is reported, not "unknown 'a'"
    assert r.exit_code == 2 and "mixes sources ('a') and classes" in r.stderr
    s.write_text("weights: {zz: {a: 1}, b: {a: 0}}\n")
    r = run_cli("weighted", files["a"], files["b"], "--setting", s, "-o", tmp_path / "o.csv", *SMALL)
    assert r.exit_code == 2 and "'zz' is neither a source nor a class (sources: a, b)" in r.stderr


def test_min_votes_conflicts(files, tmp_path):
    r = run_cli("hard", files["a"], files["b"], "--min-votes", 1, "--threshold", 0.3, "-o", tmp_path / "o.csv", *SMALL)
    assert r.exit_code == 2 and "not both" in r.stderr
    s = _write(tmp_path / "w.yaml", "weights: {default: [1, 1], c: [1, 0]}\nmin_votes: 2\n")
    r = run_cli("weighted", files["a"], files["b"], "--setting", s, "-o", tmp_path / "o.csv", *SMALL)
    assert r.exit_code == 2 and "class c has only 1 source with weight > 0" in r.stderr
    r = run_cli("hard", files["a"], files["a"], "-o", tmp_path / "o.csv", *SMALL)
    assert r.exit_code == 2 and "given twice (source a and source a-2): each copy would vote" in r.stderr
    r = run_cli("hard", files["a"], files["a"], "-o", tmp_path / "o.csv", "--allow-duplicate", *SMALL)
    assert r.exit_code == 0 and "each copy votes (--allow-duplicate)" in r.stderr


def test_duplicate_names_and_files(files, tmp_path):
    r = run_cli("evaluate", "--gt", files["gt"], "--source", f"p={files['a']}", "--source", f"p={files['b']}", *SMALL)
    assert r.exit_code == 2 and "two sources named 'p'" in r.stderr
    r = run_cli("evaluate", "--gt", files["gt"], files["a"], files["a"], *SMALL)
    assert r.exit_code == 2 and "given twice" in r.stderr
    cfg = yaml.safe_load(files["soft"].read_text())
    cfg["prob_maps"] = [{"path": str(files["maps"]), "name": "m"}] * 2
    files["soft"].write_text(yaml.safe_dump(cfg))
    r = run_cli("soft", "--setting", files["soft"], "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "two prob_maps sources named 'm'" in r.stderr


def test_byte_order_marks_are_accepted(tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_bytes(b"\xef\xbb\xbfsource,class,dice\na,x,0.25\n")
    assert read_scores(scores, ["a"], ["x"]).dice[0, 0] == 0.25
    boxes = tmp_path / "b.csv"
    boxes.write_bytes(b"\xef\xbb\xbfimage_name,x0,y0,x1,y1\nq.png,1,2,3,4\n")
    assert read_boxes(str(boxes), "test") == {"q.png": (2, 1, 4, 3)}


def test_scores_files_with_extra_fields_or_nothing(tmp_path):
    scores = tmp_path / "s.csv"
    scores.write_text("source,class,dice\na,x,0.5,7\n")
    with pytest.raises(InputError, match=r"s\.csv:2: 4 fields, expected 3"):
        read_scores(scores, ["a"], ["x"])
    scores.write_text("")
    with pytest.raises(InputError, match=r"s\.csv: empty file"):
        read_scores(scores, ["a"], ["x"])


def test_empty_submissions_fail_check_and_evaluate(files, tmp_path):
    empty = write_csv(tmp_path / "empty.csv", [])
    r = run_cli("check", empty, *SMALL)
    assert r.exit_code == 1 and "no rows" in r.stdout and "INVALID (1 problem)" in r.stdout
    r = run_cli("evaluate", "--gt", empty, files["a"], *SMALL)
    assert r.exit_code == 1 and "no rows" in r.stderr


def test_check_counts_invalid_rows_apart_from_empty_masks(tmp_path):
    sub = write_csv(tmp_path / "s.csv", [("x.png", "a", ""), ("x.png", "b", "1 x"), ("x.png", "c", "1 1")])
    r = run_cli("check", sub, *SMALL)
    assert r.exit_code == 1 and "1 empty mask (1 invalid)" in r.stdout


def test_class_column_is_stripped_and_duplicate_columns_refused(files, tmp_path):
    spaced = write_csv(tmp_path / "s.csv", [("x.png", f" {c} ", "1 2") for c in CLASSES])
    assert run_cli("check", spaced, *SMALL).exit_code == 0
    dup = write_csv(tmp_path / "d.csv", [("x.png", c, "1 2,3 1") for c in CLASSES], header="image_name,class,rle,rle")
    r = run_cli("check", dup, *SMALL)
    assert r.exit_code == 2 and "column rle appears twice" in r.stderr


def test_nan_in_a_map_is_an_error_naming_the_file(files, tmp_path):
    a = np.full((3, 2, 2), 0.8, np.float32)
    a[1, 0, 1] = np.nan
    np.save(files["maps"] / "x.npy", a)
    r = run_cli("soft", "--setting", files["soft"], "-o", tmp_path / "o.csv")
    assert r.exit_code == 2 and "x.npy: class #2: NaN in the map" in r.stderr
    assert not (tmp_path / "o.csv").exists()


def test_gt_json_bad_points_and_duplicate_stems(files, tmp_path):
    ann = tmp_path / "ann"
    (ann / "one").mkdir(parents=True)
    (ann / "one" / "x.json").write_text(
        json.dumps({"annotations": [{"label": "a", "points": [[0, 0], [1e300, 0], [1, 1]]}]})
    )
    r = run_cli("evaluate", "--gt-json", ann, files["a"], *SMALL)
    assert r.exit_code == 2 and "bad points (polygon's bounding box" in r.stderr
    (ann / "one" / "x.json").write_text('{"annotations": [{"label": "a", "points": [[0, 0], [NaN, 0], [1, 1]]}]}')
    r = run_cli("evaluate", "--gt-json", ann, files["a"], *SMALL)
    assert r.exit_code == 2 and "points must be finite" in r.stderr and "RuntimeWarning" not in r.output
    (ann / "one" / "x.json").write_text(json.dumps({"annotations": []}))
    (ann / "two").mkdir()
    (ann / "two" / "x.json").write_text(json.dumps({"annotations": []}))
    r = run_cli("evaluate", "--gt-json", ann, files["a"], *SMALL)
    assert r.exit_code == 2 and "two annotation files for image x.png" in r.stderr


def test_outputs_that_are_devices_or_inside_input_folders_are_refused(files, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_cli("hard", files["a"], files["b"], "-o", fifo, *SMALL)
    assert r.exit_code == 2 and "is not a regular file" in r.stderr and stat.S_ISFIFO(os.stat(fifo).st_mode)
    before = (files["maps"] / "x.npy").read_bytes()
    r = run_cli("soft", "--setting", files["soft"], "-o", files["maps"] / "x.npy")
    assert r.exit_code == 2 and "inside the maps folder of maps" in r.stderr
    r = run_cli(
        "tune",
        "--gt",
        files["gt"],
        files["a"],
        files["b"],
        "-o",
        tmp_path / "t.yaml",
        "--maps",
        f"m={files['maps']}",
        "--soft-output",
        files["maps"] / "y.npy",
        *SMALL,
    )
    assert r.exit_code == 2 and "inside the --maps folder of m" in r.stderr
    assert (files["maps"] / "x.npy").read_bytes() == before and not (tmp_path / "t.yaml").exists()
    for out in ("", "x" * 300 + ".csv", "/proc/self/nowhere.csv"):
        r = run_cli("evaluate", "--gt", files["gt"], files["a"], "-o", out, *SMALL)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, (out, r.stderr)


def test_a_prediction_without_rows_is_scored_as_missing(files, tmp_path):
    empty = write_csv(tmp_path / "empty.csv", [])
    r = run_cli("evaluate", "--gt", files["gt"], empty, *SMALL)
    assert r.exit_code == 1 and "empty.csv: image x.png, class a: missing row" in r.stderr
    r = run_cli("evaluate", "--gt", files["gt"], empty, "--missing", "empty", "--format", "csv", *SMALL)
    assert r.exit_code == 0 and "empty,a,0.000033" in r.stdout  # (0 + 1e-4) / (3 + 1e-4)


def test_tune_with_bad_maps_writes_nothing(files, tmp_path):
    np.save(files["maps"] / "x.npy", np.full((2, 2, 2), 0.8, np.float32))  # 2 channels for 3 classes
    out = tmp_path / "t.yaml"
    r = run_cli("tune", "--gt", files["gt"], files["a"], files["b"], "-o", out, "--maps", f"m={files['maps']}", *SMALL)
    assert r.exit_code == 2 and "2 channels, expected 3" in r.stderr
    assert not out.exists() and not (tmp_path / "t.soft.yaml").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["weighted", "--weights", "1e308,1e308"], "weights must be numbers in [0, 1e+06]"),
        (["tune", "--gt", "GT", "--levels", "0,1,nan"], "--levels must lie in [0, 1e+06]"),
        (["tune", "--gt", "GT", "--levels", "0,1,inf"], "--levels must lie in [0, 1e+06]"),
    ],
)
def test_weights_are_bounded(files, tmp_path, args, message):
    args = [files["gt"] if a == "GT" else a for a in args]
    r = run_cli(*args, files["a"], files["b"], "-o", tmp_path / "o.yaml", *SMALL)
    assert r.exit_code == 2 and message in r.stderr


def test_soft_map_checks(files, tmp_path):
    cfg = yaml.safe_load(files["soft"].read_text())
    out = tmp_path / "o.csv"
    np.save(files["maps"] / "x.npy", np.full((3, 2, 2), 5.0, np.float32))  # logits without logits: true
    r = run_cli("soft", "--setting", files["soft"], "-o", out)
    assert r.exit_code == 2 and "value 5 outside [0, 1] in the map; logits need 'logits: true'" in r.stderr
    cfg["prob_maps"][0]["logits"] = True
    files["soft"].write_text(yaml.safe_dump(cfg))
    assert run_cli("soft", "--setting", files["soft"], "-o", out).exit_code == 0
    boxes = _write(tmp_path / "boxes.csv", "image_name,x0,y0,x1,y1\nx.png,0,0,4,10000000000\n")
    cfg["prob_maps"][0]["boxes"] = str(boxes)
    files["soft"].write_text(yaml.safe_dump(cfg))
    r = run_cli("soft", "--setting", files["soft"], "-o", out)
    assert r.exit_code == 2 and "boxes.csv:2: image x.png: box coordinate beyond" in r.stderr
    del cfg["prob_maps"][0]["boxes"]
    cfg["prob_maps"].append({"path": str(files["maps"]) + "/"})
    files["soft"].write_text(yaml.safe_dump(cfg))
    r = run_cli("soft", "--setting", files["soft"], "-o", out)
    assert r.exit_code == 2 and "listed twice" in r.stderr
    other = tmp_path / "other" / "maps"
    other.mkdir(parents=True)
    np.save(other / "x.npy", np.full((3, 2, 2), 1.0, np.float32))
    cfg["prob_maps"][1] = {"path": str(other), "logits": True}
    files["soft"].write_text(yaml.safe_dump(cfg))
    r = run_cli("soft", "--setting", files["soft"], "-o", out)
    assert r.exit_code == 0 and "renamed (maps → maps-2)" in r.stderr


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.csv").write_text("precious\n")
    r = run_cli("demo", tmp_path, "--images", 1, "--models", 1, "-q")
    assert r.exit_code == 2 and "holds mine.csv, which `demo` did not write" in r.stderr
    assert (tmp_path / "mine.csv").read_text() == "precious\n"
    r = run_cli("demo", tmp_path / "mine.csv", "-q")
    assert r.exit_code == 2 and "is a file" in r.stderr


def test_images_outside_the_ground_truth_are_noted(files, tmp_path):
    more = write_csv(tmp_path / "more.csv", [(i, c, "1 2") for i in ("x.png", "z.png") for c in CLASSES])
    r = run_cli("evaluate", "--gt", files["gt"], more, *SMALL)
    assert r.exit_code == 0
    assert (
        "more.csv: 1 of its 2 images is not in the ground truth and not scored (first: z.png); "
        "scores cover the 1 ground-truth image"
    ) in r.stderr


def test_settings_are_strict_about_types(files, tmp_path):
    for text, message in [
        ("weights: [1, true]\n", "weights"),
        ("min_votes: true\n", "min_votes"),
        ("height: '4'\n", "height"),
    ]:
        s = _write(tmp_path / "w.yaml", text)
        r = run_cli("weighted", files["a"], files["b"], "--setting", s, "-o", tmp_path / "o.csv", *SMALL)
        assert r.exit_code == 2 and message in r.stderr, (text, r.stderr)
    s = _write(tmp_path / "c.yaml", "classes: [1, 2, 3]\n")  # bare numbers are class names
    one = write_csv(tmp_path / "one.csv", [("x.png", c, "1 2") for c in "123"])
    two = write_csv(tmp_path / "two.csv", [("x.png", c, "1 2") for c in "123"])
    r = run_cli("hard", one, two, "--setting", s, "-o", tmp_path / "o.csv", "--height", 4, "--width", 4, "-q")
    assert r.exit_code == 0, r.stderr
