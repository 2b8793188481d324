"""TVGrid (byol_hindsight.md §4.1): dynamics per mode, seeding, shapes, press info, confinement, recording;
NoisyTVObsWrapper on MiniGrid; catalogue registration of the noisy-TV ids."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from minigrid_helpers import RIGHT, TOGGLE, facing, plan

from explore_bench.envs import NAMESPACE, env_family, list_envs, make_env
from explore_bench.envs.tvgrid import (
    MODES,
    PRESS_CELL,
    TV_CELL,
    NoisyTVObsWrapper,
    TVGridEnv,
    record_tvgrid,
)

STAY, N, S, W, E = range(5)
TVGRID_IDS = ["TVGrid-Off-v0", "TVGrid-Always-v0", "TVGrid-Remote-v0", "TVGrid-BigAlways-v0", "TVGrid-BigRemote-v0"]
NOISY_DOORKEY = "MiniGrid-DoorKey-8x8-NoisyTV-v0"


def grid_of(env: TVGridEnv, obs: np.ndarray) -> np.ndarray:
    return obs[: env.grid_dim].reshape(env.grid_shape)


# --------------------------------------------------------------------------- observation and dynamics


@pytest.mark.parametrize("mode", MODES)
def test_shapes_and_one_hot(mode):
    env = TVGridEnv(mode, seed=0)
    big = mode.startswith("big")
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (49 * 11 + (72 if big else 0),), np.float32)
    assert env.action_space == gym.spaces.Discrete(5)
    obs, info = env.reset()
    assert info["press"] is False and info["cell"].dtype == np.int64 and info["cell"].shape == (2,)
    for _ in range(30):
        assert obs.dtype == np.float32 and obs in env.observation_space
        grid = grid_of(env, obs)
        np.testing.assert_array_equal(grid.sum(-1), np.ones((7, 7)))  # one category per cell
        assert grid[..., 2].sum() == 1  # one agent
        x, y = info["cell"]
        assert grid[y, x, 2] == 1
        assert grid[0, :, 1].sum() == 6 and grid[TV_CELL[1], TV_CELL[0], 3:].sum() == 1  # TV replaces one wall
        if big:
            screen = obs[env.grid_dim:].reshape(9, 8)
            np.testing.assert_array_equal(screen.sum(-1), np.ones(9))
        d = env.decode(obs)
        assert d["cell"] == tuple(info["cell"]) and d["tv"] == env.tv_symbol
        if big:
            np.testing.assert_array_equal(d["screen"], env.screen)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == 0.0 and terminated is False and truncated is False


def test_moves_walls_and_stay():
    env = TVGridEnv("off", seed=0)
    env.reset(options={"start": (1, 1)})
    expected = [(N, (1, 1)), (W, (1, 1)), (E, (2, 1)), (S, (2, 2)), (STAY, (2, 2)), (E, (3, 2)), (N, (3, 1)),
                (N, (3, 1))]  # the TV is a wall
    for action, cell in expected:
        _, _, _, _, info = env.step(action)
        assert tuple(info["cell"]) == cell and tuple(env.agent_pos) == cell
    env.reset(options={"start": (5, 5)})
    for action in (E, S):
        assert tuple(env.step(action)[4]["cell"]) == (5, 5)
    with pytest.raises(ValueError, match="start cell"):
        env.reset(options={"start": (0, 0)})
    with pytest.raises(ValueError, match="action"):
        env.step(5)


@pytest.mark.parametrize("mode", MODES)
def test_press_info_in_every_mode(mode):
    env = TVGridEnv(mode, seed=1)
    env.reset(options={"start": PRESS_CELL})
    assert env.step(STAY)[4]["press"] is True
    assert env.step(N)[4]["press"] is False  # bumping into the TV is not a press
    assert env.step(STAY)[4]["press"] is True
    env.step(S)
    assert env.step(STAY)[4]["press"] is False  # staying elsewhere is not a press


def _run(env, actions):
    tvs, screens, presses = [], [], []
    for a in actions:
        _, _, _, _, info = env.step(a)
        tvs.append(env.tv_symbol)
        screens.append(env.screen.copy())
        presses.append(info["press"])
    return np.array(tvs), np.array(screens), np.array(presses)


@pytest.mark.parametrize("mode", MODES)
def test_tv_dynamics(mode):
    env = TVGridEnv(mode, seed=2)
    rng = np.random.default_rng(0)
    env.reset(options={"start": PRESS_CELL})
    assert env.tv_symbol == (env.tv_symbol if mode == "always" else 0)
    if mode == "big_remote":
        assert not env.screen.any()
    # 40 presses, then a random walk that never stands on the press cell with action 0
    tvs0, screens0, presses0 = _run(env, [STAY] * 40)
    assert presses0.all()
    env.reset(options={"start": (1, 5)})
    walk = [int(a) for a in rng.integers(1, 5, size=200)]
    start_tv, start_screen = env.tv_symbol, env.screen.copy()
    tvs1, screens1, presses1 = _run(env, walk)
    assert not presses1.any()
    changes0 = np.count_nonzero(np.diff(tvs0))
    screen_changes0 = np.count_nonzero(np.any(np.diff(screens0, axis=0), axis=1))
    screen_changes1 = np.count_nonzero(np.any(np.diff(screens1, axis=0), axis=1))
    if mode == "off":
        assert not tvs0.any() and not tvs1.any() and not screens0.any()
    elif mode == "always":
        assert changes0 > 25 and np.count_nonzero(np.diff(tvs1)) > 150  # resampled every step (1/8 repeats)
        assert set(tvs1.tolist()) == set(range(8))
    elif mode == "remote":
        assert changes0 > 25 and set(tvs0.tolist()) == set(range(8))
        assert (tvs1 == start_tv).all()  # no press: unchanged
    elif mode == "big_always":
        assert not tvs0.any() and not tvs1.any()  # the grid TV stays 0; the screen is the noise
        assert screen_changes0 == 39 and screen_changes1 == 199
    elif mode == "big_remote":
        assert not tvs0.any()
        assert screen_changes0 == 39 and screen_changes1 == 0 and (screens1 == start_screen).all()
        assert len({tuple(s) for s in screens0}) == 40


def test_truncation_at_max_steps():
    env = TVGridEnv("remote", seed=0)
    env.reset()
    for t in range(1, 101):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated and truncated == (t == 100)
    env = TVGridEnv("off", max_steps=5, seed=0)
    env.reset()
    assert [env.step(0)[3] for _ in range(5)] == [False] * 4 + [True]


def test_seeding():
    def rollout(env, **reset_kwargs):
        obs, _ = env.reset(**reset_kwargs)
        out = [obs]
        for a in [0, 1, 2, 0, 3, 4, 0, 0] * 10:
            out.append(env.step(a)[0])
        return np.stack(out)

    a = rollout(TVGridEnv("always", seed=5))
    np.testing.assert_array_equal(a, rollout(TVGridEnv("always", seed=5)))
    np.testing.assert_array_equal(a, rollout(TVGridEnv("always"), seed=5))  # constructor seed == reset seed
    assert not np.array_equal(a, rollout(TVGridEnv("always", seed=6)))
    # the seeded RNG continues across resets
    e1, e2 = TVGridEnv("big_always", seed=3), TVGridEnv("big_always", seed=3)
    rollout(e1), rollout(e2)
    np.testing.assert_array_equal(rollout(e1), rollout(e2))


def test_confinement():
    env = TVGridEnv("remote", confine_x=3, seed=0)
    assert all(x <= 3 for x, _ in env.free_cells) and len(env.free_cells) == 15
    env.reset(options={"start": (3, 3)})
    obs, _, _, _, info = env.step(E)
    assert tuple(info["cell"]) == (3, 3)  # the internal wall blocks
    # the barrier is invisible: the cells x >= 4 are empty in the observation
    grid = grid_of(env, obs)
    assert (grid[1:6, 4:6, 0] == 1).all()
    for _ in range(10):
        env.reset()
        for _ in range(100):
            _, _, _, truncated, info = env.step(env.action_space.sample())
            assert 1 <= info["cell"][0] <= 3
    # the full-grid env and the confined one give identical observations of the same state
    full = TVGridEnv("remote", seed=0)
    full.reset(options={"start": (2, 2)})
    env.reset(options={"start": (2, 2)})
    np.testing.assert_array_equal(full.observation(), env.observation())
    for bad in (0, 6):
        with pytest.raises(ValueError, match="confine_x"):
            TVGridEnv("off", confine_x=bad)
    with pytest.raises(ValueError, match="unknown mode"):
        TVGridEnv("sometimes")


def test_render():
    env = TVGridEnv("big_remote", confine_x=3, render_mode="ansi", seed=0)
    env.reset(options={"start": (1, 1)})
    text = env.render()
    assert text.splitlines()[0] == "###0###" and text.splitlines()[1] == "#A._::#" and "screen" in text
    image = TVGridEnv("big_always", render_mode="rgb_array", seed=0)
    image.reset()
    assert image.render().shape == (88, 56, 3) and image.render().dtype == np.uint8


# --------------------------------------------------------------------------- recording


def test_record_tvgrid_shapes_and_consistency():
    batch, obs_space, act_space = record_tvgrid("remote", 40, 16, seed=0)
    assert obs_space == TVGridEnv("remote").observation_space and act_space == gym.spaces.Discrete(5)
    assert batch.obs.shape == batch.next_obs.shape == (16, 40, 539) and batch.obs.dtype == np.float32
    assert batch.actions.shape == (16, 40) and batch.actions.dtype == np.int64
    assert batch.dones.shape == (16, 40) and not batch.dones.any()
    assert batch.infos["press"].shape == (16, 40) and batch.infos["press"].dtype == bool
    assert batch.infos["cell"].shape == (16, 40, 2) and batch.infos["cell"].dtype == np.int64
    np.testing.assert_array_equal(batch.obs[1:], batch.next_obs[:-1])  # one episode per sequence
    env = TVGridEnv("remote")
    for t in range(16):
        for j in range(40):
            before, after = env.decode(batch.obs[t, j]), env.decode(batch.next_obs[t, j])
            assert after["cell"] == tuple(batch.infos["cell"][t, j])
            is_press = before["cell"] == PRESS_CELL and batch.actions[t, j] == 0
            assert batch.infos["press"][t, j] == is_press
            if not is_press:
                assert after["tv"] == before["tv"]
    # deterministic given the seed
    again, _, _ = record_tvgrid("remote", 40, 16, seed=0)
    np.testing.assert_array_equal(again.next_obs, batch.next_obs)
    np.testing.assert_array_equal(again.actions, batch.actions)
    other, _, _ = record_tvgrid("remote", 40, 16, seed=1)
    assert not np.array_equal(other.actions, batch.actions)


def test_record_press_start_and_confinement():
    env = TVGridEnv("remote")
    starts, _, _ = record_tvgrid("remote", 50, 4, seed=0, press_start_prob=1.0, confine_x=3)
    assert all(env.decode(starts.obs[0, j])["cell"] == PRESS_CELL for j in range(50))
    never, _, _ = record_tvgrid("remote", 50, 4, seed=0, press_start_prob=0.0)
    assert sum(env.decode(never.obs[0, j])["cell"] == PRESS_CELL for j in range(50)) < 10
    data, _, _ = record_tvgrid("remote", 400, 16, seed=0, confine_x=3)
    assert data.infos["cell"][..., 0].max() == 3
    # the protocol's default gives a few percent of presses (a uniform policy presses 1/5 of its time there)
    assert 0.01 < data.infos["press"].mean() < 0.1


@pytest.mark.parametrize("mode", ["remote", "big_remote", "always"])
def test_record_novel_region(mode):
    novel, space, _ = record_tvgrid(mode, 30, 16, seed=0, region="novel")
    assert space == TVGridEnv(mode).observation_space
    env = TVGridEnv(mode)
    cells = [env.decode(novel.obs[t, j])["cell"] for t in range(16) for j in range(30)]
    assert min(x for x, _ in cells) == 4 and novel.infos["cell"][..., 0].min() >= 4
    assert not novel.infos["press"].any()
    if mode != "always":  # no press is possible there: the TV and the screen stay still
        assert {env.decode(o)["tv"] for o in novel.next_obs.reshape(-1, env.obs_dim)} == {0}
        if mode == "big_remote":
            assert not novel.next_obs[..., env.grid_dim:].reshape(-1, 9, 8).argmax(-1).any()
    with pytest.raises(ValueError, match="novel"):
        record_tvgrid(mode, 2, 2, seed=0, region="novel", confine_x=3)
    with pytest.raises(ValueError, match="region"):
        record_tvgrid(mode, 2, 2, seed=0, region="elsewhere")


def test_record_across_episode_ends():
    batch, _, _ = record_tvgrid("always", 3, 25, seed=0, max_steps=10)
    assert batch.dones[:, 0].tolist() == [t % 10 == 9 for t in range(25)]
    assert not np.array_equal(batch.obs[10], batch.next_obs[9])  # a new episode starts after the done


def test_bonus_encoders_accept_tvgrid():
    from explore_bench.bonuses import make_bonus

    for mode in ("remote", "big_always"):
        batch, obs_space, act_space = record_tvgrid(mode, 8, 4, seed=0)
        for name in ("rnd", "count"):
            bonus = make_bonus(name, obs_space, act_space, seed=0)
            r = bonus.compute(batch)
            assert r.shape == (4, 8) and np.isfinite(r).all()


# --------------------------------------------------------------------------- catalogue


def test_catalogue_registration():
    assert list_envs("tvgrid") == TVGRID_IDS
    assert NOISY_DOORKEY in list_envs("minigrid") and NOISY_DOORKEY in list_envs()
    for env_id in TVGRID_IDS:
        assert env_family(env_id) == "tvgrid" and env_family(f"{NAMESPACE}/{env_id}") == "tvgrid"
    assert env_family(NOISY_DOORKEY) == "minigrid"
    for env_id, mode in zip(TVGRID_IDS, MODES):
        env = gym.make(f"{NAMESPACE}/{env_id}")
        assert env.unwrapped.mode == mode
        assert env.observation_space == TVGridEnv(mode).observation_space
        obs, _ = env.reset(seed=4)
        ref, _ = make_env(env_id, seed=4).reset()
        np.testing.assert_array_equal(obs, ref)


def test_catalogue_episode_metrics():
    env = make_env("TVGrid-Remote-v0", seed=0)
    env.reset(options={"start": PRESS_CELL})
    presses = 0
    cells = {(3, 1)}
    for t in range(100):
        a = 0 if t < 10 else env.action_space.sample()
        _, _, terminated, truncated, info = env.step(a)
        presses += info["press"]
        cells.add(tuple(info["cell"]))
        assert info["cell"].shape == (2,)
    assert truncated and not terminated
    m = info["episode_metrics"]
    assert m["length"] == 100 and m["return"] == 0.0 and m["success"] == 0.0
    assert m["coverage"] == len(cells)
    assert m["tv_fraction"] == pytest.approx(presses / 100) and presses >= 10
    # kwargs reach TVGridEnv
    assert make_env("TVGrid-Off-v0", k_tv=4, max_steps=7).unwrapped.max_steps == 7


def test_sb3_vec_env_on_tvgrid():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(f"{NAMESPACE}/TVGrid-BigRemote-v0", n_envs=2, seed=0)
    obs = vec.reset()
    assert obs.shape == (2, 611) and obs.dtype == np.float32
    ended = []
    for _ in range(101):
        _, _, dones, infos = vec.step(np.array([vec.action_space.sample() for _ in range(2)]))
        ended += [info["episode_metrics"] for done, info in zip(dones, infos) if done]
    assert len(ended) == 2 and all("tv_fraction" in m for m in ended)
    vec.close()


def test_intrinsic_ppo_trains_on_tvgrid_and_noisy_doorkey():
    pytest.importorskip("stable_baselines3")
    from explore_bench.agents.factory import make_agent, resolve_config

    tiny = {"n_envs": 2, "hyperparameters.n_steps": 32, "hyperparameters.batch_size": 64,
            "hyperparameters.n_epochs": 1, "intrinsic.warmup_rollouts": 1}
    # flat one-hot observations: SB3's default flatten extractor instead of the MiniGrid one-hot extractor
    cfg = resolve_config("TVGrid-Remote-v0", "ppo", "count", 0, 128,
                         {**tiny, "policy_kwargs": {"net_arch": [32, 32]}})
    model = make_agent(cfg)
    model.learn(128)
    assert model.num_timesteps >= 128
    cfg = resolve_config(NOISY_DOORKEY, "ppo", "rnd", 0, 128, tiny)
    make_agent(cfg).learn(128)


# --------------------------------------------------------------------------- MiniGrid wrapper


def test_noisy_doorkey_remote_tv():
    env = make_env(NOISY_DOORKEY)
    plain = make_env("MiniGrid-DoorKey-8x8-v0")
    assert env.observation_space == plain.observation_space == gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(7)
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        ref, _ = plain.reset(seed=seed)
        actions = plan(env.unwrapped, facing((0, 3)))
        if actions is not None:
            break
    assert actions is not None
    assert info["press"] is False and info["tv_symbol"] == 0
    for a in actions:
        obs, _, _, _, info = env.step(a)
        ref, *_ = plain.step(a)
        assert info["press"] is False
    vx, vy = env.unwrapped.relative_coords(0, 3)
    assert obs[vx, vy, 0] == 2 and obs[vx, vy, 1] == 0  # a wall showing symbol 0
    symbols = []
    for _ in range(30):
        obs, _, _, _, info = env.step(TOGGLE)
        ref, *_ = plain.step(TOGGLE)
        assert info["press"] is True
        symbols.append(info["tv_symbol"])
        assert obs[vx, vy, 1] == info["tv_symbol"]
        # everything else is MiniGrid's own observation
        diff = np.argwhere(obs != ref)
        assert all((i, j, c) == (vx, vy, 1) for i, j, c in diff)
    assert set(symbols) == set(range(6))  # the catalogue uses k_tv = 6 (valid MiniGrid colour indices)
    # turning away and toggling is not a press; the symbol stays
    obs, _, _, _, info = env.step(RIGHT)
    last = info["tv_symbol"]
    for _ in range(5):
        _, _, _, _, info = env.step(TOGGLE)
        assert info["press"] is False and info["tv_symbol"] == last


def test_noisy_tv_wrapper_always_mode_and_metrics():
    import minigrid  # noqa: F401
    from minigrid.wrappers import ImgObsWrapper

    from explore_bench.envs import ExplorationStats

    env = ExplorationStats(NoisyTVObsWrapper(ImgObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0", max_steps=40)),
                                             cell=(0, 2), mode="always", k_tv=8))
    _, info = env.reset(seed=0)
    symbols = [info["tv_symbol"]]
    presses = 0
    for _ in range(40):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        symbols.append(info["tv_symbol"])
        presses += info["press"]
        if terminated or truncated:
            break
    assert len(set(symbols)) > 4
    assert info["episode_metrics"]["tv_fraction"] == pytest.approx(presses / info["episode_metrics"]["length"])
    # the dict observation of a raw MiniGrid env works too
    raw = NoisyTVObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"), cell=(0, 2), mode="remote")
    obs, _ = raw.reset(seed=0)
    assert obs["image"].shape == (7, 7, 3)
    with pytest.raises(TypeError, match="MiniGrid"):
        NoisyTVObsWrapper(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="mode"):
        NoisyTVObsWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"), mode="big")


def test_noisy_tv_wrapper_keeps_layouts():
    """The wrapper's RNG is its own: the MiniGrid layout of every seed is unchanged."""
    env, plain = make_env(NOISY_DOORKEY), make_env("MiniGrid-DoorKey-8x8-v0")
    for seed in range(3):
        env.reset(seed=seed)
        plain.reset(seed=seed)
        for _ in range(3):  # later resets continue the seeded RNG identically
            np.testing.assert_array_equal(env.unwrapped.grid.encode(), plain.unwrapped.grid.encode())
            assert tuple(env.unwrapped.agent_pos) == tuple(plain.unwrapped.agent_pos)
            env.reset()
            plain.reset()
