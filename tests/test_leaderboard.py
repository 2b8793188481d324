"""Leaderboard aggregation on synthetic run folders with hand-checkable numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from leaderboard_helpers import make_run
from scipy.stats import trim_mean

from explore_bench.leaderboard import build_leaderboard, leaderboard, load_runs
from explore_bench.leaderboard.aggregate import (
    frames_to_threshold,
    read_progress,
    stratified_bootstrap_ci,
    success_auc,
)

NB = 2000  # bootstrap resamples in tests: enough for stable percentiles, fast


def row(board, env="Env-v0", method="ppo+rnd"):
    r = board[(board["env"] == env) & (board["method"] == method)]
    assert len(r) == 1, board[["env", "method"]]
    return r.iloc[0]


def test_iqm_and_mean_match_scipy(tmp_path):
    finals = [0.1, 0.9, 0.5, 0.3, 1.0, 0.0, 0.7, 0.2]
    for s, v in enumerate(finals):
        make_run(tmp_path, seed=s, success=v, ret=10 * v, coverage=v / 2)
    runs = load_runs(tmp_path)
    assert len(runs) == 8 and set(runs["method"]) == {"ppo+rnd"}
    r = row(leaderboard(runs, n_bootstrap=NB))
    assert r["n_seeds"] == 8 and r["seeds"] == list(range(8))
    assert r["success_iqm"] == pytest.approx(trim_mean(finals, 0.25))
    assert r["success_mean"] == pytest.approx(np.mean(finals))
    assert r["return_iqm"] == pytest.approx(trim_mean(np.array(finals) * 10, 0.25))
    assert r["coverage_iqm"] == pytest.approx(trim_mean(np.array(finals) / 2, 0.25))
    assert r["wall_time_s_mean"] == pytest.approx(10.0)
    assert r["mixed"] == ""


def test_ci_contains_estimate_and_narrows_with_more_seeds(tmp_path):
    pattern = [0.2, 0.4, 0.6, 0.8, 0.1, 0.9]
    widths = {}
    for n_rep, name in [(1, "few"), (6, "many")]:
        d = tmp_path / name
        for s, v in enumerate(pattern * n_rep):
            make_run(d, seed=s, success=v)
        r = row(leaderboard(load_runs(d), n_bootstrap=NB))
        for stat in ("mean", "iqm"):
            assert r[f"success_{stat}_ci_low"] <= r[f"success_{stat}"] <= r[f"success_{stat}_ci_high"]
        widths[name] = r["success_iqm_ci_high"] - r["success_iqm_ci_low"]
        assert r["success_mean_ci_high"] > r["success_mean_ci_low"]
    assert widths["many"] < 0.6 * widths["few"]


def test_single_seed_has_nan_ci_and_says_so(tmp_path):
    make_run(tmp_path, seed=3, success=0.7)
    r = row(leaderboard(load_runs(tmp_path), n_bootstrap=NB))
    assert r["n_seeds"] == 1 and r["success_iqm"] == pytest.approx(0.7)
    assert math.isnan(r["success_iqm_ci_low"]) and math.isnan(r["success_mean_ci_high"])
    assert "fewer than 2 seeds" in r["notes"]


def test_frames_to_threshold_and_auc_hand_computed(tmp_path):
    nan = float("nan")
    # curve (0,0),(1000,0),(2000,.5),(3000,.95),(4000,1): area 250+725+975 = 1950 -> /4000
    a = make_run(tmp_path, seed=0, progress=[(1000, nan), (2000, 0.5), (3000, 0.95), (4000, 1.0)])
    # never reaches 0.9: area 50+150+250+350 = 800 -> /4000
    make_run(tmp_path, seed=1, progress=[(1000, 0.1), (2000, 0.2), (3000, 0.3), (4000, 0.4)])
    # reaches exactly 0.9 at 2000; NaN at 3000 is carried forward: 250+700+900+950 = 2800 -> /4000
    make_run(tmp_path, seed=2, progress=[(1000, 0.5), (2000, 0.9), (3000, nan), (4000, 1.0)])
    # budget 5000 but last log at 4000: last value held to 5000: 1950 + 1000 = 2950 -> /5000
    b = make_run(tmp_path, env="Long-v0", seed=0, frames=5000,
                 progress=[(1000, nan), (2000, 0.5), (3000, 0.95), (4000, 1.0)])

    assert frames_to_threshold(read_progress(a), 0.9) == 3000
    assert success_auc(read_progress(a), 4000) == pytest.approx(1950 / 4000)
    assert success_auc(read_progress(b), 5000) == pytest.approx(2950 / 5000)

    board = leaderboard(load_runs(tmp_path), success_threshold=0.9, n_bootstrap=NB)
    r = row(board)
    assert r["frames_to_threshold"] == pytest.approx(2500)  # median of {3000, 2000}
    assert r["reached"] == "2/3" and r["n_reached"] == 2
    assert r["success_auc"] == pytest.approx(np.mean([1950 / 4000, 800 / 4000, 2800 / 4000]))
    assert 0.0 <= r["success_auc"] <= 1.0
    assert row(board, env="Long-v0")["success_auc"] == pytest.approx(2950 / 5000)
    # a stricter threshold nobody reaches
    r = row(leaderboard(load_runs(tmp_path), success_threshold=1.01, n_bootstrap=NB))
    assert math.isnan(r["frames_to_threshold"]) and r["reached"] == "0/3"


def test_failed_runs_excluded_and_counted(tmp_path):
    for s, v in enumerate([0.4, 0.6, 0.8]):
        make_run(tmp_path, seed=s, success=v)
    make_run(tmp_path, seed=3, status="failed")
    make_run(tmp_path, env="Broken-v0", seed=0, status="failed")

    runs = load_runs(tmp_path)
    assert len(runs) == 3 and (runs["status"] == "finished").all()
    assert len(runs.attrs["failed_runs"]) == 2

    for board in (leaderboard(runs, n_bootstrap=NB), leaderboard(load_runs(tmp_path, include_failed=True),
                                                                  n_bootstrap=NB)):
        r = row(board)
        assert r["n_seeds"] == 3 and r["n_failed"] == 1 and r["seeds"] == [0, 1, 2]
        assert r["success_mean"] == pytest.approx(0.6)
        assert "1 failed run(s) excluded" in r["notes"]
        broken = row(board, env="Broken-v0")
        assert broken["n_seeds"] == 0 and broken["n_failed"] == 1 and math.isnan(broken["success_mean"])
        agg = board.attrs["aggregate"]
        assert agg.loc[agg["method"] == "ppo+rnd", "n_runs"].item() == 3


def test_mixed_configs_flagged(tmp_path):
    make_run(tmp_path, seed=0, config_hash="h1")
    make_run(tmp_path, seed=1, config_hash="h2")
    make_run(tmp_path, env="Git-v0", seed=0, git_commit="aaa")
    make_run(tmp_path, env="Git-v0", seed=1, git_commit=None)
    make_run(tmp_path, env="Clean-v0", seed=0)
    make_run(tmp_path, env="Clean-v0", seed=1)
    board = leaderboard(load_runs(tmp_path), n_bootstrap=NB)
    assert "config_hash" in row(board)["mixed"] and "git_commit" not in row(board)["mixed"]
    assert "git_commit" in row(board, env="Git-v0")["mixed"]
    assert row(board, env="Clean-v0")["mixed"] == ""
    assert "config_hash" in board.attrs["aggregate"].iloc[0]["mixed"]


def test_aggregate_iqm_and_stratified_ci(tmp_path):
    a, b = [0.1, 0.5, 0.9, 0.3], [0.8, 1.0, 0.6, 0.7]
    for s, (va, vb) in enumerate(zip(a, b)):
        make_run(tmp_path, env="A-v0", seed=s, success=va)
        make_run(tmp_path, env="B-v0", seed=s, success=vb)
        make_run(tmp_path, env="A-v0", agent="ppo", bonus=None, seed=s, success=0.2)
    agg = leaderboard(load_runs(tmp_path), n_bootstrap=NB).attrs["aggregate"]
    r = agg[agg["method"] == "ppo+rnd"].iloc[0]
    assert r["n_envs"] == 2 and r["n_runs"] == 8
    assert r["success_iqm"] == pytest.approx(trim_mean(a + b, 0.25))
    assert r["success_iqm_ci_low"] <= r["success_iqm"] <= r["success_iqm_ci_high"]
    plain = agg[agg["method"] == "ppo"].iloc[0]
    assert plain["missing_envs"] == ["B-v0"]

    # Stratification: env X all 0, env Y all 1. Each resample keeps 4 zeros and 4 ones, so the IQM is always 0.5.
    lo, hi = stratified_bootstrap_ci([np.zeros(4), np.ones(4)], lambda x, axis: trim_mean(x, 0.25, axis=axis),
                                     n_bootstrap=NB)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)


def test_build_writes_csvs_and_plots(tmp_path):
    runs_dir, out = tmp_path / "runs", tmp_path / "out"
    for env in ("MiniGrid-DoorKey-5x5-v0", "ALE/Pong-v5"):
        for s in range(3):
            make_run(runs_dir, env=env, seed=s, success=0.3 + 0.2 * s)
            make_run(runs_dir, env=env, agent="ppo", bonus=None, seed=s, success=0.1 * s)
    board = build_leaderboard(runs_dir, out_dir=out, n_bootstrap=NB)

    csv = pd.read_csv(out / "leaderboard.csv")
    assert len(csv) == len(board) == 4
    assert list(csv.columns) == list(board.columns)
    np.testing.assert_allclose(csv["success_iqm"], board["success_iqm"])
    assert (csv["reached"] == board["reached"]).all()
    agg = pd.read_csv(out / "leaderboard_aggregate.csv")
    assert set(agg["method"]) == {"ppo", "ppo+rnd"}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    for name in ("curves_MiniGrid-DoorKey-5x5-v0.png", "curves_ALE_Pong-v5.png", "aggregate.png"):
        p = out / name
        assert p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    # default out_dir is the runs folder; rebuilding over existing files works
    build_leaderboard(runs_dir, n_bootstrap=NB, plots=False)
    build_leaderboard(runs_dir, n_bootstrap=NB, plots=False)
    assert (runs_dir / "leaderboard.csv").exists() and (runs_dir / "leaderboard_aggregate.csv").exists()


def test_tv_fraction_mean_and_ci_only_for_envs_with_a_tv(tmp_path):
    tv = [0.1, 0.3, 0.2, 0.6]
    for s, f in enumerate(tv):
        make_run(tmp_path, env="TV-v0", seed=s, tv_fraction=f)
        make_run(tmp_path, env="Env-v0", seed=s)
    make_run(tmp_path, env="TV-v0", seed=9)  # a run of the TV env that reported none
    build_leaderboard(tmp_path, n_bootstrap=NB, plots=False)
    csv = pd.read_csv(tmp_path / "leaderboard.csv")
    cols = ["tv_fraction_mean", "tv_fraction_mean_ci_low", "tv_fraction_mean_ci_high"]
    with_tv, without = row(csv, env="TV-v0"), row(csv)
    assert with_tv["tv_fraction_mean"] == pytest.approx(np.mean(tv))
    assert min(tv) <= with_tv["tv_fraction_mean_ci_low"] < np.mean(tv) < with_tv["tv_fraction_mean_ci_high"] <= max(tv)
    assert "1 run(s) without final tv_fraction" in with_tv["notes"]
    assert without[cols].isna().all() and "tv_fraction" not in str(without["notes"])
    # progress.csv of an older runner (no tv_fraction column) still loads, the column reading as NaN
    prog = read_progress(next(tmp_path.rglob("progress.csv")).parent)
    assert prog["tv_fraction"].isna().all() and len(prog) == 4


def test_malformed_summary_names_the_file(tmp_path):
    make_run(tmp_path, seed=0)
    bad = tmp_path / "deep" / "er" / "bad_run"
    bad.mkdir(parents=True)
    (bad / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad_run"):
        load_runs(tmp_path)
    (bad / "summary.json").write_text(json.dumps({"status": "finished", "env": "E"}))
    with pytest.raises(ValueError, match=r"bad_run.*missing key"):
        load_runs(tmp_path)


def test_empty_results_dir_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no run folders"):
        build_leaderboard(tmp_path, n_bootstrap=NB)
