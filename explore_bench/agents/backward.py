"""Go-Explore phase 2 on MiniGrid: robustify a demonstration into a policy with the backward algorithm.

Salimans & Chen, "Learning Montezuma's Revenge from a Single Demonstration" (arXiv 1812.03381), as Go-Explore uses
it (spec go_explore.md §7). Episodes start from states along the demonstration, at first near its end; once the
agent succeeds often enough from the current starting point, the starting point moves back, until the policy
solves the task from the true start. Sticky actions make the dynamics stochastic, so the policy cannot simply
replay the demonstration.

- `BackwardCurriculum`: the starting point shared by all envs of a vector env (one process: SB3's DummyVecEnv).
  Each episode starts at an index drawn uniformly from `[start, min(start + window, L - 1)]` of the demonstration
  (L actions); after `episodes_per_check` episodes from that window, if the fraction that reached the goal is at
  least `move_threshold`, `start` moves back by `step` (never below 0).
- `DemoStart`: resets a MiniGrid env to the demonstration's layout (its fixed seed) and replays the first k
  demonstration actions exactly (below any sticky-action wrapper, so the replay is the demonstration's), then hands
  over to the agent; reports each episode's outcome to the curriculum.
- `make_backward_env`: the catalogue env (`explore_bench.envs.make_env`), `DemoStart`, then gymnasium's
  `StickyAction` (probability 0.25, as the Atari protocol) on top.

Success is MiniGrid's: the episode terminates with a positive reward. The replayed prefix counts towards MiniGrid's
own step limit and the episode's length and coverage.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

__all__ = ["BackwardCurriculum", "DemoStart", "make_backward_env"]


class BackwardCurriculum:
    """Where episodes start along a demonstration of `length` actions (see the module docstring)."""

    def __init__(self, length: int, move_threshold: float = 0.2, window: int = 10, step: int | None = None,
                 episodes_per_check: int = 32, seed: int = 0) -> None:
        if length < 1:
            raise ValueError(f"backward curriculum: the demonstration needs at least one action, got {length}")
        if not 0.0 < move_threshold <= 1.0:
            raise ValueError(f"backward curriculum: move_threshold must be in (0, 1], got {move_threshold}")
        self.length = int(length)
        self.move_threshold = float(move_threshold)
        self.window = int(window)
        self.step = int(step) if step is not None else max(1, self.length // 20)
        self.episodes_per_check = int(episodes_per_check)
        self.start = self.length - 1
        self.recent: deque[bool] = deque(maxlen=self.episodes_per_check)
        self.rng = np.random.default_rng(seed)
        #: (episodes so far, start) each time the starting point moved
        self.history: list[tuple[int, int]] = [(0, self.start)]
        self.episodes = 0

    def sample(self) -> int:
        """A starting index (number of demonstration actions to replay) for a new episode."""
        return int(self.rng.integers(self.start, min(self.start + self.window, self.length - 1) + 1))

    def report(self, start: int, success: bool) -> None:
        """The outcome of an episode that started at index `start`; moves the starting point back when due."""
        self.episodes += 1
        if start > self.start + self.window:  # started in a window left behind: says nothing about this one
            return
        self.recent.append(bool(success))
        if self.start > 0 and len(self.recent) == self.episodes_per_check and np.mean(self.recent) >= self.move_threshold:
            self.start = max(0, self.start - self.step)
            self.recent.clear()
            self.history.append((self.episodes, self.start))

    @property
    def done(self) -> bool:
        """Episodes now start at the true start (within `window` steps of it)."""
        return self.start == 0


class DemoStart(gym.Wrapper):
    """Start every episode of a MiniGrid env on the demonstration's layout, `k` demonstration actions in (k from the
    curriculum, or `k=0` when it has none: evaluation from the true start)."""

    def __init__(self, env: gym.Env, actions: Sequence[int], layout_seed: int, curriculum: BackwardCurriculum | None = None,
                 noise_seed: int = 0) -> None:
        super().__init__(env)
        self.actions = [int(a) for a in actions]
        self.layout_seed = int(layout_seed)
        self.curriculum = curriculum
        self.start_index = 0
        self.noise = np.random.default_rng(noise_seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=self.layout_seed, options=options)  # one layout: the demonstration's
        self.start_index = self.curriculum.sample() if self.curriculum is not None else 0
        for action in self.actions[: self.start_index]:
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                raise RuntimeError(f"the demonstration ended its episode after fewer than {self.start_index} actions: "
                                   "it does not belong to this env and layout seed")
        # Resetting with the layout seed also reseeds the env's generator, which the sticky-action wrapper above
        # draws from: give it fresh noise, or every episode would repeat the same sticky pattern. (DoorKey and
        # MultiRoom use the generator only to build the layout.)
        self.env.unwrapped.np_random = np.random.default_rng(int(self.noise.integers(2**63)))
        info = {**info, "demo_start": self.start_index}
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if (terminated or truncated) and self.curriculum is not None:
            self.curriculum.report(self.start_index, bool(terminated and reward > 0))
        return obs, reward, terminated, truncated, info


def make_backward_env(env_id: str, actions: Sequence[int], layout_seed: int, curriculum: BackwardCurriculum | None = None,
                      sticky: float = 0.25, noise_seed: int = 0, **kwargs: Any) -> gym.Env:
    """The catalogue env `env_id` with `DemoStart` and sticky actions (probability `sticky`) on top."""
    from explore_bench.envs import make_env

    env = DemoStart(make_env(env_id, **kwargs), actions, layout_seed, curriculum, noise_seed)
    return gym.wrappers.StickyAction(env, repeat_action_probability=sticky) if sticky > 0 else env


def evaluate_from_start(model: Any, env_id: str, actions: Sequence[int], layout_seed: int, episodes: int,
                        sticky: float = 0.25, seed: int = 0) -> dict[str, float]:
    """The policy of an SB3 `model` from the true start of the demonstration's layout, with sticky actions (seeded
    by `seed`), sampling its actions: success rate, mean return and mean coverage over `episodes` episodes."""
    env = make_backward_env(env_id, actions, layout_seed, None, sticky, noise_seed=seed)
    results = []
    try:
        for _ in range(episodes):
            obs, _ = env.reset()
            done = False
            while not done:
                action, _ = model.predict(obs, deterministic=False)
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            results.append(info["episode_metrics"])
    finally:
        env.close()
    return {key: float(np.mean([r[key] for r in results])) for key in ("success", "return", "coverage")}
