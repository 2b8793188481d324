"""The deceptive 2D point maze of shared/specs/novelty_search.md §8, vectorised in numpy.

A point starts at (-0.9, -0.9) in the arena [-1, 1]^2 and moves ``pos <- clip(pos + 0.05 * a, -1, 1)`` for
``a`` in [-1, 1]^2; a move whose segment touches a wall is cancelled (the point stays). Two walls::

    (-1, 0.3)-(0.7, 0.3)     the long wall; the gap is x in (0.7, 1]
    (0.2, -1)-(0.2, -0.2)    a short wall rising from the bottom

An episode is 150 steps; the reward comes at the end, ``(r - d) / r`` when the final position lies within
``r = 0.15`` of the goal (-0.8, 0.8), 0 elsewhere. The goal is straight above the start behind the long wall, so
going "towards the goal" ends under the wall at about (-0.8, 0.3): the maze is deceptive. The path goes right,
through the gap, then back left.

``PointMazeDeceptive-v0`` has that one reward area; ``PointMazeDeceptive2-v0`` adds a second, (0.8, -0.8) with
radius 0.1 (spec §8, multi-area discovery).

Two front ends share the dynamics of ``MazeLayout``:

- ``MazeLayout.step`` / ``reward`` / ``cells`` / ``render`` act on arrays of positions ``(N, 2)``: the policy-search
  explorers roll out a whole population at once (``explore_bench.agents.novelty_domains.PointMazeDomain``);
- ``PointMazeEnv`` is a single gymnasium env (observation (x, y), action Box(-1, 1, (2,))) for the SB3 agents, with
  the catalogue's ``info["cell"]`` (the 50x50 ground-truth cell, every step) and ``info["episode_metrics"]``
  (return, length, success = reward > 0, coverage = distinct cells of the episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

FAMILY = "pointmaze"

#: The long wall and the short wall of spec §8, as segments ((x0, y0), (x1, y1)).
WALLS = (((-1.0, 0.3), (0.7, 0.3)), ((0.2, -1.0), (0.2, -0.2)))
#: Reward areas (centre x, centre y, radius).
GOAL = (-0.8, 0.8, 0.15)
SECOND_AREA = (0.8, -0.8, 0.1)


@dataclass(frozen=True)
class MazeLayout:
    """Walls, reward areas and dynamics of a point maze; every method takes arrays of positions ``(N, 2)``."""

    walls: tuple = WALLS
    areas: tuple = (GOAL,)
    start: tuple[float, float] = (-0.9, -0.9)
    step_size: float = 0.05
    episode_len: int = 150
    grid: int = 50  # ground-truth coverage grid: grid x grid cells over the arena

    def __post_init__(self) -> None:
        walls = np.asarray(self.walls, dtype=np.float64).reshape(-1, 2, 2)
        a, b = walls[:, 0], walls[:, 1]
        u = b - a
        # The orientation tests of `crosses` as matrix products (the cost of a rollout is numpy calls, not flops):
        # side(x) = u x (x - a) = x @ normal - offset;  (q - p) x (e - p) = (q - p) @ rot(e) - q x p for an end e.
        consts = {
            "_walls": walls,
            "_normal": np.stack([-u[:, 1], u[:, 0]]),  # (2, W)
            "_offset": u[:, 0] * a[:, 1] - u[:, 1] * a[:, 0],  # (W,)
            "_rot_a": np.stack([a[:, 1], -a[:, 0]]),  # (2, W)
            "_rot_b": np.stack([b[:, 1], -b[:, 0]]),
            "_lo": np.minimum(a, b)[None],  # (1, W, 2) bounding boxes
            "_hi": np.maximum(a, b)[None],
        }
        for key, value in consts.items():
            object.__setattr__(self, key, value)

    def step(self, pos: np.ndarray, action: np.ndarray, clip_action: bool = True) -> np.ndarray:
        """Positions after one step of every point: clipped moves, cancelled where they touch a wall
        (``clip_action=False``: the actions are known to lie in [-1, 1] already)."""
        if clip_action:
            action = np.minimum(np.maximum(action, -1.0), 1.0)
        # np.minimum/np.maximum: np.clip's python wrapper costs more than the arithmetic on a population
        target = np.minimum(np.maximum(pos + self.step_size * action, -1.0), 1.0)
        return np.where(self.crosses(pos, target)[:, None], pos, target)

    def crosses(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: the segment p->q touches some wall (touching counts, so a point never lands on a wall)."""
        v = q - p
        # p and q on both sides of the wall's line (or on it)
        straddle_wall = (p @ self._normal - self._offset) * (q @ self._normal - self._offset) <= 0
        # the wall's two ends on both sides of the move's line (or on it)
        q_x_p = (q[:, 0] * p[:, 1] - q[:, 1] * p[:, 0])[:, None]
        straddle_move = (v @ self._rot_a - q_x_p) * (v @ self._rot_b - q_x_p) <= 0
        # bounding boxes must overlap: two collinear segments pass both tests above even when far apart
        overlap = ((np.minimum(p, q)[:, None] <= self._hi) & (self._lo <= np.maximum(p, q)[:, None])).all(-1)
        return (straddle_wall & straddle_move & overlap).any(1)

    def reward(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(reward, area)``: ``(r - d) / r`` within an area (the best one), else 0; area index or -1."""
        centres = np.asarray([a[:2] for a in self.areas], dtype=np.float64)
        radii = np.asarray([a[2] for a in self.areas], dtype=np.float64)
        d = np.linalg.norm(pos[:, None, :] - centres[None], axis=-1)  # (N, A)
        graded = np.where(d <= radii, (radii - d) / radii, 0.0)
        best = graded.argmax(1)
        reward = graded[np.arange(len(pos)), best]
        return reward, np.where(reward > 0, best, -1)

    def goal_distance(self, pos: np.ndarray) -> np.ndarray:
        """Distance to the nearest reward-area centre: the dense fitness of the objective-driven ES."""
        centres = np.asarray([a[:2] for a in self.areas], dtype=np.float64)
        return np.linalg.norm(pos[:, None, :] - centres[None], axis=-1).min(1)

    def cells(self, pos: np.ndarray) -> np.ndarray:
        """``(N, 2)`` int64 ground-truth cells (column, row) of a ``grid x grid`` partition of [-1, 1]^2."""
        return np.clip(((pos + 1.0) * 0.5 * self.grid).astype(np.int64), 0, self.grid - 1)

    def render(self, pos: np.ndarray, size: int = 32, blob: float | None = None) -> np.ndarray:
        """``(N, size, size)`` uint8 grey images of final states (spec §8 STAX-lite): the walls at 128, a Gaussian
        blob at each point; row 0 is the top (y = 1). The blob's std is ``blob`` pixels, by default 2.5 at 32x32
        (scaled with ``size``): with 1.5 px the autoencoder of TAXONS/STAX stayed on the mean image for five
        retrainings (``explore_bench.agents.novelty_ae``), with 2.5 px it left it at the third."""
        blob = 2.5 * size / 32 if blob is None else blob
        centres = (pos + 1.0) * 0.5 * size - 0.5  # pixel coordinates (x, y up)
        x = np.arange(size, dtype=np.float64)
        gx = np.exp(-((x[None, :] - centres[:, :1]) ** 2) / (2 * blob**2))  # (N, size) over columns
        gy = np.exp(-((x[None, :] - centres[:, 1:]) ** 2) / (2 * blob**2))  # (N, size) over rows, bottom up
        image = gy[:, ::-1, None] * gx[:, None, :]  # (N, row from top, column)
        return np.maximum(np.rint(image * 255.0), self.wall_image(size)[None]).astype(np.uint8)

    def wall_image(self, size: int) -> np.ndarray:
        """``(size, size)`` float image with the walls drawn at 128."""
        image = np.zeros((size, size))
        for (x0, y0), (x1, y1) in self._walls:
            n = 4 * size
            xs = np.clip(((np.linspace(x0, x1, n) + 1.0) * 0.5 * size).astype(int), 0, size - 1)
            ys = np.clip(((np.linspace(y0, y1, n) + 1.0) * 0.5 * size).astype(int), 0, size - 1)
            image[size - 1 - ys, xs] = 128.0
        return image

    def rollout(self, policy, n: int, clip_action: bool = True) -> np.ndarray:
        """Final positions ``(n, 2)`` of ``n`` points driven by ``policy(obs (n, 2)) -> actions (n, 2)`` for a
        whole episode (the observation is the position)."""
        pos = np.tile(np.asarray(self.start, dtype=np.float64), (n, 1))
        for _ in range(self.episode_len):
            pos = self.step(pos, policy(pos), clip_action)
        return pos


#: Catalogue: id -> layout.
POINT_MAZE_ENVS: dict[str, MazeLayout] = {
    "PointMazeDeceptive-v0": MazeLayout(),
    "PointMazeDeceptive2-v0": MazeLayout(areas=(GOAL, SECOND_AREA)),
}


def maze_layout(env_id: str) -> MazeLayout:
    """The layout of catalogue id ``env_id``; a ``KeyError`` lists the valid ids."""
    try:
        return POINT_MAZE_ENVS[env_id]
    except KeyError:
        raise KeyError(f"unknown point-maze id {env_id!r}; valid ids: {', '.join(POINT_MAZE_ENVS)}") from None


class PointMazeEnv(gym.Env):
    """One point in a ``MazeLayout``: observation (x, y), action in [-1, 1]^2, reward at the last step only.

    The episode ends (``terminated``) after ``episode_len`` steps: the task is defined on the final position, so
    there is nothing to bootstrap beyond it. ``render()`` gives the ``render_size`` grey image of spec §8 as RGB.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, layout: MazeLayout | None = None, render_mode: str | None = None, render_size: int = 32) -> None:
        self.layout = layout or MazeLayout()
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.pos = np.asarray(self.layout.start, dtype=np.float64)
        self.t = 0
        self._visited: set[tuple[int, int]] = set()

    def _cell(self) -> np.ndarray:
        cell = self.layout.cells(self.pos[None])[0]
        self._visited.add((int(cell[0]), int(cell[1])))
        return cell

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.pos = np.asarray(self.layout.start, dtype=np.float64)
        self.t = 0
        self._visited = set()
        return self.pos.astype(np.float32), {"cell": self._cell()}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.isfinite(action).all():
            raise ValueError(f"PointMazeEnv: expected a finite action in [-1, 1]^2, got {action}")
        self.pos = self.layout.step(self.pos[None], action[None])[0]
        self.t += 1
        info: dict[str, Any] = {"cell": self._cell()}
        terminated = self.t >= self.layout.episode_len
        reward = 0.0
        if terminated:
            reward = float(self.layout.reward(self.pos[None])[0][0])
            info["episode_metrics"] = {"return": reward, "length": self.t, "success": float(reward > 0),
                                       "coverage": len(self._visited)}
        return self.pos.astype(np.float32), reward, terminated, False, info

    def render(self):
        grey = self.layout.render(self.pos[None], self.render_size)[0]
        return np.repeat(grey[:, :, None], 3, axis=2)


def make_point_maze(env_id: str, **kwargs: Any) -> gym.Env:
    """Catalogue env ``env_id`` (``kwargs``: ``render_mode``, ``render_size``)."""
    return PointMazeEnv(maze_layout(env_id), **kwargs)
