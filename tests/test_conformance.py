"""The contract every registered bonus must keep; a newly registered bonus is checked with no new test code."""

from __future__ import annotations

import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from explore_bench.bonuses import Bonus, BonusInputError, Transitions, list_bonuses, make_bonus

SPACES = {
    "minigrid_image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
    "vector": gym.spaces.Box(-1.0, 1.0, (6,), np.float32),
    "discrete": gym.spaces.Discrete(12),
}
ACTIONS = gym.spaces.Discrete(4)
T, N = 8, 4


def sample_obs(space: gym.Space, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, shape)
    if space.dtype == np.uint8:
        return rng.integers(0, 11, (*shape, *space.shape)).astype(np.uint8)  # MiniGrid-like codes
    return rng.uniform(-1, 1, (*shape, *space.shape)).astype(np.float32)


def random_batch(space: gym.Space, rng: np.random.Generator, t: int = T, n: int = N) -> Transitions:
    return Transitions(
        obs=sample_obs(space, (t, n), rng),
        actions=rng.integers(0, ACTIONS.n, (t, n)),
        next_obs=sample_obs(space, (t, n), rng),
        dones=np.zeros((t, n), dtype=bool),
    )


def repeated_batch(state: np.ndarray, action: int, t: int = T, n: int = N) -> Transitions:
    """One transition (state --action--> state) repeated T x N times."""
    obs = np.broadcast_to(state, (t, n, *np.shape(state))).copy()
    return Transitions(obs, np.full((t, n), action), obs.copy(), np.zeros((t, n), dtype=bool))


BONUSES = list_bonuses()
CASES = [(name, space) for name in BONUSES for space in SPACES]


def build(name: str, space_key: str, seed: int = 0) -> Bonus:
    return make_bonus(name, SPACES[space_key], ACTIONS, device="cpu", seed=seed)


def test_builtin_bonuses_registered():
    assert {"rnd", "rdd", "icm", "count", "simhash", "e3b"} <= set(BONUSES)


@pytest.mark.parametrize("name,space_key", CASES)
def test_output_shape_dtype_and_finite(name, space_key):
    rng = np.random.default_rng(0)
    bonus = build(name, space_key)
    batch = random_batch(SPACES[space_key], rng)
    bonus.warm_up(batch)
    rewards = bonus.compute(batch)
    assert isinstance(rewards, np.ndarray) and rewards.shape == (T, N) and rewards.dtype == np.float32
    assert np.isfinite(rewards).all()
    stats = bonus.update(batch)
    assert isinstance(stats, dict) and all(isinstance(v, float) for v in stats.values())


@pytest.mark.parametrize("name,space_key", CASES)
def test_torch_and_numpy_inputs_agree(name, space_key):
    batch = random_batch(SPACES[space_key], np.random.default_rng(1))
    as_torch = Transitions(*(torch.as_tensor(np.asarray(x)) for x in (batch.obs, batch.actions, batch.next_obs, batch.dones)))
    np.testing.assert_array_equal(build(name, space_key).compute(batch), build(name, space_key).compute(as_torch))


@pytest.mark.parametrize("name,space_key", CASES)
def test_deterministic_under_fixed_seed(name, space_key):
    outputs = []
    for _ in range(2):
        rng = np.random.default_rng(2)
        bonus = build(name, space_key, seed=7)
        run = []
        for _ in range(3):
            batch = random_batch(SPACES[space_key], rng)
            run.append(bonus.compute(batch))
            bonus.update(batch)
        run.append(bonus.compute(random_batch(SPACES[space_key], rng)))
        outputs.append(np.stack(run))
    np.testing.assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("name,space_key", CASES)
def test_state_dict_round_trip_gives_identical_rewards(name, space_key):
    rng = np.random.default_rng(3)
    trained = build(name, space_key, seed=0)
    for _ in range(3):
        batch = random_batch(SPACES[space_key], rng)
        trained.compute(batch)
        trained.update(batch)
    state = pickle.loads(pickle.dumps(trained.state_dict()))  # survives serialisation
    restored = build(name, space_key, seed=123)
    restored.load_state_dict(state)
    probe = random_batch(SPACES[space_key], rng)
    np.testing.assert_array_equal(trained.compute(probe), restored.compute(probe))
    # ...and they keep agreeing after a further update.
    trained.update(probe)
    restored.update(probe)
    probe2 = random_batch(SPACES[space_key], rng)
    np.testing.assert_allclose(trained.compute(probe2), restored.compute(probe2), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,space_key", CASES)
def test_novel_state_scores_higher_than_familiar(name, space_key):
    bonus = build(name, space_key)
    if bonus.family != "novelty":
        pytest.skip(f"{name} is not a novelty bonus")
    rng = np.random.default_rng(4)
    space = SPACES[space_key]
    familiar_state = sample_obs(space, (1, 1), rng)[0, 0]
    familiar = repeated_batch(familiar_state, action=1)
    bonus.warm_up(random_batch(space, rng, t=32))
    for _ in range(40):
        bonus.compute(familiar)
        bonus.update(familiar)
    novel = random_batch(space, rng, t=1)
    familiar_score = bonus.compute(repeated_batch(familiar_state, action=1, t=1)).mean()
    novel_score = bonus.compute(novel).mean()
    assert novel_score > familiar_score, f"{name}: novel {novel_score:.4g} <= familiar {familiar_score:.4g}"


@pytest.mark.parametrize("name", BONUSES)
def test_wrong_shape_is_a_clear_error(name):
    bonus = build(name, "minigrid_image")
    batch = random_batch(SPACES["minigrid_image"], np.random.default_rng(5))
    batch.next_obs = batch.next_obs[..., :2]
    with pytest.raises(BonusInputError, match=rf"bonus '{name}': expected next_obs of shape .*got shape \(8, 4, 7, 7, 2\)"):
        bonus.compute(batch)
    batch = random_batch(SPACES["minigrid_image"], np.random.default_rng(5))
    batch.dones = batch.dones[0]
    with pytest.raises(BonusInputError, match=rf"bonus '{name}': expected dones of shape \(T, N\)"):
        bonus.update(batch)


@pytest.mark.parametrize("name", BONUSES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_a_clear_error(name, bad):
    bonus = build(name, "vector")
    batch = random_batch(SPACES["vector"], np.random.default_rng(6))
    batch.next_obs[2, 1, 0] = bad
    with pytest.raises(BonusInputError, match=rf"bonus '{name}': expected finite values in next_obs, got NaN or inf"):
        bonus.compute(batch)


@pytest.mark.parametrize("name", BONUSES)
def test_unsupported_space_is_a_clear_error(name):
    space = gym.spaces.Dict({"image": gym.spaces.Box(0, 1, (3,))})
    with pytest.raises(BonusInputError, match=rf"bonus '{name}': expected an observation space of type .*got Dict"):
        make_bonus(name, space, ACTIONS)


def test_unknown_bonus_lists_valid_names():
    with pytest.raises(KeyError, match="registered bonuses: .*rnd"):
        make_bonus("no-such-bonus", SPACES["vector"], ACTIONS)


def test_importing_bonuses_pulls_in_no_agent_env_or_sb3_code():
    code = (
        "import sys, explore_bench.bonuses as b; b.list_bonuses(); "
        "bad = [m for m in sys.modules if m.startswith(('stable_baselines3', 'sb3_contrib', 'minigrid', "
        "'explore_bench.agents', 'explore_bench.envs', 'explore_bench.runner'))]; print(bad); assert not bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
