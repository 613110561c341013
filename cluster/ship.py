"""``--ship-inputs``: the client reads the input CSVs and sends each task its chunk's rows,
for workers that do not see the client's files.

The checks run here, in this process, exactly as on one machine (same errors, same notes);
the parsed inputs are then cut per chunk (``core.subset.take_images``: only the chunk's RLE
text) and each task runs the public function on those in-memory ``Predictions``. The client
then holds the parsed inputs, as a single-machine run does: its memory is that of the local
run, not bounded by the chunks in flight.
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
    """Runs the checks here and cuts the parsed inputs into chunks."""

    def __init__(self, fn: Callable, name: str, args: tuple, kwargs: dict):
        self.fn, self.name, self.args, self.kwargs = fn, name, args, kwargs
        self.sel = None

    def prepare(self, notes):
        from cluster.tasks import prepare

        keep: list = []
        prep = prepare(self.fn, self.args, self.kwargs, keep)
        for line in prep.notes:
            notes(line)
        self.sel = keep[0]
        return prep

    def chunk(self, images: list[str]) -> tuple[tuple, dict]:
        """The arguments of a shipped task for these images."""
        kw = dict(self.kwargs)
        if "expected_images" in kw:
            kw["expected_images"] = None  # checked here already, on the whole set
        if "settings" in kw:
            kw["settings"] = _settings_dict(kw["settings"])
        sel = self.sel
        if self.name == "evaluate":
            gt, preds = sel.extra["inputs"]
            names = sel.extra["names"]
            return ({n: take_images(p, images) for n, p in zip(names, preds, strict=True)}, take_images(gt, images)), kw
        if self.name == "clean_predictions":
            preds = sel.work.args[0]
            if len(self.args) > 1:
                raise ValueError("clean_predictions: pass settings by keyword on a cluster")
            return (take_images(preds, images),), kw
        plan = sel.work.__self__  # the VotePlan
        names = self._vote_names()
        return ({n: take_images(p, images) for n, p in zip(names, plan.aligned.sources, strict=True)},), kw

    def _vote_names(self) -> list[str]:
        from core.sources import named_sources

        if self.args and self.args[0] is not None:
            return list(named_sources(self.args[0]))
        from settings.loader import load_settings
        from settings.vote import VoteSettings

        cfg, _, _ = load_settings(VoteSettings, self.kwargs.get("settings"))
        return list(named_sources(cfg.sources))
