"""``explore-bench plot``: every leaderboard plot of a results folder, plus the tables behind them.

Reads the run folders under a results folder with the same loader as the leaderboard (``load_runs``: finished
runs only), normalises each run's final score by env family (``normalize.py``), computes the Agarwal et al. 2021
statistics (``stats.py``) and writes, as PNG and SVG:

* ``curves_<env>``: success vs frames per env, mean over seeds with 95% CI bands;
* ``aggregate_scores``: IQM, mean, median and optimality gap of the normalised score per method, with CIs;
* ``performance_profile``: fraction of runs above each normalised-score threshold, with CI bands;
* ``probability_of_improvement``: P(X > Y) for every pair of methods, with CIs;

and the numbers as ``scores_aggregate.csv``, ``scores_improvement.csv`` and ``scores_profiles.csv``.

Envs with no normalised score (a family without a normaliser, e.g. the exploration-only ``tvgrid``, or an env
whose family cannot be told) still get their learning curves; they are left out of the cross-env statistics,
with one note naming them.  When no env has a score, only the learning curves are written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .aggregate import DEFAULT_N_BOOTSTRAP, load_runs, write_csv_atomic
from .normalize import add_normalized_scores, unscored_envs
from .plots import (
    FORMATS,
    Curves,
    learning_curves,
    plot_aggregate_scores,
    plot_archive_curves,
    plot_bandit_metrics,
    plot_cells_visited,
    plot_curves,
    plot_performance_profiles,
    plot_probability_of_improvement,
    plot_return_curves,
)
from .stats import (
    ScoreDict,
    aggregate_scores,
    performance_profiles,
    probability_of_improvement_table,
    score_dict,
)

__all__ = ["build_plots"]


def _print_note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def _has_curves(curves: Curves) -> bool:
    return any(per_method for per_method in curves.values())


def _left_out_text(left_out: Mapping[str, str]) -> str:
    """'A (family 'x'), B (unknown family)'."""
    return ", ".join(f"{env} ({family})" for env, family in left_out.items())


def _note(left_out: Mapping[str, str], scored: bool) -> str | None:
    """The one note of ``build_plots`` on what the cross-env statistics leave out (None when nothing)."""
    if not left_out and scored:
        return None
    parts = []
    if left_out:
        parts.append("left out of the cross-env aggregate (no normalised score for their env family): "
                     f"{_left_out_text(left_out)}; their learning curves are still plotted")
    if not scored:
        parts.append("no run has a finite normalised score, so only learning curves are written")
    return "; ".join(parts)


def _write_scores(scores: ScoreDict, out_dir: Path, n_bootstrap: int, seed: int,
                  formats: Sequence[str]) -> list[Path]:
    """The score tables and their plots (all computed before any is written)."""
    agg = aggregate_scores(scores, n_bootstrap=n_bootstrap, seed=seed)
    poi = probability_of_improvement_table(scores, n_bootstrap=n_bootstrap, seed=seed)
    profiles = performance_profiles(scores, n_bootstrap=n_bootstrap, seed=seed)
    return [
        write_csv_atomic(agg, out_dir / "scores_aggregate.csv"),
        write_csv_atomic(poi, out_dir / "scores_improvement.csv"),
        write_csv_atomic(profiles, out_dir / "scores_profiles.csv"),
        *plot_aggregate_scores(agg, out_dir, formats),
        *plot_performance_profiles(profiles, out_dir, formats),
        *plot_probability_of_improvement(poi, out_dir, formats),
    ]


def build_plots(runs_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                n_bootstrap: int = DEFAULT_N_BOOTSTRAP, success_threshold: float | None = 0.9,
                families: Mapping[str, str] | None = None, formats: Sequence[str] = FORMATS,
                seed: int = 0, on_note: Callable[[str], None] | None = None) -> list[Path]:
    """Write all plots and score tables of the runs under ``runs_dir`` into ``out_dir`` (default ``runs_dir``).

    Envs without a normalised score (``normalize.unscored_envs``) get learning curves only; ``on_note`` (default:
    print to stderr) receives one message naming them, or saying that no run has a finite score (then only the
    learning curves are written).  Raises ``FileNotFoundError`` if ``runs_dir`` is missing, ``ValueError`` if it
    holds no finished run, or nothing to plot: no finite normalised score and no progress data (the message names
    the envs left out and why).  Nothing is written before the scores are computed.  Returns the written paths."""
    runs_dir = Path(runs_dir)
    out_dir = Path(out_dir) if out_dir is not None else runs_dir
    runs = load_runs(runs_dir)
    if runs.empty:
        n_failed = len(runs.attrs.get("failed_runs", ()))
        detail = f" ({n_failed} run(s) did not finish)" if n_failed else ""
        raise ValueError(f"no finished run folders (summary.json) found under {runs_dir}{detail}")
    left_out = unscored_envs(runs["env"], families)
    scores = score_dict(add_normalized_scores(runs[~runs["env"].isin(left_out)], families))
    curves = learning_curves(runs)
    if not scores and not _has_curves(curves):
        detail = f" (none for the env family of {_left_out_text(left_out)})" if left_out else ""
        raise ValueError(f"nothing to plot under {runs_dir}: no run has a finite normalised score{detail} and no "
                         "run has progress data")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _write_scores(scores, out_dir, n_bootstrap, seed, formats) if scores else []
    written += plot_curves(curves, out_dir, success_threshold=success_threshold, formats=formats)
    written += plot_archive_curves(runs, out_dir, formats=formats)
    written += plot_return_curves(runs, out_dir, formats=formats)
    written += plot_cells_visited(runs, out_dir, formats=formats)
    written += plot_bandit_metrics(runs, out_dir, formats=formats)
    note = _note(left_out, bool(scores))
    if note:
        (on_note or _print_note)(note)
    return written
