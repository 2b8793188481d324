"""``TrialEnv``: a multi-episode bandit trial as ONE gymnasium episode (spec bandits.md §4.5, Exploit-All setting).

A trial is ``episodes_per_trial`` inner episodes of ``pulls_per_episode`` pulls each. Recurrent SB3 policies reset
their memory on ``terminated``/``truncated`` (§11), so inner episode boundaries are never signalled that way: the
observation carries an ``episode_boundary`` flag and ``info`` tells the learner where returns must be cut.

It is a ``MetaBanditEnv`` of horizon P·E (P pulls per inner episode, E inner episodes) whose observation gets one
more entry, ``episode_boundary`` (1.0 on the first pull of each inner episode): with the default ``obs_mode="rl2"``
the observation is one-hot previous action (K), previous reward, t/(P·E), first-step flag, episode_boundary (K+4).
The previous action and reward carry over inner episode boundaries (the RL² convention).

``structure``: ``"fixed"`` keeps one task for the whole trial; ``"resampled"`` draws a fresh task at the start of every
inner episode (no recurring structure).

``objective`` (``"greedy"`` or ``"trial"``) does not change the env. It is passed to the learner through
``info["objective"]`` to choose the credit horizon: ``"greedy"`` cuts returns at inner episode boundaries
(cross-episode discount 0), ``"trial"`` lets them run over the whole trial.

``info`` per step: everything ``MetaBanditEnv`` reports (regrets and ``episode_metrics`` with the same keys, at the
end of the trial, w.r.t. the task of each pull) plus ``"objective"``, ``"episode_index"`` (the inner episode of this
pull) and ``"returns_mask"`` (bool: False when the next pull starts a new inner episode, i.e. where a ``"greedy"``
learner cuts the return; also False on the last pull of the trial).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from explore_bench.envs.bandits.env import MetaBanditEnv
from explore_bench.envs.bandits.families import TaskFamily, check_choice, check_int

STRUCTURES = ("fixed", "resampled")
OBJECTIVES = ("greedy", "trial")


class TrialEnv(MetaBanditEnv):
    """A bandit trial of ``episodes_per_trial`` inner episodes of ``pulls_per_episode`` pulls (module docstring).

    Args:
        base_family: family name or ``TaskFamily`` (not ``resampled_each_pull``: use ``structure="resampled"``).
        n_arms: K.
        pulls_per_episode: P.
        episodes_per_trial: E.
        structure: ``"fixed"`` (one task per trial) or ``"resampled"`` (a fresh task every inner episode).
        objective: ``"greedy"`` or ``"trial"``, reported in ``info["objective"]``.
        **bandit_kwargs: the other ``MetaBanditEnv`` arguments (``family_kwargs``, ``obs_mode``, ``reward_mode``,
            ``reward_tape``, ``fixed_task``, ``render_mode``); the horizon is P·E.
    """

    def __init__(
        self,
        base_family: str | TaskFamily = "bernoulli_uniform",
        n_arms: int = 5,
        pulls_per_episode: int = 1,
        episodes_per_trial: int = 100,
        structure: Literal["fixed", "resampled"] = "fixed",
        objective: Literal["greedy", "trial"] = "greedy",
        **bandit_kwargs: Any,
    ):
        self.pulls_per_episode = check_int(pulls_per_episode, "TrialEnv: pulls_per_episode", 1)
        self.episodes_per_trial = check_int(episodes_per_trial, "TrialEnv: episodes_per_trial", 1)
        self.structure = check_choice(STRUCTURES, structure, "TrialEnv: structure")
        self.objective = check_choice(OBJECTIVES, objective, "TrialEnv: objective")
        super().__init__(base_family, n_arms, horizon=self.pulls_per_episode * self.episodes_per_trial, **bandit_kwargs)
        if self._resamples:
            raise ValueError("TrialEnv: a resampled_each_pull base family; use structure='resampled' instead")
        if self.structure == "resampled" and self.fixed_task is not None:
            raise ValueError("TrialEnv: fixed_task contradicts structure='resampled'")

    def _obs_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low, high = super()._obs_bounds()
        return np.append(low, 0.0), np.append(high, 1.0)

    def _observe(self) -> np.ndarray:
        boundary = self._t < self.horizon and self._t % self.pulls_per_episode == 0
        return np.append(super()._observe(), np.float32(boundary))

    def _redraw_due(self) -> bool:
        return self.structure == "resampled" and 0 < self._t and self._t % self.pulls_per_episode == 0

    @property
    def one_task_per_episode(self) -> bool:
        return self.structure == "fixed"

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        t = self._t  # pulls done, this one included
        info["objective"] = self.objective
        info["episode_index"] = (t - 1) // self.pulls_per_episode
        info["returns_mask"] = t % self.pulls_per_episode != 0
        return obs, reward, terminated, truncated, info
