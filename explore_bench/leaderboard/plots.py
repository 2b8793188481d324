"""Leaderboard plots: learning curves per env, the aggregate IQM bar chart, and the normalised-score statistics
of ``stats.py`` (aggregate IQM/mean/median/optimality-gap bars, performance profiles, probability-of-improvement
matrix).

Uses matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), not pyplot, so no global backend is switched
and nothing needs a display.  Files (PNG, and SVG where asked) are written atomically (temp file in the same folder,
then os.replace).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from explore_bench.atomic import atomic_write_bytes

from .aggregate import CONFIDENCE, read_progress, success_curve

__all__ = [
    "curve_bands",
    "learning_curves",
    "plot_curves",
    "plot_learning_curves",
    "plot_return_curves",
    "plot_cells_visited",
    "plot_bandit_metrics",
    "return_curves",
    "plot_aggregate",
    "env_filename",
    "plot_aggregate_scores",
    "plot_performance_profiles",
    "plot_probability_of_improvement",
]

N_GRID = 200
#: ``{env: {method: [(frames, success) of each seed with progress data]}}`` (``learning_curves``).
Curves = dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]


def env_filename(env: str) -> str:
    """``curves_<env>.png`` with characters unsafe in file names (e.g. the '/' of 'ALE/Pong-v5') replaced."""
    return f"curves_{re.sub(r'[^A-Za-z0-9._-]+', '_', env)}.png"


def _save_atomic(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically, in the format its suffix names (png, svg, ...)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fmt = path.suffix.lstrip(".") or "png"
    # No timestamps, fixed SVG ids: the same runs give the same bytes, so a rebuilt table shows no spurious diff.
    metadata = {"Date": None} if fmt in ("svg", "pdf") else {"Software": None} if fmt == "png" else None
    with matplotlib.rc_context({"svg.hashsalt": "explore_bench"}):
        fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)
    return atomic_write_bytes(path, buffer.getvalue())


def _save_formats(fig: Figure, path: Path, formats: Sequence[str]) -> list[Path]:
    """``path`` with each of ``formats`` as suffix, e.g. ``x.png`` and ``x.svg``."""
    return [_save_atomic(fig, path.with_suffix(f".{fmt}")) for fmt in formats]


def curve_bands(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray,
                bounds: tuple[float, float] | None = (0.0, 1.0)):
    """Mean over seeds on ``grid`` with a 95% t-interval band per grid point.

    Each seed's curve is linearly interpolated onto the grid; grid points past a seed's last logged frame are
    dropped for all seeds (the band only covers frames every seed reached, so the mean never changes which
    seeds it averages).  Returns (grid, mean, low, high); low/high are NaN where there are fewer than 2 seeds,
    and clipped to ``bounds`` (a success rate's [0, 1] by default; None for returns)."""
    end = min(x[-1] for x, _ in curves)
    grid = grid[grid <= end]
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])  # (n_seeds, n_grid)
    mean = ys.mean(axis=0)
    n = ys.shape[0]
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return grid, mean, nan, nan
    sem = stats.sem(ys, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=sem)
    # zero spread (all seeds equal) gives scale 0 -> NaN from scipy; the band is then the mean itself
    low = np.where(sem > 0, low, mean)
    high = np.where(sem > 0, high, mean)
    if bounds is None:
        return grid, mean, low, high
    return grid, mean, np.clip(low, *bounds), np.clip(high, *bounds)


def learning_curves(runs: pd.DataFrame) -> Curves:
    """The success curve (``success_curve``) of every finished run in ``runs`` (``load_runs`` output) that has
    progress data, by env and method.  Every env of ``runs`` is a key; methods without progress data are not."""
    return _curves(runs, "success", lambda prog, frames: success_curve(prog, frames))


def return_curves(runs: pd.DataFrame) -> Curves:
    """The logged mean episode return against frames of every finished run in ``runs`` that has progress data but
    no success data (Atari games, bandits), by env and method; envs where some run reports success are left out
    (their success curves say more)."""
    with_success = {env for env, per_method in learning_curves(runs).items() if per_method}
    curves = _curves(runs[~runs["env"].isin(with_success)], "episode_return", _logged("episode_return"))
    return {env: per_method for env, per_method in curves.items() if per_method}


def _logged(column: str):
    """A run's curve of a progress column as logged (gaps carried forward) against frames."""
    return lambda prog, frames: (prog["frames"].to_numpy(float), prog[column].ffill().fillna(0).to_numpy(float))


def _curves(runs: pd.DataFrame, column: str, curve) -> Curves:
    if "status" in runs.columns:
        runs = runs[runs["status"] == "finished"]
    out: Curves = {}
    for env, ge in runs.groupby("env", sort=True):
        per_method = out.setdefault(str(env), {})
        for method, gm in ge.groupby("method", sort=True):
            curves = []
            for r in gm.itertuples():
                prog = read_progress(r.run_dir)
                if prog is None or prog.empty or prog[column].isna().all():  # e.g. Atari games report no success
                    continue
                curves.append(curve(prog, r.frames))
            if curves:
                per_method[str(method)] = curves
    return out


def plot_learning_curves(runs: pd.DataFrame, out_dir: str | os.PathLike, success_threshold: float | None = None,
                         n_grid: int = N_GRID, formats: Sequence[str] = ("png",)) -> list[Path]:
    """One ``curves_<env>.png`` (and one file per other of ``formats``) per env: success vs frames, one line per
    method (mean over seeds) with a 95% t-interval band.  ``runs`` is ``load_runs`` output (finished runs).
    Returns the written paths."""
    return plot_curves(learning_curves(runs), out_dir, success_threshold, n_grid, formats)


def _curve_figure(env: str, per_method: dict, n_grid: int, ylabel: str, bounds: tuple[float, float] | None,
                  empty_text: str) -> tuple[Figure, object]:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    if per_method:
        max_f = max(x[-1] for cs in per_method.values() for x, _ in cs)
        grid = np.linspace(0.0, max_f, n_grid)
        for method, seeds in per_method.items():
            g, mean, low, high = curve_bands(seeds, grid, bounds)
            (line,) = ax.plot(g, mean, label=f"{method} (n={len(seeds)})")
            if np.isfinite(low).any():
                ax.fill_between(g, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, empty_text, ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("frames")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{env}: mean over seeds, 95% CI")
    ax.grid(alpha=0.3)
    return fig, ax


def plot_curves(curves: Curves, out_dir: str | os.PathLike, success_threshold: float | None = None,
                n_grid: int = N_GRID, formats: Sequence[str] = ("png",)) -> list[Path]:
    """``plot_learning_curves`` of curves already read (``learning_curves``); an env without any curve gets a
    figure saying so."""
    out_dir = Path(out_dir)
    written = []
    for env, per_method in curves.items():
        fig, ax = _curve_figure(env, per_method, n_grid, "success rate", (0.0, 1.0), "no success data")
        if success_threshold is not None:
            ax.axhline(success_threshold, color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        written += _save_formats(fig, out_dir / env_filename(env), formats)
    return written


def plot_return_curves(runs: pd.DataFrame, out_dir: str | os.PathLike, n_grid: int = N_GRID,
                       formats: Sequence[str] = ("png",)) -> list[Path]:
    """One ``returns_<env>.png`` per env of ``return_curves``: mean episode return vs frames per method, with a 95%
    t-interval band. A bandit baseline, which trains nothing, is a flat line at its held-out return."""
    written = []
    for env, per_method in return_curves(runs).items():
        fig, _ = _curve_figure(env, per_method, n_grid, "episode return", None, "no return data")
        written += _save_formats(fig, Path(out_dir) / env_filename(env).replace("curves_", "returns_", 1), formats)
    return written


def cells_visited_curves(runs: pd.DataFrame) -> Curves:
    """The distinct cells visited so far (any step of any episode or evaluation) against frames of every finished
    run that logs ``cells_visited`` (MiniGrid-like envs: RL agents and policy-search explorers alike), by env and
    method; envs where no run logs it are left out."""
    curves = _curves(runs, "cells_visited", _logged("cells_visited"))
    return {env: per_method for env, per_method in curves.items() if per_method}


def plot_cells_visited(runs: pd.DataFrame, out_dir: str | os.PathLike, n_grid: int = N_GRID,
                       formats: Sequence[str] = ("png",)) -> list[Path]:
    """One ``cells_<env>.png`` per env of ``cells_visited_curves``: the coverage measure RL agents and explorers
    share, distinct cells visited against frames, per method with a 95% t-interval band."""
    written = []
    for env, per_method in cells_visited_curves(runs).items():
        fig, _ = _curve_figure(env, per_method, n_grid, "distinct cells visited", None, "no cell data")
        written += _save_formats(fig, Path(out_dir) / env_filename(env).replace("curves_", "cells_", 1), formats)
    return written


#: the bandit metrics of ``plot_bandit_metrics``: (final metric at the env's horizon, at 6x it, axis label)
BANDIT_PANELS = (("regret", "regret_6x", "cumulative pseudo-regret"),
                 ("suff_fail_half", "suff_fail_half_6x", "suffix failure SuffFail(T/2)"),
                 ("kminfrac", "kminfrac_6x", "K * MinFrac(T)"))


def plot_bandit_metrics(runs: pd.DataFrame, out_dir: str | os.PathLike, formats: Sequence[str] = ("png",)
                        ) -> list[Path]:
    """One ``bandit_<env>.png`` per env whose runs report a held-out regret (``runner.bandit``): regret, suffix
    failure and K·MinFrac of every method at the env's horizon H and at 6H, mean over seeds with the range of the
    seeds as error bars. Returns the written paths."""
    if "status" in runs.columns:
        runs = runs[runs["status"] == "finished"]
    written = []
    for env, ge in runs.groupby("env", sort=True):
        finals = {m: [f for f in gm["final_metrics"] if isinstance(f, dict) and f.get("regret") is not None]
                  for m, gm in ge.groupby("method", sort=True)}
        finals = {m: fs for m, fs in finals.items() if fs}
        if not finals:
            continue
        methods = sorted(finals, key=lambda m: np.mean([f["regret"] for f in finals[m]]))
        fig = Figure(figsize=(13, 0.9 + 0.45 * len(methods)), layout="constrained")
        axes = fig.subplots(1, len(BANDIT_PANELS), sharey=True)
        y = np.arange(len(methods))
        for ax, (short, long, label) in zip(axes, BANDIT_PANELS):
            for offset, key, name in ((-0.18, short, "H"), (0.18, long, "6H")):
                vals = [np.array([f.get(key, np.nan) for f in finals[m]], dtype=float) for m in methods]
                mean = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in vals])
                lo = np.array([np.nanmin(v) if np.isfinite(v).any() else np.nan for v in vals])
                hi = np.array([np.nanmax(v) if np.isfinite(v).any() else np.nan for v in vals])
                ax.barh(y + offset, mean, height=0.34, xerr=_xerr(mean, lo, hi), label=name, capsize=2)
            ax.set_xlabel(label)
            ax.grid(axis="x", alpha=0.3)
        axes[0].set_yticks(y, methods)
        axes[0].invert_yaxis()
        axes[0].legend(fontsize="small")
        fig.suptitle(f"{env}: held-out tasks, mean over seeds (bars: seed range)")
        written += _save_formats(fig, Path(out_dir) / env_filename(env).replace("curves_", "bandit_", 1), formats)
    return written


#: An explorer's per-iteration record in its run folder (``explore_bench.runner.explorer``).
ARCHIVE_CSV = "archive.csv"
ARCHIVE_PANELS = (("max_score", "best score"), ("coverage", "rooms / agent cells seen"), ("cells", "archived cells"))


def plot_archive_curves(runs: pd.DataFrame, out_dir: str | os.PathLike, formats: Sequence[str] = ("png",)) -> list[Path]:
    """One ``archive_<env>.png`` per env with explorer runs (an ``archive.csv`` in the run folder): best score,
    coverage and archive size vs frames, one line per method and seed. Returns the written paths."""
    if "status" in runs.columns:
        runs = runs[runs["status"] == "finished"]
    written = []
    for env, ge in runs.groupby("env", sort=True):
        tables = [(r.method, r.seed, pd.read_csv(Path(r.run_dir) / ARCHIVE_CSV))
                  for r in ge.sort_values(["method", "seed"]).itertuples() if (Path(r.run_dir) / ARCHIVE_CSV).exists()]
        # Go-Explore's archive files; other explorers (novelty search) keep a per-chunk file of other columns
        tables = [t for t in tables if all(column in t[2].columns for column, _ in ARCHIVE_PANELS)]
        if not tables:
            continue
        fig = Figure(figsize=(13, 3.8), layout="constrained")
        axes = fig.subplots(1, len(ARCHIVE_PANELS))
        for ax, (column, label) in zip(axes, ARCHIVE_PANELS):
            for method, seed, table in tables:
                ax.plot(table["frames"], table[column], label=f"{method} seed {seed}", linewidth=1.2)
            ax.set_xlabel("frames")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize="small")
        fig.suptitle(f"{env}: explorer archive per seed")
        written += _save_formats(fig, out_dir / env_filename(env).replace("curves_", "archive_", 1), formats)
    return written


def plot_aggregate(agg: pd.DataFrame, out_dir: str | os.PathLike, metric: str = "success") -> Path:
    """``aggregate.png``: IQM of final ``metric`` across envs per method with stratified-bootstrap 95% CI
    whiskers (none where the CI is NaN)."""
    out_dir = Path(out_dir)
    fig = Figure(figsize=(max(4.0, 1.2 * len(agg) + 2), 4.5))
    ax = fig.add_subplot()
    if len(agg):
        x = np.arange(len(agg))
        val = agg[f"{metric}_iqm"].to_numpy(dtype=float)
        lo = agg[f"{metric}_iqm_ci_low"].to_numpy(dtype=float)
        hi = agg[f"{metric}_iqm_ci_high"].to_numpy(dtype=float)
        ax.bar(x, val, color="tab:blue", alpha=0.8)
        yerr = np.vstack([np.where(np.isfinite(lo), val - lo, 0.0), np.where(np.isfinite(hi), hi - val, 0.0)])
        ax.errorbar(x, val, yerr=np.clip(yerr, 0.0, None), fmt="none", ecolor="black", capsize=4)
        labels = [f"{m}\n({n} envs)" for m, n in zip(agg["method"], agg["n_envs"])]
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel(f"IQM final {metric}")
    ax.set_title(f"Aggregate IQM of final {metric} (95% stratified bootstrap CI)")
    ax.grid(axis="y", alpha=0.3)
    return _save_atomic(fig, out_dir / "aggregate.png")


# --------------------------------------------------------------------------------------------------------------
# Normalised-score statistics (stats.py)
# --------------------------------------------------------------------------------------------------------------
FORMATS = ("png", "svg")
ESTIMATE_TITLES = {
    "iqm": "IQM", "mean": "Mean", "median": "Median", "optimality_gap": "Optimality gap (lower is better)",
}


def _xerr(val: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Error-bar lengths (2, n) from CI bounds; 0 where a bound is NaN."""
    err = np.vstack([np.where(np.isfinite(lo), val - lo, 0.0), np.where(np.isfinite(hi), hi - val, 0.0)])
    return np.clip(np.nan_to_num(err), 0.0, None)


def _no_data(ax, text: str = "no finished runs") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def plot_aggregate_scores(agg: pd.DataFrame, out_dir: str | os.PathLike,
                          formats: Sequence[str] = FORMATS) -> list[Path]:
    """``aggregate_scores.<fmt>``: one panel per estimate (IQM, mean, median, optimality gap) of the normalised
    score, a horizontal bar per method with its stratified-bootstrap 95% CI.  ``agg`` is
    ``stats.aggregate_scores`` output."""
    names = list(ESTIMATE_TITLES)
    fig = Figure(figsize=(3.2 * len(names), max(2.5, 0.45 * len(agg) + 1.5)), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True)
    y = np.arange(len(agg))
    for ax, name in zip(axes, names):
        if len(agg):
            val = agg[name].to_numpy(dtype=float)
            lo, hi = agg[f"{name}_ci_low"].to_numpy(dtype=float), agg[f"{name}_ci_high"].to_numpy(dtype=float)
            ax.barh(y, val, color=[f"C{i % 10}" for i in range(len(agg))], alpha=0.75)
            ax.errorbar(val, y, xerr=_xerr(val, lo, hi), fmt="none", ecolor="black", capsize=3)
        else:
            _no_data(ax)
        ax.set_title(ESTIMATE_TITLES[name], fontsize="medium")
        ax.set_xlabel("normalised score")
        ax.grid(axis="x", alpha=0.3)
    if len(agg):
        axes[0].set_yticks(y, [f"{m} ({n} envs)" for m, n in zip(agg["method"], agg["n_envs"])])
        axes[0].invert_yaxis()
    fig.suptitle("Aggregate normalised scores (95% stratified bootstrap CIs)")
    return _save_formats(fig, Path(out_dir) / "aggregate_scores.png", formats)


def plot_performance_profiles(profiles: pd.DataFrame, out_dir: str | os.PathLike,
                              formats: Sequence[str] = FORMATS) -> list[Path]:
    """``performance_profile.<fmt>``: fraction of runs with normalised score > tau vs tau, one line per method
    with its stratified-bootstrap 95% band.  ``profiles`` is ``stats.performance_profiles`` output."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    if len(profiles):
        for method, g in profiles.groupby("method", sort=True):
            (line,) = ax.plot(g["tau"], g["fraction"], label=method)
            lo, hi = g["fraction_ci_low"].to_numpy(dtype=float), g["fraction_ci_high"].to_numpy(dtype=float)
            if np.isfinite(lo).any():
                ax.fill_between(g["tau"], lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.legend(fontsize="small")
    else:
        _no_data(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"normalised score $\tau$")
    ax.set_ylabel(r"fraction of runs with score > $\tau$")
    ax.set_title("Performance profiles (95% stratified bootstrap CIs)")
    ax.grid(alpha=0.3)
    return _save_formats(fig, Path(out_dir) / "performance_profile.png", formats)


def plot_probability_of_improvement(poi: pd.DataFrame, out_dir: str | os.PathLike,
                                    formats: Sequence[str] = FORMATS) -> list[Path]:
    """``probability_of_improvement.<fmt>``: heatmap of P(row method > column method) with the value and its
    95% CI written in each cell.  ``poi`` is ``stats.probability_of_improvement_table`` output."""
    methods = sorted(set(poi["method_x"]) | set(poi["method_y"])) if len(poi) else []
    n = len(methods)
    mat = np.full((n, n), np.nan)
    text = [["" for _ in methods] for _ in methods]
    idx = {m: i for i, m in enumerate(methods)}
    for r in poi.itertuples():
        i, j = idx[r.method_x], idx[r.method_y]
        mat[i, j] = r.p
        ci = f"\n[{r.p_ci_low:.2f}, {r.p_ci_high:.2f}]" if np.isfinite(r.p_ci_low) else ""
        text[i][j] = f"{r.p:.2f}{ci}" if np.isfinite(r.p) else "n/a"
    size = max(4.0, 1.1 * n + 2.5)
    fig = Figure(figsize=(size + 1.0, size))
    ax = fig.add_subplot()
    if n:
        im = ax.imshow(np.ma.masked_invalid(mat), cmap="RdBu", vmin=0.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, text[i][j] if i != j else "-", ha="center", va="center", fontsize="small")
        ax.set_xticks(range(n), methods, rotation=30, ha="right")
        ax.set_yticks(range(n), methods)
        ax.set_xlabel("method Y")
        ax.set_ylabel("method X")
        fig.colorbar(im, ax=ax, label="P(X > Y)")
    else:
        _no_data(ax, "fewer than 2 methods")
    ax.set_title("Probability of improvement P(X > Y) (95% CI)")
    return _save_formats(fig, Path(out_dir) / "probability_of_improvement.png", formats)
