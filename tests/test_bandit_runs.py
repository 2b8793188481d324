"""Bandit runs end to end: baselines and learned agents scored on the same held-out tasks, the run folder, the
leaderboard and its plots (explore_bench/runner/bandit.py)."""

import json

import numpy as np
import pytest

from explore_bench.agents.factory import ConfigError, resolve_config
from explore_bench.leaderboard.aggregate import build_leaderboard
from explore_bench.leaderboard.normalize import normalized_score
from explore_bench.runner import bandit
from explore_bench.runner.local import check_builds
from explore_bench.runner.run import run_single
from explore_bench.runner.suite import make_run_spec

SHORT = {"horizon": 20}


@pytest.fixture
def few_tasks(monkeypatch):
    monkeypatch.setattr(bandit, "EVAL_TASKS", 200)


def _config(agent, frames=4000, seed=0, bonus=None, **overrides):
    config = resolve_config("Bandit-v0", agent, bonus, seed, frames, overrides)
    config["env_kwargs"] = dict(SHORT)
    return config


def test_every_method_meets_the_same_tasks_and_reward_tapes():
    """Paired evaluation: the same tasks for every actor, and the same reward on the j-th pull of an arm."""

    def always(arm):
        def factory(n_tasks, n_arms, horizon):
            return (lambda obs, t: np.full(n_tasks, arm)), (lambda arms, rewards: None)

        return factory

    first = bandit.rollout(always(0), "Bandit-v0", SHORT, 50, 123)
    second = bandit.rollout(always(0), "Bandit-v0", SHORT, 50, 123)
    ts = bandit.rollout(bandit.baseline_actor("ts_beta", {}, 0), "Bandit-v0", SHORT, 50, 123)
    np.testing.assert_array_equal(first.means, ts.means)
    np.testing.assert_array_equal(first.rewards, second.rewards)
    # Thompson sampling's pulls of arm 0 get arm 0's tape in order: the rewards of "always arm 0" up to that count
    for r in range(50):
        mine = ts.rewards[r, ts.actions[r] == 0]
        np.testing.assert_array_equal(mine, first.rewards[r, : len(mine)])


def test_baseline_run_is_its_held_out_evaluation(tmp_path, few_tasks):
    summary = run_single(_config("bandit_thompson"), tmp_path / "ts", tensorboard=False)
    assert summary["status"] == "finished", summary.get("error")
    final = summary["final"]
    # Thompson sampling on 5 Bernoulli arms, H = 20: far below the random policy's regret, above 0
    assert 0 < final["regret"] < 0.7 * final["regret_random"]
    assert final["regret_6x"] < 6 * final["regret"]  # logarithmic, not linear, growth
    assert 0 < final["normalized_score"] <= 1.2
    assert final["normalized_score"] == pytest.approx(normalized_score("Bandit-v0", final))
    assert summary["frames"] == 0
    evaluation = json.loads((tmp_path / "ts" / "bandit_eval.json").read_text())
    assert evaluation["tasks"] == 200 and evaluation["h1"]["horizon"] == 20 and evaluation["h6"]["horizon"] == 120
    rows = (tmp_path / "ts" / "progress.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("0,") and rows[2].startswith("4000,")


def test_greedy_has_more_suffix_failures_than_ucb1_on_held_out_tasks(tmp_path, few_tasks):
    finals = {agent: run_single(_config(agent), tmp_path / agent, tensorboard=False)["final"]
              for agent in ("bandit_greedy", "bandit_ucb1")}
    assert finals["bandit_greedy"]["suff_fail_half_6x"] > finals["bandit_ucb1"]["suff_fail_half_6x"] + 0.1
    assert finals["bandit_ucb1"]["kminfrac"] > finals["bandit_greedy"]["kminfrac"]


@pytest.mark.parametrize("agent, bonus", [("rl2", "count"), ("rl2_memoryless", "rnd")])
def test_learned_agent_with_a_bonus_is_scored_on_the_held_out_tasks(tmp_path, few_tasks, agent, bonus):
    """RL^2 (reward-wrapper path) and its memoryless ablation (IntrinsicPPO path), each with a registry bonus."""
    config = _config(agent, frames=1600, bonus=bonus, **{"n_envs": 4, "hyperparameters.n_steps": 20,
                                            "hyperparameters.batch_size": 80, "hyperparameters.n_epochs": 1})
    summary = run_single(config, tmp_path / agent, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    final = summary["final"]
    for key in ("regret", "regret_deterministic", "regret_random", "regret_reference", "normalized_score",
                "suff_fail_half", "kminfrac", "greedy_frac", "return_6x", "regret_6x"):
        assert np.isfinite(final[key]), key
    assert final["regret_reference"] < final["regret_random"]  # gittins_approx beats random
    evaluation = json.loads((tmp_path / agent / "bandit_eval.json").read_text())
    assert evaluation["deterministic"]["h1"]["n_replicates"] == 200


def test_leaderboard_and_plots_of_bandit_runs(tmp_path, few_tasks):
    for seed in (0, 1):
        for agent in ("bandit_thompson", "bandit_greedy"):
            run_single(_config(agent, seed=seed), tmp_path / "runs" / agent / f"seed_{seed}", tensorboard=False)
    board = build_leaderboard(tmp_path / "runs", tmp_path / "board", n_bootstrap=200)
    rows = board.set_index("method")
    assert rows.loc["bandit_thompson", "regret_mean"] < rows.loc["bandit_greedy", "regret_6x_mean"]
    assert np.isfinite(rows.loc["bandit_greedy", "suff_fail_half_mean_ci_low"])
    assert (tmp_path / "board" / "bandit_Bandit-v0.png").stat().st_size > 0
    assert (tmp_path / "board" / "returns_Bandit-v0.png").stat().st_size > 0


def test_bad_baseline_configs_are_refused_before_any_run(tmp_path):
    with pytest.raises(ConfigError, match="no bonus"):
        resolve_config("Bandit-v0", "bandit_ucb1", "rnd", 0, 1000)
    unknown = make_run_spec("Bandit-v0", "bandit_ucb1", None, 0, 1000, {"baseline.name": "ucb9"})
    with pytest.raises(ConfigError, match="unknown bandit baseline 'ucb9'"):
        check_builds([unknown])
    bad_param = make_run_spec("Bandit-v0", "bandit_ucb1", None, 0, 1000, {"baseline.params": {"gamma": 0.5}})
    with pytest.raises(ConfigError, match="gamma"):
        check_builds([bad_param])
    for env in ("MiniGrid-DoorKey-5x5-v0", "BanditTrialResampled-v0", "GridTrial-v0"):
        with pytest.raises(ConfigError, match="bandit env with one task per episode"):
            check_builds([make_run_spec(env, "bandit_ucb1", None, 0, 1000)])
    with pytest.raises(ValueError, match="oracle"):
        bandit.baseline_actor("oracle", {}, 0)


@pytest.mark.slow
def test_13_rl2_learns_to_explore_two_armed_bandits(tmp_path):
    """Spec test 13: agents/rl2.yaml on 2-arm Bernoulli bandits, H = 10, 300k steps, scored on the 1000 held-out
    tasks: total reward >= 5.7 (random 5.0, Bayes-optimal 6.02). About 5 minutes on one core."""
    config = resolve_config("Bandit-v0", "rl2", None, 0, 300_000, {"env_kwargs": {"n_arms": 2, "horizon": 10}})
    summary = run_single(config, tmp_path, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    held_out = json.loads((tmp_path / "bandit_eval.json").read_text())["h1"]  # sampled actions, H = 10
    assert held_out["n_replicates"] == 1000
    assert held_out["total_reward_mean"] >= 5.7
