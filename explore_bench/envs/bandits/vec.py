"""Vectorised bandit simulation (spec bandits.md §4.4): R replicates of a K-armed bandit stepped together in numpy.

This is the fast path used by the classical baselines and the metric tests; the gymnasium envs are for agents.

* ``BatchedBandit(means[R, K], reward_type, sigma, rng).step(actions[R]) -> rewards[R]``
* ``Stats``: the sufficient statistics ``(sums[R, K], counts[R, K])`` a policy acts on.
* ``BanditPolicy``: the policy interface, ``select(stats, t, rng) -> actions[R]`` (t = 0-indexed round), optional
  ``action_probs`` (exact where a policy knows them, Monte-Carlo otherwise) and ``reset(means, horizon)``.
* ``Prior``: the conjugate per-arm prior (Beta(1,1) or Gaussian with known noise) shared by Thompson sampling and
  the TS-consistency metric.
* ``run_policy(policy, means, T, rng) -> Trajectories``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import numpy as np

__all__ = [
    "REWARD_TYPES",
    "BanditPolicy",
    "BatchedBandit",
    "Prior",
    "RewardType",
    "Stats",
    "Trajectories",
    "action_frequencies",
    "check_actions",
    "check_means",
    "check_rewards",
    "run_policy",
]

RewardType = Literal["bernoulli", "gaussian"]
REWARD_TYPES: tuple[str, ...] = ("bernoulli", "gaussian")


# ---------------------------------------------------------------------------------------------------------------
# Input checks shared by the simulator, the trajectories and the metrics
# ---------------------------------------------------------------------------------------------------------------
def check_means(means: np.ndarray, reward_type: str = "gaussian") -> np.ndarray:
    """``means`` as finite float64[R, K] with R, K >= 1; for ``reward_type="bernoulli"`` also within [0, 1]. Raises
    ValueError otherwise."""
    arr = np.asarray(means, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"means: expected shape (R, K) with R, K >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("means: expected finite values, got NaN or inf")
    if reward_type not in REWARD_TYPES:
        raise ValueError(f"reward_type: expected one of {REWARD_TYPES}, got {reward_type!r}")
    if reward_type == "bernoulli" and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"means: Bernoulli means must lie in [0, 1], got range [{arr.min()}, {arr.max()}]")
    return arr


def check_actions(actions: np.ndarray, n_arms: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``actions`` as int64 arm indices in [0, n_arms), of ``shape`` when given. Raises ValueError otherwise."""
    arr = np.asarray(actions)
    if shape is not None and arr.shape != shape:
        raise ValueError(f"actions: expected shape {shape}, got {arr.shape}")
    # floats are accepted when they hold whole numbers (e.g. actions coming back from torch)
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    if not whole:
        raise ValueError(f"actions: expected integer arm indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_arms):
        raise ValueError(f"actions: expected arm indices in [0, {n_arms}), got range [{arr.min()}, {arr.max()}]")
    return arr


def check_rewards(rewards: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``rewards`` as finite float64 of ``shape`` (that of the actions). Raises ValueError otherwise."""
    arr = np.asarray(rewards, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"rewards: expected shape {shape} (as actions), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("rewards: expected finite values, got NaN or inf")
    return arr


# ---------------------------------------------------------------------------------------------------------------
# Simulator and statistics
# ---------------------------------------------------------------------------------------------------------------
class BatchedBandit:
    """R independent K-armed bandits with fixed means, stepped together.

    Rewards are Bernoulli(μ_a) in {0, 1} or Gaussian N(μ_a, sigma²), drawn from ``rng`` for the chosen arms only.
    """

    def __init__(self, means: np.ndarray, reward_type: RewardType = "bernoulli", sigma: float = 1.0,
                 rng: np.random.Generator | None = None) -> None:
        self.means = check_means(means, reward_type)
        if not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma: expected a positive finite noise std, got {sigma}")
        self.reward_type = reward_type
        self.sigma = float(sigma)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._rows = np.arange(self.means.shape[0])

    @property
    def n_replicates(self) -> int:
        return self.means.shape[0]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Pull ``actions[r]`` in every replicate r; returns float64[R] rewards."""
        actions = check_actions(actions, self.n_arms, (self.n_replicates,))
        mu = self.means[self._rows, actions]
        if self.reward_type == "bernoulli":
            return (self.rng.random(self.n_replicates) < mu).astype(np.float64)
        return mu + self.sigma * self.rng.standard_normal(self.n_replicates)


class Stats(NamedTuple):
    """Sufficient statistics before a round: per-arm reward sums float64[R, K] and pull counts int64[R, K]."""

    sums: np.ndarray
    counts: np.ndarray

    @classmethod
    def zeros(cls, n_replicates: int, n_arms: int) -> Stats:
        return cls(np.zeros((n_replicates, n_arms)), np.zeros((n_replicates, n_arms), dtype=np.int64))

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Add one pull per replicate, in place (one arm per row, so fancy-index ``+=`` is exact)."""
        rows = np.arange(self.sums.shape[0])
        self.sums[rows, actions] += rewards
        self.counts[rows, actions] += 1

    def tile(self, n: int) -> Stats:
        """``n`` stacked copies, shape (n·R, K): lets a policy sample n actions per replicate in one call."""
        return Stats(np.tile(self.sums, (n, 1)), np.tile(self.counts, (n, 1)))


# ---------------------------------------------------------------------------------------------------------------
# Conjugate priors: posterior sampling (Thompson sampling) and discretised posteriors (TS-consistency metric)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prior:
    """Independent conjugate prior on every arm's mean.

    ``kind="beta"``: Beta(1, 1) for rewards in [0, 1]; posterior Beta(1 + S_k, 1 + N_k − S_k) (a fractional S is
    used as is, not binarised, since a policy only sees sums). ``kind="gaussian"``: N(m0, s0²) with known reward
    noise sigma; posterior precision τ_k = 1/s0² + N_k/sigma², mean (m0/s0² + S_k/sigma²)/τ_k.
    """

    kind: Literal["beta", "gaussian"] = "beta"
    m0: float = 0.0
    s0: float = 1.0
    sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("beta", "gaussian"):
            raise ValueError(f"Prior.kind: expected 'beta' or 'gaussian', got {self.kind!r}")
        if not (self.s0 > 0 and self.sigma > 0):
            raise ValueError(f"Prior: s0 and sigma must be positive, got s0={self.s0}, sigma={self.sigma}")

    @classmethod
    def for_rewards(cls, reward_type: str) -> Prior:
        """The default prior of a reward type: Beta(1,1) for Bernoulli, N(0, 1) with sigma=1 for Gaussian."""
        return cls("beta" if reward_type == "bernoulli" else "gaussian")

    def beta_params(self, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        """Posterior (α, β) float64[R, K]; raises ValueError unless 0 <= S_k <= N_k (rewards in [0, 1])."""
        sums, counts = stats
        if np.any(sums < 0) or np.any(sums > counts):
            raise ValueError("Beta posterior: expected reward sums in [0, counts] (rewards in [0, 1]); "
                             "use a Gaussian prior for real-valued rewards")
        return 1.0 + sums, 1.0 + counts - sums

    def gauss_params(self, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation float64[R, K]."""
        sums, counts = stats
        precision = 1.0 / self.s0**2 + counts / self.sigma**2
        return (self.m0 / self.s0**2 + sums / self.sigma**2) / precision, 1.0 / np.sqrt(precision)

    def sample(self, stats: Stats, rng: np.random.Generator, n_draws: int | None = None) -> np.ndarray:
        """One posterior draw of every arm's mean, float64[R, K]; with ``n_draws``, that many: [n_draws, R, K]."""
        shape = stats.sums.shape if n_draws is None else (n_draws, *stats.sums.shape)
        if self.kind == "beta":
            a, b = self.beta_params(stats)
            return rng.beta(a, b, size=shape)
        mean, std = self.gauss_params(stats)
        return mean + std * rng.standard_normal(shape)

    def grid_log_density(self, stats: Stats, n_grid: int) -> np.ndarray:
        """Posterior log-densities (up to a constant per arm) at n_grid cell midpoints shared by the arms of a
        replicate, float64[R, K, n_grid]: Beta posteriors on (0, 1); a Gaussian replicate's grid spans every arm's
        mean ± 8 std."""
        if self.kind == "beta":
            a, b = self.beta_params(stats)
            x = (np.arange(n_grid) + 0.5) / n_grid
            return (a[..., None] - 1.0) * np.log(x) + (b[..., None] - 1.0) * np.log1p(-x)
        mean, std = self.gauss_params(stats)
        lo, hi = (mean - 8 * std).min(axis=1), (mean + 8 * std).max(axis=1)
        x = lo[:, None] + (hi - lo)[:, None] * (np.arange(n_grid) + 0.5) / n_grid
        return -0.5 * ((x[:, None, :] - mean[..., None]) / std[..., None]) ** 2


# ---------------------------------------------------------------------------------------------------------------
# Policy interface and trajectories
# ---------------------------------------------------------------------------------------------------------------
def action_frequencies(actions: np.ndarray, n_arms: int) -> np.ndarray:
    """float64[R, K] empirical frequency of each arm in int[n_draws, R] sampled actions."""
    n_draws, n_rep = actions.shape
    cells = (np.arange(n_rep) * n_arms + actions).ravel()
    return np.bincount(cells, minlength=n_rep * n_arms).reshape(n_rep, n_arms) / n_draws


class BanditPolicy:
    """A policy acting on R replicates at once from their sufficient statistics.

    Subclasses implement ``select``. ``action_probs`` defaults to a Monte-Carlo estimate (n_draws calls of
    ``select`` made at once on tiled statistics); policies that know their probabilities override it.
    ``reset(means, horizon)`` is called by ``run_policy`` before round 0; only the oracle may read ``means``.
    """

    name: str = "policy"

    def reset(self, means: np.ndarray, horizon: int) -> None:
        """Start R new tasks of ``horizon`` rounds (no-op by default)."""

    def select(self, stats: Stats, t: int, rng: np.random.Generator) -> np.ndarray:
        """int64[R] arms to pull in round ``t`` (0-indexed) given the statistics of rounds 0..t−1."""
        raise NotImplementedError

    def action_probs(self, stats: Stats, t: int, rng: np.random.Generator, n_draws: int = 1000) -> np.ndarray:
        """float64[R, K] probabilities of ``select``'s choice; here the empirical frequencies of n_draws calls."""
        n_rep, n_arms = stats.sums.shape
        return action_frequencies(self.select(stats.tile(n_draws), t, rng).reshape(n_draws, n_rep), n_arms)


@dataclass(frozen=True, eq=False)
class Trajectories:
    """R replicates of one policy: actions int64[R, T], rewards float64[R, T], the task means float64[R, K], the
    reward type, and optionally the policy's per-round action probabilities ``probs`` float64[R, T, K]."""

    actions: np.ndarray
    rewards: np.ndarray
    means: np.ndarray
    reward_type: RewardType = "bernoulli"
    probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        means = check_means(self.means, self.reward_type)
        actions = np.asarray(self.actions)
        if actions.ndim != 2 or actions.shape[0] != means.shape[0] or actions.shape[1] < 1:
            raise ValueError(f"actions: expected shape (R={means.shape[0]}, T>=1), got {actions.shape}")
        actions = check_actions(actions, means.shape[1])
        rewards = check_rewards(self.rewards, actions.shape)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "rewards", rewards)
        if self.probs is not None:
            probs = np.asarray(self.probs, dtype=np.float64)
            expected = (*actions.shape, means.shape[1])
            if probs.shape != expected:
                raise ValueError(f"probs: expected shape {expected}, got {probs.shape}")
            if not np.all(np.isfinite(probs)) or probs.min() < 0 or not np.allclose(probs.sum(-1), 1.0, atol=1e-6):
                raise ValueError("probs: expected finite non-negative rows summing to 1")
            object.__setattr__(self, "probs", probs)

    @property
    def n_replicates(self) -> int:
        return self.actions.shape[0]

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    @property
    def n_arms(self) -> int:
        return self.means.shape[1]

    @property
    def best_arm(self) -> np.ndarray:
        """int64[R] index of the best arm (ties to the lowest index)."""
        return np.argmax(self.means, axis=1)

    def head(self, horizon: int) -> Trajectories:
        """The first ``horizon`` rounds: the same run seen at a shorter horizon (valid for horizon-free policies)."""
        if not 1 <= horizon <= self.horizon:
            raise ValueError(f"head: expected 1 <= horizon <= {self.horizon}, got {horizon}")
        probs = None if self.probs is None else self.probs[:, :horizon]
        return replace(self, actions=self.actions[:, :horizon], rewards=self.rewards[:, :horizon], probs=probs)


def run_policy(policy: BanditPolicy, means: np.ndarray, T: int, rng: np.random.Generator,
               reward_type: RewardType = "bernoulli", sigma: float = 1.0, record_probs: bool = False,
               n_prob_draws: int = 1000) -> Trajectories:
    """Run ``policy`` for T rounds on every row of ``means`` [R, K]; rewards and the policy share ``rng``.

    With ``record_probs`` the policy's ``action_probs`` are stored every round (Monte-Carlo ones with
    ``n_prob_draws`` draws); they use a generator split off ``rng`` so the actions taken do not depend on it.
    """
    if int(T) != T or T < 1:
        raise ValueError(f"T: expected a positive integer horizon, got {T}")
    bandit = BatchedBandit(means, reward_type, sigma, rng)
    n_rep, n_arms = bandit.means.shape
    prob_rng = np.random.default_rng(rng.integers(2**63))  # drawn unconditionally: same actions either way
    policy.reset(bandit.means, int(T))
    stats = Stats.zeros(n_rep, n_arms)
    actions = np.empty((n_rep, T), dtype=np.int64)
    rewards = np.empty((n_rep, T))
    probs = np.empty((n_rep, T, n_arms)) if record_probs else None
    for t in range(T):
        if probs is not None:
            probs[:, t] = policy.action_probs(stats, t, prob_rng, n_prob_draws)
        chosen = policy.select(stats, t, rng)
        rewards[:, t] = bandit.step(chosen)  # checks the actions before they are stored
        actions[:, t] = chosen
        stats.update(actions[:, t], rewards[:, t])
    return Trajectories(actions, rewards, bandit.means, reward_type, probs)
