"""Ray backend: same results as the local pool, killed workers retried from the checkpoint, CLI wiring.

The tests that run Ray skip when it is not installed (``pip install "explore_bench[ray]"``); the others check
that the package and the local backend never need it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from explore_bench.cli import main
from explore_bench.leaderboard import build_leaderboard
from explore_bench.runner import load_suite, ray_backend
from explore_bench.runner import run_suite as local_run_suite

ENV = "MiniGrid-DoorKey-5x5-v0"
TINY = textwrap.dedent(
    """\
    log_every: 256
    checkpoint_every: 512
    overrides:
      n_envs: 4
      hyperparameters.n_steps: 32
      hyperparameters.batch_size: 64
      hyperparameters.n_epochs: 2
      intrinsic.warmup_rollouts: 1
    """
)
#: Columns of progress.csv that depend on the seed only (fps is wall-clock).
DETERMINISTIC = ["frames", "episode_return", "success", "coverage", "intrinsic_mean", "intrinsic_std"]


def write(path, body: str):
    path.write_text(textwrap.dedent(body) + TINY)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err and err.startswith("explore-bench")
    return err


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def board_rows(out):
    board = build_leaderboard(out, plots=False, n_bootstrap=200)
    return board.drop(columns=[c for c in board.columns if c.startswith("wall_time")]).sort_values(["env", "method"])


# --------------------------------------------------------------------------------------------------------------
def test_ray_gives_the_same_runs_as_the_local_pool(tmp_path, ray):
    path = write(tmp_path / "tiny.yaml", f"""\
        name: tiny
        frames: 2048
        seeds: [0, 1]
        envs: [{ENV}]
        agents: [ppo]
        bonuses: [null, count]
        """)
    suite = load_suite(path)
    # the local backend in this process (workers=0, its pool path is tested in test_runner.py): the Ray runs are
    # in other processes, so equal results also say that a run depends on its seed only
    local = local_run_suite(suite, tmp_path / "local", workers=0, progress=False, tensorboard=False)
    remote = ray_backend.run_suite(suite, tmp_path / "ray", progress=False, tensorboard=False)
    assert [r.label for r in remote] == [r.label for r in local] == [s.label for s in suite.runs]
    assert [r.status for r in remote] == ["finished"] * 4, [r.error for r in remote]
    assert [r.run_dir for r in remote] == [s.run_dir(tmp_path / "ray") for s in suite.runs]

    for spec, a, b in zip(suite.runs, local, remote):
        assert a.final == b.final and a.frames == b.frames
        pa = pd.read_csv(a.run_dir / "progress.csv")
        pb = pd.read_csv(b.run_dir / "progress.csv")
        assert len(pa) >= 8
        pd.testing.assert_frame_equal(pa[DETERMINISTIC], pb[DETERMINISTIC])
        sa, sb = (json.loads((r.run_dir / "summary.json").read_text()) for r in (a, b))
        assert sb["status"] == "finished" and sb["resumed_from"] is None
        assert sa["final"] == sb["final"] and sa["config_hash"] == sb["config_hash"]
    pd.testing.assert_frame_equal(board_rows(tmp_path / "local"), board_rows(tmp_path / "ray"))
    assert (tmp_path / "ray" / "suite.yaml").read_text() == path.read_text()

    # a rerun touches nothing: every run is skipped, as with the local backend
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    again = ray_backend.run_suite(load_suite(path), tmp_path / "ray", progress=False)
    assert [r.status for r in again] == ["skipped"] * 4
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*") if p.is_file()} == mtimes


def test_killed_worker_is_retried_from_its_checkpoint_and_gives_up_after_max_retries(tmp_path, ray, monkeypatch):
    path = write(tmp_path / "crash.yaml", f"""\
        name: crash
        frames: 2048
        runs:
          - {{env: {ENV}, agent: ppo, bonus: null, seed: 0}}
          - {{env: {ENV}, agent: ppo, bonus: count, seed: 0}}
        """)
    suite = load_suite(path)
    once, always = (s.label for s in suite.runs)
    counters = tmp_path / "kills"
    monkeypatch.setenv(ray_backend.TEST_KILL_ENV, json.dumps({"runs": {once: 1, always: 99}, "counter_dir": str(counters)}))
    out = tmp_path / "out"
    results = ray_backend.run_suite(suite, out, progress=False, tensorboard=False, max_retries=1)
    by_label = {r.label: r for r in results}

    # killed once after its first checkpoint: the retry resumed from that checkpoint and finished
    assert by_label[once].status == "finished", by_label[once].error
    assert (counters / (once.replace("/", "__") + ".kills")).read_text() == "1"
    summary = json.loads((by_label[once].run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["frames"] >= 2048
    assert summary["resumed_from"] >= 512
    progress = pd.read_csv(by_label[once].run_dir / "progress.csv")
    assert progress["frames"].is_monotonic_increasing and progress["frames"].is_unique
    assert progress["frames"].iloc[-1] >= 2048

    # killed on every attempt: 1 + max_retries attempts, then failed with the error (while the other finished)
    assert by_label[always].status == "failed"
    assert (counters / (always.replace("/", "__") + ".kills")).read_text() == "2"
    failed = json.loads((by_label[always].run_dir / "summary.json").read_text())
    assert failed["status"] == "failed" and failed["bonus"] == "count"
    assert "WorkerCrashedError" in failed["error"] and "max_retries=1" in failed["error"]
    assert failed["error"] == by_label[always].error
    checkpoint = json.loads((by_label[always].run_dir / "checkpoint.json").read_text())
    assert failed["frames"] == checkpoint["frames"] >= 1024  # the second attempt got one checkpoint further

    # run again without the faults: finished runs are skipped, the failed one resumes from its checkpoint
    monkeypatch.delenv(ray_backend.TEST_KILL_ENV)
    again = ray_backend.run_suite(load_suite(path), out, progress=False, tensorboard=False)
    assert [r.status for r in again] == ["skipped", "finished"]
    resumed = json.loads((by_label[always].run_dir / "summary.json").read_text())
    assert resumed["status"] == "finished" and resumed["resumed_from"] == checkpoint["frames"]


def test_cli_run_with_the_ray_backend(tmp_path, ray, capsys):
    path = write(tmp_path / "one.yaml", f"""\
        name: one
        frames: 512
        seeds: [3]
        envs: [{ENV}]
        agents: [ppo]
        """)
    out = tmp_path / "out"
    argv = ["run", str(path), "--backend", "ray", "--max-retries", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "max 1 retries per run" in printed and "finished 1, already done 0, failed 0" in printed
    assert json.loads((out / ENV / "ppo" / "seed_3" / "summary.json").read_text())["status"] == "finished"
    assert pd.read_csv(out / "leaderboard.csv").loc[0, "n_seeds"] == 1
    assert main(argv + ["--no-leaderboard"]) == 0
    assert "finished 0, already done 1, failed 0" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- without Ray
def test_missing_ray_is_one_line_with_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, installed or not
    monkeypatch.chdir(tmp_path)
    assert main(["run", "smoke", "--backend", "ray"]) == 2
    err = one_error_line(capsys)
    assert "ray backend needs Ray" in err and 'pip install "explore_bench[ray]"' in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["run", "smoke", "--address", "auto"], "--address applies to --backend ray only"),
        (["run", "smoke", "--max-retries", "3"], "--max-retries applies to --backend ray only"),
        (["run", "smoke", "--backend", "ray", "--workers", "0"], "--workers 0"),
        (["run", "smoke", "--backend", "ray", "--address", "auto", "--workers", "2"], "--workers sizes a local"),
        (["run", "smoke", "--backend", "spark"], "invalid choice: 'spark'"),
        (["run", "smoke", "--backend", "ray", "--max-retries", "-1"], "--max-retries"),
    ],
)
def test_bad_backend_flags_exit_2_with_one_line(argv, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_importing_the_package_and_the_backend_does_not_import_ray():
    code = ("import sys, explore_bench, explore_bench.cli, explore_bench.runner, explore_bench.runner.ray_backend; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
