"""Independent plain-numpy/pandas helpers for the select and merge tests: dense masks to RLE
text and back, CSV writing, and reading outputs as frames."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rle_text(mask: np.ndarray, split: bool = False) -> str:
    """Submission RLE of a dense mask (row-major, 1-indexed); ``split`` writes every run of
    length > 1 as two touching runs (same mask, different text)."""
    flat = np.concatenate([[0], mask.ravel().astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    out = []
    for s, e in zip(edges[::2], edges[1::2], strict=True):
        if split and e - s > 1:
            out += [s + 1, 1, s + 2, e - s - 1]
        else:
            out += [s + 1, e - s]
    return " ".join(map(str, out))


def dense(text: str, h: int, w: int) -> np.ndarray:
    """Dense mask of a submission RLE string ("" or NaN: empty)."""
    m = np.zeros(h * w, bool)
    if isinstance(text, str) and text.strip():
        v = np.array(text.split(), np.int64)
        for s, n in zip(v[::2], v[1::2], strict=True):
            m[s - 1 : s - 1 + n] = True
    return m.reshape(h, w)


def write_csv(path, rows) -> str:
    """Write ``(image_name, class, rle)`` rows with pandas; returns the path as str."""
    pd.DataFrame(list(rows), columns=["image_name", "class", "rle"]).to_csv(path, index=False)
    return str(path)


def read_frame(path) -> pd.DataFrame:
    """An output CSV as strings, empty masks as ""."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def basename(s: pd.Series) -> pd.Series:
    return s.str.replace(r"^.*[\\/]", "", regex=True)
