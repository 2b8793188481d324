"""Shared helper of the leaderboard, statistics and CLI tests: a run folder as the runner writes it."""

from __future__ import annotations

import json

import pandas as pd


def make_run(root, env="Env-v0", agent="ppo", bonus="rnd", seed=0, success=0.5, ret=1.0, coverage=0.3,
             status="finished", frames=4000, progress=None, config_hash="h1", git_commit="abc", wall=10.0,
             subdir=None, tv_fraction=None, final=None):
    """Write one run folder (summary.json + progress.csv) and return it.

    ``progress`` is a list of (frames, success) or None for a linear ramp to ``success``; the progress.csv has
    the runner's columns before tv_fraction, and ``tv_fraction`` goes into the final metrics. ``final``, when
    given, replaces the final metrics whole."""
    method = agent if bonus is None else f"{agent}+{bonus}"
    d = root / (subdir or f"{env.replace('/', '_')}/{method}/seed{seed}_{config_hash}_{git_commit}_{status}")
    d.mkdir(parents=True)
    if final is None and status == "finished":
        final = {"return": ret, "success": success, "coverage": coverage,
                 **({} if tv_fraction is None else {"tv_fraction": tv_fraction})}
    summary = {
        "status": status, "env": env, "agent": agent, "bonus": bonus, "seed": seed, "frames": frames,
        "wall_time_s": wall, "final": final or {},
        "config": {"lr": 3e-4}, "config_hash": config_hash, "git_commit": git_commit,
        "versions": {"python": "3.12", "torch": "2.4"},
    }
    (d / "summary.json").write_text(json.dumps(summary))
    if progress is None:
        progress = [(f, success * f / frames) for f in range(1000, frames + 1, 1000)]
    rows = [{"frames": f, "episode_return": ret, "success": s, "coverage": coverage, "intrinsic_mean": 0.1,
             "intrinsic_std": 0.01, "fps": 500.0} for f, s in progress]
    cols = ["frames", "episode_return", "success", "coverage", "intrinsic_mean", "intrinsic_std", "fps"]
    pd.DataFrame(rows, columns=cols).to_csv(d / "progress.csv", index=False)
    return d
