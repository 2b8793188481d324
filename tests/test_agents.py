"""IntrinsicPPO (two heads, RND recipe), the reward wrapper path, and step recording."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from explore_bench.agents.factory import (
    bonus_wrapper,
    intrinsic_stats,
    load_agent,
    make_agent,
    resolve_config,
    save_agent,
)
from explore_bench.agents.intrinsic_ppo import IntrinsicPPO, IntrinsicRolloutBuffer
from explore_bench.agents.transitions import StepRecorder

TINY = {"n_envs": 2, "hyperparameters.n_steps": 16, "hyperparameters.batch_size": 16, "intrinsic.warmup_rollouts": 1}


def test_two_head_gae_matches_hand_computed_example():
    """T-S5: extrinsic GAE stops at dones, intrinsic GAE ignores them (gamma 0.5, lambda 1, zero values)."""
    buffer = IntrinsicRolloutBuffer(5, spaces.Box(0, 1, (1,)), spaces.Discrete(2), gamma=0.5, gae_lambda=1.0, n_envs=1, gamma_int=0.5, ext_coef=2.0, int_coef=1.0)
    buffer.rewards[:, 0] = 1.0
    buffer.intrinsic_rewards[:, 0] = 1.0
    buffer.episode_starts[3, 0] = 1.0  # the episode ended after step 2
    last_values = torch.tensor([[4.0, 2.0]])  # (ext, int) values of the observation after step 4
    buffer.compute_returns_and_advantage(last_values, dones=np.array([False]))
    adv_ext = np.array([1.75, 1.5, 1.0, 2.5, 3.0])  # 1 + 0.5 * next, bootstrapping 4.0 only after step 4
    adv_int = np.array([2.0, 2.0, 2.0, 2.0, 2.0])  # 1 + 0.5 * 2 throughout: no cut at the episode end
    np.testing.assert_allclose(buffer.returns[:, 0, 0], adv_ext)
    np.testing.assert_allclose(buffer.returns[:, 0, 1], adv_int)
    np.testing.assert_allclose(buffer.advantages[:, 0], 2.0 * adv_ext + 1.0 * adv_int)


def test_step_recorder_uses_terminal_observation_not_reset_one():
    recorder = StepRecorder(2, 2, spaces.Box(0, 9, (3,), np.uint8), info_keys=("cell",))
    obs = np.zeros((2, 3), np.uint8)
    reset_obs = np.full((2, 3), 7, np.uint8)
    infos = [{"terminal_observation": np.full(3, 5, np.uint8), "cell": np.array([1, 2])}, {"cell": np.array([3, 4])}]
    recorder.add(obs, np.array([0, 1]), reset_obs, np.array([True, False]), infos)
    batch = recorder.transitions()
    np.testing.assert_array_equal(batch.next_obs[0, 0], [5, 5, 5])  # terminal, not the reset observation
    np.testing.assert_array_equal(batch.next_obs[0, 1], [7, 7, 7])
    np.testing.assert_array_equal(batch.infos["cell"][0], [[1, 2], [3, 4]])
    assert batch.dones.tolist() == [[True, False]]


def test_intrinsic_ppo_trains_counts_warmup_frames_and_round_trips(tmp_path):
    config = resolve_config("MiniGrid-DoorKey-5x5-v0", "ppo", "rnd", 0, 256, TINY)
    model = make_agent(config)
    assert isinstance(model, IntrinsicPPO)
    assert model.normalize_advantage is config["hyperparameters"]["normalize_advantage"]
    model.learn(64)
    # the budget counts the warm-up rollout (16 steps x 2 envs): one training rollout fits after it
    assert model.num_timesteps == 32 + 32
    stats = intrinsic_stats(model)
    assert stats["intrinsic_mean"] > 0 and np.isfinite(stats["intrinsic_return_std"])
    values = model.policy.predict_values(torch.zeros(3, *model.observation_space.shape))
    assert values.shape == (3, 2)

    save_agent(model, tmp_path / "model.zip")
    restored = load_agent(config, tmp_path / "model.zip")
    for key, value in model.bonus.state_dict()["predictor"].items():
        torch.testing.assert_close(restored.bonus.state_dict()["predictor"][key], value)
    assert restored.intrinsic_normalizer.std == pytest.approx(model.intrinsic_normalizer.std)
    assert restored.warmed_up and restored.num_timesteps == model.num_timesteps


@pytest.mark.parametrize("agent", ["a2c", "recurrent_ppo"])
def test_reward_wrapper_path_adds_bonus_and_round_trips(agent, tmp_path):
    overrides = {"n_envs": 2, "reward_wrapper.update_every": 16, "reward_wrapper.warmup_steps": 8}
    if agent == "recurrent_ppo":
        overrides |= {"hyperparameters.n_steps": 16, "hyperparameters.batch_size": 16}
    config = resolve_config("MiniGrid-DoorKey-5x5-v0", agent, "count", 0, 128, overrides)
    model = make_agent(config)
    model.learn(128)
    stats = intrinsic_stats(model)
    assert stats["intrinsic_mean"] > 0
    save_agent(model, tmp_path / "model.zip")
    restored = load_agent(config, tmp_path / "model.zip")
    wrapper = restored.get_env()
    assert wrapper.warmed_up and len(wrapper.bonus.counter) == len(model.get_env().bonus.counter)


def test_no_bonus_is_plain_sb3():
    from stable_baselines3 import PPO

    model = make_agent(resolve_config("MiniGrid-DoorKey-5x5-v0", "ppo", None, 0, 64, TINY))
    assert type(model) is PPO


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"env": "MiniGrid-Nope-v0"}, "valid ids: .*MiniGrid-DoorKey-8x8-v0"),
        ({"agent": "sac"}, "available agents: .*ppo"),
        ({"bonus": "curiosity"}, "registered bonuses: .*rnd"),
    ],
)
def test_unknown_ids_list_the_valid_ones(kwargs, match):
    args = {"env": "MiniGrid-DoorKey-5x5-v0", "agent": "ppo", "bonus": "rnd", "seed": 0, "frames": 10} | kwargs
    with pytest.raises(KeyError, match=match):
        resolve_config(**args)


@pytest.mark.parametrize("agent, bonus", [("ppo", None), ("ppo", "rnd"), ("a2c", "count")])
def test_policy_sees_minigrid_codes(agent, bonus):
    """The policy's features are the one-hot of the raw MiniGrid codes (SB3 must not divide them by 255)."""
    from explore_bench.agents.extractors import MINIGRID_CODE_SIZES

    config = resolve_config("MiniGrid-DoorKey-8x8-v0", agent, bonus, seed=0, frames=1000, overrides={"n_envs": 2})
    model = make_agent(config)
    obs = model.env.reset()  # (2, 3, 7, 7) raw codes, channels-first
    features = model.policy.extract_features(model.policy.obs_to_tensor(obs)[0])
    if isinstance(features, tuple):
        features = features[0]
    expected = np.concatenate(
        [np.eye(n)[obs[:, i]] for i, n in enumerate(MINIGRID_CODE_SIZES)], axis=-1
    ).reshape(len(obs), -1)
    np.testing.assert_array_equal(features.numpy(), expected)
    assert obs.max() > 1  # walls, keys, doors: codes the policy must tell apart


def test_minigrid_onehot_rejects_normalised_images():
    from explore_bench.agents.extractors import MiniGridOneHot

    extractor = MiniGridOneHot(spaces.Box(0, 255, (3, 7, 7), np.uint8))
    with pytest.raises(ValueError, match="normalize_images=False"):
        extractor(torch.full((1, 3, 7, 7), 2 / 255))


def _views(codes: list[list[int]]) -> np.ndarray:
    """`(T, N, 2)` observations whose view in env i at step t is `[codes[t][i], 0]`."""
    return np.array([[[c, 0] for c in row] for row in codes], dtype=np.uint8)


def test_first_visit_gate_pays_each_view_once_per_episode():
    from explore_bench.agents.first_visit import FirstVisitGate
    from explore_bench.bonuses import Transitions

    gate = FirstVisitGate(n_envs=2)
    # env 0 stands on view 7 (no-op), then its episode ends; env 1 walks 1 -> 2 -> 1 -> 3.
    next_obs = _views([[7, 1], [7, 2], [7, 1], [8, 3]])
    dones = np.array([[0, 0], [0, 0], [1, 0], [0, 0]], dtype=bool)
    batch = Transitions(next_obs, np.zeros((4, 2), dtype=np.int64), next_obs, dones)
    np.testing.assert_array_equal(gate.mask(batch), [[1, 1], [0, 1], [0, 0], [1, 1]])
    # The episodes go on across rollouts: env 0's new episode already saw 8, env 1 keeps 1, 2, 3.
    later = Transitions(next_obs[:1], np.zeros((1, 2), dtype=np.int64), _views([[8, 2]]), np.zeros((1, 2), dtype=bool))
    state = gate.state_dict()
    np.testing.assert_array_equal(gate.mask(later), [[0, 0]])
    restored = FirstVisitGate(n_envs=2)
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.mask(later), [[0, 0]])
    with pytest.raises(ValueError, match="built for 3 envs, got a batch of 2"):
        FirstVisitGate(n_envs=3).mask(later)


@pytest.mark.parametrize("agent,bonus,key", [("ppo", "rnd", "intrinsic"), ("a2c", "count", "reward_wrapper")])
def test_first_visit_option_gates_the_paid_bonus_and_survives_save_load(tmp_path, agent, bonus, key):
    overrides = {"n_envs": 2, f"{key}.first_visit_only": True}
    if agent == "ppo":
        overrides.update({"hyperparameters.n_steps": 32, "hyperparameters.batch_size": 32, "intrinsic.warmup_rollouts": 1})
    config = resolve_config("MiniGrid-DoorKey-5x5-v0", agent, bonus, 0, 512, overrides)
    model = make_agent(config)
    model.learn(256)
    gate = model.first_visit if agent == "ppo" else bonus_wrapper(model).first_visit
    assert gate is not None and len(gate.counter) > 0
    if agent == "ppo":
        paid = model.rollout_buffer.intrinsic_rewards
        assert 0 < model.intrinsic_stats["first_visit_fraction"] < 1
        assert (paid == 0).any() and (paid > 0).any()
    save_agent(model, tmp_path / "checkpoint.zip")
    loaded = load_agent(config, tmp_path / "checkpoint.zip")
    loaded_gate = loaded.first_visit if agent == "ppo" else bonus_wrapper(loaded).first_visit
    assert torch.equal(loaded_gate.counter.table.get_state()["keys"], gate.counter.table.get_state()["keys"])
