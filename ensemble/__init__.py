"""Combining predictions: hard and weighted votes of prediction sets (on runs), and soft
votes of probability maps and models (numba on the CPU, or torch on a device).

- ``hard_vote``, ``weighted_vote`` → ``VoteResult`` (``ensemble.voting``)
- ``soft_vote`` → ``SoftVoteResult``: probability maps and models, numba on the CPU or torch
  on a device (``ensemble.soft_job``; engines in ``ensemble.soft`` and ``ensemble.device``)
- ``vote``: one mask's vote, given as runs (``ensemble.vote``)
"""

from core.lazy import lazy_getattr
from ensemble.vote import vote as vote

# Loaded on first use: a hard vote must not pay for importing the soft vote's engines. A
# function named like its module is imported now: the module, once imported, would shadow it.
_EXPORTS = {
    "SoftVoteResult": "ensemble.soft_job",
    "soft_vote": "ensemble.soft_job",
    "VoteResult": "ensemble.voting",
    "hard_vote": "ensemble.voting",
    "weighted_vote": "ensemble.voting",
}
__all__ = sorted([*_EXPORTS, "vote"])

__getattr__ = lazy_getattr("ensemble", _EXPORTS)
