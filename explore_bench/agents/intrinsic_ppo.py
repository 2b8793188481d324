"""PPO with an intrinsic reward and two value heads (the RND recipe, shared/specs/rdd.md §2).

- The policy has two value outputs: extrinsic (episodic, `gamma`) and intrinsic (non-episodic, `gamma_int`).
- After each rollout the bonus is computed in one batch on the real next observations (the terminal
  observation at episode ends, never the reset one), divided by the running std of the discounted
  intrinsic return, and the bonus is trained on the rollout.
- GAE runs separately per head; the policy uses `ext_coef * A_ext + int_coef * A_int`.
- Before the first rollout the bonus's observation statistics are warmed up with random-action steps,
  which count in the frame budget.

SB3's `train` is reused unchanged: the buffer stores `(T, N, 2)` values and returns, so its flattened
value loss `mse(returns, values)` is `0.5 * (MSE_ext + MSE_int)`, exactly the RND value loss.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from explore_bench.agents.first_visit import FirstVisitGate
from explore_bench.agents.transitions import StepRecorder
from explore_bench.bonuses import Bonus, IntrinsicRewardNormalizer, make_bonus


class TwoHeadValueMixin:
    """Replaces the policy's value head by a 2-output head: column 0 extrinsic, column 1 intrinsic."""

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 2)
        if self.ortho_init:
            self.value_net.apply(lambda module: self.init_weights(module, gain=1))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


class TwoHeadMlpPolicy(TwoHeadValueMixin, ActorCriticPolicy):
    pass


class TwoHeadCnnPolicy(TwoHeadValueMixin, ActorCriticCnnPolicy):
    pass


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    last_values: np.ndarray,
    next_non_terminal: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """Generalised advantage estimates of a `(T, N)` rollout.

    `next_non_terminal[t]` is 0 where the episode ended after step t (no bootstrapping across it);
    pass ones for a non-episodic stream.
    """
    advantages = np.zeros_like(rewards)
    last = np.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(rewards.shape[0])):  # a backward recursion: sequential by definition
        delta = rewards[t] + gamma * next_values * next_non_terminal[t] - values[t]
        last = delta + gamma * gae_lambda * next_non_terminal[t] * last
        advantages[t] = last
        next_values = values[t]
    return advantages


class IntrinsicRolloutBuffer(RolloutBuffer):
    """Rollout buffer with an intrinsic reward stream and `(T, N, 2)` values/returns (ext, int)."""

    def __init__(self, *args, gamma_int: float = 0.99, ext_coef: float = 2.0, int_coef: float = 1.0, **kwargs):
        self.gamma_int = gamma_int
        self.ext_coef = ext_coef
        self.int_coef = int_coef
        super().__init__(*args, **kwargs)

    def reset(self) -> None:
        super().reset()
        self.values = np.zeros((self.buffer_size, self.n_envs, 2), dtype=np.float32)
        self.returns = np.zeros((self.buffer_size, self.n_envs, 2), dtype=np.float32)
        self.intrinsic_rewards = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)

    def add(self, obs, action, reward, episode_start, value: th.Tensor, log_prob: th.Tensor) -> None:
        # SB3's `add` flattens values into an (N,) slot; ours keep both heads.
        self.observations[self.pos] = np.array(obs).reshape((self.n_envs, *self.obs_shape))
        self.actions[self.pos] = np.array(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.array(reward)
        self.episode_starts[self.pos] = np.array(episode_start)
        self.values[self.pos] = value.detach().cpu().numpy().reshape(self.n_envs, 2)
        self.log_probs[self.pos] = log_prob.detach().cpu().numpy().reshape(self.n_envs)
        self.pos += 1
        self.full = self.pos == self.buffer_size

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        last = last_values.detach().cpu().numpy().reshape(self.n_envs, 2)
        # Episode ends: step t ended its episode iff step t+1 starts a new one.
        not_done = 1.0 - np.concatenate([self.episode_starts[1:], dones[None].astype(np.float32)])
        adv_ext = gae(self.rewards, self.values[..., 0], last[:, 0], not_done, self.gamma, self.gae_lambda)
        adv_int = gae(self.intrinsic_rewards, self.values[..., 1], last[:, 1], np.ones_like(not_done), self.gamma_int, self.gae_lambda)
        self.advantages = (self.ext_coef * adv_ext + self.int_coef * adv_int).astype(np.float32)
        self.returns = np.stack([adv_ext, adv_int], axis=-1).astype(np.float32) + self.values


class IntrinsicPPO(PPO):
    """PPO whose advantages mix an extrinsic and a normalised intrinsic stream, each with its own value head.

    Args (beyond SB3's PPO):
        bonus: registered bonus name (see `explore_bench.bonuses.list_bonuses()`).
        bonus_kwargs: overrides passed to `make_bonus`.
        gamma_int: discount of the non-episodic intrinsic stream.
        ext_coef, int_coef: advantage mixing coefficients (RND: 2 and 1).
        warmup_rollouts: random-action rollouts (of `n_steps` steps per env) that warm up the bonus's
            observation statistics before training; they count in the frame budget.
        bonus_info_keys: info entries passed to the bonus in `Transitions.infos` when the env provides them;
            `infos["log_prob"]` (T, N) always holds the rollout policy's log-probability of each action.
        first_visit_only: pay the bonus only for the first visit of a next observation within an episode
            (BeBold / NovelD's episodic restriction, `explore_bench.agents.first_visit`); off in RND.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": TwoHeadMlpPolicy, "CnnPolicy": TwoHeadCnnPolicy}
    rollout_buffer: IntrinsicRolloutBuffer

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env,
        bonus: str = "rnd",
        bonus_kwargs: dict[str, Any] | None = None,
        gamma_int: float = 0.99,
        ext_coef: float = 2.0,
        int_coef: float = 1.0,
        warmup_rollouts: int = 10,
        bonus_info_keys: tuple[str, ...] = ("cell",),
        first_visit_only: bool = False,
        normalize_advantage: bool = False,
        _init_setup_model: bool = True,
        **kwargs,
    ) -> None:
        self.bonus_name = bonus
        self.bonus_kwargs = dict(bonus_kwargs or {})
        self.gamma_int = gamma_int
        self.ext_coef = ext_coef
        self.int_coef = int_coef
        self.warmup_rollouts = warmup_rollouts
        self.bonus_info_keys = tuple(bonus_info_keys)
        self.first_visit_only = first_visit_only
        self.warmed_up = False
        self.bonus_state: dict[str, Any] | None = None
        self.intrinsic_stats: dict[str, float] = {}
        kwargs["rollout_buffer_class"] = IntrinsicRolloutBuffer
        kwargs["rollout_buffer_kwargs"] = {"gamma_int": gamma_int, "ext_coef": ext_coef, "int_coef": int_coef}
        super().__init__(policy, env, normalize_advantage=normalize_advantage, _init_setup_model=_init_setup_model, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        seed = None if self.seed is None else self.seed + 1
        self.bonus: Bonus = make_bonus(
            self.bonus_name, self.observation_space, self.action_space, device=self.device, seed=seed, **self.bonus_kwargs
        )
        self.intrinsic_normalizer = IntrinsicRewardNormalizer(self.gamma_int)
        self.recorder = StepRecorder(self.n_steps, self.n_envs, self.observation_space, self.bonus_info_keys)
        self.first_visit = FirstVisitGate(self.n_envs) if self.first_visit_only else None

    # ------------------------------------------------------------ rollouts
    def _warm_up_bonus(self, env: VecEnv) -> None:
        """Random-action steps that fit the bonus's observation statistics (RND §2.2); counted as frames."""
        for _ in range(self.warmup_rollouts):
            self.recorder.reset()
            for _ in range(self.n_steps):
                actions = np.array([self.action_space.sample() for _ in range(self.n_envs)])
                new_obs, _, dones, infos = env.step(actions)
                self.num_timesteps += self.n_envs
                self.recorder.add(self._last_obs, actions, new_obs, dones, infos)
                self._last_obs = new_obs
                self._last_episode_starts = dones
            self.bonus.warm_up(self.recorder.transitions())
            if self.first_visit is not None:  # episodes under way when training starts keep what they saw
                self.first_visit.mask(self.recorder.transitions())
        self.warmed_up = True

    def collect_rollouts(self, env: VecEnv, callback: BaseCallback, rollout_buffer: RolloutBuffer, n_rollout_steps: int) -> bool:
        if not self.warmed_up:
            self._warm_up_bonus(env)
        self.policy.set_training_mode(False)
        rollout_buffer.reset()
        self.recorder.reset()
        callback.on_rollout_start()
        for _ in range(n_rollout_steps):
            with th.no_grad():
                actions, values, log_probs = self.policy(obs_as_tensor(self._last_obs, self.device))
            actions = actions.cpu().numpy()
            clipped = np.clip(actions, self.action_space.low, self.action_space.high) if isinstance(self.action_space, spaces.Box) else actions
            new_obs, rewards, dones, infos = env.step(clipped)
            self.num_timesteps += env.num_envs
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            self.recorder.add(self._last_obs, clipped, new_obs, dones, infos)
            # Bootstrap the extrinsic value at time-limit truncations (SB3 GH#633).
            for idx in np.flatnonzero(dones):
                if infos[idx].get("TimeLimit.truncated", False):
                    terminal = self.policy.obs_to_tensor(infos[idx]["terminal_observation"])[0]
                    with th.no_grad():
                        rewards[idx] += self.gamma * self.policy.predict_values(terminal)[0, 0].item()
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            rollout_buffer.add(self._last_obs, actions, rewards, self._last_episode_starts, values, log_probs)
            self._last_obs = new_obs
            self._last_episode_starts = dones

        # With the behaviour policy's log-probabilities, for bonuses that weigh by pi_old (empowerment's sources)
        recorded = self.recorder.transitions()
        batch = replace(recorded, infos={**recorded.infos, "log_prob": rollout_buffer.log_probs})
        raw = self.bonus.compute(batch)
        first = None if self.first_visit is None else self.first_visit.mask(batch)
        paid = raw if first is None else raw * first
        rollout_buffer.intrinsic_rewards = self.intrinsic_normalizer.normalize(paid)
        bonus_stats = self.bonus.update(batch)
        self.intrinsic_stats = {
            "intrinsic_mean": float(raw.mean()),
            "intrinsic_std": float(raw.std()),
            "intrinsic_return_std": self.intrinsic_normalizer.std,
            **({} if first is None else {"first_visit_fraction": float(first.mean())}),
            **{f"bonus_{k}": float(v) for k, v in bonus_stats.items()},
        }
        for key, value in self.intrinsic_stats.items():
            self.logger.record(f"bonus/{key}", value)

        with th.no_grad():
            last_values = self.policy.predict_values(obs_as_tensor(new_obs, self.device))
        rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)
        callback.update_locals(locals())
        callback.on_rollout_end()
        return True

    # ------------------------------------------------------------ save / load
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "bonus", "intrinsic_normalizer", "recorder", "first_visit"]

    def save(self, path, exclude=None, include=None) -> None:
        # The bonus and normaliser states ride in the pickled data (they hold numpy arrays and generator
        # states, which SB3's weights-only tensor files refuse).
        self.bonus_state = {"bonus": self.bonus.state_dict(), "normalizer": self.intrinsic_normalizer.state_dict()}
        if self.first_visit is not None:
            self.bonus_state["first_visit"] = self.first_visit.state_dict()
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            self.bonus_state = None

    @classmethod
    def load(cls, path, env=None, device="auto", custom_objects=None, print_system_info=False, force_reset=True, **kwargs):
        model = super().load(path, env=env, device=device, custom_objects=custom_objects, print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        if model.bonus_state is not None:
            model.bonus.load_state_dict(model.bonus_state["bonus"])
            model.intrinsic_normalizer.load_state_dict(model.bonus_state["normalizer"])
            if model.first_visit is not None:
                model.first_visit.load_state_dict(model.bonus_state["first_visit"])
            model.bonus_state = None
        return model
