"""ICM acceptance tests (shared/specs/icm.md §8): T-I1, T-I2, T-I4, T-I7, T-I8 (adapted), T-I9.

T-I3, T-I5 and T-I6 need the TVGrid environment and live with it.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from explore_bench.bonuses.base import BonusInputError, Transitions
from explore_bench.bonuses.icm import ICM
from explore_bench.bonuses.inverse_dynamics import forward_loss

torch.set_num_threads(1)

VEC = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)
ACTS = gym.spaces.Discrete(4)


def random_batch(obs_space: gym.Space, act_space: gym.Space, t: int, n: int, seed: int = 0) -> Transitions:
    rng = np.random.default_rng(seed)

    def obs():
        if isinstance(obs_space, gym.spaces.Discrete):
            return rng.integers(0, obs_space.n, (t, n))
        if isinstance(obs_space, gym.spaces.MultiDiscrete):
            return rng.integers(0, obs_space.nvec, (t, n, *obs_space.shape))
        if obs_space.dtype == np.uint8:
            return rng.integers(0, 256, (t, n, *obs_space.shape), dtype=np.uint8)
        return rng.normal(size=(t, n, *obs_space.shape)).astype(np.float32)

    if isinstance(act_space, gym.spaces.Discrete):
        actions = rng.integers(0, act_space.n, (t, n))
    elif isinstance(act_space, gym.spaces.MultiDiscrete):
        actions = rng.integers(0, act_space.nvec, (t, n, *act_space.shape))
    else:
        actions = rng.uniform(-1, 1, (t, n, *act_space.shape)).astype(np.float32)
    return Transitions(obs(), actions, obs(), np.zeros((t, n), bool))


# ----------------------------------------------------------------------------- T-I1
@pytest.mark.parametrize(
    "obs_space, act_space, t, n, feature_dim",
    [
        (VEC, ACTS, 1, 5, 32),  # per-step use: T = 1
        (VEC, ACTS, 7, 3, 32),
        (gym.spaces.Discrete(10), ACTS, 4, 2, 32),
        (gym.spaces.MultiDiscrete([5, 5, 3]), gym.spaces.MultiDiscrete([3, 2]), 4, 2, 32),
        (VEC, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), 4, 3, 32),  # regression inverse head
        (gym.spaces.Box(0, 255, (4, 42, 42), np.uint8), ACTS, 2, 3, 288),  # reference input size
    ],
)
def test_shapes_finite_nonnegative(obs_space, act_space, t, n, feature_dim):
    icm = ICM(obs_space, act_space, seed=0)
    batch = random_batch(obs_space, act_space, t, n)
    r = icm.compute(batch)
    assert r.shape == (t, n) and r.dtype == np.float32
    assert np.isfinite(r).all() and (r >= 0).all()
    phi = icm.embed(torch.as_tensor(np.asarray(batch.obs)).float().flatten(0, 1))
    assert phi.shape == (t * n, feature_dim) and icm.feature_dim == feature_dim
    stats = icm.update(batch)
    assert set(stats) == {"loss", "inverse_loss", "forward_loss", "inverse_accuracy"}
    assert all(np.isfinite(stats[k]) for k in ("loss", "inverse_loss", "forward_loss"))
    if isinstance(act_space, gym.spaces.Box):
        assert np.isnan(stats["inverse_accuracy"])  # no classes to be right about
    else:
        assert 0.0 <= stats["inverse_accuracy"] <= 1.0


def test_atari_size_defaults():
    icm = ICM(gym.spaces.Box(0, 255, (84, 84, 4), np.uint8), ACTS, seed=0)
    assert (icm.feature_dim, icm.hidden, icm.optimizer.param_groups[0]["lr"]) == (288, 256, 1e-4)
    small = ICM(VEC, ACTS, seed=0)
    assert (small.feature_dim, small.hidden, small.optimizer.param_groups[0]["lr"]) == (32, 64, 3e-4)


def test_bad_input_names_the_bonus():
    icm = ICM(VEC, ACTS, seed=0)
    good = random_batch(VEC, ACTS, 3, 2)
    bad_shape = Transitions(good.obs[..., :4], good.actions, good.next_obs, good.dones)
    nan_obs = Transitions(good.obs, good.actions, np.full_like(good.next_obs, np.nan), good.dones)
    bad_action = Transitions(good.obs, np.full_like(good.actions, 4), good.next_obs, good.dones)
    for batch in (bad_shape, nan_obs, bad_action):
        with pytest.raises(BonusInputError, match="'icm'"):
            icm.compute(batch)
    with pytest.raises(BonusInputError, match="'icm'"):
        ICM(gym.spaces.Text(5), ACTS)


# ----------------------------------------------------------------------------- T-I2
def test_forward_loss_convention():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(64, 288, generator=g), torch.randn(64, 288, generator=g)
    expected = 0.5 * ((pred - target) ** 2).sum(-1)
    torch.testing.assert_close(forward_loss(pred, target), expected, rtol=1e-6, atol=1e-6)

    # and the bonus is eta * that loss on (phi(obs), a, phi(next_obs))
    icm = ICM(VEC, ACTS, seed=1, eta=0.01)
    batch = random_batch(VEC, ACTS, 3, 4, seed=1)
    with torch.no_grad():
        x, x1 = (torch.as_tensor(v).flatten(0, 1) for v in (batch.obs, batch.next_obs))
        a = torch.as_tensor(batch.actions).flatten(0, 1)
        pred = icm.forward_model(torch.cat([icm.model(x), torch.nn.functional.one_hot(a, 4).float()], -1))
        manual = 0.01 * 0.5 * ((pred - icm.model(x1)) ** 2).sum(-1)
    np.testing.assert_allclose(icm.compute(batch).reshape(-1), manual.numpy(), rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------- T-I4
GRID = 8
MOVES = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])


def grid_transitions(rng: np.random.Generator, x_lo: int, x_hi: int, n: int) -> Transitions:
    """Random moves in the columns [x_lo, x_hi) of an 8x8 grid (walls at the region's edges), as T = 1."""
    s = np.stack([rng.integers(x_lo, x_hi, n), rng.integers(0, GRID, n)], -1)
    a = rng.integers(0, 4, n)
    s1 = s + MOVES[a]
    s1[:, 0] = s1[:, 0].clip(x_lo, x_hi - 1)
    s1[:, 1] = s1[:, 1].clip(0, GRID - 1)
    return Transitions(s[None], a[None], s1[None], np.zeros((1, n), bool))


def test_novelty_forward_error_drops_and_novel_region_scores_higher():
    rng = np.random.default_rng(0)
    space = gym.spaces.MultiDiscrete([GRID, GRID])  # one-hot coded (x, y), like MiniGrid's symbolic obs
    # lr 1e-3 (not the 3e-4 default) only to keep the test short
    icm = ICM(space, ACTS, seed=0, lr=1e-3, n_epochs=1, n_minibatches=1)
    trained_region = grid_transitions(rng, 0, GRID // 2, 2000)
    unseen_region = grid_transitions(rng, GRID // 2, GRID, 2000)
    before = icm.compute(trained_region).mean()
    for _ in range(250):
        stats = icm.update(grid_transitions(rng, 0, GRID // 2, 256))
    after = icm.compute(trained_region).mean()
    novel = icm.compute(unseen_region).mean()
    print(f"T-I4: forward error drop {before / after:.1f}x, unseen/trained {novel / after:.1f}x, "
          f"inverse accuracy {stats['inverse_accuracy']:.2f}")  # fmt: skip
    assert before / after >= 10.0
    assert novel / after >= 3.0
    assert stats["inverse_accuracy"] >= 0.8  # features are still informative, not collapsed


# ----------------------------------------------------------------------------- T-I7
def params_of(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_gradient_isolation():
    icm = ICM(VEC, ACTS, seed=0)
    batch = random_batch(VEC, ACTS, 8, 4)
    arrays = [np.copy(v) for v in (batch.obs, batch.actions, batch.next_obs, batch.dones)]
    modules = (icm.model, icm.forward_model)
    grad_modes = []
    hooks = [m.register_forward_hook(lambda *_: grad_modes.append(torch.is_grad_enabled())) for m in modules]
    icm_before = [params_of(m) for m in modules]

    r = icm.compute(batch)  # compute runs without autograd and touches nothing
    assert grad_modes and not any(grad_modes)
    assert all(same(p, params_of(m)) for p, m in zip(icm_before, modules))
    assert all(p.grad is None for m in modules for p in m.parameters())
    for h in hooks:
        h.remove()

    # a policy ("PPO") update that uses the bonus leaves ICM untouched
    policy = torch.nn.Linear(6, 4)
    policy_opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    logp = torch.log_softmax(policy(torch.as_tensor(batch.obs)), -1)
    taken = logp.gather(-1, torch.as_tensor(batch.actions)[..., None]).squeeze(-1)
    (-(taken * torch.as_tensor(r)).mean()).backward()
    policy_opt.step()
    assert all(same(p, params_of(m)) for p, m in zip(icm_before, modules))

    # an ICM update trains ICM and changes nothing else: policy, inputs, global RNG
    policy_before = params_of(policy)
    rng_before = torch.get_rng_state()
    policy_opt.zero_grad()
    icm.update(batch)
    assert not all(same(p, params_of(m)) for p, m in zip(icm_before, modules))
    assert same(policy_before, params_of(policy)) and all(p.grad is None for p in policy.parameters())
    for old, new in zip(arrays, (batch.obs, batch.actions, batch.next_obs, batch.dones)):
        np.testing.assert_array_equal(old, new)
    assert torch.equal(rng_before, torch.get_rng_state())


# ----------------------------------------------------------------------------- T-I8
def test_terminal_observation_scores_the_done_step_and_reset_obs_never_is_a_target():
    """Adapted: `Transitions.next_obs` at a done step already holds the terminal observation.

    Env 0 terminates at step 4 (0-based); its reset observation (all zeros) is obs[5]. The bonus of step 4
    must come from (obs[4], a[4], terminal obs) and the zero reset observation must never be a forward target.
    """
    t, n = 8, 2
    icm = ICM(VEC, ACTS, seed=0)
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(t + 1, n, 6)).astype(np.float32) + 2.0  # a trajectory, never all-zero
    obs[5, 0] = 0.0  # env 0: reset observation after the terminal step 4
    terminal = rng.normal(size=6).astype(np.float32) + 2.0
    next_obs = obs[1:].copy()
    next_obs[4, 0] = terminal
    dones = np.zeros((t, n), bool)
    dones[4, 0] = True
    actions = rng.integers(0, 4, (t, n))
    batch = Transitions(obs[:-1], actions, next_obs, dones)

    targets = []
    original = icm.forward_losses

    def spy(phi_t, a, phi_t1):
        with torch.no_grad():
            phi_zero = icm.embed(torch.zeros(1, 6))
            targets.append((phi_t1.detach() - phi_zero).abs().amax(-1).min().item())
        return original(phi_t, a, phi_t1)

    icm.forward_losses = spy
    r = icm.compute(batch)
    icm.forward_losses = original
    alone = icm.compute(Transitions(obs[4:5, :1], actions[4:5, :1], terminal[None, None], dones[4:5, :1]))
    assert r[4, 0] == pytest.approx(alone[0, 0], rel=1e-6)

    other_terminal = Transitions(batch.obs, actions, next_obs.copy(), dones)
    other_terminal.next_obs[4, 0] += 1.0
    assert icm.compute(other_terminal)[4, 0] != pytest.approx(r[4, 0], rel=1e-3)
    other_reset = Transitions(batch.obs.copy(), actions, next_obs, dones)
    other_reset.obs[5, 0] = 1.0
    assert icm.compute(other_reset)[4, 0] == r[4, 0]

    icm.forward_losses = spy
    icm.update(batch)
    icm.forward_losses = original
    assert len(targets) == 1 + 4 * 4 and min(targets) > 1e-4  # compute + every update minibatch


# ----------------------------------------------------------------------------- T-I9
@pytest.mark.parametrize("detach", [False, True])
def test_detach_forward_target_routes_forward_gradients_through_phi_t_only(detach):
    icm = ICM(VEC, ACTS, seed=0, detach_forward_target=detach)
    batch = random_batch(VEC, ACTS, 4, 4)
    x = torch.as_tensor(batch.obs).flatten(0, 1).requires_grad_(True)
    x1 = torch.as_tensor(batch.next_obs).flatten(0, 1).requires_grad_(True)
    a = torch.as_tensor(batch.actions).flatten(0, 1)
    icm.training_losses(x, x1, a)["forward_loss"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # through phi_t
    through_target = x1.grad is not None and x1.grad.abs().sum() > 0
    assert through_target == (not detach)
    if detach:  # encoder gradients equal those of L_F with phi_t1 a constant
        grads = [p.grad.clone() for p in icm.model.encoder.parameters()]
        icm.optimizer.zero_grad()
        with torch.no_grad():
            phi_t1 = icm.model(x1)
        icm.forward_losses(icm.model(x), a, phi_t1).mean().backward()
        for g, p in zip(grads, icm.model.encoder.parameters()):
            torch.testing.assert_close(g, p.grad)


def test_state_dict_round_trip():
    icm = ICM(VEC, ACTS, seed=0)
    batch = random_batch(VEC, ACTS, 4, 3)
    icm.update(batch)
    other = ICM(VEC, ACTS, seed=5)
    # deepcopy as a save/load would: torch optimisers load their state tensors by reference
    other.load_state_dict(copy.deepcopy(icm.state_dict()))
    np.testing.assert_array_equal(icm.compute(batch), other.compute(batch))
    assert icm.update(batch) == other.update(batch)
