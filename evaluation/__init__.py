"""Scoring predictions against ground truth, and tuning combinations on validation data.

- ``evaluate`` → ``Scores`` (Dice per image, class and source; table, csv, json) (``evaluation.scores``)
- ``tune`` → ``TuneResult`` (per-class weights, thresholds, cleaning; ``write()``) (``evaluation.tune_job``;
  the exact search it runs is ``evaluation.search``)
"""

from evaluation.scores import Scores, evaluate
from evaluation.tune_job import TuneResult, tune

__all__ = ["Scores", "TuneResult", "evaluate", "tune"]
