"""``explore-bench plot``: every leaderboard plot of a results folder, plus the tables behind them.

Reads the run folders under a results folder with the same loader as the leaderboard (``load_runs``: finished
runs only), normalises each run's final score by env family (``normalize.py``), computes the Agarwal et al. 2021
statistics (``stats.py``) and writes, as PNG and SVG:

* ``curves_<env>``: success vs frames per env, mean over seeds with 95% CI bands;
* ``aggregate_scores``: IQM, mean, median and optimality gap of the normalised score per method, with CIs;
* ``performance_profile``: fraction of runs above each normalised-score threshold, with CI bands;
* ``probability_of_improvement``: P(X > Y) for every pair of methods, with CIs;

and the numbers as ``scores_aggregate.csv``, ``scores_improvement.csv`` and ``scores_profiles.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from .aggregate import DEFAULT_N_BOOTSTRAP, load_runs, write_csv_atomic
from .normalize import add_normalized_scores
from .plots import (
    FORMATS,
    plot_aggregate_scores,
    plot_learning_curves,
    plot_performance_profiles,
    plot_probability_of_improvement,
)
from .stats import (
    aggregate_scores,
    performance_profiles,
    probability_of_improvement_table,
    score_dict,
)

__all__ = ["build_plots"]


def build_plots(runs_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                n_bootstrap: int = DEFAULT_N_BOOTSTRAP, success_threshold: float | None = 0.9,
                families: Mapping[str, str] | None = None, formats: Sequence[str] = FORMATS,
                seed: int = 0) -> list[Path]:
    """Write all plots and score tables of the runs under ``runs_dir`` into ``out_dir`` (default ``runs_dir``).

    Raises ``FileNotFoundError`` if ``runs_dir`` is missing, ``ValueError`` if it holds no finished run or a run
    whose env family has no normalised score (the message names it).  Nothing is written before the scores
    are computed.  Returns the written paths."""
    runs_dir = Path(runs_dir)
    out_dir = Path(out_dir) if out_dir is not None else runs_dir
    runs = load_runs(runs_dir)
    if runs.empty:
        n_failed = len(runs.attrs.get("failed_runs", ()))
        detail = f" ({n_failed} run(s) did not finish)" if n_failed else ""
        raise ValueError(f"no finished run folders (summary.json) found under {runs_dir}{detail}")
    scores = score_dict(add_normalized_scores(runs, families))
    if not scores:
        raise ValueError(f"no run under {runs_dir} has a finite normalised score")
    agg = aggregate_scores(scores, n_bootstrap=n_bootstrap, seed=seed)
    poi = probability_of_improvement_table(scores, n_bootstrap=n_bootstrap, seed=seed)
    profiles = performance_profiles(scores, n_bootstrap=n_bootstrap, seed=seed)

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [
        write_csv_atomic(agg, out_dir / "scores_aggregate.csv"),
        write_csv_atomic(poi, out_dir / "scores_improvement.csv"),
        write_csv_atomic(profiles, out_dir / "scores_profiles.csv"),
    ]
    written += plot_learning_curves(runs, out_dir, success_threshold=success_threshold, formats=formats)
    written += plot_aggregate_scores(agg, out_dir, formats)
    written += plot_performance_profiles(profiles, out_dir, formats)
    written += plot_probability_of_improvement(poi, out_dir, formats)
    return written
