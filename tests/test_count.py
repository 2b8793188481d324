"""Tabular counts (counts.md §2, §6 T-C1, T-C2) and the shared vectorised count table."""

from __future__ import annotations

import io
from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest
import torch

from explore_bench.bonuses import BonusInputError, Transitions, list_bonuses, make_bonus
from explore_bench.bonuses.counting import CountTable, KeyCounter, hash_rows, hash_words, occurrence_rank

torch.set_num_threads(1)

ACT = gym.spaces.Discrete(3)


def batch_of(next_obs, dones=None, infos=None) -> Transitions:
    next_obs = np.asarray(next_obs)
    t, n = next_obs.shape[:2]
    dones = np.zeros((t, n), bool) if dones is None else np.asarray(dones, bool)
    return Transitions(np.zeros_like(next_obs), np.zeros((t, n), np.int64), next_obs, dones, infos or {})


def naive_counts(keys: np.ndarray, dones: np.ndarray, scope: str, tables=None, episode=None):
    """Reference: one transition at a time, time-major, update-then-query, dict tables."""
    t, n = keys.shape
    tables = tables if tables is not None else defaultdict(int)
    episode = episode if episode is not None else defaultdict(int)
    out = np.zeros((t, n), np.int64)
    for i in range(t):
        for j in range(n):
            key = keys[i, j] if scope == "lifelong" else (j, episode[j], keys[i, j])
            tables[key] += 1
            out[i, j] = tables[key]
            if scope == "episodic" and dones[i, j]:
                episode[j] += 1
    return out, tables, episode


def test_registered():
    assert {"count", "simhash"} <= set(list_bonuses())


# ------------------------------------------------------------------ count table
def test_occurrence_rank_is_time_major_occurrence_index():
    g = occurrence_rank(np.array([5, 3, 5, 5, 3, 1], np.uint64))
    np.testing.assert_array_equal(g.rank, [1, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(g.unique, [1, 3, 5])
    np.testing.assert_array_equal(g.sizes, [1, 2, 3])
    np.testing.assert_array_equal(g.first, [5, 1, 0])


@pytest.mark.parametrize("scope", ["lifelong", "episodic"])
def test_counter_matches_sequential_reference(scope):
    rng = np.random.default_rng(0)
    counter = KeyCounter(scope)
    tables = episode = None
    for _ in range(6):  # several batches, T and N varying keys, random dones
        keys = rng.integers(0, 12, size=(17, 5)).astype(np.uint64)
        dones = rng.random((17, 5)) < 0.15
        expected, tables, episode = naive_counts(keys, dones, scope, tables, episode)
        np.testing.assert_array_equal(counter.count(keys, dones), expected)


def test_episodic_table_is_pruned():
    rng = np.random.default_rng(1)
    counter = KeyCounter("episodic")
    for _ in range(50):
        keys = rng.integers(0, 2**63, size=(32, 4), dtype=np.int64).astype(np.uint64)  # all distinct
        dones = np.zeros((32, 4), bool)
        dones[rng.integers(0, 32), :] = True  # every env ends an episode in every batch
        counter.count(keys, dones)
        # only entries of the live episodes remain: at most one batch per env
        assert len(counter) <= 32 * 4
    assert len(counter) < 32 * 4


def test_hash_single_word_is_bijective_and_rows_hash_bytes():
    x = np.arange(-1000, 1000, dtype=np.int64)
    assert len(np.unique(hash_rows(x[:, None]))) == len(x)
    words = np.array([[1, 2], [2, 1], [1, 2]], np.uint64)
    h = hash_words(words)
    assert h[0] == h[2] != h[1]  # position dependent
    a = np.array([[0.0, 1.5], [-0.0, 1.5]], np.float32)
    assert hash_rows(a)[0] != hash_rows(a)[1]  # raw bytes differ; the bonus canonicalises -0.0


def test_count_table_tags_follow_first_occurrence():
    table = CountTable(n_tags=2)
    keys = np.array([7, 3, 7], np.uint64)
    table.increment_and_query(keys, np.array([[0, 9], [1, 8], [2, 7]]))
    np.testing.assert_array_equal(table.keys, [3, 7])
    np.testing.assert_array_equal(table.counts, [1, 2])
    np.testing.assert_array_equal(table.tags, [[1, 8], [0, 9]])


# ------------------------------------------------------------------ Count bonus
@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_exact_law_tc1(beta):
    """T-C1: visiting one key n times yields beta / sqrt(k), k = 1..n, in one batch or step by step."""
    n = 50
    expected = (beta / np.sqrt(np.arange(1, n + 1, dtype=np.float64))).astype(np.float32)
    bonus = make_bonus("count", gym.spaces.Discrete(4), ACT, beta=beta)
    r = bonus.compute(batch_of(np.full((n, 1), 2)))
    np.testing.assert_array_equal(r[:, 0], expected)  # float32 of the float64 value: within 1e-9 of it in float64
    np.testing.assert_array_equal(bonus.last_counts[:, 0], np.arange(1, n + 1))
    step = make_bonus("count", gym.spaces.Discrete(4), ACT, beta=beta)
    r_step = np.concatenate([step.compute(batch_of([[2]])) for _ in range(n)])
    np.testing.assert_array_equal(r_step[:, 0], expected)
    assert r.dtype == np.float32 and r_step[0, 0] == beta


def test_within_batch_order_is_time_major():
    bonus = make_bonus("count", gym.spaces.Discrete(4), ACT)
    r = bonus.compute(batch_of(np.ones((3, 2), np.int64)))
    np.testing.assert_array_equal(bonus.last_counts, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(r, (1 / np.sqrt(np.arange(1, 7.0))).reshape(3, 2).astype(np.float32))
    bonus.compute(batch_of(np.ones((1, 2), np.int64)))  # the next batch continues from the stored counts
    np.testing.assert_array_equal(bonus.last_counts, [[7, 8]])


def test_scope_tc2():
    """T-C2: `episodic` resets after the transition carrying done; `lifelong` does not."""
    obs = np.zeros((6, 2), np.int64)
    dones = np.zeros((6, 2), bool)
    dones[2, 0] = True  # env 0 ends its episode at step 2; step 2 still counts in the old episode
    life = make_bonus("count", gym.spaces.Discrete(3), ACT, scope="lifelong")
    life.compute(batch_of(obs, dones))
    np.testing.assert_array_equal(life.last_counts[:, 0], [1, 3, 5, 7, 9, 11])
    np.testing.assert_array_equal(life.last_counts[:, 1], [2, 4, 6, 8, 10, 12])
    epi = make_bonus("count", gym.spaces.Discrete(3), ACT, scope="episodic")
    r = epi.compute(batch_of(obs, dones))
    np.testing.assert_array_equal(epi.last_counts[:, 0], [1, 2, 3, 1, 2, 3])
    np.testing.assert_array_equal(epi.last_counts[:, 1], [1, 2, 3, 4, 5, 6])  # per env: no sharing
    assert r[3, 0] == 1.0
    # a done in the last step of a batch resets before the next batch
    epi.compute(batch_of(np.zeros((1, 2), np.int64), [[True, False]]))
    np.testing.assert_array_equal(epi.last_counts, [[4, 7]])
    epi.compute(batch_of(np.zeros((1, 2), np.int64)))
    np.testing.assert_array_equal(epi.last_counts, [[1, 8]])
    epi.reset(np.array([False, True]))  # external reset hook
    epi.compute(batch_of(np.zeros((1, 2), np.int64)))
    np.testing.assert_array_equal(epi.last_counts, [[2, 1]])


def test_key_from_infos_cell():
    space = gym.spaces.Box(0, 1, (4,), np.float32)
    rng = np.random.default_rng(0)
    obs = rng.random((4, 2, 4)).astype(np.float32)  # all different observations
    cell = np.array([[[1, 2, 0], [1, 2, 0]], [[1, 2, 1], [1, 2, 0]], [[1, 2, 0], [5, 5, 5]], [[1, 2, 1], [1, 2, 0]]])
    bonus = make_bonus("count", space, ACT)
    bonus.compute(batch_of(obs, infos={"cell": cell}))
    np.testing.assert_array_equal(bonus.last_counts, [[1, 2], [1, 3], [4, 1], [2, 5]])
    flat = make_bonus("count", space, ACT)
    flat.compute(batch_of(obs, infos={"cell": np.array([[3, 3], [4, 3], [3, 4], [3, 3]])}))
    np.testing.assert_array_equal(flat.last_counts, [[1, 2], [1, 3], [4, 2], [5, 6]])
    # other info name / key_info=None: the observation bytes are the key (all distinct here)
    named = make_bonus("count", space, ACT, key_info="pos")
    named.compute(batch_of(obs, infos={"cell": cell}))
    assert (named.last_counts == 1).all()
    named.compute(batch_of(obs[:1], infos={"pos": torch.tensor([[7, 7]])}))
    np.testing.assert_array_equal(named.last_counts, [[1, 2]])


def test_observation_bytes_key():
    space = gym.spaces.Box(-1, 1, (2, 3), np.float32)
    a = np.array([[0.5, -0.0, 0.25], [0.1, 0.2, 0.3]], np.float32)
    b = a.copy()
    b[0, 1] = 0.0  # -0.0 and 0.0 are the same state
    c = a.copy()
    c[1, 2] = np.nextafter(np.float32(0.3), np.float32(1))  # one ulp away: a different state
    bonus = make_bonus("count", space, ACT)
    bonus.compute(batch_of(np.stack([a, b, c, a])[:, None]))
    np.testing.assert_array_equal(bonus.last_counts[:, 0], [1, 2, 1, 3])
    # float64 / torch inputs are cast to the space's dtype: the same states
    bonus.compute(batch_of(torch.tensor(np.stack([a, c])[:, None], dtype=torch.float64)))
    np.testing.assert_array_equal(bonus.last_counts[:, 0], [4, 2])
    image = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    img = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8, 3), dtype=np.uint8)
    img[2] = img[0]
    ib = make_bonus("count", image, ACT)
    ib.compute(batch_of(img))
    np.testing.assert_array_equal(ib.last_counts[:, 0], [1, 1, 2])
    md = make_bonus("count", gym.spaces.MultiDiscrete([3, 4]), ACT)
    md.compute(batch_of(np.array([[[1, 2]], [[2, 1]], [[1, 2]]])))
    np.testing.assert_array_equal(md.last_counts[:, 0], [1, 1, 2])


def _roundtrip(bonus, **kwargs):
    buf = io.BytesIO()
    torch.save(bonus.state_dict(), buf)
    buf.seek(0)
    clone = make_bonus(bonus.name, bonus.observation_space, bonus.action_space, seed=12345, **kwargs)
    clone.load_state_dict(torch.load(buf, weights_only=True))  # plain tensors and ints only
    return clone


@pytest.mark.parametrize("scope", ["lifelong", "episodic"])
def test_state_dict_roundtrip(scope):
    rng = np.random.default_rng(3)
    bonus = make_bonus("count", gym.spaces.Discrete(6), ACT, scope=scope, beta=0.3)
    for _ in range(3):
        bonus.compute(batch_of(rng.integers(0, 6, (9, 3)), rng.random((9, 3)) < 0.2))
    clone = _roundtrip(bonus, scope=scope, beta=0.3)
    for _ in range(3):
        batch = batch_of(rng.integers(0, 6, (9, 3)), rng.random((9, 3)) < 0.2)
        np.testing.assert_array_equal(clone.compute(batch), bonus.compute(batch))
    assert clone.update(batch) == bonus.update(batch)


def test_bad_input_raises():
    bonus = make_bonus("count", gym.spaces.Discrete(4), ACT)
    with pytest.raises(BonusInputError, match="count"):
        bonus.compute(batch_of(np.zeros((2, 2), np.int64), infos={"cell": np.zeros((2, 3), np.int64)}))
    with pytest.raises(BonusInputError, match="integer"):
        bonus.compute(batch_of(np.zeros((2, 2), np.int64), infos={"cell": np.zeros((2, 2)) + 0.5}))
    with pytest.raises(BonusInputError, match="representable"):
        bonus.compute(batch_of(np.full((2, 2), 1.5)))
    with pytest.raises(BonusInputError):
        bonus.compute(batch_of(np.zeros((2, 2, 3), np.int64)))
    with pytest.raises(ValueError, match="scope"):
        make_bonus("count", gym.spaces.Discrete(4), ACT, scope="weekly")
    assert bonus.update(batch_of(np.zeros((1, 1), np.int64))) == {"distinct_keys": 0.0}


@pytest.mark.parametrize("n_tags", [0, 2])
def test_count_table_state_round_trip_when_empty(n_tags):
    """A checkpoint taken before the first update holds an empty table; it must load back (and keep its tag width)."""
    restored = CountTable(n_tags=n_tags)
    restored.set_state(CountTable(n_tags=n_tags).get_state())
    assert restored.keys.shape == (0,) and restored.tags.shape == (0, n_tags)
