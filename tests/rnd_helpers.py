"""Shared fixtures of the RND and RDD tests: a MiniGrid-like space and batches built around `next_obs`."""

import gymnasium as gym
import numpy as np

from explore_bench.bonuses import Transitions

GRID = gym.spaces.Box(0, 10, (7, 7, 3), dtype=np.float32)  # MiniGrid-like symbolic view
ACTIONS = gym.spaces.Discrete(7)


def transitions(next_obs, obs=None) -> Transitions:
    """A `(T, N, ...)` batch built around `next_obs` (the only part RND/RDD look at)."""
    next_obs = np.asarray(next_obs)
    t, n = next_obs.shape[:2]
    obs = np.zeros_like(next_obs) if obs is None else np.asarray(obs)
    return Transitions(obs, np.zeros((t, n), np.int64), next_obs, np.zeros((t, n), bool))


def grid_states(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 11, size=(n, *GRID.shape)).astype(np.float32)
