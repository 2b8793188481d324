"""Runner: suites, run folders, progress/summary format, skip of finished runs, resume, strict validation."""

from __future__ import annotations

import csv
import json
import math
import textwrap

import pandas as pd
import pytest
from run_helpers import train_until_killed
from stable_baselines3.common.base_class import BaseAlgorithm

from explore_bench.agents.factory import ConfigError
from explore_bench.envs import make_env
from explore_bench.leaderboard import build_leaderboard, build_plots, load_runs
from explore_bench.leaderboard.aggregate import PROGRESS_COLUMNS as LEADERBOARD_PROGRESS_COLUMNS
from explore_bench.runner import (
    RunConfigMismatch,
    list_suites,
    load_suite,
    make_run_spec,
    run_single,
    run_status,
    run_suite,
)
from explore_bench.runner import run as run_mod
from explore_bench.runner.io import PROGRESS_COLUMNS
from explore_bench.runner.local import check_builds

ENV = "MiniGrid-DoorKey-5x5-v0"
TINY = {
    "n_envs": 4,
    "hyperparameters.n_steps": 32,
    "hyperparameters.batch_size": 64,
    "hyperparameters.n_epochs": 2,
    "intrinsic.warmup_rollouts": 1,
}
TINY_YAML = textwrap.dedent(
    """\
    overrides:
      n_envs: 4
      hyperparameters.n_steps: 32
      hyperparameters.batch_size: 64
      hyperparameters.n_epochs: 2
      intrinsic.warmup_rollouts: 1
    """
)
SUMMARY_KEYS = {
    "status", "env", "agent", "bonus", "seed", "frames", "wall_time_s", "final", "config", "config_hash",
    "git_commit", "versions",
}
VERSION_KEYS = {"python", "torch", "numpy", "gymnasium", "minigrid", "stable_baselines3", "explore_bench"}


def write_suite(tmp_path, body: str, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def tiny_suite(tmp_path, bonuses="[null, count]", frames=2000, seeds="[0]"):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"name: tiny\nframes: {frames}\nseeds: {seeds}\nenvs: [{ENV}]\nagents: [ppo]\nbonuses: {bonuses}\n"
        f"log_every: 256\ncheckpoint_every: 512\n" + TINY_YAML
    )
    return path


def check_progress(run_dir, budget):
    df = pd.read_csv(run_dir / "progress.csv")
    assert tuple(df.columns) == PROGRESS_COLUMNS == LEADERBOARD_PROGRESS_COLUMNS
    frames = df["frames"].to_numpy()
    assert len(frames) >= 3
    assert (frames[1:] > frames[:-1]).all(), f"frames not strictly increasing: {frames}"
    assert frames[-1] >= budget
    assert (df["fps"].dropna() > 0).all()
    return df


def check_summary(run_dir, **identity):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary)
    assert summary["status"] == "finished"
    for k, v in identity.items():
        assert summary[k] == v
    assert set(summary["final"]) >= {"return", "success", "coverage"}
    assert summary["frames"] >= summary["config"]["frames"]
    assert set(summary["versions"]) == VERSION_KEYS
    assert summary["versions"]["torch"] and summary["versions"]["python"]
    assert summary["git_commit"] is None or len(summary["git_commit"]) == 40
    assert summary["config"]["seed"] == summary["seed"]
    assert summary["wall_time_s"] > 0
    config_json = json.loads((run_dir / "config.json").read_text())
    assert config_json["config_hash"] == summary["config_hash"]
    return summary


# --------------------------------------------------------------------------------------------------------------
def test_suite_in_process_pool_writes_run_folders_and_skips_finished(tmp_path):
    suite = load_suite(tiny_suite(tmp_path, frames=1200))
    assert [r.label for r in suite.runs] == [f"{ENV}/ppo/seed_0", f"{ENV}/ppo+count/seed_0"]
    out = tmp_path / "out"
    results = run_suite(suite, out, workers=2, progress=False, tensorboard=False)
    assert [r.status for r in results] == ["finished", "finished"], [r.error for r in results]

    plain, counted = out / ENV / "ppo" / "seed_0", out / ENV / "ppo+count" / "seed_0"
    for run_dir, bonus in [(plain, None), (counted, "count")]:
        df = check_progress(run_dir, 1200)
        s = check_summary(run_dir, env=ENV, agent="ppo", bonus=bonus, seed=0)
        assert (run_dir / "checkpoint.zip").exists() and (run_dir / "checkpoint.json").exists()
        assert s["config"]["n_envs"] == 4 and s["config"]["hyperparameters"]["n_steps"] == 32
        if bonus is None:
            assert df["intrinsic_mean"].isna().all()
        else:
            assert df["intrinsic_mean"].notna().all()
        assert df["tv_fraction"].isna().all() and "tv_fraction" not in s["final"]  # DoorKey has no noisy TV
    assert (out / "suite.yaml").read_text() == (tmp_path / "tiny.yaml").read_text()
    # no temp files left behind
    assert not [p for p in out.rglob("*.tmp*")]

    # rerun: nothing is rerun, nothing is touched
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = run_suite(load_suite(tmp_path / "tiny.yaml"), out, workers=2, progress=False)
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes

    # the leaderboard consumes the folders as they are
    board = build_leaderboard(out, plots=False, n_bootstrap=200)
    assert set(board["method"]) == {"ppo", "ppo+count"}
    assert (board["n_seeds"] == 1).all() and (board["n_failed"] == 0).all()
    assert board["tv_fraction_mean"].isna().all()


def test_resume_from_checkpoint_without_duplicate_rows(tmp_path, monkeypatch):
    spec = make_run_spec(ENV, "ppo", "rnd", 3, 3000, TINY)
    run_dir = tmp_path / "run"
    train_until_killed(monkeypatch, spec.config, run_dir, 2200, log_every=128, checkpoint_every=1000)

    assert not (run_dir / "summary.json").exists()
    assert run_status(run_dir) == "partial"
    ckpt_frames = json.loads((run_dir / "checkpoint.json").read_text())["frames"]
    before = pd.read_csv(run_dir / "progress.csv")
    assert before["frames"].max() > ckpt_frames > 0  # rows past the checkpoint exist: they must be dropped

    summary = run_single(spec.config, run_dir, log_every=128, checkpoint_every=1000, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    assert summary["resumed_from"] == ckpt_frames
    after = check_progress(run_dir, 3000)
    assert after["frames"].is_unique
    kept = before[before["frames"] <= ckpt_frames].reset_index(drop=True)
    pd.testing.assert_frame_equal(after.iloc[: len(kept)].reset_index(drop=True), kept)
    assert after["frames"].iloc[len(kept)] > ckpt_frames
    check_summary(run_dir, bonus="rnd", seed=3)
    assert run_status(run_dir) == "finished"
    # a finished folder is returned as is
    assert run_single(spec.config, run_dir, tensorboard=False)["skipped"] is True


def test_learning_rate_schedule_spans_the_budget_across_a_resume(tmp_path, monkeypatch):
    """`learning_rate: {start, end}` decays linearly over the run's frames; a resumed run goes on from its checkpoint's
    point of the schedule, not from the start."""
    budget = 3000
    spec = make_run_spec(ENV, "ppo", None, 0, budget, {**TINY, "hyperparameters.learning_rate": {"start": 1e-3, "end": 0.0}})
    seen: list[tuple[int, float]] = []
    original = BaseAlgorithm._update_learning_rate

    def spy(self, optimizers):
        original(self, optimizers)
        seen.append((self.num_timesteps, self.policy.optimizer.param_groups[0]["lr"]))

    monkeypatch.setattr(BaseAlgorithm, "_update_learning_rate", spy)
    run_dir = tmp_path / "run"
    train_until_killed(monkeypatch, spec.config, run_dir, 2200, log_every=128, checkpoint_every=1000)
    updates_before_kill = len(seen)
    summary = run_single(spec.config, run_dir, log_every=128, checkpoint_every=1000, tensorboard=False)
    assert summary["status"] == "finished" and summary["resumed_from"] > 0
    assert len(seen) > updates_before_kill
    resumed_steps, resumed_lr = seen[updates_before_kill]
    assert resumed_steps > summary["resumed_from"] and resumed_lr < 1e-3 * (1 - summary["resumed_from"] / budget)
    for steps, lr in seen:
        assert lr == pytest.approx(max(0.0, 1e-3 * (1 - steps / budget)), abs=1e-9)


def test_malformed_schedule_is_refused_before_any_run(tmp_path):
    for schedule in ({"start": 1e-3}, {"start": 1e-3, "end": "zero"}, {"start": float("nan"), "end": 0.0}):
        bad = make_run_spec(ENV, "ppo", None, 0, 1000, {**TINY, "hyperparameters.learning_rate": schedule})
        with pytest.raises(ConfigError, match="hyperparameters.learning_rate: a schedule is a mapping of finite numbers"):
            check_builds([bad])
    with pytest.raises(ConfigError, match="hyperparameters.gamma.*expected a finite number"):
        make_run_spec(ENV, "ppo", None, 0, 1000, {"hyperparameters.gamma": {"start": 0.9, "end": 0.99}})


def test_a_scheduled_hyperparameter_takes_a_number_or_a_schedule_whatever_its_default():
    from explore_bench.runner.suite import _check_override_values

    scheduled = {"hyperparameters": {"learning_rate": {"start": 1e-3, "end": 0.0}, "clip_range": 0.2}}
    _check_override_values(scheduled, {"hyperparameters.learning_rate": 1e-4}, "")  # a constant replaces a schedule
    _check_override_values(scheduled, {"hyperparameters.clip_range": {"start": 0.2, "end": 0.1}}, "")
    with pytest.raises(ConfigError, match="hyperparameters.learning_rate.*expected a finite number"):
        _check_override_values(scheduled, {"hyperparameters.learning_rate": "fast"}, "")


# --------------------------------------------------------------------------------------------------------------
# tv_fraction: the noisy-TV metric of ExplorationStats through progress.csv and summary.json
# --------------------------------------------------------------------------------------------------------------
TV_ENV = "TVGrid-Remote-v0"
# 8-step episodes confined to column 3 (5 cells, the press cell among them): many episodes, some presses
TV_TINY = {
    "n_envs": 4, "hyperparameters.n_steps": 32, "hyperparameters.batch_size": 64, "hyperparameters.n_epochs": 1,
    "policy_kwargs.net_arch": [16], "env_kwargs.max_steps": 8, "env_kwargs.confine_x": 3, "env_kwargs.min_x": 3,
}


def _mean_or_nan(values):
    return sum(values) / len(values) if values else math.nan


def spy_on_progress(monkeypatch, on_step, on_row):
    """Call ``on_step(callback)`` before every ``ProgressCallback._on_step`` and ``on_row(callback)`` before every
    progress row it writes."""
    step, write_row = run_mod.ProgressCallback._on_step, run_mod.ProgressCallback.write_row

    def spied_step(self):
        on_step(self)
        return step(self)

    def spied_row(self):
        on_row(self)
        write_row(self)

    monkeypatch.setattr(run_mod.ProgressCallback, "_on_step", spied_step)
    monkeypatch.setattr(run_mod.ProgressCallback, "write_row", spied_row)


def test_tv_fraction_column_and_final_metric(tmp_path, monkeypatch):
    seen, bounds = [], []  # every episode's tv_fraction as the env reported it; len(seen) at each row

    def record_step(callback):
        seen.extend(i["episode_metrics"]["tv_fraction"] for i in callback.locals["infos"] if "episode_metrics" in i)

    spy_on_progress(monkeypatch, record_step, lambda callback: bounds.append(len(seen)))
    spec = make_run_spec(TV_ENV, "ppo", None, 0, 512, TV_TINY)
    summary = run_single(spec.config, tmp_path, log_every=128, final_window=10, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")

    df = check_progress(tmp_path, 512)
    windows = [seen[a:b] for a, b in zip([0, *bounds], bounds)]
    assert len(df) == len(windows) == 4 and all(windows)
    assert df["tv_fraction"].tolist() == pytest.approx([_mean_or_nan(w) for w in windows])
    assert 0 < df["tv_fraction"].max() < 1  # some episodes pressed the TV, none all the time
    final = json.loads((tmp_path / "summary.json").read_text())["final"]
    assert final["tv_fraction"] == pytest.approx(_mean_or_nan(seen[-10:]))

    # the leaderboard carries it; `plot` draws the curve of this tvgrid run and notes it has no normalised score
    board = build_leaderboard(tmp_path, plots=False, n_bootstrap=200)
    assert board["tv_fraction_mean"].tolist() == pytest.approx([final["tv_fraction"]])
    notes = []
    written = build_plots(tmp_path, n_bootstrap=200, formats=("png",), on_note=notes.append)
    assert [p.name for p in written] == [f"curves_{TV_ENV}.png", f"cells_{TV_ENV}.png"]
    assert len(notes) == 1 and TV_ENV in notes[0] and "'tvgrid'" in notes[0]


#: the progress columns added after the first runner, newest last
NEWER_COLUMNS = ("tv_fraction", "cells_visited")


def _as_previous_runner(run_dir) -> list[list[str]]:
    """Rewrite a run folder as the runner before tv_fraction wrote it: progress.csv without the newer columns,
    checkpoint episodes without tv_fraction and no run-long cells.  Returns the old progress rows (header first)."""
    df = pd.read_csv(run_dir / "progress.csv", dtype=str, keep_default_na=False).drop(columns=list(NEWER_COLUMNS))
    df.to_csv(run_dir / "progress.csv", index=False)
    for state_file in run_dir.glob("checkpoint*.json"):
        state = json.loads(state_file.read_text())
        for key in ("pending", "recent"):
            state[key] = [{k: v for k, v in e.items() if k != "tv_fraction"} for e in state[key]]
        for key in ("cells", "first_success_frames"):
            state.pop(key, None)
        state_file.write_text(json.dumps(state))
    with open(run_dir / "progress.csv", newline="") as f:
        return list(csv.reader(f))


def test_resume_of_a_run_written_before_tv_fraction(tmp_path, monkeypatch):
    spec = make_run_spec(TV_ENV, "ppo", None, 1, 768, TV_TINY)
    train_until_killed(monkeypatch, spec.config, tmp_path, 512, log_every=128, checkpoint_every=256)
    old = _as_previous_runner(tmp_path)
    assert old[0] == list(PROGRESS_COLUMNS[:-len(NEWER_COLUMNS)]) and len(old) > 2
    ckpt_frames = json.loads((tmp_path / "checkpoint.json").read_text())["frames"]

    summary = run_single(spec.config, tmp_path, log_every=128, checkpoint_every=256, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    assert summary["resumed_from"] == ckpt_frames
    with open(tmp_path / "progress.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header == list(PROGRESS_COLUMNS)  # rewritten with the new header, every row as wide as it
    assert all(len(r) == len(header) for r in rows)
    kept = [r for r in old[1:] if int(r[0]) <= ckpt_frames]
    n_new = len(NEWER_COLUMNS)
    assert kept and [r[:-n_new] for r in rows[: len(kept)]] == kept  # the old rows, values unchanged ...
    assert all(r[-n_new:] == [""] * n_new for r in rows[: len(kept)])  # ... and no tv_fraction nor cells
    assert all("" not in r[-n_new:] for r in rows[len(kept):]) and len(rows) > len(kept)  # new rows have both
    assert math.isfinite(summary["final"]["tv_fraction"])
    check_progress(tmp_path, 768)


# --------------------------------------------------------------------------------------------------------------
# cells_visited (run-long coverage, shared with the policy-search explorers) and one fixed layout
# --------------------------------------------------------------------------------------------------------------
FOUR_ROOMS = "MiniGrid-FourRooms-v0"


def test_cells_visited_is_the_union_of_the_episodes_cells_and_fixed_layout_keeps_one_layout(tmp_path, monkeypatch):
    seen, rows_at, starts = set(), [], set()

    def record_step(callback):
        for info in callback.locals["infos"]:
            if "episode_metrics" in info:
                seen.update(info["episode_metrics"]["cells"])
        for env in callback.training_env.envs:
            if env.unwrapped.step_count == 0:
                starts.add(tuple(int(v) for v in env.unwrapped.agent_pos))

    spy_on_progress(monkeypatch, record_step, lambda callback: rows_at.append(len(seen)))
    tiny = {**TINY, "env_kwargs.fixed_layout": True, "env_kwargs.max_steps": 16}
    spec = make_run_spec(FOUR_ROOMS, "ppo", None, 3, 1024, tiny)
    summary = run_single(spec.config, tmp_path, log_every=256, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    assert summary["config"]["env_kwargs"] == {"fixed_layout": True, "max_steps": 16}

    df = check_progress(tmp_path, 1024)
    assert df["cells_visited"].tolist() == rows_at and rows_at == sorted(rows_at) and rows_at[-1] > 16
    assert summary["final"]["cells_visited"] == len(seen)
    assert "first_success_frames" in summary["final"]
    layout = make_env(FOUR_ROOMS, layout_seed=3)
    layout.reset()
    assert starts == {tuple(int(v) for v in layout.unwrapped.agent_pos)}  # every episode of every env: one start
    layout.close()
    # the leaderboard carries the measure, and `plot` draws it against frames
    board = build_leaderboard(tmp_path, plots=False, n_bootstrap=200)
    assert board["cells_visited_mean"].tolist() == [len(seen)]
    written = build_plots(tmp_path, n_bootstrap=200, formats=("png",))
    assert f"cells_{FOUR_ROOMS}.png" in [p.name for p in written]


def test_fixed_layout_resets_every_episode_to_the_layout_of_its_seed():
    fixed = make_env(FOUR_ROOMS, layout_seed=5)
    plain = make_env(FOUR_ROOMS)
    plain.reset(seed=5)
    expected = plain.unwrapped.grid.encode(), tuple(plain.unwrapped.agent_pos)
    for seed in (None, 0, 7):  # the caller's seed is ignored: a vector env's seed + rank included
        fixed.reset(seed=seed)
        assert (fixed.unwrapped.grid.encode() == expected[0]).all() and tuple(fixed.unwrapped.agent_pos) == expected[1]
    plain.reset(seed=6)
    assert not (plain.unwrapped.grid.encode() == expected[0]).all()  # FourRooms draws a new layout per seed
    fixed.close()
    plain.close()


def test_changed_config_is_refused(tmp_path):
    spec = make_run_spec(ENV, "ppo", None, 0, 600, TINY)
    run_dir = spec.run_dir(tmp_path / "out")
    assert run_single(spec.config, run_dir, tensorboard=False)["status"] == "finished"
    other = make_run_spec(ENV, "ppo", None, 0, 600, {**TINY, "hyperparameters.learning_rate": 1e-4})
    with pytest.raises(RunConfigMismatch, match="different config.*hyperparameters"):
        run_single(other.config, run_dir, tensorboard=False)
    path = write_suite(tmp_path, f"frames: 600\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\n" + TINY_YAML
                       + "  hyperparameters.learning_rate: 1e-4\n")
    suite = load_suite(path)
    assert suite.runs[0].config["hyperparameters"]["learning_rate"] == pytest.approx(1e-4)  # YAML "1e-4" coerced
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")}
    with pytest.raises(RunConfigMismatch, match="seed_0"):
        run_suite(suite, tmp_path / "out", workers=0, progress=False)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*")} == mtimes


def test_failed_run_is_recorded_and_the_rest_goes_on(tmp_path):
    path = write_suite(
        tmp_path,
        f"""\
        frames: 600
        seeds: [0]
        runs:
          - {{env: {ENV}, agent: ppo, bonus: null}}
          - {{env: {ENV}, agent: ppo, bonus: count, overrides: {{hyperparameters.no_such_param: 1}}}}
        """,
    )
    path.write_text(path.read_text() + TINY_YAML)
    suite = load_suite(path)
    with pytest.raises(ConfigError, match=r"runs\[1\].*no_such_param"):
        run_suite(suite, tmp_path / "checked", workers=0, progress=False)  # caught up front by check_build
    assert not (tmp_path / "checked").exists()

    results = run_suite(suite, tmp_path / "out", workers=0, progress=False, check_build=False)
    assert [r.status for r in results] == ["finished", "failed"]
    assert "no_such_param" in results[1].error
    failed = json.loads((results[1].run_dir / "summary.json").read_text())
    assert failed["status"] == "failed" and "no_such_param" in failed["error"] and failed["bonus"] == "count"
    runs = load_runs(tmp_path / "out", include_failed=True)
    assert sorted(runs["status"]) == ["failed", "finished"]


BAD_SUITES = [
    ("frames: 1000\nseeds: [0]\nagents: [ppo]\nbonuses: [null]\n", ["'envs'"]),
    (f"seeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\n", ["missing key 'frames'"]),
    (f"frames: 1000\nseeds: zero\nenvs: [{ENV}]\nagents: [ppo]\n", ["'seeds'", "list of non-negative integers", "zero"]),
    (f"frames: -5\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\n", ["'frames'", "positive integer"]),
    (f"frames: lots\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\n", ["'frames'", "positive integer"]),
    ("frames: 1000\nseeds: [0]\nenvs: [MiniGrid-Nope-v0]\nagents: [ppo]\n", ["envs[0]", "MiniGrid-Nope-v0", ENV]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [sac]\n", ["agents[0]", "'sac'", "ppo", "dqn"]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\nbonuses: [null, foo]\n", ["bonuses[1]", "'foo'", "rnd", "rdd"]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\nframe: 3\n", ["unknown key", "'frame'", "frames"]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\noverrides: [1]\n", ["'overrides'", "mapping"]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\noverrides: {{hyperparams.lr: 1}}\n", ["hyperparams", "hyperparameters"]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\noverrides: {{seed: 1}}\n", ["'seed'", "cannot be overridden"]),
    (f"frames: 1000\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\nresources: {{num_cpus: -1}}\n", ["resources.num_cpus", "non-negative"]),
    ("frames: 1000\nseeds: [0]\nruns:\n  - {agent: ppo}\n", ["runs[0]", "missing key 'env'"]),
    (f"frames: 1000\nruns:\n  - {{env: {ENV}, agent: ppo, colour: red}}\n", ["runs[0]", "'colour'"]),
    ("- just\n- a list\n", ["mapping at the top level"]),
    ("frames: [1000\n", ["not valid YAML"]),
]


@pytest.mark.parametrize("body,expected", BAD_SUITES)
def test_malformed_suite_names_file_key_and_expectation(tmp_path, body, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as info:
        run_suite(load_suite(path), out, workers=0, progress=False)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message, message
    assert not out.exists()


def test_explicit_runs_and_folder_collisions(tmp_path):
    path = write_suite(
        tmp_path,
        f"""\
        frames: 1000
        seeds: [0, 1]
        envs: [{ENV}]
        agents: [ppo]
        bonuses: [rnd]
        overrides: {{hyperparameters.learning_rate: 1.0e-3}}
        runs:
          - {{env: {ENV}, agent: ppo, bonus: count, seeds: [5], frames: 2000, overrides: {{hyperparameters.n_epochs: 1}}}}
          - {{env: {ENV}, agent: ppo, bonus: rnd, seed: 0}}
        """,
    )
    suite = load_suite(path)
    assert [r.label for r in suite.runs] == [
        f"{ENV}/ppo+rnd/seed_0", f"{ENV}/ppo+rnd/seed_1", f"{ENV}/ppo+count/seed_5",
    ]  # the repeated rnd/seed 0 entry is the same run: listed once
    count = suite.runs[2]
    assert count.frames == 2000 and count.config["hyperparameters"]["n_epochs"] == 1
    assert count.config["hyperparameters"]["learning_rate"] == pytest.approx(1e-3)  # top-level overrides apply
    assert suite.runs[0].config_hash == suite.runs[1].config_hash != count.config_hash  # hash ignores the seed

    path.write_text(path.read_text().replace("seed: 0}", "seed: 0, overrides: {hyperparameters.n_epochs: 9}}"))
    with pytest.raises(ConfigError, match="same folder"):
        load_suite(path)


def test_builtin_suites_resolve():
    assert {"smoke", "doorkey8x8", "multiroom"} <= set(list_suites())
    smoke = load_suite("smoke")
    assert {r.bonus for r in smoke.runs} == {None, "rnd", "rdd", "count"}
    dk = load_suite("doorkey8x8")
    assert len(dk.runs) == 15 and {r.frames for r in dk.runs} == {500_000}
    mr = load_suite("multiroom")
    assert len(mr.runs) == 12 and {r.frames for r in mr.runs} == {1_000_000}
    assert {r.bonus for r in mr.runs} == {None, "rnd", "rdd", "e3b"}
    assert all(r.resources == {"num_cpus": 1, "num_gpus": 0} for r in smoke.runs + dk.runs + mr.runs)
    with pytest.raises(ConfigError, match="unknown suite 'nope'.*smoke"):
        load_suite("nope")


def test_nan_metrics_are_empty_cells_and_null_json(tmp_path):
    # 300 frames: no DoorKey episode ends (max_steps 250 per env, 4 envs): final metrics are NaN -> null
    spec = make_run_spec(ENV, "ppo", None, 0, 128, TINY)
    summary = run_single(spec.config, tmp_path, tensorboard=False)
    raw = (tmp_path / "summary.json").read_text()
    assert "NaN" not in raw
    assert summary["final"]["success"] is None or not math.isfinite(summary["final"]["success"])
    assert json.loads(raw)["final"]["success"] is None


def test_sigkill_mid_run_resumes_from_checkpoint(tmp_path):
    """A real SIGKILL of `explore-bench train`, then the same command completes it from the checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    argv = ["train", ENV, "--bonus", "count", "--frames", "4000", "--out", str(out), "--log-every", "128",
            "--checkpoint-every", "384", "--no-progress", *sets]
    run_dir = out / ENV / "ppo+count" / "seed_0"
    proc = subprocess.Popen([sys.executable, "-m", "explore_bench.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            state = run_dir / "checkpoint.json"
            if state.exists() and json.loads(state.read_text())["frames"] >= 512:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    if (run_dir / "summary.json").exists():
        pytest.skip("the run finished before it could be killed (machine faster than expected)")
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    before = pd.read_csv(run_dir / "progress.csv")
    ckpt_frames = json.loads((run_dir / "checkpoint.json").read_text())["frames"]
    assert 0 < ckpt_frames < 4000

    from explore_bench.cli import main

    assert main(argv) == 0
    summary = check_summary(run_dir, bonus="count", seed=0)
    assert summary["resumed_from"] == ckpt_frames
    after = check_progress(run_dir, 4000)
    kept = before[before["frames"] <= ckpt_frames].reset_index(drop=True)
    pd.testing.assert_frame_equal(after.iloc[: len(kept)].reset_index(drop=True), kept)
    assert not list(run_dir.glob(".*tmp*"))  # temp files a kill may leave are cleaned up on resume
