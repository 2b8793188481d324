"""The episodic restriction of BeBold / NovelD (Zhang et al. 2020, arXiv 2012.08621; 2021): an intrinsic reward is
paid only for the first visit of an observation within an episode.

A lifelong bonus (RND, RDD, ICM, ...) is computed with the networks of the previous update, so within one rollout
a view the predictor has not learned pays the same bonus at every step. In procedurally generated worlds
(MiniGrid), where every episode brings new views, a policy can then farm the bonus by standing still or moving an
object back and forth. The gate zeroes the bonus of a step whose next observation was already seen in the current
episode. It is an option of the agent (off by default: RND itself has no such gate) and applies to any bonus.
"""

from __future__ import annotations

import hashlib

import numpy as np

from explore_bench.bonuses import Transitions


class FirstVisitGate:
    """Per-env sets of the observations seen in the current episode; `mask` marks first visits with 1."""

    def __init__(self, n_envs: int) -> None:
        self.seen: list[set[bytes]] = [set() for _ in range(n_envs)]

    def mask(self, batch: Transitions) -> np.ndarray:
        """`(T, N)` float32: 1 where `next_obs[t, i]` is new in env i's episode, else 0. Episode ends (`dones`)
        clear the env's set after their step (the terminal observation still belongs to the ending episode)."""
        next_obs = np.ascontiguousarray(batch.next_obs)
        steps, n_envs = batch.dones.shape
        if n_envs != len(self.seen):
            raise ValueError(f"FirstVisitGate: built for {len(self.seen)} envs, got a batch of {n_envs}")
        first = np.zeros((steps, n_envs), dtype=np.float32)
        for t in range(steps):  # sequential: a visit is first only relative to the earlier steps of its episode
            for i in range(n_envs):
                key = hashlib.blake2b(next_obs[t, i].tobytes(), digest_size=16).digest()
                if key not in self.seen[i]:
                    self.seen[i].add(key)
                    first[t, i] = 1.0
                if batch.dones[t, i]:
                    self.seen[i].clear()
        return first

    def state_dict(self) -> dict:
        return {"seen": [sorted(s) for s in self.seen]}

    def load_state_dict(self, state: dict) -> None:
        self.seen = [set(s) for s in state["seen"]]
