"""Leaderboard: aggregate run folders (summary.json + progress.csv) into leaderboard.csv and plots."""

from .aggregate import aggregate_leaderboard, build_leaderboard, leaderboard, load_runs

__all__ = ["build_leaderboard", "load_runs", "leaderboard", "aggregate_leaderboard"]
