"""Frames per second of PPO + each bonus relative to plain SB3 PPO and to the raw env, measured side by side.

Every configuration trains the `ppo` agent (same hyperparameters, same 16-env DummyVecEnv) for `--frames`
frames; plain SB3 PPO is the `ppo` agent without a bonus. The raw rate is the same VecEnv stepped with
random actions. Rounds are interleaved (each round runs every configuration once) so that load on a shared
machine hits all of them alike; the table reports the median of the per-round ratios.

    python benchmarks/agent_throughput.py --out results/agent_throughput.md
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

from explore_bench.agents.factory import make_agent, resolve_config
from explore_bench.bonuses import list_bonuses

ENV = "MiniGrid-DoorKey-8x8-v0"


def agent_fps(bonus: str | None, frames: int, seed: int) -> float:
    # No warm-up rollouts: they are random steps, cheaper than training ones, and would flatter the rate.
    config = resolve_config(ENV, "ppo", bonus, seed, frames, {"intrinsic.warmup_rollouts": 0})
    model = make_agent(config)
    start = time.perf_counter()
    model.learn(frames)
    return model.num_timesteps / (time.perf_counter() - start)


def raw_env_fps(frames: int, seed: int) -> float:
    venv = make_agent(resolve_config(ENV, "ppo", None, seed, frames)).get_env()
    venv.reset()
    rng = np.random.default_rng(seed)
    steps = frames // venv.num_envs
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(rng.integers(0, venv.action_space.n, venv.num_envs))
    return steps * venv.num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32768)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bonuses", nargs="*", default=None, help="default: every registered bonus")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    bonuses = args.bonuses or list_bonuses()

    plain, raw, fps = [], [], {b: [] for b in bonuses}
    for round_ in range(args.rounds):
        raw.append(raw_env_fps(args.frames, round_))
        plain.append(agent_fps(None, args.frames, round_))
        for bonus in bonuses:
            fps[bonus].append(agent_fps(bonus, args.frames, round_))
        print(f"round {round_}: raw {raw[-1]:.0f}, plain {plain[-1]:.0f}, " + ", ".join(f"{b} {v[-1]:.0f}" for b, v in fps.items()), file=sys.stderr, flush=True)

    lines = [
        "# Agent throughput: PPO + bonus vs plain SB3 PPO",
        "",
        f"Command: `python benchmarks/agent_throughput.py --frames {args.frames} --rounds {args.rounds}`  ",
        f"Env {ENV}, 16 envs in a DummyVecEnv, `agents/ppo.yaml` hyperparameters, one torch thread, CPU.",
        f"Medians over {args.rounds} interleaved rounds. Raw VecEnv with random actions: {statistics.median(raw):.0f} frames/s;"
        f" plain SB3 PPO: {statistics.median(plain):.0f} frames/s ({statistics.median(p / r for p, r in zip(plain, raw)):.2f} x raw).",
        "",
        "| agent | frames/s | x plain SB3 PPO | x raw env |",
        "|---|---:|---:|---:|",
    ]
    for bonus, values in fps.items():
        vs_plain = statistics.median(v / p for v, p in zip(values, plain))
        vs_raw = statistics.median(v / r for v, r in zip(values, raw))
        lines.append(f"| ppo+{bonus} | {statistics.median(values):.0f} | {vs_plain:.2f} | {vs_raw:.2f} |")
    emit_table(lines, args.out)


if __name__ == "__main__":
    main()
