"""MiniGrid suite: catalogue, factory, registration, ExplorationStats."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from minigrid_helpers import FORWARD, LEFT, PICKUP, RIGHT, TOGGLE, facing, plan

from explore_bench.envs import NAMESPACE, env_family, list_envs, make_env
from explore_bench.envs.minigrid import MINIGRID_ENVS

EXPECTED_IDS = [
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-6x6-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-DoorKey-16x16-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
    "MiniGrid-MultiRoom-N4-S5-v1",
    "MiniGrid-MultiRoom-N6-v0",
    "MiniGrid-KeyCorridorS3R1-v0",
    "MiniGrid-KeyCorridorS3R2-v0",
    "MiniGrid-KeyCorridorS3R3-v0",
    "MiniGrid-KeyCorridorS4R3-v0",
    "MiniGrid-KeyCorridorS5R3-v0",
    "MiniGrid-KeyCorridorS6R3-v0",
    "MiniGrid-ObstructedMaze-1Dl-v0",
    "MiniGrid-ObstructedMaze-1Dlh-v0",
    "MiniGrid-ObstructedMaze-1Dlhb-v0",
    "MiniGrid-ObstructedMaze-2Dl-v0",
    "MiniGrid-ObstructedMaze-2Dlh-v0",
    "MiniGrid-FourRooms-v0",
]
OBS_SPACE = gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)


# --------------------------------------------------------------------------- catalogue


def test_catalogue_ids():
    assert list_envs()[: len(EXPECTED_IDS)] == EXPECTED_IDS
    assert list_envs("minigrid") == EXPECTED_IDS + ["MiniGrid-DoorKey-8x8-NoisyTV-v0"]
    assert list_envs("atari-does-not-exist") == []
    import minigrid  # noqa: F401  registers MiniGrid-* ids

    for env_id in EXPECTED_IDS:
        assert MINIGRID_ENVS[env_id].minigrid_id in gym.registry, env_id
        assert env_family(env_id) == "minigrid"
        assert env_family(f"{NAMESPACE}/{env_id}") == "minigrid"


def test_multiroom_n4_s5_really_has_four_rooms():
    env = make_env("MiniGrid-MultiRoom-N4-S5-v1")
    env.reset(seed=0)
    assert len(env.unwrapped.rooms) == 4


@pytest.mark.parametrize("env_id", EXPECTED_IDS)
def test_every_env_builds_and_steps(env_id):
    env = make_env(env_id, seed=0)
    assert env.observation_space == OBS_SPACE
    assert env.action_space == gym.spaces.Discrete(7)
    obs, info = env.reset()
    assert obs.dtype == np.uint8 and obs.shape == (7, 7, 3) and obs in env.observation_space
    assert info["cell"].dtype == np.int64 and info["cell"].shape == (3,)
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs in env.observation_space
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
        assert "cell" in info
        if terminated or truncated:
            obs, info = env.reset()
    env.close()


def test_unknown_id_lists_valid_ids():
    for fn in (make_env, env_family):
        with pytest.raises(KeyError) as exc:
            fn("MiniGrid-DoorKey-9x9-v0")
        msg = str(exc.value)
        assert "MiniGrid-DoorKey-9x9-v0" in msg
        for env_id in EXPECTED_IDS:
            assert env_id in msg


def test_gym_make_namespaced_id():
    env = gym.make(f"{NAMESPACE}/MiniGrid-DoorKey-8x8-v0")
    assert env.observation_space == OBS_SPACE
    assert env.action_space == gym.spaces.Discrete(7)
    obs, info = env.reset(seed=3)
    ref_obs, _ = make_env("MiniGrid-DoorKey-8x8-v0").reset(seed=3)
    np.testing.assert_array_equal(obs, ref_obs)
    _, _, _, _, info = env.step(FORWARD)
    assert info["cell"].shape == (3,)
    # make_env also accepts the namespaced id; registration is idempotent
    import explore_bench.envs as envs

    envs.register_envs()
    assert make_env(f"{NAMESPACE}/MiniGrid-FourRooms-v0").observation_space == OBS_SPACE


def test_seed_on_first_reset():
    a = make_env("MiniGrid-KeyCorridorS3R3-v0", seed=7)
    b = make_env("MiniGrid-KeyCorridorS3R3-v0")
    oa, ia = a.reset()
    ob, ib = b.reset(seed=7)
    np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(ia["cell"], ib["cell"])
    # later resets continue the seeded RNG identically
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    # an explicit seed wins over the constructor seed
    c = make_env("MiniGrid-KeyCorridorS3R3-v0", seed=123)
    np.testing.assert_array_equal(c.reset(seed=7)[0], make_env("MiniGrid-KeyCorridorS3R3-v0").reset(seed=7)[0])


# --------------------------------------------------------------------------- ExplorationStats


def _pos(env):
    x, y = env.unwrapped.agent_pos
    return int(x), int(y)


def test_coverage_exact_on_known_layout():
    # DoorKey-5x5 seed 4: left room is the column x=1, key at (1,1), agent at (1,2) facing up,
    # free cell (1,3) below; the locked door keeps it in that room, so coverage is exactly 2.
    env = make_env("MiniGrid-DoorKey-5x5-v0", max_steps=12)
    _, info = env.reset(seed=4)
    assert info["cell"].tolist() == [1, 2, 3]
    actions = [FORWARD, RIGHT, RIGHT, FORWARD, FORWARD, LEFT, LEFT, FORWARD, FORWARD, RIGHT, FORWARD, LEFT]
    cells = []
    for i, a in enumerate(actions):
        _, reward, terminated, truncated, info = env.step(a)
        cells.append(info["cell"].tolist())
        if i < len(actions) - 1:
            assert not (terminated or truncated) and "episode_metrics" not in info
    assert cells[:5] == [[1, 2, 3], [1, 2, 0], [1, 2, 1], [1, 3, 1], [1, 3, 1]]
    assert truncated and not terminated
    assert info["episode_metrics"] == {"return": 0.0, "length": 12, "success": 0.0, "coverage": 2,
                                       "cells": frozenset({(1, 2), (1, 3)})}
    # metrics restart with the next episode: only the start cell is covered
    env.reset()
    assert env.episode_coverage == 1


def test_coverage_and_metrics_match_agent_pos_history():
    env = make_env("MiniGrid-DoorKey-5x5-v0", max_steps=60)
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    base = env.unwrapped
    history, total, steps, episodes, max_cov = [_pos(env)], 0.0, 0, 0, 0
    assert info["cell"].tolist() == [*history[0], int(base.agent_dir)]
    while episodes < 40:
        # turn/forward/pickup/toggle: enough to open the door and roam both rooms
        action = int(rng.choice([LEFT, RIGHT, FORWARD, FORWARD, PICKUP, TOGGLE]))
        _, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        steps += 1
        history.append(_pos(env))
        assert info["cell"].dtype == np.int64
        assert info["cell"].tolist() == [*history[-1], int(base.agent_dir)]
        if not (terminated or truncated):
            assert "episode_metrics" not in info
            continue
        m = info["episode_metrics"]
        assert m == {
            "return": pytest.approx(total),
            "length": steps,
            "success": 1.0 if terminated and reward > 0 else 0.0,
            "coverage": len(set(history)),
            "cells": frozenset(history),
        }
        assert isinstance(m["return"], float) and isinstance(m["length"], int)
        assert isinstance(m["success"], float) and isinstance(m["coverage"], int)
        max_cov = max(max_cov, m["coverage"])
        episodes += 1
        _, info = env.reset()
        history, total, steps = [_pos(env)], 0.0, 0
    assert max_cov > 3  # some episode got through the door


def _planned(base, goal_test):
    actions = plan(base, goal_test)
    assert actions is not None, "no path"
    return actions


def _find(base, obj_type):
    for x in range(base.width):
        for y in range(base.height):
            cell = base.grid.get(x, y)
            if cell is not None and cell.type == obj_type:
                return x, y
    raise AssertionError(obj_type)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_success_on_solved_doorkey(seed):
    env = make_env("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=seed)
    base = env.unwrapped
    history = [_pos(env)]
    rewards = []
    result = None

    def run(actions):
        nonlocal result
        for a in actions:
            assert result is None, "episode ended early"
            _, r, term, trunc, info = env.step(a)
            rewards.append(float(r))
            history.append(_pos(env))
            if term or trunc:
                result = (term, trunc, info)

    key, door, goal = _find(base, "key"), _find(base, "door"), _find(base, "goal")
    run(_planned(base, facing(key)) + [PICKUP])
    assert base.carrying is not None and base.carrying.type == "key"
    run(_planned(base, facing(door)) + [TOGGLE])
    assert base.grid.get(*door).is_open
    run(_planned(base, lambda s: (s[0], s[1]) == goal))
    assert result is not None
    terminated, truncated, info = result
    assert terminated and not truncated and rewards[-1] > 0
    m = info["episode_metrics"]
    assert m["success"] == 1.0
    assert m["length"] == len(rewards)
    assert m["return"] == pytest.approx(sum(rewards))
    assert m["coverage"] == len(set(history))
    assert info["cell"][:2].tolist() == list(goal)


def test_wrapper_rejects_non_minigrid_env():
    from explore_bench.envs import ExplorationStats

    with pytest.raises(TypeError, match="agent_pos"):
        ExplorationStats(gym.make("CartPole-v1"))


# --------------------------------------------------------------------------- integration


def test_import_does_not_pull_sb3_or_torch():
    code = (
        "import sys, explore_bench.envs as e\n"
        "env = e.make_env('MiniGrid-DoorKey-5x5-v0', seed=0); env.reset(); env.step(2)\n"
        "bad = [m for m in ('stable_baselines3', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_sb3_make_vec_env():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    for vec in (
        make_vec_env(f"{NAMESPACE}/MiniGrid-DoorKey-5x5-v0", n_envs=2, seed=0),
        make_vec_env(make_env, n_envs=2, seed=0, env_kwargs={"env_id": "MiniGrid-DoorKey-5x5-v0"}),
    ):
        obs = vec.reset()
        assert obs.shape == (2, 7, 7, 3) and obs.dtype == np.uint8
        ended = []
        for _ in range(260):  # > max_steps 250: every sub-env ends at least once
            _, _, dones, infos = vec.step(np.array([vec.action_space.sample() for _ in range(2)]))
            ended += [info["episode_metrics"] for done, info in zip(dones, infos) if done]
        assert ended and all(set(m) == {"return", "length", "success", "coverage", "cells"} for m in ended)
        vec.close()
