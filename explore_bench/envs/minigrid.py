"""MiniGrid hard-exploration catalogue.

Our ids are the original MiniGrid ids (exactly as registered by ``minigrid`` 3.2), so results compare
directly with the literature. Every env gets the standard wrapper stack:

    gym.make(<minigrid id>)  ->  ImgObsWrapper  ->  ExplorationStats

i.e. observations are the 7x7x3 symbolic egocentric view (``Box(0, 255, (7, 7, 3), uint8)``), the action
space is MiniGrid's ``Discrete(7)`` unchanged, truncation comes from MiniGrid's own ``max_steps``, and
``info`` carries ``"cell"`` every step and ``"episode_metrics"`` at episode end (see ``wrappers.py``).

The ``minigrid`` package (which pulls in pygame) is imported only when an env is built, so importing the
catalogue is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from explore_bench.envs.wrappers import ExplorationStats

FAMILY = "minigrid"


@dataclass(frozen=True)
class MiniGridEntry:
    """One catalogue entry: our id, the minigrid id it builds, and its task group."""

    env_id: str
    minigrid_id: str
    group: str
    family: str = FAMILY


def _entries() -> dict[str, MiniGridEntry]:
    groups: dict[str, list[str]] = {
        "DoorKey": [
            "MiniGrid-DoorKey-5x5-v0",
            "MiniGrid-DoorKey-6x6-v0",
            "MiniGrid-DoorKey-8x8-v0",
            "MiniGrid-DoorKey-16x16-v0",
        ],
        "MultiRoom": [
            "MiniGrid-MultiRoom-N2-S4-v0",
            # minigrid 3.x keeps "MiniGrid-MultiRoom-N4-S5-v0" only for backwards compatibility and it is
            # configured with 6 rooms (a historic bug); v1 is the real 4-room, size-5 task.
            "MiniGrid-MultiRoom-N4-S5-v1",
            "MiniGrid-MultiRoom-N6-v0",
        ],
        "KeyCorridor": [
            "MiniGrid-KeyCorridorS3R1-v0",
            "MiniGrid-KeyCorridorS3R2-v0",
            "MiniGrid-KeyCorridorS3R3-v0",
            "MiniGrid-KeyCorridorS4R3-v0",
            "MiniGrid-KeyCorridorS5R3-v0",
            "MiniGrid-KeyCorridorS6R3-v0",
        ],
        "ObstructedMaze": [
            "MiniGrid-ObstructedMaze-1Dl-v0",
            "MiniGrid-ObstructedMaze-1Dlh-v0",
            "MiniGrid-ObstructedMaze-1Dlhb-v0",
            "MiniGrid-ObstructedMaze-2Dl-v0",
            "MiniGrid-ObstructedMaze-2Dlh-v0",
        ],
        "FourRooms": ["MiniGrid-FourRooms-v0"],
    }
    return {
        env_id: MiniGridEntry(env_id=env_id, minigrid_id=env_id, group=group)
        for group, ids in groups.items()
        for env_id in ids
    }


#: Catalogue of the MiniGrid hard-exploration set, in a stable order.
MINIGRID_ENVS: dict[str, MiniGridEntry] = _entries()


def make_minigrid(env_id: str, **kwargs: Any) -> gym.Env:
    """Build catalogue env ``env_id`` with the standard wrappers (no seeding; see ``make_env``).

    ``kwargs`` go to the underlying MiniGrid constructor through ``gym.make`` (e.g. ``render_mode``,
    ``max_steps``).
    """
    entry = MINIGRID_ENVS.get(env_id)
    if entry is None:
        raise KeyError(f"unknown MiniGrid env id {env_id!r}; valid ids: {', '.join(MINIGRID_ENVS)}")
    import minigrid  # noqa: F401  (registers the MiniGrid-* ids with gymnasium)
    from minigrid.wrappers import ImgObsWrapper

    env = gym.make(entry.minigrid_id, **kwargs)
    env = ImgObsWrapper(env)
    return ExplorationStats(env)
