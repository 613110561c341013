"""The byte tokenizer (plain files) reads every file exactly as the pandas reader does.

Files are generated with the quirks real submissions have: padded fields, CRLF, blank lines,
``nan`` masks, paths as image names, unknown and duplicate classes, invalid RLE, extra and
reordered columns, images whose rows are not consecutive. Both readers then go through the
same checks; the Predictions and the problem list must be identical.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core._csv_kernels import blank_between_kernel, count_byte_kernel, field_end, plain_kernel, tokenize_kernel
from core.csv_bytes import _several_records, record_count
from core.csv_bytes import is_plain as _plain
from core.csv_bytes import read_bytes as _read_bytes
from core.csv_read import _assemble, _columns, _read_frame, _tokenize
from core.errors import InputError
from core.layout import DEFAULT_LAYOUT

CLASSES = ("a", "b", "c")
NAMES = ["x.png", "y.png", " x.png", "d/x.png", "e\\y.png", "z.png ", ""]
CLASS_FIELDS = ["a", "b", "c", " a", "b ", "A", "zz", ""]
RLES = ["", "1 2", " 3 1 ", "nan", "NaN", " nan ", "   nan", "1 1 2 1", "5 x", "0 1", "1 20", "2 1 1 1", "7"]


@st.composite
def plain_files(draw) -> bytes:
    order = draw(st.permutations(["image_name", "class", "rle", "extra"]))
    if draw(st.booleans()):
        order = [c for c in order if c != "extra"]
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(order)]
    for _ in range(draw(st.integers(0, 14))):
        if draw(st.integers(0, 9)) == 0:
            lines.append("" if draw(st.booleans()) else ",".join("" for _ in order))
            continue
        field = {
            "image_name": draw(st.sampled_from(NAMES)),
            "class": draw(st.sampled_from(CLASS_FIELDS)),
            "rle": draw(st.sampled_from(RLES)),
            "extra": draw(st.sampled_from(["", "1", "q"])),
        }
        lines.append(",".join(field[c] for c in order))
    text = eol.join(lines)
    if draw(st.booleans()):
        text += eol
    return text.encode()


def _both(tmp_path, data: bytes):
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    data, header, unterminated = _read_bytes(str(path), 16, "4×4", DEFAULT_LAYOUT)
    assert _plain(data)
    fast = _assemble("f", _tokenize(bytearray(data), header, CLASSES), unterminated, CLASSES, 4, 4)  # blanks its copy
    (img, cls, rle), lines = _read_frame("f", data)
    slow = _assemble("f", _columns(img, cls, rle, lines, CLASSES), unterminated, CLASSES, 4, 4)
    return fast, slow


@settings(max_examples=300, deadline=None)
@given(data=plain_files())
def test_tokenizer_reads_as_pandas(tmp_path_factory, data):
    (fast, fast_problems), (slow, slow_problems) = _both(tmp_path_factory.mktemp("r"), data)
    assert [str(p) for p in fast_problems] == [str(p) for p in slow_problems]
    assert fast.images == slow.images and fast.paths_stripped == slow.paths_stripped
    for name in ("rows", "lines", "areas", "run_counts"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert len(fast.offsets) == len(slow.offsets)
    for r in range(len(slow.offsets) - 1):  # the tokenizer's rows are padded with whitespace
        want = slow.text[slow.offsets[r] : slow.offsets[r + 1]].tobytes()
        got = fast.text[fast.offsets[r] : fast.offsets[r + 1]].tobytes()
        want = want.rstrip(b"\r")
        assert got.startswith(want) and not got[len(want) :].strip(), r
    assert (fast.truncation, fast.truncated_image) == (slow.truncation, slow.truncated_image)


@settings(max_examples=200, deadline=None)
@given(
    data=plain_files(),
    edits=st.lists(st.tuples(st.integers(1, 20), st.sampled_from(["drop", "add"])), min_size=1, max_size=3),
)
def test_the_tokenizer_counts_fields_as_the_counting_pass(tmp_path_factory, data, edits):
    """A plain file with rows of too few or too many fields: the error the tokenizer raises
    (it counts fields as it splits) is the one the separate counting pass raises."""
    lines = data.split(b"\n")
    for i, how in edits:
        k = 1 + i % max(len(lines) - 1, 1)
        if k >= len(lines):
            continue
        body, cr = (lines[k][:-1], b"\r") if lines[k].endswith(b"\r") else (lines[k], b"")
        lines[k] = (body + b",x" if how == "add" else body.rpartition(b",")[0]) + cr
    path = tmp_path_factory.mktemp("f") / "in.csv"
    path.write_bytes(b"\n".join(lines))

    def error(count_fields: bool) -> str | None:
        try:
            data, header, unterminated = _read_bytes(str(path), 16, "4×4", DEFAULT_LAYOUT, count_fields=count_fields)
            if not count_fields:
                assert _plain(data)
                _tokenize(data, header, CLASSES, DEFAULT_LAYOUT, str(path), unterminated)
        except InputError as e:
            return str(e)
        return None

    assert error(False) == error(True)


def test_quoted_non_ascii_and_lone_cr_files_are_not_plain():
    assert not _plain(b'image_name,class,rle\n"a,b.png",a,1 1\n')
    assert not _plain("image_name,class,rle\nä.png,a,1 1\n".encode())
    assert not _plain(b"image_name,class,rle\rx.png,a,1 1\r")
    assert _plain(b"image_name,class,rle\r\nx.png,a,1 1\r\n")


def test_tokenize_kernel_matches_its_python_twin():
    data = b"image_name,class,rle\nx.png, b ,1 2\r\n\n,,\nd/x.png,q,nan\ny.png,a,3 1"
    buf = np.frombuffer(data, np.uint8)
    args = (buf, 21, 44, 3, 0, 1, 2, np.frombuffer(b"ab", np.uint8), np.array([0, 1, 2]))
    for got, want in zip(tokenize_kernel(*args), tokenize_kernel.py_func(*args), strict=True):
        np.testing.assert_array_equal(got, want)
    lines, spans, new_name, cls, rle, bad = tokenize_kernel(*args)
    assert lines.tolist() == [2, 5, 6] and new_name.tolist() == [True, True, True]
    assert bad.tolist() == [0, 0, 0]
    assert cls.tolist() == [1, -1, 0] and [data[a:b] for a, b in rle] == [b"1 2", b"", b"3 1"]
    blanked = np.frombuffer(bytearray(data), np.uint8)
    for kernel in (blank_between_kernel, blank_between_kernel.py_func):
        kernel(blanked, rle)
        assert blanked.tobytes() == data[:34] + b" " * (rle[2, 0] - 34) + b"3 1"


@given(st.lists(st.sampled_from([b"a", b",", b"\n", b"\r", b"\r\n"]), max_size=12).map(b"".join))
def test_several_records_is_a_record_count_above_one(data):
    assert _several_records(data) == (record_count(data) > 1)


# Bytes the word-at-a-time kernels must tell apart: line ends, separators, quotes, carriage
# returns, non-ASCII, and the digits and spaces of RLE text.
_BYTES = st.lists(st.sampled_from([10, 13, 34, 44, 32, 48, 57, 128, 255, 9]), max_size=70)


@settings(max_examples=300, deadline=None)
@given(raw=_BYTES, skip=st.integers(0, 7), pos=st.integers(0, 70))
def test_word_kernels_match_a_byte_by_byte_reading(raw, skip, pos):
    """``field_end``, ``count_byte_kernel`` and ``plain_kernel`` read eight bytes at a time,
    from any alignment (``skip``): each answers as a plain scan of the bytes does."""
    buf = np.frombuffer(bytes(skip) + bytes(raw), np.uint8)[skip:]
    data = bytes(raw)
    n = len(data)
    words = buf[: n - n % 8].view(np.uint64)
    seps = np.uint64(0x0101010101010101) * np.uint64(44)
    pos = min(pos, n)
    want = next((j for j in range(pos, n) if data[j] in (10, 44)), n)
    assert field_end(buf, words, pos, seps) == want
    assert field_end.py_func(buf, words, pos, seps) == want
    for byte in (10, 13, 44):
        assert count_byte_kernel(buf, byte) == count_byte_kernel.py_func(buf, byte) == data.count(bytes([byte]))
    plain = data.isascii() and b'"' not in data and data.count(b"\r") == data.count(b"\r\n")
    assert plain_kernel(buf) == plain_kernel.py_func(buf) == plain
