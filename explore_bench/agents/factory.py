"""Building SB3 agents from the declarative YAML in `agents/`, for any env of the catalogue and any bonus.

A resolved config is a plain dict (it goes verbatim into every run's summary):

    {"env": ..., "agent": ..., "bonus": ... | None, "seed": ..., "frames": ..., "algo": ..., "policy": ...,
     "n_envs": ..., "hyperparameters": {...}, "policy_kwargs": {...}, "intrinsic" | "reward_wrapper": {...},
     "bonus_kwargs": {...}, "env_kwargs": {...}}

PPO with a bonus is `IntrinsicPPO` (two value heads); every other algorithm gets the bonus through
`BonusRewardWrapper`. Without a bonus each is the plain SB3 algorithm.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import yaml
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from explore_bench.agents.extractors import FEATURE_EXTRACTORS
from explore_bench.agents.intrinsic_ppo import IntrinsicPPO
from explore_bench.agents.reward_wrapper import BonusRewardWrapper
from explore_bench.bonuses import bonus_class, make_bonus
from explore_bench.envs import make_env
from explore_bench.paths import available, config_dir


def _recurrent_ppo():
    from sb3_contrib import RecurrentPPO

    return RecurrentPPO


ALGORITHMS = {"ppo": lambda: PPO, "a2c": lambda: A2C, "dqn": lambda: DQN, "recurrent_ppo": _recurrent_ppo}
#: Standalone explorers (no gradient agent, no bonus): their settings are the agent file's `explorer` mapping.
EXPLORER_ALGOS = ("go_explore", "go_explore_robust")
#: Evaluation-only bandit agents (no training): a classical baseline (the agent file's `baseline` mapping names one
#: and its parameters) or an LLM policy (`llm` mapping: explore_bench.llm.bandit_agent).
EVAL_ONLY_ALGOS = ("bandit_baseline", "llm_bandit")
#: Policy-search explorers (explore_bench.agents.novelty_search; settings: the agent file's `explorer` mapping).
NOVELTY_ALGOS = ("ns", "taxons", "serene", "stax", "random_search", "objective_es")
#: Algorithms that are not SB3 agents: they take no bonus and no `n_envs`.
STANDALONE_ALGOS = (*EXPLORER_ALGOS, *EVAL_ONLY_ALGOS, *NOVELTY_ALGOS)
#: Every value an agent file's `algo` may take.
AGENT_ALGOS = (*ALGORITHMS, *STANDALONE_ALGOS)
_AGENT_KEYS = {"algo", "policy", "n_envs", "hyperparameters", "policy_kwargs", "intrinsic", "reward_wrapper", "explorer",
               "robustify", "baseline", "llm"}


class ConfigError(ValueError):
    """A malformed agent or suite file: the message names the file, the key and what was expected."""


def list_agents() -> list[str]:
    return available("agents")


def agent_config(name: str) -> dict[str, Any]:
    """The validated YAML of agent `name` from `agents/`."""
    if name not in list_agents():
        raise KeyError(f"unknown agent {name!r}; available agents: {', '.join(list_agents())}")
    path = config_dir("agents") / f"{name}.yaml"
    config = yaml.safe_load(path.read_text()) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(config).__name__}")
    unknown = set(config) - _AGENT_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; expected keys among {sorted(_AGENT_KEYS)}")
    if config.get("algo") not in AGENT_ALGOS:
        raise ConfigError(f"{path}: key 'algo' must be one of {sorted(AGENT_ALGOS)}, got {config.get('algo')!r}")
    return config


def apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `config` with dotted keys set, e.g. `{"hyperparameters.learning_rate": 1e-4}`."""
    config = copy.deepcopy(config)
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted!r}: {key!r} is not a mapping")
        node[leaf] = value
    return config


def resolve_config(
    env: str,
    agent: str,
    bonus: str | None,
    seed: int,
    frames: int,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full config of one run: agent YAML + identity + overrides (validated names)."""
    make_env(env).close()  # unknown env ids fail here, listing the valid ones
    if bonus is not None:
        bonus_class(bonus)  # unknown bonus names fail here, listing the valid ones
    base = agent_config(agent)
    if bonus is not None and base["algo"] in STANDALONE_ALGOS:
        raise ConfigError(f"agent {agent!r} is a standalone explorer or baseline ({base['algo']}), not a gradient "
                          f"agent: it takes no bonus, got {bonus!r}")
    config = {
        "env": env,
        "agent": agent,
        "bonus": bonus,
        "seed": int(seed),
        "frames": int(frames),
        "env_kwargs": {},
        "bonus_kwargs": {},
        **base,
    }
    return apply_overrides(config, overrides or {})


#: Hyperparameters SB3 accepts as a schedule; in YAML, ``{start: ..., end: ...}`` (optionally ``end_fraction``).
SCHEDULED_HYPERPARAMETERS = ("learning_rate", "clip_range")
_SCHEDULE_KEYS = {"start", "end", "end_fraction"}


def hyperparameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The SB3 keyword arguments of `hyperparameters`, where ``learning_rate: {start: 3e-4, end: 0}`` becomes SB3's
    linear schedule from `start` to `end` over the run's budget (reached at `end_fraction` of it, default 1). SB3
    counts the budget from the run's start even when a checkpoint resumes it, so a resumed run keeps its schedule."""
    kwargs = dict(config.get("hyperparameters", {}))
    for name in SCHEDULED_HYPERPARAMETERS:
        value = kwargs.get(name)
        if not isinstance(value, Mapping):
            continue
        numbers = {"end_fraction": 1.0, **value}
        if not {"start", "end"} <= set(value) <= _SCHEDULE_KEYS or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in numbers.values()
        ):
            raise ConfigError(f"hyperparameters.{name}: a schedule is a mapping of finite numbers with keys 'start', "
                              f"'end' and optionally 'end_fraction', got {dict(value)!r}")
        kwargs[name] = LinearSchedule(float(numbers["start"]), float(numbers["end"]), float(numbers["end_fraction"]))
    return kwargs


def env_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """``make_env``'s kwargs for a resolved config: its ``env_kwargs``, where ``fixed_layout: true`` becomes
    ``layout_seed`` = the run's seed (one layout for the whole run: the one the policy-search explorers and
    Go-Explore of the same seed play)."""
    kwargs = dict(config.get("env_kwargs", {}))
    if kwargs.pop("fixed_layout", False):
        kwargs["layout_seed"] = int(config["seed"])
    return kwargs


def make_agent(config: Mapping[str, Any], tensorboard_log: str | None = None, verbose: int = 0, device: str = "cpu",
               venv: VecEnv | None = None) -> BaseAlgorithm:
    """An SB3 model for a resolved config, on ``venv`` or on a new VecEnv of the config's env."""
    seed = config["seed"]
    if venv is None:
        venv = make_vec_env(
            make_env,
            n_envs=config["n_envs"],
            seed=seed,
            env_kwargs={"env_id": config["env"], **env_kwargs(config)},
            vec_env_cls=DummyVecEnv,  # MiniGrid steps are cheaper than inter-process messages
        )
    policy_kwargs = copy.deepcopy(config.get("policy_kwargs", {}))
    if "features_extractor" in policy_kwargs:  # a name in YAML, a class for SB3
        name = policy_kwargs.pop("features_extractor")
        if name not in FEATURE_EXTRACTORS:
            raise ConfigError(f"policy_kwargs.features_extractor must be one of {sorted(FEATURE_EXTRACTORS)}, got {name!r}")
        extractor = FEATURE_EXTRACTORS[name]
        # One agent config serves every family: the extractor applies where the observations fit it
        # (MiniGrid's symbolic views); elsewhere the policy keeps SB3's default extractor.
        if extractor.supports(venv.observation_space):
            policy_kwargs["features_extractor_class"] = extractor
            if extractor.needs_raw_images:
                policy_kwargs.setdefault("normalize_images", False)
    common = dict(
        policy_kwargs=policy_kwargs,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        **hyperparameters(config),
    )
    bonus = config.get("bonus")
    if config["algo"] == "ppo" and bonus is not None:
        return IntrinsicPPO(
            config["policy"], venv, bonus=bonus, bonus_kwargs=config.get("bonus_kwargs", {}), **config.get("intrinsic", {}), **common
        )
    if bonus is not None:
        bonus_module = make_bonus(bonus, venv.observation_space, venv.action_space, device=device, seed=seed + 1, **config.get("bonus_kwargs", {}))
        venv = BonusRewardWrapper(venv, bonus_module, **config.get("reward_wrapper", {}))
    return ALGORITHMS[config["algo"]]()(config["policy"], venv, **common)


def bonus_wrapper(model: BaseAlgorithm) -> BonusRewardWrapper | None:
    """The reward wrapper of a single-head agent, if it has one."""
    env = model.get_env()
    while env is not None:
        if isinstance(env, BonusRewardWrapper):
            return env
        env = getattr(env, "venv", None)
    return None


def intrinsic_stats(model: BaseAlgorithm) -> dict[str, float]:
    """The bonus statistics of the last rollout / update window (empty without a bonus)."""
    if isinstance(model, IntrinsicPPO):
        return model.intrinsic_stats
    wrapper = bonus_wrapper(model)
    return wrapper.intrinsic_stats if wrapper is not None else {}


def save_agent(model: BaseAlgorithm, path: Path) -> None:
    """Save the model (IntrinsicPPO includes its bonus); a reward wrapper's bonus goes beside it."""
    path = Path(path)
    model.save(path)
    wrapper = bonus_wrapper(model)
    if wrapper is not None:
        torch.save(wrapper.state_dict(), path.with_suffix(".bonus.pt"))


def _numpy_safe_globals() -> list:
    """What unpickling plain numpy arrays and scalars needs (their reconstructors and dtypes: data, no code)."""
    core = getattr(np, "_core", None) or np.core
    dtypes = [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
                                          np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def load_state_safely(path: str | os.PathLike, device: str = "cpu") -> Any:
    """``torch.load(weights_only=True)`` of a bonus state (tensors, numbers, plain containers, and the numpy
    arrays of the reward normaliser, allowed explicitly): no pickled code can run from a tampered file. Every
    registered bonus's wrapper state loads this way (tests/test_reliability.py resumes one)."""
    allowed = _numpy_safe_globals()
    for name in torch.serialization.get_unsafe_globals_in_checkpoint(path):
        # a bonus may keep a data container of its own in its state (byol_explore's ``Sequence`` dataclass):
        # allowed only if it is a dataclass or a tuple subclass (NamedTuple) defined in explore_bench, i.e. data
        # rebuilt without calling user code; any other global is refused and the set counts as unloadable.
        module, _, qualname = name.rpartition(".")
        if not module.startswith("explore_bench."):
            continue
        try:
            obj = getattr(importlib.import_module(module), qualname)
        except (ImportError, AttributeError):
            continue
        if isinstance(obj, type) and (dataclasses.is_dataclass(obj) or issubclass(obj, tuple)):
            allowed.append(obj)
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location=device, weights_only=True)


def load_agent(config: Mapping[str, Any], path: Path, tensorboard_log: str | None = None, device: str = "cpu") -> BaseAlgorithm:
    """Rebuild the agent of `config` and restore the state saved by `save_agent` at `path`."""
    path = Path(path)
    fresh = make_agent(config, tensorboard_log=tensorboard_log, device=device)
    model = type(fresh).load(path, env=fresh.get_env(), device=device, tensorboard_log=tensorboard_log)
    wrapper = bonus_wrapper(model)
    if wrapper is not None:
        wrapper.load_state_dict(load_state_safely(path.with_suffix(".bonus.pt"), device))
    return model
