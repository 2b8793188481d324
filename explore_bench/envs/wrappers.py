"""Generic env wrappers: per-episode exploration statistics, seeding on first reset, one fixed layout."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np


class ExplorationStats(gym.Wrapper):
    """Per-step agent cell and per-episode exploration metrics for MiniGrid-like envs.

    Reads ``env.unwrapped.agent_pos`` (x, y) and, when the env has one, ``env.unwrapped.agent_dir`` after each
    reset/step, so it works at any position in a wrapper stack over a ``MiniGridEnv`` (or a ``TVGridEnv``, which
    has no direction).

    ``info`` gains:

    - ``"cell"`` (every reset and step): ``np.array([x, y, dir], dtype=np.int64)`` of the agent after the step
      (``[x, y]`` for envs without ``agent_dir``).
    - ``"episode_metrics"`` (on the step where ``terminated or truncated``)::

        {"return": float,    # sum of the env rewards of the episode
         "length": int,      # number of steps
         "success": float,   # 1.0 if terminated with reward > 0 (MiniGrid's goal reward), else 0.0
         "coverage": int,    # distinct (x, y) cells the agent occupied, start cell included
         "cells": frozenset} # those cells as (x, y) tuples (a run's coverage is their union over episodes)

      plus ``"tv_fraction": float`` (the fraction of the episode's steps that pressed a noisy TV) for envs whose
      step ``info`` carries ``"press"`` (the noisy-TV envs of ``explore_bench.envs.tvgrid``).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        base = env.unwrapped
        if not hasattr(base, "agent_pos"):
            raise TypeError(
                f"ExplorationStats needs a MiniGrid-like env exposing unwrapped.agent_pos (and optionally "
                f"unwrapped.agent_dir); got {type(base).__name__}"
            )
        self._base = base
        self._has_dir = hasattr(base, "agent_dir")
        self._visited: set[tuple[int, int]] = set()
        self._return = 0.0
        self._length = 0
        self._presses = 0
        self._reports_press = False

    def _cell(self) -> np.ndarray:
        x, y = self._base.agent_pos
        x = int(x)
        y = int(y)
        self._visited.add((x, y))
        if not self._has_dir:
            return np.array((x, y), dtype=np.int64)
        return np.array((x, y, int(self._base.agent_dir)), dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._visited.clear()
        self._return = 0.0
        self._length = 0
        self._presses = 0
        self._reports_press = False
        info["cell"] = self._cell()
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        if "press" in info:
            self._reports_press = True
            self._presses += bool(info["press"])
        info["cell"] = self._cell()
        if terminated or truncated:
            info["episode_metrics"] = {
                "return": self._return,
                "length": self._length,
                "success": 1.0 if (terminated and float(reward) > 0.0) else 0.0,
                "coverage": len(self._visited),
                "cells": frozenset(self._visited),
            }
            if self._reports_press:
                info["episode_metrics"]["tv_fraction"] = self._presses / self._length
        return obs, reward, terminated, truncated, info

    @property
    def episode_coverage(self) -> int:
        """Distinct (x, y) cells visited so far in the current episode."""
        return len(self._visited)


class SeedOnFirstReset(gym.Wrapper):
    """Use ``seed`` for the first ``reset()`` that is not given a seed explicitly; later resets continue the
    env's seeded RNG (the standard gymnasium seeding pattern). Also seeds the action space."""

    def __init__(self, env: gym.Env, seed: int):
        super().__init__(env)
        self._pending_seed: int | None = int(seed)
        self.env.action_space.seed(int(seed))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self._pending_seed is not None:
            if seed is None:
                seed = self._pending_seed
            self._pending_seed = None
        return self.env.reset(seed=seed, options=options)

    def step(self, action) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        return self.env.step(action)


class FixedLayout(gym.Wrapper):
    """Reset with ``layout_seed`` every time: a procedurally generated env (MiniGrid) becomes one fixed task, the same
    layout, start and goal in every episode, as the policy-search explorers and Go-Explore see it. The seed a caller
    passes to ``reset`` is ignored (a vector env's ``seed + rank`` included), so every sub-env plays that layout."""

    def __init__(self, env: gym.Env, layout_seed: int):
        super().__init__(env)
        self.layout_seed = int(layout_seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return self.env.reset(seed=self.layout_seed, options=options)
