"""Cleaning on runs against plain dense scipy.ndimage references, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from helpers import package_kernels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from cli import cli
from core.codec import decode, encode, parse_rle
from core.errors import UsageError
from core.predictions import read_predictions, write_predictions
from core.synthetic import Generator, write_set
from postprocess._component_kernels import label_kernel
from postprocess._segment_kernels import split_rows_kernel
from postprocess.cleaner import STAT_FIELDS, Cleaner, Rules, _kernel_args, _steps, build_cleaner, clean
from postprocess.connected import component_areas, components
from postprocess.holes import fill_holes
from postprocess.morphology import closing, opening
from settings.loader import parse_model
from settings.postprocess import resolve_rules
from settings.vote import VoteSettings

_kernels = package_kernels("postprocess")

CROSS = ndimage.generate_binary_structure(2, 1)
SQUARE = np.ones((3, 3), bool)
FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- dense references


def objects_structure(conn: int) -> np.ndarray:
    return SQUARE if conn == 8 else CROSS


def background_structure(conn: int) -> np.ndarray:
    return CROSS if conn == 8 else SQUARE


def disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy * yy + xx * xx <= r * r


def ref_open(m, r):
    return ndimage.binary_opening(m, disk(r)) if r else m.copy()


def ref_close(m, r):
    return ndimage.binary_closing(np.pad(m, r), disk(r))[r:-r, r:-r] if r else m.copy()


def ref_select(m, conn, min_size=0, keep=0):
    lab, n = ndimage.label(m, objects_structure(conn))
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    alive = [k for k in range(n) if sizes[k] >= min_size]
    if keep:
        alive = sorted(alive, key=lambda k: (-sizes[k], k))[:keep]  # ties: lower label = raster order
    return np.isin(lab, np.array(alive, int) + 1), n - len(alive)


def ref_fill(m, conn, max_hole=None):
    filled = ndimage.binary_fill_holes(m, background_structure(conn))
    if max_hole is None:
        return filled
    lab, n = ndimage.label(filled & ~m, background_structure(conn))
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    small = np.flatnonzero(sizes <= max_hole)
    return m | np.isin(lab, small[small > 0])


def ref_pipeline(m, rules: Rules):
    m = ref_close(ref_open(m, rules.open), rules.close)
    m, _ = ref_select(m, rules.connectivity, rules.min_size, rules.keep_largest)
    if rules.fill_holes:
        m = ref_fill(m, rules.connectivity, rules.max_hole)
    if m.sum() < rules.min_area:  # the whole-mask gate, last
        m = np.zeros_like(m)
    return m


def dense(runs, shape) -> np.ndarray:
    return decode(runs, shape).astype(bool)


# ---------------------------------------------------------------- mask generators

KINDS = ("empty", "full", "noise", "blobs", "rings", "nested", "diagonal", "border", "rows")


def make_mask(kind: str, h: int, w: int, seed: int) -> np.ndarray:
    """Small masks of the shapes cleaning must get right."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros((h, w), bool)
    if kind == "full":
        return ~m
    if kind == "noise":  # diagonal touches, single pixels, runs across row ends
        m = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    elif kind == "blobs":
        for _ in range(rng.integers(1, 6)):
            cy, cx = rng.uniform(-2, h + 2), rng.uniform(-2, w + 2)
            a, b = rng.uniform(0.5, max(h, w, 2) / 2, 2)
            m |= ((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 <= 1
    elif kind in ("rings", "nested"):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            d = np.hypot(yy - cy, xx - cx)
            r = rng.uniform(1, max(h, w, 3) / 2)
            rings = np.arange(r, 0, -rng.uniform(1.5, 4)) if kind == "nested" else [r]
            for ri in rings:  # concentric rings: nested holes with islands inside
                m |= (d <= ri) & (d > ri - rng.uniform(0.6, 2))
        if kind == "nested" and rng.random() < 0.5:
            m[rng.integers(0, h), :] = True
    elif kind == "diagonal":
        cy, cx, k = rng.integers(0, h), rng.integers(0, w), rng.integers(1, max(h, w, 2))
        m |= np.abs(yy - cy) + np.abs(xx - cx) == k  # diamond outline: closed only 8-connected
        m |= (yy + xx) % rng.integers(2, 5) == 0 if rng.random() < 0.5 else (yy - xx) % 7 == 0
    elif kind == "border":  # a frame on every image border plus pieces touching it
        t = rng.integers(1, 3)
        m[:t], m[-t:], m[:, :t], m[:, -t:] = True, True, True, True
        m[rng.integers(0, h), :] = rng.random() < 0.5
        m |= rng.random((h, w)) < 0.1
    elif kind == "rows":  # bands of whole rows: flat runs spanning several rows
        for _ in range(rng.integers(1, 4)):
            r0 = rng.integers(0, h)
            m[r0 : r0 + rng.integers(1, 4)] = True
        flat = m.reshape(-1)
        for _ in range(rng.integers(0, 4)):
            s = rng.integers(0, flat.size)
            flat[s : s + rng.integers(1, 2 * w + 1)] = True
    if kind != "empty" and rng.random() < 0.4:
        m &= ~(rng.random((h, w)) < 0.08)  # pinholes
    return m


@st.composite
def masks(draw) -> np.ndarray:
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
        return draw(arrays(np.bool_, shape))
    kind = draw(st.sampled_from(KINDS))
    return make_mask(kind, draw(st.integers(1, 30)), draw(st.integers(1, 30)), draw(st.integers(0, 2**31)))


conns = st.sampled_from([4, 8])


# ---------------------------------------------------------------- operations vs scipy


@FAST
@given(m=masks(), conn=conns)
def test_components_match_ndimage_label(m, conn):
    lab, n = ndimage.label(m, objects_structure(conn))
    runs = encode(m)
    comps = components(runs, m.shape[1], conn)
    assert len(comps) == n
    for k, comp in enumerate(comps):
        assert np.array_equal(dense(comp, m.shape), lab == k + 1)
    assert component_areas(runs, m.shape[1], conn).tolist() == np.bincount(lab.ravel(), minlength=n + 1)[1:].tolist()


@FAST
@given(m=masks(), conn=conns, min_size=st.integers(0, 12), keep=st.integers(0, 4))
def test_min_size_and_keep_largest_match_reference(m, conn, min_size, keep):
    rules = Rules(min_size=min_size, keep_largest=keep, connectivity=conn)
    expect, removed = ref_select(m, conn, min_size, keep)
    runs = encode(m)
    sides = [np.array([s]) for s in m.shape]
    out, _, stats = _kernels.clean_kernel(runs, np.array([0, len(runs)]), *sides, *_kernel_args(rules, *m.shape))
    n_removed = stats[0, 0]
    assert n_removed == _steps(encode(m), *m.shape, rules)[1]
    assert np.array_equal(dense(clean(encode(m), *m.shape, rules), m.shape), expect)
    assert np.array_equal(dense(out, m.shape), expect)
    assert n_removed == removed


def test_keep_largest_ties_go_to_first_in_raster_order():
    m = np.zeros((6, 9), bool)
    m[4, 1:3] = True  # area 2, first pixel later in raster order
    m[0, 6:8] = True  # area 2, first in raster order
    m[2, 3] = True  # area 1
    got = dense(clean(encode(m), 6, 9, Rules(keep_largest=1)), m.shape)
    assert got.sum() == 2 and got[0, 6] and got[0, 7]
    got2 = dense(clean(encode(m), 6, 9, Rules(keep_largest=2)), m.shape)
    assert np.array_equal(got2, m & ~np.isin(np.arange(54).reshape(6, 9), [21]))


@pytest.mark.parametrize("keep", [1, 7, 35, 61, 100])
def test_keep_largest_many_ties(keep):
    rng = np.random.default_rng(keep)
    m = np.zeros((30, 40), bool)
    cells = rng.permutation(130)[:90]  # 90 isolated specks of 1 or 2 pixels on a 10×13 grid
    for j, cell in enumerate(cells):
        y, x = 3 * (cell // 13), 3 * (cell % 13)
        m[y, x : x + 1 + (j % 3 == 0)] = True
    for conn in (4, 8):
        got = dense(clean(encode(m), *m.shape, Rules(keep_largest=keep, connectivity=conn)), m.shape)
        assert np.array_equal(got, ref_select(m, conn, 0, keep)[0])
    assert len(components(encode(m), 40)) == 90


@FAST
@given(m=masks(), conn=conns, max_hole=st.one_of(st.none(), st.integers(1, 30)))
def test_fill_holes_matches_binary_fill_holes(m, conn, max_hole):
    got = dense(fill_holes(encode(m), *m.shape, conn, max_hole), m.shape)
    assert np.array_equal(got, ref_fill(m, conn, max_hole))


def test_fill_holes_duality_on_a_diamond():
    m = np.zeros((9, 9), bool)
    yy, xx = np.mgrid[:9, :9]
    m[np.abs(yy - 4) + np.abs(xx - 4) == 3] = True
    inside = np.abs(yy - 4) + np.abs(xx - 4) < 3
    assert dense(fill_holes(encode(m), 9, 9, 8), m.shape)[inside].all()  # closed 8-connected outline
    assert not dense(fill_holes(encode(m), 9, 9, 4), m.shape)[inside].any()  # leaks diagonally


@FAST
@given(m=masks(), r=st.integers(1, 3))
def test_opening_matches_binary_opening(m, r):
    assert np.array_equal(dense(opening(encode(m), *m.shape, r), m.shape), ndimage.binary_opening(m, disk(r)))


@FAST
@given(m=masks(), r=st.integers(1, 3))
def test_closing_matches_padded_binary_closing(m, r):
    got = dense(closing(encode(m), *m.shape, r), m.shape)
    assert np.array_equal(got, ref_close(m, r))
    assert not (m & ~got).any()  # closing never removes pixels, not even at the border
    inner = np.pad(m, r)  # away from the border it is scipy's plain closing
    assert np.array_equal(
        dense(closing(encode(inner), *inner.shape, r), inner.shape)[r:-r, r:-r],
        ndimage.binary_closing(inner, disk(r))[r:-r, r:-r] | m,
    )


@FAST
@given(
    m=masks(),
    conn=conns,
    open_r=st.integers(0, 2),
    close_r=st.integers(0, 2),
    min_size=st.integers(0, 8),
    keep=st.integers(0, 3),
    fill=st.booleans(),
    max_hole=st.one_of(st.none(), st.integers(1, 20)),
)
def test_pipeline_matches_reference_in_documented_order(m, conn, open_r, close_r, min_size, keep, fill, max_hole):
    rules = Rules(
        open=open_r,
        close=close_r,
        min_size=min_size,
        keep_largest=keep,
        fill_holes=fill,
        max_hole=max_hole if fill else None,
        connectivity=conn,
    )
    expect = ref_pipeline(m, rules)
    runs = encode(m)
    got = clean(runs, *m.shape, rules)
    assert np.array_equal(dense(got, m.shape), expect)
    assert np.array_equal(got, encode(expect))  # canonical runs
    cleaner = Cleaner([None, rules], ["a", "b"], *m.shape)
    assert np.array_equal(cleaner(1, runs), got)
    assert cleaner(0, runs) is runs
    s = cleaner.stats()
    assert s[0].tolist() == [0] * len(STAT_FIELDS)
    changed = not np.array_equal(expect, m) if rules.active else False
    assert s[1, :2].tolist() == ([1, int(changed)] if rules.active else [0, 0])
    if rules.active:
        assert s[1, 4] == (m & ~expect).sum() and s[1, 5] == (expect & ~m).sum()


def _twin_pipeline(runs, height, width, r):
    """``postprocess.cleaner._steps`` on the kernels' plain-Python twins."""
    k = {
        name: getattr(_kernels, name).py_func
        for name in (
            "split_rows_kernel",
            "open_kernel",
            "close_kernel",
            "select_components_kernel",
            "fill_holes_kernel",
            "finish_kernel",
        )
    }
    rows, x0, x1 = k["split_rows_kernel"](runs, width)
    rows, x0, x1 = k["open_kernel"](rows, x0, x1, r.open)
    rows, x0, x1 = k["close_kernel"](rows, x0, x1, r.close, height, width)
    rows, x0, x1, removed = k["select_components_kernel"](rows, x0, x1, r.connectivity == 8, r.min_size, r.keep_largest)
    rows, x0, x1, holes = k["fill_holes_kernel"](rows, x0, x1, height, width, r.connectivity == 8, -1)
    out, area_in, area_out = k["finish_kernel"](runs, rows, x0, x1, width)
    return out, removed, holes, area_in, area_out


def ref_overlap(a, b) -> int:
    """|A ∩ B| on dense masks (the canvas is 17 × 13)."""
    return int((dense(a, (17, 13)) & dense(b, (17, 13))).sum())


def test_python_twins_agree_with_kernels():
    rules = Rules(open=1, close=1, min_size=2, keep_largest=1, fill_holes=True, connectivity=8)
    for kind in KINDS:
        m = make_mask(kind, 17, 13, 3)
        runs = encode(m)
        args = (runs, np.array([0, len(runs)]), np.array([17]), np.array([13]), *_kernel_args(rules, 17, 13))
        slow = _twin_pipeline(runs, 17, 13, rules)
        assert np.array_equal(_steps(runs, 17, 13, rules)[0], slow[0]) and _steps(runs, 17, 13, rules)[1:] == slow[1:]
        for out, bounds, stats in (_kernels.clean_kernel(*args), _kernels.clean_kernel.py_func(*args)):
            assert np.array_equal(out, slow[0]) and bounds.tolist() == [0, len(slow[0])]
            kept = int(ref_overlap(runs, slow[0]))
            assert stats.tolist() == [[*slow[1:], kept]]
    keys = np.array([3, 1, 3, 0, 1, 1, 7, 3, 0])
    for n in (0, 1, 5, 9):
        want = np.argsort(keys[:n], kind="stable").tolist()
        assert _kernels.argsort_kernel(keys, n).tolist() == want == _kernels.argsort_kernel.py_func(keys, n).tolist()
        rows, x0, x1 = split_rows_kernel.py_func(encode(m), 13)
        for a, b in zip(label_kernel(rows, x0, x1, False), label_kernel.py_func(rows, x0, x1, False), strict=True):
            assert np.array_equal(a, b)


def test_full_size_masks_across_row_ends():
    h = w = 2048
    m = np.zeros((h, w), bool)
    m[100:300, 1500:] = True
    m[101:301, :40] = True  # touches the previous block only across row ends: not connected
    m[200, 1600] = False  # a pinhole
    m[1000:1003, 1000:1003] = True
    got = dense(clean(encode(m), h, w, Rules(keep_largest=1, fill_holes=True)), m.shape)
    expect, _ = ref_select(m, 8, 0, 1)
    assert np.array_equal(got, ndimage.binary_fill_holes(expect))


# ---------------------------------------------------------------- settings

CLASSES = ("a", "b", "c", "d")


def section(data):
    return parse_model(VoteSettings, {"postprocess": data}, "s.yaml").postprocess


def test_per_class_overrides_merge_onto_default():
    rules = resolve_rules(
        section(
            {
                "default": {"keep_largest": 1, "fill_holes": True, "max_hole": 50},
                "b": {"keep_largest": 2, "connectivity": 4},
                "c": None,
                "d": False,
            }
        ),
        CLASSES,
        "s.yaml",
    )
    assert rules[0] == Rules(keep_largest=1, fill_holes=True, max_hole=50)
    assert rules[1] == Rules(keep_largest=2, fill_holes=True, max_hole=50, connectivity=4)
    assert rules[2] is None and rules[3] is None
    off = resolve_rules(
        section({"default": {"fill_holes": True, "max_hole": 9}, "a": {"fill_holes": False}}), CLASSES, "s.yaml"
    )
    assert not off[0].fill_holes and off[1].fill_holes


def test_flags_override_default_but_not_class_entries():
    rules = resolve_rules(
        section({"default": {"keep_largest": 3, "min_size": 5}, "b": {"keep_largest": 2}}),
        CLASSES,
        "s.yaml",
        {"keep_largest": 1, "fill_holes": True, "open": None},
    )
    assert rules[0] == Rules(keep_largest=1, min_size=5, fill_holes=True)
    assert rules[1] == Rules(keep_largest=2, min_size=5, fill_holes=True)


def test_no_active_rule_gives_no_cleaner():
    assert build_cleaner(None, CLASSES, 8, 8, "x") is None
    assert build_cleaner(section({"default": {"min_size": 1}}), CLASSES, 8, 8, "x") is None
    assert build_cleaner(section({"b": {"open": 1}}), CLASSES, 8, 8, "x").active(1)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"default": {"min_size": -1}}, "s.yaml: postprocess.default.min_size: Input should be greater than or equal"),
        ({"a": {"keep_largest": -2}}, "s.yaml: postprocess.a.keep_largest: Input should be greater than or equal"),
        ({"default": {"max_hole": 0, "fill_holes": True}}, "postprocess.default.max_hole"),
        ({"default": {"keep_larges": 1}}, "s.yaml: postprocess.default.keep_larges: unknown key"),
        ({"default": {"connectivity": 6}}, "s.yaml: postprocess.default.connectivity"),
        ({"default": {"keep_largest": True}}, "s.yaml: postprocess.default.keep_largest"),
        ({"b": 3}, "s.yaml: postprocess.b"),
        ({"Foo": {"min_size": 3}}, "s.yaml: postprocess: unknown class 'Foo'"),
        ({"keep_largest": 1}, "'keep_largest' must sit under 'default:' or a class name"),
        ({"default": {"max_hole": 5}}, "max_hole needs fill_holes"),
        ({"b": {"max_hole": 5}}, "s.yaml: postprocess.b: max_hole needs fill_holes"),
    ],
)
def test_invalid_settings_are_one_line_usage_errors(data, message):
    with pytest.raises(UsageError) as err:
        resolve_rules(section(data), CLASSES, "s.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- commands

SHAPE = (96, 112)
SMALL = ("c0", "c1", "c2", "c3")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pp")
    gen = Generator(n_images=5, n_models=3, height=SHAPE[0], width=SHAPE[1], classes=SMALL, seed=4)
    return folder, write_set(gen, folder)


def run(args, expect=0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == expect, (result.output, result.stderr if expect == 0 else "")
    return result


def shape_args():
    return ["--height", SHAPE[0], "--width", SHAPE[1], "--classes", ",".join(SMALL)]


def cleaned_reference(src, rules_per_class):
    """Dense reference of a whole file cleaned class by class."""
    out = {}
    for i, name in enumerate(src.images):
        for c in range(len(SMALL)):
            m = dense(src.runs(i, c), SHAPE)
            r = rules_per_class[c]
            out[name, c] = ref_pipeline(m, r) if r is not None else m
    return out


def assert_file_equals(path, expect):
    got = read_predictions(path, SMALL, *SHAPE)
    assert len(got.images) * len(SMALL) == len(expect)
    for (name, c), m in expect.items():
        assert np.array_equal(dense(got.runs(got.image_index(name), c), SHAPE), m), (name, c)


def test_postprocess_cli_round_trip(dataset, tmp_path):
    folder, paths = dataset
    pp = tmp_path / "pp.yaml"
    pp.write_text(
        yaml.safe_dump(
            {
                "default": {"keep_largest": 1, "open": 1},
                "c1": {"keep_largest": 2, "close": 2},
                "c2": None,
                "c3": {"min_size": 40, "connectivity": 4},
            }
        )
    )
    out1, out2 = tmp_path / "o1.csv", tmp_path / "o2.csv"
    res = run(["postprocess", paths["model3"], "-o", out1, "--setting", pp, "--fill-holes", "-q", *shape_args()])
    rules = [
        Rules(keep_largest=1, open=1, fill_holes=True),
        Rules(keep_largest=2, open=1, close=2, fill_holes=True),
        None,
        Rules(keep_largest=1, open=1, min_size=40, connectivity=4, fill_holes=True),
    ]
    src = read_predictions(paths["model3"], SMALL, *SHAPE)
    assert_file_equals(out1, cleaned_reference(src, rules))
    assert "c2" not in res.output and res.output.splitlines()[-1].split()[:2] == ["total", "15"]
    assert [src.rle(i, 2) for i in range(5)] == [read_predictions(out1, SMALL, *SHAPE).rle(i, 2) for i in range(5)]
    run(
        [
            "postprocess",
            paths["model3"],
            "-o",
            out2,
            "--setting",
            pp,
            "--fill-holes",
            "-q",
            "--workers",
            "2",
            *shape_args(),
        ]
    )
    assert out1.read_bytes() == out2.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_postprocess_cli_flags_only(dataset, tmp_path):
    _, paths = dataset
    out = tmp_path / "o.csv"
    run(
        [
            "postprocess",
            paths["model2"],
            "-o",
            out,
            "--min-size",
            30,
            "--close",
            1,
            "--max-hole",
            6,
            "--fill-holes",
            "--connectivity",
            "4",
            "-q",
            *shape_args(),
        ]
    )
    src = read_predictions(paths["model2"], SMALL, *SHAPE)
    r = Rules(min_size=30, close=1, fill_holes=True, max_hole=6, connectivity=4)
    assert_file_equals(out, cleaned_reference(src, [r] * 4))


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "nothing to do"),
        (["--max-hole", "5"], "max_hole needs fill_holes"),
        (["--keep-largest", "1", "--setting", "{bad}"], "unknown class 'Foo'"),
        (["--keep-largest", "1", "-o", "{in}"], "output would overwrite the input"),
    ],
)
def test_postprocess_cli_usage_errors(dataset, tmp_path, extra, message):
    _, paths = dataset
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: {keep_largest: 1}\nFoo: {min_size: 3}\n")
    out = tmp_path / "o.csv"
    args = [
        "postprocess",
        paths["model1"],
        "-o",
        out,
        *shape_args(),
        *[a.format(bad=bad, **{"in": paths["model1"]}) for a in extra],
    ]
    res = run(args, expect=2)
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not out.exists()


def test_postprocess_cli_missing_row_is_a_data_error(tmp_path):
    src = tmp_path / "in.csv"
    write_predictions(src, SMALL[:2], [("img1.png", ["1 3", ""])])
    out = tmp_path / "o.csv"
    res = run(
        [
            "postprocess",
            src,
            "-o",
            out,
            "--keep-largest",
            "1",
            "--height",
            8,
            "--width",
            8,
            "--classes",
            ",".join(SMALL[:3]),
        ],
        expect=1,
    )
    assert "image img1.png, class c2: missing row" in res.stderr and not out.exists()


def test_inline_cleaning_in_hard_vote(dataset, tmp_path):
    _, paths = dataset
    plain, cleaned, cleaned2 = tmp_path / "plain.csv", tmp_path / "clean.csv", tmp_path / "clean2.csv"
    models = [paths[m] for m in ("model1", "model2", "model3")]
    run(["hard", *models, "-o", plain, "-q", *shape_args()])
    settings_file = tmp_path / "vote.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "postprocess": {
                    "default": {"keep_largest": 1, "fill_holes": True},
                    "c0": {"min_size": 25, "keep_largest": 0},
                    "c3": False,
                }
            }
        )
    )
    res = run(["hard", *models, "-o", cleaned, "--setting", settings_file, "-q", *shape_args()])
    rules = [
        Rules(min_size=25, fill_holes=True),
        Rules(keep_largest=1, fill_holes=True),
        Rules(keep_largest=1, fill_holes=True),
        None,
    ]
    assert_file_equals(cleaned, cleaned_reference(read_predictions(plain, SMALL, *SHAPE), rules))
    assert "postprocess (inline)" in res.output and res.output.splitlines()[-1].split()[:2] == ["total", "15"]
    res2 = run(["hard", *models, "-o", cleaned2, "--setting", settings_file, "-q", "--workers", "2", *shape_args()])
    assert cleaned.read_bytes() == cleaned2.read_bytes()
    assert res2.output == res.output  # counts add up across worker processes


def test_inline_settings_errors_in_weighted(dataset, tmp_path):
    _, paths = dataset
    settings_file = tmp_path / "vote.yaml"
    settings_file.write_text("postprocess: {default: {min_size: -3}}\n")
    res = run(
        [
            "weighted",
            paths["model1"],
            paths["model2"],
            "-o",
            tmp_path / "o.csv",
            "--setting",
            settings_file,
            *shape_args(),
        ],
        expect=2,
    )
    assert "postprocess.default.min_size" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_parse_round_trip_of_cleaned_text():
    m = make_mask("nested", 20, 20, 1)
    out = clean(encode(m), 20, 20, Rules(fill_holes=True))
    from core.codec import format_rle

    assert np.array_equal(parse_rle(format_rle(out), 20, 20), out)


def test_opening_and_closing_check_runs_against_the_image():
    from postprocess.morphology import closing, opening

    outside = np.array([[10, 20]])
    for op in (opening, closing):
        with pytest.raises(ValueError, match="outside the 4×4 image"):
            op(outside, 4, 4, 1)
        with pytest.raises(ValueError, match="radius"):
            op(np.array([[0, 2]]), 4, 4, -1)


def test_blocks_of_images_clean_as_images_one_by_one(tmp_path):
    """A file of more images than a cleaning block (``CLEAN_BLOCK``, three blocks here): the
    block path writes what cleaning each image on its own gives (the in-memory path)."""
    from postprocess import clean_predictions
    from postprocess.clean_set import CLEAN_BLOCK

    n = 2 * CLEAN_BLOCK + 7
    gen = Generator(n_images=n, n_models=1, height=24, width=20, classes=SMALL, seed=9)
    path = write_set(gen, tmp_path)["model1"]
    rules = {"default": {"keep_largest": 1, "fill_holes": True}, "c2": None}
    kw = {"classes": SMALL, "height": 24, "width": 20}
    clean_predictions(path, rules, output=tmp_path / "blocks.csv", **kw)
    one_by_one = clean_predictions(path, rules, **kw).predictions
    written = read_predictions(tmp_path / "blocks.csv", SMALL, 24, 20)
    assert written.images == one_by_one.images and len(written.images) == n
    for i in range(n):
        for c in SMALL:
            assert written.rle(i, c) == one_by_one.rle(i, c), (i, c)
