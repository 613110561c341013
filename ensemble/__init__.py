"""Combining predictions: hard and weighted votes of prediction sets (on runs), and soft
votes of probability maps and models (numba on the CPU, or torch on a device).

- ``hard_vote``, ``weighted_vote`` → ``VoteResult`` (``ensemble.voting``)
- ``vote``: one mask's vote, given as runs (``ensemble.vote``)
"""

from ensemble.vote import vote
from ensemble.voting import VoteResult, hard_vote, weighted_vote

__all__ = ["VoteResult", "hard_vote", "vote", "weighted_vote"]
