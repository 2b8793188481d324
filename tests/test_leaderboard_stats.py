"""Normalised scores and Agarwal et al. 2021 aggregate statistics (stats.py), their plots and `explore-bench plot`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from leaderboard_helpers import make_run as _make_run
from scipy.stats import mannwhitneyu, trim_mean

from explore_bench.cli import main
from explore_bench.leaderboard import load_runs
from explore_bench.leaderboard.normalize import (
    ATARI_REFERENCE_SCORES,
    add_normalized_scores,
    atari_game,
    env_family_of,
    human_normalized_score,
    normalized_score,
    unscored_envs,
)
from explore_bench.leaderboard.stats import (
    aggregate_mean,
    aggregate_median,
    aggregate_scores,
    iqm,
    optimality_gap,
    performance_profile,
    probability_of_improvement,
    probability_of_improvement_table,
    score_dict,
)

NB = 2000  # bootstrap resamples: stable enough percentiles, fast
MG = "MiniGrid-DoorKey-5x5-v0"


def make_run(root, env=MG, **kwargs):
    """A finished run on MiniGrid DoorKey-5x5 by default, coverage 3 cells."""
    return _make_run(root, env=env, coverage=3.0, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------------
def test_atari_human_normalised_score():
    # Montezuma's Revenge: random 0.0, human 4753.3 -> 2500 / 4753.3
    assert human_normalized_score("ALE/MontezumaRevenge-v5", 2500.0) == pytest.approx(2500.0 / 4753.3)
    # Pitfall: random -229.4, human 6463.7; the random score maps to 0, the human score to 1
    assert human_normalized_score("PitfallNoFrameskip-v4", -229.4) == pytest.approx(0.0)
    assert human_normalized_score("Pitfall", 6463.7) == pytest.approx(1.0)
    assert normalized_score("ALE/Venture-v5", {"return": 1187.5, "success": None}) == pytest.approx(1.0)
    assert atari_game("explore_bench/ALE/PrivateEye-v5") == "PrivateEye"
    assert atari_game("montezuma_revenge") == "MontezumaRevenge"
    assert env_family_of("ALE/Gravitar-v5") == "atari"
    assert all(human > random for random, human in ATARI_REFERENCE_SCORES.values())
    with pytest.raises(ValueError, match="no random/human reference scores for Atari game 'ALE/Tetris-v5'"):
        normalized_score("ALE/Tetris-v5", {"return": 1.0})


def test_minigrid_and_bandit_scores_and_unknown_family():
    assert env_family_of(MG) == "minigrid"
    assert normalized_score(MG, {"success": 0.75, "return": 0.6}) == 0.75
    # specs/bandits.md §5.2: (R_random - R_alg) / (R_random - R_ref)
    assert env_family_of("ExploreBench/BanditHard-v0") == "bandit"
    assert normalized_score("ExploreBench/BanditHard-v0", {"regret": 5.0, "regret_random": 20.0}) == 0.75
    assert normalized_score("ExploreBench/Bandit-v0", {"regret": 8.0, "regret_random": 20.0,
                                                       "regret_reference": 4.0}) == 0.75
    assert normalized_score("ExploreBench/Bandit-v0", {"normalized_score": 0.3}) == 0.3
    with pytest.raises(ValueError, match="regret_random"):
        normalized_score("ExploreBench/Bandit-v0", {"regret": 5.0})
    with pytest.raises(ValueError, match="env family 'tvgrid'"):
        normalized_score("TVGrid-Remote-v0", {"coverage": 10})
    with pytest.raises(ValueError, match="env family 'mujoco'"):
        normalized_score("HalfCheetah-v4", {"return": 1.0}, family="mujoco")
    with pytest.raises(ValueError, match="cannot tell the env family of 'HalfCheetah-v4'"):
        env_family_of("HalfCheetah-v4")
    # the envs a report leaves out of cross-env statistics instead of failing
    assert unscored_envs([MG, "TVGrid-Remote-v0", "HalfCheetah-v4", MG, "ALE/Pong-v5"]) == {
        "HalfCheetah-v4": "unknown family", "TVGrid-Remote-v0": "family 'tvgrid'"}
    assert unscored_envs(["HalfCheetah-v4"], families={"HalfCheetah-v4": "minigrid"}) == {}


def test_scores_from_run_folders(tmp_path):
    make_run(tmp_path, env=MG, seed=0, success=0.4)
    make_run(tmp_path, env="ALE/MontezumaRevenge-v5", seed=0, ret=4753.3)
    make_run(tmp_path, env="ExploreBench/BanditEasy-v0", seed=0,
             final={"return": 1.0, "regret": 2.0, "regret_random": 10.0})
    scored = add_normalized_scores(load_runs(tmp_path)).set_index("env")
    assert scored.loc[MG, "score"] == pytest.approx(0.4)
    assert scored.loc["ALE/MontezumaRevenge-v5", "score"] == pytest.approx(1.0)
    assert scored.loc["ExploreBench/BanditEasy-v0", "score"] == pytest.approx(0.8)
    assert scored.loc["ALE/MontezumaRevenge-v5", "family"] == "atari"


# ---------------------------------------------------------------------------------------------------------------
# Aggregate estimates and CIs
# ---------------------------------------------------------------------------------------------------------------
def test_estimates_hand_checked():
    a, b = np.array([0.1, 0.5, 0.9, 0.3]), np.array([0.8, 1.0, 0.6, 0.7])
    assert iqm(a, b) == pytest.approx(trim_mean(np.concatenate([a, b]), 0.25))
    assert iqm(a, b) == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.8]))  # middle half of the 8 sorted values
    assert aggregate_mean(a, b) == pytest.approx((0.45 + 0.775) / 2)
    assert aggregate_median(a, b, np.array([0.0, 0.2])) == pytest.approx(0.45)
    assert optimality_gap(np.array([1.0, 1.5, 3.0]), np.array([1.0, 2.0])) == 0.0
    assert optimality_gap(np.array([0.5, 1.5])) == pytest.approx(0.25)


def test_aggregate_table_ci_contains_estimates():
    rng = np.random.default_rng(0)
    scores = {"good": {"A": rng.uniform(0.5, 1.0, 6), "B": rng.uniform(0.4, 0.9, 6)},
              "poor": {"A": rng.uniform(0.0, 0.5, 6), "C": np.array([0.2])}}
    agg = aggregate_scores(scores, n_bootstrap=NB).set_index("method")
    good = agg.loc["good"]
    assert good["n_envs"] == 2 and good["n_runs"] == 12 and good["missing_envs"] == ["C"]
    assert good["iqm"] == pytest.approx(trim_mean(np.concatenate([scores["good"]["A"], scores["good"]["B"]]), 0.25))
    for name in ("iqm", "mean", "median", "optimality_gap"):
        assert good[f"{name}_ci_low"] <= good[name] <= good[f"{name}_ci_high"], name
        assert good[f"{name}_ci_high"] > good[f"{name}_ci_low"], name
    poor = agg.loc["poor"]  # env C has one seed: no CI, and the notes say why
    assert np.isnan(poor["iqm_ci_low"]) and "fewer than 2 seeds" in poor["notes"]


def test_stratified_ci_of_separated_envs_is_a_point():
    # env X all 0, env Y all 1: every stratified resample keeps 4 zeros and 4 ones -> IQM, mean, median all 0.5
    agg = aggregate_scores({"m": {"X": np.zeros(4), "Y": np.ones(4)}}, n_bootstrap=NB).iloc[0]
    for name in ("iqm", "mean", "median", "optimality_gap"):
        assert agg[f"{name}_ci_low"] == pytest.approx(0.5) and agg[f"{name}_ci_high"] == pytest.approx(0.5)


def test_probability_of_improvement():
    rng = np.random.default_rng(1)
    x = {"A": rng.normal(size=10), "B": rng.normal(size=10)}
    p, lo, hi = probability_of_improvement(x, x, n_bootstrap=NB)
    assert p == pytest.approx(0.5) and lo < 0.5 < hi  # identical distributions
    better = {e: v + 100.0 for e, v in x.items()}  # strictly dominating
    assert probability_of_improvement(better, x, n_bootstrap=NB) == pytest.approx((1.0, 1.0, 1.0))
    assert probability_of_improvement(x, better, n_bootstrap=NB) == pytest.approx((0.0, 0.0, 0.0))
    # per env it is the Mann-Whitney U / (n m), averaged over the common envs (env C of y is ignored)
    y = {"A": rng.normal(0.5, size=8), "B": rng.normal(-0.2, size=7), "C": np.ones(3)}
    expect = np.mean([mannwhitneyu(x[e], y[e]).statistic / (len(x[e]) * len(y[e])) for e in ("A", "B")])
    p, lo, hi = probability_of_improvement(x, y, n_bootstrap=NB)
    assert p == pytest.approx(expect) and lo <= p <= hi
    table = probability_of_improvement_table({"x": x, "y": y}, n_bootstrap=NB)
    pxy = table[(table["method_x"] == "x") & (table["method_y"] == "y")].iloc[0]
    pyx = table[(table["method_x"] == "y") & (table["method_y"] == "x")].iloc[0]
    assert pxy["n_envs"] == 2 and pxy["p"] + pyx["p"] == pytest.approx(1.0)


def test_performance_profile():
    per_env = {"A": np.array([0.2, 0.4, 0.6, 0.8]), "B": np.array([0.1, 0.3, 0.5, 0.9])}
    taus = np.array([0.0, 0.35, 0.5, 1.0])
    frac, lo, hi = performance_profile(per_env, taus, n_bootstrap=NB)
    np.testing.assert_allclose(frac, [1.0, (0.75 + 0.5) / 2, (0.5 + 0.25) / 2, 0.0])
    assert lo[0] == hi[0] == 1.0 and lo[-1] == hi[-1] == 0.0
    assert np.all(lo <= frac) and np.all(frac <= hi)
    assert np.all(np.diff(frac) <= 0)


def test_iqm_and_ci_match_rliable():
    try:  # rliable breaks with pandas 3 (not only with an ImportError): cross-check only where it imports
        from rliable import library as rly
        from rliable import metrics
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"rliable does not import: {type(e).__name__}: {e}")
    rng = np.random.default_rng(2)
    matrix = rng.uniform(size=(10, 3))  # runs x envs
    scores = {"m": {f"e{j}": matrix[:, j] for j in range(3)}}
    ours = aggregate_scores(scores, n_bootstrap=NB).iloc[0]
    assert ours["iqm"] == pytest.approx(metrics.aggregate_iqm(matrix))
    point, ci = rly.get_interval_estimates({"m": matrix}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=NB)
    assert ours["iqm_ci_low"] == pytest.approx(ci["m"][0, 0], abs=0.03)
    assert ours["iqm_ci_high"] == pytest.approx(ci["m"][1, 0], abs=0.03)


# ---------------------------------------------------------------------------------------------------------------
# Plots and the CLI
# ---------------------------------------------------------------------------------------------------------------
def test_plot_command_writes_png_and_svg(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    for s in range(3):
        make_run(runs, env=MG, seed=s, success=0.5 + 0.2 * s)
        make_run(runs, env=MG, bonus=None, seed=s, success=0.1 * s)
        make_run(runs, env="ALE/MontezumaRevenge-v5", seed=s, ret=400.0 * (s + 1))
        make_run(runs, env="ALE/MontezumaRevenge-v5", bonus=None, seed=s, ret=0.0)
    assert main(["plot", str(runs), "--out", str(out), "--resamples", "500"]) == 0
    printed = capsys.readouterr().out
    stems = ["aggregate_scores", "performance_profile", "probability_of_improvement",
             f"curves_{MG}", "curves_ALE_MontezumaRevenge-v5"]
    for stem in stems:
        png, svg = out / f"{stem}.png", out / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert b"<svg" in svg.read_bytes()[:2000], stem
        assert str(png) in printed
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    agg = pd.read_csv(out / "scores_aggregate.csv").set_index("method")
    assert agg.loc["ppo+rnd", "mean"] > agg.loc["ppo", "mean"]
    poi = pd.read_csv(out / "scores_improvement.csv")
    assert len(poi) == 2 and set(poi["method_x"]) == {"ppo", "ppo+rnd"}
    assert poi.loc[poi["method_x"] == "ppo+rnd", "p"].item() == pytest.approx(1.0)
    assert score_dict(add_normalized_scores(load_runs(runs)))["ppo"]["ALE/MontezumaRevenge-v5"].tolist() == [0, 0, 0]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and err.startswith("explore-bench"), err
    return err


def test_plot_command_bad_input(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main(["plot", str(tmp_path)]) == 2
    assert "no finished run folders" in one_error_line(capsys)
    # only envs without a normalised score, and no progress data: nothing to plot at all
    (make_run(tmp_path, env="TVGrid-Remote-v0", seed=0) / "progress.csv").unlink()
    assert main(["plot", str(tmp_path)]) == 2
    err = one_error_line(capsys)
    assert "TVGrid-Remote-v0" in err and "'tvgrid'" in err and "no run has progress data" in err
    assert not list(tmp_path.glob("*.png"))


TV = "TVGrid-Remote-v0"


def test_plot_leaves_envs_without_a_normalised_score_out_of_the_aggregate(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    for s in range(3):
        make_run(runs, env=MG, seed=s, success=0.5 + 0.2 * s)
        make_run(runs, env=MG, bonus=None, seed=s, success=0.1 * s)
        make_run(runs, env=TV, seed=s, success=0.0, final={"return": 0.0, "success": 0.0, "tv_fraction": 0.1 * s})
    assert main(["plot", str(runs), "--out", str(out), "--resamples", "200"]) == 0
    printed = capsys.readouterr()
    notes = [line for line in printed.err.splitlines() if "note" in line]
    assert len(notes) == 1 and TV in notes[0] and "'tvgrid'" in notes[0] and "Traceback" not in printed.err
    for stem in (f"curves_{MG}", f"curves_{TV}", "aggregate_scores"):  # the TV env keeps its learning curves
        assert str(out / f"{stem}.png") in printed.out
    agg = pd.read_csv(out / "scores_aggregate.csv")
    assert set(agg["method"]) == {"ppo", "ppo+rnd"} and (agg["n_envs"] == 1).all()
    assert TV not in "".join(agg["envs"]) and TV not in "".join(agg["missing_envs"])


def test_plot_of_envs_without_any_normalised_score_draws_the_curves(tmp_path, capsys):
    for s in range(2):
        make_run(tmp_path, env=TV, seed=s, success=0.0)
    assert main(["plot", str(tmp_path), "--resamples", "200"]) == 0
    printed = capsys.readouterr()
    assert (tmp_path / f"curves_{TV}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("scores_*.csv")) and not list(tmp_path.glob("aggregate_scores.*"))
    assert printed.err.count("note") == 1 and TV in printed.err and "only learning curves" in printed.err
