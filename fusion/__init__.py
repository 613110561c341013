"""Fusing prediction sets without voting: per-class selection of a source, and merging
shards or per-class files into one submission.

- ``select`` → ``SelectResult``; ``select_rules`` → ``Selection`` (``fusion.select_classes``)
- ``merge`` → ``MergeResult`` (``fusion.merge_parts``)
- ``read_scores``, ``best_rules``: the best source per class from a scores file (``fusion.best_source``)
"""

from fusion.best_source import best_rules, read_scores
from fusion.merge_parts import MergeResult, merge
from fusion.select_classes import Selection, SelectResult, select, select_rules

__all__ = ["MergeResult", "SelectResult", "Selection", "best_rules", "merge", "read_scores", "select", "select_rules"]
