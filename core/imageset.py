"""The images a prediction should hold: ``--expect-images N`` and ``--images-from FILE``.

A file cut exactly at an image boundary is a valid submission of fewer images; only a
comparison with the expected set (a count, or a list such as the sample submission)
catches it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import NAME_LIMIT, DataError, InputError, listing, plural, shown
from core.inputs import require_file

SHOWN = 3
"""Names shown per kind of difference (the counts are always given)."""


def read_image_list(path: str | os.PathLike) -> list[str]:
    """Image names (basenames, first occurrence order, no duplicates) from ``path``: a CSV
    with an ``image_name`` column (a sample submission, whose rows repeat each image once
    per class, or any prediction CSV) or a plain list, one name per line."""
    p = Path(path)
    require_file(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (expected an image list or a CSV with image_name)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read as a UTF-8 image list ({e.__class__.__name__})") from None
    lines = text.splitlines()
    if not lines:
        raise InputError(f"{path}: empty image list")
    header = [h.strip() for h in next(csv.reader([lines[0]]), [])]
    if "image_name" in header:
        col = header.index("image_name")
        rows = csv.reader(io.StringIO(text))
        next(rows)
        raw = [row[col] for row in rows if len(row) > col]
    elif len(header) > 1:
        raise InputError(
            f"{path}:1: no image_name column (header is {shown(','.join(header), 2 * NAME_LIMIT)}); "
            "give a CSV with image_name or one image name per line"
        )
    else:
        raw = lines
    names = dict.fromkeys(_basename(s) for s in raw if s.strip())
    if not names:
        raise InputError(f"{path}: no image names")
    return list(names)


def _basename(name: str) -> str:
    # Predictions are matched on the basename; the list must be too.
    return name.strip().replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ImageExpectation:
    """What ``--expect-images`` and ``--images-from`` ask for (either or both)."""

    count: int | None = None
    names: tuple[str, ...] | None = None
    source: str | None = None  # the file ``names`` came from

    @classmethod
    def from_options(cls, count: int | None, path: str | None) -> ImageExpectation | None:
        """``None`` when neither option is given; reads the list file (``InputError``)."""
        if count is None and path is None:
            return None
        return cls(count, tuple(read_image_list(path)) if path else None, path)

    def differences(self, images: Sequence[str]) -> list[str]:
        """How ``images`` differ from what is expected: counts and the first few names."""
        out = []
        if self.count is not None and len(images) != self.count:
            diff = len(images) - self.count
            out.append(
                f"{plural(len(images), 'image')}, expected {self.count:,} "
                f"({abs(diff):,} {'more' if diff > 0 else 'fewer'})"
            )
        if self.names is not None:
            have = set(images)
            want = set(self.names)
            missing = [n for n in self.names if n not in have]
            extra = [n for n in images if n not in want]
            if missing:
                out.append(f"{plural(len(missing), 'image')} of {self.source} missing ({_first(missing)})")
            if extra:
                out.append(f"{plural(len(extra), 'image')} not in {self.source} ({_first(extra)})")
        return out

    def check(self, images: Sequence[str], label: str) -> None:
        """Raise ``DataError`` (exit 1) naming ``label`` when ``images`` differ."""
        diff = self.differences(images)
        if diff:
            raise DataError(f"{label}: {'; '.join(diff)}")


def _first(names: Sequence[str]) -> str:
    return ("first: " if len(names) > SHOWN else "") + listing(names[:SHOWN])
