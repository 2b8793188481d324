"""A scripted TopoNav explorer: pick a subgoal node on the topological map, walk there along the map's shortest
path, then explore at random from it. Spec: shared/specs/toponav.md §2 (hierarchical mode), §5.5-§5.8, §9.9.

TopoNav's meta-controller / sub-controller pair (h-DQN) is scripted here, so the map's own merit can be measured
with no learning:

- the meta-controller is `TopoMap.assign_subgoal`: the node of highest score
  `w_nov / sqrt(1 + visits) + w_front F + w_goal G - w_cost c` (spec §5.6);
- the sub-controller walks the map's Dijkstra path, node after node, each leg by breadth-first search over the
  cells already visited (they are known to be passable), then explores `burst` steps at random with action repeat
  `repeat_prob`, and asks for the next subgoal;
- objectives keep the map's priority order (`topomap.RULES`, HODAT-style): a move into a cell where a safety event
  happened is never chosen (1), a planned path is followed (2), once extrinsic reward was seen subgoals become
  goal-directed (3, in the map's selection), and random exploration comes last (4). When the map closes a subgoal
  (reached, deadline passed, safety event, goal found) the walk ends and exploration starts.

The explorer moves in cells (east, south, west, north: MiniGrid's direction order). `GridWorld` is a plain 4-move
walk over a free-cell layout (the world of spec §9's behavioural tests); `MiniGridWalker` performs the moves in a
MiniGrid env with its primitive actions (turn, open a closed door, forward).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import gymnasium as gym
import numpy as np

from explore_bench.bonuses.topomap import MINIGRID_DEFAULTS, TopoConfig, TopoMap, grid_embedding

__all__ = ["MOVES", "GridWorld", "MiniGridWalker", "TopoNavExplorer", "WalkStep", "Walker", "minigrid_layout"]

#: (dx, dy) of the moves east, south, west, north: MiniGrid's `DIR_TO_VEC` order, y pointing down
MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))
Cell = tuple[int, int]


@dataclass
class WalkStep:
    """The outcome of one move: the cell reached, the extrinsic reward, the episode end, a safety event."""

    cell: Cell
    reward: float
    done: bool
    unsafe: bool


class Walker(Protocol):
    """A world the explorer moves in, one cell move at a time."""

    def reset(self) -> Cell: ...

    def step(self, move: int) -> WalkStep: ...


def minigrid_layout(grid: Any) -> dict[str, np.ndarray]:
    """Bool `(width, height)` masks indexed `[x, y]` of a MiniGrid `Grid`: `free` (cells an agent can stand on, doors
    included: opening one is part of the move), `hazard` (lava) and `goal`."""
    shape = (grid.width, grid.height)
    masks = {name: np.zeros(shape, bool) for name in ("free", "hazard", "goal")}
    for x in range(grid.width):
        for y in range(grid.height):
            obj = grid.get(x, y)
            kind = None if obj is None else obj.type
            masks["free"][x, y] = kind in (None, "floor", "goal", "lava", "door")
            masks["hazard"][x, y] = kind == "lava"
            masks["goal"][x, y] = kind == "goal"
    return masks


class GridWorld:
    """A 4-move walk over the free cells of a layout: a move into a non-free cell stays put; entering a `goal` cell
    pays 1 and ends the episode, entering a `hazard` cell is a safety event and ends it; `max_steps` truncates.

    `free`, `hazard`, `goal`: bool `(width, height)` masks indexed `[x, y]`.
    """

    def __init__(self, free: np.ndarray, start: Cell, hazard: np.ndarray | None = None, goal: np.ndarray | None = None,
                 max_steps: int | None = None) -> None:
        self.free = np.asarray(free, bool)
        if self.free.ndim != 2:
            raise ValueError(f"GridWorld: expected a 2-D free-cell mask, got shape {self.free.shape}")
        self.hazard = np.zeros_like(self.free) if hazard is None else np.asarray(hazard, bool)
        self.goal = np.zeros_like(self.free) if goal is None else np.asarray(goal, bool)
        if self.hazard.shape != self.free.shape or self.goal.shape != self.free.shape:
            raise ValueError(f"GridWorld: hazard and goal masks must have the free mask's shape {self.free.shape}, got "
                             f"{self.hazard.shape} and {self.goal.shape}")
        self.start = (int(start[0]), int(start[1]))
        if not self._inside(self.start) or not self.free[self.start]:
            raise ValueError(f"GridWorld: start cell {self.start} is not a free cell of the {self.free.shape} layout")
        self.max_steps = max_steps
        self.cell = self.start
        self.t = 0

    @classmethod
    def from_minigrid(cls, env: gym.Env, with_goal: bool = True, max_steps: int | None = None) -> "GridWorld":
        """The cell world of a reset MiniGrid env's layout, starting at the agent's cell (`with_goal=False`: the goal
        is a plain floor cell, for reward-free exploration)."""
        base = env.unwrapped
        masks = minigrid_layout(base.grid)
        goal = masks["goal"] if with_goal else None
        return cls(masks["free"], tuple(base.agent_pos), masks["hazard"], goal, max_steps)

    def _inside(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.free.shape[0] and 0 <= cell[1] < self.free.shape[1]

    def reset(self) -> Cell:
        self.cell, self.t = self.start, 0
        return self.cell

    def step(self, move: int) -> WalkStep:
        dx, dy = MOVES[move]
        target = (self.cell[0] + dx, self.cell[1] + dy)
        if self._inside(target) and self.free[target]:
            self.cell = target
        self.t += 1
        reward = float(self.goal[self.cell])
        unsafe = bool(self.hazard[self.cell])
        done = reward > 0 or unsafe or (self.max_steps is not None and self.t >= self.max_steps)
        return WalkStep(self.cell, reward, done, unsafe)


class MiniGridWalker:
    """Cell moves in a MiniGrid env (any wrapper stack over a `MiniGridEnv`) with its primitive actions: turn to face
    the move (left or right), toggle a closed door in the way, then forward. `env_steps` counts the primitive steps.
    A safety event is an episode that ended with the agent on lava. Every episode is reset with `seed`, so envs that
    draw a new layout per episode (MultiRoom) replay one layout: the explorer's memory of cells is of one world."""

    LEFT, RIGHT, FORWARD, TOGGLE = 0, 1, 2, 5

    def __init__(self, env: gym.Env, seed: int = 0) -> None:
        if not hasattr(env.unwrapped, "agent_dir"):
            raise TypeError(f"MiniGridWalker needs a MiniGrid env (unwrapped.agent_dir), got "
                            f"{type(env.unwrapped).__name__}")
        self.env = env
        self.seed = int(seed)
        self.env_steps = 0

    def reset(self) -> Cell:
        self.env.reset(seed=self.seed)
        return tuple(int(v) for v in self.env.unwrapped.agent_pos)

    def step(self, move: int) -> WalkStep:
        base = self.env.unwrapped
        turns = (move - int(base.agent_dir)) % 4
        actions = [self.RIGHT] * turns if turns < 3 else [self.LEFT]
        front = (int(base.agent_pos[0]) + MOVES[move][0], int(base.agent_pos[1]) + MOVES[move][1])
        obj = base.grid.get(*front)
        if obj is not None and obj.type == "door" and not obj.is_open:
            actions.append(self.TOGGLE)
        actions.append(self.FORWARD)
        reward, done = 0.0, False
        for action in actions:
            _, r, terminated, truncated, _ = self.env.step(action)
            self.env_steps += 1
            reward += float(r)
            done = terminated or truncated
            if done:
                break
        cell = (int(base.agent_pos[0]), int(base.agent_pos[1]))
        here = base.grid.get(*cell)
        return WalkStep(cell, reward, done, bool(done and here is not None and here.type == "lava"))


class TopoNavExplorer:
    """Subgoal exploration on a `TopoMap` of agent cells (module docstring).

    Args:
        walker: the world (`GridWorld`, `MiniGridWalker`, or any `Walker`).
        config: map settings (spec §7's MiniGrid column by default); `auto_subgoal` is turned off, the explorer
            asks for subgoals itself.
        burst: random steps after each subgoal (and when no subgoal is reachable).
        repeat_prob: probability that a random step repeats the previous move.
        seed: seeds the random steps and the map's subgoal draws.
    """

    def __init__(self, walker: Walker, config: TopoConfig = MINIGRID_DEFAULTS, burst: int = 30,
                 repeat_prob: float = 0.8, seed: int = 0) -> None:
        if burst < 1 or not 0.0 <= repeat_prob <= 1.0:
            raise ValueError(f"TopoNavExplorer: expected burst >= 1 and 0 <= repeat_prob <= 1, got {burst}, "
                             f"{repeat_prob}")
        if config.n_context:
            raise ValueError(f"TopoNavExplorer: the map is over (x, y) cells, so n_context must be 0, got "
                             f"{config.n_context}")
        self.walker = walker
        self.map = TopoMap(2, dataclasses.replace(config, auto_subgoal=False), seed=seed)
        self.burst = int(burst)
        self.repeat_prob = float(repeat_prob)
        self.rng = np.random.default_rng(seed)
        self.visited: set[Cell] = set()
        self.hazards: set[Cell] = set()
        self.steps = 0
        self.subgoal: int | None = None
        self._legs: list[Cell] = []  # the cells of the path's nodes still to reach
        self._moves: deque[int] = deque()  # the planned moves of the current leg
        self._burst_left = 0
        self._last_move = int(self.rng.integers(4))
        self._begin(walker.reset())

    # ------------------------------------------------------------------------------------------- running
    def run(self, max_steps: int, stop: Callable[["TopoNavExplorer"], bool] | None = None) -> int:
        """Move until `max_steps` moves in all or until `stop(self)` is true; returns the moves taken so far."""
        while self.steps < max_steps and not (stop is not None and stop(self)):
            self.step()
        return self.steps

    def step(self) -> WalkStep:
        """One move: the planned one while walking to a subgoal, a random one while exploring."""
        if not self._moves and self._legs:
            self._plan_leg()
        move = self._moves.popleft() if self._moves else self._random_move()
        expected = self._after(self.cell, move)
        out = self.walker.step(move)
        self.steps += 1
        self.cell = out.cell
        self.visited.add(out.cell)
        if out.unsafe:
            self.hazards.add(out.cell)
        result = self.map.step(0, grid_embedding(out.cell), out.reward, done=out.done, unsafe=out.unsafe)
        if out.done:
            self._begin(self.walker.reset())
        elif self.subgoal is not None and result.subgoal != self.subgoal:  # the map closed it: explore from here
            self._explore()
        elif self._legs and out.cell == self._legs[0]:
            self._legs.pop(0)
        elif out.cell != expected:  # the move did not go as planned (a wall, sticky actions): plan the leg again
            self._moves.clear()
        if self.subgoal is None and self._burst_left == 0:
            self._choose_subgoal()
        return out

    # ----------------------------------------------------------------------------------------- internals
    def _begin(self, cell: Cell) -> None:
        """A new episode at `cell`: localise it, and head for a subgoal at once (return, then explore)."""
        self.cell = cell
        self.visited.add(cell)
        self.map.begin_episode(0, grid_embedding(cell))
        self._explore(burst=0)
        self._choose_subgoal()

    def _explore(self, burst: int | None = None) -> None:
        self.subgoal, self._legs, self._burst_left = None, [], self.burst if burst is None else burst
        self._moves.clear()

    def _choose_subgoal(self) -> None:
        """Ask the map for a subgoal. Nodes its graph cannot reach yet (their first crossing took more than `k_edge`
        steps) are costed by the BFS distance over visited cells, and walked to directly."""
        self.subgoal = self.map.assign_subgoal(0, fallback_costs=self._walk_costs)
        if self.subgoal is None:  # nothing reachable on the map yet
            self._explore()
            return
        self._legs = [self._node_cell(v) for v in self.map.envs[0].path[1:]]

    def _walk_costs(self) -> np.ndarray:
        """BFS distance over visited cells from here to every node (inf where no visited path leads)."""
        tree = self._bfs(self.cell)
        return np.array([tree.get(self._node_cell(v), (None, None, np.inf))[2] for v in range(self.map.n_nodes)])

    def _node_cell(self, v: int) -> Cell:
        x, y = self.map.nodes[v, :2]
        return int(x), int(y)

    def _plan_leg(self) -> None:
        """Moves to the next node of the path by BFS over visited, safe cells; abandon the subgoal if none."""
        tree = self._bfs(self.cell, self._legs[0])
        if self._legs[0] not in tree:
            self._explore()
            return
        cell, moves = self._legs[0], []
        while tree[cell][0] is not None:
            cell, move, _ = tree[cell]
            moves.append(move)
        self._moves.extend(moves[::-1])

    def _bfs(self, start: Cell, target: Cell | None = None) -> dict[Cell, tuple[Cell | None, int | None, float]]:
        """Breadth-first search over visited, safe cells from `start` (until `target`, if given): each reached cell's
        (previous cell, move from it, distance)."""
        tree: dict[Cell, tuple[Cell | None, int | None, float]] = {start: (None, None, 0.0)}
        queue = deque([start])
        visited, hazards = self.visited, self.hazards
        while queue:
            cell = queue.popleft()
            if cell == target:
                break
            (x, y), dist = cell, tree[cell][2] + 1.0
            for move, (dx, dy) in enumerate(MOVES):  # inlined neighbours: this loop is the explorer's hot spot
                nxt = (x + dx, y + dy)
                if nxt in visited and nxt not in tree and nxt not in hazards:
                    tree[nxt] = (cell, move, dist)
                    queue.append(nxt)
        return tree

    def _random_move(self) -> int:
        """A random move, repeating the last with `repeat_prob`, never into a known hazard (rule 1) if avoidable."""
        if self._burst_left:
            self._burst_left -= 1
        if self.rng.random() >= self.repeat_prob:
            self._last_move = int(self.rng.integers(4))
        if self._after(self.cell, self._last_move) in self.hazards:
            safe = [m for m in range(4) if self._after(self.cell, m) not in self.hazards]
            if safe:
                self._last_move = int(self.rng.choice(safe))
        return self._last_move

    @staticmethod
    def _after(cell: Cell, move: int) -> Cell:
        return cell[0] + MOVES[move][0], cell[1] + MOVES[move][1]

