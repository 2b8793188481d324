"""Leaderboard: aggregate run folders (summary.json + progress.csv) into leaderboard.csv and plots."""

from .aggregate import aggregate_leaderboard, build_leaderboard, leaderboard, load_runs

__all__ = ["build_leaderboard", "build_plots", "load_runs", "leaderboard", "aggregate_leaderboard"]


def __getattr__(name: str):
    if name == "build_plots":  # lazily: it imports matplotlib
        from .report import build_plots

        return build_plots
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
