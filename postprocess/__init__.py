"""Morphological cleaning of masks, computed on runs.

- ``clean_predictions`` → ``CleanResult``: a whole prediction set (``postprocess.clean_files``).
- ``Rules`` (one class's steps), ``clean`` (``clean(runs, h, w, rules)``) and ``Cleaner`` — the per-class
  ``clean(class_index, runs) -> runs`` hook with summary counts (``postprocess.cleaner``).
- ``components``, ``component_areas`` (union-find over runs; ``postprocess.connected``),
  ``fill_holes`` (``postprocess.holes``), ``opening``, ``closing`` (``postprocess.morphology``).
- Settings (``default`` + per-class overrides) → ``Cleaner``: ``settings.postprocess.build_cleaner``.
"""

from core.lazy import lazy_exports
from postprocess.cleaner import Cleaner as Cleaner
from postprocess.cleaner import Rules as Rules
from postprocess.cleaner import clean as clean

# Loaded on first use: a hard vote must not pay for importing the soft vote's engines. A
# function named like its module is imported now: the module, once imported, would shadow it.
_EXPORTS = {
    "component_areas": "postprocess.connected",
    "components": "postprocess.connected",
    "fill_holes": "postprocess.holes",
    "CleanResult": "postprocess.clean_files",
    "clean_predictions": "postprocess.clean_files",
    "closing": "postprocess.morphology",
    "opening": "postprocess.morphology",
}
__all__ = sorted([*_EXPORTS, "Cleaner", "Rules", "clean"])

__getattr__, __dir__ = lazy_exports("postprocess", _EXPORTS)
