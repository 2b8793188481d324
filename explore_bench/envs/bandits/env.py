"""``MetaBanditEnv``: one gymnasium episode = one bandit task of H pulls (spec bandits.md §4.1, §4.3, §8).

``reset`` draws a new task from the family with the env's ``np_random`` (gymnasium seeding); the agent never sees
it. Observation modes (float32):

==============  ========  ====================================================================================
``obs_mode``    shape     content, in this order
==============  ========  ====================================================================================
``rl2``         (K+3,)    one-hot previous action (zeros at t=0), previous raw reward (0 at t=0), t/H, first-step
                          flag (1 only at t=0)
``rl2_counts``  (3K+2,)   one-hot previous action, previous raw reward, t/H, N_t(k)/H (K), empirical means (K; 0
                          for unpulled arms): sufficient statistics for memoryless ablations
``none``        (1,)      constant 0 (no-information ablation)
==============  ========  ====================================================================================

The observed reward is always the raw sampled reward, whatever ``reward_mode`` is: the shaped rewards use the true
means (privileged) and must not leak into the observation.

Reward modes (what ``step`` returns as the reward; ``info["raw_reward"]`` is always the sampled reward):

- ``raw``: the sampled reward.
- ``strategic``: (mu_a - min_k mu_k) / (max_k mu_k - min_k mu_k) in [0, 1] (1.0 when all means are equal).
- ``algorithmic``: 1.0 if the action equals the one UCB1 (c=1) would take given the agent's own history, else 0.0.
  UCB1 as in §6: arms never pulled first, lowest index first (the init round: on a history that followed it,
  round t < K pulls arm t); then argmax mu_hat_k + c·s·sqrt(2 ln(t+1) / N_k) with t the 0-based round, s = 1 for
  Bernoulli families and the family's sigma for Gaussian ones (``ucb_gauss``; the same as UCB1 at sigma = 1); ties
  broken uniformly with the teacher's own generator, drawn from ``np_random`` at every reset.

Reward tape (§4.3, ``reward_tape=True``): at reset the env pre-draws the noise of the j-th pull of every arm k
(uniforms for Bernoulli rewards r = 1[u < mu], standard normals for Gaussian rewards r = mu + sigma z). Two policies
with the same seed and task see the same reward on the j-th pull of arm k, whatever order they pull in. Without the
tape the noise is drawn from ``np_random`` at each pull. The marginal reward distribution is the same either way.

``info``: at reset ``{"task": Task}``; at every step ``t`` (pulls done), ``action``, ``raw_reward``,
``expected_reward`` (mu_a), ``inst_regret`` (mu* - mu_a), ``cum_regret`` (pseudo-regret so far), ``best_arm``,
``is_best``; on the last step also ``episode_metrics``::

    {"return": float,         # sum of the raw rewards
     "length": int,           # H
     "success": None,         # no notion of success in a bandit
     "coverage": int,         # distinct arms pulled
     "regret": float,         # cumulative pseudo-regret sum_t (mu* - mu_{a_t})
     "regret_random": float,  # expected pseudo-regret of the uniform random policy: sum_t (mu* - mean_k mu_k)
     "best_arm_frac": float}  # fraction of pulls of the best arm

With a family that resamples the task before every pull (``resampled_each_pull``), every per-pull quantity (means,
best arm, regrets) refers to the task faced at that pull.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from explore_bench.envs.bandits.families import Task, TaskFamily, check_choice, check_int, make_family

ObsMode = Literal["rl2", "rl2_counts", "none"]
RewardMode = Literal["raw", "strategic", "algorithmic"]
OBS_MODES = ("rl2", "rl2_counts", "none")
REWARD_MODES = ("raw", "strategic", "algorithmic")
#: exploration constant of the UCB1 teacher of ``reward_mode="algorithmic"``
UCB_C = 1.0


class MetaBanditEnv(gym.Env[np.ndarray, np.int64]):
    """Meta-bandit env: each episode is a fresh task of ``horizon`` pulls drawn from ``family`` (module docstring).

    Args:
        family: a family name (``explore_bench.envs.bandits.FAMILIES``) or a ``TaskFamily`` instance.
        n_arms: K (must equal ``family.n_arms`` for an instance).
        horizon: H, pulls per episode.
        family_kwargs: parameters of a named family (e.g. ``{"delta": 0.2}``).
        obs_mode: ``"rl2"``, ``"rl2_counts"`` or ``"none"``.
        reward_mode: ``"raw"``, ``"strategic"`` or ``"algorithmic"``.
        reward_tape: pre-draw the reward noise per arm and pull index at reset (common random numbers).
        fixed_task: evaluate on this task at every reset (instead of drawing one).
        render_mode: None or ``"ansi"`` (the history as a text table).

    ``reset(options={"task": task})`` forces the task of one episode.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        family: str | TaskFamily = "bernoulli_uniform",
        n_arms: int = 5,
        horizon: int = 100,
        family_kwargs: dict[str, Any] | None = None,
        obs_mode: ObsMode = "rl2",
        reward_mode: RewardMode = "raw",
        reward_tape: bool = True,
        fixed_task: Task | None = None,
        render_mode: str | None = None,
    ):
        if isinstance(family, str):
            family = make_family(family, n_arms, **(family_kwargs or {}))
        elif not isinstance(family, TaskFamily):
            raise TypeError(f"MetaBanditEnv: family must be a family name or a TaskFamily, got {family!r}")
        elif family_kwargs:
            raise ValueError("MetaBanditEnv: family_kwargs only apply to a family given by name")
        elif family.n_arms != n_arms:
            raise ValueError(f"MetaBanditEnv: n_arms={n_arms!r} but the family has {family.n_arms} arms")
        self.family = family
        self.n_arms = family.n_arms
        self.horizon = check_int(horizon, "MetaBanditEnv: horizon", 1)
        self.obs_mode = check_choice(OBS_MODES, obs_mode, "MetaBanditEnv: obs_mode")
        self.reward_mode = check_choice(REWARD_MODES, reward_mode, "MetaBanditEnv: reward_mode")
        self.render_mode = check_choice((None, "ansi"), render_mode, "MetaBanditEnv: render_mode")
        self.reward_tape = bool(reward_tape)
        self._resamples = bool(family.resample_each_pull)
        self._gaussian = family.reward_type == "gaussian"
        if fixed_task is not None and self._resamples:
            raise ValueError("MetaBanditEnv: fixed_task contradicts a family that resamples the task every pull")
        self.fixed_task = None if fixed_task is None else self._check_task(fixed_task)
        self.action_space = gym.spaces.Discrete(self.n_arms)
        low, high = self._obs_bounds()
        self.observation_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self._task: Task | None = None
        self._t = self.horizon  # "episode over" until the first reset

    # ------------------------------------------------------------------ spaces and observations
    def _obs_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the observation vector (subclasses append entries)."""
        K = self.n_arms
        r_lo, r_hi = (-np.inf, np.inf) if self._gaussian else (0.0, 1.0)
        if self.obs_mode == "none":
            return np.zeros(1), np.ones(1)  # high 1, not 0: a degenerate Box would divide by zero in any rescaling
        # one-hot previous action, previous reward, t/H; then the flag (rl2) or counts/H and empirical means
        low, high = [0.0] * K + [r_lo, 0.0], [1.0] * K + [r_hi, 1.0]
        if self.obs_mode == "rl2":
            low, high = low + [0.0], high + [1.0]
        else:
            low, high = low + [0.0] * K + [r_lo] * K, high + [1.0] * K + [r_hi] * K
        return np.array(low), np.array(high)

    def _observe(self) -> np.ndarray:
        """The observation before pull ``self._t``: a function of the history (actions, raw rewards) only."""
        K, t = self.n_arms, self._t
        if self.obs_mode == "none":
            return np.zeros(1, dtype=np.float32)
        obs = np.zeros(K + 3 if self.obs_mode == "rl2" else 3 * K + 2, dtype=np.float32)
        if t > 0:
            obs[self._prev_action] = 1.0
            obs[K] = self._prev_reward
        obs[K + 1] = t / self.horizon
        if self.obs_mode == "rl2":
            obs[K + 2] = t == 0
        else:
            pulled = self._counts > 0
            obs[K + 2 : 2 * K + 2] = self._counts / self.horizon
            obs[2 * K + 2 :][pulled] = self._sums[pulled] / self._counts[pulled]
        return obs

    # ------------------------------------------------------------------ tasks
    def _check_task(self, task: Any) -> Task:
        if not isinstance(task, Task):
            raise TypeError(f"MetaBanditEnv: a forced task must be a Task, got {type(task).__name__}")
        if task.means.shape != (self.n_arms,):
            raise ValueError(f"MetaBanditEnv: task means have shape {task.means.shape}, expected ({self.n_arms},)")
        if not self._gaussian and (task.means.min() < 0.0 or task.means.max() > 1.0):
            raise ValueError(f"MetaBanditEnv: Bernoulli task means must lie in [0, 1], got {task.means}")
        return task

    def _set_task(self, task: Task) -> None:
        self._task = task
        self._means = task.means
        self._best = task.best_arm
        self._mu_star = float(task.means[task.best_arm])
        self._mu_min = float(task.means.min())
        self._mu_avg = float(task.means.mean())

    def _redraw_due(self) -> bool:
        """Whether a fresh task must be drawn before pull ``self._t``."""
        return self._resamples and self._t > 0

    @property
    def one_task_per_episode(self) -> bool:
        """Whether every pull of an episode faces the task drawn at reset (``info["task"]``)."""
        return not self._resamples

    @property
    def task(self) -> Task | None:
        """The current task (privileged: for evaluation code, never for the agent)."""
        return self._task

    # ------------------------------------------------------------------ gymnasium API
    def _draw_noise(self, size: int | tuple[int, ...] | None = None) -> Any:
        return self.np_random.standard_normal(size) if self._gaussian else self.np_random.random(size)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        forced = (options or {}).get("task", self.fixed_task)
        self._set_task(self.family.sample(self.np_random) if forced is None else self._check_task(forced))
        K, H = self.n_arms, self.horizon
        self._noise = self._draw_noise((K, H)) if self.reward_tape else None
        # Drawn in every reward mode so that reward_mode never shifts the env's random stream (tasks, rewards).
        self._teacher_rng = np.random.default_rng(int(self.np_random.integers(2**62)))
        self._t = 0
        self._counts = np.zeros(K, dtype=np.int64)
        self._sums = np.zeros(K)
        self._prev_action = -1
        self._prev_reward = 0.0
        self._actions = np.full(H, -1, dtype=np.int64)
        self._rewards = np.zeros(H)
        self._return = 0.0
        self._regret = 0.0
        self._regret_random = 0.0
        self._best_pulls = 0
        return self._observe(), {"task": self._task}

    def _check_action(self, action: Any) -> int:
        if self._task is None or self._t >= self.horizon:
            raise RuntimeError("MetaBanditEnv: step() called before reset() or after the episode ended")
        # A plain integer test: Discrete.contains costs more than the rest of a step.
        arm = action.item() if isinstance(action, np.ndarray) and action.shape == () else action
        if isinstance(arm, (bool, np.bool_)) or not isinstance(arm, (int, np.integer)) or not 0 <= arm < self.n_arms:
            raise ValueError(f"MetaBanditEnv: invalid action {action!r}; expected an integer arm in [0, {self.n_arms})")
        return int(arm)

    def _teacher_action(self) -> int:
        """UCB1's action given the history so far (``reward_mode="algorithmic"``)."""
        unpulled = np.flatnonzero(self._counts == 0)
        if unpulled.size:
            return int(unpulled[0])
        scale = UCB_C * (self.family.sigma if self._gaussian else 1.0)
        index = self._sums / self._counts + scale * np.sqrt(2.0 * np.log(self._t + 1) / self._counts)
        best = np.flatnonzero(index == index.max())
        return int(best[0] if best.size == 1 else self._teacher_rng.choice(best))

    def step(self, action: Any):
        a = self._check_action(action)
        if self._redraw_due():
            self._set_task(self.family.sample(self.np_random))
        mu = float(self._means[a])
        noise = self._noise[a, self._counts[a]] if self.reward_tape else self._draw_noise()
        raw = mu + self.family.sigma * float(noise) if self._gaussian else float(noise < mu)
        if self.reward_mode == "raw":
            reward = raw
        elif self.reward_mode == "strategic":
            spread = self._mu_star - self._mu_min
            reward = (mu - self._mu_min) / spread if spread > 0 else 1.0
        else:
            reward = float(a == self._teacher_action())  # the statistics do not include this pull yet

        inst_regret = self._mu_star - mu
        self._actions[self._t] = a
        self._rewards[self._t] = raw
        self._t += 1
        self._counts[a] += 1
        self._sums[a] += raw
        self._prev_action, self._prev_reward = a, raw
        self._return += raw
        self._regret += inst_regret
        self._regret_random += self._mu_star - self._mu_avg
        self._best_pulls += a == self._best
        info = {
            "t": self._t,
            "action": a,
            "raw_reward": raw,
            "expected_reward": mu,
            "inst_regret": inst_regret,
            "cum_regret": self._regret,
            "best_arm": self._best,
            "is_best": a == self._best,
        }
        terminated = self._t == self.horizon
        if terminated:
            info["episode_metrics"] = {
                "return": self._return,
                "length": self.horizon,
                "success": None,
                "coverage": int(np.count_nonzero(self._counts)),
                "regret": self._regret,
                "regret_random": self._regret_random,
                "best_arm_frac": self._best_pulls / self.horizon,
            }
        return self._observe(), float(reward), terminated, False, info

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("MetaBanditEnv.render() called without render_mode='ansi'")
            return None
        if self._task is None:
            return f"{type(self).__name__}: not reset yet"
        lines = [f"{type(self).__name__} {self._task.family} K={self.n_arms} t={self._t}/{self.horizon}"]
        lines.append("    t  arm  reward")
        lines += [f"{t:5d}  {self._actions[t]:3d}  {self._rewards[t]:g}" for t in range(self._t)]
        lines.append("  arm  pulls  mean")
        for k in range(self.n_arms):
            mean = f"{self._sums[k] / self._counts[k]:.3f}" if self._counts[k] else "-"
            lines.append(f"{k:5d}  {self._counts[k]:5d}  {mean}")
        return "\n".join(lines)
