import numpy as np
import reference as ref
from helpers import package_kernels
from hypothesis import given
from strategies import masks

from core import runs as R
from core.codec import encode

K = package_kernels("core")


def _pair(draw_mask_a, draw_mask_b):
    h = min(draw_mask_a.shape[0], draw_mask_b.shape[0])
    w = min(draw_mask_a.shape[1], draw_mask_b.shape[1])
    return draw_mask_a[:h, :w] != 0, draw_mask_b[:h, :w] != 0


@given(masks(), masks())
def test_set_algebra_matches_dense(ma, mb):
    a, b = _pair(ma, mb)
    ra, rb = encode(a), encode(b)
    np.testing.assert_array_equal(R.union(ra, rb), ref.encode(a | b))
    np.testing.assert_array_equal(R.intersection(ra, rb), ref.encode(a & b))
    np.testing.assert_array_equal(R.difference(ra, rb), ref.encode(a & ~b))
    assert R.intersection_area(ra, rb) == int((a & b).sum())
    assert R.area(ra) == int(a.sum())
    expected = (2 * (a & b).sum() + 1e-4) / (a.sum() + b.sum() + 1e-4)
    assert R.dice(ra, rb) == expected


@given(masks(), masks())
def test_normalize_merges_any_interval_soup(ma, mb):
    a, b = _pair(ma, mb)
    soup = np.concatenate([encode(b), encode(a), [[3, 3]]])  # unsorted, overlapping, one empty
    np.testing.assert_array_equal(R.normalize(soup), ref.encode(a | b))


def test_from_rows_merges_across_row_ends():
    runs = R.from_rows(np.array([0, 1, 2]), np.array([2, 0, 1]), np.array([4, 4, 1]), 4)
    np.testing.assert_array_equal(runs, [[2, 8]])


def test_kernels_match_python_twins():
    a = np.array([[0, 5], [7, 9], [12, 20]], np.int64)
    b = np.array([[3, 8], [15, 16], [19, 30]], np.int64)
    for k in (K.union_kernel, K.intersection_kernel, K.difference_kernel):
        np.testing.assert_array_equal(k(a, b), k.py_func(a, b))
    assert K.intersection_area_kernel(a, b) == K.intersection_area_kernel.py_func(a, b)
