"""The episodic restriction of BeBold / NovelD (Zhang et al. 2020, arXiv 2012.08621; 2021): an intrinsic reward is
paid only for the first visit of an observation within an episode.

A lifelong bonus (RND, RDD, ICM, ...) is computed with the networks of the previous update, so within one rollout
a view the predictor has not learned pays the same bonus at every step. In procedurally generated worlds
(MiniGrid), where every episode brings new views, a policy can then farm the bonus by standing still or moving an
object back and forth. The gate zeroes the bonus of a step whose next observation was already seen in the current
episode. It is an option of the agent (off by default: RND itself has no such gate) and applies to any bonus.
"""

from __future__ import annotations

import numpy as np
import torch

from explore_bench.bonuses import Transitions
from explore_bench.bonuses.counting import KeyCounter, hash_rows


class FirstVisitGate:
    """Episodic visit counts of exact next observations (the count bonus's `KeyCounter`); `mask` marks count 1."""

    def __init__(self, n_envs: int) -> None:
        self.n_envs = n_envs
        self.counter = KeyCounter(scope="episodic")

    def mask(self, batch: Transitions) -> np.ndarray:
        """`(T, N)` float32: 1 where `next_obs[t, i]` is new in env i's episode, else 0. Episode ends (`dones`)
        start a new count after their step (the terminal observation still belongs to the ending episode)."""
        steps, n_envs = np.shape(batch.dones)
        if n_envs != self.n_envs:
            raise ValueError(f"FirstVisitGate: built for {self.n_envs} envs, got a batch of {n_envs}")
        keys = hash_rows(np.asarray(batch.next_obs).reshape(steps * n_envs, -1)).reshape(steps, n_envs)
        return (self.counter.count(keys, batch.dones) == 1).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.counter.get_state()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.counter.set_state(state)
