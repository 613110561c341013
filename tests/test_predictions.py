import os
import re

import numpy as np
import pytest
from helpers import CLASSES, run_cli, write_csv

from core.errors import InputError
from core.predictions import PredictionWriter, read_predictions, scan_predictions, write_predictions


def test_round_trip_and_canonical_order(tmp_path):
    src = write_csv(
        tmp_path / "in.csv",
        [
            ("img2.png", "c", "1 2"),
            ("img2.png", "a", ""),
            ("img2.png", "b", "5 1"),
            ("img1.png", "b", "3 3"),
            ("img1.png", "a", "1 1 2 1"),
            ("img1.png", "c", "16 1"),
        ],
    )
    p = read_predictions(src, CLASSES, 4, 4)
    assert p.images == ["img2.png", "img1.png"]
    np.testing.assert_array_equal(p.runs(1, 0), [[0, 2]])  # touching runs merged
    assert p.rle(0, 0) == "" and p.runs(0, 0).shape == (0, 2)
    out = tmp_path / "out.csv"
    write_predictions(out, CLASSES, ((name, [p.rle(i, c) for c in range(3)]) for i, name in enumerate(p.images)))
    assert out.read_text().splitlines() == [
        "image_name,class,rle",
        "img2.png,a,",
        "img2.png,b,5 1",
        "img2.png,c,1 2",
        "img1.png,a,1 1 2 1",
        "img1.png,b,3 3",
        "img1.png,c,16 1",
    ]
    again = read_predictions(out, CLASSES, 4, 4)
    for i in range(2):
        for c in range(3):
            np.testing.assert_array_equal(again.runs(i, c), p.runs(i, c))


def test_nan_empty_extra_columns_and_basenames(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("rle,id,image_name,class\nnan,0,ID1/x.png,a\n,1,ID1/x.png,b\n1 4,2,x.png,c\n")
    p = read_predictions(src, CLASSES, 4, 4)
    assert p.images == ["x.png"] and p.paths_stripped == 2
    assert p.areas.tolist() == [0, 0, 4]


@pytest.mark.parametrize(
    "rows, header, message",
    [
        (
            [("x.png", "a", "1 1"), ("x.png", "a", "2 1")],
            None,
            "in.csv:3: image x.png, class a: duplicate row (first at line 2; one row per object: --instances union)",
        ),
        ([("x.png", "zz", "1 1")], None, "in.csv:2: image x.png, class zz: unknown class 'zz'"),
        (
            [("x.png", "a", "1 1"), ("x.png", "b", "3 2 1 1")],
            None,
            "in.csv:3: image x.png, class b: invalid RLE: runs not ascending or overlapping at value #4",
        ),
        ([("x.png", "c", "1 1 x")], None, "in.csv:2: image x.png, class c: invalid RLE: non-integer token at value #3"),
        ([("x.png", "a", "1 1")], "image_name,klass,rle", "in.csv:1: missing column(s) class"),
        ([("dir/x.png", "a", "1 1"), ("x.png", "a", "1 1")], None, "in.csv:3: image x.png, class a: duplicate row"),
    ],
)
def test_reader_errors_name_file_line_image_class(tmp_path, rows, header, message):
    src = write_csv(tmp_path / "in.csv", rows, header or "image_name,class,rle")
    with pytest.raises(InputError) as e:
        read_predictions(src, CLASSES, 4, 4)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_unreadable_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_predictions(tmp_path / "nope.csv", CLASSES)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty file"):
        read_predictions(tmp_path / "empty.csv", CLASSES)
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="cannot read"):
        read_predictions(tmp_path / "bin.csv", CLASSES)
    (tmp_path / "ragged.csv").write_text('image_name,class,rle\nx.png,a,"1 1\n')
    with pytest.raises(InputError, match="not a valid CSV"):
        read_predictions(tmp_path / "ragged.csv", CLASSES)


def test_scan_lists_every_problem(tmp_path):
    src = write_csv(tmp_path / "in.csv", [("x.png", "a", "0 1"), ("x.png", "q", ""), ("x.png", "a", "")])
    _, problems = scan_predictions(src, CLASSES, 4, 4)
    assert [p.line for p in problems] == [2, 3, 4]


def test_writer_is_atomic(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old content\n")
    with pytest.raises(RuntimeError):
        with PredictionWriter(out, CLASSES) as w:
            w.write_image("x.png", ["", "", "1 1"])
            raise RuntimeError("boom")
    assert out.read_text() == "old content\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_check_valid_and_invalid(tmp_path):
    good = write_csv(tmp_path / "good.csv", [("x.png", c, "1 2") for c in CLASSES])
    r = run_cli("check", good, "--classes", "a,b,c", "--height", 4, "--width", 4)
    assert r.exit_code == 0, r.output
    assert "valid: 1 image × 3 classes, 3 rows, 0 empty masks, 3 runs, total area 6 px" in r.stdout
    bad = write_csv(tmp_path / "bad.csv", [("x.png", "a", "1 2"), ("x.png", "a", "1 2"), ("y.png", "b", "40 1")])
    r = run_cli("check", bad, "--classes", "a,b,c", "--height", 4, "--width", 4)
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert any("bad.csv:3: image x.png, class a: duplicate row" in s for s in lines)
    assert any("bad.csv:4: image y.png, class b: invalid RLE: run extends past the last pixel" in s for s in lines)
    assert sum("missing row" in s for s in lines) == 2  # x: b; y: a (y,b exists but is invalid)
    assert f"{bad}: class c: no row in any of the 2 images" in lines  # one line for a class absent everywhere
    assert lines[-1].startswith(f"{bad}: INVALID (5 problems)")


def test_check_lists_first_problems_then_count(tmp_path):
    bad = write_csv(tmp_path / "bad.csv", [(f"i{k}.png", "a", "0 1") for k in range(30)])
    r = run_cli("check", bad, "--classes", "a", "--max-problems", 20)
    assert r.exit_code == 1
    assert "… and 10 more problems" in r.stdout


def test_check_unreadable_exits_2(tmp_path):
    r = run_cli("check", tmp_path / "missing.csv")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: ") and "no such file" in r.stderr


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"image_name,class,rle\nx.png,a,1 2,extra\n", "in.csv:2: 4 fields where the header has 3"),
        (b"image_name,class,rle\nx.png,a,1 1\nx.png,b\n", "in.csv:3: 2 fields where the header has 3"),
        (b"image_name\tclass\trle\nx.png\ta\t1 2\n", "in.csv:1: missing column(s) image_name, class, rle"),
    ],
)
def test_shifted_or_truncated_lines_are_errors(tmp_path, raw, message):
    (tmp_path / "in.csv").write_bytes(raw)
    with pytest.raises(InputError, match=re.escape(message)):
        read_predictions(tmp_path / "in.csv", CLASSES, 4, 4)


def test_bom_crlf_quotes_and_blank_lines_are_read(tmp_path):
    (tmp_path / "in.csv").write_bytes(
        b'\xef\xbb\xbfimage_name,class,rle\r\nx.png,a,"1\n2"\r\n\r\nx.png,b,\r\n"x.png",c,"3 1"\r\n'
    )
    p = read_predictions(tmp_path / "in.csv", CLASSES, 4, 4)
    assert p.images == ["x.png"] and p.areas.tolist() == [2, 0, 1]
    np.testing.assert_array_equal(p.runs(0, 0), [[0, 2]])


def test_predictions_first_class_round_trip(tmp_path):
    """from_frame → runs/mask by name → to_frame → write → read: the same rows, and the
    dense mask agrees with the runs."""
    import pandas as pd

    from core.predictions import Predictions

    df = pd.DataFrame(
        {
            "image_name": ["i1.png", "i1.png", "i1.png", "i2.png", "i2.png", "i2.png"],
            "class": ["b", "a", "c", "a", "b", "c"],
            "rle": ["3 3", "1 1 3 2", float("nan"), "16 1", "", "5 4"],
        }
    )
    p = Predictions.from_frame(df, CLASSES, 4, 4)
    assert p.images == ["i1.png", "i2.png"] and p.classes == tuple(CLASSES) and len(p) == 2
    np.testing.assert_array_equal(p.runs("i1.png", "a"), p.runs(0, 0))
    np.testing.assert_array_equal(p.runs("i1.png", "a"), [[0, 1], [2, 4]])
    assert p.mask("i2.png", "a").ravel().nonzero()[0].tolist() == [15]
    assert p.mask("i1.png", "c").sum() == 0
    names = [name for name, _ in p]
    assert names == ["i1.png", "i2.png"]
    assert [len(r) for r in dict(p)["i2.png"]] == [1, 0, 1]
    frame = p.to_frame()
    assert frame.values.tolist()[:3] == [["i1.png", "a", "1 1 3 2"], ["i1.png", "b", "3 3"], ["i1.png", "c", ""]]
    out = tmp_path / "o.csv"
    assert p.write(out) == 6
    again = Predictions.read(out, CLASSES, 4, 4)
    assert again.to_frame().equals(frame)
    with pytest.raises(KeyError):
        p.runs("nope.png", "a")


def test_from_frame_errors_name_row_image_and_class():
    import pandas as pd

    from core.predictions import Predictions

    bad = pd.DataFrame({"image_name": ["x.png"], "class": ["a"], "rle": ["3 20"]})
    with pytest.raises(ValueError, match=r"^DataFrame:0: image x.png, class a: invalid RLE"):
        Predictions.from_frame(bad, CLASSES, 4, 4)
    with pytest.raises(ValueError, match="missing column"):
        Predictions.from_frame(pd.DataFrame({"image_name": []}), CLASSES, 4, 4)
