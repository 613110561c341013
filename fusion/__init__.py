"""Fusing prediction sets without voting: per-class selection of a source, and merging
shards or per-class files into one submission.

- ``select`` → ``SelectResult``; ``select_rules`` → ``Selection`` (``fusion.select``)
- ``merge`` → ``MergeResult`` (``fusion.merge``)
- ``read_scores``, ``best_rules``: the best source per class from a scores file (``fusion.best``)
"""

from fusion.best import best_rules, read_scores
from fusion.merge import MergeResult, merge
from fusion.select import Selection, SelectResult, select, select_rules

__all__ = ["MergeResult", "SelectResult", "Selection", "best_rules", "merge", "read_scores", "select", "select_rules"]
