"""CLI: list / train / run / leaderboard in-process through main([...]); bad input exits 2 with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from leaderboard_helpers import make_run

from explore_bench.cli import main, parse_sets

ENV = "MiniGrid-DoorKey-5x5-v0"
TINY_SETS = [
    "--set", "n_envs=4",
    "--set", "hyperparameters.n_steps=32",
    "--set", "hyperparameters.batch_size=64",
    "--set", "hyperparameters.n_epochs=2",
    "--set", "intrinsic.warmup_rollouts=1",
]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err
    assert err.startswith("explore-bench")
    return err


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("envs:", "agents:", "bonuses:", "suites:"):
        assert section in out
    for name in (ENV, "ppo", "rdd", "rnd", "count", "smoke", "doorkey8x8", "multiroom"):
        assert name in out


def test_train_then_leaderboard(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["train", ENV, "--agent", "ppo", "--bonus", "rnd", "--frames", "1e3", "--seed", "2", "--out", str(out),
            "--set", "hyperparameters.learning_rate=1e-4", *TINY_SETS]
    assert main(argv) == 0
    run_dir = out / ENV / "ppo+rnd" / "seed_2"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["seed"] == 2 and summary["bonus"] == "rnd"
    assert summary["frames"] >= 1000
    assert summary["config"]["hyperparameters"]["learning_rate"] == pytest.approx(1e-4)
    assert summary["config"]["n_envs"] == 4
    assert len(pd.read_csv(run_dir / "progress.csv")) >= 2
    assert str(run_dir) in capsys.readouterr().out

    assert main(argv + ["--no-progress"]) == 0  # finished: not rerun
    assert "already finished" in capsys.readouterr().out

    # a no-bonus run beside it, then the leaderboard of the folder
    assert main(["train", ENV, "--bonus", "none", "--frames", "600", "--out", str(out), "--no-progress", *TINY_SETS]) == 0
    assert (out / ENV / "ppo" / "seed_0" / "summary.json").exists()
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--threshold", "0.5", "--no-plots"]) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["method"]) == {"ppo", "ppo+rnd"}
    assert "leaderboard.csv" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["train", "MiniGrid-Nope-v0", "--frames", "100"], "unknown env id 'MiniGrid-Nope-v0'"),
        (["train", ENV, "--agent", "sac", "--frames", "100"], "unknown agent 'sac'"),
        (["train", ENV, "--bonus", "foo", "--frames", "100"], "unknown bonus 'foo'"),
        (["train", ENV, "--frames", "many"], "--frames"),
        (["train", ENV, "--frames", "100", "--set", "novalue"], "KEY=VALUE"),
        (["train", ENV, "--frames", "100", "--set", "seed=3"], "--seed"),
        (["train", ENV, "--frames", "100", "--set", "hyperparams.lr=1"], "hyperparams"),
        (["train", ENV], "--frames"),
        (["run", "no-such-suite"], "unknown suite 'no-such-suite'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert expected in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_run_suite_file_builds_leaderboard(tmp_path, capsys):
    suite = tmp_path / "mini.yaml"
    suite.write_text(
        f"name: mini\nframes: 600\nseeds: [0, 1]\nenvs: [{ENV}]\nagents: [ppo]\nbonuses: [null]\n"
        "overrides: {n_envs: 4, hyperparameters.n_steps: 32, hyperparameters.batch_size: 64, hyperparameters.n_epochs: 1}\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "--workers", "0", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "finished 2, already done 0, failed 0" in printed
    assert (out / ENV / "ppo" / "seed_1" / "summary.json").exists()
    board = pd.read_csv(out / "leaderboard.csv")
    assert board.loc[0, "n_seeds"] == 2
    assert (out / "leaderboard_aggregate.csv").exists()

    assert main(["run", str(suite), "--workers", "0", "--out", str(out), "--no-progress", "--no-leaderboard"]) == 0
    assert "finished 0, already done 2, failed 0" in capsys.readouterr().out


def test_run_malformed_suite_and_empty_leaderboard(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"frames: 100\nseeds: [0]\nenvs: [{ENV}]\nagents: [ppo]\nbonuses: [rnd, nope]\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = one_error_line(capsys)
    assert str(bad) in err and "bonuses[1]" in err and "'nope'" in err
    assert not (tmp_path / "out").exists()

    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", str(tmp_path / "empty")]) == 2
    assert "no run folders" in one_error_line(capsys)
    assert main(["leaderboard", str(tmp_path / "missing")]) == 2
    assert "does not exist" in one_error_line(capsys)


def test_parse_sets():
    assert parse_sets(["a.b=1e-4", "c=[64, 64]", "d=true", "e=null", "f=text", "g=3"]) == {
        "a.b": 1e-4, "c": [64, 64], "d": True, "e": None, "f": "text", "g": 3,
    }


RESULTS = Path(__file__).resolve().parent.parent / "results"
COMMITTED_TABLES = sorted(runs.parent.name for runs in RESULTS.glob("*/runs") if runs.is_dir())


def test_results_rebuilds_every_table_as_leaderboard_and_plot_do(tmp_path, capsys):
    """`explore-bench results DIR` gives each DIR/<table> the files `leaderboard` and `plot` write by hand."""
    for table, success in (("first", 0.2), ("second", 0.8)):
        for seed in range(3):
            make_run(tmp_path / "tables" / table / "runs", env=ENV, seed=seed, success=success + 0.05 * seed)
    hand = tmp_path / "by_hand"
    assert main(["leaderboard", str(tmp_path / "tables" / "second" / "runs"), "--out", str(hand)]) == 0
    assert main(["plot", str(tmp_path / "tables" / "second" / "runs"), "--out", str(hand), "--resamples", "200"]) == 0
    assert main(["results", str(tmp_path / "tables"), "--resamples", "200"]) == 0
    assert (tmp_path / "tables" / "first" / "leaderboard.csv").exists()
    rebuilt = tmp_path / "tables" / "second"
    for name in ("leaderboard.csv", "leaderboard_aggregate.csv", "scores_aggregate.csv",
                 f"curves_{ENV}.svg", "aggregate_scores.svg"):
        assert (rebuilt / name).read_bytes() == (hand / name).read_bytes(), name

    (tmp_path / "empty").mkdir()
    assert main(["results", str(tmp_path / "empty")]) == 2
    assert "runs/ folder" in capsys.readouterr().err


@pytest.mark.parametrize("table", COMMITTED_TABLES)
def test_committed_table_follows_from_its_committed_runs(table, tmp_path):
    """Every results/<table> that keeps its runs is what `explore-bench results` makes of them (same numbers)."""
    committed = RESULTS / table
    shutil.copytree(committed / "runs", tmp_path / table / "runs")
    assert main(["results", str(tmp_path), "--resamples", "200"]) == 0
    rebuilt = pd.read_csv(tmp_path / table / "leaderboard.csv").set_index(["env", "method"])
    expected = pd.read_csv(committed / "leaderboard.csv").set_index(["env", "method"])
    for column in ("n_seeds", "success_mean", "success_iqm", "coverage_mean", "frames_to_threshold", "reached"):
        pd.testing.assert_series_equal(rebuilt[column], expected[column])
