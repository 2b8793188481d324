"""Environments of the benchmark: catalogue, factory and gymnasium registration.

Public API::

    from explore_bench.envs import list_envs, make_env, env_family

    list_envs()                                   # all ids, e.g. "MiniGrid-DoorKey-8x8-v0"
    env = make_env("MiniGrid-DoorKey-8x8-v0", seed=0)
    obs, info = env.reset()                       # first reset uses seed=0, later ones continue its RNG
    env_family("MiniGrid-DoorKey-8x8-v0")         # "minigrid"
    env_family("TVGrid-Remote-v0")                # "tvgrid"
    env_family("BanditHard-v0")                   # "bandit"
    frames_per_step("Atari-MontezumaRevenge-v0")  # 4: emulator frames per agent step (1 outside Atari)

Families: ``minigrid`` (the MiniGrid hard-exploration set, plus ``MiniGrid-DoorKey-8x8-NoisyTV-v0``, DoorKey-8x8
with a remote noisy TV on a wall of the start room) and ``tvgrid`` (the noisy-TV gridworld ``TVGrid-<Mode>-v0``
of ``explore_bench.envs.tvgrid``, flat one-hot observations, no reward: an exploration-only world) and ``atari``
(``Atari-<Game>-v0``: the hard-exploration games under the Machado et al. 2018 protocol, ``explore_bench.envs.atari``;
needs the ``atari`` extra, ale-py, to build) and ``bandit`` (bandit meta-RL, ``explore_bench.envs.bandits``: one
episode = one task of H pulls, ``Bandit-v0``, ``BanditHard-v0``, ``BanditEasy-v0``, ``BanditGaussian-v0``; a
multi-episode bandit trial as one episode, ``BanditTrial-v0``; the gridworld meta-task ``GridTrial-v0``. These envs
report their own ``episode_metrics``: return, success (None for bandits), coverage, regret, ...) and ``pointmaze``
(``PointMazeDeceptive-v0``, the deceptive 2D point maze of the policy-search explorers, ``explore_bench.envs.point_maze``;
``PointMazeDeceptive2-v0`` adds a second reward area).

Every id is also registered with gymnasium under the ``explore_bench`` namespace on import of this package::

    gym.make("explore_bench/MiniGrid-DoorKey-8x8-v0")

Both routes give the same wrapped env (see ``explore_bench.envs.minigrid``). With Stable-Baselines3::

    make_vec_env("explore_bench/MiniGrid-DoorKey-8x8-v0", n_envs=8, seed=0)      # after importing this package
    make_vec_env(make_env, n_envs=8, seed=0, env_kwargs={"env_id": "MiniGrid-DoorKey-8x8-v0"})

(``make_vec_env`` seeds each sub-env with ``seed + rank`` itself; leave ``make_env``'s ``seed`` unset there.)

Importing this package imports neither stable_baselines3 nor torch (nor minigrid or ale-py, until an env is built).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from explore_bench.envs.atari import ATARI_ENVS, FRAMES_PER_STEP, make_atari
from explore_bench.envs.atari import FAMILY as _ATARI
from explore_bench.envs.bandits import BANDIT_ENVS, make_bandit
from explore_bench.envs.bandits import FAMILY as _BANDIT
from explore_bench.envs.minigrid import FAMILY as _MINIGRID
from explore_bench.envs.minigrid import MINIGRID_ENVS, make_minigrid
from explore_bench.envs.point_maze import FAMILY as _POINTMAZE
from explore_bench.envs.point_maze import POINT_MAZE_ENVS, make_point_maze
from explore_bench.envs.tvgrid import FAMILY as _TVGRID
from explore_bench.envs.tvgrid import (
    NOISY_MINIGRID_ENVS,
    TVGRID_ENVS,
    NoisyTVObsWrapper,
    TVGridEnv,
    make_noisy_minigrid,
    make_tvgrid,
    record_tvgrid,
)
from explore_bench.envs.wrappers import ExplorationStats, FixedLayout, SeedOnFirstReset

__all__ = [
    "NAMESPACE",
    "ExplorationStats",
    "FixedLayout",
    "NoisyTVObsWrapper",
    "SeedOnFirstReset",
    "TVGridEnv",
    "env_family",
    "frames_per_step",
    "list_envs",
    "make_env",
    "record_tvgrid",
    "register_envs",
]

#: gymnasium namespace of our registered ids: ``gym.make(f"{NAMESPACE}/{env_id}")``.
NAMESPACE = "explore_bench"

# id -> (family, factory(env_id, **kwargs) -> wrapped env). Other families add their catalogues here.
_CATALOGUE: dict[str, tuple[str, Any]] = {env_id: (_MINIGRID, make_minigrid) for env_id in MINIGRID_ENVS}
_CATALOGUE.update({env_id: (_MINIGRID, make_noisy_minigrid) for env_id in NOISY_MINIGRID_ENVS})
_CATALOGUE.update({env_id: (_TVGRID, make_tvgrid) for env_id in TVGRID_ENVS})
_CATALOGUE.update({env_id: (_ATARI, make_atari) for env_id in ATARI_ENVS})
_CATALOGUE.update({env_id: (_BANDIT, make_bandit) for env_id in BANDIT_ENVS})
_CATALOGUE.update({env_id: (_POINTMAZE, make_point_maze) for env_id in POINT_MAZE_ENVS})


def list_envs(family: str | None = None) -> list[str]:
    """All catalogue ids (optionally only those of ``family``), in catalogue order."""
    return [k for k, (fam, _) in _CATALOGUE.items() if family is None or fam == family]


def _lookup(env_id: str) -> tuple[str, Any]:
    key = env_id[len(NAMESPACE) + 1 :] if env_id.startswith(NAMESPACE + "/") else env_id
    try:
        return _CATALOGUE[key]
    except KeyError:
        raise KeyError(f"unknown env id {env_id!r}; valid ids: {', '.join(_CATALOGUE)}") from None


def env_family(env_id: str) -> str:
    """Family of ``env_id`` (``"minigrid"``, ``"tvgrid"``, ``"atari"``, ``"bandit"``). Accepts plain or
    ``explore_bench/``-namespaced ids."""
    return _lookup(env_id)[0]


def frames_per_step(env_id: str) -> int:
    """Emulator frames per agent step of ``env_id``: the unit of frame budgets (4 for Atari's frame skip, else 1)."""
    return FRAMES_PER_STEP if env_family(env_id) == _ATARI else 1


def make_env(env_id: str, seed: int | None = None, layout_seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Build the standard wrapped env ``env_id`` (plain or ``explore_bench/``-namespaced id).

    ``seed``: if given, the first ``reset()`` called without an explicit seed uses it (and the action space
    is seeded with it); later resets continue that RNG, the standard gymnasium pattern. So
    ``make_env(i, seed=s).reset()`` equals ``make_env(i).reset(seed=s)``. An explicit ``reset(seed=...)``
    always wins. ``layout_seed``: if given, every reset uses it instead (``FixedLayout``: one layout, start and
    goal for the whole run; a run config asks for it with ``env_kwargs: {fixed_layout: true}``, which
    ``explore_bench.agents.factory.env_kwargs`` turns into the run's seed). ``kwargs`` go to the underlying env
    constructor (e.g. ``render_mode``, ``max_steps``).

    Raises ``KeyError`` (listing the valid ids) for an unknown id.
    """
    _, factory = _lookup(env_id)
    key = env_id[len(NAMESPACE) + 1 :] if env_id.startswith(NAMESPACE + "/") else env_id
    env = factory(key, **kwargs)
    if layout_seed is not None:
        env = FixedLayout(env, layout_seed)
    if seed is not None:
        env = SeedOnFirstReset(env, seed)
    return env


def register_envs() -> None:
    """Register every catalogue id as ``explore_bench/<id>`` with gymnasium. Idempotent."""
    for env_id in _CATALOGUE:
        ns_id = f"{NAMESPACE}/{env_id}"
        if ns_id not in gym.registry:
            # No max_episode_steps: MiniGrid and TVGrid truncate at their own max_steps, Atari at its frame cap, the
            # bandit envs terminate after their horizon.
            # make_env's inner gym.make already applies the env checker and order enforcing; don't stack a second
            # copy on top.
            gym.register(
                id=ns_id,
                entry_point="explore_bench.envs:make_env",
                kwargs={"env_id": env_id},
                order_enforce=False,
                disable_env_checker=True,
            )


register_envs()
