"""Rows of one object each (``--instances union``): several rows of one image and class read
as one mask, the union of their runs."""

from __future__ import annotations

import numpy as np

from core.codec import format_rle, parse_rle
from core.runs import area, union


def union_instances(
    text: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    areas: np.ndarray,
    dup: np.ndarray,
    first_row: np.ndarray,
    key: np.ndarray,
    row_npix: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Several rows of one image and class (one per object, ``--instances union``) read as
    one mask: the first row's text becomes the union of the group's runs, the others are left
    out of the table. ``dup`` marks the rows after a group's first, ``first_row[key[r]]`` is
    row ``r``'s first; returns the new text, offsets, run counts and areas."""
    groups: dict[int, list[int]] = {}
    for r in np.flatnonzero(dup):
        groups.setdefault(int(first_row[key[r]]), []).append(int(r))
    replaced = {}
    for first, others in groups.items():
        runs = [parse_rle(text[offsets[r] : offsets[r + 1]].tobytes(), 1, int(row_npix[r])) for r in (first, *others)]
        merged = runs[0]
        for extra in runs[1:]:
            merged = union(merged, extra)
        replaced[first] = (format_rle(merged).encode(), len(merged), int(area(merged)))
    pieces, lengths = [], np.diff(offsets).copy()
    counts, areas = counts.copy(), areas.copy()
    for r in range(len(lengths)):
        if r in replaced:
            piece, counts[r], areas[r] = replaced[r]
            lengths[r] = len(piece)
            pieces.append(np.frombuffer(piece, np.uint8))
        else:
            pieces.append(text[offsets[r] : offsets[r + 1]])
    new_offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    new_text = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
    return np.ascontiguousarray(new_text).copy(), new_offsets, counts, areas
