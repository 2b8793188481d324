"""SimHash counts (counts.md §3, §6 T-C2..T-C6)."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch

from explore_bench.bonuses import BonusInputError, Transitions, make_bonus
from explore_bench.bonuses.counting import SKETCH_PRIMES, CountMinSketch

torch.set_num_threads(1)

ACT = gym.spaces.Discrete(3)
VEC = gym.spaces.Box(-np.inf, np.inf, (16,), np.float32)


def batch_of(next_obs, dones=None) -> Transitions:
    next_obs = np.asarray(next_obs)
    t, n = next_obs.shape[:2]
    dones = np.zeros((t, n), bool) if dones is None else np.asarray(dones, bool)
    return Transitions(np.zeros_like(next_obs), np.zeros((t, n), np.int64), next_obs, dones)


def test_determinism_tc3():
    """T-C3: identical inputs -> identical codes and counts; different seeds -> different A."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 16)).astype(np.float32)
    a = make_bonus("simhash", VEC, ACT, seed=7)
    b = make_bonus("simhash", VEC, ACT, seed=7)
    c = make_bonus("simhash", VEC, ACT, seed=8)
    assert torch.equal(a.projection, b.projection) and not torch.equal(a.projection, c.projection)
    assert a.projection.shape == (64, 16)
    for _ in range(3):
        np.testing.assert_array_equal(a.compute(batch_of(x)), b.compute(batch_of(x)))
        np.testing.assert_array_equal(a.last_counts, b.last_counts)
    np.testing.assert_array_equal(a.code_bits(x[0]), b.code_bits(x[0]))
    assert (a.code_bits(x[0]) != c.code_bits(x[0])).any()
    np.testing.assert_array_equal(a.last_counts, np.full((5, 3), 3))  # same inputs, counted three times


def test_angle_property_tc4():
    """T-C4: with k = 1024 the fraction of differing bits estimates theta / pi.

    Per pair the fraction is Binomial(1024, theta/pi) / 1024 (std up to 0.0156), so the mean *absolute*
    deviation is ~0.0098 by itself; the 0.01 bound is on the signed mean (bias), and 0.06 per pair is ~3.8
    std at theta = pi/2.
    """
    bonus = make_bonus("simhash", VEC, ACT, seed=6, key_dim=1024, center=False)
    rng = np.random.default_rng(106)
    theta = rng.uniform(0, np.pi, 1000)
    u = rng.standard_normal((1000, 16))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = rng.standard_normal((1000, 16))
    w -= (w * u).sum(1, keepdims=True) * u
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    v = np.cos(theta)[:, None] * u + np.sin(theta)[:, None] * w
    deviation = (bonus.code_bits(u) != bonus.code_bits(v)).mean(axis=1) - theta / np.pi
    assert abs(deviation.mean()) < 0.01
    assert np.abs(deviation).max() < 0.06


def test_count_min_tc5():
    """T-C5: 10k random keys with known multiplicities: never under-counted, exact for >= 99.9%."""
    bonus = make_bonus("simhash", VEC, ACT, seed=0, storage="sketch")
    rng = np.random.default_rng(5)
    codes = rng.random((10_000, 64)) < 0.5
    multiplicity = rng.integers(1, 6, size=10_000)
    cells = bonus.sketch_cells(np.repeat(codes, multiplicity, axis=0))
    order = rng.permutation(len(cells))  # interleave the visits
    sketch = bonus.counter
    seen = sketch.count(cells[order][:, None, :], np.zeros((len(cells), 1), bool))
    assert (seen >= 1).all()
    counts = sketch.query(bonus.sketch_cells(codes))
    assert (counts >= multiplicity).all()
    assert (counts == multiplicity).mean() >= 0.999


def test_sketch_cells_match_reference_formula():
    bonus = make_bonus("simhash", VEC, ACT, seed=0, storage="sketch", key_dim=128)
    bits = np.random.default_rng(0).random((20, 128)) < 0.5
    cells = bonus.sketch_cells(bits)
    for row, code in zip(cells, bits):  # python big ints: (sum_j s_j 2^j) mod P_i
        value = sum((1 if b else -1) * 2**j for j, b in enumerate(code))
        assert [value % p for p in SKETCH_PRIMES] == row.tolist()


@pytest.mark.parametrize("storage", ["exact", "sketch"])
def test_first_visit_beta_and_nth_visit_tc6(storage):
    """T-C6 and the within-batch order: the n-th visit of a state gets beta / sqrt(n), time-major."""
    beta = 0.25
    bonus = make_bonus("simhash", gym.spaces.Discrete(10), ACT, seed=1, beta=beta, storage=storage)
    obs = np.array([[3, 3], [3, 7], [3, 3]])  # 3 and 7 have different codes (centred one-hot)
    r = bonus.compute(batch_of(obs))
    np.testing.assert_array_equal(bonus.last_counts, [[1, 2], [3, 1], [4, 5]])
    np.testing.assert_array_equal(r, (beta / np.sqrt(bonus.last_counts)).astype(np.float32))
    assert r[0, 0] == beta
    steps = [bonus.compute(batch_of([[7]]))[0, 0] for _ in range(4)]
    np.testing.assert_array_equal(steps, (beta / np.sqrt(np.arange(2, 6.0))).astype(np.float32))


def test_discrete_codes_distinct_when_centred():
    """Centred one-hot inputs give distinct codes to distinct states; uncentred ones share many bits."""
    bonus = make_bonus("simhash", gym.spaces.Discrete(50), ACT, seed=2)
    bonus.compute(batch_of(np.arange(50)[:, None]))  # first batch: sets and freezes the mean
    codes = bonus.code_bits(np.arange(50))
    assert len(np.unique(np.packbits(codes, axis=1), axis=0)) == 50
    np.testing.assert_allclose(bonus.mean(), np.full(50, 1 / 50))


@pytest.mark.parametrize("storage", ["exact", "sketch"])
def test_scope_tc2(storage):
    obs = np.zeros((6, 2), np.int64)
    dones = np.zeros((6, 2), bool)
    dones[2, 0] = True
    epi = make_bonus("simhash", gym.spaces.Discrete(4), ACT, seed=0, storage=storage, scope="episodic")
    epi.compute(batch_of(obs, dones))
    np.testing.assert_array_equal(epi.last_counts, [[1, 1], [2, 2], [3, 3], [1, 4], [2, 5], [3, 6]])
    epi.compute(batch_of(np.zeros((1, 2), np.int64), [[False, True]]))
    epi.compute(batch_of(np.zeros((1, 2), np.int64)))
    np.testing.assert_array_equal(epi.last_counts, [[5, 1]])
    life = make_bonus("simhash", gym.spaces.Discrete(4), ACT, seed=0, storage=storage)
    life.compute(batch_of(obs, dones))
    np.testing.assert_array_equal(life.last_counts.ravel(), np.arange(1, 13))
    if storage == "sketch":  # finished episodes are subtracted again: only live increments remain
        sketch = epi.counter
        assert isinstance(sketch, CountMinSketch)
        assert all(int(t.sum()) == len(sketch.live_cells) == 6 for t in sketch.tables)


def test_centring_freezes():
    rng = np.random.default_rng(0)
    x = rng.random((4, 2, 16)).astype(np.float32)
    bonus = make_bonus("simhash", VEC, ACT, seed=0)
    bonus.warm_up(batch_of(x))
    bonus.warm_up(batch_of(x + 1))
    np.testing.assert_allclose(bonus.mean(), np.concatenate([x, x + 1]).reshape(-1, 16).astype(np.float64).mean(0), rtol=1e-12)
    bonus.compute(batch_of(x + 5))  # default: frozen at the first compute, the warm-up mean is kept
    frozen = bonus.mean().copy()
    bonus.warm_up(batch_of(x + 9))
    bonus.compute(batch_of(x + 9))
    np.testing.assert_array_equal(bonus.mean(), frozen)
    first = make_bonus("simhash", VEC, ACT, seed=0)  # no warm-up: the first compute batch sets the mean
    first.compute(batch_of(x))
    np.testing.assert_allclose(first.mean(), x.reshape(-1, 16).astype(np.float64).mean(0), rtol=1e-12)
    budget = make_bonus("simhash", VEC, ACT, seed=0, freeze_after=10)
    budget.warm_up(batch_of(x))  # 8 transitions
    budget.compute(batch_of(x + 1))  # 2 more (time-major first), then frozen
    assert budget.frozen and budget.mean_count == 10
    expected = np.concatenate([x.reshape(-1, 16), (x + 1).reshape(-1, 16)[:2]]).astype(np.float64).mean(0)
    np.testing.assert_allclose(budget.mean(), expected, rtol=1e-12)


@pytest.mark.parametrize("storage,scope", [("exact", "lifelong"), ("exact", "episodic"), ("sketch", "lifelong"), ("sketch", "episodic")])
def test_state_dict_roundtrip(storage, scope):
    rng = np.random.default_rng(4)
    space = gym.spaces.Box(0, 1, (5,), np.float32)
    kwargs = dict(storage=storage, scope=scope, key_dim=8, beta=0.7)

    def states():  # 32 binary states: codes repeat within episodes too
        return rng.integers(0, 2, (6, 3, 5)).astype(np.float32)

    bonus = make_bonus("simhash", space, ACT, seed=3, **kwargs)
    for _ in range(2):
        bonus.compute(batch_of(states(), rng.random((6, 3)) < 0.2))
    buf = io.BytesIO()
    torch.save(bonus.state_dict(), buf)
    buf.seek(0)
    clone = make_bonus("simhash", space, ACT, seed=99, **kwargs)  # a different A until loaded
    clone.load_state_dict(torch.load(buf, weights_only=True))
    for _ in range(3):
        batch = batch_of(states(), rng.random((6, 3)) < 0.2)
        np.testing.assert_array_equal(clone.compute(batch), bonus.compute(batch))
        np.testing.assert_array_equal(clone.last_counts, bonus.last_counts)
    assert bonus.last_counts.max() > 1
    assert clone.update(batch) == bonus.update(batch)


def test_large_key_dim_and_image_input():
    image = gym.spaces.Box(0, 255, (2, 21, 21), np.uint8)
    obs = np.random.default_rng(0).integers(0, 256, (4, 2, 2, 21, 21), dtype=np.uint8)
    obs[3] = obs[0]
    bonus = make_bonus("simhash", image, ACT, seed=0, key_dim=1024)
    bonus.compute(batch_of(obs))
    np.testing.assert_array_equal(bonus.last_counts, [[1, 1], [1, 1], [1, 1], [2, 2]])


def test_bad_input_raises():
    bonus = make_bonus("simhash", gym.spaces.Discrete(4), ACT)
    with pytest.raises(BonusInputError, match="simhash"):
        bonus.compute(batch_of(np.full((2, 2), 4)))
    with pytest.raises(BonusInputError):
        bonus.compute(batch_of(np.full((2, 2), np.nan)))
    with pytest.raises(ValueError, match="storage"):
        make_bonus("simhash", VEC, ACT, storage="bloom")
    with pytest.raises(ValueError, match="scope"):
        make_bonus("simhash", VEC, ACT, scope="weekly")


def test_sketch_matches_sequential_reference_under_collisions():
    """Tiny primes force collisions: the vectorised sketch equals increment-then-query one at a time."""
    primes = (7, 11, 13)
    rng = np.random.default_rng(8)
    sketch = CountMinSketch(primes)
    tables = [np.zeros(p, np.int64) for p in primes]
    for _ in range(4):
        cells = np.stack([rng.integers(0, p, size=(9, 4)) for p in primes], axis=-1)
        expected = np.zeros((9, 4), np.int64)
        for t in range(9):
            for n in range(4):
                for i in range(len(primes)):
                    tables[i][cells[t, n, i]] += 1
                expected[t, n] = min(tables[i][cells[t, n, i]] for i in range(len(primes)))
        np.testing.assert_array_equal(sketch.count(cells, np.zeros((9, 4), bool)), expected)
