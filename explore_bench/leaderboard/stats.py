"""Aggregate statistics across envs, as in Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical
Precipice"), with ``scipy.stats.bootstrap`` doing all the resampling (rliable does not import with pandas 3).

Input: normalised scores (``normalize.py``) as ``{method: {env: scores over seeds}}`` (``score_dict``).

* Aggregate estimates of one method over its envs: **IQM** (``scipy.stats.trim_mean`` cutting 25% at each end,
  of all runs pooled, as rliable), **mean** (mean over envs of the per-env mean), **median** (median over envs of
  the per-env mean) and **optimality gap** ``gamma - mean over envs of mean(min(score, gamma))`` with gamma = 1
  (lower is better).  With equal seed counts per env these equal rliable's ``aggregate_*`` functions exactly;
  with unequal counts mean/median/gap weigh every env equally while the pooled IQM weighs runs equally.
* **Probability of improvement** P(X > Y): per env the Mann-Whitney statistic ``U / (n m)`` = P(x > y) + P(x = y)/2
  over all seed pairs, averaged over the envs both methods ran.
* **Performance profile**: for each tau of a grid, the fraction of runs with score > tau (per env, averaged
  over envs).

95% CIs are percentile stratified-bootstrap intervals (rliable's default): ``scipy.stats.bootstrap`` with one
sample per env (per env and method for P(X > Y)) and ``paired=False``, which resamples the seeds of each sample
independently, i.e. within each env.  A CI is NaN when some env has fewer than 2 seeds (nothing to resample).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .aggregate import CONFIDENCE, DEFAULT_N_BOOTSTRAP

__all__ = [
    "ESTIMATES",
    "GAMMA",
    "score_dict",
    "iqm",
    "aggregate_mean",
    "aggregate_median",
    "optimality_gap",
    "aggregate_estimates",
    "stratified_bootstrap",
    "aggregate_scores",
    "probability_of_improvement",
    "probability_of_improvement_table",
    "performance_profile",
    "performance_profiles",
    "default_taus",
]

GAMMA = 1.0
ScoreDict = Mapping[str, Mapping[str, np.ndarray]]
Rng = np.random.Generator | int | None


def score_dict(scored_runs: pd.DataFrame, column: str = "score") -> dict[str, dict[str, np.ndarray]]:
    """``{method: {env: finite scores sorted by seed}}`` from ``normalize.add_normalized_scores`` output."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for (method, env), g in scored_runs.sort_values("seed").groupby(["method", "env"], sort=True):
        v = g[column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if len(v):
            out.setdefault(str(method), {})[str(env)] = v
    return out


# --------------------------------------------------------------------------------------------------------------
# Aggregate estimates of one method.  Each takes one array per env (seeds on ``axis``, any leading batch dims,
# as scipy.stats.bootstrap passes them with vectorized=True) and returns one value per batch element.
# --------------------------------------------------------------------------------------------------------------
def iqm(*per_env: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean of all runs pooled: ``scipy.stats.trim_mean(pooled, 0.25)``."""
    return stats.trim_mean(np.concatenate(per_env, axis=axis), 0.25, axis=axis)


def _env_means(per_env: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """Per-env means stacked on a new leading axis: shape (n_envs, *batch)."""
    return np.stack([np.mean(x, axis=axis) for x in per_env], axis=0)


def aggregate_mean(*per_env: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over envs of the per-env mean score."""
    return np.mean(_env_means(per_env, axis), axis=0)


def aggregate_median(*per_env: np.ndarray, axis: int = -1) -> np.ndarray:
    """Median over envs of the per-env mean score."""
    return np.median(_env_means(per_env, axis), axis=0)


def optimality_gap(*per_env: np.ndarray, axis: int = -1, gamma: float = GAMMA) -> np.ndarray:
    """``gamma`` minus the mean over envs of mean(min(score, gamma)): how far below ``gamma`` on average."""
    return gamma - aggregate_mean(*(np.minimum(x, gamma) for x in per_env), axis=axis)


ESTIMATES: dict[str, Callable[..., np.ndarray]] = {
    "iqm": iqm, "mean": aggregate_mean, "median": aggregate_median, "optimality_gap": optimality_gap,
}


def aggregate_estimates(*per_env: np.ndarray, axis: int = -1) -> np.ndarray:
    """All of ``ESTIMATES`` at once, stacked on a leading axis (multi-output statistic for one bootstrap)."""
    return np.stack([fn(*per_env, axis=axis) for fn in ESTIMATES.values()], axis=0)


# --------------------------------------------------------------------------------------------------------------
# Stratified bootstrap
# --------------------------------------------------------------------------------------------------------------
def stratified_bootstrap(samples: Sequence[np.ndarray], statistic: Callable[..., np.ndarray],
                         n_bootstrap: int = DEFAULT_N_BOOTSTRAP, rng: Rng = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile CI of ``statistic(*samples, axis=-1)``, each sample resampled independently (stratified).

    ``statistic`` may return several values (then low and high are arrays of that shape).  Returns NaNs (of the
    statistic's shape) if any sample has fewer than 2 values."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    if not samples or any(len(s) < 2 for s in samples):
        shape = np.shape(statistic(*samples, axis=-1)) if samples and all(len(s) for s in samples) else ()
        nan = np.full(shape, np.nan)
        return nan, nan.copy()
    res = stats.bootstrap(tuple(samples), statistic, n_resamples=n_bootstrap, vectorized=True, axis=-1,
                          paired=False, confidence_level=CONFIDENCE, method="percentile", rng=rng)
    return np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)


def aggregate_scores(scores: ScoreDict, n_bootstrap: int = DEFAULT_N_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """One row per method: n_envs, envs, n_runs, missing_envs, then for each of iqm, mean, median,
    optimality_gap the estimate and its stratified-bootstrap 95% CI (``<name>_ci_low``, ``<name>_ci_high``),
    and notes.  Aggregates over different env sets (``missing_envs``) are not comparable."""
    rng = np.random.default_rng(seed)
    all_envs = sorted({e for per_env in scores.values() for e in per_env})
    rows = []
    for method in sorted(scores):
        envs = sorted(scores[method])
        samples = [scores[method][e] for e in envs]
        row: dict[str, object] = {"method": method, "n_envs": len(envs), "envs": envs,
                                  "n_runs": int(sum(len(s) for s in samples)),
                                  "missing_envs": [e for e in all_envs if e not in envs]}
        point = aggregate_estimates(*samples)
        low, high = stratified_bootstrap(samples, aggregate_estimates, n_bootstrap, rng)
        for i, name in enumerate(ESTIMATES):
            row[name] = float(point[i])
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = float(low[i]), float(high[i])
        small = [e for e, s in zip(envs, samples) if len(s) < 2]
        row["notes"] = f"env(s) with fewer than 2 seeds, no CI: {small}" if small else ""
        rows.append(row)
    cols = ["method", "n_envs", "envs", "n_runs", "missing_envs"]
    cols += [f"{n}{suffix}" for n in ESTIMATES for suffix in ("", "_ci_low", "_ci_high")] + ["notes"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------------------------------------------
# Probability of improvement
# --------------------------------------------------------------------------------------------------------------
def _p_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(x > y) + P(x = y)/2 over all pairs (Mann-Whitney U / (n m)), along the last axis, batched."""
    diff = x[..., :, None] - y[..., None, :]
    return np.mean(diff > 0, axis=(-2, -1)) + 0.5 * np.mean(diff == 0, axis=(-2, -1))


def _poi_statistic(*xy: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over envs of P(X_env > Y_env); ``xy`` = (x_env1, y_env1, x_env2, y_env2, ...)."""
    xy = tuple(np.moveaxis(a, axis, -1) for a in xy)
    return np.mean([_p_greater(xy[i], xy[i + 1]) for i in range(0, len(xy), 2)], axis=0)


def probability_of_improvement(x: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray],
                               n_bootstrap: int = DEFAULT_N_BOOTSTRAP, rng: Rng = 0) -> tuple[float, float, float]:
    """(P(X > Y), CI low, CI high) over the envs both ``x`` and ``y`` ({env: scores}) have; NaNs if none."""
    envs = sorted(set(x) & set(y))
    if not envs:
        return float("nan"), float("nan"), float("nan")
    samples = [np.asarray(s, dtype=float) for e in envs for s in (x[e], y[e])]
    point = float(_poi_statistic(*samples))
    low, high = stratified_bootstrap(samples, _poi_statistic, n_bootstrap, rng)
    return point, float(low), float(high)


def probability_of_improvement_table(scores: ScoreDict, n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
                                     seed: int = 0) -> pd.DataFrame:
    """One row per ordered pair of distinct methods: method_x, method_y, n_envs (common envs), p = P(X > Y),
    p_ci_low, p_ci_high."""
    rng = np.random.default_rng(seed)
    methods = sorted(scores)
    rows = []
    for mx in methods:
        for my in methods:
            if mx == my:
                continue
            p, lo, hi = probability_of_improvement(scores[mx], scores[my], n_bootstrap, rng)
            rows.append({"method_x": mx, "method_y": my, "n_envs": len(set(scores[mx]) & set(scores[my])),
                         "p": p, "p_ci_low": lo, "p_ci_high": hi})
    return pd.DataFrame(rows, columns=["method_x", "method_y", "n_envs", "p", "p_ci_low", "p_ci_high"])


# --------------------------------------------------------------------------------------------------------------
# Performance profiles
# --------------------------------------------------------------------------------------------------------------
def default_taus(scores: ScoreDict, n: int = 101) -> np.ndarray:
    """``n`` thresholds from min(0, lowest score) to max(1, highest score)."""
    values = np.concatenate([np.ravel(s) for per_env in scores.values() for s in per_env.values()] or [[0.0]])
    return np.linspace(min(0.0, float(values.min())), max(1.0, float(values.max())), n)


def performance_profile(per_env: Mapping[str, np.ndarray], taus: np.ndarray,
                        n_bootstrap: int = DEFAULT_N_BOOTSTRAP, rng: Rng = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fraction of runs with score > tau for each tau, CI low, CI high), per-env fractions averaged over envs."""
    taus = np.asarray(taus, dtype=float)

    def profile(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        fractions = [np.mean(np.moveaxis(x, axis, -1)[..., :, None] > taus, axis=-2) for x in xs]
        return np.moveaxis(np.mean(fractions, axis=0), -1, 0)  # (n_taus, *batch)

    samples = [np.asarray(per_env[e], dtype=float) for e in sorted(per_env)]
    low, high = stratified_bootstrap(samples, profile, n_bootstrap, rng)
    return profile(*samples), low, high


def performance_profiles(scores: ScoreDict, taus: np.ndarray | None = None,
                         n_bootstrap: int = DEFAULT_N_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """Long table: method, tau, fraction (of runs with score > tau), fraction_ci_low, fraction_ci_high."""
    rng = np.random.default_rng(seed)
    taus = default_taus(scores) if taus is None else np.asarray(taus, dtype=float)
    frames = []
    for method in sorted(scores):
        frac, low, high = performance_profile(scores[method], taus, n_bootstrap, rng)
        frames.append(pd.DataFrame({"method": method, "tau": taus, "fraction": frac,
                                    "fraction_ci_low": low, "fraction_ci_high": high}))
    cols = ["method", "tau", "fraction", "fraction_ci_low", "fraction_ci_high"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
