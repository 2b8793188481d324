"""Noise robustness of every registered bonus: the model-level noisy-TV protocol (byol_hindsight.md §4.2, §5).

    explore-bench noise-robustness                      # all bonuses x 4 stochastic worlds x 3 seeds
    explore-bench noise-robustness --bonuses rnd,icm --worlds remote --seeds 1 --updates 50

For every bonus (``list_bonuses()``, so a new bonus is picked up with no change here), every stochastic TVGrid
world (``remote``, ``always``, ``big_always``, ``big_remote``) and every seed, with no RL:

1. **Data** (``record_tvgrid``, uniform random policy, sequences of ``seq_len`` steps, each starting a new episode
   on the press cell with probability ``press_start_prob``):

   - *train*: ``train_transitions`` transitions of the world, the agent confined to columns ``x <= 3``;
   - *held-out*: ``eval_sequences`` more sequences from the same distribution (another seed);
   - *novel*: ``eval_sequences`` sequences in columns ``x >= 4`` only (never seen in training) with a still TV:
     the world's layout (big worlds keep their screen) with ``remote`` dynamics, where no press is possible (the
     press cell is at ``x = 3``), so every novel transition is deterministic and learnable.

   The data depend only on (seed, world), so every bonus sees the same sets and the same batch order.

2. **Training**: ``bonus.warm_up(train)`` (observation statistics; a no-op for bonuses without any), then
   ``updates`` times: a batch of ``batch_sequences`` train sequences drawn at random, ``bonus.reset`` of all
   envs (each sequence starts an episode) when the bonus has that hook, ``bonus.compute(batch)`` then
   ``bonus.update(batch)``, exactly as the agent integration calls them each rollout (streaming bonuses such as
   counts learn in ``compute``). One "update" is one ``update`` call, whatever the bonus does inside it
   (RND-style bonuses run several epochs of minibatches per call).

3. **Evaluation**: raw bonuses on the held-out and novel sets, scored in batches of the training shape
   (``seq_len`` x ``batch_sequences``), each batch on a fresh copy of the trained bonus (reset as above), so
   that scoring never changes the trained state and the sets cannot leak into each other (streaming bonuses
   count what they score). Within a batch a streaming bonus counts as it would in a rollout of that shape.

   - ``b_tv``: mean raw bonus over the held-out *noise-source* transitions: presses in the remote worlds; every
     transition in the always worlds (each carries a fresh TV sample);
   - ``b_det``: mean over the held-out transitions that are not presses (remote worlds; NaN in always worlds,
     which have none);
   - ``b_novel``: mean over the novel set;
   - ``ratio = b_tv / b_novel``: **lower is more robust**: a robust bonus pays less for watching the TV than for
     reaching new, learnable states;
   - ``plateau = b_tv(100%) / b_tv(50% of the updates)`` (close to 1 when the TV bonus has stopped decaying).

The table (one row per bonus x world) reports the mean over seeds of each quantity with a 95% percentile
bootstrap CI over seeds (``scipy.stats.bootstrap`` via ``leaderboard.aggregate.bootstrap_ci``; NaN with fewer
than 2 seeds). Files, written atomically to ``out``: ``noise_robustness.csv`` (the table),
``noise_robustness_seeds.csv`` (one row per bonus x world x seed) and ``noise_robustness.md`` (the ratio table).

Bonuses get the TVGrid observation (the flattened one-hot vector) and ``infos = {"press", "cell"}``; ``cell``
is the agent's (x, y) after the transition, which count-style bonuses key on by default (they then ignore the
TV by construction).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from explore_bench.atomic import atomic_write_bytes
from explore_bench.envs.tvgrid import MODES, record_tvgrid

__all__ = [
    "DEFAULT_OUT",
    "WORLDS",
    "RobustnessConfig",
    "aggregate",
    "evaluate_bonus",
    "make_datasets",
    "markdown_table",
    "run_noise_robustness",
    "run_one",
    "train_bonus",
]

#: the stochastic TVGrid worlds of the table
WORLDS = ("remote", "always", "big_always", "big_remote")
DEFAULT_OUT = Path("results") / "noise_robustness"
METRICS = ("ratio", "b_tv", "b_det", "b_novel", "plateau")
SEED_COLUMNS = ["bonus", "world", "seed", *METRICS, "n_tv", "n_det", "n_novel", "updates", "final_loss", "wall_time_s"]


@dataclass
class RobustnessConfig:
    """Everything that changes the numbers (written beside the table)."""

    bonuses: list[str] = field(default_factory=list)  # empty: every registered bonus
    worlds: list[str] = field(default_factory=lambda: list(WORLDS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    updates: int = 100
    batch_sequences: int = 32
    seq_len: int = 16
    train_transitions: int = 20_000
    eval_sequences: int = 256
    press_start_prob: float = 0.5
    confine_x: int = 3
    k_tv: int = 8
    device: str = "cpu"
    n_bootstrap: int = 10_000
    bonus_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)  # per bonus name: make_bonus overrides

    def validate(self) -> "RobustnessConfig":
        """Check names and sizes; fills ``bonuses`` with every registered bonus when empty. Raises KeyError
        (unknown bonus or world, listing the valid ones) or ValueError."""
        from explore_bench.bonuses import list_bonuses

        valid = list_bonuses()
        if not self.bonuses:
            self.bonuses = list(valid)
        for name in self.bonuses:
            if name not in valid:
                raise KeyError(f"unknown bonus {name!r}; registered bonuses: {', '.join(valid)}")
        for world in self.worlds:
            if world not in WORLDS:
                raise KeyError(f"unknown world {world!r}; valid worlds: {', '.join(WORLDS)}")
        for name in self.bonus_kwargs:
            if name not in self.bonuses:
                raise KeyError(f"bonus_kwargs for {name!r}, which is not among the bonuses run: {', '.join(self.bonuses)}")
        if not self.bonuses or not self.worlds or not self.seeds:
            raise ValueError("noise-robustness needs at least one bonus, one world and one seed")
        for key in ("updates", "batch_sequences", "seq_len", "train_transitions", "eval_sequences", "n_bootstrap"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if len(set(self.seeds)) != len(self.seeds) or any(int(s) < 0 for s in self.seeds):
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        if self.confine_x >= 4:
            raise ValueError(f"confine_x must be < 4 (the novel region is x >= 4), got {self.confine_x}")
        return self

    @property
    def n_train_sequences(self) -> int:
        return max(self.batch_sequences, math.ceil(self.train_transitions / self.seq_len))

    @property
    def n_eval_sequences(self) -> int:
        """``eval_sequences`` rounded up to whole batches of ``batch_sequences``."""
        return math.ceil(self.eval_sequences / self.batch_sequences) * self.batch_sequences


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------
def _take(batch, columns):
    """The sequences ``columns`` (indices or a slice along N) of a time-major ``Transitions``."""
    from explore_bench.bonuses import Transitions

    return Transitions(
        batch.obs[:, columns], batch.actions[:, columns], batch.next_obs[:, columns], batch.dones[:, columns],
        {k: v[:, columns] for k, v in batch.infos.items()},
    )


def _seeds(seed: int, world: str, n: int) -> list[int]:
    """Independent data seeds for (seed, world); the world enters by its index in ``MODES`` so that a subset of
    worlds gives the same numbers as the full table."""
    state = np.random.SeedSequence([int(seed), MODES.index(world)]).generate_state(n)
    return [int(s) for s in state]


def novel_mode(world: str) -> str:
    """The mode of the novel set: the world's observation layout with a still TV (no presses in x >= 4)."""
    return "big_remote" if world.startswith("big") else "remote"


def make_datasets(world: str, seed: int, config: RobustnessConfig) -> dict[str, Any]:
    """``{"train", "heldout", "novel"}`` Transitions plus the spaces, for one world and seed."""
    s_train, s_held, s_novel, s_batches = _seeds(seed, world, 4)
    common = dict(seq_len=config.seq_len, press_start_prob=config.press_start_prob, k_tv=config.k_tv)
    train, obs_space, act_space = record_tvgrid(world, config.n_train_sequences, seed=s_train,
                                                confine_x=config.confine_x, **common)
    heldout, _, _ = record_tvgrid(world, config.n_eval_sequences, seed=s_held, confine_x=config.confine_x, **common)
    novel, novel_space, _ = record_tvgrid(novel_mode(world), config.n_eval_sequences, seed=s_novel, region="novel",
                                          **common)
    assert novel_space == obs_space
    return {"train": train, "heldout": heldout, "novel": novel, "observation_space": obs_space,
            "action_space": act_space, "batch_seed": s_batches}


# ----------------------------------------------------------------------------------------------------------------
# Train / evaluate one bonus
# ----------------------------------------------------------------------------------------------------------------
def _reset_all(bonus, n: int) -> None:
    reset = getattr(bonus, "reset", None)
    if callable(reset):
        reset(np.ones(n, dtype=bool))


def train_bonus(bonus, train, n_updates: int, batch_sequences: int, rng: np.random.Generator,
                callback: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, float]:
    """``n_updates`` times: a random batch of ``batch_sequences`` train sequences, reset, compute, update.

    ``callback(u, stats)`` runs after update ``u`` (1-based). Returns the last update's statistics."""
    n_train = train.dones.shape[1]
    stats: dict[str, float] = {}
    for u in range(1, n_updates + 1):
        batch = _take(train, rng.integers(0, n_train, size=batch_sequences))
        _reset_all(bonus, batch_sequences)
        bonus.compute(batch)
        stats = bonus.update(batch)
        if callback is not None:
            callback(u, stats)
    return stats


def evaluate_bonus(bonus, data, batch_sequences: int) -> np.ndarray:
    """Raw bonus ``(T, N)`` of every transition of ``data``, scored in batches of ``batch_sequences`` sequences,
    each on a fresh deep copy of ``bonus`` (reset first when it has that hook); ``bonus`` itself is unchanged."""
    t_len, n = data.dones.shape
    if n % batch_sequences:
        raise ValueError(f"evaluation set of {n} sequences is not a multiple of the batch width {batch_sequences}")
    out = np.empty((t_len, n), np.float64)
    for start in range(0, n, batch_sequences):
        scorer = copy.deepcopy(bonus)
        _reset_all(scorer, batch_sequences)
        r = np.asarray(scorer.compute(_take(data, slice(start, start + batch_sequences))), dtype=np.float64)
        if r.shape != (t_len, batch_sequences):
            raise ValueError(f"bonus {getattr(bonus, 'name', bonus)!r} returned rewards of shape {r.shape}, "
                             f"expected {(t_len, batch_sequences)}")
        out[:, start : start + batch_sequences] = r
    return out


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


def _div(a: float, b: float) -> float:
    return a / b if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")


def run_one(name: str, world: str, seed: int, data: Mapping[str, Any], config: RobustnessConfig,
            on_update: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train bonus ``name`` on ``data`` (from ``make_datasets(world, seed, config)``) and measure it: one row."""
    from explore_bench.bonuses import make_bonus

    started = time.perf_counter()
    bonus = make_bonus(name, data["observation_space"], data["action_space"], device=config.device, seed=seed,
                       **config.bonus_kwargs.get(name, {}))
    train, heldout, novel = data["train"], data["heldout"], data["novel"]
    bonus.warm_up(train)
    rng = np.random.default_rng(data["batch_seed"])
    tv_mask = heldout.infos["press"] if world.endswith("remote") else np.ones(heldout.dones.shape, bool)
    det_mask = ~heldout.infos["press"] if world.endswith("remote") else np.zeros(heldout.dones.shape, bool)

    half = config.updates // 2
    b_tv_half = float("nan")
    stats: dict[str, float] = {}
    if half:
        stats = train_bonus(bonus, train, half, config.batch_sequences, rng,
                            callback=(lambda u, s: on_update(1)) if on_update else None)
        b_tv_half = _mean(evaluate_bonus(bonus, heldout, config.batch_sequences)[tv_mask])
    stats = train_bonus(bonus, train, config.updates - half, config.batch_sequences, rng,
                        callback=(lambda u, s: on_update(1)) if on_update else None) or stats
    r_held = evaluate_bonus(bonus, heldout, config.batch_sequences)
    r_novel = evaluate_bonus(bonus, novel, config.batch_sequences)
    b_tv, b_det, b_novel = _mean(r_held[tv_mask]), _mean(r_held[det_mask]), _mean(r_novel)
    loss = stats.get("loss", float("nan")) if isinstance(stats, Mapping) else float("nan")
    return {
        "bonus": name, "world": world, "seed": int(seed),
        "ratio": _div(b_tv, b_novel), "b_tv": b_tv, "b_det": b_det, "b_novel": b_novel,
        "plateau": _div(b_tv, b_tv_half),
        "n_tv": int(tv_mask.sum()), "n_det": int(det_mask.sum()), "n_novel": int(r_novel.size),
        "updates": int(config.updates), "final_loss": float(loss),
        "wall_time_s": time.perf_counter() - started,
    }


# ----------------------------------------------------------------------------------------------------------------
# Table
# ----------------------------------------------------------------------------------------------------------------
def aggregate(rows: Sequence[Mapping[str, Any]], n_bootstrap: int = 10_000, seed: int = 0):
    """Per-seed rows -> one row per bonus x world: ``n_seeds``, and for each metric its mean over seeds and a
    95% percentile-bootstrap CI (``<m>_ci_low``, ``<m>_ci_high``; NaN with fewer than 2 finite seeds)."""
    import pandas as pd

    from explore_bench.leaderboard.aggregate import STATISTICS, bootstrap_ci

    runs = pd.DataFrame(list(rows), columns=SEED_COLUMNS)
    rng = np.random.default_rng(seed)
    out = []
    world_order = {w: i for i, w in enumerate(WORLDS)}
    for (name, world), g in sorted(runs.groupby(["bonus", "world"], sort=False),
                                   key=lambda kv: (kv[0][0], world_order.get(kv[0][1], 99))):
        row: dict[str, Any] = {"bonus": name, "world": world, "n_seeds": len(g),
                               "seeds": " ".join(str(int(s)) for s in sorted(g["seed"]))}
        for m in METRICS:
            v = g[m].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            row[m] = float(np.mean(v)) if len(v) else float("nan")
            row[f"{m}_ci_low"], row[f"{m}_ci_high"] = bootstrap_ci(v, STATISTICS["mean"], n_bootstrap, rng)
        row["updates"] = int(g["updates"].iloc[0])
        row["wall_time_s"] = float(g["wall_time_s"].sum())
        out.append(row)
    cols = ["bonus", "world", "n_seeds", "seeds"]
    for m in METRICS:
        cols += [m, f"{m}_ci_low", f"{m}_ci_high"]
    cols += ["updates", "wall_time_s"]
    return pd.DataFrame(out, columns=cols)


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "nan"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def markdown_table(table, config: RobustnessConfig | None = None, command: str | None = None) -> str:
    """The ratio ``b_tv / b_novel`` (mean over seeds [95% CI]) per bonus (rows) and world (columns)."""
    worlds = [w for w in WORLDS if w in set(table["world"])]
    lines = ["# Noise robustness: B_tv / B_novel (lower is more robust)", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    if config is not None:
        lines += [
            f"Mean over seeds {config.seeds} [95% bootstrap CI over seeds]; {config.updates} updates of "
            f"{config.batch_sequences} sequences x {config.seq_len} steps; train set {config.n_train_sequences * config.seq_len} "
            f"transitions confined to x <= {config.confine_x}; held-out and novel sets "
            f"{config.n_eval_sequences * config.seq_len} transitions each; K_tv = {config.k_tv}.",
            "",
        ]
    lines += ["| bonus | " + " | ".join(worlds) + " |", "|---" * (len(worlds) + 1) + "|"]
    for name in dict.fromkeys(table["bonus"]):
        cells = []
        for w in worlds:
            r = table[(table["bonus"] == name) & (table["world"] == w)]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            ci = "" if not np.isfinite(r["ratio_ci_low"]) else f" [{_fmt(r['ratio_ci_low'])}, {_fmt(r['ratio_ci_high'])}]"
            cells.append(f"{_fmt(r['ratio'])}{ci}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "B_tv: mean raw bonus on held-out noise-source transitions (presses in remote worlds, every transition in "
        "always worlds), agent confined to x <= 3 in training. B_novel: mean raw bonus on deterministic transitions "
        "in the never-visited columns x >= 4. Raw values, plateau and per-seed rows: noise_robustness.csv, "
        "noise_robustness_seeds.csv.",
        "",
    ]
    return "\n".join(lines)


def _csv_bytes(df) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def run_noise_robustness(config: RobustnessConfig, out: str | Path = DEFAULT_OUT, progress: bool = True,
                         command: str | None = None):
    """Run the whole table (see the module docstring) and write it to ``out``; returns the aggregated table.

    Runs serially in this process with one torch thread (restored afterwards).

    Raises KeyError (unknown bonus or world, listing the valid ones) or ValueError before any work is done."""
    import pandas as pd
    import torch

    config.validate()
    out = Path(out)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runner: small nets on a busy 2-core machine run faster on one thread
    total = len(config.worlds) * len(config.seeds) * len(config.bonuses) * config.updates
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="noise-robustness", unit="update", dynamic_ncols=True, file=sys.stderr)
    rows: list[dict[str, Any]] = []
    try:
        for world in config.worlds:
            for seed in config.seeds:
                data = make_datasets(world, seed, config)
                for name in config.bonuses:
                    if bar is not None:
                        bar.set_postfix_str(f"{name} {world} seed {seed}")
                    rows.append(run_one(name, world, seed, data, config, on_update=bar.update if bar else None))
    finally:
        torch.set_num_threads(previous_threads)
        if bar is not None:
            bar.close()
    per_seed = pd.DataFrame(rows, columns=SEED_COLUMNS)
    table = aggregate(rows, n_bootstrap=config.n_bootstrap)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "noise_robustness_seeds.csv", _csv_bytes(per_seed))
    atomic_write_bytes(out / "noise_robustness.csv", _csv_bytes(table))
    atomic_write_bytes(out / "noise_robustness.md", markdown_table(table, config, command).encode("utf-8"))
    meta = {"config": asdict(config), "command": command}
    atomic_write_bytes(out / "noise_robustness_config.json", (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return table
