"""Atari suite (explore_bench.envs.atari): catalogue, Machado et al. 2018 protocol, frames, room coverage from the
RAM, preprocessing, reference scores and their use by the leaderboard."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ale_py")

from explore_bench.envs import NAMESPACE, env_family, frames_per_step, list_envs, make_env  # noqa: E402
from explore_bench.envs.atari import (  # noqa: E402
    ATARI_ENVS,
    ATARI_REFERENCE_SCORES,
    MAX_EPISODE_FRAMES,
    AreaResize,
    AtariStats,
    game_of,
    human_normalized_score,
    make_atari,
    rom_name,
    room_of,
)
from explore_bench.leaderboard.normalize import env_family_of, normalized_score  # noqa: E402

EXPECTED_IDS = [
    "Atari-MontezumaRevenge-v0",
    "Atari-Pitfall-v0",
    "Atari-Venture-v0",
    "Atari-Gravitar-v0",
    "Atari-PrivateEye-v0",
    "Atari-Solaris-v0",
    "Atari-Freeway-v0",
    "Atari-Frostbite-v0",
]
MONTEZUMA = "Atari-MontezumaRevenge-v0"
NOOP, LEFT = 0, 4  # indices in the full action set


def _find(env: gym.Env, cls: type[gym.Wrapper]) -> gym.Wrapper:
    while not isinstance(env, cls):
        env = env.env
    return env


# --------------------------------------------------------------------------- catalogue and protocol


def test_catalogue_ids():
    assert list_envs("atari") == EXPECTED_IDS
    for env_id in EXPECTED_IDS:
        assert env_family(env_id) == "atari"
        assert env_family(f"{NAMESPACE}/{env_id}") == "atari"
        assert frames_per_step(env_id) == 4
    assert frames_per_step("MiniGrid-DoorKey-8x8-v0") == 1


def test_game_and_rom_names_match_ale_py():
    import ale_py

    gym.register_envs(ale_py)
    for env_id in EXPECTED_IDS:
        game = game_of(env_id)
        assert f"Atari-{game}-v0" == env_id == ATARI_ENVS[env_id].env_id
        assert game_of(f"{NAMESPACE}/{env_id}") == game
        assert rom_name(game) == gym.spec(f"ALE/{game}-v5").kwargs["game"]  # e.g. "montezuma_revenge"
        assert ale_py.roms.get_rom_path(rom_name(game)) is not None


@pytest.mark.parametrize("env_id", EXPECTED_IDS)
def test_every_game_builds_with_the_protocol(env_id):
    env = make_env(env_id, seed=0)
    assert env.action_space == gym.spaces.Discrete(18)  # the full action set, whatever the game uses
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    ale = env.unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    assert ale.getInt("max_num_frames_per_episode") == MAX_EPISODE_FRAMES == 108_000
    assert env.get_wrapper_attr("frames_per_step") == 4
    obs, info = env.reset()
    assert obs in env.observation_space
    assert not obs[:3].any()  # the stack is zero-padded before the first frame
    for step in range(1, 6):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs in env.observation_space and not (terminated or truncated)
        assert info["episode_frame_number"] == 4 * step
    env.close()


def test_gym_make_namespaced_id():
    env = gym.make(f"{NAMESPACE}/Atari-Pitfall-v0")
    assert env.action_space == gym.spaces.Discrete(18)
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert _find(env, AtariStats).game == "Pitfall"
    env.reset(seed=0)
    env.step(0)
    env.close()


def test_no_termination_on_life_loss():
    env = make_env(MONTEZUMA, seed=0)
    _, info = env.reset()
    start_lives = info["lives"]
    for _ in range(5_000):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if info["lives"] <= start_lives - 2:  # two lives gone (Montezuma's counter also drops once at the start)
            break
        assert not (terminated or truncated)
    else:
        pytest.fail("random play lost no two lives in 5,000 steps")
    assert not (terminated or truncated) and info["lives"] > 0
    for _ in range(10):  # the episode goes on after the loss
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not (terminated or truncated)
    env.close()


def test_frame_cap_truncates():
    env = make_env(MONTEZUMA, seed=0, max_episode_frames=400)
    env.reset()
    for step in range(1, 101):
        _, _, terminated, truncated, info = env.step(NOOP)
        assert not terminated
        assert truncated == (step == 100)  # 400 frames = 100 agent steps
    metrics = info["episode_metrics"]
    assert (metrics["length"], metrics["frames"], info["episode_frame_number"]) == (100, 400, 400)
    env.close()


def test_sticky_actions_make_equal_action_sequences_diverge():
    def ram_trace(seed: int) -> list[bytes]:
        env = make_env("Atari-Freeway-v0", seed=seed)
        env.reset()
        trace = []
        for step in range(100):
            env.step(1 if step % 3 else 2)  # FIRE, UP: the sticky previous action differs from the chosen one
            trace.append(env.unwrapped.ale.getRAM().tobytes())
        env.close()
        return trace

    assert ram_trace(0) == ram_trace(0)
    assert ram_trace(0) != ram_trace(1)


# --------------------------------------------------------------------------- episode metrics


def test_montezuma_rooms_match_the_ram():
    env = make_env(MONTEZUMA, seed=0, max_episode_frames=800)
    env.reset()
    ram = env.unwrapped.ale.getRAM()
    assert _find(env, AtariStats).room == room_of("MontezumaRevenge", ram) == (int(ram[57]), int(ram[3])) == (0, 1)
    rooms = {(int(ram[57]), int(ram[3]))}
    score, steps = 0.0, 0
    terminated = truncated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        score, steps = score + reward, steps + 1
        ram = env.unwrapped.ale.getRAM()
        rooms.add((int(ram[57]), int(ram[3])))
    metrics = info["episode_metrics"]
    assert metrics["coverage"] == len(rooms) >= 1
    assert metrics["success"] is None
    assert (metrics["return"], metrics["length"]) == (score, steps)
    env.close()


def test_pitfall_counts_distinct_screens():
    env = make_env("Atari-Pitfall-v0", seed=0, max_episode_frames=400)
    env.reset()
    screens = {int(env.unwrapped.ale.getRAM()[1])}
    terminated = truncated = False
    while not (terminated or truncated):  # running left leaves the start screen at once, then every ~80 steps
        _, _, terminated, truncated, info = env.step(LEFT)
        screens.add(int(env.unwrapped.ale.getRAM()[1]))
    assert info["episode_metrics"]["coverage"] == len(screens) >= 2
    env.close()


def test_games_without_rooms_report_no_coverage():
    env = make_env("Atari-Venture-v0", seed=0, max_episode_frames=40)
    env.reset()
    assert _find(env, AtariStats).room is None and room_of("Venture", env.unwrapped.ale.getRAM()) is None
    for _ in range(10):
        _, _, _, truncated, info = env.step(env.action_space.sample())
    assert truncated
    assert info["episode_metrics"]["coverage"] is None and info["episode_metrics"]["success"] is None
    env.close()


# --------------------------------------------------------------------------- preprocessing


def test_last_stacked_frame_is_the_resized_raw_screen():
    env = make_env(MONTEZUMA, seed=0)
    obs, _ = env.reset()
    raw = env.unwrapped.ale.getScreenGrayscale()
    assert raw.shape == (210, 160) and raw.dtype == np.uint8
    np.testing.assert_array_equal(obs[-1], _find(env, AreaResize).observation(raw))
    env.close()


def test_area_resize_averages_pixel_areas():
    class Screen(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (210, 160), np.uint8)
        action_space = gym.spaces.Discrete(1)

    def dense(n_in: int, n_out: int) -> np.ndarray:  # overlap of output pixel i with input pixel j / scale
        scale = n_in / n_out
        lo = np.arange(n_out)[:, None] * scale
        j = np.arange(n_in)[None, :]
        return np.clip(np.minimum(j + 1, lo + scale) - np.maximum(j, lo), 0, None) / scale

    frame = np.random.default_rng(0).integers(0, 256, (210, 160), dtype=np.uint8)
    expected = dense(210, 84) @ frame @ dense(160, 84).T
    resized = AreaResize(Screen()).observation(frame)
    assert resized.dtype == np.uint8 and resized.shape == (84, 84)
    assert np.abs(resized - expected).max() <= 0.5 + 1e-3  # rounded to the nearest grey level
    assert (AreaResize(Screen()).observation(np.full((210, 160), 77, np.uint8)) == 77).all()


# --------------------------------------------------------------------------- errors and reference scores


def test_unknown_game_lists_valid_ids():
    for fn in (make_env, make_atari, game_of):
        with pytest.raises(KeyError) as exc:
            fn("Atari-Tetris-v0")
        msg = str(exc.value)
        assert "Atari-Tetris-v0" in msg
        for env_id in EXPECTED_IDS:
            assert env_id in msg


def test_reference_scores_normalise_random_to_0_and_human_to_1():
    for env_id, entry in ATARI_ENVS.items():
        random, human = ATARI_REFERENCE_SCORES[entry.game]
        assert human > random
        for name in (entry.game, env_id, f"{NAMESPACE}/{env_id}"):
            assert human_normalized_score(name, random) == pytest.approx(0.0)
            assert human_normalized_score(name, human) == pytest.approx(1.0)
        # the leaderboard scores our ids with the same table
        assert env_family_of(env_id) == "atari"
        assert normalized_score(env_id, {"return": human, "success": None}) == pytest.approx(1.0)
    assert human_normalized_score("MontezumaRevenge", 2500.0) == pytest.approx(2500.0 / 4753.3)
    with pytest.raises(KeyError, match="no random/human reference scores for Atari game 'Tetris'"):
        human_normalized_score("Tetris", 1.0)
