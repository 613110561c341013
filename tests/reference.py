"""Plain dense numpy references, independent of the numba code under test."""

from __future__ import annotations

import numpy as np

# Reasons, in the words the reference uses; mapped to codec error codes by the tests.
ODD, CHAR, ZERO_LENGTH, ZERO_START, ORDER, BOUNDS = "odd", "char", "zero_length", "zero_start", "order", "bounds"


def encode(mask: np.ndarray) -> np.ndarray:
    """The common numpy encoder: runs as 0-based [start, stop) from value changes."""
    flat = (np.asarray(mask) != 0).ravel().astype(np.int8)
    padded = np.concatenate([[0], flat, [0]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    return changes.reshape(-1, 2).astype(np.int64)


def decode(runs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    flat = np.zeros(shape[0] * shape[1], np.uint8)
    for s, e in np.asarray(runs).reshape(-1, 2):
        flat[s:e] = 1
    return flat.reshape(shape)


def format_rle(runs: np.ndarray) -> str:
    runs = np.asarray(runs).reshape(-1, 2)
    return " ".join(f"{s + 1} {e - s}" for s, e in runs)


def parse_rle(text: str, npix: int):
    """Canonical runs, or the reason the text is invalid: the first problem met reading
    the values left to right (an odd count is only known at the end)."""
    tokens = text.split()
    runs: list[list[int]] = []
    start = 0
    for k, t in enumerate(tokens):
        if not (t.isascii() and t.isdigit()):
            return CHAR
        v = int(t)
        if k % 2 == 0:
            if v < 1:
                return ZERO_START
            start = v - 1
            continue
        if v < 1:
            return ZERO_LENGTH
        stop = start + v
        if stop > npix:
            return BOUNDS
        if runs and start < runs[-1][1]:
            return ORDER
        if runs and start == runs[-1][1]:
            runs[-1][1] = stop
        else:
            runs.append([start, stop])
    if len(tokens) % 2:
        return ODD
    return np.array(runs, np.int64).reshape(-1, 2)


def vote(masks: list[np.ndarray], weights, threshold: float, min_votes: int | None = None) -> np.ndarray:
    """Dense weighted vote: acc += w_i * m_i in source order, keep acc / Σw > threshold."""
    acc = np.zeros(masks[0].shape, np.float64)
    votes = np.zeros(masks[0].shape, np.int64)
    total = 0.0
    for w in weights:
        total += w
    for w, m in zip(weights, masks):
        acc += w * (m != 0)
        votes += m != 0
    if min_votes:
        return votes >= min_votes
    return acc / total > threshold
