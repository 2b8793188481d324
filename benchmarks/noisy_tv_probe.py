"""What a trained agent does on a MiniGrid env, and, where the env has a noisy TV, what its bonus pays there.

For one finished run folder (config.json + checkpoint.zip, as the runner leaves them): the policy's action shares
and TV presses over sampled episodes, the raw bonus on the policy's own steps, and the raw bonus on forced presses
(the agent placed on the cell in front of the TV, facing it, then `toggle` five times per episode). A bonus fooled
by the TV pays more for the forced presses than for the policy's own steps. On an env without a TV the probe
stops after the action shares and the bonus on the policy's own steps.

    python benchmarks/noisy_tv_probe.py runs/doorkey8x8_noisy_tv/MiniGrid-DoorKey-8x8-NoisyTV-v0/ppo+icm/seed_0
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from minigrid.core.actions import Actions
from minigrid.minigrid_env import MiniGridEnv
from stable_baselines3.common.preprocessing import maybe_transpose

from explore_bench.agents.factory import load_agent
from explore_bench.bonuses import Transitions
from explore_bench.envs import make_env


def as_transitions(space: gym.Space, obs: list, actions: list, next_obs: list, dones: list) -> Transitions:
    """One env's steps as (T, 1, ...) in the agent's observation space: SB3 hands images to the agent, and so to
    its bonus, channels-first."""
    def frames(x: list) -> np.ndarray:
        return maybe_transpose(np.stack(x), space)[:, None]

    return Transitions(frames(obs), np.asarray(actions)[:, None], frames(next_obs), np.asarray(dones, bool)[:, None])


def policy_episodes(model, env, episodes: int, seed: int):
    steps = {"obs": [], "actions": [], "next_obs": [], "dones": [], "press": []}
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=False)
            next_obs, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
            for key, value in (("obs", obs), ("actions", int(action)), ("next_obs", next_obs), ("dones", done),
                               ("press", bool(info.get("press", False)))):
                steps[key].append(value)
            obs = next_obs
    return steps


def forced_presses(env, space: gym.Space, episodes: int, seed: int, presses: int = 5):
    """Stand in front of the TV, facing it, and toggle: every step is a press."""
    base = env.unwrapped
    tv_x, tv_y = env.get_wrapper_attr("cell")
    obs_list, next_list = [], []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        front = (tv_x + 1, tv_y)  # the TV is on a left wall: its front cell is to its right, facing west
        if base.grid.get(*front) is not None:
            continue
        base.agent_pos, base.agent_dir = np.array(front), 2
        obs, *_ = env.step(Actions.done)  # a no-op in DoorKey: the observation from the press cell
        for _ in range(presses):
            next_obs, _, _, _, info = env.step(Actions.toggle)
            assert info["press"], "the forced toggle did not press the TV"
            obs_list.append(obs)
            next_list.append(next_obs)
            obs = next_obs
    return as_transitions(space, obs_list, [int(Actions.toggle)] * len(obs_list), next_list, [False] * len(obs_list))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder (config.json, checkpoint.zip)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1000, help="env seeds of the probe (not the training seeds)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    config = json.loads((args.run / "config.json").read_text())["config"]
    model = load_agent(config, args.run / "checkpoint.zip")
    env = make_env(config["env"], seed=args.seed)
    steps = policy_episodes(model, env, args.episodes, args.seed)
    counts = Counter(steps["actions"])
    n = len(steps["actions"])
    minigrid = isinstance(env.unwrapped, MiniGridEnv)  # other envs (TVGrid) name their actions by index
    shares = {Actions(a).name if minigrid else a: round(c / n, 3) for a, c in sorted(counts.items())}
    print(f"{args.run}: {n} steps, presses {sum(steps['press'])}; action shares {shares}")
    bonus = getattr(model, "bonus", None)
    if bonus is None:
        return
    # `reset` is the optional hook of recurrent bonuses: a new stream (N = 1 here, 16 in training)
    new_stream = getattr(bonus, "reset", lambda: None)
    new_stream()
    recorded = (steps[key] for key in ("obs", "actions", "next_obs", "dones"))
    own = bonus.compute(as_transitions(model.observation_space, *recorded))
    try:
        env.get_wrapper_attr("cell")
    except AttributeError:  # no TV in this env: the policy's own steps only
        print(f"  raw bonus: the policy's own steps {own.mean():.4g}")
        return
    new_stream()
    forced = bonus.compute(forced_presses(env, model.observation_space, args.episodes, args.seed + 10_000))
    print(f"  raw bonus: forced presses {forced.mean():.4g} (n={forced.size}), the policy's own steps "
          f"{own.mean():.4g}, ratio {forced.mean() / own.mean():.2f}")


if __name__ == "__main__":
    main()
