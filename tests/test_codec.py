import numpy as np
import pytest
import reference as ref
from helpers import package_kernels
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import canonical_runs, masks

from core import codec
from core.codec import RLEError, decode, encode, format_rle, parse_rle

K = package_kernels("core")

REASON = {
    ref.ODD: codec.ERR_ODD,
    ref.CHAR: codec.ERR_CHAR,
    ref.ZERO_LENGTH: codec.ERR_ZERO_LENGTH,
    ref.ZERO_START: codec.ERR_ZERO_START,
    ref.ORDER: codec.ERR_ORDER,
    ref.BOUNDS: codec.ERR_BOUNDS,
}


@given(masks())
def test_encode_matches_numpy_reference(m):
    runs = encode(m)
    assert runs.dtype == np.int64 and runs.shape[1] == 2
    np.testing.assert_array_equal(runs, ref.encode(m))


@given(masks(max_side=90, dtypes=[np.bool_, np.uint8, np.uint16, np.int32, np.int64]))
def test_encode_decode_identity(m):
    back = decode(encode(m), m.shape)
    np.testing.assert_array_equal(back, (m != 0).astype(np.uint8))


@given(masks(max_side=30))
def test_decode_into_buffer_of_any_dtype(m):
    runs = ref.encode(m)
    for dtype in (np.bool_, np.uint8, np.int32):
        buf = np.full(m.shape, 1, dtype)  # stale content must be cleared
        out = decode(runs, m.shape, out=buf)
        assert out is buf
        np.testing.assert_array_equal(buf != 0, m != 0)


def test_encode_sparse_large_mask_skips_words():
    # exercises the 64-byte skipping path with pixels right before/after block boundaries
    m = np.zeros((2048, 2048), np.uint8)
    for p in (0, 63, 64, 65, 511, 512, 4096 * 7 - 1, 2048 * 2048 - 1):
        m.reshape(-1)[p] = 1
    m[1000:1100, 2000:2048] = 1  # runs crossing row ends merge into long runs
    np.testing.assert_array_equal(encode(m), ref.encode(m))
    np.testing.assert_array_equal(encode(m.astype(np.uint16)), ref.encode(m))
    np.testing.assert_array_equal(encode(m.T.astype(bool).T), ref.encode(m))


def test_run_ending_on_last_pixel():
    runs = parse_rle("4190000 4305", 2048, 2048)
    assert runs[-1, 1] == 2048 * 2048
    mask = decode(runs)
    assert mask[-1, -1] == 1 and mask.sum() == 4305
    assert format_rle(encode(mask)) == "4190000 4305"
    with pytest.raises(RLEError, match="past the last pixel"):
        parse_rle("4190000 4306", 2048, 2048)


@given(canonical_runs())
def test_format_parse_identity(case):
    runs, npix = case
    text = format_rle(runs)
    assert text == ref.format_rle(runs)
    np.testing.assert_array_equal(parse_rle(text, 1, npix), runs)


@given(
    st.lists(st.one_of(st.integers(0, 60), st.sampled_from(["x", "-1", "+2", "1.5", "", "٣"])), max_size=12),
    st.integers(1, 80),
    st.sampled_from([" ", "  ", "\t", " \n"]),
)
def test_parse_agrees_with_reference_on_arbitrary_text(tokens, npix, sep):
    text = sep.join(str(t) for t in tokens)
    expected = ref.parse_rle(text, npix)
    if isinstance(expected, str):
        with pytest.raises(RLEError) as e:
            parse_rle(text, 1, npix)
        assert e.value.code == REASON[expected]
    else:
        np.testing.assert_array_equal(parse_rle(text, 1, npix), expected)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1 2 5", "odd number"),
        ("1 a", "non-integer"),
        ("1 2x 5 1", "non-integer"),
        ("1 -2", "non-integer"),
        ("1.0 2", "non-integer"),
        ("1 0", "length < 1"),
        ("0 3", "start < 1"),
        ("10 2 5 2", "not ascending"),
        ("1 5 3 2", "not ascending"),
        ("100 2", "past the last pixel"),
        ("1 99999999999999999999999", "too large"),
        # 2**64 + 1 and 2**64 + 3: 20 digits that wrap int64 to 1 and 3 if checked after multiplying
        ("18446744073709551617 1", "too large"),
        ("1 18446744073709551619", "too large"),
        ("4611686018427387905 1", "too large"),  # 2**62 + 1: just past the limit
    ],
)
def test_invalid_rle_rejected_with_reason(text, reason):
    with pytest.raises(RLEError, match=reason):
        parse_rle(text, 10, 10)


def test_touching_runs_are_merged_and_whitespace_tolerated():
    np.testing.assert_array_equal(parse_rle(" 1 2  3 4\t10 1 ", 10, 10), [[0, 6], [9, 10]])
    assert parse_rle("", 4, 4).shape == (0, 2)
    assert format_rle(np.zeros((0, 2), np.int64)) == ""


def test_encode_rejects_float_masks():
    with pytest.raises(TypeError):
        encode(np.zeros((4, 4), np.float32))


def test_kernels_match_their_python_twins():
    rng = np.random.default_rng(3)
    m = (rng.random((37, 70)) < 0.3).astype(np.uint8)
    b = m.reshape(-1)
    words = b[: (len(b) // 64) * 64].view(np.uint64)
    np.testing.assert_array_equal(K.encode_kernel.py_func(b, words, 1, b.size), encode(m))
    text = format_rle(encode(m))
    buf = np.frombuffer(text.encode(), np.uint8)
    out_jit = np.empty((len(buf) // 4 + 1, 2), np.int64)
    out_py = out_jit.copy()
    assert K.parse_kernel(buf, 0, len(buf), m.size, out_jit) == K.parse_kernel.py_func(buf, 0, len(buf), m.size, out_py)
    runs = encode(m)
    o1, o2 = np.empty(42 * len(runs), np.uint8), np.empty(42 * len(runs), np.uint8)
    e1 = K.format_kernel(runs, o1, 0)
    assert e1 == K.format_kernel.py_func(runs, o2, 0) and (o1[:e1] == o2[:e1]).all()


@pytest.mark.parametrize(
    "text",
    [
        "0000000000000000000000001 2",  # 25 digits of value 1: long, yet valid
        "1 000000000000000000000000000003",
        "999999999999999999 1",  # 18 digits: the unchecked path
        "4611686018427387904 1",  # 2**62: the limit itself
        "4611686018427387905 1",
        "18446744073709551617 1",
        "1 99999999999999999999999",
        "3 1 1234567890123456789012345678901234567890",
    ],
)
def test_long_numbers_parse_as_in_the_python_twin(text):
    """Numbers of more than 18 digits leave the per-digit loop without checks for the checked
    one: the kernel and its twin (which cannot wrap) agree, error code and value index."""
    buf = np.frombuffer(text.encode(), np.uint8)
    out_jit = np.zeros((len(buf) // 4 + 1, 2), np.int64)
    out_py = out_jit.copy()
    npix = 1 << 62
    assert K.parse_kernel(buf, 0, len(buf), npix, out_jit) == K.parse_kernel.py_func(buf, 0, len(buf), npix, out_py)
    np.testing.assert_array_equal(out_jit, out_py)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 9)), max_size=12), st.data())
def test_parse_valid_kernel_reads_what_parse_kernel_accepts(gaps_lengths, data):
    """The vote's unchecked parse, on any text ``parse_kernel`` accepts (touching runs, any
    whitespace, leading zeros), gives ``parse_kernel``'s runs; so does its Python twin."""
    pairs, at = [], 0
    for gap, length in gaps_lengths:
        pairs.append((at + gap + 1, length))
        at += gap + length
    seps = st.sampled_from([" ", "  ", "\t", "\r\n", " \n"])
    words = [data.draw(st.sampled_from(["", "0", "00"])) + str(v) for pair in pairs for v in pair]
    text = data.draw(st.sampled_from(["", " "])) + "".join(w + data.draw(seps) for w in words)
    buf = np.frombuffer(text.encode(), np.uint8)
    npix = max(at, 1)
    want = np.zeros((len(buf) // 4 + 1, 2), np.int64)
    n, err, _ = K.parse_kernel(buf, 0, len(buf), npix, want)
    assert err == K.OK
    for kernel in (K.parse_valid_kernel, K.parse_valid_kernel.py_func):
        got = np.full((len(buf) // 4 + 3, 2), -1, np.int64)
        got[0] = (7, 7)  # rows before ``n`` are left as they are
        assert kernel(buf, 0, len(buf), got, 1) == n + 1
        np.testing.assert_array_equal(got[1 : n + 1], want[:n])
        assert tuple(got[0]) == (7, 7)
