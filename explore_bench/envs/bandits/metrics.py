"""Exploration metrics of bandit trajectories (spec bandits.md §5).

Per-replicate quantities are computed vectorised over R replicates; every reported metric comes with its
standard error and a seeded 95% percentile-bootstrap CI over replicates (``estimate``; ``summarize`` does all of
them with one shared resampling).

Signatures of §5::

    suffix_failure_curve(actions[R, T], best[R]) -> float[T]      # SuffFailFreq(t) for all t
    k_min_frac(actions[R, T], K, t=None) -> float[R]              # K·MinFrac(t), t = T by default
    greedy_flags(actions[R, T], rewards[R, T], K) -> bool[R, T]
    cumulative_regret(actions[R, T], means[R, K]) -> float[R]
    summarize(traj) -> dict

plus ``realized_regret``, ``total_reward``, ``normalized_score`` (§5.2), ``early_failure`` (ECF and
abandon-after-one, §5.4), ``best_never_tried`` (§11), ``best_arm_share`` (§5.7), ``bimodality`` (§5.10),
``fit_regret_curve`` (§5.9) and ``ts_consistency`` (§5.11).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from scipy.optimize import curve_fit

from explore_bench.envs.bandits.vec import Prior, Stats, Trajectories, check_actions, check_means, check_rewards

__all__ = [
    "Estimate",
    "best_arm_share",
    "best_never_tried",
    "bimodality",
    "cumulative_regret",
    "early_failure",
    "estimate",
    "fit_regret_curve",
    "greedy_flags",
    "k_min_frac",
    "normalized_score",
    "posterior_best_probs",
    "realized_regret",
    "suffix_failure_curve",
    "summarize",
    "total_reward",
    "ts_consistency",
]

N_BOOT = 1000
CONFIDENCE = 0.95


# ---------------------------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------------------------
def _actions_2d(actions: np.ndarray, n_arms: int) -> np.ndarray:
    arr = np.asarray(actions)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"actions: expected shape (R, T) with T >= 1, got {arr.shape}")
    return check_actions(arr, n_arms)


def _check_k(n_arms: int) -> int:
    if int(n_arms) != n_arms or n_arms < 1:
        raise ValueError(f"K: expected a positive number of arms, got {n_arms}")
    return int(n_arms)


# ---------------------------------------------------------------------------------------------------------------
# Regret and reward (§5.1, §5.2)
# ---------------------------------------------------------------------------------------------------------------
def cumulative_regret(actions: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Pseudo-regret Σ_t (μ* − μ_{a_t}) of every replicate, float64[R]."""
    means = check_means(means)
    actions = _actions_2d(actions, means.shape[1])
    if actions.shape[0] != means.shape[0]:
        raise ValueError(f"actions: expected {means.shape[0]} replicates (as means), got {actions.shape[0]}")
    chosen = np.take_along_axis(means, actions, axis=1)
    return (means.max(axis=1, keepdims=True) - chosen).sum(axis=1)


def total_reward(traj: Trajectories) -> np.ndarray:
    """Σ_t r_t of every replicate, float64[R] (what RL² Table 1 reports)."""
    return traj.rewards.sum(axis=1)


def realized_regret(traj: Trajectories) -> np.ndarray:
    """T·μ* − Σ_t r_t of every replicate, float64[R] (noisier than the pseudo-regret)."""
    return traj.horizon * traj.means.max(axis=1) - total_reward(traj)


def normalized_score(regret: float, regret_random: float, regret_reference: float) -> float:
    """(R_random − R_alg) / (R_random − R_ref): 0 = random, 1 = the reference (Gittins-approx, or the Bayes-optimal
    DP when K = 2), RL² Fig. 2 convention. Takes mean regrets (or mean rewards with the signs of both flipped)."""
    if regret_random == regret_reference:
        raise ValueError("normalized_score: the reference must differ from random")
    return (regret_random - regret) / (regret_random - regret_reference)


# ---------------------------------------------------------------------------------------------------------------
# Suffix / early failures (§5.3, §5.4, §11)
# ---------------------------------------------------------------------------------------------------------------
def _last_best_pull(actions: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Round of the last pull of the best arm per replicate, −1 when never pulled. SuffFail(t) ⇔ last < t."""
    hits = actions == best[:, None]
    last = actions.shape[1] - 1 - np.argmax(hits[:, ::-1], axis=1)
    return np.where(hits.any(axis=1), last, -1)


def _best_1d(best: np.ndarray, n_rep: int) -> np.ndarray:
    arr = np.asarray(best)
    if arr.shape != (n_rep,):
        raise ValueError(f"best: expected shape ({n_rep},), got {arr.shape}")
    return check_actions(arr, np.iinfo(np.int64).max)


def suffix_failure_curve(actions: np.ndarray, best: np.ndarray) -> np.ndarray:
    """SuffFailFreq(t) for t = 0..T−1, float64[T]: fraction of replicates that pull the best arm in none of the
    rounds t..T−1 (non-decreasing in t)."""
    actions = _actions_2d(actions, np.iinfo(np.int64).max)
    n_rep, horizon = actions.shape
    last = _last_best_pull(actions, _best_1d(best, n_rep))
    # last < t  ⇔  last + 1 <= t: cumulative histogram of last + 1 over 0..T−1
    return np.cumsum(np.bincount(last + 1, minlength=horizon + 1)[:horizon]) / n_rep


def early_failure(traj: Trajectories, t0: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-replicate indicators (ECF(t0) = SuffFail(t0), default t0 = ⌊T/4⌋; abandon_after_one = the best arm was
    pulled exactly once in the whole run), each float64[R]."""
    t0 = traj.horizon // 4 if t0 is None else t0
    if not 0 <= t0 < traj.horizon:
        raise ValueError(f"t0: expected 0 <= t0 < T={traj.horizon}, got {t0}")
    best_pulls = (traj.actions == traj.best_arm[:, None]).sum(axis=1)
    return _suffix_fail(traj, t0), (best_pulls == 1).astype(np.float64)


def _suffix_fail(traj: Trajectories, t: int) -> np.ndarray:
    return (_last_best_pull(traj.actions, traj.best_arm) < t).astype(np.float64)


def best_never_tried(traj: Trajectories) -> np.ndarray:
    """Per-replicate indicator float64[R]: the best arm was never pulled (dominates SuffFail when K is large vs T)."""
    return (_last_best_pull(traj.actions, traj.best_arm) < 0).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Uniform-like failure and greediness (§5.5, §5.6)
# ---------------------------------------------------------------------------------------------------------------
def _pull_counts(actions: np.ndarray, n_arms: int) -> np.ndarray:
    """int64[R, K] pulls of each arm."""
    n_rep = actions.shape[0]
    offsets = np.arange(n_rep)[:, None] * n_arms
    return np.bincount((actions + offsets).ravel(), minlength=n_rep * n_arms).reshape(n_rep, n_arms)


def k_min_frac(actions: np.ndarray, K: int, t: int | None = None) -> np.ndarray:
    """K·MinFrac(t) = K·min_k N_t(k)/t per replicate, float64[R] (t = T by default): 1 ⇔ perfectly uniform play,
    0 ⇔ some arm never pulled in rounds 0..t−1."""
    n_arms = _check_k(K)
    actions = _actions_2d(actions, n_arms)
    t = actions.shape[1] if t is None else t
    if not 1 <= t <= actions.shape[1]:
        raise ValueError(f"t: expected 1 <= t <= T={actions.shape[1]}, got {t}")
    return n_arms * _pull_counts(actions[:, :t], n_arms).min(axis=1) / t


def _replay(actions: np.ndarray, rewards: np.ndarray, n_arms: int) -> Iterator[tuple[int, Stats]]:
    """(t, statistics of rounds 0..t−1) for t = 0..T−1; the same arrays are updated in place between yields."""
    stats = Stats.zeros(actions.shape[0], n_arms)
    for t in range(actions.shape[1]):
        yield t, stats
        stats.update(actions[:, t], rewards[:, t])


def greedy_flags(actions: np.ndarray, rewards: np.ndarray, K: int) -> np.ndarray:
    """bool[R, T]: round t is greedy iff N_t(a_t) > 0 and μ̂_t(a_t) = max over tried arms of μ̂_t (exact equality;
    IEEE division is correctly rounded, so equal empirical means compare equal). Rounds before any pull of a_t are
    non-greedy."""
    n_arms = _check_k(K)
    actions = _actions_2d(actions, n_arms)
    rewards = check_rewards(rewards, actions.shape)
    flags = np.zeros(actions.shape, dtype=bool)
    rows = np.arange(actions.shape[0])
    for t, (sums, counts) in _replay(actions, rewards, n_arms):
        tried = counts > 0
        mean = np.divide(sums, counts, out=np.full(sums.shape, -np.inf), where=tried)
        a = actions[:, t]
        flags[:, t] = tried[rows, a] & (mean[rows, a] == mean.max(axis=1))
    return flags


# ---------------------------------------------------------------------------------------------------------------
# Best-arm shares and bimodality (§5.7, §5.10)
# ---------------------------------------------------------------------------------------------------------------
def best_arm_share(traj: Trajectories, start: int = 0) -> np.ndarray:
    """Per-replicate share of rounds start..T−1 that pull the best arm, float64[R] (start = ⌊T/2⌋: late share)."""
    if not 0 <= start < traj.horizon:
        raise ValueError(f"start: expected 0 <= start < T={traj.horizon}, got {start}")
    return (traj.actions[:, start:] == traj.best_arm[:, None]).mean(axis=1)


def bimodality(traj: Trajectories, bins: int = 10) -> tuple[np.ndarray, float]:
    """(histogram of per-replicate BestArmFrac as fractions of replicates over ``bins`` equal bins of [0, 1],
    fraction of replicates with share < 0.1 or > 0.9)."""
    share = best_arm_share(traj)
    hist, _ = np.histogram(share, bins=bins, range=(0.0, 1.0))
    return hist / traj.n_replicates, float(_extreme_share(share).mean())


def _extreme_share(share: np.ndarray) -> np.ndarray:
    return ((share < 0.1) | (share > 0.9)).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Estimates with SE and bootstrap CI
# ---------------------------------------------------------------------------------------------------------------
class Estimate(NamedTuple):
    """A statistic over replicates with its standard error and 95% percentile-bootstrap CI."""

    value: float
    se: float
    ci_low: float
    ci_high: float


def _bootstrap_counts(n_rep: int, n_boot: int, seed: int) -> np.ndarray:
    """int64[n_boot, R]: how often each replicate appears in each resample (uniform resampling with replacement).
    Counts instead of index arrays let every statistic of a batch be evaluated with one matrix product."""
    idx = np.random.default_rng(seed).integers(0, n_rep, size=(n_boot, n_rep))
    flat = (idx + n_rep * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_rep).reshape(n_boot, n_rep)


def _weighted_median(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of every resample (as np.median: mean of the two middle order statistics), float64[n_boot]."""
    n_rep = values.shape[0]
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(counts[:, order], axis=1)
    lower = values[order][np.argmax(cum >= (n_rep + 1) // 2, axis=1)]
    upper = values[order][np.argmax(cum >= n_rep // 2 + 1, axis=1)]
    return (lower + upper) / 2


def _estimates(means: dict[str, np.ndarray], medians: dict[str, np.ndarray], n_boot: int,
               seed: int) -> dict[str, Estimate]:
    """Estimates of the mean of every array in ``means`` and the median of every array in ``medians`` (all
    float64[R]), from one shared set of bootstrap resamples. SE: std/√R for means, bootstrap std for medians."""
    arrays = [*means.values(), *medians.values()]
    n_rep = arrays[0].shape[0]
    counts = _bootstrap_counts(n_rep, n_boot, seed)
    q = 100 * np.array([(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    out: dict[str, Estimate] = {}
    if means:
        stacked = np.stack(list(means.values()), axis=1)  # [R, M]
        boot = counts @ stacked / n_rep
        lo, hi = np.percentile(boot, q, axis=0)
        se = stacked.std(axis=0, ddof=1) / np.sqrt(n_rep) if n_rep > 1 else np.full(len(means), np.nan)
        for j, name in enumerate(means):
            out[name] = Estimate(float(stacked[:, j].mean()), float(se[j]), float(lo[j]), float(hi[j]))
    for name, values in medians.items():
        boot = _weighted_median(values, counts)
        lo, hi = np.percentile(boot, q)
        out[name] = Estimate(float(np.median(values)), float(boot.std(ddof=1)), float(lo), float(hi))
    return out


def estimate(values: np.ndarray, statistic: str = "mean", n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean (or median) of per-replicate ``values`` float[R] with SE and a seeded 95% bootstrap CI."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"values: expected a non-empty finite 1-D array, got shape {arr.shape}")
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic: expected 'mean' or 'median', got {statistic!r}")
    split = ({"v": arr}, {}) if statistic == "mean" else ({}, {"v": arr})
    return _estimates(*split, n_boot=n_boot, seed=seed)["v"]


def _flatten(estimates: dict[str, Estimate], point_keys: dict[str, str]) -> dict[str, float]:
    """{point key: value, <name>_se, <name>_ci_low, <name>_ci_high} for every estimate."""
    out: dict[str, float] = {}
    for name, est in estimates.items():
        out[point_keys.get(name, name)] = est.value
        out[f"{name}_se"], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = est.se, est.ci_low, est.ci_high
    return out


# ---------------------------------------------------------------------------------------------------------------
# Summary of a run
# ---------------------------------------------------------------------------------------------------------------
# The spec's key names: amounts carry a "_mean" suffix, rates are named bare.
_POINT_KEYS = {"cum_regret": "cum_regret_mean", "realized_regret": "realized_regret_mean",
               "total_reward": "total_reward_mean"}


def summarize(traj: Trajectories, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, float]:
    """All scalar metrics of a run, each with ``<name>_se``, ``<name>_ci_low``, ``<name>_ci_high`` (the bootstrap
    uses ``n_boot`` resamples seeded by ``seed``).

    Keys: ``cum_regret_mean`` (pseudo-regret; also ``cum_regret_median``, without SE/CI), ``realized_regret_mean``,
    ``total_reward_mean``, ``median_avg_reward`` (median over replicates of the mean reward per round),
    ``suff_fail_half`` (SuffFail(⌊T/2⌋)), ``ecf_quarter`` (SuffFail(⌊T/4⌋)), ``abandon_after_one``,
    ``best_never_tried``, ``kminfrac`` (K·MinFrac(T)), ``greedy_frac``, ``best_arm_frac``, ``late_best_share``
    (best-arm share of rounds ≥ ⌊T/2⌋), ``frac_linear`` (late share < 0.5), ``bimodal_frac`` (BestArmFrac < 0.1
    or > 0.9); plus ``n_replicates``, ``horizon``, ``n_arms``.
    """
    horizon = traj.horizon
    ecf, abandon = early_failure(traj)
    late = best_arm_share(traj, horizon // 2)
    share = best_arm_share(traj)
    per_replicate = {
        "cum_regret": cumulative_regret(traj.actions, traj.means),
        "realized_regret": realized_regret(traj),
        "total_reward": total_reward(traj),
        "suff_fail_half": _suffix_fail(traj, horizon // 2),
        "ecf_quarter": ecf,
        "abandon_after_one": abandon,
        "best_never_tried": best_never_tried(traj),
        "kminfrac": k_min_frac(traj.actions, traj.n_arms),
        "greedy_frac": greedy_flags(traj.actions, traj.rewards, traj.n_arms).mean(axis=1),
        "best_arm_frac": share,
        "late_best_share": late,
        "frac_linear": (late < 0.5).astype(np.float64),
        "bimodal_frac": _extreme_share(share),
    }
    medians = {"median_avg_reward": traj.rewards.mean(axis=1)}
    out = _flatten(_estimates(per_replicate, medians, n_boot, seed), _POINT_KEYS)
    out.update(cum_regret_median=float(np.median(per_replicate["cum_regret"])), n_replicates=traj.n_replicates,
               horizon=horizon, n_arms=traj.n_arms)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Regret-curve fit (§5.9)
# ---------------------------------------------------------------------------------------------------------------
def _regret_model(horizon: np.ndarray, lambda1: float, alpha: float, beta: float, lambda2: float,
                  delta_min: float = 1.0) -> np.ndarray:
    return lambda1 * np.log(horizon) ** alpha / delta_min + beta * horizon + lambda2


def fit_regret_curve(horizons: np.ndarray, regrets: np.ndarray, delta_min: float = 1.0) -> dict[str, float]:
    """Least-squares fit of R(T) ≈ λ₁·(ln T)^α/Δ_min + β·T + λ₂ (EVOLvE) with α ∈ [0, 3], λ₁, β >= 0.

    Returns {"lambda1", "alpha", "beta", "lambda2"}; β ≈ 0 indicates sub-linear regret. Needs >= 4 horizons > 1.
    """
    x = np.asarray(horizons, dtype=np.float64)
    y = np.asarray(regrets, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 4:
        raise ValueError(f"fit_regret_curve: expected two 1-D arrays of the same length >= 4, got {x.shape}, {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and x.min() > 1 and delta_min > 0):
        raise ValueError("fit_regret_curve: expected finite values, horizons > 1 and delta_min > 0")
    params, _ = curve_fit(lambda h, l1, a, b, l2: _regret_model(h, l1, a, b, l2, delta_min), x, y,
                          p0=(1.0, 1.0, 0.0, 0.0), bounds=([0, 0, 0, -np.inf], [np.inf, 3, np.inf, np.inf]))
    return dict(zip(("lambda1", "alpha", "beta", "lambda2"), map(float, params)))


# ---------------------------------------------------------------------------------------------------------------
# TS-consistency (§5.11)
# ---------------------------------------------------------------------------------------------------------------
_GRID_CELLS_PER_CHUNK = 2_000_000


def posterior_best_probs(stats: Stats, prior: Prior, n_grid: int = 500) -> np.ndarray:
    """q(k) = P(arm k is best | history) float64[R, K] under ``prior``, by quadrature on a grid of n_grid cells:
    q_k = Σ_x w_k(x) Π_{j≠k} F_j(x), with w the normalised posterior mass per cell and F_j the mass below the
    cell plus half the cell's own (the continuous limit of a tie). n_grid = 500 keeps the error below 1e-3 in total
    variation for posteriors of up to 2000 pulls (checked against n_grid = 8000)."""
    logd = prior.grid_log_density(stats, n_grid)
    # float32 from here: 40% faster, and the result moves by ~1e-6
    w = np.exp((logd - logd.max(axis=-1, keepdims=True)).astype(np.float32))
    w /= w.sum(axis=-1, keepdims=True)
    below = np.cumsum(w, axis=-1) - w / 2
    prod_all = below.prod(axis=1, keepdims=True)
    # leave-one-out product Π_{j≠k}: divide out F_k; where F_k = 0 the cell carries no mass of arm k
    others = np.divide(prod_all, below, out=np.zeros_like(below), where=below > 0)
    q = (w * others).sum(axis=-1, dtype=np.float64)
    return q / q.sum(axis=1, keepdims=True)


def ts_consistency(traj: Trajectories, prior: Prior | None = None, n_grid: int = 500, eps: float = 1e-3,
                   n_boot: int = N_BOOT, seed: int = 0) -> dict[str, float]:
    """Pseudo-Thompson diagnostic: how closely the policy's choice probabilities π(·|h_t) (``traj.probs``, from
    ``run_policy(..., record_probs=True)``) track q_t = P(arm is best | h_t) under ``prior`` (default: Beta(1,1)
    for Bernoulli rewards, N(0,1) with sigma=1 for Gaussian ones).

    Returns ``ts_tv`` (mean over rounds of the total variation ½Σ|q_t − π_t|) and ``ts_kl`` (mean of
    KL(q_t ‖ π_t), π floored at ``eps`` and renormalised so one-hot policies give a finite value), each averaged
    over replicates with SE and CI keys as in ``summarize``. q_t is exact up to the quadrature (§5.11's reference
    used M=1000 Monte-Carlo draws for q_t, whose error it then measures).
    """
    if traj.probs is None:
        raise ValueError("ts_consistency: traj.probs is None; run the policy with record_probs=True")
    if not 0 < eps < 1:
        raise ValueError(f"eps: expected 0 < eps < 1, got {eps}")
    prior = Prior.for_rewards(traj.reward_type) if prior is None else prior
    tv = np.zeros(traj.n_replicates)
    kl = np.zeros(traj.n_replicates)
    chunk = max(1, _GRID_CELLS_PER_CHUNK // (traj.n_arms * n_grid))  # bounds the [chunk, K, n_grid] temporaries
    for lo in range(0, traj.n_replicates, chunk):
        sl = slice(lo, lo + chunk)
        for t, stats in _replay(traj.actions[sl], traj.rewards[sl], traj.n_arms):
            q = posterior_best_probs(stats, prior, n_grid)
            pi = traj.probs[sl, t]
            tv[sl] += 0.5 * np.abs(q - pi).sum(axis=1)
            pi_floor = np.maximum(pi, eps)
            pi_floor /= pi_floor.sum(axis=1, keepdims=True)
            kl[sl] += np.sum(q * (np.log(np.maximum(q, 1e-300)) - np.log(pi_floor)), axis=1)
    per_round = {"ts_tv": tv / traj.horizon, "ts_kl": kl / traj.horizon}
    return _flatten(_estimates(per_round, {}, n_boot, seed), {})
