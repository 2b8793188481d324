"""Bandit baselines and metrics: spec bandits.md §10 tests 3-11 (tolerances as in the spec), plus bad inputs.

Instance means are built with numpy directly: bernoulli_uniform = U[0,1] i.i.d.; the Explore-ICL hard instance =
K=5 arms at 0.4 with one uniformly placed arm at 0.6; Gaussian = N(0,1). Policies that do not depend on the horizon
are run once at the longest horizon and read at shorter ones with ``Trajectories.head`` (same instances at every
horizon, which makes the across-horizon comparisons paired).
"""

from __future__ import annotations

import numpy as np
import pytest

from explore_bench.agents.bandit_baselines import (
    Greedy,
    ThompsonSampling,
    TSBeta,
    bayes_opt_k2_value,
    evaluate_baseline,
    list_baselines,
    make_baseline,
    reference_regrets,
    tune,
    tuning_grid,
)
from explore_bench.envs.bandits.metrics import (
    _weighted_median,
    best_never_tried,
    bimodality,
    cumulative_regret,
    early_failure,
    estimate,
    fit_regret_curve,
    greedy_flags,
    k_min_frac,
    normalized_score,
    posterior_best_probs,
    suffix_failure_curve,
    summarize,
    ts_consistency,
)
from explore_bench.envs.bandits.vec import BanditPolicy, BatchedBandit, Prior, Stats, Trajectories, run_policy


def hard_instance(n: int, rng: np.random.Generator, k: int = 5, delta: float = 0.2) -> np.ndarray:
    """Explore-ICL instance: all arms at 0.5 − Δ/2 except one uniformly placed arm at 0.5 + Δ/2."""
    means = np.full((n, k), 0.5 - delta / 2)
    means[np.arange(n), rng.integers(0, k, n)] = 0.5 + delta / 2
    return means


def mean_regret(traj: Trajectories, horizon: int) -> float:
    return float(cumulative_regret(traj.head(horizon).actions, traj.means).mean())


def mean_reward(policy: BanditPolicy, means: np.ndarray, horizon: int, rng: np.random.Generator) -> float:
    return float(run_policy(policy, means, horizon, rng).rewards.sum(axis=1).mean())


# ---------------------------------------------------------------------------------------------------------------
# Test 3: metric unit tests on hand-built sequences
# ---------------------------------------------------------------------------------------------------------------
def test_suffix_failure_hand_built() -> None:
    late = np.array([[1] * 10 + [0] * 10])
    early = np.array([[0] * 10 + [1] * 10])
    best = np.array([0])
    assert suffix_failure_curve(late, best)[10] == 0.0
    assert suffix_failure_curve(late, best)[15] == 0.0
    assert suffix_failure_curve(early, best)[10] == 1.0
    curve = suffix_failure_curve(np.vstack([late, early, np.full((1, 20), 1)]), np.zeros(3, dtype=int))
    assert np.all(np.diff(curve) >= 0)
    assert curve[0] == pytest.approx(1 / 3)  # only the never-best row fails from round 0


def test_k_min_frac_hand_built() -> None:
    k, horizon = 4, 20
    round_robin = np.tile(np.arange(k), (3, horizon // k))
    assert np.all(k_min_frac(round_robin, k) == 1.0)
    assert np.all(k_min_frac(np.zeros((3, horizon), dtype=int), k) == 0.0)
    assert k_min_frac(round_robin[:, :6], k, t=4)[0] == 1.0


def test_greedy_flags_hand_built_and_greedy_policy() -> None:
    actions = np.array([[0, 1, 0, 1, 1]])
    rewards = np.array([[1.0, 0.0, 0.0, 1.0, 1.0]])
    # t0: nothing pulled; t1: arm 1 untried; t2: 1 > 0; t3: 0 < 0.5; t4: 0.5 = 0.5 (tie counts as greedy)
    assert greedy_flags(actions, rewards, 2).tolist() == [[False, False, True, False, True]]

    k = 5
    rng = np.random.default_rng(0)
    traj = run_policy(Greedy(), rng.uniform(size=(200, k)), 50, rng)
    assert np.all(traj.actions[:, :k] == np.arange(k))  # the init round
    assert np.all(greedy_flags(traj.actions, traj.rewards, k)[:, k:])


def test_cumulative_regret_and_summary_keys() -> None:
    means = np.array([[0.2, 0.7, 0.5]])
    actions = np.array([[0, 1, 2, 1]])
    assert cumulative_regret(actions, means)[0] == pytest.approx(0.5 + 0.0 + 0.2 + 0.0)
    traj = Trajectories(actions, np.array([[0.0, 1.0, 1.0, 0.0]]), means)
    out = summarize(traj)
    for key in ("cum_regret_mean", "cum_regret_se", "total_reward_mean", "median_avg_reward", "suff_fail_half",
                "ecf_quarter", "kminfrac", "greedy_frac", "best_arm_frac", "late_best_share", "frac_linear",
                "realized_regret_mean", "abandon_after_one", "best_never_tried", "bimodal_frac",
                "cum_regret_ci_low", "suff_fail_half_ci_high"):
        assert key in out
    assert out["total_reward_mean"] == 2.0
    assert out["realized_regret_mean"] == pytest.approx(4 * 0.7 - 2.0)
    assert out["best_arm_frac"] == 0.5 and out["late_best_share"] == 0.5


def test_early_failure_bimodality_and_normalized_score() -> None:
    means = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    actions = np.array([[0, 1, 1, 1, 1, 1, 1, 1], [1] * 8, [0] * 8])
    traj = Trajectories(actions, np.zeros((3, 8)), means)
    ecf, abandon = early_failure(traj)
    assert ecf.tolist() == [1.0, 1.0, 0.0] and abandon.tolist() == [1.0, 0.0, 0.0]
    assert best_never_tried(traj).tolist() == [0.0, 1.0, 0.0]
    hist, extreme = bimodality(traj)
    assert hist.sum() == pytest.approx(1.0) and extreme == pytest.approx(2 / 3)
    rng = np.random.default_rng(3)
    random_regret, reference_regret = reference_regrets(rng.uniform(size=(2000, 2)), 20, rng)
    assert random_regret > reference_regret
    assert normalized_score(reference_regret, random_regret, reference_regret) == 1.0
    assert normalized_score(random_regret, random_regret, reference_regret) == 0.0


def test_bootstrap_estimates() -> None:
    rng = np.random.default_rng(1)
    values = rng.exponential(size=501)
    est = estimate(values, seed=3)
    assert est.ci_low < est.value < est.ci_high
    assert est.se == pytest.approx(values.std(ddof=1) / np.sqrt(values.size))
    assert estimate(values, seed=3) == est  # seeded
    # the count-weighted median equals np.median of the explicit resample
    counts = np.stack([np.bincount(rng.integers(0, values.size, values.size), minlength=values.size)
                       for _ in range(5)])
    explicit = [np.median(np.repeat(values, c)) for c in counts]
    assert np.allclose(_weighted_median(values, counts), explicit)


def test_regret_curve_fit_recovers_log_and_linear() -> None:
    horizons = np.array([100, 200, 400, 800, 1600, 3200])
    log_fit = fit_regret_curve(horizons, 3.0 * np.log(horizons) + 1.0)
    assert log_fit["beta"] < 1e-4
    linear_fit = fit_regret_curve(horizons, 0.05 * horizons + 2.0)
    assert linear_fit["beta"] == pytest.approx(0.05, rel=0.05)


# ---------------------------------------------------------------------------------------------------------------
# Tests 4 and 5: TS regret grows like log T; greedy suffers linear regret on a fraction of instances
# ---------------------------------------------------------------------------------------------------------------
HORIZONS = (100, 200, 400, 800, 1600)


@pytest.fixture(scope="module")
def uniform_k5_runs() -> dict[str, Trajectories]:
    rng = np.random.default_rng(1600)
    means = rng.uniform(size=(500, 5))
    return {name: run_policy(make_baseline(name), means, HORIZONS[-1], rng) for name in ("ts_beta", "greedy")}


def test_ts_regret_grows_like_log_t(uniform_k5_runs: dict[str, Trajectories]) -> None:
    regret = np.array([mean_regret(uniform_k5_runs["ts_beta"], h) for h in HORIZONS])
    x = np.log(HORIZONS)
    slope, intercept = np.polyfit(x, regret, 1)
    residual = regret - (slope * x + intercept)
    r_squared = 1 - residual @ residual / np.sum((regret - regret.mean()) ** 2)
    assert r_squared >= 0.97, (regret, r_squared)
    assert regret[-1] / regret[0] <= 3.0, regret


def test_greedy_linear_regret_fraction(uniform_k5_runs: dict[str, Trajectories]) -> None:
    greedy = uniform_k5_runs["greedy"]
    assert mean_regret(greedy, 1600) / mean_regret(greedy, 800) >= 1.6
    assert 0.20 <= summarize(greedy)["frac_linear"] <= 0.38


# ---------------------------------------------------------------------------------------------------------------
# Test 6: Explore-ICL hard instance
# ---------------------------------------------------------------------------------------------------------------
def test_explore_icl_hard_instance_failures() -> None:
    horizon, k = 100, 5
    rng = np.random.default_rng(42 + horizon + k)
    means = hard_instance(2000, rng)
    ucb = summarize(run_policy(make_baseline("ucb1", c=1.0), means, horizon, rng))
    ts = summarize(run_policy(TSBeta(), means, horizon, rng))
    greedy = summarize(run_policy(Greedy(), means, horizon, rng))
    assert 0.41 <= greedy["suff_fail_half"] <= 0.53
    assert ts["suff_fail_half"] <= 0.03
    assert ucb["suff_fail_half"] <= 0.01
    assert greedy["kminfrac"] <= 0.08
    assert ucb["kminfrac"] >= 0.5


def test_explore_icl_greedy_wins_short_loses_long() -> None:
    rng = np.random.default_rng(10_000)
    means = hard_instance(10_000, rng)
    greedy, ts = run_policy(Greedy(), means, 500, rng), run_policy(TSBeta(), means, 500, rng)
    assert mean_regret(greedy, 100) < mean_regret(ts, 100)
    assert mean_regret(greedy, 500) > 1.4 * mean_regret(ts, 500)


# ---------------------------------------------------------------------------------------------------------------
# Test 7: Gaussian 6x horizon flip
# ---------------------------------------------------------------------------------------------------------------
def test_gaussian_six_times_horizon_flip() -> None:
    rng = np.random.default_rng(303)
    means = rng.normal(size=(2000, 5))
    greedy = run_policy(Greedy(), means, 300, rng, reward_type="gaussian")
    ts = run_policy(make_baseline("ts_gauss"), means, 300, rng, reward_type="gaussian")
    assert mean_regret(greedy, 50) < mean_regret(ts, 50)
    assert mean_regret(greedy, 300) > mean_regret(ts, 300)


# ---------------------------------------------------------------------------------------------------------------
# Test 8: RL² Table 1 reproduction
# ---------------------------------------------------------------------------------------------------------------
# (n, k): paper's (Random, TS, Greedy, UCB1)
RL2_TABLE = {
    (10, 5): (5.0, 5.7, 6.6, 6.7), (10, 10): (5.0, 5.5, 6.6, 6.7), (10, 50): (5.1, 5.2, 6.5, 6.6),
    (100, 5): (49.9, 74.7, 74.8, 78.0), (100, 10): (49.9, 76.7, 77.1, 82.4), (100, 50): (49.8, 64.5, 78.0, 84.3),
    (500, 5): (249.8, 402.0, 380.6, 405.8), (500, 10): (249.0, 429.5, 395.0, 437.1),
    (500, 50): (249.6, 427.2, 402.8, 457.6),
}


@pytest.mark.parametrize(("n", "k"), list(RL2_TABLE))
def test_rl2_table_reproduction(n: int, k: int) -> None:
    means = np.random.default_rng(1000 * k + n).uniform(size=(1000, k))
    # every policy gets its own default_rng(7): results do not depend on the order of evaluation
    ours = (
        mean_reward(make_baseline("random"), means, n, np.random.default_rng(7)),
        mean_reward(make_baseline("ts_beta"), means, n, np.random.default_rng(7)),
        mean_reward(make_baseline("greedy_prior"), means, n, np.random.default_rng(7)),
        tune("ucb1_prior", None, means, n, np.random.default_rng(7)).best_score,
    )
    for name, got, paper in zip(("random", "ts", "greedy_prior", "ucb1_prior tuned"), ours, RL2_TABLE[n, k]):
        assert abs(got - paper) <= max(0.3, 0.035 * paper), (name, got, paper)


# ---------------------------------------------------------------------------------------------------------------
# Test 9: exact Bayes-optimal DP, K = 2
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("horizon", "value"), [(10, 6.0218), (20, 12.4313), (50, 31.9967), (100, 64.9184)])
def test_bayes_opt_k2_values(horizon: int, value: float) -> None:
    assert bayes_opt_k2_value(horizon) == pytest.approx(value, abs=1e-3)


def test_bayes_opt_k2_simulation_bounds_every_baseline() -> None:
    horizon, value = 20, bayes_opt_k2_value(20)
    rng = np.random.default_rng(20)
    means = rng.uniform(size=(20_000, 2))
    for name in sorted(set(list_baselines()) - {"oracle"}):  # the oracle sees the means
        total = run_policy(make_baseline(name), means, horizon, rng).rewards.sum(axis=1)
        mean, se = total.mean(), total.std(ddof=1) / np.sqrt(total.size)
        if name == "bayes_opt_k2":
            assert abs(mean - value) <= 3 * se
        else:
            assert mean <= value + 3 * se, name


# ---------------------------------------------------------------------------------------------------------------
# Test 10: Gittins-approx sanity
# ---------------------------------------------------------------------------------------------------------------
def test_gittins_approx_k5_n100() -> None:
    means = np.random.default_rng(1000 * 5 + 100).uniform(size=(1000, 5))
    reward = mean_reward(make_baseline("gittins_approx", gamma=0.9), means, 100, np.random.default_rng(7))
    assert reward >= 77.0


# ---------------------------------------------------------------------------------------------------------------
# Test 11: TS-consistency
# ---------------------------------------------------------------------------------------------------------------
def test_ts_consistency_separates_ts_from_greedy() -> None:
    rng = np.random.default_rng(11)
    means = hard_instance(300, rng)
    ts = run_policy(TSBeta(), means, 100, rng, record_probs=True, n_prob_draws=1000)
    greedy = run_policy(Greedy(), means, 100, rng, record_probs=True)
    assert ts_consistency(ts)["ts_tv"] <= 0.06
    assert ts_consistency(greedy)["ts_tv"] >= 0.5


def test_posterior_best_probs_matches_monte_carlo() -> None:
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 60, (50, 4))
    for prior, sums in ((Prior("beta"), rng.binomial(counts, 0.5).astype(float)),
                        (Prior("gaussian"), counts * rng.normal(0, 0.3, counts.shape))):
        stats = Stats(sums, counts)
        mc = BanditPolicy.action_probs(ThompsonSampling(prior), stats, 0, rng, n_draws=20_000)
        assert np.abs(posterior_best_probs(stats, prior) - mc).max() < 0.015


def test_exact_action_probs_agree_with_monte_carlo_and_recording_keeps_actions() -> None:
    rng = np.random.default_rng(4)
    means = rng.uniform(size=(100, 3))
    policy = make_baseline("eps_greedy", eps=0.3)
    stats = Stats(rng.integers(0, 5, (100, 3)).astype(float), np.full((100, 3), 5))
    exact = policy.action_probs(stats, 15, rng)
    mc = BanditPolicy.action_probs(policy, stats, 15, rng, n_draws=4000)
    assert np.abs(exact - mc).max() < 0.05
    plain = run_policy(policy, means, 30, np.random.default_rng(5))
    recorded = run_policy(policy, means, 30, np.random.default_rng(5), record_probs=True)
    assert np.array_equal(plain.actions, recorded.actions)
    assert recorded.probs is not None and np.allclose(recorded.probs.sum(-1), 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Registry, tuning and bad inputs
# ---------------------------------------------------------------------------------------------------------------
def test_registry_and_tuning_grid() -> None:
    assert {"random", "greedy", "greedy_prior", "eps_greedy", "ucb1", "ucb1_prior", "ucb_gauss", "ts_beta",
            "ts_gauss", "gittins_approx", "bayes_opt_k2", "oracle"} <= set(list_baselines())
    with pytest.raises(KeyError, match="ucb1"):
        make_baseline("ucb2")
    assert tuning_grid("gittins_approx", 100) == ("gamma", (0.9, 0.99, 0.999, 0.99))
    rng = np.random.default_rng(0)
    result = tune("eps_greedy", (0.0, 1.0), rng.uniform(size=(200, 5)), 50, rng)
    assert result.best == 0.0 and set(result.scores) == {0.0, 1.0}
    oracle = evaluate_baseline("oracle", rng.uniform(size=(50, 3)), 20, rng)
    assert oracle["cum_regret_mean"] == 0.0


@pytest.mark.parametrize(
    "means, reward_type",
    [(np.array([0.5, 0.5]), "bernoulli"), (np.array([[0.5, np.nan]]), "bernoulli"),
     (np.array([[0.5, 1.5]]), "bernoulli"), (np.array([[0.5, 0.1]]), "poisson")],
)
def test_bad_means_raise(means: np.ndarray, reward_type: str) -> None:
    with pytest.raises(ValueError, match="means|reward_type"):
        BatchedBandit(means, reward_type)


def test_bad_inputs_raise() -> None:
    bandit = BatchedBandit(np.full((3, 2), 0.5), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="actions"):
        bandit.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="actions"):
        bandit.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="actions"):
        suffix_failure_curve(np.zeros(5, dtype=int), np.zeros(1, dtype=int))
    with pytest.raises(ValueError, match="best"):
        suffix_failure_curve(np.zeros((2, 5), dtype=int), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="rewards"):
        greedy_flags(np.zeros((2, 5), dtype=int), np.full((2, 5), np.nan), 2)
    with pytest.raises(ValueError, match="rewards"):
        Trajectories(np.zeros((2, 5), dtype=int), np.zeros((2, 4)), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="actions"):
        cumulative_regret(np.full((2, 5), 3), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="probs"):
        ts_consistency(Trajectories(np.zeros((2, 5), dtype=int), np.zeros((2, 5)), np.full((2, 2), 0.5)))
    with pytest.raises(ValueError, match="K = 2"):
        run_policy(make_baseline("bayes_opt_k2"), np.full((2, 3), 0.5), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Beta posterior"):
        run_policy(TSBeta(), np.array([[3.0, 0.0]]), 10, np.random.default_rng(0), reward_type="gaussian")
    with pytest.raises(ValueError, match="T"):
        run_policy(Greedy(), np.full((2, 2), 0.5), 0, np.random.default_rng(0))
