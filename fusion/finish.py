"""The last steps of an image's rows in ``select`` and ``merge``: cleaning (each mask on its
image's grid) and, for mutually exclusive classes, keeping them exclusive (an overlap is an
error, or the class listed first keeps the pixel) — never a silent overwrite."""

from __future__ import annotations

from collections.abc import Sequence

from core.codec import format_rle, parse_rle
from core.errors import UsageError
from core.exclusivity import resolve_overlaps
from postprocess.cleaner import Cleaner

OVERLAPS = ("error", "first")


def finish_image(
    rles: list[str],
    clean: Cleaner | None,
    grid: tuple[int, int],
    overlaps: str | None,
    classes: Sequence[str],
    image: str,
    where: str = "",
) -> list[str]:
    """An image's RLE strings (class order) cleaned and, with ``overlaps``, made exclusive; a
    mask left as it came keeps its text as written. ``where`` prefixes an overlap's message."""
    if clean is not None:
        rles = [clean.text(c, r, grid) for c, r in enumerate(rles)]
    if overlaps is None:
        return rles
    h, w = grid
    runs = [parse_rle(r, h, w) for r in rles]
    try:
        resolved, _ = resolve_overlaps(runs, overlaps, classes=classes, image=image)
    except ValueError as e:
        if not where:
            raise
        raise type(e)(f"{where}: {e}") from None
    return [r if new is old else format_rle(new) for r, old, new in zip(rles, runs, resolved, strict=True)]


def overlap_policy(frame, overlaps: str | None, cfg) -> str | None:
    """How exclusive classes stay exclusive (``None`` for overlapping classes)."""
    policy = overlaps or getattr(cfg, "overlaps", None) or "error"
    if policy not in OVERLAPS:
        raise UsageError(f"overlaps: {policy!r}: expected error or first", param="overlaps")
    return policy if frame.exclusive else None
