"""Cost of each bonus per transition, as a multiple of one raw env step measured in the same run.

For every registered bonus: `compute` + `update` on a MiniGrid-size rollout (128 steps x 16 envs of 7x7x3
symbolic views) and an Atari-size rollout (128 steps x 8 envs of 84x84 frames, the last frame RND sees).
The reference is one step of the raw env (MiniGrid-DoorKey-8x8 without wrappers; ALE Montezuma's Revenge
with frame skip 4 when ale-py is installed), timed in the same process. Medians over `--repeats` runs.

    python benchmarks/bonus_throughput.py --out results/bonus_throughput.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from report import emit_table

from explore_bench.bonuses import Transitions, list_bonuses, make_bonus


def env_step_seconds(env: gym.Env, steps: int) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - start) / steps


def minigrid_env() -> gym.Env:
    import minigrid  # noqa: F401  (registers the ids)

    return gym.make("MiniGrid-DoorKey-8x8-v0")


def atari_env() -> gym.Env | None:
    try:
        import ale_py
    except ImportError:
        return None
    gym.register_envs(ale_py)
    return gym.make("ALE/MontezumaRevenge-v5", obs_type="grayscale", frameskip=4, repeat_action_probability=0.25)


def rollout(observation_space: gym.spaces.Box, n_actions: int, t: int, n: int, seed: int) -> Transitions:
    rng = np.random.default_rng(seed)
    high = 11 if observation_space.shape == (7, 7, 3) else 256
    obs = rng.integers(0, high, (t + 1, n, *observation_space.shape)).astype(np.uint8)
    return Transitions(obs[:-1], rng.integers(0, n_actions, (t, n)), obs[1:], rng.random((t, n)) < 0.01)


def bonus_seconds_per_transition(name: str, space: gym.spaces.Box, n_actions: int, t: int, n: int) -> float:
    bonus = make_bonus(name, space, gym.spaces.Discrete(n_actions), seed=0)
    bonus.warm_up(rollout(space, n_actions, t, n, seed=0))
    batch = rollout(space, n_actions, t, n, seed=1)
    bonus.compute(batch)  # first call builds lazily-created state
    start = time.perf_counter()
    bonus.compute(batch)
    bonus.update(batch)
    return (time.perf_counter() - start) / (t * n)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bonuses", nargs="*", default=None, help="default: every registered bonus")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    settings = {
        "minigrid": (gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), 7, 128, 16, minigrid_env()),
        "atari": (gym.spaces.Box(0, 255, (84, 84), np.uint8), 18, 128, 8, atari_env()),
    }
    env_seconds = {
        key: statistics.median(env_step_seconds(env, 2000) for _ in range(args.repeats)) if env is not None else None
        for key, (*_, env) in settings.items()
    }
    rows = []
    for name in args.bonuses or list_bonuses():
        row = {"bonus": name}
        for key, (space, n_actions, t, n, _) in settings.items():
            seconds = statistics.median(bonus_seconds_per_transition(name, space, n_actions, t, n) for _ in range(args.repeats))
            row[f"{key}_us"] = seconds * 1e6
            row[f"{key}_ratio"] = seconds / env_seconds[key] if env_seconds[key] else float("nan")
        rows.append(row)
        print(row, file=sys.stderr, flush=True)

    env_note = ", ".join(f"{k}: {v * 1e6:.0f} us/step" if v else f"{k}: env not installed" for k, v in env_seconds.items())
    lines = [
        "# Bonus throughput: compute + update per transition",
        "",
        f"Command: `python benchmarks/bonus_throughput.py --repeats {args.repeats}`  ",
        f"Raw env step, same run ({env_note}). One torch thread, CPU. Ratio = bonus time per transition / one raw env step.",
        "MiniGrid batch: 128 x 16 of 7x7x3; Atari batch: 128 x 8 of 84x84. Medians of the repeats.",
        "",
        "| bonus | MiniGrid us/transition | x MiniGrid env step | Atari us/transition | x ALE step |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['bonus']} | {row['minigrid_us']:.1f} | {row['minigrid_ratio']:.2f} | {row['atari_us']:.1f} | {row['atari_ratio']:.2f} |"
        )
    emit_table(lines, args.out)


if __name__ == "__main__":
    main()
