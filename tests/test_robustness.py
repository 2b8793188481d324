"""`explore-bench noise-robustness` (explore_bench.robustness): a tiny run writes well-formed tables; unknown
names exit 2 with one line; the protocol's data, training and scoring conventions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explore_bench.bonuses import Bonus, list_bonuses, make_bonus
from explore_bench.bonuses import registry as bonus_registry
from explore_bench.cli import main
from explore_bench.robustness import (
    SEED_COLUMNS,
    WORLDS,
    RobustnessConfig,
    aggregate,
    evaluate_bonus,
    make_datasets,
    run_noise_robustness,
    run_one,
)

TINY = ["--updates", "4", "--train-transitions", "512", "--eval-sequences", "32", "--no-progress"]


def tiny_config(**kwargs) -> RobustnessConfig:
    base = dict(updates=4, train_transitions=512, eval_sequences=32, n_bootstrap=200)
    base.update(kwargs)
    return RobustnessConfig(**base)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "Traceback" not in err and err.startswith("explore-bench")
    return err


def test_cli_tiny_run_writes_tables(tmp_path, capsys):
    out = tmp_path / "nr"
    argv = ["noise-robustness", "--bonuses", "count,rnd", "--worlds", "remote", "--seeds", "1", "--out", str(out), *TINY]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "noise_robustness.csv" in printed

    table = pd.read_csv(out / "noise_robustness.csv")
    assert list(table["bonus"]) == ["count", "rnd"] and set(table["world"]) == {"remote"}
    for m in ("ratio", "b_tv", "b_det", "b_novel", "plateau"):
        assert {m, f"{m}_ci_low", f"{m}_ci_high"} <= set(table.columns)
    assert (table["n_seeds"] == 1).all() and (table["updates"] == 4).all()
    assert np.isfinite(table[["ratio", "b_tv", "b_det", "b_novel"]].to_numpy()).all()
    assert (table[["b_tv", "b_det", "b_novel"]].to_numpy() >= 0).all()
    np.testing.assert_allclose(table["ratio"], table["b_tv"] / table["b_novel"])
    assert table["ratio_ci_low"].isna().all()  # one seed: no CI

    seeds = pd.read_csv(out / "noise_robustness_seeds.csv")
    assert list(seeds.columns) == SEED_COLUMNS and len(seeds) == 2
    assert (seeds["n_tv"] > 0).all() and (seeds["n_novel"] == 32 * 16).all()
    assert (seeds["n_tv"] + seeds["n_det"] == 32 * 16).all()

    md = (out / "noise_robustness.md").read_text()
    assert "| bonus | remote |" in md and "| count |" in md and "| rnd |" in md
    assert "explore-bench noise-robustness --bonuses count,rnd --worlds remote --seeds 1 --updates 4" in md
    meta = json.loads((out / "noise_robustness_config.json").read_text())
    assert meta["config"]["bonuses"] == ["count", "rnd"] and meta["config"]["seeds"] == [0]
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--bonuses", "rnd,nope"], "unknown bonus 'nope'; registered bonuses: " + ", ".join(list_bonuses())),
        (["--worlds", "off"], "unknown world 'off'; valid worlds: " + ", ".join(WORLDS)),
        (["--worlds", "remote", "sometimes"], "unknown world 'sometimes'"),
        (["--seeds", "0"], "--seeds"),
        (["--updates", "many"], "--updates"),
    ],
)
def test_cli_bad_input_exits_2(argv, expected, tmp_path, capsys):
    out = tmp_path / "nr"
    assert main(["noise-robustness", *argv, "--out", str(out), "--no-progress"]) == 2
    assert expected in one_error_line(capsys)
    assert not out.exists()


def test_same_data_and_numbers_for_any_subset():
    """Data depend only on (seed, world) and training is seeded: a row does not depend on what else runs."""
    config = tiny_config(bonuses=["count", "rnd"], worlds=["remote", "always"], seeds=[0]).validate()
    data = make_datasets("always", 0, config)
    again = make_datasets("always", 0, tiny_config(worlds=["always"]).validate())
    np.testing.assert_array_equal(data["train"].next_obs, again["train"].next_obs)
    np.testing.assert_array_equal(data["novel"].obs, again["novel"].obs)
    a = run_one("rnd", "always", 0, data, config)
    b = run_one("rnd", "always", 0, again, config)
    for key in ("ratio", "b_tv", "b_novel", "plateau"):
        assert a[key] == b[key]
    assert np.isnan(a["b_det"]) and a["n_tv"] == 32 * 16  # always worlds: every transition carries noise
    # the sets of the protocol: training confined to x <= 3, novel set in x >= 4 with a still TV
    assert data["train"].infos["cell"][..., 0].max() <= 3 and data["heldout"].infos["cell"][..., 0].max() <= 3
    assert data["novel"].infos["cell"][..., 0].min() >= 4 and not data["novel"].infos["press"].any()


def test_scoring_leaves_the_trained_bonus_unchanged():
    config = tiny_config(bonuses=["count"], worlds=["remote"], seeds=[0]).validate()
    data = make_datasets("remote", 0, config)
    bonus = make_bonus("count", data["observation_space"], data["action_space"], seed=0)
    bonus.compute(data["train"])
    before = len(bonus.counter)
    first = evaluate_bonus(bonus, data["novel"], config.batch_sequences)
    assert len(bonus.counter) == before  # scored on copies
    np.testing.assert_array_equal(first, evaluate_bonus(bonus, data["novel"], config.batch_sequences))
    assert first.shape == data["novel"].dones.shape
    with pytest.raises(ValueError, match="multiple"):
        evaluate_bonus(bonus, data["novel"], 5)


class _PressOracle(Bonus):
    """A test bonus: 1 on presses, 0.5 elsewhere (reads infos["press"]); counts its update calls."""

    def __init__(self, observation_space, action_space, device="cpu", seed=None):
        super().__init__(observation_space, action_space, device, seed)
        self.n_updates = 0

    def compute(self, batch):
        self.validate(batch)
        return np.where(np.asarray(batch.infos["press"]), 1.0, 0.5).astype(np.float32)

    def update(self, batch):
        self.n_updates += 1
        return {"loss": float(self.n_updates)}


def test_new_bonus_is_picked_up(tmp_path, monkeypatch):
    monkeypatch.setitem(bonus_registry._REGISTRY, "zz_press_oracle", _PressOracle)
    monkeypatch.setattr(_PressOracle, "name", "zz_press_oracle")
    config = tiny_config(worlds=["big_remote"], seeds=[0, 1], updates=3)
    config.validate()
    assert "zz_press_oracle" in config.bonuses  # every registered bonus by default
    config.bonuses = ["zz_press_oracle"]
    table = run_noise_robustness(config, tmp_path, progress=False)
    row = table.iloc[0]
    assert row["bonus"] == "zz_press_oracle" and row["world"] == "big_remote" and row["n_seeds"] == 2
    assert row["b_tv"] == 1.0 and row["b_det"] == 0.5 and row["b_novel"] == 0.5 and row["ratio"] == 2.0
    assert row["plateau"] == 1.0 and row["ratio_ci_low"] == row["ratio_ci_high"] == 2.0
    seeds = pd.read_csv(tmp_path / "noise_robustness_seeds.csv")
    assert (seeds["final_loss"] == 3.0).all()  # exactly `updates` update calls (1 before the 50% score, 2 after)


def test_aggregate_ci_over_seeds():
    rows = [dict(bonus="b", world="remote", seed=s, ratio=r, b_tv=r, b_det=1.0, b_novel=1.0, plateau=1.0,
                 n_tv=1, n_det=1, n_novel=1, updates=1, final_loss=0.0, wall_time_s=1.0)
            for s, r in enumerate([0.5, 1.0, 1.5, 2.0])]
    table = aggregate(rows, n_bootstrap=500)
    row = table.iloc[0]
    assert row["n_seeds"] == 4 and row["seeds"] == "0 1 2 3" and row["ratio"] == pytest.approx(1.25)
    assert 0.5 <= row["ratio_ci_low"] < 1.25 < row["ratio_ci_high"] <= 2.0
    assert row["wall_time_s"] == 4.0
