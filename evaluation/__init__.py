"""Scoring predictions against ground truth, and tuning combinations on validation data.

- ``evaluate`` → ``Scores`` (Dice per image, class and source; table, csv, json) (``evaluation.scores``)
"""

from evaluation.scores import Scores, evaluate

__all__ = ["Scores", "evaluate"]
