"""Morphological cleaning of masks, computed on runs.

- ``postprocess.clean``: ``Rules`` (one class's steps), ``clean(runs, h, w, rules)`` and
  ``Cleaner`` — the per-class ``clean(class_index, runs) -> runs`` hook with summary counts.
- ``postprocess.components``: ``components``, ``component_areas`` (union-find over runs).
- ``postprocess.holes``: ``fill_holes``; ``postprocess.morphology``: ``opening``, ``closing``.
- ``postprocess.job``: ``clean_predictions`` (a whole CSV, streamed, atomic output).
- Settings (``default`` + per-class overrides) → ``Cleaner``: ``settings.postprocess.build_cleaner``.
"""
