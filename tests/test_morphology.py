"""Opening and closing by a disk against scipy.ndimage, at every radius: 0, small, larger than
the mask, beyond the image (which acts as the image's larger side), and beyond int64; on thin
(1×N, N×1), empty and full images. Small radii are checked with ``binary_opening`` /
``binary_closing`` themselves; large ones with the same operations written with scipy's exact
distance transform (checked against the former here), since a disk footprint of radius 1000
is beyond ``binary_closing``'s means."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import package_kernels, run_cli, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage
from test_postprocess import KINDS, disk, make_mask, ref_close, ref_open

from core.codec import decode, encode
from postprocess.cleaner import Cleaner, Rules, clean
from postprocess.morphology import closing, effective_radius, opening

_kernels = package_kernels("postprocess")
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dense(runs, shape) -> np.ndarray:
    return decode(runs, shape).astype(bool)


def _sq_distance_to(features: np.ndarray) -> np.ndarray:
    """Exact squared distance of every pixel to the nearest True pixel of ``features`` (huge
    where there is none), from the nearest pixel scipy's transform names."""
    if not features.any():
        return np.full(features.shape, np.iinfo(np.int64).max)
    _, (iy, ix) = ndimage.distance_transform_edt(~features, return_indices=True)
    yy, xx = np.indices(features.shape)
    return (yy - iy) ** 2 + (xx - ix) ** 2


def edt_open(m: np.ndarray, r: int) -> np.ndarray:
    """``binary_opening(m, disk(r))``: erosion with the outside as background, then dilation."""
    if r == 0:
        return m.copy()
    eroded = _sq_distance_to(~np.pad(m, 1))[1:-1, 1:-1] > r * r
    return _sq_distance_to(eroded) <= r * r


def edt_close(m: np.ndarray, r: int) -> np.ndarray:
    """``binary_closing(np.pad(m, r), disk(r))[r:-r, r:-r]`` (the padding holds the dilation)."""
    if r == 0:
        return m.copy()
    padded = np.pad(m, r + 1)
    dilated = _sq_distance_to(padded) <= r * r
    return (_sq_distance_to(~dilated) > r * r)[r + 1 : -r - 1, r + 1 : -r - 1]


@st.composite
def images(draw) -> np.ndarray:
    """Random, thin (1×N, N×1), empty, full and shaped masks."""
    kind = draw(st.sampled_from(("random", "thin", "empty", "full", "shaped")))
    if kind == "thin":
        n = draw(st.integers(1, 40))
        return draw(arrays(np.bool_, (1, n) if draw(st.booleans()) else (n, 1)))
    if kind in ("empty", "full"):
        shape = (draw(st.integers(1, 14)), draw(st.integers(1, 14)))
        return np.full(shape, kind == "full")
    if kind == "random":
        return draw(arrays(np.bool_, (draw(st.integers(1, 14)), draw(st.integers(1, 14)))))
    k = draw(st.sampled_from(KINDS))
    return make_mask(k, draw(st.integers(1, 30)), draw(st.integers(1, 30)), draw(st.integers(0, 2**31)))


@FAST
@given(m=images(), r=st.integers(0, 6))
def test_small_radii_match_scipy(m, r):
    h, w = m.shape
    assert np.array_equal(dense(opening(encode(m), h, w, r), m.shape), ref_open(m, min(r, max(h, w))))
    assert np.array_equal(dense(closing(encode(m), h, w, r), m.shape), ref_close(m, min(r, max(h, w))))


@FAST
@given(m=images(), r=st.one_of(st.integers(0, 80), st.integers(81, 10**40)))
def test_any_radius_matches_the_distance_reference_at_its_effective_radius(m, r):
    h, w = m.shape
    e = effective_radius(r, h, w)
    assert e == min(r, max(h, w))
    got_open = dense(opening(encode(m), h, w, r), m.shape)
    got_close = dense(closing(encode(m), h, w, r), m.shape)
    assert np.array_equal(got_open, edt_open(m, e))
    assert np.array_equal(got_close, edt_close(m, e))
    assert not (m & ~got_close).any() and not (got_open & ~m).any()
    if r >= max(h, w):  # an opening by a disk beyond the image is empty, whatever the radius
        assert not got_open.any()


@pytest.mark.parametrize("seed", range(6))
def test_the_distance_reference_is_scipys_morphology(seed):
    rng = np.random.default_rng(seed)
    m = make_mask(KINDS[seed % len(KINDS)], 9, 13, seed) if seed % 2 else rng.random((7, 11)) < 0.6
    for r in range(0, 16):
        assert np.array_equal(edt_open(m, r), ref_open(m, r)), r
        assert np.array_equal(edt_close(m, r), ref_close(m, r)), r


def test_a_radius_beyond_the_image_acts_as_the_image():
    """Two pixels a diagonal step apart on either side of the centre of a 3×3 image: scipy's
    padded closing fills the centre for r = 2, 4 … 16, not for r = 1, 3, 17 (and 99, 577 …: r²
    - 2k² = 1), so no radius beyond the image stands for all the larger ones; every radius
    from 3 on is the closing by 3."""
    m = np.zeros((3, 3), bool)
    m[0, 0] = m[2, 2] = True
    filled = [bool(ref_close(m, r)[1, 1]) for r in range(1, 18)]
    assert filled == [False, True, False] + [True] * 13 + [False]
    for r in (3, 4, 16, 17, 99, 10**6, 2**63, 10**40):
        assert np.array_equal(dense(closing(encode(m), 3, 3, r), m.shape), ref_close(m, 3))


def test_large_radii_on_a_larger_image():
    """Blobs and rings on 40×56, radii around the masks' size and the image's."""
    for k, kind in enumerate(("blobs", "rings", "nested", "border")):
        m = make_mask(kind, 40, 56, k)
        for r in (9, 17, 25, 40, 55, 56, 57, 500):
            e = min(r, 56)
            assert np.array_equal(dense(opening(encode(m), 40, 56, r), m.shape), edt_open(m, e)), (kind, r)
            assert np.array_equal(dense(closing(encode(m), 40, 56, r), m.shape), edt_close(m, e)), (kind, r)


def _by_rows(kind, rows, x0, x1, r, h, w):
    hw = _kernels.disk_half_widths(r)
    if kind == "open":
        return _kernels.dilate_kernel(*_kernels.erode_kernel(rows, x0, x1, hw), hw)
    return _kernels.clip_kernel(*_kernels.erode_kernel(*_kernels.dilate_kernel(rows, x0, x1, hw), hw), h, w)


def _by_distances(kind, rows, x0, x1, r, h, w):
    if kind == "open":
        return _kernels.distance_open_kernel(rows, x0, x1, r)
    return _kernels.distance_close_kernel(rows, x0, x1, r)


@FAST
@given(m=images(), r=st.integers(1, 20))
def test_both_methods_match_scipy(m, r):
    """``open_kernel`` and ``close_kernel`` choose between two methods by cost; each is exact."""
    h, w = m.shape
    rows, x0, x1 = _kernels.split_rows_kernel(encode(m), w)
    for kind, ref in (("open", edt_open), ("close", edt_close)):
        want = encode(ref(m, r))
        for method in (_by_rows, _by_distances):
            got = _kernels.join_rows_kernel(*method(kind, rows, x0, x1, r, h, w), w)
            assert np.array_equal(got, want), (kind, method.__name__)


def test_python_twins_of_the_morphology_kernels_agree():
    for kind in KINDS:
        m = make_mask(kind, 15, 19, 7)
        rows, x0, x1 = _kernels.split_rows_kernel(encode(m), 19)
        for r in (1, 2, 5, 19):
            hw = _kernels.disk_half_widths(r)
            for name, args in (
                ("open_kernel", (r,)),
                ("close_kernel", (r, 15, 19)),
                ("distance_open_kernel", (r,)),
                ("distance_close_kernel", (r,)),
                ("erode_kernel", (hw,)),
                ("dilate_kernel", (hw,)),
            ):
                k = getattr(_kernels, name)
                for a, b in zip(k(rows, x0, x1, *args), k.py_func(rows, x0, x1, *args), strict=True):
                    assert np.array_equal(a, b), name
    for r in (0, 1, 5, 12, 100):
        hw = _kernels.disk_half_widths(r)
        assert hw.tolist() == _kernels.disk_half_widths.py_func(r).tolist()
        assert hw.tolist() == [math.isqrt(r * r - d * d) for d in range(r + 1)]
        assert disk(r)[r].sum() == 2 * hw[0] + 1


def test_huge_numbers_never_reach_a_kernel():
    """Every number a rule takes, up to the limit, acts sanely: radii act as the image's larger
    side, sizes and counts as its pixels."""
    m = make_mask("blobs", 20, 24, 3)
    huge = 2**62  # the largest a flag or setting may give (core.limits.MAX_COUNT)
    runs = encode(m)
    same = {
        Rules(open=huge): Rules(open=24),
        Rules(close=huge): Rules(close=24),
        Rules(min_size=huge): Rules(min_size=481),
        Rules(keep_largest=huge): Rules(keep_largest=480),
        Rules(fill_holes=True, max_hole=huge): Rules(fill_holes=True),
    }
    for big, small in same.items():
        want = clean(runs, 20, 24, small)
        assert np.array_equal(clean(runs, 20, 24, big), want)
        assert np.array_equal(Cleaner([big], ["a"], 20, 24)(0, runs), want)
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="^close must be"):
            effective_radius(bad, 20, 24, "close")


def test_postprocess_cli_takes_the_largest_radius(tmp_path):
    from core.codec import format_rle, parse_rle

    rle = "1 3 9 1 17 40"
    m = dense(parse_rle(rle, 8, 8), (8, 8))
    src = write_csv(tmp_path / "m.csv", [("a.png", "x", rle)])
    for flag, want in (("--open", ""), ("--close", format_rle(encode(ref_close(m, 8))))):
        res = run_cli(
            "postprocess", src, "-o", tmp_path / "o.csv", flag, str(2**62), "--classes", "x",
            "--height", "8", "--width", "8", "-q",
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert (tmp_path / "o.csv").read_text().splitlines()[1] == f"a.png,x,{want}"
