"""Combining predictions: hard and weighted votes of prediction sets (on runs), and soft
votes of probability maps and models (numba on the CPU, or torch on a device).

- ``hard_vote``, ``weighted_vote`` → ``VoteResult`` (``ensemble.voting``)
- ``soft_vote`` → ``SoftVoteResult``: probability maps and models, numba on the CPU or torch
  on a device (``ensemble.soft_job``; engines in ``ensemble.soft`` and ``ensemble.device``)
- ``vote``: one mask's vote, given as runs (``ensemble.vote``)
"""

from ensemble.soft_job import SoftVoteResult, soft_vote
from ensemble.vote import vote
from ensemble.voting import VoteResult, hard_vote, weighted_vote

__all__ = ["SoftVoteResult", "VoteResult", "hard_vote", "soft_vote", "vote", "weighted_vote"]
