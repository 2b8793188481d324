"""The run folder's `toponav_map.png`: the map of a run's `toponav` bonus over its MiniGrid layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from stable_baselines3.common.base_class import BaseAlgorithm

from explore_bench.agents.factory import bonus_wrapper, env_kwargs
from explore_bench.bonuses.toponav import TopoNav
from explore_bench.envs import env_family, make_env

MAP_FILE = "toponav_map.png"


def toponav_bonus(model: BaseAlgorithm) -> TopoNav | None:
    """The `toponav` bonus of an agent (IntrinsicPPO's own, a reward wrapper's, or a component of a mixture)."""
    bonus = getattr(model, "bonus", None)
    if bonus is None:
        wrapper = bonus_wrapper(model)
        bonus = None if wrapper is None else wrapper.bonus
    candidates = [bonus, *getattr(bonus, "components", {}).values()]
    return next((b for b in candidates if isinstance(b, TopoNav)), None)


def write_toponav_map(model: BaseAlgorithm, config: Mapping[str, Any], run_dir: str | Path) -> Path | None:
    """Write `run_dir/toponav_map.png` if the run's agent has a `toponav` bonus whose map is over MiniGrid cells.

    The layout is that of the run's first episode in env 0 (`make_env(env, seed)`); in envs that draw a new layout
    every episode (MultiRoom) the nodes, gathered over many layouts, do not all fit that one.
    """
    bonus = toponav_bonus(model)
    if bonus is None or bonus.topomap is None or bonus.mode != "cell" or env_family(config["env"]) != "minigrid":
        return None
    from explore_bench.leaderboard.maps import save_topomap  # matplotlib loads only when a map is drawn

    env = make_env(config["env"], seed=config["seed"], **env_kwargs(config))
    try:
        env.reset()
        title = f"{config['env']} seed {config['seed']} (layout of env 0's first episode)"
        base = env.unwrapped
        return save_topomap(bonus.topomap, base.grid, Path(run_dir) / MAP_FILE, title, tuple(base.agent_pos))
    finally:
        env.close()
