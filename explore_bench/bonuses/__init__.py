"""Intrinsic-reward bonuses behind one small contract.

    from explore_bench.bonuses import make_bonus, Transitions
    bonus = make_bonus("rnd", env.observation_space, env.action_space)
    r_int = bonus.compute(batch)   # (T, N) float32 raw rewards
    stats = bonus.update(batch)    # trains the bonus's own models

This package imports only torch, numpy and gymnasium spaces: no agents, envs or Stable-Baselines3.
"""

from explore_bench.bonuses.base import Bonus, BonusInputError, Transitions
from explore_bench.bonuses.normalization import IntrinsicRewardNormalizer, RewardForwardFilter, RunningMeanStd
from explore_bench.bonuses.registry import bonus_class, list_bonuses, make_bonus, register_bonus

__all__ = [
    "Bonus",
    "BonusInputError",
    "IntrinsicRewardNormalizer",
    "RewardForwardFilter",
    "RunningMeanStd",
    "Transitions",
    "bonus_class",
    "list_bonuses",
    "make_bonus",
    "register_bonus",
]
