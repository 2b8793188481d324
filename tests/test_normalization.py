"""Shared running statistics (spec rdd.md §2.2, §2.3): acceptance tests T-S2, T-S3, T-S4."""

import inspect

import numpy as np
import torch

from explore_bench.bonuses.normalization import (
    IntrinsicRewardNormalizer,
    ObservationNormalizer,
    RewardForwardFilter,
    RunningMeanStd,
)

torch.set_num_threads(1)


def test_s2_observation_normalizer_tracks_mean_std_and_clips():
    """T-S2: 10k samples of N(3, 2^2) -> mean within 0.05 of 3, std within 0.05 of 2; outputs in [-5, 5]."""
    rng = np.random.default_rng(0)
    norm = ObservationNormalizer((4,))
    for chunk in np.split(rng.normal(3.0, 2.0, size=(10_000, 4)), 10):  # several parallel-variance merges
        norm.update(torch.as_tensor(chunk, dtype=torch.float32))
    assert torch.all((norm.rms.mean - 3.0).abs() < 0.05), norm.rms.mean
    assert torch.all((norm.rms.std - 2.0).abs() < 0.05), norm.rms.std
    out = norm(torch.tensor([[3.0, 1e6, -1e6, 5.0]]))
    assert out.min() >= -5.0 and out.max() <= 5.0
    assert out[0, 1] == 5.0 and out[0, 2] == -5.0
    assert abs(float(out[0, 0])) < 0.05 and abs(float(out[0, 3]) - 1.0) < 0.05


def test_s2_running_mean_std_matches_numpy_over_merges():
    rng = np.random.default_rng(1)
    data = rng.normal(-1.0, 0.5, size=(3000, 2))
    rms = RunningMeanStd((2,), epsilon=1e-12)
    for chunk in np.array_split(data, 7):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), atol=1e-9)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-6)


def test_s3_reward_forward_filter_constant_reward():
    """T-S3: constant reward 1, gamma 0.99: after 1000 steps the value is (1 - 0.99^1000) / (1 - 0.99)."""
    rff = RewardForwardFilter(0.99)
    for _ in range(1000):
        value = rff.update(np.ones(3))
    expected = (1 - 0.99**1000) / (1 - 0.99)
    np.testing.assert_allclose(value, expected, atol=1e-3)
    # Non-episodic: the filter takes no done signal at all, so nothing can reset it at episode ends.
    assert list(inspect.signature(RewardForwardFilter.update).parameters) == ["self", "rewards"]
    assert list(inspect.signature(IntrinsicRewardNormalizer.normalize).parameters) == ["self", "rewards"]


def test_s4_intrinsic_reward_normalizer_unit_scale_and_ratios():
    """T-S4: random bonuses in [0, 100]; after 20 rollouts std(r_norm) in [0.01, 1.5]; ratios kept per rollout."""
    rng = np.random.default_rng(0)
    normalizer = IntrinsicRewardNormalizer(gamma=0.99)
    for _ in range(20):
        raw = rng.uniform(0.0, 100.0, size=(128, 8))
        normed = normalizer.normalize(raw)
        assert normed.shape == raw.shape and normed.dtype == np.float32
        # One scalar divides the whole rollout: every ratio between two bonuses is unchanged.
        factor = normed / raw
        np.testing.assert_allclose(factor, factor.flat[0], rtol=1e-5)
    std = float(normed.std())
    print(f"T-S4 std(r_int_norm) after 20 rollouts = {std:.4f}")
    assert 0.01 <= std <= 1.5


def test_s4_normalizer_state_dict_round_trip():
    rng = np.random.default_rng(2)
    a = IntrinsicRewardNormalizer(0.99)
    for _ in range(3):
        a.normalize(rng.uniform(0, 1, size=(16, 4)))
    b = IntrinsicRewardNormalizer(0.5)
    b.load_state_dict(a.state_dict())
    raw = rng.uniform(0, 1, size=(16, 4))
    np.testing.assert_array_equal(a.normalize(raw), b.normalize(raw))
