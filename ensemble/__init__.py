"""Combining predictions: hard and weighted votes of prediction sets (on runs), and soft
votes of probability maps and models (numba on the CPU, or torch on a device).

- ``hard_vote``, ``weighted_vote`` → ``VoteResult`` (``ensemble.rle_votes``)
- ``soft_vote`` → ``SoftVoteResult``: probability maps and models, numba on the CPU or torch
  on a device (``ensemble.soft_run``; engines in ``ensemble.soft_image`` and ``ensemble.torch_vote``)
- ``vote``: one mask's vote, given as runs (``ensemble.mask_vote``)
- ``exclusive_vote``: one image's vote over exclusive labels, given as runs (``ensemble.exclusive``)
"""

from core.lazy import lazy_exports
from ensemble.mask_vote import vote as vote

# Loaded on first use: a hard vote must not pay for importing the soft vote's engines. A
# function named like its module is imported now: the module, once imported, would shadow it.
_EXPORTS = {
    "exclusive_vote": "ensemble.exclusive",
    "SoftVoteResult": "ensemble.soft_run",
    "soft_vote": "ensemble.soft_run",
    "VoteResult": "ensemble.rle_votes",
    "hard_vote": "ensemble.rle_votes",
    "weighted_vote": "ensemble.rle_votes",
}
__all__ = sorted([*_EXPORTS, "vote"])

__getattr__, __dir__ = lazy_exports("ensemble", _EXPORTS)
