"""Bandit meta-RL environments (bandits.md §4; acceptance tests §10.1, §10.2, §10.12): task families, MetaBanditEnv,
TrialEnv, GridTrialEnv and their catalogue ids."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from explore_bench.envs import NAMESPACE, env_family, frames_per_step, list_envs, make_env
from explore_bench.envs.bandits import (
    BANDIT_ENVS,
    FAMILIES,
    OBS_MODES,
    REWARD_MODES,
    BayesSweepAgent,
    GridTrialEnv,
    MetaBanditEnv,
    OracleAgent,
    RandomWalkAgent,
    Task,
    TrialEnv,
    make_family,
)

METRIC_KEYS = {"return", "length", "success", "coverage", "regret", "regret_random", "best_arm_frac"}
GRID_METRIC_KEYS = {"return", "length", "success", "coverage", "episode1_coverage", "exploitation_gain"}


def n_arms_of(family: str) -> int:
    return 2 if family == "dependent_two_arm" else 5


def play(env: gym.Env, actions, seed: int | None = None, options=None):
    """Reset (with ``seed``) and pull ``actions``; returns (observations incl. the reset one, rewards, infos)."""
    obs, info = env.reset(seed=seed, options=options)
    observations, rewards, infos = [obs], [], [info]
    for a in actions:
        obs, reward, _, _, info = env.step(a)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
    return observations, rewards, infos


def expected_obs(actions: list[int], rewards: list[float], K: int, H: int, mode: str) -> np.ndarray:
    """The observation §4.1 prescribes after the history (actions, raw rewards): no task in sight."""
    t = len(actions)
    if mode == "none":
        return np.zeros(1)
    onehot = np.zeros(K)
    if t:
        onehot[actions[-1]] = 1.0
    head = np.concatenate([onehot, [rewards[-1] if t else 0.0, t / H]])
    if mode == "rl2":
        return np.append(head, float(t == 0))
    counts = np.bincount(actions, minlength=K).astype(float)
    sums = np.bincount(actions, weights=rewards, minlength=K) if t else np.zeros(K)
    return np.concatenate([head, counts / H, np.divide(sums, counts, out=np.zeros(K), where=counts > 0)])


# --------------------------------------------------------------------------- families


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_sample_matches_batch_and_shapes(name):
    K = n_arms_of(name)
    fam = make_family(name, K)
    task = fam.sample(np.random.default_rng(3))
    batch = fam.sample_batch(np.random.default_rng(3), 500)
    assert isinstance(task, Task) and task.means.shape == (K,) and batch.shape == (500, K)
    np.testing.assert_allclose(task.means, batch[0], rtol=1e-12)  # scalar and batched draws agree (BLAS rounding)
    assert task.best_arm == int(np.argmax(task.means))
    assert fam.reward_type in ("bernoulli", "gaussian") and "type" in fam.prior()
    if fam.reward_type == "bernoulli":
        assert fam.sigma is None and batch.min() >= 0.0 and batch.max() <= 1.0
    assert fam.resample_each_pull is (name == "resampled_each_pull")


def test_family_distributions():
    rng = np.random.default_rng(0)
    gap = make_family("bernoulli_gap", 5, delta=0.2).sample_batch(rng, 4000)
    assert np.all(np.isclose(gap, 0.6).sum(1) == 1) and np.all(np.isclose(gap, 0.4).sum(1) == 4)
    np.testing.assert_allclose(np.isclose(gap, 0.6).mean(0), 0.2, atol=0.03)  # best position uniform
    zipf = make_family("one_good_arm_zipf", 4)
    best = zipf.sample_batch(rng, 20000).argmax(1)
    w = np.arange(1, 5) ** -1.5
    np.testing.assert_allclose(np.bincount(best, minlength=4) / best.size, w / w.sum(), atol=0.015)
    dep = make_family("dependent_two_arm", 2).sample_batch(rng, 100)
    np.testing.assert_allclose(dep.sum(1), 1.0)
    gauss = make_family("gaussian", 5, m0=1.0, s0=2.0, sigma=0.5)
    g = gauss.sample_batch(rng, 20000)
    assert abs(g.mean() - 1.0) < 0.05 and abs(g.std() - 2.0) < 0.05 and gauss.sigma == 0.5
    lin = make_family("latent_linear", 6, d=3)
    np.testing.assert_allclose(np.linalg.norm(lin.features, axis=1), 1.0)
    np.testing.assert_array_equal(lin.features, make_family("latent_linear", 6, d=3).features)  # seeded per family
    task = lin.sample(rng)
    np.testing.assert_allclose(task.means, 1 / (1 + np.exp(-2.0 * lin.features @ task.params["theta"])))


def test_task_best_arm_lowest_index_and_read_only():
    task = Task(np.array([0.2, 0.7, 0.7]))
    assert task.best_arm == 1 and task.family == "custom"
    with pytest.raises(ValueError):
        task.means[0] = 1.0
    with pytest.raises(ValueError, match="1-D"):
        Task(np.zeros((2, 2)))
    copy = pickle.loads(pickle.dumps(task))  # infos cross process boundaries in SubprocVecEnv
    assert copy.best_arm == 1 and not copy.means.flags.writeable


def test_family_errors():
    with pytest.raises(KeyError, match="bernoulli_uniform"):  # the message lists the valid names
        make_family("bernouli", 5)
    for name, n_arms, kw in [
        ("bernoulli_uniform", 1, {}),
        ("bernoulli_uniform", 2.5, {}),
        ("bernoulli_gap", 5, {"delta": 0.0}),
        ("bernoulli_gap", 5, {"delta": 1.5}),
        ("bernoulli_gap", 5, {"gap": 0.2}),
        ("gaussian", 5, {"sigma": 0.0}),
        ("dependent_two_arm", 3, {}),
        ("one_good_arm_zipf", 5, {"p_hi": 0.2, "p_lo": 0.3}),
        ("latent_linear", 5, {"kappa": float("nan")}),
        ("resampled_each_pull", 5, {"base": "resampled_each_pull"}),
    ]:
        with pytest.raises(ValueError):
            make_family(name, n_arms, **kw)


# --------------------------------------------------------------------------- MetaBanditEnv: §10 test 1 (API)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_check_env_every_family_and_obs_mode(family, obs_mode):
    K = n_arms_of(family)
    env = MetaBanditEnv(family, n_arms=K, horizon=10, obs_mode=obs_mode)
    check_env(env, skip_render_check=True)
    shape = {"rl2": (K + 3,), "rl2_counts": (3 * K + 2,), "none": (1,)}[obs_mode]
    assert env.observation_space.shape == shape and env.observation_space.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(K)


@pytest.mark.parametrize("family", ["bernoulli_uniform", "gaussian", "resampled_each_pull"])
@pytest.mark.parametrize("reward_tape", [True, False])
def test_seeding_regret_and_termination(family, reward_tape):
    H = 30
    actions = np.random.default_rng(1).integers(5, size=H)
    env = MetaBanditEnv(family, horizon=H, reward_tape=reward_tape)
    obs1, rew1, inf1 = play(env, actions, seed=7)
    obs2, rew2, inf2 = play(MetaBanditEnv(family, horizon=H, reward_tape=reward_tape), actions, seed=7)
    np.testing.assert_array_equal(inf1[0]["task"].means, inf2[0]["task"].means)  # same seed: same task ...
    assert rew1 == rew2 and all((a == b).all() for a, b in zip(obs1, obs2))  # ... and the same rewards
    # reset() without a seed continues the RNG: a new task each time
    m1 = env.reset()[1]["task"].means
    m2 = env.reset()[1]["task"].means
    assert not np.array_equal(m1, m2)
    # cum_regret is the pseudo-regret recomputed from the means of the pulled arms; termination after exactly H pulls
    env.reset(seed=8)
    regret = 0.0
    for t, a in enumerate(actions, 1):
        means = env.task.means if family != "resampled_each_pull" else None
        _, _, terminated, truncated, info = env.step(a)
        means = env.task.means if means is None else means  # a resampling family draws the task inside step()
        regret += means.max() - means[a]
        assert info["cum_regret"] == pytest.approx(regret) and info["t"] == t and truncated is False
        assert info["inst_regret"] == pytest.approx(means.max() - means[a]) and info["expected_reward"] == means[a]
        assert info["best_arm"] == int(np.argmax(means)) and info["is_best"] == (a == info["best_arm"])
        assert terminated == (t == H) and ("episode_metrics" in info) == (t == H)
    assert set(info["episode_metrics"]) == METRIC_KEYS
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_episode_metrics_hand_checked():
    # Bernoulli means 0 and 1 make the rewards deterministic
    env = MetaBanditEnv(n_arms=3, horizon=5, fixed_task=Task(np.array([0.0, 1.0, 0.0])))
    _, rewards, infos = play(env, [0, 1, 1, 2, 1], seed=0)
    assert rewards == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert infos[-1]["episode_metrics"] == pytest.approx(
        {
            "return": 3.0,
            "length": 5,
            "success": None,
            "coverage": 3,
            "regret": 2.0,  # two pulls of an arm with gap 1
            "regret_random": 5 * (1.0 - 1.0 / 3.0),  # H (mu* - mean mu)
            "best_arm_frac": 3 / 5,
        }
    )
    env = MetaBanditEnv(n_arms=3, horizon=4)
    _, rewards, infos = play(env, [0, 2, 2, 1], seed=0, options={"task": Task(np.array([0.2, 0.5, 0.9]))})
    m = infos[-1]["episode_metrics"]
    assert m["regret"] == pytest.approx(0.7 + 0.4) and m["regret_random"] == pytest.approx(4 * (0.9 - 1.6 / 3))
    assert m["return"] == sum(rewards) and m["coverage"] == 3 and m["best_arm_frac"] == 0.5


# --------------------------------------------------------------------------- privileged information


@pytest.mark.parametrize("family", ["bernoulli_uniform", "gaussian", "resampled_each_pull"])
@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_observation_is_a_function_of_the_history_only(family, obs_mode):
    """The observation equals what §4.1 prescribes from (actions, raw rewards) alone, whatever the task and the
    reward mode; and the reward mode changes neither the observations nor the raw rewards."""
    H = 40
    actions = list(np.random.default_rng(2).integers(5, size=H))
    runs = {}
    for reward_mode in REWARD_MODES:
        env = MetaBanditEnv(family, horizon=H, obs_mode=obs_mode, reward_mode=reward_mode)
        observations, _, infos = play(env, actions, seed=11)
        raw = [info["raw_reward"] for info in infos[1:]]
        for t, obs in enumerate(observations):
            np.testing.assert_allclose(obs, expected_obs(actions[:t], raw[:t], 5, H, obs_mode), rtol=1e-6, atol=1e-7)
        runs[reward_mode] = (observations, raw)
    for observations, raw in runs.values():
        assert raw == runs["raw"][1]
        assert all((a == b).all() for a, b in zip(observations, runs["raw"][0]))


def test_strategic_and_algorithmic_rewards():
    task = Task(np.array([0.2, 0.5, 0.8]))
    env = MetaBanditEnv(n_arms=3, horizon=3, reward_mode="strategic", fixed_task=task)
    _, rewards, _ = play(env, [0, 1, 2], seed=0)
    assert rewards == pytest.approx([0.0, 0.5, 1.0])

    # UCB1 c=1 teacher: init round (lowest unpulled arm first), then the UCB index
    task = Task(np.array([1.0, 0.0, 0.0]))  # deterministic rewards
    env = MetaBanditEnv(n_arms=3, horizon=6, reward_mode="algorithmic", fixed_task=task)
    _, rewards, _ = play(env, [0, 1, 2, 0, 1, 0], seed=0)
    assert rewards == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    _, rewards, _ = play(env, [2, 0, 1, 1, 0, 0], seed=0)  # off the init round: teacher wants 0, then 1, then 0
    assert rewards == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    # exact ties are broken by the teacher's own generator, not by arm order
    env = MetaBanditEnv(n_arms=2, horizon=400, reward_mode="algorithmic", fixed_task=Task(np.array([0.0, 0.0])))
    _, rewards, _ = play(env, [0, 1] * 200, seed=0)
    tie_rewards = rewards[2::2]  # equal counts, equal means: a tie between the two arms
    assert 0.3 < np.mean(tie_rewards) < 0.7
    assert play(env, [0, 1] * 200, seed=0)[1] == rewards  # deterministic given the seed


# --------------------------------------------------------------------------- §10 test 2 (reward tape)


@pytest.mark.parametrize("family", ["bernoulli_uniform", "gaussian"])
def test_reward_tape_marginal_unchanged(family):
    n = 20_000
    task = Task(np.array([0.3, 0.6, 0.1]))
    means = {}
    for tape in (True, False):
        env = MetaBanditEnv(family, n_arms=3, horizon=n, reward_tape=tape, fixed_task=task)
        env.reset(seed=5)
        r = np.array([env.step(1)[1] for _ in range(n)])
        means[tape] = (r.mean(), r.var(ddof=1))
    se = np.sqrt((means[True][1] + means[False][1]) / n)
    assert abs(means[True][0] - means[False][0]) < 4 * se
    assert abs(means[True][0] - 0.6) < 4 * np.sqrt(means[True][1] / n)


@pytest.mark.parametrize("family", ["bernoulli_uniform", "gaussian"])
def test_reward_tape_common_random_numbers(family):
    """Two policies with the same seed see the same reward on the j-th pull of arm k, whatever the order."""
    H = 60
    a1 = np.random.default_rng(0).integers(3, size=H)
    a2 = np.random.default_rng(1).integers(3, size=H)
    r1 = play(MetaBanditEnv(family, n_arms=3, horizon=H), a1, seed=4)[1]
    r2 = play(MetaBanditEnv(family, n_arms=3, horizon=H), a2, seed=4)[1]
    for k in range(3):
        s1 = [r for a, r in zip(a1, r1) if a == k]
        s2 = [r for a, r in zip(a2, r2) if a == k]
        n = min(len(s1), len(s2))
        assert n > 5 and s1[:n] == s2[:n]


# --------------------------------------------------------------------------- resampling


def test_resampled_each_pull_draws_a_task_every_pull():
    env = MetaBanditEnv("resampled_each_pull", horizon=20, family_kwargs={"base": "bernoulli_gap", "delta": 0.4})
    first = env.reset(seed=0)[1]["task"]
    tasks = []
    regret_random = 0.0
    for _ in range(20):
        _, _, _, _, info = env.step(0)
        tasks.append(env.task)  # the task of this pull
        assert info["expected_reward"] == env.task.means[0] and env.task.family == "bernoulli_gap"
        regret_random += env.task.means.max() - env.task.means.mean()
    assert tasks[0] is first and len({id(t) for t in tasks}) == 20  # the reset task serves pull 0, then a new one
    best = {t.best_arm for t in tasks}
    assert len(best) > 1  # the tasks really differ
    assert info["episode_metrics"]["regret_random"] == pytest.approx(regret_random)  # w.r.t. the tasks faced


# --------------------------------------------------------------------------- TrialEnv


def test_trial_env_check_env_and_layout():
    env = TrialEnv("bernoulli_uniform", n_arms=5, pulls_per_episode=3, episodes_per_trial=4, objective="trial")
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (5 + 4,)
    observations, _, infos = play(env, [0] * 12, seed=0)
    flags = [obs[-1] for obs in observations]
    assert flags == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0]  # first pull of each inner episode; none at the end
    assert [obs[-2] for obs in observations] == [1] + [0] * 12  # the rl2 first-step flag: trial start only
    assert [i["returns_mask"] for i in infos[1:]] == [True, True, False] * 4
    assert [i["episode_index"] for i in infos[1:]] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all(i["objective"] == "trial" for i in infos[1:])
    assert "episode_metrics" in infos[-1] and not any("episode_metrics" in i for i in infos[1:-1])
    assert set(infos[-1]["episode_metrics"]) == METRIC_KEYS


@pytest.mark.parametrize("structure", ["fixed", "resampled"])
def test_trial_env_fixed_vs_resampled(structure):
    env = TrialEnv(pulls_per_episode=2, episodes_per_trial=5, structure=structure)
    env.reset(seed=0)
    tasks = [env.task]
    terminated_at = []
    for t in range(10):
        _, _, terminated, _, info = env.step(t % 5)
        tasks.append(env.task)  # the task of pull t
        terminated_at.append(terminated)
    assert terminated_at == [False] * 9 + [True]  # inner boundaries never terminate the gymnasium episode
    changes = [tasks[t] is not tasks[t - 1] for t in range(1, 11)]
    # pull t's task is tasks[t + 1]; a new task at pulls 2, 4, 6, 8 (resampled) or never (fixed)
    assert changes == ([False] * 10 if structure == "fixed" else [False, False] + [True, False] * 4)
    regret = sum(tasks[t + 1].means.max() - tasks[t + 1].means[t % 5] for t in range(10))
    assert info["episode_metrics"]["regret"] == pytest.approx(regret)


def test_trial_env_errors():
    with pytest.raises(ValueError, match="structure"):
        TrialEnv(structure="mixed")
    with pytest.raises(ValueError, match="resampled"):
        TrialEnv("resampled_each_pull")
    with pytest.raises(ValueError, match="fixed_task"):
        TrialEnv(structure="resampled", fixed_task=Task(np.full(5, 0.5)))


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    with pytest.raises(KeyError, match="valid names"):
        MetaBanditEnv("nope")
    with pytest.raises(ValueError, match="obs_mode"):
        MetaBanditEnv(obs_mode="pixels")
    with pytest.raises(ValueError, match="reward_mode"):
        MetaBanditEnv(reward_mode="shaped")
    with pytest.raises(ValueError, match="horizon"):
        MetaBanditEnv(horizon=0)
    with pytest.raises(ValueError, match="n_arms"):
        MetaBanditEnv(make_family("gaussian", 3), n_arms=5)
    env = MetaBanditEnv(n_arms=3, horizon=5)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (3, -1, 1.5, "1", None):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(bad)
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(3,\)"):
        env.reset(options={"task": Task(np.full(4, 0.5))})
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        MetaBanditEnv(n_arms=3, fixed_task=Task(np.full(2, 0.5)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        env.reset(options={"task": Task(np.array([0.5, 1.5, 0.0]))})
    with pytest.raises(TypeError, match="Task"):
        env.reset(options={"task": np.full(3, 0.5)})
    grid = GridTrialEnv()
    grid.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        grid.step(4)
    with pytest.raises(ValueError, match="candidate"):
        grid.reset(options={"goal": (2, 2)})


# --------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize("env_id", list(BANDIT_ENVS))
def test_catalogue_ids_build_and_run(env_id):
    assert env_family(env_id) == "bandit" and frames_per_step(env_id) == 1
    results = []
    for env in (make_env(env_id, seed=3), gym.make(f"{NAMESPACE}/{env_id}", seed=3), make_env(env_id, seed=3)):
        obs, _ = env.reset()
        env.action_space.seed(0)  # the same actions for every build
        assert obs in env.observation_space
        rewards, terminated = [], False
        while not terminated:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            assert not truncated
        assert set(info["episode_metrics"]) == (GRID_METRIC_KEYS if env_id == "GridTrial-v0" else METRIC_KEYS)
        results.append(rewards)
    assert results[0] == results[1] == results[2]  # same seed, same env: same rewards, whichever route


def test_catalogue_defaults_and_overrides():
    assert list_envs("bandit") == list(BANDIT_ENVS)
    hard = make_env("BanditHard-v0").unwrapped
    assert (hard.family.name, hard.n_arms, hard.horizon, hard.family.delta) == ("bernoulli_gap", 5, 100, 0.2)
    easy = make_env("BanditEasy-v0").unwrapped
    assert (easy.family.name, easy.n_arms, easy.family.delta) == ("bernoulli_gap", 4, 0.5)
    gauss = make_env("BanditGaussian-v0").unwrapped
    assert (gauss.family.reward_type, gauss.horizon) == ("gaussian", 50)
    trial = make_env("BanditTrial-v0").unwrapped
    assert (trial.horizon, trial.pulls_per_episode, trial.structure) == (100, 1, "fixed")
    env = gym.make(f"{NAMESPACE}/Bandit-v0", horizon=7, n_arms=3, obs_mode="rl2_counts")
    assert env.observation_space.shape == (11,)
    env.reset(seed=0)
    assert [env.step(0)[2] for _ in range(7)] == [False] * 6 + [True]
    grid = make_env("GridTrial-v0", episodes_per_trial=16, max_steps=24).unwrapped
    assert (grid.size, grid.episodes_per_trial, grid.max_steps) == (5, 16, 24)


# --------------------------------------------------------------------------- GridTrialEnv (§10 test 12)


def run_trial(env: GridTrialEnv, agent, seed: int | None = None, goal=None) -> list[dict]:
    """Play one trial; returns the step infos."""
    agent.reset()
    obs, _ = env.reset(seed=seed, options=None if goal is None else {"goal": goal})
    infos, terminated = [], False
    while not terminated:
        obs, _, terminated, _, info = env.step(agent.act(obs))
        infos.append(info)
    return infos


def inner_episodes(infos: list[dict]) -> list[dict]:
    """The info of the last step of every inner episode."""
    return [i for i in infos if i["inner_done"]]


def test_grid_check_env_and_observation():
    env = GridTrialEnv()
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (2 * 5 + 7,)
    obs, info = env.reset(seed=0, options={"goal": (4, 0)})
    assert info["goal"] == (4, 0) and info["oracle_steps"] == 4
    assert obs[2] == 1 and obs[5 + 2] == 1 and obs[10:14].sum() == 0 and obs[15] == 1  # centre, boundary
    for a in (1, 1, 0, 0):  # right, right, up, up: the goal at step 4
        obs, reward, terminated, _, info = env.step(a)
    assert reward == 1.0 and info["success"] and info["inner_done"] and not terminated
    assert obs[2] == 1 and obs[7] == 1 and obs[10 + 0] == 1 and obs[14] == 1 and obs[15] == 1  # back at the start
    assert info["visited_candidates"] == {(4, 0)}
    obs, reward, _, _, info = env.step(3)  # left; border no-op check below
    assert obs[1] == 1 and obs[15] == 0 and obs[16] == pytest.approx(1 / 12) and obs[14] == 0
    for _ in range(3):
        obs, *_ = env.step(3)
    assert obs[0] == 1  # stuck at the left border


def test_grid_oracle_succeeds_in_manhattan_steps():
    for structure in ("fixed", "resampled"):
        env = GridTrialEnv(structure=structure, goal_prior="uniform")
        agent = OracleAgent(env)
        for seed in range(10):
            infos = run_trial(env, agent, seed=seed)
            ends = inner_episodes(infos)
            assert len(ends) == 4 and all(i["success"] for i in ends)
            assert all(i["steps_in_episode"] == i["oracle_steps"] for i in ends)
            metrics = infos[-1]["episode_metrics"]
            assert metrics["success"] == 1.0 and metrics["return"] == 4.0 and metrics["exploitation_gain"] == 0.0


@pytest.mark.parametrize("max_steps", [12, 24])
def test_grid_bayes_sweep(max_steps):
    env = GridTrialEnv(max_steps=max_steps)
    agent = BayesSweepAgent(env)
    assert agent.tour == ((0, 0), (4, 0), (4, 4), (0, 4))  # a shortest tour from the centre: 4 + 4 + 4 + 4 steps
    for position, goal in enumerate(agent.tour):
        infos = run_trial(env, agent, seed=position, goal=goal)
        ends = inner_episodes(infos)
        metrics = infos[-1]["episode_metrics"]
        # exploitation: straight to the goal in every episode >= 2
        assert all(i["success"] and i["steps_in_episode"] == i["oracle_steps"] for i in ends[1:])
        assert metrics["exploitation_gain"] == 0.0
        tour_steps = 4 * (position + 1)
        assert ends[0]["success"] == (tour_steps <= max_steps)
        if goal == agent.tour[-1] and tour_steps <= max_steps:
            assert metrics["episode1_coverage"] == 1.0  # §10.12: the goal is the last corner visited
        # the tour of 16 steps does not fit in L=12: episode 1 then ends after 3 corners (see the report)
        assert metrics["episode1_coverage"] == min(position + 1, max_steps // 4) / 4


def test_grid_random_walk_rarely_succeeds_in_episode_one():
    env = GridTrialEnv()
    agent = RandomWalkAgent(seed=0)
    first = []
    for seed in range(400):
        agent.reset()
        obs, _ = env.reset(seed=seed)
        info = {"inner_done": False}
        while not info["inner_done"]:
            obs, _, _, _, info = env.step(agent.act(obs))
        first.append(info["success"])
    assert np.mean(first) < 0.5


def test_grid_structure_and_metrics():
    fixed = GridTrialEnv(episodes_per_trial=8)
    infos = run_trial(fixed, RandomWalkAgent(seed=1), seed=0)
    assert len({i["goal"] for i in infos}) == 1
    resampled = GridTrialEnv(episodes_per_trial=8, structure="resampled")
    goals = {i["goal"] for i in run_trial(resampled, RandomWalkAgent(seed=1), seed=0)}
    assert len(goals) > 1
    metrics = infos[-1]["episode_metrics"]
    assert set(metrics) == GRID_METRIC_KEYS and metrics["length"] == len(infos)
    ends = inner_episodes(infos)
    assert metrics["return"] == sum(i["success"] for i in ends) == metrics["success"] * 8
    assert [i["returns_mask"] for i in infos] == [not i["inner_done"] for i in infos]
