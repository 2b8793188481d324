"""The simple path for any SB3 algorithm: a VecEnv wrapper that adds the scaled, normalised bonus to the reward."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from explore_bench.agents.first_visit import FirstVisitGate
from explore_bench.agents.transitions import StepRecorder
from explore_bench.bonuses import Bonus, IntrinsicRewardNormalizer


class BonusRewardWrapper(VecEnvWrapper):
    """`reward = r_ext + coef * r_int / std(discounted intrinsic return)`, one value head downstream.

    The bonus scores each step on the true next observation (the terminal one at episode ends) and is
    trained every `update_every` steps on the steps recorded since its last update. The first
    `warmup_steps` steps per env only warm up the bonus's observation statistics (their intrinsic reward
    is 0); they are ordinary env steps of the agent, so they count in its frame budget.
    With `first_visit_only` the bonus is paid only for the first visit of a next observation within an episode
    (`explore_bench.agents.first_visit`). Each info gets `intrinsic_reward` (raw) for logging.
    """

    def __init__(
        self,
        venv: VecEnv,
        bonus: Bonus,
        coef: float = 1.0,
        gamma_int: float = 0.99,
        update_every: int = 128,
        warmup_steps: int = 128,
        info_keys: tuple[str, ...] = ("cell",),
        first_visit_only: bool = False,
    ) -> None:
        super().__init__(venv)
        self.bonus = bonus
        self.coef = coef
        self.normalizer = IntrinsicRewardNormalizer(gamma_int)
        self.recorder = StepRecorder(max(update_every, warmup_steps), venv.num_envs, venv.observation_space, info_keys)
        self.update_every = update_every
        self.warmup_steps = warmup_steps
        self.warmed_up = warmup_steps == 0
        self.first_visit = FirstVisitGate(venv.num_envs) if first_visit_only else None
        self.intrinsic_stats: dict[str, float] = {}
        self._last_obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None
        self._raw_since_update: list[np.ndarray] = []

    def reset(self) -> np.ndarray:
        self._last_obs = self.venv.reset()
        return self._last_obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self.recorder.add(self._last_obs, self._actions, obs, dones, infos)
        self._last_obs = obs
        if not self.warmed_up:
            if self.first_visit is not None:  # warm-up views count as seen in their episodes
                self.first_visit.mask(self.recorder.transitions()[-1:])
            if self.recorder.pos == self.warmup_steps:
                self.bonus.warm_up(self.recorder.transitions())
                self.recorder.reset()
                self.warmed_up = True
            return obs, rewards, dones, infos
        step = self.recorder.transitions()[-1:]
        raw = self.bonus.compute(step)
        paid = raw if self.first_visit is None else raw * self.first_visit.mask(step)
        rewards = rewards + self.coef * self.normalizer.normalize(paid)[0]
        self._raw_since_update.append(raw[0])
        for info, value in zip(infos, raw[0]):
            info["intrinsic_reward"] = float(value)
        if self.recorder.pos == self.update_every:
            batch = self.recorder.transitions()
            stats = self.bonus.update(batch)
            window = np.concatenate(self._raw_since_update)
            self._raw_since_update.clear()
            self.intrinsic_stats = {
                "intrinsic_mean": float(window.mean()),
                "intrinsic_std": float(window.std()),
                "intrinsic_return_std": self.normalizer.std,
                **{f"bonus_{k}": float(v) for k, v in stats.items()},
            }
            self.recorder.reset()
        return obs, rewards.astype(np.float32), dones, infos

    def state_dict(self) -> dict:
        state = {"bonus": self.bonus.state_dict(), "normalizer": self.normalizer.state_dict(), "warmed_up": self.warmed_up}
        if self.first_visit is not None:
            state["first_visit"] = self.first_visit.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.bonus.load_state_dict(state["bonus"])
        self.normalizer.load_state_dict(state["normalizer"])
        self.warmed_up = state["warmed_up"]
        if self.first_visit is not None:
            self.first_visit.load_state_dict(state["first_visit"])
