"""The client reads and checks the input CSVs, and each task gets its chunk's rows only.

The checks run here, in this process, exactly as on one machine (same errors, same notes).
With ``--ship-inputs`` (workers that do not see the client's files) the parsed inputs are
cut per chunk (``core.subset.take_images``: only the chunk's RLE text) and sent; the client
holds the parsed inputs, as a single-machine run does. Otherwise (``ranged``) a task gets
the byte ranges of its rows, which it reads itself (``cluster.ranges``); the client keeps only
where each row's line lies (as the reader found it), and the text of the files that cannot be
read by ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.subset import take_images


def _settings_dict(settings: Any) -> Any:
    """Settings as data the workers need no file for (their own ``output`` dropped: the
    client writes)."""
    from core.sources import is_path

    if settings is None or not is_path(settings):
        return settings
    from settings.loader import load_yaml

    data = dict(load_yaml(settings) or {})
    data.pop("output", None)
    return data


class Shipper:
    """Runs the checks here and cuts the inputs into chunks: each chunk's RLE text, or with
    ``ranged`` the byte ranges of its rows where a file allows it (``cluster.ranges``)."""

    def __init__(self, fn: Callable, name: str, args: tuple, kwargs: dict, ranged: bool = False):
        self.fn, self.name, self.args, self.kwargs = fn, name, args, kwargs
        self.ranged = ranged
        self.parts: list = []  # the inputs: Predictions, or Indexed (cluster.ranges)
        self.names: list[str] = []

    def prepare(self, notes):
        from cluster.tasks import prepare

        keep: list = []
        prep = prepare(self.fn, self.args, self.kwargs, keep)
        for line in prep.notes:
            notes(line)
        sel = keep[0]
        if self.name == "evaluate":
            gt, preds = sel.extra["inputs"]
            self.names = list(sel.extra["names"])
            sources = [gt, *preds]
        elif self.name == "clean_predictions":
            if len(self.args) > 1:
                raise ValueError("clean_predictions: pass settings by keyword on a cluster")
            sources = [sel.work.args[0]]
        else:
            self.names = self._vote_names()
            sources = list(sel.work.__self__.aligned.sources)  # the VotePlan's
        self.parts = [self._indexed(p) for p in sources]  # where indexed, the rows' text is let go
        return prep

    def _indexed(self, p):
        if not self.ranged:
            return p
        from cluster.ranges import Indexed, indexable

        return Indexed.of(p) if indexable(p) else p

    def chunk(self, images: list[str]) -> tuple[tuple, dict]:
        """The arguments of a task for these images (``cluster.ranges.resolve`` turns its
        ``FileRows`` into ``Predictions`` on the worker)."""
        kw = dict(self.kwargs)
        if "expected_images" in kw:
            kw["expected_images"] = None  # checked here already, on the whole set
        if "settings" in kw:
            kw["settings"] = _settings_dict(kw["settings"])
        parts = [p.take(images) if hasattr(p, "take") else take_images(p, images) for p in self.parts]
        if self.name == "evaluate":
            return (dict(zip(self.names, parts[1:], strict=True)), parts[0]), kw
        if self.name == "clean_predictions":
            return (parts[0],), kw
        return (dict(zip(self.names, parts, strict=True)),), kw

    def _vote_names(self) -> list[str]:
        from core.sources import named_sources

        if self.args and self.args[0] is not None:
            return list(named_sources(self.args[0]))
        from settings.loader import load_settings
        from settings.vote import VoteSettings

        cfg, _, _ = load_settings(VoteSettings, self.kwargs.get("settings"))
        return list(named_sources(cfg.sources))
