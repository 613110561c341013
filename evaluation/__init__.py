"""Scoring predictions against ground truth, and tuning combinations on validation data.

- ``evaluate`` → ``Scores`` (Dice per image, class and source; table, csv, json) (``evaluation.scores``)
- ``tune`` → ``TuneResult`` (per-class weights, thresholds, cleaning; ``write()``) (``evaluation.tune_job``;
  the exact search it runs is ``evaluation.search``)
"""

from core.lazy import lazy_exports

# Loaded on first use: a hard vote must not pay for importing the soft vote's engines.
_EXPORTS = {
    "Scores": "evaluation.scores",
    "evaluate": "evaluation.scores",
    "TuneResult": "evaluation.tune_job",
    "tune": "evaluation.tune_job",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports("evaluation", _EXPORTS)
