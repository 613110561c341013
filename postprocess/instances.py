"""Where a job's output goes, and one row per object: ``output_writer`` gives the writer of a
job's images (a CSV, a folder of PNG label maps, or memory); with ``write_instances`` a CSV
holds one row per connected component of each mask (8-connected), as Airbus- or SIIM-style
submissions do, and an empty mask one row with an empty RLE. Reading such a file back with
``instances="union"`` gives the masks again."""

from __future__ import annotations

from collections.abc import Callable

from core.codec import format_rle, parse_rle
from core.predictions import writer_for
from postprocess.connected import components

Size = Callable[[str], tuple[int, int]]


def instance_split(size_of: Size, order: str = "row", connectivity: int = 8) -> Callable[[str, str], list[str]]:
    """``split(image, rle)``: the RLE text of each connected component of a mask (in the RLE's
    own pixel order of their first pixel), ``[""]`` for an empty mask; ``size_of(image)`` gives
    the image's ``(height, width)``, ``order`` the RLE order.

    >>> split = instance_split(lambda image: (3, 3))
    >>> split("a.png", "1 2 9 1"), split("a.png", "1 1 5 1"), split("a.png", "")
    (['1 2', '9 1'], ['1 1 5 1'], [''])
    >>> instance_split(lambda image: (3, 3), connectivity=4)("a.png", "1 1 5 1")
    ['1 1', '5 1']
    """

    def split(image: str, rle: str) -> list[str]:
        h, w = size_of(image)
        runs = parse_rle(rle, h, w)
        if not len(runs):
            return [""]
        return [format_rle(part) for part in components(runs, h if order == "column" else w, connectivity)]

    return split


def output_writer(output, frame, size_of: Size, command: str, write_instances: bool = False, label: str = "memory"):
    """The writer of a job's images (``core.predictions.writer_for``) for its ``frame``
    (``core.sources.Frame``: classes, size, layout, exclusive): ``output`` a CSV (one row per
    component with ``write_instances``), a folder of label maps (``DIR/``), or ``None``
    (memory). ``size_of(image)`` gives each image's ``(height, width)``."""
    split = instance_split(size_of, frame.layout.order) if write_instances else None
    return writer_for(
        output,
        frame.classes,
        frame.height,
        frame.width,
        label,
        frame.layout,
        size_of=size_of,
        exclusive=frame.exclusive,
        split=split,
        command=command,
    )
