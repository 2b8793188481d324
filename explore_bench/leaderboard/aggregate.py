"""Aggregate run folders into a leaderboard.

A results folder holds run folders at any depth; each is recognised by its ``summary.json`` (written by the
runner) and has a ``progress.csv`` next to it.  ``load_runs`` turns the summaries into one row per finished run,
``leaderboard`` turns those into one row per env x method (plus an across-env aggregate per method), and
``build_leaderboard`` writes ``leaderboard.csv``, ``leaderboard_aggregate.csv`` and the plots.  Scores normalised
per env family and compared across families (IQM / mean / median / optimality gap, P(X > Y), performance profiles)
live in ``normalize.py`` and ``stats.py``; ``report.build_plots`` (``explore-bench plot``) writes them.

Statistics follow rliable's recipe (rliable itself does not import with pandas 3): IQM = ``scipy.stats.trim_mean``
with 25% cut on each side, 95% percentile-bootstrap CIs from ``scipy.stats.bootstrap`` over seeds, and for the
across-env aggregate a *stratified* bootstrap (seeds resampled independently within each env).

Conventions (documented here because they change numbers):

* Failed (any status other than ``"finished"``) runs never enter a statistic; they are counted in ``n_failed``.
* Frames to threshold: the first logged ``frames`` whose ``success`` is >= the threshold (NaN never counts).
  The row reports the median over the seeds that reached it and ``reached`` = "k/n".  The median is conditional
  on reaching, so always read it together with ``reached``.
* Success AUC of one run: the success curve is taken as (0, 0) followed by the logged points (NaN success filled
  forward, leading NaN = 0), held at its last value up to the run's frame budget F = max(summary frames, last
  logged frames), integrated with the trapezoid rule and divided by F, so it lies in [0, 1].
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from explore_bench.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

__all__ = [
    "load_runs",
    "read_progress",
    "success_curve",
    "frames_to_threshold",
    "success_auc",
    "iqm",
    "bootstrap_ci",
    "stratified_bootstrap_ci",
    "leaderboard",
    "aggregate_leaderboard",
    "build_leaderboard",
    "write_csv_atomic",
]

FINAL_METRICS = ("success", "return", "coverage")
#: Final metrics only some envs report (``tv_fraction``: envs with a noisy TV; ``cells_visited``: the distinct cells
#: any step of the run occupied, on MiniGrid-like envs, for RL agents and policy-search explorers alike; the rest:
#: bandits' held-out evaluation at the horizon H and at 6H, ``runner.bandit``): mean and CI only, empty elsewhere.
OPTIONAL_FINAL_METRICS = ("tv_fraction", "regret", "normalized_score", "suff_fail_half", "kminfrac", "regret_6x",
                          "suff_fail_half_6x", "cells_visited")
#: progress.csv columns as the runner writes them (``runner.io.PROGRESS_COLUMNS``); files of an older runner lack
#: ``tv_fraction`` and still load.
PROGRESS_COLUMNS = (
    "frames", "episode_return", "success", "coverage", "intrinsic_mean", "intrinsic_std", "fps", "tv_fraction",
    "cells_visited",
)
REQUIRED_SUMMARY_KEYS = ("status", "env", "agent", "seed")
DEFAULT_N_BOOTSTRAP = 10_000
CONFIDENCE = 0.95

RUN_COLUMNS = [
    "env", "method", "agent", "bonus", "seed", "status", "frames", "wall_time_s",
    *(f"final_{m}" for m in (*FINAL_METRICS, *OPTIONAL_FINAL_METRICS)),
    "config_hash", "git_commit",
    "git_commits", "git_dirty", "versions", "run_dir", "final_metrics",
]


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
def method_name(agent: str, bonus: str | None) -> str:
    return str(agent) if bonus is None else f"{agent}+{bonus}"


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _read_summary(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"malformed summary file {path}: {e}") from e
    if not isinstance(s, dict):
        raise ValueError(f"malformed summary file {path}: expected a JSON object, got {type(s).__name__}")
    missing = [k for k in REQUIRED_SUMMARY_KEYS if k not in s]
    if missing:
        raise ValueError(f"malformed summary file {path}: missing key(s) {missing}")
    final = s.get("final") or {}
    if not isinstance(final, dict):
        raise ValueError(f"malformed summary file {path}: 'final' must be an object")
    if s["status"] == "finished" and not final:
        raise ValueError(f"malformed summary file {path}: finished run without 'final' metrics")
    try:
        seed = int(s["seed"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"malformed summary file {path}: seed {s['seed']!r} is not an integer") from e
    versions = s.get("versions")
    return {
        "env": str(s["env"]),
        "method": method_name(s["agent"], s.get("bonus")),
        "agent": str(s["agent"]),
        "bonus": s.get("bonus"),
        "seed": seed,
        "status": str(s["status"]),
        "frames": _float(s.get("frames")),
        "wall_time_s": _float(s.get("wall_time_s")),
        **{f"final_{m}": _float(final.get(m)) for m in (*FINAL_METRICS, *OPTIONAL_FINAL_METRICS)},
        "config_hash": s.get("config_hash"),
        "git_commit": s.get("git_commit"),
        "git_commits": _run_commits(s),
        "git_dirty": bool(s.get("git_dirty")),
        "versions": json.dumps(versions, sort_keys=True) if versions is not None else None,
        "run_dir": str(path.parent),
        "final_metrics": dict(final),  # every final metric (e.g. a bandit's regret), for normalize.py
    }


def _run_commits(summary: dict) -> list[str]:
    """Every commit that trained the run (``git_commits``; older summaries: ``[git_commit]``), "unknown" for none."""
    commits = summary.get("git_commits")
    if not isinstance(commits, list) or not commits:
        commits = [summary.get("git_commit")]
    return list(dict.fromkeys(str(c) if c else "unknown" for c in commits))


def _summaries(runs_dir: Path) -> list[Path]:
    """summary.json files under ``runs_dir``, leaving out hidden folders (``.stale/`` holds runs set aside)."""
    return sorted(p for p in runs_dir.rglob("summary.json")
                  if not any(part.startswith(".") for part in p.relative_to(runs_dir).parts[:-1]))


def load_runs(runs_dir: str | os.PathLike, include_failed: bool = False) -> pd.DataFrame:
    """One row per finished run found under ``runs_dir`` (any depth, recognised by ``summary.json``).

    Runs whose status is not ``"finished"`` are left out and reported: they are logged, and kept as a DataFrame
    in ``df.attrs["failed_runs"]`` (``leaderboard`` counts them per row).  With ``include_failed=True`` they are
    returned as ordinary rows instead (``leaderboard`` still never averages them in).
    A summary that is not valid JSON or lacks a required key raises ``ValueError`` naming the file.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"results folder {runs_dir} does not exist")
    rows = [_read_summary(p) for p in _summaries(runs_dir)]
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    df["seed"] = df["seed"].astype("int64")
    failed = df[df["status"] != "finished"].reset_index(drop=True)
    if len(failed):
        log.warning(
            "%d run(s) under %s did not finish and are excluded from all statistics: %s",
            len(failed), runs_dir,
            ", ".join(f"{r.env}/{r.method}/seed{r.seed} ({r.status})" for r in failed.itertuples()),
        )
    if include_failed:
        return df.reset_index(drop=True)
    out = df[df["status"] == "finished"].reset_index(drop=True)
    out.attrs["failed_runs"] = failed
    return out


def read_progress(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """The run's progress.csv sorted by frames, or None if the file is absent.  Every ``PROGRESS_COLUMNS`` column is
    there: one the file lacks (``tv_fraction`` in a file of an older runner) is all NaN."""
    path = Path(run_dir) / "progress.csv"
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in PROGRESS_COLUMNS})
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"malformed progress file {path}: {e}") from e
    for col in ("frames", "success"):
        if col not in df.columns:
            raise ValueError(f"malformed progress file {path}: missing column {col!r}")
    for col in df.columns:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in PROGRESS_COLUMNS:
        if col not in df.columns:
            df[col] = np.nan
    df = df.dropna(subset=["frames"]).sort_values("frames", kind="stable").reset_index(drop=True)
    return df


# --------------------------------------------------------------------------------------------------------------
# Per-run curve metrics
# --------------------------------------------------------------------------------------------------------------
def success_curve(progress: pd.DataFrame, total_frames: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, success) of one run: starts at (0, 0), NaN filled forward (leading NaN = 0), and held at its
    last value up to ``total_frames`` if that is beyond the last logged point."""
    x = progress["frames"].to_numpy(dtype=float)
    y = progress["success"].ffill().fillna(0.0).to_numpy(dtype=float)
    if len(x) == 0 or x[0] > 0:
        x = np.concatenate([[0.0], x])
        y = np.concatenate([[0.0], y])
    if total_frames is not None and np.isfinite(total_frames) and total_frames > x[-1]:
        x = np.append(x, float(total_frames))
        y = np.append(y, y[-1])
    return x, y


def frames_to_threshold(progress: pd.DataFrame | None, threshold: float) -> float:
    """First logged frames with success >= threshold; NaN if never reached (or no progress file)."""
    if progress is None or progress.empty:
        return float("nan")
    hit = progress["success"].to_numpy(dtype=float) >= threshold  # NaN >= t is False
    if not hit.any():
        return float("nan")
    return float(progress["frames"].to_numpy(dtype=float)[np.argmax(hit)])


def success_auc(progress: pd.DataFrame | None, total_frames: float | None = None) -> float:
    """Area under the success curve over [0, F], divided by F (F = max(total_frames, last logged frames))."""
    if progress is None or progress.empty:
        return float("nan")
    x, y = success_curve(progress, total_frames)
    if x[-1] <= 0:
        return float("nan")
    return float(np.trapezoid(y, x) / x[-1])


# --------------------------------------------------------------------------------------------------------------
# Statistics (all via scipy)
# --------------------------------------------------------------------------------------------------------------
def iqm(x, axis=-1):
    """Interquartile mean: scipy's trim_mean cutting 25% at each end (as rliable does)."""
    return stats.trim_mean(x, 0.25, axis=axis)


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


STATISTICS: dict[str, Callable] = {"mean": _mean, "iqm": iqm}
OPTIONAL_STATISTICS: dict[str, Callable] = {"mean": _mean}  # of OPTIONAL_FINAL_METRICS


def bootstrap_ci(values, statistic: Callable, n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
                 rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of ``statistic`` over seeds; (NaN, NaN) with fewer than 2 values.

    Percentile (not BCa) as in rliable: BCa is undefined for degenerate samples (e.g. every seed at success 1),
    which are common here."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    res = stats.bootstrap((v,), statistic, n_resamples=n_bootstrap, vectorized=True, axis=-1,
                          confidence_level=CONFIDENCE, method="percentile", rng=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def stratified_bootstrap_ci(samples: Sequence, statistic: Callable, n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
                            rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """Stratified bootstrap CI: one sample per env (its seeds), resampled independently within each env.

    scipy.stats.bootstrap does this natively: with several samples and ``paired=False`` it resamples each sample
    independently, and the statistic receives the per-env resamples, which we pool (concatenate, as rliable
    flattens its runs x tasks matrix) before applying ``statistic``.  (NaN, NaN) if any env has < 2 seeds."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    samples = [s[np.isfinite(s)] for s in samples]
    if not samples or any(len(s) < 2 for s in samples):
        return float("nan"), float("nan")

    def pooled(*xs, axis=-1):
        return statistic(np.concatenate(xs, axis=axis), axis=axis)

    res = stats.bootstrap(tuple(samples), pooled, n_resamples=n_bootstrap, vectorized=True, axis=-1,
                          paired=False, confidence_level=CONFIDENCE, method="percentile", rng=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --------------------------------------------------------------------------------------------------------------
# Leaderboard
# --------------------------------------------------------------------------------------------------------------
def _mixed(group: pd.DataFrame) -> str:
    """Names of the provenance fields that differ across the runs of one row ('' if none)."""
    parts = []
    for col in ("config_hash", "git_commit", "versions"):
        vals = group[col].astype(object).where(group[col].notna(), "<none>")
        n = vals.nunique()
        if n > 1:
            parts.append(f"{col}({n} values)")
    return "; ".join(parts)


def _split_failed(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    if "status" in runs.columns:
        finished = runs[runs["status"] == "finished"]
        failed = runs[runs["status"] != "finished"]
    else:
        finished, failed = runs, runs.iloc[0:0]
    extra = runs.attrs.get("failed_runs")
    if extra is not None and len(extra):
        failed = pd.concat([failed, extra], ignore_index=True) if len(failed) else extra
    return finished.reset_index(drop=True), failed.reset_index(drop=True)


def leaderboard(runs: pd.DataFrame, success_threshold: float = 0.9, n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
                seed: int = 0) -> pd.DataFrame:
    """One row per env x method.  See the module docstring for the conventions.

    Columns: env, method, agent, bonus, n_seeds, seeds, n_failed, then for each m in success/return/coverage:
    m_mean, m_mean_ci_low, m_mean_ci_high, m_iqm, m_iqm_ci_low, m_iqm_ci_high; then frames_to_threshold
    (median over the seeds that reached it), n_reached, reached ("k/n"), success_auc (mean over seeds),
    success_auc_ci_low/high, tv_fraction_mean and tv_fraction_mean_ci_low/high (the final fraction of steps that
    pressed a noisy TV, mean over seeds with its bootstrap CI; NaN for envs without a TV), wall_time_s_mean,
    git_commits (the distinct commits that trained the row's finished runs), mixed_code (True when those runs were
    made by different commits, or any by a dirty tree), mixed ('' or what differs: config_hash / git_commit /
    versions), notes.  The across-env aggregate is in ``df.attrs["aggregate"]`` (see ``aggregate_leaderboard``).
    """
    finished, failed = _split_failed(runs)
    rng = np.random.default_rng(seed)
    keys = ["env", "method"]
    groups = {k: g for k, g in finished.groupby(keys, sort=True)} if len(finished) else {}
    failed_counts = failed.groupby(keys).size().to_dict() if len(failed) else {}
    all_keys = sorted(set(groups) | set(failed_counts))

    rows = []
    for key in all_keys:
        env, method = key
        g = groups.get(key, finished.iloc[0:0]).sort_values("seed")
        n_failed = int(failed_counts.get(key, 0))
        notes = []
        src = g if len(g) else failed[(failed["env"] == env) & (failed["method"] == method)]
        row = {
            "env": env, "method": method,
            "agent": src["agent"].iloc[0], "bonus": src["bonus"].iloc[0],
            "n_seeds": len(g), "seeds": [int(s) for s in g["seed"]], "n_failed": n_failed,
        }
        if n_failed:
            notes.append(f"{n_failed} failed run(s) excluded")
        if len(g) == 0:
            notes.append("no finished runs")
        elif len(g) < 2:
            notes.append("fewer than 2 seeds: no CI")
        dup = g["seed"][g["seed"].duplicated()].unique()
        if len(dup):
            notes.append(f"duplicate seed(s) {sorted(int(s) for s in dup)}")

        for m in FINAL_METRICS:
            finite, n_missing = _finite_finals(g, m)
            if n_missing:
                notes.append(f"{n_missing} run(s) without final {m}")
            row.update(_seed_statistics(m, finite, STATISTICS, n_bootstrap, rng))

        ftt, aucs = [], []
        n_no_progress = 0
        for r in g.itertuples():
            prog = read_progress(r.run_dir)
            if prog is None:
                n_no_progress += 1
            ftt.append(frames_to_threshold(prog, success_threshold))
            aucs.append(success_auc(prog, r.frames))
        if n_no_progress:
            notes.append(f"{n_no_progress} run(s) without progress.csv")
        ftt = np.asarray(ftt, dtype=float)
        reached = ftt[np.isfinite(ftt)]
        row["frames_to_threshold"] = float(np.median(reached)) if len(reached) else float("nan")
        row["n_reached"] = len(reached)
        row["reached"] = f"{len(reached)}/{len(g)}"
        aucs = np.asarray(aucs, dtype=float)
        aucs_f = aucs[np.isfinite(aucs)]
        row["success_auc"] = float(np.mean(aucs_f)) if len(aucs_f) else float("nan")
        row["success_auc_ci_low"], row["success_auc_ci_high"] = bootstrap_ci(aucs_f, _mean, n_bootstrap, rng)
        for m in OPTIONAL_FINAL_METRICS:  # last, so the CIs above keep the resamples they drew before it existed
            finite, n_missing = _finite_finals(g, m)
            if len(finite) and n_missing:
                notes.append(f"{n_missing} run(s) without final {m}")
            row.update(_seed_statistics(m, finite, OPTIONAL_STATISTICS, n_bootstrap, rng))
        wt = g["wall_time_s"].to_numpy(dtype=float)
        row["wall_time_s_mean"] = float(np.nanmean(wt)) if np.isfinite(wt).any() else float("nan")
        commits = sorted({c for cs in g["git_commits"] for c in cs}) if len(g) else []
        row["git_commits"] = commits
        row["mixed_code"] = bool(len(commits) > 1 or g["git_dirty"].astype(bool).any()) if len(g) else False
        if row["mixed_code"]:
            notes.append("runs made by different code (commits: " + ", ".join(c[:8] for c in commits)
                         + (", dirty tree" if g["git_dirty"].astype(bool).any() else "") + ")")
        row["mixed"] = _mixed(g) if len(g) else ""
        if row["mixed"]:
            log.warning("leaderboard row %s/%s mixes runs with different %s", env, method, row["mixed"])
        row["notes"] = "; ".join(notes)
        rows.append(row)

    df = pd.DataFrame(rows, columns=_leaderboard_columns())
    df.attrs["success_threshold"] = success_threshold
    df.attrs["aggregate"] = aggregate_leaderboard(finished, n_bootstrap=n_bootstrap, seed=seed)
    return df


def _finite_finals(runs: pd.DataFrame, metric: str) -> tuple[np.ndarray, int]:
    """The finite ``final_<metric>`` values of ``runs`` and how many runs lack one."""
    v = runs[f"final_{metric}"].to_numpy(dtype=float)
    finite = v[np.isfinite(v)]
    return finite, len(v) - len(finite)


def _seed_statistics(metric: str, values: np.ndarray, statistics: Mapping[str, Callable], n_bootstrap: int,
                     rng: np.random.Generator) -> dict[str, float]:
    """``<metric>_<stat>`` and its bootstrap CI (``_ci_low`` / ``_ci_high``) over seeds for each of ``statistics``;
    NaN where there are no values (the CI: fewer than 2)."""
    out = {}
    for sname, fn in statistics.items():
        out[f"{metric}_{sname}"] = float(fn(values)) if len(values) else float("nan")
        out[f"{metric}_{sname}_ci_low"], out[f"{metric}_{sname}_ci_high"] = bootstrap_ci(values, fn, n_bootstrap, rng)
    return out


def _statistic_columns(metrics: Sequence[str], statistics: Mapping[str, Callable]) -> list[str]:
    """``<m>_<stat>``, ``<m>_<stat>_ci_low``, ``<m>_<stat>_ci_high`` for every metric and statistic."""
    return [f"{m}_{s}{suffix}" for m in metrics for s in statistics for suffix in ("", "_ci_low", "_ci_high")]


def _leaderboard_columns() -> list[str]:
    return ["env", "method", "agent", "bonus", "n_seeds", "seeds", "n_failed",
            *_statistic_columns(FINAL_METRICS, STATISTICS),
            "frames_to_threshold", "n_reached", "reached", "success_auc", "success_auc_ci_low", "success_auc_ci_high",
            *_statistic_columns(OPTIONAL_FINAL_METRICS, OPTIONAL_STATISTICS),
            "wall_time_s_mean", "git_commits", "mixed_code", "mixed", "notes"]


AGGREGATE_METRICS = ("success", "coverage")  # bounded in [0, 1]; raw returns are not comparable across envs


def aggregate_leaderboard(runs: pd.DataFrame, n_bootstrap: int = DEFAULT_N_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """One row per method, pooled over the envs it was run on: IQM and mean of final success and coverage with
    stratified-bootstrap 95% CIs.  Returns are left out (not on a common scale across envs).  Envs are pooled
    as rliable does (all runs concatenated), so an env with more seeds weighs more; ``missing_envs`` names the
    envs other methods have and this one lacks (aggregates over different env sets are not comparable)."""
    finished, _ = _split_failed(runs)
    rng = np.random.default_rng(seed)
    all_envs = sorted(finished["env"].unique()) if len(finished) else []
    rows = []
    for method, g in (finished.groupby("method", sort=True) if len(finished) else []):
        envs = sorted(g["env"].unique())
        per_env = {e: ge for e, ge in g.groupby("env", sort=True)}
        row = {"method": method, "n_envs": len(envs), "envs": envs, "n_runs": len(g),
               "missing_envs": [e for e in all_envs if e not in envs]}
        notes = []
        small = [e for e, ge in per_env.items() if len(ge) < 2]
        if small:
            notes.append(f"env(s) with fewer than 2 seeds, no CI: {small}")
        if len({len(ge) for ge in per_env.values()}) > 1:
            notes.append("unequal seed counts across envs (pooled: envs with more seeds weigh more)")
        for m in AGGREGATE_METRICS:
            samples = [ge[f"final_{m}"].to_numpy(dtype=float) for ge in per_env.values()]
            samples = [s[np.isfinite(s)] for s in samples]
            pooled = np.concatenate(samples) if samples else np.array([])
            for sname, fn in STATISTICS.items():
                row[f"{m}_{sname}"] = float(fn(pooled)) if len(pooled) else float("nan")
                nonempty = [s for s in samples if len(s)]
                lo, hi = stratified_bootstrap_ci(nonempty, fn, n_bootstrap, rng)
                row[f"{m}_{sname}_ci_low"], row[f"{m}_{sname}_ci_high"] = lo, hi
        mixed = sorted({f"{e}: {_mixed(ge)}" for e, ge in per_env.items() if _mixed(ge)})
        row["mixed"] = "; ".join(mixed)
        row["notes"] = "; ".join(notes)
        rows.append(row)
    cols = ["method", "n_envs", "envs", "n_runs", "missing_envs", *_statistic_columns(AGGREGATE_METRICS, STATISTICS),
            "mixed", "notes"]
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------
def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` as CSV atomically."""
    return atomic_write_bytes(path, df.to_csv(index=False).encode("utf-8"))


def build_leaderboard(runs_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      success_threshold: float = 0.9, n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
                      plots: bool = True) -> pd.DataFrame:
    """Load the runs under ``runs_dir`` and write ``leaderboard.csv``, ``leaderboard_aggregate.csv`` and (with
    ``plots``) ``curves_<env>.png`` and ``aggregate.png`` into ``out_dir`` (default ``runs_dir``).  Returns the
    leaderboard; the aggregate is in ``.attrs["aggregate"]``."""
    runs_dir = Path(runs_dir)
    out_dir = Path(out_dir) if out_dir is not None else runs_dir
    runs = load_runs(runs_dir, include_failed=True)
    if runs.empty:
        raise ValueError(f"no run folders (summary.json) found under {runs_dir}")
    board = leaderboard(runs, success_threshold=success_threshold, n_bootstrap=n_bootstrap)
    agg = board.attrs["aggregate"]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(board, out_dir / "leaderboard.csv")
    write_csv_atomic(agg, out_dir / "leaderboard_aggregate.csv")
    if plots:
        from .plots import plot_aggregate, plot_bandit_metrics, plot_learning_curves, plot_return_curves

        finished = runs[runs["status"] == "finished"].reset_index(drop=True)
        plot_learning_curves(finished, out_dir, success_threshold=success_threshold)
        plot_return_curves(finished, out_dir)
        plot_bandit_metrics(finished, out_dir)
        plot_aggregate(agg, out_dir)
    return board
