"""Held-out evaluation of bandit policies, and the runs of the classical bandit baselines.

Every policy of a bandit run -- a trained SB3 agent (RL^2) or a baseline of ``explore_bench.agents.bandit_baselines``
-- is evaluated the same way at the end of its run: ``EVAL_TASKS`` tasks of the run's env, env ``i`` reset with seed
``EVAL_SEED + i``. So every method meets the same tasks and, through the env's reward tape, sees the same reward on
the j-th pull of an arm: comparisons between rows are paired (common random numbers). The same tasks are also played
at ``LONG_HORIZON_FACTOR`` times the horizon (the generalisation test of Greedy-Wins, shared/specs/bandits.md §8).

The run's final metrics gain the metrics of ``shared/specs/bandits.md`` §5 on these tasks (``summarize``):
``return`` (mean total reward), ``regret`` (mean cumulative pseudo-regret) and its standard error, ``regret_random``
(the uniform random policy's expected regret on the same tasks) and ``regret_reference`` (the §5.2 reference:
``bayes_opt_k2`` for 2 Bernoulli arms, ``gittins_approx`` with gamma = 1 - 1/H for more, the oracle's 0 for other
reward types), ``normalized_score``, ``suff_fail_half``, ``ecf_quarter``, ``abandon_after_one``, ``kminfrac``,
``greedy_frac``, ``best_arm_frac``, ``late_best_share``, ``frac_linear``, and the same with the suffix ``_6x`` at the
long horizon. ``bandit_eval.json`` in the run folder holds every metric with its standard error and bootstrap CI.
A learned agent is evaluated sampling its actions (as RL^2 is); ``regret_deterministic`` is its regret acting on the
most likely action.

An evaluation-only run trains nothing: it is this evaluation alone, and its progress rows put its held-out return
at 0 frames and at the budget, a flat reference line beside the learning curves. Two kinds: a classical baseline
(agent ``algo: bandit_baseline``, the baseline's name and parameters under ``baseline``) and an LLM policy reading
the text view of each task (``algo: llm_bandit``, settings under ``llm``: ``explore_bench.llm.bandit_agent``), which
plays the first ``llm.eval_tasks`` of the held-out tasks, by default at the env's horizon only, and adds
``invalid_rate`` (the share of its replies that did not parse) to the final metrics.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from explore_bench.agents.bandit_baselines import MAX_DP_HORIZON, make_baseline
from explore_bench.envs import make_env
from explore_bench.envs.bandits import MetaBanditEnv
from explore_bench.envs.bandits.metrics import cumulative_regret, normalized_score, summarize
from explore_bench.envs.bandits.vec import Stats, Trajectories
from explore_bench.runner.io import atomic_write_json, write_progress
from explore_bench.runner.run import PROGRESS_FILE, UNKNOWN_COMMIT, git_commit, git_dirty

__all__ = ["EVAL_SEED", "EVAL_TASKS", "LONG_HORIZON_FACTOR", "bandit_final", "check_eval_only", "evaluate_bandit",
           "is_meta_bandit", "train_eval_only"]

EVAL_TASKS = 1000
EVAL_SEED = 1_000_000  # far above the training seeds, whose envs are seeded seed + rank
LONG_HORIZON_FACTOR = 6
EVAL_FILE = "bandit_eval.json"
#: the scalar metrics of ``summarize`` copied into a run's final metrics (``cum_regret_mean`` becomes ``regret``)
FINAL_KEYS = ("suff_fail_half", "ecf_quarter", "abandon_after_one", "kminfrac", "greedy_frac", "best_arm_frac",
              "late_best_share", "frac_linear")

#: act(observations [R, D], t) -> arms [R]; observe(arms, rewards) after every round
Actor = tuple[Callable[[np.ndarray, int], np.ndarray], Callable[[np.ndarray, np.ndarray], None]]


def _bandit(env: Any) -> MetaBanditEnv | None:
    base = env.unwrapped
    return base if isinstance(base, MetaBanditEnv) and base.one_task_per_episode else None


def is_meta_bandit(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> bool:
    """Whether ``env_id`` is a bandit env with one task per episode (``MetaBanditEnv`` or ``TrialEnv`` with a fixed
    task), the envs this module evaluates; a task redrawn every pull has no per-episode means to score against."""
    env = make_env(env_id, **(env_kwargs or {}))
    try:
        return _bandit(env) is not None
    finally:
        env.close()


def rollout(actor_factory: Callable[[int, int, int], Actor], env_id: str, env_kwargs: Mapping[str, Any],
            n_tasks: int, seed: int) -> Trajectories:
    """Play ``n_tasks`` tasks of ``env_id`` (env ``i`` reset with seed ``seed + i``) with the actor that
    ``actor_factory(n_tasks, n_arms, horizon)`` builds; the trajectories with the tasks' means and raw rewards."""
    envs = [make_env(env_id, **env_kwargs) for _ in range(n_tasks)]
    try:
        bandits = [_bandit(env) for env in envs]
        if bandits[0] is None:
            raise ValueError(f"{env_id!r} is not a bandit env with one task per episode")
        n_arms, horizon = bandits[0].n_arms, bandits[0].horizon
        first = [env.reset(seed=seed + i) for i, env in enumerate(envs)]
        obs = np.stack([o for o, _ in first])
        means = np.stack([info["task"].means for _, info in first])
        act, observe = actor_factory(n_tasks, n_arms, horizon)
        actions = np.empty((n_tasks, horizon), dtype=np.int64)
        rewards = np.empty((n_tasks, horizon))
        for t in range(horizon):
            actions[:, t] = act(obs, t)
            for i, env in enumerate(envs):
                o, _, _, _, info = env.step(int(actions[i, t]))
                obs[i] = o
                rewards[i, t] = info["raw_reward"]
            observe(actions[:, t], rewards[:, t])
        return Trajectories(actions, rewards, means, bandits[0].family.reward_type)
    finally:
        for env in envs:
            env.close()


def sb3_actor(model: Any, deterministic: bool = False) -> Callable[[int, int, int], Actor]:
    """Actor factory for an SB3 model (recurrent or not): ``model.predict`` on the batch, memory carried across
    rounds and reset at round 0."""

    def factory(n_tasks: int, n_arms: int, horizon: int) -> Actor:
        state: list[Any] = [None]

        def act(obs: np.ndarray, t: int) -> np.ndarray:
            arms, state[0] = model.predict(obs, state=state[0], episode_start=np.full(n_tasks, t == 0),
                                           deterministic=deterministic)
            return np.asarray(arms, dtype=np.int64).reshape(n_tasks)

        return act, lambda arms, rewards: None

    return factory


def baseline_actor(name: str, params: Mapping[str, Any], seed: int) -> Callable[[int, int, int], Actor]:
    """Actor factory for a baseline of ``bandit_baselines`` acting on the sufficient statistics of what it saw.
    The oracle's ``reset`` needs the task means, which an env hides: it is not offered here."""
    if name == "oracle":
        raise ValueError("bandit baseline 'oracle' reads the task means; it cannot be run on an env")

    def factory(n_tasks: int, n_arms: int, horizon: int) -> Actor:
        policy = make_baseline(name, **params)
        policy.reset(np.zeros((n_tasks, n_arms)), horizon)  # the means are read by the oracle only
        stats = Stats.zeros(n_tasks, n_arms)
        rng = np.random.default_rng(seed)
        return (lambda obs, t: policy.select(stats, t, rng)), stats.update

    return factory


def _reference(n_arms: int, reward_type: str, horizon: int) -> str | None:
    """The §5.2 reference baseline; the exact DP only up to the horizons its tables are built for."""
    if reward_type != "bernoulli":
        return None
    return "bayes_opt_k2" if n_arms == 2 and horizon <= MAX_DP_HORIZON else "gittins_approx"


@functools.lru_cache(maxsize=8)
def _cached_reference_regret(name: str, env_id: str, kwargs_json: str, n_tasks: int, seed: int) -> float:
    traj = rollout(baseline_actor(name, {}, seed), env_id, json.loads(kwargs_json), n_tasks, seed)
    return float(cumulative_regret(traj.actions, traj.means).mean())


def _reference_regret(name: str, env_id: str, env_kwargs: Mapping[str, Any], n_tasks: int, seed: int) -> float:
    """Mean pseudo-regret of the reference baseline on the held-out tasks (cached: the stochastic and the
    deterministic evaluation of an agent share it)."""
    return _cached_reference_regret(name, env_id, json.dumps(dict(env_kwargs), sort_keys=True), n_tasks, seed)


def evaluate_bandit(actor_factory: Callable[[int, int, int], Actor], env_id: str, env_kwargs: Mapping[str, Any],
                    n_tasks: int | None = None, seed: int | None = None, long_horizon: bool = True) -> dict[str, Any]:
    """``summarize`` of the actor on the held-out tasks (default ``EVAL_TASKS`` from seed ``EVAL_SEED``) at the env's
    horizon (``"h1"``) and, with ``long_horizon``, at ``LONG_HORIZON_FACTOR`` times it (``"h6"``), with the random
    policy's and the §5.2 reference's mean regret on the same tasks (``regret_random``, ``regret_reference``) and
    ``normalized_score``."""
    n_tasks = EVAL_TASKS if n_tasks is None else int(n_tasks)
    seed = EVAL_SEED if seed is None else int(seed)
    probe = make_env(env_id, **env_kwargs)
    bandit = _bandit(probe)
    probe.close()
    if bandit is None:
        raise ValueError(f"{env_id!r} is not a bandit env with one task per episode")
    out: dict[str, Any] = {"env": env_id, "env_kwargs": dict(env_kwargs), "tasks": n_tasks, "seed": seed}
    long_ok = type(bandit) is MetaBanditEnv  # a trial's length is set by its episodes, not by ``horizon``
    for key, factor in (("h1", 1), ("h6", LONG_HORIZON_FACTOR)):
        if factor > 1 and not (long_ok and long_horizon):
            continue
        kwargs = {**env_kwargs, **({"horizon": bandit.horizon * factor} if factor > 1 else {})}
        traj = rollout(actor_factory, env_id, kwargs, n_tasks, seed)
        metrics = summarize(traj, seed=seed)
        best = traj.means.max(axis=1)
        metrics["regret_random"] = float(np.mean(traj.horizon * (best - traj.means.mean(axis=1))))
        reference = _reference(bandit.n_arms, bandit.family.reward_type, traj.horizon)
        metrics["regret_reference"] = 0.0 if reference is None else _reference_regret(reference, env_id, kwargs,
                                                                                       n_tasks, seed)
        metrics["reference"] = reference or "oracle"
        metrics["normalized_score"] = normalized_score(metrics["cum_regret_mean"], metrics["regret_random"],
                                                       metrics["regret_reference"])
        out[key] = metrics
    return out


def _final(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The flat final metrics of an ``evaluate_bandit`` result (module docstring)."""
    final: dict[str, float] = {}
    for key, suffix in (("h1", ""), ("h6", f"_{LONG_HORIZON_FACTOR}x")):
        if key not in evaluation:
            continue
        m = evaluation[key]
        final.update({
            f"return{suffix}": m["total_reward_mean"],
            f"regret{suffix}": m["cum_regret_mean"],
            f"regret_se{suffix}": m["cum_regret_se"],
            f"regret_random{suffix}": m["regret_random"],
            f"regret_reference{suffix}": m["regret_reference"],
            f"normalized_score{suffix}": m["normalized_score"],
            **{f"{k}{suffix}": m[k] for k in FINAL_KEYS},
        })
    return final


def bandit_final(model: Any, config: Mapping[str, Any], run_dir: Path) -> dict[str, float]:
    """Evaluate a trained SB3 agent of a bandit run on the held-out tasks: writes ``bandit_eval.json`` and returns
    the final metrics it adds to the run's (module docstring)."""
    env_id, env_kwargs = config["env"], config.get("env_kwargs", {})
    evaluation = evaluate_bandit(sb3_actor(model), env_id, env_kwargs)
    deterministic = evaluate_bandit(sb3_actor(model, deterministic=True), env_id, env_kwargs)
    evaluation["deterministic"] = deterministic
    atomic_write_json(run_dir / EVAL_FILE, evaluation)
    final = _final(evaluation)
    final["regret_deterministic"] = deterministic["h1"]["cum_regret_mean"]
    return final


def _baseline_spec(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    baseline = config.get("baseline")
    if not isinstance(baseline, Mapping) or not isinstance(baseline.get("name"), str):
        raise ValueError(f"agent {config.get('agent')!r}: a bandit_baseline needs 'baseline: {{name: <baseline>, "
                         f"params: {{...}}}}', got {baseline!r}")
    params = baseline.get("params") or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"agent {config.get('agent')!r}: 'baseline.params' must be a mapping, got {params!r}")
    return baseline["name"], dict(params)


def check_eval_only(config: Mapping[str, Any]) -> None:
    """Refuse an evaluation-only run that cannot work, before any run folder is written: a malformed ``baseline`` or
    ``llm`` mapping, an unknown baseline, parameter or setting, a model that is not there, or an env that is not a
    bandit with one task per episode."""
    if config["algo"] == "llm_bandit":
        from explore_bench.llm.bandit_agent import LLMBanditSettings

        LLMBanditSettings.from_config(config)
    else:
        name, params = _baseline_spec(config)
        baseline_actor(name, params, 0)(1, 2, 2)  # builds the policy: unknown names and parameters fail here
    if not is_meta_bandit(config["env"], config.get("env_kwargs")):
        raise ValueError(f"an evaluation-only bandit agent runs on a bandit env with one task per episode, not "
                         f"{config['env']!r}")


def _llm_evaluation(config: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """The held-out evaluation of an ``llm_bandit`` agent and its invalid-reply rate."""
    from explore_bench.llm.bandit_agent import LLMBanditSettings, TextBanditActor, load_policy

    settings = LLMBanditSettings.from_config(config)
    seed, env_kwargs = int(config["seed"]), config.get("env_kwargs", {})
    policy = load_policy(settings, seed)
    actors: list[TextBanditActor] = []

    def factory(n_tasks: int, n_arms: int, horizon: int) -> Actor:
        actor = TextBanditActor(policy, settings, make_env(config["env"], **{**env_kwargs, "horizon": horizon}),
                                n_tasks, seed)
        actors.append(actor)
        return actor.act, actor.observe

    try:
        evaluation = evaluate_bandit(factory, config["env"], env_kwargs, n_tasks=settings.eval_tasks,
                                     long_horizon=settings.long_horizon)
    finally:
        for actor in actors:
            actor.env.close()
    return evaluation, sum(a.n_invalid for a in actors) / max(1, sum(a.n_turns for a in actors))


def train_eval_only(config: Mapping[str, Any], run_dir: Path, attempt: dict[str, Any], **_: Any
                          ) -> dict[str, Any]:
    """An evaluation-only run: the held-out evaluation alone (module docstring); the run's part of the summary."""
    t0 = time.time()
    invalid_rate = None
    if config["algo"] == "llm_bandit":
        evaluation, invalid_rate = _llm_evaluation(config)
    else:
        name, params = _baseline_spec(config)
        evaluation = evaluate_bandit(baseline_actor(name, params, int(config["seed"])), config["env"],
                                     config.get("env_kwargs", {}))
    atomic_write_json(run_dir / EVAL_FILE, evaluation)
    final = _final(evaluation)
    if invalid_rate is not None:
        final["invalid_rate"] = invalid_rate
    row = {"episode_return": final["return"], "success": float("nan"), "coverage": float("nan"),
           "intrinsic_mean": float("nan"), "intrinsic_std": float("nan"), "fps": float("nan"),
           "tv_fraction": float("nan")}
    write_progress(run_dir / PROGRESS_FILE, [{"frames": 0, **row}, {"frames": int(config["frames"]), **row}])
    attempt["wall_time_s"] = time.time() - t0
    final["n_episodes"] = evaluation["tasks"]
    return {"frames": 0, "wall_time_s": attempt["wall_time_s"], "final": final, "n_episodes": evaluation["tasks"],
            "resumed_from": None, "git_commits": [git_commit() or UNKNOWN_COMMIT], "git_dirty": bool(git_dirty())}
