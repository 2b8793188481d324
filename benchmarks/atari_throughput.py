"""Atari throughput: Go-Explore phase 1 per core as a ratio to the raw ALE step rate, and PPO+RND frames per second
on a torch device, measured in one run.

Rates are emulated frames per second (4 per agent step). Rounds interleave the raw ALE loop (deterministic
Montezuma, frame skip 4, random minimal-set actions, no cell computation) with Go-Explore iterations (return by
restore, cells, archive updates) in the same process, so load on a shared machine hits both alike; the table reports
the median of the per-round ratios. With `--ppo-frames`, PPO+RND (`ppo_atari` + `rnd`, the Machado protocol with
clipped rewards) trains for about `--ppo-seconds` on each `--devices` entry (whole rollouts), warm-up excluded.

    python benchmarks/atari_throughput.py --rounds 5 --out results/atari_throughput.md
    python benchmarks/atari_throughput.py --rounds 3 --ppo-seconds 120 --devices cuda cpu
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import emit_table

from explore_bench.agents.go_explore import AtariDomain, GoExplore, GoExploreConfig

GAME, ENV = "MontezumaRevenge", "Atari-MontezumaRevenge-v0"


def raw_ale_fps(domain: AtariDomain, seconds: float, rng: np.random.Generator) -> float:
    ale, actions = domain.ale, domain.actions
    ale.reset_game()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            ale.act(actions[rng.integers(len(actions))])
            if ale.game_over():
                ale.reset_game()
        steps += 100
    return steps * domain.frames_per_step / (time.perf_counter() - start)


def go_explore_fps(explorer: GoExplore, seconds: float) -> float:
    frames, start = explorer.frames, time.perf_counter()
    while time.perf_counter() - start < seconds:
        explorer.iteration()
    return (explorer.frames - frames) / (time.perf_counter() - start)


def ppo_rnd_fps(seconds: float, device: str) -> tuple[float, int]:
    """PPO+RND trained for about `seconds` (whole rollouts and updates): (frames/s, frames)."""
    from stable_baselines3.common.callbacks import BaseCallback

    from explore_bench.agents.factory import make_agent, resolve_config

    class Deadline(BaseCallback):
        """Stops training at the first step of the first rollout that starts after `seconds`."""

        expired = False

        def _on_rollout_start(self) -> None:
            self.expired = time.perf_counter() - start > seconds

        def _on_step(self) -> bool:
            return not self.expired

    config = resolve_config(ENV, "ppo_atari", "rnd", 0, 10**9, {"env_kwargs": {"clip_rewards": True}, "intrinsic": {"warmup_rollouts": 0}})
    model = make_agent(config, device=device)
    start = time.perf_counter()
    model.learn(10**9, callback=Deadline())
    frames = model.num_timesteps * 4
    return frames / (time.perf_counter() - start), frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--ppo-seconds", type=float, default=0.0, help="PPO+RND training time per device (0: skip)")
    parser.add_argument("--devices", nargs="+", default=["cpu"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    explorer = GoExplore(ENV, seed=0, config=GoExploreConfig(weights="ge2019"))
    explorer.iteration()  # past the first, tiny archive
    rng = np.random.default_rng(0)
    raw, ge, ratios = [], [], []
    for _ in range(args.rounds):
        raw.append(raw_ale_fps(explorer.domain, args.seconds, rng))
        ge.append(go_explore_fps(explorer, args.seconds))
        ratios.append(ge[-1] / raw[-1])
    rows = [
        ["raw ALE (frame skip 4, random actions)", f"{statistics.median(raw):,.0f}", "1.00"],
        [f"Go-Explore phase 1 (archive of {len(explorer.archive)} cells at the end)", f"{statistics.median(ge):,.0f}",
         f"{statistics.median(ratios):.2f}"],
    ]
    for device in args.devices if args.ppo_seconds else []:
        fps, frames = ppo_rnd_fps(args.ppo_seconds, device)
        rows.append([f"PPO+RND (ppo_atari + rnd, 16 envs, Machado protocol), {frames:,} frames, torch device {device}", f"{fps:,.0f}",
                     f"{fps / statistics.median(raw):.3f}"])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    lines = [
        f"Atari throughput, one process per measurement: emulated frames/s, median of {args.rounds} rounds of "
        f"{args.seconds:.0f} s, {GAME}, {gpu}, torch threads 1.",
        "",
        f"Command: `python benchmarks/atari_throughput.py {' '.join(sys.argv[1:])}`",
        "",
        "| what | frames/s | ratio to raw ALE |",
        "|---|---|---|",
        *(f"| {what} | {fps} | {ratio} |" for what, fps, ratio in rows),
    ]
    emit_table(lines, args.out)


if __name__ == "__main__":
    main()
