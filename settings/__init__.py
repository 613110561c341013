"""Settings: plain YAML (or dicts) validated into typed objects, one per command, and their
resolution into per-class values. Names load on first use (PEP 562).

- ``VoteSettings`` (``hard_vote``, ``weighted_vote``) — ``settings.vote``
- ``SoftSettings`` (``soft_vote``) — ``settings.soft``
- ``SelectSettings`` (``select``) — ``settings.select``; ``MergeSettings`` (``merge``) — ``settings.merge``
- ``PostprocessFile`` (``clean_predictions``) — ``settings.postprocess``
- ``StapleSettings`` (the ``staple`` command) — ``settings.staple``
- ``load_settings``, ``load_yaml``, ``write_yaml`` — ``settings.loader``
"""

from core.lazy import lazy_exports

_EXPORTS = {
    "VoteSettings": "settings.vote",
    "SoftSettings": "settings.soft",
    "SelectSettings": "settings.select",
    "MergeSettings": "settings.merge",
    "PostprocessFile": "settings.postprocess",
    "StapleSettings": "settings.staple",
    "load_settings": "settings.loader",
    "load_yaml": "settings.loader",
    "write_yaml": "settings.loader",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("settings", _EXPORTS)
