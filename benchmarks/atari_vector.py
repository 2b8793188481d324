"""Steps per second of ale-py's C++ vector env against SB3's Python vector envs over our wrapped Atari env.

Both sides run the protocol of `explore_bench.envs.atari` (sticky actions 0.25, full action set, frame skip 4 with
max-pooling of the last two frames, 84x84 grayscale, 4-frame stack, 108,000-frame cap, no no-op starts, no fire
reset, raw rewards) on one game with uniform random actions:

- `AtariVectorEnv` (threads=T): `ale_py.vector_env.AtariVectorEnv`, preprocessing in C++ on T threads;
- `DummyVecEnv` / `SubprocVecEnv`: SB3's vector envs over `make_env("Atari-<Game>-v0")` (one process, or one
  process per env), which also computes the episode metrics (room coverage from the RAM).

Agent steps per second (one agent step = 4 emulator frames), median of `--repeats` rounds; every round measures
every configuration once (interleaved, so that load on a shared machine hits all alike), after `--warmup` steps.

    python benchmarks/atari_vector.py --out results/atari_vector.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
from report import emit_table
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from explore_bench.envs import make_env
from explore_bench.envs.atari import (
    ATARI_ENVS,
    FRAME_STACK,
    FRAMES_PER_STEP,
    MAX_EPISODE_FRAMES,
    REPEAT_ACTION_PROBABILITY,
    SCREEN_SIZE,
    rom_name,
)


def ale_vector_env(game: str, n_envs: int, threads: int):
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        rom_name(game),
        n_envs,
        num_threads=threads,
        repeat_action_probability=REPEAT_ACTION_PROBABILITY,
        full_action_space=True,
        max_num_frames_per_episode=MAX_EPISODE_FRAMES,
        frameskip=FRAMES_PER_STEP,
        maxpool=True,
        img_height=SCREEN_SIZE,
        img_width=SCREEN_SIZE,
        grayscale=True,
        stack_num=FRAME_STACK,
        noop_max=0,
        use_fire_reset=False,
        episodic_life=False,
        reward_clipping=False,
        autoreset_mode="SameStep",  # SB3's convention: the reset happens within the step that ends an episode
    )


def sb3_vector_env(env_id: str, n_envs: int, cls: type) -> DummyVecEnv | SubprocVecEnv:
    def factory(rank: int) -> Callable:
        return lambda: make_env(env_id, seed=rank)

    return cls([factory(i) for i in range(n_envs)])


def steps_per_second(venv, ale: bool, n_envs: int, steps: int, warmup: int, rng: np.random.Generator) -> float:
    """Agent steps per second (summed over the envs) of `steps` vector steps with random actions."""

    def step(actions: np.ndarray) -> None:
        if ale:
            venv.step(actions)
        else:
            venv.step_async(actions)
            venv.step_wait()

    for _ in range(warmup):
        step(rng.integers(0, 18, n_envs))
    start = time.perf_counter()
    for _ in range(steps):
        step(rng.integers(0, 18, n_envs))
    return steps * n_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="MontezumaRevenge", choices=[e.game for e in ATARI_ENVS.values()])
    parser.add_argument("--n-envs", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--steps", type=int, default=250, help="vector steps per measurement")
    parser.add_argument("--warmup", type=int, default=25, help="vector steps before each measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    args = parser.parse_args(argv)

    env_id = f"Atari-{args.game}-v0"
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores})
    names = [f"AtariVectorEnv (threads={t})" for t in thread_counts] + ["DummyVecEnv", "SubprocVecEnv"]
    rows = []
    for n_envs in args.n_envs:
        venvs = {f"AtariVectorEnv (threads={t})": (ale_vector_env(args.game, n_envs, t), True) for t in thread_counts}
        venvs["DummyVecEnv"] = (sb3_vector_env(env_id, n_envs, DummyVecEnv), False)
        venvs["SubprocVecEnv"] = (sb3_vector_env(env_id, n_envs, SubprocVecEnv), False)
        for venv, ale in venvs.values():
            if ale:
                venv.reset(seed=0)
            else:
                venv.reset()
        rates: dict[str, list[float]] = {name: [] for name in names}
        rng = np.random.default_rng(0)
        for _ in range(args.repeats):
            for name, (venv, ale) in venvs.items():
                rates[name].append(steps_per_second(venv, ale, n_envs, args.steps, args.warmup, rng))
        for venv, _ in venvs.values():
            venv.close()
        median = {name: statistics.median(r) for name, r in rates.items()}
        best_ale = max(median[n] for n in names if n.startswith("AtariVectorEnv"))
        best_python = max(median["DummyVecEnv"], median["SubprocVecEnv"])
        rows.append((n_envs, median, best_ale / best_python))
        print(f"n_envs={n_envs}: " + ", ".join(f"{n} {median[n]:.0f}" for n in names), flush=True)

    lines = [
        f"# Atari vector envs: {args.game}, agent steps per second",
        "",
        f"Command: `python benchmarks/atari_vector.py --game {args.game} --steps {args.steps} "
        f"--repeats {args.repeats}`  ",
        f"{cores} CPU cores. Median of {args.repeats} interleaved rounds of {args.steps} vector steps (after "
        f"{args.warmup} warm-up steps) with uniform random actions. One agent step = {FRAMES_PER_STEP} emulator "
        "frames. Ratio = best AtariVectorEnv / best SB3 vector env.",
        "",
        "| n_envs | " + " | ".join(names) + " | ratio |",
        "|---" * (len(names) + 2) + "|",
    ]
    for n_envs, median, ratio in rows:
        lines.append(f"| {n_envs} | " + " | ".join(f"{median[n]:.0f}" for n in names) + f" | {ratio:.2f} |")
    emit_table(lines, args.out)


if __name__ == "__main__":
    main()
