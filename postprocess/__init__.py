"""Morphological cleaning of masks, computed on runs.

- ``clean_predictions`` → ``CleanResult``: a whole prediction set (``postprocess.job``).
- ``Rules`` (one class's steps), ``clean`` (``clean(runs, h, w, rules)``) and ``Cleaner`` — the per-class
  ``clean(class_index, runs) -> runs`` hook with summary counts (``postprocess.clean``).
- ``components``, ``component_areas`` (union-find over runs; ``postprocess.components``),
  ``fill_holes`` (``postprocess.holes``), ``opening``, ``closing`` (``postprocess.morphology``).
- Settings (``default`` + per-class overrides) → ``Cleaner``: ``settings.postprocess.build_cleaner``.
"""

from postprocess.clean import Cleaner, Rules, clean
from postprocess.components import component_areas, components
from postprocess.holes import fill_holes
from postprocess.job import CleanResult, clean_predictions
from postprocess.morphology import closing, opening

__all__ = ["CleanResult", "Cleaner", "Rules", "clean", "clean_predictions", "closing", "component_areas",
           "components", "fill_holes", "opening"]
