"""Go-Explore phase 1 (shared/specs/go_explore.md §11): cells, update rule, weights, counters, determinism,
resume, the MiniGrid acceptance test, and the runner's bad-input errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from explore_bench.agents.factory import ConfigError
from explore_bench.agents.go_explore import (
    Cell,
    GoExplore,
    GoExploreConfig,
    MiniGridDomain,
    StepResult,
    accepts,
    explore_from,
    make_domain,
    selection_weights,
)
from explore_bench.bonuses.go_explore_cells import downscale_cell
from explore_bench.imaging import area_band, area_resize

MINIGRID = GoExploreConfig(batch_size=20, explore_steps=50, repeat_prob=2 / 3)


# ------------------------------------------------------------------------------------------------------- cells
def test_cell_of_a_screen_is_8x11_with_levels_0_to_8():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (210, 160), dtype=np.uint8)
    cell = downscale_cell(frame)
    assert cell.shape == (8, 11) and cell.dtype == np.uint8
    assert cell.min() >= 0 and cell.max() <= 8
    assert downscale_cell(np.full((210, 160), 255, np.uint8)).min() == 8  # pure white is the 9th level
    assert downscale_cell(np.full((210, 160), 254, np.uint8)).max() == 7
    assert np.array_equal(downscale_cell(frame), downscale_cell(frame.copy()))


def test_area_resize_averages_each_span_weighting_boundary_pixels_by_overlap():
    index, weight = area_band(210, 8)
    np.testing.assert_allclose(weight.sum(0), 1.0, rtol=1e-6)
    ramp = np.tile(np.arange(160, dtype=np.float64), (210, 1))
    small = area_resize(ramp, 8, 11)
    assert small.shape == (8, 11)
    scale = 160 / 11
    for i in range(11):  # the exact integral of the ramp's pixels over [i * scale, (i + 1) * scale)
        lo, hi = i * scale, (i + 1) * scale
        pixels = np.arange(int(np.floor(lo)), int(np.ceil(hi)))
        overlap = np.minimum(pixels + 1, hi) - np.maximum(pixels, lo)
        assert small[0, i] == pytest.approx((pixels * overlap).sum() / scale, rel=1e-5)
    np.testing.assert_allclose(area_resize(np.full((3, 210, 160), 7.0), 84, 84), 7.0, rtol=1e-6)


def test_one_pixel_changed_by_one_leaves_the_cell_unchanged_almost_always():
    rng = np.random.default_rng(1)
    same = 0
    for _ in range(300):
        frame = rng.integers(1, 255, (210, 160), dtype=np.uint8)
        other = frame.copy()
        y, x = rng.integers(210), rng.integers(160)
        other[y, x] = int(frame[y, x]) + int(rng.choice([-1, 1]))
        same += np.array_equal(downscale_cell(frame), downscale_cell(other))
    assert same / 300 >= 0.99


# -------------------------------------------------------------------------------------------- archive rules
@pytest.mark.parametrize("cell, score, length, expected", [
    (None, 0.0, 10, True),                       # new key
    (Cell(100.0, 50, None, b""), 200.0, 90, True),    # higher score replaces
    (Cell(100.0, 50, None, b""), 100.0, 40, True),    # equal score, shorter replaces
    (Cell(100.0, 50, None, b""), 100.0, 60, False),   # equal score, longer is rejected
    (Cell(100.0, 50, None, b""), 0.0, 10, False),     # lower score, shorter is rejected
])
def test_update_rule(cell, score, length, expected):
    assert accepts(cell, score, length) is expected


def test_selection_weights():
    np.testing.assert_allclose(selection_weights([0, 3], [0, 0], [0, 0], "nature"), [1.0, 0.5])
    assert selection_weights([0], [0], [0], "ge2019")[0] == pytest.approx(99.03, abs=0.01)
    with pytest.raises(ValueError, match="nature"):
        selection_weights([0], [0], [0], "uniform")


class Chain:
    """A deterministic corridor 0..n-1 for counter tests: action 1 moves right, 0 left; reward 1 on entering n-1,
    which is terminal."""

    n_actions = 2
    frames_per_step = 1

    def __init__(self, n: int = 6, script: list[int] | None = None) -> None:
        self.n, self.pos, self.script = n, 0, script

    def reset(self) -> StepResult:
        self.pos = 0
        return StepResult(0, 0.0, False, False, 0)

    def step(self, action: int) -> StepResult:
        self.pos = min(max(self.pos + (1 if action == 1 else -1), 0), self.n - 1)
        end = self.pos == self.n - 1
        return StepResult(self.pos, float(end), end, False, self.pos)

    def snapshot(self) -> int:
        return self.pos

    def restore(self, snapshot: int) -> None:
        self.pos = snapshot


class Scripted:
    """A random generator stand-in that replays fixed actions: `integers` returns the script, `random` never repeats."""

    def __init__(self, actions: list[int]) -> None:
        self.actions = list(actions)

    def random(self) -> float:
        return 1.0

    def integers(self, n: int) -> int:
        return self.actions.pop(0)


def test_counters_of_a_three_step_trajectory_with_a_revisit():
    explorer = GoExplore("chain", config=GoExploreConfig(batch_size=1, explore_steps=3, reset_cell_on_update=False), domain=Chain())
    start = explorer.archive[0]
    # 0 -> 1 -> 0 -> 1: cell 1 is new (seen once: first visit only), the start cell is revisited (no increment)
    traj = explore_from(explorer.domain, 0, start, {0: (0.0, 0)}, Scripted([1, 0, 1]), 3, 0.0, True, 100)
    assert traj.visits == [1] and [c[0] for c in traj.candidates] == [1]
    assert explorer.apply(traj, origin=start) == {1}
    assert (start.seen, start.chosen, start.chosen_since_new) == (1, 1, 0)  # a new cell resets chosen_since_new
    assert (explorer.archive[1].seen, explorer.archive[1].traj_len, explorer.archive[1].actions) == (1, 1, bytes([1]))
    # again from cell 0: nothing new, so chosen_since_new keeps counting
    traj = explore_from(explorer.domain, 0, start, {0: (0.0, 0), 1: (0.0, 1)}, Scripted([1, 0, 0]), 3, 0.0, True, 100)
    assert traj.candidates == [] and explorer.apply(traj, origin=start) == set()
    assert (start.seen, start.chosen, start.chosen_since_new) == (2, 2, 1)
    assert explorer.archive[1].seen == 2


def test_reset_cell_on_update_zeroes_the_counters_of_new_cells_after_the_batch():
    explorer = GoExplore("chain", seed=0, config=GoExploreConfig(batch_size=4, explore_steps=3), domain=Chain())
    explorer.iteration()
    new = [c for k, c in explorer.archive.items() if k != 0]
    assert new and all(c.seen == c.chosen == c.chosen_since_new == 0 for c in new)


def test_terminal_states_are_never_archived_and_a_solved_task_is_the_demonstration():
    explorer = GoExplore("chain", seed=0, config=GoExploreConfig(batch_size=10, explore_steps=10, repeat_prob=0.5), domain=Chain())
    explorer.run(2000)
    assert 5 not in explorer.archive  # the terminal end of the corridor
    assert explorer.solved_at is not None and explorer.max_score == 1.0
    demo = explorer.demonstration()
    assert demo["terminal"] and demo["score"] == 1.0
    chain = Chain()
    chain.reset()
    results = [chain.step(a) for a in demo["actions"]]
    assert results[-1].terminal and sum(r.reward for r in results) == 1.0


def test_archive_max_score_and_cells_never_decrease():
    explorer = GoExplore("MiniGrid-DoorKey-8x8-v0", seed=0, config=MINIGRID)
    history = [explorer.iteration() for _ in range(15)]
    assert all(a.cells <= b.cells and a.max_score <= b.max_score for a, b in zip(history, history[1:]))


def test_without_the_return_every_trajectory_starts_from_reset_and_finds_far_fewer_cells():
    """§11 test 8 in miniature (the Montezuma comparison is the go_explore_vs_random suite): on a long corridor
    at equal frames, the explorer that returns to archived cells reaches >= 3x the cells of the same random
    explorer restarted from reset every time."""
    settings = dict(batch_size=10, explore_steps=10, repeat_prob=0.5, reset_cell_on_update=False)
    go = GoExplore("chain", seed=0, config=GoExploreConfig(**settings), domain=Chain(n=500))
    no_return = GoExplore("chain", seed=0, config=GoExploreConfig(**settings, return_to_cells=False),
                          domain=Chain(n=500))
    assert no_return.select(np.random.default_rng(0)) == [0] * 10
    go.run(5_000)
    no_return.run(5_000)
    assert go.frames == no_return.frames == 5_000
    assert no_return.archive[0].chosen == 500  # every trajectory started from the reset cell
    assert len(go.archive) >= 3 * len(no_return.archive)


# ------------------------------------------------------------------------------------------- determinism
def _fingerprint(explorer: GoExplore):
    return [(k, c.score, c.traj_len, c.actions, c.seen, c.chosen) for k, c in explorer.archive.items()]


def test_same_seed_same_archive_with_one_or_two_workers():
    runs = []
    for workers in (1, 2, 1):
        explorer = GoExplore("MiniGrid-DoorKey-8x8-v0", seed=5, config=GoExploreConfig(**{**MINIGRID.__dict__, "workers": workers}))
        for _ in range(3):
            explorer.iteration()
        explorer.close()
        runs.append(_fingerprint(explorer))
    assert runs[0] == runs[1] == runs[2]
    other = GoExplore("MiniGrid-DoorKey-8x8-v0", seed=6, config=MINIGRID)
    for _ in range(3):
        other.iteration()
    assert _fingerprint(other) != runs[0]


def _replay(domain, actions) -> list[StepResult]:
    """The results of a reset of `domain` and of `actions` replayed from it, in order."""
    return [domain.reset()] + [domain.step(action) for action in actions]


def _unreplayable_cells(explorer: GoExplore, env_id: str, seed: int) -> list:
    """The archived cells whose action paths, replayed from reset, do not reach the cell's key with its score in its
    length."""
    domain = make_domain(env_id, seed)
    bad = []
    for key, cell in explorer.archive.items():
        results = _replay(domain, cell.actions)
        if (results[-1].key, sum(r.reward for r in results), len(cell.actions)) != (key, cell.score, cell.traj_len):
            bad.append(key)
    return bad


@pytest.mark.parametrize("env_id, iterations", [("MiniGrid-DoorKey-8x8-v0", 30), ("Atari-MontezumaRevenge-v0", 20)])
def test_every_archived_path_replays_to_its_cell(env_id, iterations):
    """A cell's actions are the path that was restored plus the explore steps, even when an earlier trajectory of the
    same batch improved the cell returned to (so its archived path changed under the trajectory): every archived
    path replays from reset to its cell, score and length, and the demonstration file's path is one of them."""
    if env_id.startswith("Atari"):
        pytest.importorskip("ale_py")
    config = MINIGRID if env_id.startswith("MiniGrid") else GoExploreConfig()
    explorer = GoExplore(env_id, seed=0, config=config)
    for _ in range(iterations):
        explorer.iteration()
    assert _unreplayable_cells(explorer, env_id, 0) == []
    demo = explorer.demonstration()
    results = _replay(make_domain(env_id, 0), demo["actions"])
    assert (sum(r.reward for r in results), results[-1].terminal, len(demo["actions"])) == (demo["score"], demo["terminal"], demo["length"])


COMMITTED_DEMOS = sorted((Path(__file__).resolve().parents[1] / "results").glob("*/runs/*/*/seed_*/demo.json"))


@pytest.mark.parametrize("path", COMMITTED_DEMOS, ids=lambda p: "/".join(p.parts[-6:-1]))
def test_committed_demonstrations_replay_to_their_score(path):
    """Every `demo.json` in results/ is what it says: its actions, replayed from reset of its run's env and seed,
    collect its score (and end the episode where it says it reached a solved state)."""
    config = json.loads((path.parent / "config.json").read_text())["config"]
    if config["env"].startswith("Atari"):
        pytest.importorskip("ale_py")
    demo = json.loads(path.read_text())
    results = _replay(make_domain(config["env"], config["seed"]), demo["actions"])
    assert not any(r.terminal for r in results[:-1]), "the demonstration goes on after its episode ended"
    assert sum(r.reward for r in results) == pytest.approx(demo["score"]) and results[-1].terminal == demo["terminal"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_atari_snapshot_and_replayed_actions_reproduce_the_screen(seed):
    """Returning by restore and returning by replaying the cell's actions from reset are the same state: the cell's
    key is reached, and any actions taken afterwards give identical screens."""
    pytest.importorskip("ale_py")
    explorer = GoExplore("Atari-MontezumaRevenge-v0", seed=seed, config=GoExploreConfig(batch_size=10))
    explorer.iteration()
    key, cell = max(explorer.archive.items(), key=lambda kv: kv[1].traj_len)
    after = np.random.default_rng(seed).integers(explorer.domain.n_actions, size=30)
    domain = explorer.domain
    domain.restore(cell.snapshot)
    restored = [domain.step(a) for a in after]
    restored_screen = domain.screen().copy()
    domain.reset()
    replayed = [domain.step(a) for a in cell.actions]
    assert replayed[-1].key == key
    replayed = [domain.step(a) for a in after]
    assert [r.key for r in replayed] == [r.key for r in restored]
    assert np.array_equal(domain.screen(), restored_screen)


# ------------------------------------------------------------------------------------------ behaviour
@pytest.mark.parametrize("env_id, steps", [("MiniGrid-DoorKey-8x8-v0", 100_000), ("MiniGrid-MultiRoom-N4-S5-v1", 500_000)])
def test_minigrid_reaches_the_goal_within_the_spec_steps(env_id, steps):
    for seed in (0, 1, 2):
        explorer = GoExplore(env_id, seed=seed, config=MINIGRID)
        while explorer.solved_at is None and explorer.frames < steps:
            explorer.iteration()
        assert explorer.solved_at is not None and explorer.solved_at <= steps, (env_id, seed, explorer.frames)


# ------------------------------------------------------------------------------------------ runner
def _config(frames: int, **explorer):
    from explore_bench.agents.factory import resolve_config

    config = resolve_config("MiniGrid-DoorKey-8x8-v0", "go_explore", None, 0, frames)
    config["explorer"].update({"batch_size": 20, "explore_steps": 50, "repeat_prob": 2 / 3, **explorer})
    return config


def test_run_folder_and_resume_after_a_kill_give_the_uninterrupted_result(tmp_path, monkeypatch):
    from explore_bench.runner.run import run_single

    config = _config(30_000)
    whole = run_single(config, tmp_path / "whole", log_every=5000, checkpoint_every=5000)
    assert whole["status"] == "finished" and whole["final"]["success"] == 1.0
    assert whole["agent"] == "go_explore" and whole["bonus"] is None
    for name in ("progress.csv", "archive.csv", "demo.json", "config.json", "checkpoint.archive.pkl"):
        assert (tmp_path / "whole" / name).exists(), name
    demo = json.loads((tmp_path / "whole" / "demo.json").read_text())
    assert demo["terminal"] and demo["score"] == whole["final"]["return"]

    calls = {"n": 0}
    original = GoExplore.iteration

    def killed_after_twelve(self):
        calls["n"] += 1
        if calls["n"] > 12:
            raise RuntimeError("killed")
        return original(self)

    monkeypatch.setattr(GoExplore, "iteration", killed_after_twelve)
    failed = run_single(config, tmp_path / "killed", log_every=5000, checkpoint_every=5000)
    assert failed["status"] == "failed" and "killed" in failed["error"]
    monkeypatch.setattr(GoExplore, "iteration", original)
    resumed = run_single(config, tmp_path / "killed", log_every=5000, checkpoint_every=5000)
    assert resumed["status"] == "finished" and 0 < resumed["resumed_from"] < 30_000
    assert any("resumed from" in e for e in resumed["events"])
    assert {k: resumed["final"][k] for k in ("return", "cells", "coverage", "solved_at")} == \
           {k: whole["final"][k] for k in ("return", "cells", "coverage", "solved_at")}
    with open(tmp_path / "killed" / "checkpoint.archive.pkl", "rb") as f:
        a = pickle.load(f)["explorer"]["archive"]
    with open(tmp_path / "whole" / "checkpoint.archive.pkl", "rb") as f:
        b = pickle.load(f)["explorer"]["archive"]
    assert list(a) == list(b)


def test_bad_explorer_input_gets_clear_errors(tmp_path):
    from explore_bench.agents.factory import resolve_config
    from explore_bench.runner.explorer import build_explorer

    with pytest.raises(ConfigError, match="standalone explorer.*no bonus"):
        resolve_config("MiniGrid-DoorKey-8x8-v0", "go_explore", "rnd", 0, 1000)
    with pytest.raises(TypeError, match="unknown explorer setting.*batch"):
        build_explorer({**_config(1000), "explorer": {"batchsize": 3}})
    with pytest.raises(ValueError, match="repeat_prob"):
        build_explorer(_config(1000, repeat_prob=1.5))
    with pytest.raises(KeyError, match="snapshot"):
        make_domain("TVGrid-Remote-v0")


# ------------------------------------------------------------------------------------------ bonus
def test_cell_bonus_counts_the_newest_frame_of_a_stack():
    from explore_bench.bonuses import Transitions, make_bonus

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    bonus = make_bonus("go_explore_cells", space, gym.spaces.Discrete(18), beta=0.01)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 84, 84), dtype=np.uint8)
    obs = np.zeros((3, 1, 4, 84, 84), np.uint8)
    obs[:, 0, -1] = frames[[0, 1, 0]]  # the newest frames: A, B, A
    obs[1, 0, 0] = 255  # an older frame of the stack differs: not part of the cell
    batch = Transitions(obs, np.zeros((3, 1), np.int64), obs, np.zeros((3, 1), bool))
    np.testing.assert_allclose(bonus.compute(batch)[:, 0], [0.01, 0.01, 0.01 / np.sqrt(2)], rtol=1e-6)
    cells = downscale_cell(frames)
    assert not np.array_equal(cells[0], cells[1])


class ChainWalk(gym.Env):
    """A gymnasium corridor of `n` one-hot cells without reward: start at the left end, actions left / right,
    `n` steps per episode; `infos["cell"]` is the position; every position reached goes into `visited`."""

    def __init__(self, visited: set, n: int = 100) -> None:
        self.n, self.visited = n, visited
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = self.t = 0

    def _out(self) -> tuple[np.ndarray, dict]:
        self.visited.add(self.pos)
        return np.eye(self.n, dtype=np.float32)[self.pos], {"cell": np.array([self.pos])}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.t = 0
        return self._out()

    def step(self, action):
        self.pos = min(max(self.pos + (1 if action == 1 else -1), 0), self.n - 1)
        self.t += 1
        obs, info = self._out()
        return obs, 0.0, False, self.t >= self.n, info


def test_ppo_with_the_cell_bonus_visits_more_of_a_chain_than_plain_ppo():
    """§11 test 11: on a reward-free 100-cell corridor, PPO + go_explore_cells reaches strictly more distinct cells
    than PPO without a bonus (median of 3 seeds), within 10k steps (the spec allows 50k)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from explore_bench.agents.intrinsic_ppo import IntrinsicPPO

    def distinct_cells(bonus: str | None, seed: int) -> int:
        visited: set = set()
        env = DummyVecEnv([lambda: ChainWalk(visited) for _ in range(4)])
        settings = dict(n_steps=128, batch_size=128, n_epochs=4, learning_rate=1e-3, seed=seed, device="cpu")
        if bonus is None:
            agent = PPO("MlpPolicy", env, **settings)
        else:
            agent = IntrinsicPPO("MlpPolicy", env, bonus=bonus, warmup_rollouts=0, **settings)
        agent.learn(10_000)
        return len(visited)

    plain = np.median([distinct_cells(None, seed) for seed in range(3)])
    with_bonus = np.median([distinct_cells("go_explore_cells", seed) for seed in range(3)])
    assert with_bonus > plain, (with_bonus, plain)


# ------------------------------------------------------------------------------------------ phase 2
def test_backward_curriculum_moves_back_on_success_only():
    from explore_bench.agents.backward import BackwardCurriculum

    cur = BackwardCurriculum(40, move_threshold=0.5, window=3, step=10, episodes_per_check=4, seed=0)
    assert cur.start == 39 and all(39 <= cur.sample() <= 39 for _ in range(20))
    for _ in range(8):
        cur.report(39, False)
    assert cur.start == 39  # never successful: stays
    cur.report(39, True)
    assert cur.start == 39  # the last 4: 1 of 4 succeeded
    cur.report(39, True)
    assert cur.start == 29 and len(cur.recent) == 0  # 2 of the last 4 reach the threshold
    assert {cur.sample() for _ in range(200)} == {29, 30, 31, 32}
    cur.report(39, True)  # an episode from before the move says nothing about the new window
    assert len(cur.recent) == 0
    for start in (29, 19, 9):
        for _ in range(4):
            cur.report(start, True)
    assert cur.start == 0 and cur.done and cur.history[-1] == (cur.episodes, 0)
    with pytest.raises(ValueError, match="move_threshold"):
        BackwardCurriculum(10, move_threshold=0.0)


def test_demo_start_replays_the_demonstration_and_sticky_noise_differs_between_episodes():
    from explore_bench.agents.backward import BackwardCurriculum, make_backward_env

    explorer = GoExplore("MiniGrid-DoorKey-5x5-v0", seed=3, config=MINIGRID)
    explorer.run(50_000, until_solved=True)
    actions = explorer.demonstration()["actions"]
    cur = BackwardCurriculum(len(actions), window=0)
    env = make_backward_env("MiniGrid-DoorKey-5x5-v0", actions, 3, cur, sticky=0.0)
    _, info = env.reset()
    assert info["demo_start"] == len(actions) - 1
    _, reward, terminated, _, _ = env.step(actions[-1])  # the demonstration's last action reaches the goal
    assert terminated and reward > 0 and cur.episodes == 1
    sticky = make_backward_env("MiniGrid-DoorKey-5x5-v0", actions, 3, None, sticky=0.5, noise_seed=1)
    paths = []
    for _ in range(3):
        sticky.reset()
        paths.append(tuple(tuple(sticky.unwrapped.agent_pos) + (sticky.step(a)[1],) for a in [2, 1, 2, 0, 2, 2, 1, 2]))
    assert len(set(paths)) > 1


def test_robustified_run_trains_a_policy_from_the_demonstration_and_resumes(tmp_path, monkeypatch):
    from explore_bench.agents.factory import resolve_config
    from explore_bench.runner.run import run_single

    config = resolve_config("MiniGrid-DoorKey-5x5-v0", "go_explore_robust", None, 0, 14_000)
    config["robustify"].update(eval_episodes=2, final_eval_episodes=5)
    calls = {"n": 0}
    from stable_baselines3 import PPO

    original = PPO.train

    def killed_on_the_fourth_update(self):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("killed")
        return original(self)

    monkeypatch.setattr(PPO, "train", killed_on_the_fourth_update)
    failed = run_single(config, tmp_path, log_every=4096, checkpoint_every=4096)
    assert failed["status"] == "failed" and (tmp_path / "checkpoint.robust.zip").exists()
    monkeypatch.setattr(PPO, "train", original)
    summary = run_single(config, tmp_path, log_every=4096, checkpoint_every=4096)
    assert summary["status"] == "finished", summary.get("error")
    assert any("phase 2 resumed" in e for e in summary["events"])
    final = summary["final"]
    assert final["demo_length"] > 0 and final["phase1_frames"] < 14_000 and 0.0 <= final["success"] <= 1.0
    assert summary["frames"] >= 14_000
    rows = (tmp_path / "progress.csv").read_text().splitlines()[1:]
    frames = [int(r.split(",")[0]) for r in rows]
    assert frames == sorted(frames) and len(frames) == len(set(frames))


# ------------------------------------------------------------------------------------------ reset wrapper
def test_reset_wrapper_returns_to_archived_minigrid_states_and_widens_a_random_walk():
    from explore_bench.agents.go_explore import GoExploreResetWrapper
    from explore_bench.envs import make_env

    def walk(p_return: float, steps: int = 6000) -> tuple[set, int]:
        env = GoExploreResetWrapper(make_env("MiniGrid-DoorKey-8x8-v0", seed=0, max_steps=100), p_return=p_return, seed=0)
        rng = np.random.default_rng(0)
        positions, returns = set(), 0
        obs, info = env.reset()
        for _ in range(steps):
            if info.get("returned"):
                returns += 1
                key = MiniGridDomain.state_key(env.unwrapped)
                assert key in env.archive  # the no-op after the restore leaves the archived state as it was
                assert np.array_equal(obs, env.unwrapped.gen_obs()["image"])
            info = {}
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(6)))
            positions.add(tuple(env.unwrapped.agent_pos))
            if terminated or truncated:
                obs, info = env.reset()
        return positions, returns

    plain, none = walk(0.0)
    wide, returns = walk(1.0)
    assert none == 0 and returns > 20
    assert len(wide) > len(plain)


def test_reset_wrapper_on_atari_restores_the_emulator():
    pytest.importorskip("ale_py")
    from explore_bench.agents.go_explore import GoExploreResetWrapper
    from explore_bench.envs import make_env

    env = GoExploreResetWrapper(make_env("Atari-MontezumaRevenge-v0", seed=0), p_return=1.0, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):
        env.step(int(rng.integers(18)))
    obs, info = env.reset()
    assert info["returned"] and obs.shape == (4, 84, 84) and len(env.archive) > 1
    with pytest.raises(TypeError, match="snapshot"):
        from explore_bench.envs import make_env as make

        GoExploreResetWrapper(make("TVGrid-Remote-v0"))
