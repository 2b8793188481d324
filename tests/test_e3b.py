"""E3B acceptance tests (shared/specs/counts.md §6): T-C10, T-C11, T-C12, plus the streaming contract.

T-C13 needs the TVGrid environment and lives with it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from explore_bench.bonuses.base import BonusInputError, Transitions
from explore_bench.bonuses.e3b import E3B
from explore_bench.bonuses.networks import InputAdapter

torch.set_num_threads(1)

VEC = gym.spaces.Box(-1.0, 1.0, (8,), np.float32)
ACTS = gym.spaces.Discrete(4)
RIDGE = 0.1


def vector_batch(t: int, n: int, seed: int = 0, dones: np.ndarray | None = None) -> Transitions:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(t + 1, n, 8)).astype(np.float32)
    d = np.zeros((t, n), bool) if dones is None else dones
    return Transitions(obs[:-1], rng.integers(0, 4, (t, n)), obs[1:], d)


def one_hot_e3b(p: int, **kwargs) -> E3B:
    """E3B whose embedding is the one-hot code of a Discrete(p) observation (orthonormal phi)."""
    space = gym.spaces.Discrete(p)
    bonus = E3B(space, ACTS, seed=0, feature_dim=p, ridge=RIDGE, **kwargs)
    bonus.model.encoder = InputAdapter(space, image=False)
    return bonus


def state_batch(states: np.ndarray, dones: np.ndarray) -> Transitions:
    """Transitions of one discrete state sequence per env, `states` `(T + 1, N)`, with no episode ends."""
    t, n = dones.shape
    return Transitions(states[:-1], np.zeros((t, n), np.int64), states[1:], dones)


def episodes_batch(rng: np.random.Generator, t: int, n: int, p: int, done_prob: float) -> Transitions:
    """Random walks over p discrete states; after a done, obs[t + 1] is a fresh reset state while
    next_obs[t] keeps the terminal one, as `Transitions` requires."""
    next_obs = rng.integers(0, p, (t, n))
    dones = rng.random((t, n)) < done_prob
    obs = np.empty_like(next_obs)
    obs[0] = rng.integers(0, p, n)
    obs[1:] = np.where(dones[:-1], rng.integers(0, p, (t - 1, n)), next_obs[:-1])
    return Transitions(obs, np.zeros((t, n), np.int64), next_obs, dones)


def count_law(obs: np.ndarray, next_obs: np.ndarray, dones: np.ndarray, zero_first_step: bool) -> np.ndarray:
    """Expected one-hot bonuses 1 / (lambda + prior visits in the episode), from plain per-env counts."""
    t_len, n = dones.shape
    out = np.zeros((t_len, n))
    for i in range(n):
        counts: dict[int, int] = {}
        start = True
        for t in range(t_len):
            if start and zero_first_step:
                counts[obs[t, i]] = counts.get(obs[t, i], 0) + 1
            s = next_obs[t, i]
            out[t, i] = 1.0 / (RIDGE + counts.get(s, 0))
            counts[s] = counts.get(s, 0) + 1
            start = bool(dones[t, i])
            if start:
                counts = {}
    return out


# ---------------------------------------------------------------------------- T-C10
@pytest.mark.parametrize("zero_first_step", [False, True])
def test_sherman_morrison_matches_direct_inverse(zero_first_step):
    t, n, p = 200, 3, 16
    bonus = E3B(VEC, ACTS, seed=0, feature_dim=p, ridge=RIDGE, zero_first_step=zero_first_step)
    batch = vector_batch(t, n)
    r = np.concatenate([bonus.compute(batch[:120]), bonus.compute(batch[120:])])  # one stream, two calls
    with torch.no_grad():
        h = bonus.embed(torch.as_tensor(batch.next_obs).flatten(0, 1)).double().reshape(t, n, p)
        h0 = bonus.embed(torch.as_tensor(batch.obs[0])).double()
    for i in range(n):
        cov = RIDGE * torch.eye(p, dtype=torch.float64)
        if zero_first_step:
            cov += torch.outer(h0[i], h0[i])
        for s in range(t):  # bonus of step s uses the inverse before adding h_s
            expected = h[s, i] @ torch.linalg.solve(cov, h[s, i])
            assert r[s, i] == pytest.approx(expected.item(), rel=1e-5)
            cov += torch.outer(h[s, i], h[s, i])
        direct = torch.linalg.inv(cov)
        rel = (bonus.cov_inverse[i] - direct).norm() / direct.norm()
        assert rel < 1e-4, rel
    assert bonus.cov_inverse.dtype == torch.float64
    print(f"T-C10 (zero_first_step={zero_first_step}): relative error {rel.item():.2e}")


def test_envs_are_independent_and_vectorised():
    batch = vector_batch(30, 3, seed=1)
    together = E3B(VEC, ACTS, seed=0).compute(batch)
    for i in range(3):
        single = Transitions(batch.obs[:, i : i + 1], batch.actions[:, i : i + 1], batch.next_obs[:, i : i + 1], batch.dones[:, i : i + 1])
        np.testing.assert_allclose(E3B(VEC, ACTS, seed=0).compute(single)[:, 0], together[:, i], rtol=1e-6)


# ---------------------------------------------------------------------------- T-C11
@pytest.mark.parametrize("zero_first_step", [True, False])
def test_one_hot_inverse_count_law(zero_first_step):
    bonus = one_hot_e3b(5, zero_first_step=zero_first_step)
    stay = np.full((7, 1), 2)  # the episode starts in state 2 and stays there
    r = bonus.compute(state_batch(stay, np.zeros((6, 1), bool)))[:, 0]
    # obs[0] is the episode's first visit: zeroed (inserted, no reward) or not inserted at all
    first = 1 if zero_first_step else 0
    expected = [1.0 / (RIDGE + k) for k in range(first, first + 6)]
    np.testing.assert_allclose(r, expected, rtol=1e-6)
    if not zero_first_step:
        assert r[0] == pytest.approx(10.0)  # pitfall 1: scoring after the update would give ~0.91


@pytest.mark.parametrize("zero_first_step", [True, False])
def test_one_hot_law_many_envs_with_episode_ends(zero_first_step):
    t, n, p = 60, 4, 4
    batch = episodes_batch(np.random.default_rng(0), t, n, p, done_prob=0.1)
    dones = batch.dones
    assert dones.sum() >= 10 and (batch.obs[1:] != batch.next_obs[:-1]).any()
    bonus = one_hot_e3b(p, zero_first_step=zero_first_step)
    r = np.concatenate([bonus.compute(batch[:17]), bonus.compute(batch[17:])])
    expected = count_law(batch.obs, batch.next_obs, dones, zero_first_step)
    np.testing.assert_allclose(r, expected, rtol=1e-6)


# ---------------------------------------------------------------------------- T-C12
def test_done_restores_prior_and_reset_mask():
    bonus = E3B(VEC, ACTS, seed=0, ridge=RIDGE)
    dones = np.zeros((10, 3), bool)
    dones[9, 0] = True  # env 0 ends its episode at the last step
    dones[4, 1] = True  # env 1 mid-batch
    bonus.compute(vector_batch(10, 3, dones=dones))
    prior = torch.eye(32, dtype=torch.float64) / RIDGE
    assert torch.equal(bonus.cov_inverse[0], prior)
    assert not torch.allclose(bonus.cov_inverse[1], prior) and not torch.allclose(bonus.cov_inverse[2], prior)
    assert bonus.episode_start.tolist() == [True, False, False]

    bonus.reset(np.array([False, False, True]))
    assert torch.equal(bonus.cov_inverse[2], prior) and not torch.allclose(bonus.cov_inverse[1], prior)
    assert bonus.episode_start.tolist() == [True, False, True]
    with pytest.raises(BonusInputError, match="'e3b'"):
        bonus.reset(np.ones(2, bool))


def test_done_step_scores_terminal_obs_and_reset_obs_only_starts_the_next_episode():
    bonus = one_hot_e3b(4, zero_first_step=True)
    # env 0: 1 -> 1 -> 3 (terminal, done) | reset obs 1 -> 1; the terminal obs 3 is new in the episode
    obs, next_obs = np.array([[1], [1], [1], [1]]), np.array([[1], [3], [1], [1]])
    dones = np.array([[False], [True], [False], [False]])
    r = bonus.compute(Transitions(obs, np.zeros((4, 1), np.int64), next_obs, dones))[:, 0]
    # step 1 scores the terminal obs 3 (first visit), step 2 the reset obs 1 was inserted first: 1/(l+1)
    np.testing.assert_allclose(r, [1 / (RIDGE + 1), 1 / RIDGE, 1 / (RIDGE + 1), 1 / (RIDGE + 2)], rtol=1e-6)


# ------------------------------------------------------------- streaming contract
def test_state_dict_round_trip_gives_identical_rewards():
    bonus = E3B(VEC, ACTS, seed=0)
    dones = np.zeros((12, 2), bool)
    dones[5, 1] = True
    first, second = vector_batch(12, 2, seed=0, dones=dones), vector_batch(8, 2, seed=1)
    bonus.compute(first)
    state = bonus.state_dict()
    assert {"cov_inverse", "episode_start", "steps", "model", "optimizer"} <= set(state)
    expected = bonus.compute(second)
    restored = E3B(VEC, ACTS, seed=7)  # different weights until loaded
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.compute(second), expected)
    bonus.load_state_dict(state)
    np.testing.assert_array_equal(bonus.compute(second), expected)


def test_env_count_is_fixed_after_first_compute():
    bonus = E3B(VEC, ACTS, seed=0)
    bonus.compute(vector_batch(3, 4))
    with pytest.raises(BonusInputError, match="'e3b'.*N = 4.*N = 2"):
        bonus.compute(vector_batch(3, 2))


def test_update_trains_embedding_and_leaves_episodic_state():
    bonus = E3B(VEC, ACTS, seed=0)
    batch = vector_batch(16, 4)
    bonus.compute(batch)
    cov = bonus.cov_inverse.clone()
    before = [p.detach().clone() for p in bonus.model.parameters()]
    stats = bonus.update(batch)
    assert set(stats) == {"loss", "inverse_loss", "inverse_accuracy"} and np.isfinite(stats["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, bonus.model.parameters()))
    assert torch.equal(cov, bonus.cov_inverse)
    after = [p.detach().clone() for p in bonus.model.parameters()]
    r = bonus.compute(batch)
    assert np.isfinite(r).all() and (r >= 0).all() and r.dtype == np.float32
    assert all(torch.equal(a, b) for a, b in zip(after, bonus.model.parameters()))


def test_long_episode_stays_symmetric_positive():
    bonus = E3B(VEC, ACTS, seed=0, zero_first_step=False)
    r = np.concatenate([bonus.compute(vector_batch(250, 2, seed=s)) for s in range(4)])
    assert (r > 0).all() and np.isfinite(r).all()
    assert bonus.steps == 1000
    assert torch.equal(bonus.cov_inverse, bonus.cov_inverse.transpose(1, 2))  # re-symmetrised at step 1000
    assert (torch.linalg.eigvalsh(bonus.cov_inverse) > 0).all()
