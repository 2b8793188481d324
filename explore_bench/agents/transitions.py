"""Recording VecEnv steps as time-major `Transitions` for a bonus."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from explore_bench.bonuses import Transitions


class StepRecorder:
    """Preallocated `(T, N, ...)` arrays filled one VecEnv step at a time.

    `add` stores the true next observation: SB3 VecEnvs auto-reset, so at an episode end the returned
    observation is the reset one and the real last observation is `infos[i]["terminal_observation"]`.
    Info entries named in `info_keys` (such as MiniGrid's agent `cell`) are kept when the env provides them.
    """

    def __init__(self, capacity: int, n_envs: int, observation_space: spaces.Space, info_keys: Sequence[str] = ()) -> None:
        self.capacity = capacity
        self.n_envs = n_envs
        self.observation_space = observation_space
        self.info_keys = tuple(info_keys)
        shape = (capacity, n_envs, *observation_space.shape)
        self.obs = np.zeros(shape, dtype=observation_space.dtype)
        self.next_obs = np.zeros(shape, dtype=observation_space.dtype)
        self.dones = np.zeros((capacity, n_envs), dtype=bool)
        self.actions: np.ndarray | None = None
        self.infos: dict[str, np.ndarray] = {}
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0

    def add(self, obs: np.ndarray, actions: np.ndarray, new_obs: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        if self.pos == self.capacity:
            raise RuntimeError(f"StepRecorder is full ({self.capacity} steps); call reset() first")
        t = self.pos
        actions = np.asarray(actions)
        if self.actions is None:
            self.actions = np.zeros((self.capacity, *actions.shape), dtype=actions.dtype)
        self.obs[t] = obs
        self.actions[t] = actions
        self.next_obs[t] = new_obs
        for idx in np.flatnonzero(dones):
            self.next_obs[t, idx] = infos[idx]["terminal_observation"]
        self.dones[t] = dones
        for key in self.info_keys:
            if key in infos[0]:
                value = np.stack([np.asarray(info[key]) for info in infos])
                if key not in self.infos:
                    self.infos[key] = np.zeros((self.capacity, *value.shape), dtype=value.dtype)
                self.infos[key][t] = value
        self.pos += 1

    def transitions(self) -> Transitions:
        """The steps recorded since the last `reset`, as a `Transitions` (views, not copies)."""
        end = self.pos
        assert self.actions is not None, "no steps recorded"
        return Transitions(
            self.obs[:end], self.actions[:end], self.next_obs[:end], self.dones[:end], {k: v[:end] for k, v in self.infos.items()}
        )
