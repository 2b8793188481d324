"""Classical bandit baselines (spec bandits.md §6), vectorised over R replicates.

Every baseline is a ``BanditPolicy`` (``explore_bench.envs.bandits.vec``): ``select(stats, t, rng) -> actions[R]``
from the sufficient statistics ``stats = (sums[R, K], counts[R, K])`` of rounds 0..t−1 (t is 0-indexed). Ties of
every argmax are broken uniformly at random with the policy's generator, except ``bayes_opt_k2`` (ties → arm 0).

    make_baseline("ucb1", c=0.5)                       # registry; list_baselines() gives the names
    run_policy(make_baseline("ts_beta"), means, T, rng) # -> Trajectories
    evaluate_baseline("greedy", means, T, rng)          # -> summarize(...) dict
    tune("ucb1_prior", None, means, T, rng)             # best c on the §6 grid, by mean total reward
    bayes_opt_k2_value(H)                               # exact Bayes-optimal value, K = 2, Beta(1,1) priors

``greedy``, ``ucb1`` and ``ucb_gauss`` start with the init round (round t < K pulls the first untried arm, which is
arm t on their own history); ``greedy_prior``, ``ucb1_prior``, ``gittins_approx`` and the Thompson samplers use
prior pseudo-counts instead. Name the variant in result tables (spec §11).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from explore_bench.envs.bandits.metrics import summarize
from explore_bench.envs.bandits.vec import BanditPolicy, Prior, RewardType, Stats, action_frequencies, run_policy

__all__ = [
    "BASELINES",
    "BayesOptK2",
    "EpsGreedy",
    "GittinsApprox",
    "Greedy",
    "GreedyPrior",
    "IndexPolicy",
    "Oracle",
    "RandomPolicy",
    "TSBeta",
    "TSGauss",
    "ThompsonSampling",
    "TuneResult",
    "UCB1",
    "UCB1Prior",
    "UCBGauss",
    "bayes_opt_k2_value",
    "evaluate_baseline",
    "gittins_index",
    "list_baselines",
    "make_baseline",
    "reference_regrets",
    "tune",
    "tuning_grid",
]


# ---------------------------------------------------------------------------------------------------------------
# Shared choice machinery: maximiser sets, random tie-breaking, the init round
# ---------------------------------------------------------------------------------------------------------------
def _maximisers(values: np.ndarray) -> np.ndarray:
    """bool[R, K]: the arms attaining each row's maximum (exact ties)."""
    return values == values.max(axis=1, keepdims=True)


def _random_choice(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """int64[R]: one arm per row, uniform among the True entries of ``mask`` (argmax of uniform noise there).
    Noise is drawn for tied rows only: after the first rounds most rows have a single maximiser."""
    actions = np.argmax(mask, axis=1)
    tied = np.flatnonzero(mask.sum(axis=1) > 1)
    if tied.size:
        noise = rng.random((tied.size, mask.shape[1]))
        noise[~mask[tied]] = -1.0
        actions[tied] = np.argmax(noise, axis=1)
    return actions


def _apply_init_round(counts: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows with an untried arm choose the lowest-index one (arm t in round t < K on the policy's own history)."""
    untried = counts == 0
    rows = untried.any(axis=1)
    if rows.any():
        mask[rows] = False
        mask[np.flatnonzero(rows), np.argmax(untried[rows], axis=1)] = True
    return mask


class IndexPolicy(BanditPolicy):
    """Acts on the maximisers of an index (uniform random tie-break); its action probabilities are exact: uniform
    over the maximiser set. Subclasses define ``index``; ``init_round`` adds the init round."""

    init_round: bool = False

    def index(self, stats: Stats, t: int) -> np.ndarray:
        """float64[R, K] index of every arm in round t."""
        raise NotImplementedError

    def choice_mask(self, stats: Stats, t: int) -> np.ndarray:
        """bool[R, K]: the arms this policy chooses among (uniformly) in round t."""
        mask = _maximisers(self.index(stats, t))
        return _apply_init_round(stats.counts, mask) if self.init_round else mask

    def select(self, stats: Stats, t: int, rng: np.random.Generator) -> np.ndarray:
        return _random_choice(self.choice_mask(stats, t), rng)

    def action_probs(self, stats: Stats, t: int, rng: np.random.Generator, n_draws: int = 1000) -> np.ndarray:
        mask = self.choice_mask(stats, t).astype(np.float64)
        return mask / mask.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------------------------
class RandomPolicy(IndexPolicy):
    """a_t ~ U{0..K−1}: every arm ties on a constant index."""

    name = "random"

    def index(self, stats: Stats, t: int) -> np.ndarray:
        return np.zeros(stats.sums.shape)


class UCB1(IndexPolicy):
    """UCB1 (Auer et al. 2002): init round, then argmax μ̂_k + c·sqrt(2·ln(t+1)/N_k) (t+1 = 1-based round).

    With ``pseudo_counts`` (RL²'s variant, no init round): statistics start at 1 success in 2 pulls, index
    (S_k+1)/(N_k+2) + c·sqrt(2·ln max(t, 1)/(N_k+2)). c = 0 gives the greedy policies.
    """

    name = "ucb1"

    def __init__(self, c: float = 1.0, pseudo_counts: bool = False) -> None:
        if not (np.isfinite(c) and c >= 0):
            raise ValueError(f"{self.name}: c must be a finite number >= 0, got {c}")
        self.c = float(c)
        self.pseudo_counts = pseudo_counts
        self.init_round = not pseudo_counts

    def index(self, stats: Stats, t: int) -> np.ndarray:
        sums, counts = stats
        if self.pseudo_counts:
            pulls, mean, log_t = counts + 2.0, sums + 1.0, np.log(max(t, 1))
        else:  # untried arms (N = 0) are overridden by the init round
            pulls, mean, log_t = np.maximum(counts, 1).astype(np.float64), sums.copy(), np.log(t + 1)
        mean /= pulls
        return mean + (self.c * np.sqrt(2.0 * log_t)) / np.sqrt(pulls)


class Greedy(UCB1):
    """Init round, then argmax μ̂_k (Explore-ICL-style greedy)."""

    name = "greedy"

    def __init__(self) -> None:
        super().__init__(c=0.0)


class GreedyPrior(UCB1):
    """No init round; argmax (S_k+1)/(N_k+2): one pseudo-success and one pseudo-failure (RL² convention)."""

    name = "greedy_prior"

    def __init__(self) -> None:
        super().__init__(c=0.0, pseudo_counts=True)


class UCB1Prior(UCB1):
    """RL²'s UCB1 with Beta(1,1) pseudo-counts; c tuned per (K, H) on {0, 0.1, …, 1} (0.2 was best in §9.1)."""

    name = "ucb1_prior"

    def __init__(self, c: float = 0.2) -> None:
        super().__init__(c=c, pseudo_counts=True)


class UCBGauss(UCB1):
    """Init round, then argmax μ̂_k + σ·sqrt(2·ln(t+1)/N_k), σ the known reward noise: UCB1 with c = σ."""

    name = "ucb_gauss"

    def __init__(self, sigma: float = 1.0) -> None:
        super().__init__(c=sigma)


class EpsGreedy(BanditPolicy):
    """With probability ε a uniform arm, else the ``greedy`` (or ``greedy_prior``) choice, in every round."""

    name = "eps_greedy"

    def __init__(self, eps: float = 0.1, base: str = "greedy") -> None:
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"eps_greedy: eps must lie in [0, 1], got {eps}")
        if base not in ("greedy", "greedy_prior"):
            raise ValueError(f"eps_greedy: base must be 'greedy' or 'greedy_prior', got {base!r}")
        self.eps = float(eps)
        self.base = Greedy() if base == "greedy" else GreedyPrior()

    def select(self, stats: Stats, t: int, rng: np.random.Generator) -> np.ndarray:
        actions = self.base.select(stats, t, rng)
        explore = rng.random(actions.shape[0]) < self.eps
        actions[explore] = rng.integers(0, stats.sums.shape[1], size=int(explore.sum()))
        return actions

    def action_probs(self, stats: Stats, t: int, rng: np.random.Generator, n_draws: int = 1000) -> np.ndarray:
        n_arms = stats.sums.shape[1]
        return self.eps / n_arms + (1.0 - self.eps) * self.base.action_probs(stats, t, rng)


class ThompsonSampling(BanditPolicy):
    """a_t = argmax of one posterior draw per arm under ``prior``. Its action probabilities (= P(arm is best)) are
    estimated by Monte Carlo, like any stochastic policy's, so the TS-consistency test measures a sampled π against
    the exact posterior; the draws are batched here rather than through tiled statistics."""

    name = "thompson"

    def __init__(self, prior: Prior) -> None:
        self.prior = prior

    def select(self, stats: Stats, t: int, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(self.prior.sample(stats, rng), axis=1)  # continuous draws: ties have probability 0

    def action_probs(self, stats: Stats, t: int, rng: np.random.Generator, n_draws: int = 1000) -> np.ndarray:
        draws = self.prior.sample(stats, rng, n_draws)
        return action_frequencies(np.argmax(draws, axis=2), stats.sums.shape[1])


class TSBeta(ThompsonSampling):
    """Thompson sampling with Beta(1,1) priors: θ_k ~ Beta(1+S_k, 1+N_k−S_k)."""

    name = "ts_beta"

    def __init__(self) -> None:
        super().__init__(Prior("beta"))


class TSGauss(ThompsonSampling):
    """Thompson sampling with N(m0, s0²) priors and known noise σ: θ_k ~ N(m_k, 1/τ_k) (see ``Prior``)."""

    name = "ts_gauss"

    def __init__(self, m0: float = 0.0, s0: float = 1.0, sigma: float = 1.0) -> None:
        super().__init__(Prior("gaussian", m0, s0, sigma))


def gittins_index(stats: Stats, gamma: float) -> np.ndarray:
    """Closed-form Gittins index approximation of Beta(1+S, 1+N−S) arms at discount γ (Brezzi–Lai / Chick–Gans
    style, spec §6): ν = μ + sqrt(σ_W²·c)·b(s), c = −ln γ, s = σ_n²/(σ_W²·c), b piecewise in s."""
    a, b = Prior("beta").beta_params(stats)
    mu = a / (a + b)
    var_n = a * b / ((a + b) ** 2 * (a + b + 1))
    var_w = np.maximum(mu * (1 - mu), 1e-6)
    c = -np.log(gamma)
    s = var_n / (var_w * c)
    log_s = np.log(s)
    mid = np.exp(-0.02645 * log_s**2 + 0.89106 * log_s - 0.4873)
    # the s > 100 branch; its ln ln s is only evaluated meaningfully where s > 100 (log_s > 4.6)
    large = np.sqrt(s * np.maximum(2 * log_s - np.log(np.maximum(log_s, 1.0)) - np.log(16 * np.pi), 0.0))
    b_s = np.where(s <= 1 / 7, s / np.sqrt(2), np.where(s <= 100, mid, large))
    return mu + np.sqrt(var_w * c) * b_s


class GittinsApprox(IndexPolicy):
    """Acts on ``gittins_index`` at discount γ; γ = None uses 1 − 1/H. Tuned over {0.9, 0.99, 0.999, 1 − 1/H}."""

    name = "gittins_approx"

    def __init__(self, gamma: float | None = None) -> None:
        if gamma is not None and not 0.0 < gamma < 1.0:
            raise ValueError(f"gittins_approx: gamma must lie in (0, 1), got {gamma}")
        self.gamma = gamma
        self._gamma = gamma

    def reset(self, means: np.ndarray, horizon: int) -> None:
        if self.gamma is None and horizon < 2:
            raise ValueError("gittins_approx: gamma = 1 − 1/H needs H >= 2")
        self._gamma = self.gamma if self.gamma is not None else 1.0 - 1.0 / horizon

    def index(self, stats: Stats, t: int) -> np.ndarray:
        if self._gamma is None:
            raise RuntimeError("gittins_approx: gamma=None needs reset(means, horizon) first")
        return gittins_index(stats, self._gamma)


# ---------------------------------------------------------------------------------------------------------------
# Exact Bayes-optimal policy for two Bernoulli arms with Beta(1,1) priors
# ---------------------------------------------------------------------------------------------------------------
MAX_DP_HORIZON = 150  # the decision tables take Σ_m (m+1)³ bytes ≈ H⁴/4 (25 MB at H = 100)


@lru_cache(maxsize=4)
def _bayes_k2_tables(horizon: int) -> tuple[float, tuple[np.ndarray, ...]]:
    """(optimal expected total reward, decisions) for horizon H.

    Bottom-up over m = s₁+f₁+s₂+f₂ pulls done (remaining H − m): V_m[s₁, f₁, s₂] (f₂ = m − s₁ − f₁ − s₂) is
    max_k Q_k with Q_k = p_k·(1 + V_{m+1}[success of k]) + (1 − p_k)·V_{m+1}[failure of k], p_k = (s_k+1)/(n_k+2),
    V_H = 0. ``decisions[m]`` = Q_1 > Q_0 (bool[(m+1)³]; ties → arm 0). Entries with s₁+f₁+s₂ > m are not states;
    they hold bounded filler values that valid states never read.
    """
    value = np.zeros((horizon + 1,) * 3)
    decisions: list[np.ndarray] = []
    for m in range(horizon - 1, -1, -1):
        idx = np.arange(m + 1)
        s1, f1, s2 = idx[:, None, None], idx[None, :, None], idx[None, None, :]
        p0 = (s1 + 1) / (s1 + f1 + 2)
        p1 = (s2 + 1) / (np.maximum(m - s1 - f1, s2) + 2)  # n₂ = m − s₁ − f₁ (clipped on non-states so p₁ <= 1)
        q0 = p0 * (1 + value[1:, :-1, :-1]) + (1 - p0) * value[:-1, 1:, :-1]
        q1 = p1 * (1 + value[:-1, :-1, 1:]) + (1 - p1) * value[:-1, :-1, :-1]
        decisions.append(q1 > q0)
        value = np.maximum(q0, q1)
    return float(value[0, 0, 0]), tuple(reversed(decisions))


def _check_dp_horizon(horizon: int) -> int:
    if int(horizon) != horizon or not 1 <= horizon <= MAX_DP_HORIZON:
        raise ValueError(f"bayes_opt_k2: horizon must be an integer in [1, {MAX_DP_HORIZON}], got {horizon}")
    return int(horizon)


def bayes_opt_k2_value(horizon: int) -> float:
    """Exact expected total reward of the Bayes-optimal policy, K = 2 Bernoulli arms, i.i.d. Beta(1,1) means."""
    return _bayes_k2_tables(_check_dp_horizon(horizon))[0]


class BayesOptK2(IndexPolicy):
    """Exact finite-horizon Bayes-optimal policy for K = 2 Bernoulli arms with Beta(1,1) priors (ties → arm 0).
    The DP tables are built once per horizon (cached) at ``reset``."""

    name = "bayes_opt_k2"

    def __init__(self) -> None:
        self._decisions: tuple[np.ndarray, ...] | None = None

    def reset(self, means: np.ndarray, horizon: int) -> None:
        if means.shape[1] != 2:
            raise ValueError(f"bayes_opt_k2: needs K = 2 arms, got K = {means.shape[1]}")
        self._decisions = _bayes_k2_tables(_check_dp_horizon(horizon))[1]

    def choice_mask(self, stats: Stats, t: int) -> np.ndarray:
        if self._decisions is None:
            raise RuntimeError("bayes_opt_k2: call reset(means, horizon) first")
        sums, counts = stats
        if sums.shape[1] != 2 or np.any(counts.sum(axis=1) != t) or not 0 <= t < len(self._decisions):
            raise ValueError(f"bayes_opt_k2: expected K = 2 statistics of t = {t} pulls within the horizon "
                             f"{len(self._decisions)}")
        succ = np.rint(sums).astype(np.int64)
        if np.any(succ != sums) or np.any(succ < 0) or np.any(succ > counts):
            raise ValueError("bayes_opt_k2: expected Bernoulli rewards (integer sums in [0, counts])")
        arm1 = self._decisions[t][succ[:, 0], counts[:, 0] - succ[:, 0], succ[:, 1]]
        return np.stack([~arm1, arm1], axis=1)


class Oracle(IndexPolicy):
    """Always the best arm a* (privileged: reads the task means at ``reset``); regret 0, a sanity check."""

    name = "oracle"

    def __init__(self) -> None:
        self._best: np.ndarray | None = None

    def reset(self, means: np.ndarray, horizon: int) -> None:
        self._best = np.argmax(means, axis=1)

    def index(self, stats: Stats, t: int) -> np.ndarray:
        if self._best is None or self._best.shape[0] != stats.sums.shape[0]:
            raise RuntimeError("oracle: call reset(means, horizon) with these replicates first")
        return (np.arange(stats.sums.shape[1]) == self._best[:, None]).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Registry, evaluation and tuning
# ---------------------------------------------------------------------------------------------------------------
BASELINES: dict[str, type[BanditPolicy]] = {
    cls.name: cls
    for cls in (RandomPolicy, Greedy, GreedyPrior, EpsGreedy, UCB1, UCB1Prior, UCBGauss, TSBeta, TSGauss,
                GittinsApprox, BayesOptK2, Oracle)
}


def list_baselines() -> list[str]:
    """Names of all baselines, sorted."""
    return sorted(BASELINES)


def make_baseline(name: str, **params: object) -> BanditPolicy:
    """A new baseline by name with keyword ``params``; an unknown name is a KeyError listing the valid ones."""
    if name not in BASELINES:
        raise KeyError(f"unknown bandit baseline {name!r}; valid names: {', '.join(list_baselines())}")
    return BASELINES[name](**params)


def evaluate_baseline(name: str, means: np.ndarray, T: int, rng: np.random.Generator,
                      reward_type: RewardType = "bernoulli", sigma: float = 1.0, seed: int = 0,
                      **params: object) -> dict[str, float]:
    """``summarize`` of baseline ``name`` (with ``params``) run for T rounds on ``means`` [R, K]; ``seed`` seeds
    the bootstrap CIs. The runner uses it to put baseline rows beside learned agents."""
    traj = run_policy(make_baseline(name, **params), means, T, rng, reward_type, sigma)
    return summarize(traj, seed=seed)


def reference_regrets(means: np.ndarray, T: int, rng: np.random.Generator) -> tuple[float, float]:
    """Mean pseudo-regrets (random, reference) of the §5.2 normalised score on Bernoulli ``means``: the reference
    is ``bayes_opt_k2`` when K = 2, else ``gittins_approx`` with γ = 1 − 1/T."""
    reference = "bayes_opt_k2" if np.shape(means)[1] == 2 else "gittins_approx"
    return tuple(evaluate_baseline(name, means, T, rng)["cum_regret_mean"] for name in ("random", reference))


_GRIDS: dict[str, tuple[str, tuple[float, ...]]] = {
    "ucb1_prior": ("c", tuple(np.round(np.arange(11) / 10, 1))),
    "eps_greedy": ("eps", (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)),
    "gittins_approx": ("gamma", (0.9, 0.99, 0.999)),  # plus 1 − 1/H, added by tuning_grid
}


def tuning_grid(name: str, T: int) -> tuple[str, tuple[float, ...]]:
    """(parameter name, §6 grid) of a tunable baseline at horizon T: c of ucb1_prior, ε of eps_greedy, γ of
    gittins_approx (with 1 − 1/T)."""
    if name not in _GRIDS:
        raise KeyError(f"baseline {name!r} has no tuning grid; tunable: {', '.join(sorted(_GRIDS))}")
    param, grid = _GRIDS[name]
    return (param, (*grid, 1.0 - 1.0 / T)) if name == "gittins_approx" else (param, grid)


@dataclass(frozen=True)
class TuneResult:
    """Outcome of ``tune``: the tuned parameter, its best value and the mean total reward of every grid value."""

    param: str
    best: float
    scores: dict[float, float]

    @property
    def best_score(self) -> float:
        return self.scores[self.best]


def tune(name: str, grid: tuple[float, ...] | None, means: np.ndarray, T: int, rng: np.random.Generator,
         reward_type: RewardType = "bernoulli", sigma: float = 1.0, **fixed: object) -> TuneResult:
    """Run baseline ``name`` for every value of its tuned parameter (``grid``, or the §6 grid when None) on the same
    ``means`` and keep the one with the highest mean total reward (as RL² tuned per (K, H) cell; the first wins a
    tie). ``fixed`` holds the other constructor arguments (e.g. ``base="greedy_prior"`` for eps_greedy)."""
    param, default = tuning_grid(name, T)
    scores = {}
    for value in default if grid is None else grid:
        traj = run_policy(make_baseline(name, **{param: value}, **fixed), means, T, rng, reward_type, sigma)
        scores[float(value)] = float(traj.rewards.sum(axis=1).mean())
    return TuneResult(param, max(scores, key=scores.get), scores)
