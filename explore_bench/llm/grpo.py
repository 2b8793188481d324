"""GRPO with exploration hooks, written for this benchmark (spec llm_adapters.md §6).

Why not TRL's `GRPOTrainer` as the core: the bonus needs the hidden states of exactly the sampled responses,
ProGRPO needs prompt and token log-probs after group normalisation, Lp-Reg needs full-vocabulary old logits and
a modified token loss, and multi-turn bandit episodes with common random numbers do not fit a single-turn
dataset loop; on CPU the hand-written loop is also ~25x faster (spec §8).

One `step_*` call = sample -> rewards (extrinsic + gated bonuses) -> group-relative advantages -> advantage
transforms -> one AdamW step on the clipped token loss (+ KL to the reference, + token-loss regularisers).

Bonuses are any registered `Bonus` (built for `feature_space(policy)`; the trainer passes the pooled hidden
states as vector observations in a `Transitions` of T=1, N=batch with `infos` "group_ids", "episode_ids",
"completion_len", "correct", "turn" and "cell" = the executed action id) or any object with the same
`compute`/`update` (e.g. `RLSPReward`). Per call, `compute` runs on the fresh batch, then `update`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import Transitions
from explore_bench.llm.hooks import AdvantageTransform, TokenLossRegularizer, k3
from explore_bench.llm.policy import GenSettings, HFPolicy, Rollout
from explore_bench.llm.text import TextEnvAdapter


@dataclass
class GRPOSettings:
    """Trainer settings (defaults [O] of §6.3; lr 1e-3..1e-2 suits the tiny test model, 1e-6 real models).

    alpha: coefficient of the extrinsic reward. gate: when bonuses count ("none", "any_correct": zero for every
    sample of a group with no correct sample, "only_incorrect"). adv_norm: "group" (GRPO), "batch" (std over the
    batch) or "none" (Dr. GRPO, no std division). loss_agg: "token_mean" (DAPO) or "seq_mean" (original GRPO).
    feature_source: "policy" (current weights) or "reference" (the frozen initial model / LoRA disabled).
    """

    group_size: int = 8
    lr: float = 1e-3
    clip_low: float = 0.2
    clip_high: float = 0.2
    kl_coef: float = 0.0
    alpha: float = 1.0
    adv_norm: Literal["group", "batch", "none"] = "group"
    loss_agg: Literal["token_mean", "seq_mean"] = "token_mean"
    gate: Literal["none", "any_correct", "only_incorrect"] = "none"
    max_grad_norm: float = 1.0
    eps: float = 1e-4
    gen: GenSettings = field(default_factory=GenSettings)
    scoring_temperature: float = 1.0
    episode_level: bool = False
    feature_source: Literal["policy", "reference"] = "policy"
    seed: int = 0


@dataclass
class Chunk:
    """Samples that share one rollout (one single-turn batch, or one turn of multi-turn episodes)."""

    rollout: Rollout
    group_ids: np.ndarray  # (B,)
    correct: np.ndarray  # (B,) bool: the sample (single-turn) or its episode (multi-turn) earned reward > 0
    adv: np.ndarray | None = None  # (B,) after transforms
    ref_logp: torch.Tensor | None = None  # (B, C) under the reference policy when kl_coef > 0


def feature_space(policy: HFPolicy) -> gym.spaces.Box:
    """The observation space of hidden-state features, for `make_bonus(name, feature_space(policy), ...)`."""
    return gym.spaces.Box(-np.inf, np.inf, (policy.hidden_size,), np.float32)


def clipped_token_loss(new_logp: torch.Tensor, old_logp: torch.Tensor, adv_tok: torch.Tensor, clip_low: float,
                       clip_high: float) -> torch.Tensor:
    """-min(ratio A, clip(ratio, 1 - clip_low, 1 + clip_high) A) per token."""
    ratio = torch.exp(new_logp - old_logp)
    return -torch.minimum(ratio * adv_tok, ratio.clamp(1 - clip_low, 1 + clip_high) * adv_tok)


def group_advantages(rewards: np.ndarray, groups: np.ndarray, norm: str = "group", eps: float = 1e-4
                     ) -> np.ndarray:
    """(R - group mean) / (std + eps): std of the group ("group"), of the whole batch ("batch") or 1 ("none")."""
    adv = np.zeros(len(rewards))
    for g in np.unique(groups):
        idx = groups == g
        adv[idx] = rewards[idx] - rewards[idx].mean()
        if norm == "group":
            adv[idx] /= rewards[idx].std() + eps
    return adv / (rewards.std() + eps) if norm == "batch" else adv


class GRPOTrainer:
    """GRPO with reward bonuses, advantage transforms and token-loss regularisers (module docstring).

    `bonuses`: (bonus, beta) pairs; `ref_policy`: the KL / feature reference (default: LoRA adapters disabled for a
    peft model, else a frozen copy of the initial policy, made only when needed).
    """

    def __init__(self, policy: HFPolicy, cfg: GRPOSettings | None = None, bonuses=(),
                 adv_transforms: tuple[AdvantageTransform, ...] = (),
                 regularizers: tuple[TokenLossRegularizer, ...] = (), ref_policy: HFPolicy | None = None) -> None:
        self.policy, self.cfg = policy, cfg or GRPOSettings()
        for value, allowed, what in ((self.cfg.adv_norm, ("group", "batch", "none"), "adv_norm"),
                                     (self.cfg.loss_agg, ("token_mean", "seq_mean"), "loss_agg"),
                                     (self.cfg.gate, ("none", "any_correct", "only_incorrect"), "gate"),
                                     (self.cfg.feature_source, ("policy", "reference"), "feature_source")):
            if value not in allowed:
                raise ValueError(f"GRPOSettings: {what} must be one of {allowed}, got {value!r}")
        if self.cfg.group_size < 2:
            raise ValueError(f"GRPOSettings: group_size must be >= 2 (advantages are group-relative), "
                             f"got {self.cfg.group_size}")
        self.bonuses = list(bonuses)
        self.adv_transforms, self.regularizers = tuple(adv_transforms), tuple(regularizers)
        self._peft = hasattr(policy.model, "disable_adapter")
        needs_ref = self.cfg.kl_coef > 0 or self.cfg.feature_source == "reference"
        self.ref_policy = ref_policy or (policy.frozen_copy() if needs_ref and not self._peft else None)
        params = [p for p in policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.lr)
        self.n_steps = 0

    # ------------------------------------------------------------------------------------------ pieces
    def _with_reference(self, fn: Callable[[HFPolicy], object]):
        if self.ref_policy is not None:
            return fn(self.ref_policy)
        with self.policy.model.disable_adapter():
            return fn(self.policy)

    def _seed(self) -> int:
        return int(np.random.default_rng([self.cfg.seed, self.n_steps, len(self._chunk_seeds)]).integers(2**31))

    def _sample(self, prompts: list[str], candidates: list[list[str]] | None, n: int) -> Rollout:
        hooks = tuple(r.logit_hook for r in self.regularizers)
        features = self.cfg.feature_source == "policy" and bool(self.bonuses)
        seed = self._seed()
        self._chunk_seeds.append(seed)
        if candidates is not None:
            if self.cfg.feature_source == "reference" and self.bonuses:
                raise ValueError("GRPOTrainer: feature_source='reference' needs generation mode (no candidates)")
            return self.policy.choose(prompts, candidates, n=n, temperature=self.cfg.scoring_temperature, seed=seed,
                                      features=features, logit_hooks=hooks)
        rollout = self.policy.generate(prompts, n=n, gen=replace(self.cfg.gen, seed=seed), features=features,
                                       logit_hooks=hooks)
        if self.bonuses and not features:
            rollout.features = self._with_reference(lambda p: p.features(rollout))
        return rollout

    def _bonus(self, rollout: Rollout, infos: dict[str, np.ndarray], dones: np.ndarray) -> np.ndarray:
        """(M, B) raw bonuses times their betas (compute on the fresh batch, then update)."""
        out = np.zeros((len(self.bonuses), len(dones)))
        if not self.bonuses:
            return out
        feats = rollout.features if rollout.features is not None else np.zeros((len(dones), 1), np.float32)
        batch = Transitions(feats[None], infos["cell"][None], feats[None], dones[None],
                            {k: v[None] for k, v in infos.items()})
        for m, (bonus, beta) in enumerate(self.bonuses):
            out[m] = beta * bonus.compute(batch)[0]
            bonus.update(batch)
        return out

    def _gate(self, correct: np.ndarray, groups: np.ndarray) -> np.ndarray:
        if self.cfg.gate == "any_correct":
            return np.array([correct[groups == g].any() for g in groups], dtype=np.float64)
        if self.cfg.gate == "only_incorrect":
            return (~correct).astype(np.float64)
        return np.ones(len(correct))

    def _finish(self, chunk: Chunk, adv: np.ndarray) -> None:
        for transform in self.adv_transforms:
            adv = transform(adv, chunk)
        chunk.adv = adv
        if self.cfg.kl_coef > 0:
            chunk.ref_logp = self._with_reference(lambda p: p.logprobs(chunk.rollout, grad=False))

    def _optimise(self, chunks: list[Chunk]) -> dict[str, float]:
        cfg = self.cfg
        n_tokens = sum(float(c.rollout.completion_mask.sum()) for c in chunks)
        n_seqs = sum(len(c.adv) for c in chunks)
        self.optimizer.zero_grad()
        total, kl_sum, clipped = 0.0, 0.0, 0.0
        for chunk in chunks:
            r = chunk.rollout
            mask = r.completion_mask.float()
            new_logp = self.policy.logprobs(r, grad=True)
            adv_tok = torch.as_tensor(chunk.adv, dtype=torch.float32)[:, None].expand_as(new_logp)
            loss = clipped_token_loss(new_logp, r.old_logprobs, adv_tok, cfg.clip_low, cfg.clip_high)
            if chunk.ref_logp is not None:
                kl = k3(new_logp, chunk.ref_logp)
                loss = loss + cfg.kl_coef * kl
                kl_sum += float((kl.detach() * mask).sum())
            for reg in self.regularizers:
                loss = reg.token_loss(loss, new_logp, adv_tok, chunk)
            loss = loss * mask
            if cfg.loss_agg == "token_mean":
                part = loss.sum() / n_tokens
            else:
                part = (loss.sum(1) / mask.sum(1).clamp(min=1.0)).sum() / n_seqs
            part.backward()  # per chunk: the graphs of several turns never coexist
            total += float(part.detach())
            ratio = torch.exp(new_logp.detach() - r.old_logprobs)
            clipped += float((((ratio < 1 - cfg.clip_low) | (ratio > 1 + cfg.clip_high)).float() * mask).sum())
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        self.optimizer.step()
        self.n_steps += 1
        return {"loss": total, "kl_mean": kl_sum / n_tokens, "clip_frac": clipped / n_tokens, "grad_norm": grad_norm,
                "entropy_mean": sum(float((c.rollout.entropy * c.rollout.completion_mask).sum()) for c in chunks)
                / n_tokens,
                "adv_abs_mean": float(np.mean(np.abs(np.concatenate([c.adv for c in chunks])))),
                "completion_len_mean": n_tokens / n_seqs}

    # ------------------------------------------------------------------------------------------- steps
    def step_single_turn(self, prompts: list[str], verifier: Callable[[str, str], float],
                         candidates: list[list[str]] | None = None) -> dict[str, float]:
        """One update on `group_size` samples per prompt; `verifier(prompt, completion)` is the extrinsic reward.
        With `candidates` (per prompt) the policy chooses among them (scoring mode) and the completion is the
        chosen candidate string."""
        start, self._chunk_seeds = time.perf_counter(), []
        g = self.cfg.group_size
        rollout = self._sample(prompts, candidates, g)
        b = len(rollout.texts)
        r_ext = np.array([float(verifier(prompts[i // g], text)) for i, text in enumerate(rollout.texts)])
        groups, correct = np.repeat(np.arange(len(prompts)), g), r_ext > 0
        infos = {"group_ids": groups, "episode_ids": np.arange(b), "completion_len": rollout.lengths,
                 "correct": correct, "turn": np.zeros(b, np.int64),
                 "cell": rollout.actions if rollout.scoring else np.zeros(b, np.int64)}
        r_int = (self._bonus(rollout, infos, np.ones(b, bool)) * self._gate(correct, groups)).sum(0)
        rewards = self.cfg.alpha * r_ext + r_int
        chunk = Chunk(rollout, groups, correct)
        self._finish(chunk, group_advantages(rewards, groups, self.cfg.adv_norm, self.cfg.eps))
        stats = self._optimise([chunk])
        zero_std = np.mean([rewards[groups == k].std() == 0 for k in np.unique(groups)])
        return stats | {"reward_ext_mean": float(r_ext.mean()), "reward_int_mean": float(r_int.mean()),
                        "frac_zero_std_groups": float(zero_std), "invalid_rate": 0.0,
                        "bonus_group_std": self._bonus_group_std(r_int, groups),
                        "step_time_s": time.perf_counter() - start}

    @staticmethod
    def _bonus_group_std(r_int: np.ndarray, groups: np.ndarray) -> float:
        return float(np.mean([r_int[groups == k].std() for k in np.unique(groups)]))

    def step_episodes(self, adapters: list[TextEnvAdapter], seeds: list[int], scoring: bool = True
                      ) -> dict[str, float]:
        """One update on multi-turn episodes (§6.7): adapter i plays task seed `seeds[i // group_size]`, so a
        group is `group_size` episodes of one task with one reward tape. Each turn is one generation (or, with
        `scoring`, one choice among the adapter's candidates); the turn advantage is the group-normalised
        return-to-go over the group's episodes still running at that turn (`episode_level`: one per episode)."""
        g = self.cfg.group_size
        if len(adapters) != g * len(seeds):
            raise ValueError(f"GRPOTrainer.step_episodes: need group_size * len(seeds) = {g * len(seeds)} adapters, "
                             f"got {len(adapters)}")
        start, self._chunk_seeds = time.perf_counter(), []
        n_ep = len(adapters)
        obs = [a.reset(seed=int(seeds[i // g]))[0] for i, a in enumerate(adapters)]
        ext: list[list[float]] = [[] for _ in range(n_ep)]
        bonus: list[list[np.ndarray]] = [[] for _ in range(n_ep)]
        turns: list[tuple[Rollout, np.ndarray]] = []
        running, invalid, n_turns = np.arange(n_ep), 0, 0
        while len(running):
            prompts = [self.policy.chat_prompt(obs[i].system, obs[i].user) for i in running]
            rollout = self._sample(prompts, [obs[i].candidates for i in running] if scoring else None, 1)
            executed, done = np.zeros(len(running), np.int64), np.zeros(len(running), bool)
            for j, i in enumerate(running):
                step = adapters[i].step_action(rollout.actions[j]) if scoring else adapters[i].step_text(
                    rollout.texts[j])
                obs[i], reward, terminated, truncated, info = step
                ext[i].append(reward)
                executed[j], done[j] = info["executed_action"], terminated or truncated
                invalid += info["invalid"]
            n_turns += len(running)
            infos = {"group_ids": running // g, "episode_ids": running, "completion_len": rollout.lengths,
                     "correct": np.zeros(len(running), bool), "turn": np.full(len(running), len(turns)),
                     "cell": executed}
            for j, b in enumerate(self._bonus(rollout, infos, done).T):
                bonus[running[j]].append(b)
            turns.append((rollout, running))
            running = running[~done]
        # gate per group on the episodes' extrinsic returns, then returns-to-go of the combined per-turn rewards
        groups = np.arange(n_ep) // g
        correct = np.array([sum(e) > 0 for e in ext])
        gate = self._gate(correct, groups)
        r_int = [gate[i] * np.sum(bonus[i], axis=1) if self.bonuses else np.zeros(len(ext[i])) for i in range(n_ep)]
        rewards = [self.cfg.alpha * np.asarray(ext[i]) + r_int[i] for i in range(n_ep)]
        to_go = [np.cumsum(r[::-1])[::-1] for r in rewards]
        chunks = []
        for t, (rollout, eps) in enumerate(turns):
            values = np.array([to_go[i][0 if self.cfg.episode_level else t] for i in eps])
            chunk = Chunk(rollout, groups[eps], correct[eps])
            self._finish(chunk, group_advantages(values, groups[eps], self.cfg.adv_norm, self.cfg.eps))
            chunks.append(chunk)
        stats = self._optimise(chunks)
        totals = np.array([r.sum() for r in rewards])
        int_all = np.concatenate(r_int)
        return stats | {"reward_ext_mean": float(np.mean([sum(e) for e in ext])),
                        "reward_int_mean": float(int_all.mean()),
                        "frac_zero_std_groups": float(np.mean([totals[groups == k].std() == 0
                                                               for k in range(len(seeds))])),
                        "invalid_rate": invalid / n_turns,
                        "bonus_group_std": self._bonus_group_std(np.array([r.sum() for r in r_int]), groups),
                        "step_time_s": time.perf_counter() - start}
