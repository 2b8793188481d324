"""Bandit meta-RL environments (spec bandits.md §4): task families, ``MetaBanditEnv`` (one episode = one task),
``TrialEnv`` (a multi-episode bandit trial as one episode) and ``GridTrialEnv`` (the gridworld meta-task), plus the
catalogue entries of the ``bandit`` family.

Catalogue ids (``explore_bench.envs.make_env(id, seed=s, **overrides)`` or ``gym.make("explore_bench/<id>")``;
keyword overrides replace the defaults below, any constructor argument):

==========================  ==================================================================================
``Bandit-v0``               ``MetaBanditEnv`` bernoulli_uniform, K=5, H=100
``BanditHard-v0``           ``MetaBanditEnv`` bernoulli_gap, K=5, delta=0.2, H=100 (Explore-ICL hard instance)
``BanditEasy-v0``           ``MetaBanditEnv`` bernoulli_gap, K=4, delta=0.5, H=100 (Explore-ICL easy instance)
``BanditGaussian-v0``       ``MetaBanditEnv`` gaussian, K=5, H=50
``BanditTrial-v0``          ``TrialEnv`` bernoulli_uniform, K=5, 1 pull per inner episode, 100 inner episodes, fixed
``BanditTrialResampled-v0`` the same with a fresh task every inner episode (no recurring structure)
``GridTrial-v0``            ``GridTrialEnv`` 5×5, corner goals, E=4 inner episodes of at most L=12 steps
==========================  ==================================================================================
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from explore_bench.envs.bandits.env import OBS_MODES, REWARD_MODES, MetaBanditEnv
from explore_bench.envs.bandits.families import FAMILIES, Task, TaskFamily, make_family
from explore_bench.envs.bandits.grid_trial import BayesSweepAgent, GridTrialEnv, OracleAgent, RandomWalkAgent
from explore_bench.envs.bandits.trial import TrialEnv

__all__ = [
    "BANDIT_ENVS",
    "FAMILIES",
    "FAMILY",
    "OBS_MODES",
    "REWARD_MODES",
    "BayesSweepAgent",
    "GridTrialEnv",
    "MetaBanditEnv",
    "OracleAgent",
    "RandomWalkAgent",
    "Task",
    "TaskFamily",
    "TrialEnv",
    "make_bandit",
    "make_family",
]

#: catalogue family of every id below
FAMILY = "bandit"

#: catalogue id -> (env class, default constructor kwargs)
BANDIT_ENVS: dict[str, tuple[type[gym.Env], dict[str, Any]]] = {
    "Bandit-v0": (MetaBanditEnv, {"family": "bernoulli_uniform", "n_arms": 5, "horizon": 100}),
    "BanditHard-v0": (
        MetaBanditEnv,
        {"family": "bernoulli_gap", "n_arms": 5, "horizon": 100, "family_kwargs": {"delta": 0.2}},
    ),
    "BanditEasy-v0": (
        MetaBanditEnv,
        {"family": "bernoulli_gap", "n_arms": 4, "horizon": 100, "family_kwargs": {"delta": 0.5}},
    ),
    "BanditGaussian-v0": (MetaBanditEnv, {"family": "gaussian", "n_arms": 5, "horizon": 50}),
    "BanditTrial-v0": (
        TrialEnv,
        {
            "base_family": "bernoulli_uniform",
            "n_arms": 5,
            "pulls_per_episode": 1,
            "episodes_per_trial": 100,
            "structure": "fixed",
        },
    ),
    "BanditTrialResampled-v0": (
        TrialEnv,
        {
            "base_family": "bernoulli_uniform",
            "n_arms": 5,
            "pulls_per_episode": 1,
            "episodes_per_trial": 100,
            "structure": "resampled",
        },
    ),
    "GridTrial-v0": (GridTrialEnv, {"size": 5, "episodes_per_trial": 4, "max_steps": 12}),
}


def make_bandit(env_id: str, **kwargs: Any) -> gym.Env:
    """Catalogue env ``env_id`` of the bandit family; ``kwargs`` replace the defaults of ``BANDIT_ENVS`` (a given
    ``family_kwargs`` replaces the default dict as a whole)."""
    entry = BANDIT_ENVS.get(env_id)
    if entry is None:
        raise KeyError(f"unknown bandit env id {env_id!r}; valid ids: {', '.join(BANDIT_ENVS)}")
    cls, defaults = entry
    return cls(**(defaults | kwargs))
