"""Metrics of LLM policies (spec llm_adapters.md §7): pass@k, samples-to-correct, response diversity, and the
bandit metrics of `explore_bench.envs.bandits.metrics` for LLM bandit agents (plus the invalid-reply rate)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import pdist

from explore_bench.envs.bandits.metrics import summarize
from explore_bench.envs.bandits.vec import Trajectories
from explore_bench.llm.text import TextEnvAdapter


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k)/C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def expected_samples_to_correct(n: int, c: int) -> float:
    """Expected 1-based position of the first correct sample in a random order of n samples, c correct
    ((n+1)/(c+1); n+1 when none is correct)."""
    return (n + 1) / (c + 1)


def samples_to_correct(correct_in_order: Sequence[bool]) -> int:
    """1-based position of the first correct sample (N+1 if none), e.g. in `select_diverse` order."""
    hits = np.flatnonzero(np.asarray(correct_in_order, dtype=bool))
    return int(hits[0]) + 1 if hits.size else len(correct_in_order) + 1


def distinct_n(texts: Sequence[str], n: int = 1) -> float:
    """Character-level distinct-n: unique character n-grams / total character n-grams over all texts."""
    grams = [t[i : i + n] for t in texts for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def mean_pairwise_cosine_distance(features: np.ndarray) -> float:
    """Mean of 1 - cos over all pairs of rows."""
    return float(pdist(np.asarray(features, dtype=np.float64), "cosine").mean())


def vendi_score(features: np.ndarray) -> float:
    """exp(-sum lambda log lambda), lambda the eigenvalues of K/n with K the cosine-similarity matrix."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    lam = np.linalg.eigvalsh(x @ x.T / len(x)).clip(min=0.0)
    lam = lam[lam > 0]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def diversity(texts: Sequence[str], answers: Sequence[object] | None = None, features: np.ndarray | None = None,
              entropy: float | None = None) -> dict[str, float]:
    """Diversity of the n completions of one prompt: distinct-1/2 (characters), distinct parsed answers (None =
    invalid is one answer), mean pairwise cosine distance and Vendi score of the features, mean token entropy."""
    out = {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2)}
    if answers is not None:
        out["distinct_answers"] = float(len(set(answers)))
    if features is not None and len(features) > 1:
        out["cosine_distance"] = mean_pairwise_cosine_distance(features)
        out["vendi"] = vendi_score(features)
    if entropy is not None:
        out["entropy"] = float(entropy)
    return out


def bandit_trajectories(adapters: Sequence[TextEnvAdapter]) -> Trajectories:
    """The finished episodes of bandit adapters (one replicate each) as `Trajectories` (executed actions, raw
    rewards, the task means; families that resample the task within an episode have no single task and are
    refused)."""
    envs = [a.env.unwrapped for a in adapters]
    if any(not e.one_task_per_episode for e in envs):
        raise ValueError("bandit_trajectories: an env changes its task within the episode (no fixed means)")
    if any(not a.done for a in adapters):
        raise ValueError("bandit_trajectories: every adapter must have finished its episode")
    actions = np.array([[a for a, _ in ad.history] for ad in adapters])
    rewards = np.array([[r for _, r in ad.history] for ad in adapters])
    means = np.stack([e.task.means for e in envs])
    return Trajectories(actions, rewards, means, envs[0].family.reward_type)


def bandit_summary(adapters: Sequence[TextEnvAdapter], n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """`summarize` (bandits.md §5) over all turns of the adapters' last episodes, plus `invalid_rate` (over their
    lifetimes): invalid turns count with the action the fallback executed."""
    out = summarize(bandit_trajectories(adapters), n_boot=n_boot, seed=seed)
    out["invalid_rate"] = sum(a.n_invalid for a in adapters) / max(1, sum(a.n_turns for a in adapters))
    return out
