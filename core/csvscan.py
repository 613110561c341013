"""Field counts of every record of a CSV file, straight from its bytes.

pandas silently pads short rows and turns one extra field into an index column; a
truncated or shifted line must instead be an error that names its line.
"""

from __future__ import annotations

import numpy as np

from core._kernels import field_counts_kernel


def field_counts(data: bytes, sep: str = ",") -> np.ndarray:
    """Per-record field counts of CSV ``data`` (blank records: -1)."""
    return field_counts_kernel(np.frombuffer(data, np.uint8), ord(sep))
