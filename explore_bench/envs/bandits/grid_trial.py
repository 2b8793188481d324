"""``GridTrialEnv``: the temporally extended gridworld meta-task (spec bandits.md §4.6, Exploit-All gridworld).

What an agent learns about the goal in an early inner episode pays off in the later ones of the same trial.

- An N×N grid without internal walls (default 5×5); cells are ``(x, y)``, y growing downwards; every inner episode
  starts at the centre ``(N//2, N//2)``.
- Per trial the goal g is drawn uniformly from the candidate set C: the 4 corners (``goal_prior="corners"``, the
  structured prior) or every non-start cell (``"uniform"``, weak structure). ``structure="resampled"`` redraws g at
  the start of every inner episode (the no-structure ablation).
- A trial is E inner episodes (default 4). An inner episode ends when the agent enters g (reward +1) or after L steps
  (default 12; reward 0); the agent then goes back to the start. The whole trial is ONE gymnasium episode, terminated
  after the E-th inner episode (recurrent policies must not reset their memory between inner episodes).
- Actions ``Discrete(4)``: 0 up (y-1), 1 right (x+1), 2 down (y+1), 3 left (x-1); a move into the border is a no-op.
- Observation (float32, 2N+7): one-hot x (N), one-hot y (N), one-hot previous action (4; zeros at trial start),
  previous reward, ``episode_boundary`` flag (1.0 on the first step of each inner episode), steps-in-episode / L.
  Previous action and reward carry over inner episode boundaries (the RL² convention). The goal is never observed.
- ``objective`` (``"greedy"``/``"trial"``) does not change the env; it is reported in ``info`` for the learner's
  credit horizon, as in ``TrialEnv``.

``info`` of a step describes that step: ``"goal"`` and ``"oracle_steps"`` (Manhattan distance start -> goal) of its
inner episode, ``"episode_index"``, ``"steps_in_episode"`` (this step included), ``"success"`` (this step reached
the goal), ``"inner_done"`` (this step ended the inner episode), ``"visited_candidates"`` (frozenset of candidate
cells entered so far in the trial), ``"returns_mask"`` (False when the next step starts a new inner episode, and on
the trial's last step), ``"objective"``. ``reset`` returns the same keys that describe a state (``goal``,
``oracle_steps``, ``episode_index`` 0, ``steps_in_episode`` 0, ``visited_candidates`` empty). On the trial's last
step, ``info["episode_metrics"]``::

    {"return": float,             # trial return = number of inner episodes that reached the goal
     "length": int,               # steps of the trial
     "success": float,            # fraction of inner episodes that reached the goal
     "coverage": int,             # distinct cells occupied during the trial, start included
     "episode1_coverage": float,  # |candidates entered in inner episode 1| / |C|
     "exploitation_gain": float | None}  # mean over inner episodes e >= 2 of (steps_e - oracle steps_e); None if E=1

``reset(options={"goal": (x, y)})`` forces the (first) goal; it must be a candidate.

Reference agents (§4.6), each with ``reset()`` (call at trial start) and ``act(obs) -> int``: ``OracleAgent`` (reads
the goal from the env: privileged), ``BayesSweepAgent`` (observation only: a fixed shortest tour of the candidates
until the goal is found, then straight to it) and ``RandomWalkAgent``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np

from explore_bench.envs.bandits.families import check_choice, check_int

Cell = tuple[int, int]
UP, RIGHT, DOWN, LEFT = range(4)
#: (dx, dy) of each action
MOVES: tuple[Cell, ...] = ((0, -1), (1, 0), (0, 1), (-1, 0))
GOAL_PRIORS = ("corners", "uniform")
STRUCTURES = ("fixed", "resampled")
OBJECTIVES = ("greedy", "trial")


def manhattan(a: Cell, b: Cell) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def move(cell: Cell, action: int, size: int) -> Cell:
    """The cell reached from ``cell`` by ``action`` (the border blocks)."""
    dx, dy = MOVES[action]
    return min(max(cell[0] + dx, 0), size - 1), min(max(cell[1] + dy, 0), size - 1)


def step_towards(cell: Cell, target: Cell) -> int:
    """A shortest-path action from ``cell`` to ``target`` (x first, then y); ``cell != target``."""
    if cell[0] != target[0]:
        return RIGHT if target[0] > cell[0] else LEFT
    if cell[1] != target[1]:
        return DOWN if target[1] > cell[1] else UP
    raise ValueError(f"step_towards: already at the target {target}")


class GridTrialEnv(gym.Env[np.ndarray, np.int64]):
    """Gridworld trial of ``episodes_per_trial`` inner episodes of at most ``max_steps`` steps (module docstring).

    Args:
        size: N (>= 3).
        episodes_per_trial: E.
        max_steps: L, the step limit of an inner episode.
        goal_prior: ``"corners"`` or ``"uniform"`` (all non-start cells).
        structure: ``"fixed"`` (one goal per trial) or ``"resampled"`` (a fresh goal every inner episode).
        objective: ``"greedy"`` or ``"trial"``, reported in ``info["objective"]``.
        render_mode: None or ``"ansi"``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        size: int = 5,
        episodes_per_trial: int = 4,
        max_steps: int = 12,
        goal_prior: Literal["corners", "uniform"] = "corners",
        structure: Literal["fixed", "resampled"] = "fixed",
        objective: Literal["greedy", "trial"] = "greedy",
        render_mode: str | None = None,
    ):
        self.size = N = check_int(size, "GridTrialEnv: size", 3)
        self.episodes_per_trial = check_int(episodes_per_trial, "GridTrialEnv: episodes_per_trial", 1)
        self.max_steps = check_int(max_steps, "GridTrialEnv: max_steps", 1)
        self.goal_prior = check_choice(GOAL_PRIORS, goal_prior, "GridTrialEnv: goal_prior")
        self.structure = check_choice(STRUCTURES, structure, "GridTrialEnv: structure")
        self.objective = check_choice(OBJECTIVES, objective, "GridTrialEnv: objective")
        self.render_mode = check_choice((None, "ansi"), render_mode, "GridTrialEnv: render_mode")
        self.start: Cell = (N // 2, N // 2)
        if self.goal_prior == "corners":
            self.candidates: tuple[Cell, ...] = ((0, 0), (N - 1, 0), (0, N - 1), (N - 1, N - 1))
        else:
            self.candidates = tuple((x, y) for y in range(N) for x in range(N) if (x, y) != self.start)
        self.action_space = gym.spaces.Discrete(4)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (2 * N + 7,), dtype=np.float32)
        self.goal: Cell | None = None
        self._done = True  # until the first reset

    def _draw_goal(self) -> Cell:
        return self.candidates[int(self.np_random.integers(len(self.candidates)))]

    def _observe(self) -> np.ndarray:
        N = self.size
        obs = np.zeros(2 * N + 7, dtype=np.float32)
        obs[self.agent_pos[0]] = 1.0
        obs[N + self.agent_pos[1]] = 1.0
        if self._prev_action >= 0:
            obs[2 * N + self._prev_action] = 1.0
        obs[2 * N + 4] = self._prev_reward
        obs[2 * N + 5] = self._steps == 0 and not self._done
        obs[2 * N + 6] = self._steps / self.max_steps
        return obs

    def _state_info(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "oracle_steps": manhattan(self.start, self.goal),
            "episode_index": self._episode,
            "steps_in_episode": self._steps,
            "visited_candidates": frozenset(self._visited_candidates),
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        forced = (options or {}).get("goal")
        if forced is None:
            self.goal = self._draw_goal()
        else:
            self.goal = (int(forced[0]), int(forced[1]))
            if self.goal not in self.candidates:
                raise ValueError(f"GridTrialEnv: forced goal {forced!r} is not a candidate {self.candidates}")
        self.agent_pos: Cell = self.start
        self._episode = 0
        self._steps = 0
        self._done = False
        self._prev_action = -1
        self._prev_reward = 0.0
        self._visited = {self.start}
        self._visited_candidates: set[Cell] = set()
        self._episode1_candidates = 0
        self._successes = 0
        self._length = 0
        self._gains: list[int] = []  # steps - oracle steps of inner episodes 2..E
        return self._observe(), self._state_info()

    def step(self, action: Any):
        if self._done:
            raise RuntimeError("GridTrialEnv: step() called before reset() or after the trial ended")
        if not self.action_space.contains(action):
            raise ValueError(f"GridTrialEnv: invalid action {action!r}; expected an integer in [0, 4)")
        a = int(action)
        self.agent_pos = move(self.agent_pos, a, self.size)
        self._steps += 1
        self._length += 1
        self._visited.add(self.agent_pos)
        if self.agent_pos in self.candidates:
            self._visited_candidates.add(self.agent_pos)
        success = self.agent_pos == self.goal
        inner_done = success or self._steps == self.max_steps
        reward = 1.0 if success else 0.0
        self._prev_action, self._prev_reward = a, reward
        info = self._state_info()  # this step's inner episode, before any reset to the start
        info.update(success=success, inner_done=inner_done, returns_mask=not inner_done, objective=self.objective)
        terminated = False
        if inner_done:
            self._successes += success
            if self._episode == 0:
                self._episode1_candidates = len(self._visited_candidates)
            else:
                self._gains.append(self._steps - info["oracle_steps"])
            self._episode += 1
            terminated = self._done = self._episode == self.episodes_per_trial
            if not terminated:
                self.agent_pos = self.start
                self._steps = 0
                if self.structure == "resampled":
                    self.goal = self._draw_goal()
        if terminated:
            info["episode_metrics"] = {
                "return": float(self._successes),
                "length": self._length,
                "success": self._successes / self.episodes_per_trial,
                "coverage": len(self._visited),
                "episode1_coverage": self._episode1_candidates / len(self.candidates),
                "exploitation_gain": float(np.mean(self._gains)) if self._gains else None,
            }
        return self._observe(), reward, terminated, False, info

    def render(self) -> str | None:
        if self.render_mode is None:
            gym.logger.warn("GridTrialEnv.render() called without render_mode='ansi'")
            return None
        if self.goal is None:
            return "GridTrialEnv: not reset yet"
        grid = [["."] * self.size for _ in range(self.size)]
        for x, y in set(self.candidates) - self._visited_candidates:
            grid[y][x] = "?"
        grid[self.goal[1]][self.goal[0]] = "G"
        grid[self.agent_pos[1]][self.agent_pos[0]] = "A"
        header = f"episode {self._episode}/{self.episodes_per_trial} step {self._steps}/{self.max_steps}"
        return "\n".join([header] + ["".join(row) for row in grid])


# ---------------------------------------------------------------------- reference agents


def _decode(obs: np.ndarray, size: int) -> tuple[Cell, float]:
    """Agent cell and previous reward from a ``GridTrialEnv`` observation."""
    return (int(np.argmax(obs[:size])), int(np.argmax(obs[size : 2 * size]))), float(obs[2 * size + 4])


class OracleAgent:
    """Knows the goal (reads ``env.unwrapped.goal``: privileged) and walks straight to it."""

    def __init__(self, env: gym.Env):
        self.env: GridTrialEnv = env.unwrapped

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> int:
        return step_towards(self.env.agent_pos, self.env.goal)


class BayesSweepAgent:
    """The scripted Bayes-optimal sweep for a fixed goal: visit the candidates in a fixed tour (nearest neighbour
    from the start, lowest candidate index on ties: a shortest tour for the corner prior, 16 steps on 5×5) until the
    goal is found, then walk straight to it. Uses only the observation (its cell and previous reward) and the public
    layout (size, start, candidates).

    A candidate entered without reward is eliminated; when a belief is contradicted (structure ``"resampled"``: the
    known goal gives no reward, or every candidate is eliminated) it forgets and sweeps again.
    """

    def __init__(self, env: gym.Env):
        grid: GridTrialEnv = env.unwrapped
        self.size = grid.size
        tour: list[Cell] = []
        cell, left = grid.start, list(grid.candidates)
        while left:
            cell = min(left, key=lambda c: manhattan(cell, c))  # min: first of the nearest
            left.remove(cell)
            tour.append(cell)
        self.tour: tuple[Cell, ...] = tuple(tour)
        self.reset()

    def reset(self) -> None:
        self._left = list(self.tour)
        self._goal: Cell | None = None
        self._entering: Cell | None = None

    def act(self, obs: np.ndarray) -> int:
        cell, prev_reward = _decode(obs, self.size)
        entered = self._entering
        if entered is not None:  # learn from the cell the last action entered
            if prev_reward > 0:
                self._goal = entered
            elif entered == self._goal:
                self._goal = None
            if entered in self._left:
                self._left.remove(entered)
        if self._goal is None and not [c for c in self._left if c != cell]:
            self._left = list(self.tour)
        target = self._goal or next(c for c in self._left if c != cell)
        action = step_towards(cell, target)
        self._entering = move(cell, action, self.size)
        return action


class RandomWalkAgent:
    """Uniformly random actions from its own generator."""

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> int:
        return int(self.rng.integers(4))
