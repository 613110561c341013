"""Field counts of every record of a CSV file, straight from its bytes.

pandas silently pads short rows and turns one extra field into an index column; a
truncated or shifted line must instead be an error that names its line.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def field_counts_kernel(buf, sep):
    """Fields per record (-1 for a blank record), honouring double-quoted fields; a record
    ends at ``\\n`` outside quotes (a preceding ``\\r`` belongs to no field)."""
    counts = np.empty(buf.shape[0] // 1 + 1, np.int64)
    n = 0
    fields = 1
    empty = True
    quoted = False
    for i in range(buf.shape[0]):
        c = buf[i]
        if c == 34:
            quoted = not quoted
            empty = False
        elif quoted:
            continue
        elif c == sep:
            fields += 1
            empty = False
        elif c == 10:
            counts[n] = -1 if empty else fields
            n += 1
            fields = 1
            empty = True
        elif c != 13:
            empty = False
    if not empty:
        counts[n] = fields
        n += 1
    return counts[:n].copy()


def field_counts(data: bytes, sep: str = ",") -> np.ndarray:
    """Per-record field counts of CSV ``data`` (blank records: -1)."""
    return field_counts_kernel(np.frombuffer(data, np.uint8), ord(sep))
