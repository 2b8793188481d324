"""Empowerment acceptance tests (shared/specs/empowerment.md §6): T-E1..T-E12.

Exact solver (T-E1..T-E6) against the spec's ground truth. Learned estimator in the `branching` mode with
one-hot features (Discrete observations), trained as the spec says: 2000 steps of batch 256, Adam 1e-3.
To fit the file into about a minute on 2 cores, T-E7, T-E8 and T-E10 share one trained bonus: the 5x5 room
with the top-left cell walled in (trapped) and a noisy-TV cell at (1, 3). At n = 1 a cell's empowerment
depends only on its own successors, so the cells T-E7 tests keep the open room's values (asserted below from
the exact solver). T-E11 and T-E12 train for fewer steps (they test plumbing and a per-transition mean, not
the spec's 2000-step accuracy), stated at each test.
"""

from __future__ import annotations

import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
import test_conformance as conformance
import torch
from scipy.stats import spearmanr

from explore_bench.bonuses import BonusInputError, Transitions, make_bonus
from explore_bench.bonuses.empowerment import Empowerment, window_index
from explore_bench.bonuses.empowerment_exact import (
    MOVE_ACTIONS,
    STAY_ACTIONS,
    TV,
    WALL,
    blahut_arimoto,
    exact_empowerment,
    grid_empowerment,
    make_gridworld,
    n_step_channel,
    room,
    sample_successors,
    trapped_room,
    with_cells,
)

torch.set_num_threads(1)

ROOM_N1 = np.array([
    [1.585, 2.000, 2.000, 2.000, 1.585],
    [2.000, 2.322, 2.322, 2.322, 2.000],
    [2.000, 2.322, 2.322, 2.322, 2.000],
    [2.000, 2.322, 2.322, 2.322, 2.000],
    [1.585, 2.000, 2.000, 2.000, 1.585],
])  # fmt: skip
ROOM_N2 = np.array([
    [2.585, 3.000, 3.170, 3.000, 2.585],
    [3.000, 3.459, 3.585, 3.459, 3.000],
    [3.170, 3.585, 3.700, 3.585, 3.170],
    [3.000, 3.459, 3.585, 3.459, 3.000],
    [2.585, 3.000, 3.170, 3.000, 2.585],
])  # fmt: skip
# slip, n -> centre, edge-middle, corner (spec §2.4)
SLIPPERY = {
    (0.2, 1): (1.3676, 1.1611, 0.9058), (0.2, 2): (2.0236, 1.7263, 1.3781),
    (0.5, 1): (0.5510, 0.4630, 0.3595), (0.5, 2): (0.8143, 0.6994, 0.5700),
}  # fmt: skip
CENTRE, EDGE, CORNER = (2, 2), (0, 2), (0, 0)
TWO_ROOMS = ("...#...", "...#...", ".......", "...#...")  # deterministic, with an interior wall and a door
ACTIONS = gym.spaces.Discrete(5)
BITS = 1.0 / math.log(2)


# ------------------------------------------------------------------------------------------ exact solver
def test_t_e1_deterministic_room_values():
    np.testing.assert_allclose(grid_empowerment(room(5), 1), ROOM_N1, atol=1e-3)
    np.testing.assert_allclose(grid_empowerment(room(5), 2), ROOM_N2, atol=1e-3)


def reachable(layout: tuple[str, ...], cell: tuple[int, int], n: int, moves=STAY_ACTIONS) -> int:
    """Distinct cells reachable by some n-action sequence, by breadth-first search on the layout itself."""
    frontier = {cell}
    for _ in range(n):
        step = set()
        for r, c in frontier:
            for dr, dc in moves:
                inside = 0 <= r + dr < len(layout) and 0 <= c + dc < len(layout[0])
                step.add((r + dr, c + dc) if inside and layout[r + dr][c + dc] != WALL else (r, c))
        frontier = step
    return len(frontier)


@pytest.mark.parametrize("layout", [room(5), trapped_room(5), TWO_ROOMS], ids=["room", "trapped", "two_rooms"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_t_e2_deterministic_closed_form(layout, n):
    world = make_gridworld(layout)
    expected = [math.log2(reachable(layout, cell, n)) for cell in world.cells]
    np.testing.assert_allclose(exact_empowerment(world.kernel, n), expected, atol=1e-9)


def test_t_e2_four_action_caution():
    """Without `stay` the centre and edge-middle tie (spec §2.4 caution)."""
    for n, (centre, corner) in {1: (2.0, 1.585), 2: (3.170, 2.585)}.items():
        grid = grid_empowerment(room(5), n, actions=4)
        np.testing.assert_allclose(grid[[2, 0, 0], [2, 2, 0]], [centre, centre, corner], atol=1e-3)
        world = make_gridworld(room(5), actions=4)
        expected = [math.log2(reachable(room(5), cell, n, MOVE_ACTIONS)) for cell in world.cells]
        np.testing.assert_allclose(exact_empowerment(world.kernel, n), expected, atol=1e-9)


@pytest.mark.parametrize("n", [1, 2])
def test_t_e3_trapped_cell(n):
    assert abs(grid_empowerment(trapped_room(5), n)[0, 0]) < 1e-9


def test_t_e4_noisy_tv_cell():
    world = make_gridworld(with_cells(room(5), {(1, 3): TV}))
    tv = world.index(1, 3)
    successors = {world.cells[s] for s in np.flatnonzero(world.kernel[:, tv].sum(0))}
    assert successors == {(0, 3), (2, 3), (1, 2), (1, 4)}  # uniform over 4 cells whatever the action
    np.testing.assert_allclose(world.kernel[:, tv][:, [world.index(*c) for c in successors]], 0.25)
    assert abs(exact_empowerment(world.kernel, 1)[tv]) < 1e-9


def test_t_e5_slip_lowers_empowerment_and_matches_table():
    for n in (1, 2):
        # BA at tol 1e-8 (spec §2.2: it suffices; the slippery 2-step channels take thousands of iterations)
        values = {slip: grid_empowerment(room(5), n, slip=slip, tol=1e-8) for slip in (0.0, 0.2, 0.5)}
        assert (values[0.0] > values[0.2]).all() and (values[0.2] > values[0.5]).all()
        for slip in (0.2, 0.5):
            grid = values[slip]
            np.testing.assert_allclose([grid[CENTRE], grid[EDGE], grid[CORNER]], SLIPPERY[slip, n], atol=1e-3)


def test_t_e6_blahut_arimoto_bounds():
    rng = np.random.default_rng(0)
    slippery = make_gridworld(room(5), slip=0.2)
    channels = [n_step_channel(slippery.kernel, slippery.index(*EDGE), 2), rng.dirichlet(np.ones(6), size=9)]
    channels.append(np.eye(4)[[0, 0, 1, 2, 3, 3]])  # deterministic with duplicate inputs: capacity 2 bits
    for channel in channels:
        result = blahut_arimoto(channel, tol=1e-10)
        assert result.converged and result.upper - result.lower < 1e-8
        assert (result.lowers <= result.uppers + 1e-12).all()
    assert result.lower == pytest.approx(2.0, abs=1e-9)


# ------------------------------------------------------------------------------------ learned estimator
def branching_batch(bonus: Empowerment, world, rng: np.random.Generator, size: int = 256) -> Transitions:
    """Start states drawn uniformly, sequences from the bonus's source, executed open-loop (cloned states)."""
    states = rng.integers(world.n_states, size=size)
    sequences = bonus.sample_sequences(states)
    path = sample_successors(world.kernel, states, sequences, rng)
    dones = np.zeros((bonus.horizon, size), bool)
    return Transitions(path[:, :-1].T, sequences.T, path[:, 1:].T, dones)


def train_branching(layout, horizon: int, steps: int = 2000, icm=None, seed: int = 0):
    """The spec's T-E7 training: `steps` updates of 256 branching samples, Adam 1e-3; `icm`, if given, is
    trained on every 8th batch of the same data. Returns the world, the bonus and the last 50 batches."""
    world = make_gridworld(layout)
    bonus = make_bonus("empowerment", gym.spaces.Discrete(world.n_states), ACTIONS, seed=seed, source="branching",
                       horizon=horizon, lr=1e-3, n_epochs=1, n_minibatches=1)
    rng = np.random.default_rng(seed)
    recent = []
    for step in range(steps):
        batch = branching_batch(bonus, world, rng)
        bonus.update(batch)
        if icm is not None and step % 8 == 0:
            icm.update(batch)
        recent = (recent + [batch])[-50:]
    return world, bonus, recent


@pytest.fixture(scope="module")
def trained_n1():
    """n = 1, 2000 steps, in the room with a trapped corner and a noisy TV; ICM trained alongside."""
    layout = with_cells(room(5), {(0, 1): WALL, (1, 0): WALL, (1, 3): TV})
    world = make_gridworld(layout)
    # ICM at the tests' learning rate 1e-3 too (spec §5.3): at its RL default 3e-4, 250 updates leave its error on
    # the deterministic cells as high as the TV's on some seeds (nothing learnt yet, nothing contrasted).
    icm = make_bonus("icm", gym.spaces.Discrete(world.n_states), ACTIONS, seed=0, lr=1e-3, n_epochs=1, n_minibatches=1)
    world, bonus, recent = train_branching(layout, horizon=1, icm=icm)
    return world, bonus, icm, recent


def test_t_e7_one_step_accuracy_and_order(trained_n1):
    world, bonus, _, _ = trained_n1
    cells = [CENTRE, (4, 2), (4, 4)]  # centre, edge-middle, corner (the top-left corner is the trapped cell)
    states = [world.index(*cell) for cell in cells]
    exact = exact_empowerment(world.kernel, 1)[states]
    np.testing.assert_allclose(exact, [2.322, 2.000, 1.585], atol=1e-3)  # the extra cells leave these alone
    learned = bonus.estimate(np.array(states))
    np.testing.assert_allclose(learned, [math.log2(5), 2.0, math.log2(3)], atol=0.1)
    assert learned[0] > learned[1] > learned[2]


def test_t_e8_trapped(trained_n1):
    world, bonus, _, _ = trained_n1
    assert bonus.estimate(np.array([world.index(0, 0)]))[0] < 0.05


def test_t_e10_noise_immunity_unlike_icm(trained_n1):
    world, bonus, icm, recent = trained_n1
    tv = world.index(1, 3)
    assert bonus.estimate(np.array([tv]))[0] < 0.1
    fields = ("obs", "actions", "next_obs", "dones")
    batch = Transitions(*(np.concatenate([getattr(b, k) for b in recent], axis=1) for k in fields))
    forward_error = icm.compute(batch)[0]
    leaving_tv = batch.obs[0] == tv
    assert leaving_tv.sum() > 100
    assert forward_error[leaving_tv].mean() > forward_error.mean()


def test_t_e9_two_step_ranking():
    world, bonus, _ = train_branching(room(5), horizon=2)
    learned = bonus.estimate(np.arange(world.n_states))
    exact = exact_empowerment(world.kernel, 2)
    assert spearmanr(learned, exact).statistic >= 0.9
    assert np.abs(learned - exact).mean() <= 0.25
    grid = world.to_grid(learned)
    # "next-to-corner" is the diagonal neighbour (1, 1), 3.459 bits: the edge cell beside a corner has 3.000,
    # below the edge-middle's 3.170, so the spec's order only holds for the diagonal one.
    assert grid[CENTRE] > grid[1, 1] > grid[EDGE] > grid[CORNER]


# ---------------------------------------------------------------------------------------------- modes
def uniform_policy_batch(world, rng: np.random.Generator, size: int = 256, state: int | None = None) -> Transitions:
    """One step from uniformly drawn (or fixed) states under the uniform policy, its log-prob in infos."""
    states = rng.integers(world.n_states, size=size) if state is None else np.full(size, state)
    actions = rng.integers(world.n_actions, size=size)
    path = sample_successors(world.kernel, states, actions[:, None], rng)
    log_prob = np.full((1, size), -math.log(world.n_actions), np.float32)
    dones = np.zeros((1, size), bool)
    return Transitions(path[None, :, 0], actions[None], path[None, :, 1], dones, {"log_prob": log_prob})


def test_t_e11_uniform_source_on_uniform_policy_is_the_unweighted_estimator():
    """100 updates (plumbing: the two estimators must agree exactly, whatever their accuracy)."""
    world = make_gridworld(room(5))
    kwargs = {"source": "uniform_source", "lr": 1e-3, "n_epochs": 1, "n_minibatches": 1, "seed": 3}
    space = gym.spaces.Discrete(world.n_states)
    weighted = make_bonus("empowerment", space, ACTIONS, **kwargs)
    unweighted = make_bonus("empowerment", space, ACTIONS, importance_weights=False, **kwargs)
    policy = make_bonus("empowerment", space, ACTIONS, **{**kwargs, "source": "policy_source"})
    rng = np.random.default_rng(0)
    for _ in range(100):
        batch = uniform_policy_batch(world, rng)
        stats = weighted.update(batch)
        unweighted.update(batch)
        policy.update(batch)
        assert stats["weight_mean"] == 1.0 and stats["ess_fraction"] == 1.0 and stats["stored_log_prob"] == 1.0
    probe = uniform_policy_batch(world, rng)
    np.testing.assert_array_equal(weighted.compute(probe), unweighted.compute(probe))
    # With the uniform policy as source the policy-source sample log q - log pi is the same number.
    np.testing.assert_allclose(weighted.compute(probe), policy.compute(probe), atol=1e-6)


@pytest.mark.parametrize("estimator", ["variational", "infopower"])
def test_t_e12_policy_source_mean_is_uniform_source_information(estimator):
    """300 updates of batch 256 (a per-transition mean of a one-step planner, which converges well before the
    2000 steps the spec gives the learned E_hat of T-E7)."""
    world = make_gridworld(room(5))
    bonus = make_bonus("empowerment", gym.spaces.Discrete(world.n_states), ACTIONS, estimator=estimator,
                       source="policy_source", lr=1e-3, n_epochs=1, n_minibatches=1, seed=0)
    assert bonus.estimator == estimator
    rng = np.random.default_rng(0)
    for _ in range(300):
        stats = bonus.update(uniform_policy_batch(world, rng))
    assert stats[f"estimator_{estimator}"] == 1.0 and stats["source_policy_source"] == 1.0
    for cell, expected in ((CENTRE, math.log2(5)), (CORNER, 1.371)):
        probe = uniform_policy_batch(world, rng, size=4000, state=world.index(*cell))
        assert bonus.compute(probe).mean() * BITS == pytest.approx(expected, abs=0.1), cell
        # Without the stored log-prob the learned behaviour model stands in for the uniform policy.
        no_log_prob = Transitions(probe.obs, probe.actions, probe.next_obs, probe.dones)
        assert bonus.compute(no_log_prob).mean() * BITS == pytest.approx(expected, abs=0.1), cell


def test_corner_uniform_source_information_is_1_371_bits():
    """The number T-E12 uses: I under a uniform source at the corner (stay, N and W all stay put)."""
    world = make_gridworld(room(5))
    channel = n_step_channel(world.kernel, world.index(*CORNER), 1)
    marginal = channel.mean(0)
    mutual = np.mean([np.sum(row[row > 0] * np.log2(row[row > 0] / marginal[row > 0])) for row in channel])
    assert mutual == pytest.approx(1.371, abs=1e-3)


# ----------------------------------------------------------------------------------------- plumbing
def test_windows_never_cross_episode_ends():
    dones = torch.tensor([[False, True], [True, False], [False, False], [False, False]])
    t, env = window_index(dones, 2)
    assert sorted(zip(t.tolist(), env.tolist())) == [(0, 0), (1, 1), (2, 0), (2, 1)]
    t, env = window_index(dones, 5)  # longer than the batch: none
    assert len(t) == 0


def test_state_value_mode_uses_two_step_windows_and_t_smaller_than_n():
    bonus = make_bonus("empowerment", gym.spaces.Discrete(6), gym.spaces.Discrete(3), horizon=2, seed=0)
    rng = np.random.default_rng(0)
    obs, nxt = rng.integers(6, size=(4, 2)), rng.integers(6, size=(4, 2))
    batch = Transitions(obs, rng.integers(3, size=(4, 2)), nxt, np.zeros((4, 2), bool))
    stats = bonus.update(batch)
    assert stats["source_state_value"] == 1.0 and stats["horizon"] == 2.0 and stats["open_loop"] == 0.0
    assert math.isfinite(stats["loss"])
    assert bonus.compute(batch).shape == (4, 2)
    assert math.isnan(bonus.update(batch[:1])["loss"])  # T = 1 < n: no window, nothing trained


def test_estimator_is_labelled_and_saved():
    bonus = make_bonus("empowerment", gym.spaces.Discrete(4), ACTIONS, estimator="infopower", seed=0)
    state = pickle.loads(pickle.dumps(bonus.state_dict()))
    assert state["estimator"] == "infopower" and state["source"] == "policy_source"
    other = make_bonus("empowerment", gym.spaces.Discrete(4), ACTIONS, estimator="infopower", source="uniform_source")
    with pytest.raises(ValueError, match="saved with source='policy_source'"):
        other.load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"estimator": "mine"}, "estimator must be one of"),
        ({"source": "closed_loop"}, "source must be one of"),
        ({"estimator": "infopower", "horizon": 2}, "horizon 1"),
        ({"source": "policy_source", "horizon": 2}, "per-transition"),
        ({"source": "branching", "horizon": 5}, "autoregressive"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=rf"bonus 'empowerment': .*{message}"):
        make_bonus("empowerment", gym.spaces.Discrete(4), ACTIONS, **kwargs)


def test_bad_action_space_and_log_prob_are_clear_errors():
    with pytest.raises(BonusInputError, match="bonus 'empowerment': expected a Discrete action space"):
        make_bonus("empowerment", gym.spaces.Discrete(4), gym.spaces.Box(-1, 1, (2,)))
    bonus = make_bonus("empowerment", gym.spaces.Discrete(4), ACTIONS, source="policy_source", seed=0)
    batch = Transitions(np.zeros((2, 3), int), np.zeros((2, 3), int), np.ones((2, 3), int), np.zeros((2, 3), bool),
                        {"log_prob": np.zeros((2, 2))})
    with pytest.raises(BonusInputError, match=r"expected infos\['log_prob'\] of finite log-probabilities"):
        bonus.compute(batch)
    batch.actions[0, 0] = 5
    with pytest.raises(BonusInputError, match=r"expected actions in \[0, 5\)"):
        bonus.update(batch)
    with pytest.raises(ValueError, match="sample_sequences needs source='branching'"):
        bonus.sample_sequences(np.zeros(3, int))


VARIANTS = [("variational", "policy_source"), ("variational", "uniform_source"), ("variational", "branching"),
            ("infopower", "policy_source"), ("infopower", "uniform_source"), ("infopower", "state_value")]


@pytest.mark.parametrize("estimator,source", VARIANTS)
@pytest.mark.parametrize("space_key", list(conformance.SPACES))
def test_every_estimator_and_source_keeps_the_contract(estimator, source, space_key):
    """The conformance suite builds the default (variational, state_value); the other modes, checked here:
    shape, dtype, finiteness, determinism and state round trip on the conformance suite's spaces."""
    space = conformance.SPACES[space_key]

    def build(seed: int) -> Empowerment:
        return make_bonus("empowerment", space, conformance.ACTIONS, seed=seed, estimator=estimator, source=source)

    rng = np.random.default_rng(0)
    bonus, twin = build(0), build(0)
    for _ in range(2):
        batch = conformance.random_batch(space, rng)
        rewards = bonus.compute(batch)
        assert rewards.shape == batch.dones.shape and rewards.dtype == np.float32 and np.isfinite(rewards).all()
        np.testing.assert_array_equal(rewards, twin.compute(batch))
        stats = bonus.update(batch)
        twin.update(batch)
        assert all(isinstance(v, float) for v in stats.values()) and stats[f"estimator_{estimator}"] == 1.0
    restored = build(99)
    restored.load_state_dict(pickle.loads(pickle.dumps(bonus.state_dict())))
    probe = conformance.random_batch(space, rng)
    np.testing.assert_array_equal(bonus.compute(probe), restored.compute(probe))
