"""Shared low-level code: the RLE codec and run algebra, prediction sets (``Predictions``) and
their CSV I/O, checks, errors, class lists and synthetic data.

Names are loaded on first use (PEP 562), so that ``import core`` — which every command does
at start-up — stays as light as ``python cli.py --help`` needs.

- ``Predictions`` (``read``, ``from_frame``, ``to_frame``, ``write``, ``runs``, ``mask``) —
  ``core.predictions``; ``check`` → ``CheckReport`` — ``core.validate``
- ``encode``, ``decode``, ``parse_rle``, ``format_rle`` — ``core.codec``; ``union``,
  ``intersection``, ``difference``, ``area``, ``dice`` — ``core.runs``
- ``DEFAULT_CLASSES``, ``CANVAS`` — ``core.classes``; ``ImageExpectation`` — ``core.imageset``
- ``ToolError``, ``UsageError``, ``InputError``, ``DataError`` (all ``ValueError``) — ``core.errors``
- ``overlaps``, ``resolve_overlaps`` (classes meant to be exclusive) — ``core.exclusivity``
"""

from core.lazy import lazy_exports

_EXPORTS = {
    "Predictions": "core.predictions",
    "check": "core.validate",
    "CheckReport": "core.validate",
    "encode": "core.codec",
    "decode": "core.codec",
    "parse_rle": "core.codec",
    "format_rle": "core.codec",
    "union": "core.runs",
    "intersection": "core.runs",
    "difference": "core.runs",
    "area": "core.runs",
    "dice": "core.runs",
    "overlaps": "core.exclusivity",
    "resolve_overlaps": "core.exclusivity",
    "DEFAULT_CLASSES": "core.classes",
    "CANVAS": "core.classes",
    "ImageExpectation": "core.imageset",
    "ToolError": "core.errors",
    "UsageError": "core.errors",
    "InputError": "core.errors",
    "DataError": "core.errors",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("core", _EXPORTS)
