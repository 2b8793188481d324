"""Reliability of the runner: the output-folder lock, SIGKILLs at random moments, corrupt checkpoints, runs of
another commit, hostile inputs (YAML tags, '../' names) and determinism. Tiny runs only (see test_runner.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from run_helpers import train_until_killed

from explore_bench.agents.factory import ConfigError
from explore_bench.cli import main
from explore_bench.leaderboard import build_leaderboard
from explore_bench.runner import load_suite, make_run_spec, run_single, run_suite
from explore_bench.runner import run as run_mod
from explore_bench.runner.lock import OutputLock, OutputLocked
from explore_bench.runner.suite import parse_suite, run_dir_for

ENV = "MiniGrid-DoorKey-5x5-v0"
TINY = {
    "n_envs": 4,
    "hyperparameters.n_steps": 32,
    "hyperparameters.batch_size": 64,
    "hyperparameters.n_epochs": 2,
    "intrinsic.warmup_rollouts": 1,
}
TINY_YAML = "overrides:\n" + "".join(f"  {k}: {v}\n" for k, v in TINY.items())
COMMIT = "c" * 40


def tiny_suite(tmp_path, frames=1536, bonuses="[null, count]", seeds="[0]", name="tiny"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nframes: {frames}\nseeds: {seeds}\nenvs: [{ENV}]\nagents: [ppo]\n"
                    f"bonuses: {bonuses}\nlog_every: 128\ncheckpoint_every: 256\n" + TINY_YAML)
    return path


def cli_argv(suite, out, *extra):
    return ["run", str(suite), "--workers", "0", "--out", str(out), "--no-progress", "--no-leaderboard", *extra]


def spawn_cli(argv):
    return subprocess.Popen([sys.executable, "-m", "explore_bench.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_for_lock(out, proc, timeout=120.0):
    """Until ``proc`` holds OUT/.lock (its suite checked out and started)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if f"pid {proc.pid} " in (out / ".lock").read_text():
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def kill(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def assert_valid_run(run_dir, budget):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished", summary.get("error")
    assert summary["frames"] >= budget
    frames = pd.read_csv(run_dir / "progress.csv")["frames"].to_numpy()
    assert len(frames) and (frames[1:] > frames[:-1]).all(), f"{run_dir}: frames not strictly increasing: {frames}"
    assert frames[-1] >= budget
    assert not list(run_dir.glob(".*tmp*"))
    return summary


@pytest.fixture
def fixed_code(monkeypatch):
    """A clean checkout at COMMIT, whatever the state of the real one (in-process runs only)."""
    monkeypatch.setattr(run_mod, "git_commit", lambda: COMMIT)
    monkeypatch.setattr(run_mod, "git_dirty", lambda: False)


# --------------------------------------------------------------------------------------------------------------
# 1. The lock
# --------------------------------------------------------------------------------------------------------------
def test_lock_conflicts_within_a_process_and_probe_writes_nothing(tmp_path):
    out = tmp_path / "out"
    probe = OutputLock(out)
    assert probe.acquire(create=False) is False and not out.exists()  # a probe creates nothing
    with OutputLock(out):
        with pytest.raises(OutputLocked, match=rf"{out}.*pid {os.getpid()}"):
            OutputLock(out).acquire()
    assert OutputLock(out).acquire()  # released on exit


def test_second_suite_on_the_same_folder_is_refused_and_a_killed_holder_frees_it(tmp_path, capsys):
    suite, out = tiny_suite(tmp_path, frames=200_000, bonuses="[null]"), tmp_path / "out"
    proc = spawn_cli(cli_argv(suite, out))
    try:
        assert wait_for_lock(out, proc), proc.stderr.read().decode() if proc.poll() is not None else "no lock"
        t0 = time.time()
        assert main(cli_argv(suite, out)) == 2
        refused_in = time.time() - t0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert str(out) in err[0] and f"pid {proc.pid}" in err[0] and "in use by another suite" in err[0]
        assert refused_in < 5.0  # at once: no check_build, no waiting for the holder
    finally:
        kill(proc)
    assert proc.returncode == -signal.SIGKILL
    with OutputLock(out) as lock:  # the kernel released the dead holder's flock: no stale lock
        assert lock.held


# --------------------------------------------------------------------------------------------------------------
# 2. SIGKILL at random moments, then rerun until done
# --------------------------------------------------------------------------------------------------------------
def test_sigkill_at_random_moments_then_rerun_until_done(tmp_path):
    budget = 1536
    suite, out = tiny_suite(tmp_path, frames=budget), tmp_path / "out"
    rng = random.Random(1234)
    delays = [rng.uniform(0.0, 1.5) for _ in range(5)]
    for delay in delays:
        proc = spawn_cli(cli_argv(suite, out))
        try:
            started = wait_for_lock(out, proc)
            if started:
                time.sleep(delay)
        finally:
            kill(proc)
        if proc.returncode == 0:
            break  # finished before the kill
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    runs = [out / ENV / m / "seed_0" for m in ("ppo", "ppo+count")]
    # a kill can land before a run's first checkpoint (nothing to resume): what must resume is an unfinished run
    # that has one
    must_resume = [d for d in runs if (d / "checkpoint.json").exists() and not (d / "summary.json").exists()]
    assert main(cli_argv(suite, out)) == 0  # the rerun completes everything that is left

    mtimes = {}
    for run_dir in runs:
        summary = assert_valid_run(run_dir, budget)
        assert summary["git_commits"]
        mtimes[run_dir] = (run_dir / "summary.json").stat().st_mtime_ns
        for stem in run_mod.CHECKPOINT_STEMS:  # the kept checkpoint sets are whole
            if (run_dir / f"{stem}.json").exists():
                run_mod._validate_set(run_dir, stem)
    for run_dir in must_resume:
        assert "resumed from" in (run_dir / "run.log").read_text()
    # exactly once: a further run reruns nothing and touches no summary
    results = run_suite(load_suite(suite), out, workers=0, progress=False, check_build=False)
    assert [r.status for r in results] == ["skipped", "skipped"]
    assert {d: (d / "summary.json").stat().st_mtime_ns for d in runs} == mtimes
    assert sorted(p.parent for p in out.rglob("summary.json")) == sorted(runs)


# --------------------------------------------------------------------------------------------------------------
# 3. Corrupt / truncated checkpoints
# --------------------------------------------------------------------------------------------------------------
A2C_TINY = {"n_envs": 4, "hyperparameters.n_steps": 32, "reward_wrapper.update_every": 32,
            "reward_wrapper.warmup_steps": 32}


def killed_run(tmp_path, monkeypatch, agent="ppo", bonus="count", frames=2048, at=1400):
    spec = make_run_spec(ENV, agent, bonus, 0, frames, TINY if agent == "ppo" else A2C_TINY)
    run_dir = tmp_path / "run"
    train_until_killed(monkeypatch, spec.config, run_dir, at, log_every=128, checkpoint_every=256)
    cur = json.loads((run_dir / "checkpoint.json").read_text())["frames"]
    prev = json.loads((run_dir / "checkpoint_prev.json").read_text())["frames"]
    assert 0 < prev < cur
    return spec, run_dir, cur, prev


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, monkeypatch):
    # a2c + count: the bonus state is checkpoint*.bonus.pt, loaded with torch.load(weights_only=True)
    spec, run_dir, cur, prev = killed_run(tmp_path, monkeypatch, agent="a2c", bonus="count")
    assert (run_dir / "checkpoint_prev.bonus.pt").exists()
    zip_path = run_dir / "checkpoint.zip"
    zip_path.write_bytes(zip_path.read_bytes()[: zip_path.stat().st_size // 2])

    summary = run_single(spec.config, run_dir, log_every=128, checkpoint_every=256, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    assert summary["resumed_from"] == prev
    assert any("checkpoint.* unusable" in e and "truncated" in e for e in summary["events"]), summary["events"]
    assert "checkpoint.* unusable" in (run_dir / "run.log").read_text()
    moved = list((run_dir / "corrupt").glob("*/checkpoint.zip"))
    assert len(moved) == 1
    df = pd.read_csv(run_dir / "progress.csv")
    assert (df["frames"].diff().dropna() > 0).all()
    assert_valid_run(run_dir, spec.frames)


def test_both_checkpoints_bad_restarts_from_zero(tmp_path, monkeypatch):
    spec, run_dir, cur, prev = killed_run(tmp_path, monkeypatch, bonus="count")
    (run_dir / "checkpoint.json").write_text('{"frames": 12')  # truncated JSON
    prev_zip = run_dir / "checkpoint_prev.zip"
    prev_zip.write_bytes(b"\0" * prev_zip.stat().st_size)  # same size, garbage content

    summary = run_single(spec.config, run_dir, log_every=128, checkpoint_every=256, tensorboard=False)
    assert summary["status"] == "finished", summary.get("traceback")
    assert summary["resumed_from"] is None
    events = "\n".join(summary["events"])
    assert "checkpoint.json is not valid JSON" in events and "checkpoint_prev.zip does not match" in events
    assert "restarting from zero" in events
    assert len(list((run_dir / "corrupt").glob("*/*.zip"))) == 2
    assert_valid_run(run_dir, spec.frames)
    df = pd.read_csv(run_dir / "progress.csv")
    assert df["frames"].iloc[0] <= 256  # the curve starts again at zero, with no rows of the lost attempt


# --------------------------------------------------------------------------------------------------------------
# 4. Runs of another commit
# --------------------------------------------------------------------------------------------------------------
def test_stale_commit_warns_reruns_on_request_and_the_leaderboard_flags_mixed_code(tmp_path, capsys, fixed_code):
    suite, out = tiny_suite(tmp_path, frames=256, bonuses="[null]", seeds="[0, 1]"), tmp_path / "out"
    assert main(cli_argv(suite, out)) == 0
    assert "warning" not in capsys.readouterr().err
    old = out / ENV / "ppo" / "seed_1" / "summary.json"
    summary = json.loads(old.read_text())
    summary["git_commit"], summary["git_commits"] = "0" * 40, ["0" * 40]
    old.write_text(json.dumps(summary))

    board = build_leaderboard(out, plots=False, n_bootstrap=50)
    assert board["git_commits"].iloc[0] == sorted(["0" * 40, COMMIT]) and bool(board["mixed_code"].iloc[0])

    assert main(cli_argv(suite, out)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and f"{ENV}/ppo/seed_1 (00000000)" in err[0], err
    assert "reused, not rerun" in err[0] and "seed_0" not in err[0]
    assert json.loads(old.read_text())["git_commit"] == "0" * 40  # reused as is

    assert main(cli_argv(suite, out, "--rerun-stale")) == 0
    assert "moved aside" in capsys.readouterr().err
    moved = list((out / ".stale").glob(f"*/{ENV}/ppo/seed_1/summary.json"))
    assert len(moved) == 1 and json.loads(moved[0].read_text())["git_commit"] == "0" * 40
    assert json.loads(old.read_text())["git_commits"] == [COMMIT]
    board = build_leaderboard(out, plots=False, n_bootstrap=50)  # .stale/ is not read
    assert board["git_commits"].iloc[0] == [COMMIT] and not board["mixed_code"].iloc[0]
    assert board["n_seeds"].iloc[0] == 2

    assert main(cli_argv(suite, out)) == 0
    assert "warning" not in capsys.readouterr().err


def test_leaderboard_flags_a_dirty_tree(tmp_path, fixed_code):
    suite, out = tiny_suite(tmp_path, frames=256, bonuses="[null]"), tmp_path / "out"
    run_suite(load_suite(suite), out, workers=0, progress=False, check_build=False)
    path = out / ENV / "ppo" / "seed_0" / "summary.json"
    board = build_leaderboard(out, plots=False, n_bootstrap=50)
    assert board["git_commits"].iloc[0] == [COMMIT] and not board["mixed_code"].iloc[0]
    path.write_text(json.dumps({**json.loads(path.read_text()), "git_dirty": True}))
    assert bool(build_leaderboard(out, plots=False, n_bootstrap=50)["mixed_code"].iloc[0])


# --------------------------------------------------------------------------------------------------------------
# 5. Hostile inputs
# --------------------------------------------------------------------------------------------------------------
def test_yaml_python_tags_are_refused(tmp_path):
    marker = tmp_path / "hacked"
    path = tmp_path / "evil.yaml"
    path.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\nframes: 100\n')
    with pytest.raises(ConfigError, match=r"evil.yaml: refused.*!!python/object.*python/object/apply:os.system"):
        load_suite(path)
    path.write_text("name: !!python/object:explore_bench.runner.suite.Suite {}\n")
    with pytest.raises(ConfigError, match="refused"):
        load_suite(path)
    assert not marker.exists()


def test_names_cannot_escape_the_output_folder(tmp_path):
    out = tmp_path / "out"
    for env, agent, bonus in [("../../evil", "..", "../x"), ("..", ".", None), ("/etc/passwd", "ppo", ".."),
                              ("", ".hidden", "a/../../b")]:
        path = run_dir_for(out, env, agent, bonus, 0)
        assert os.path.commonpath([out.resolve(), path.resolve()]) == str(out.resolve()), path
        assert all(part not in ("", ".", "..") and not part.startswith(".") for part in path.relative_to(out).parts)
    for name in ("../escape", "a/b", ".hidden", "..", "/abs"):
        with pytest.raises(ConfigError, match="'name'"):
            parse_suite({"name": name, "frames": 100, "seeds": [0], "envs": [ENV], "agents": ["ppo"]})
    bad = [f"frames: 100\nseeds: [0]\nenvs: ['../{ENV}']\nagents: [ppo]\n",
           f"frames: 100\nseeds: [0]\nenvs: [{ENV}]\nagents: ['../ppo']\n",
           f"frames: 100\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\nbonuses: ['../../rnd']\n"]
    for i, body in enumerate(bad):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(body)
        with pytest.raises(ConfigError, match="unknown"):
            load_suite(path)
    odd = tmp_path / "my suite.yaml"  # a default name from the file stem is made safe, not refused
    odd.write_text(f"frames: 100\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\n")
    assert load_suite(odd, resolve=False).name == "my_suite"


# --------------------------------------------------------------------------------------------------------------
# 6. Determinism
# --------------------------------------------------------------------------------------------------------------
def test_same_run_twice_gives_the_same_progress_except_fps(tmp_path):
    import torch

    assert torch.get_num_threads() == 1
    spec = make_run_spec(ENV, "ppo", "rnd", 7, 1024, TINY)
    frames = []
    for name in ("a", "b"):
        summary = run_single(spec.config, tmp_path / name, log_every=128, checkpoint_every=512, tensorboard=False)
        assert summary["status"] == "finished", summary.get("traceback")
        df = pd.read_csv(tmp_path / name / "progress.csv")
        assert len(df) >= 4
        frames.append(df.drop(columns=["fps"]))
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    a, b = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("a", "b"))
    assert a["final"] == b["final"]

