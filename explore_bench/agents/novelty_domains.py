"""What the policy-search explorers evaluate: genomes of a small MLP controller, rolled out one full episode each.

Spec: shared/specs/novelty_search.md §2, §8. A *domain* turns a batch of genomes ``(P, G)`` into an ``Evaluation``:
the reward of each episode, its hand-designed behaviour descriptor (BD), its ground-truth cell (for coverage
metrics only), an optional grey image of the final state (the autoencoder's input in TAXONS/STAX), the reward
area reached, the dense distance to the goal (the objective-driven ES) and the steps it took (frames).

- ``Controller``: the reference ``FFNeuralController``: fully connected, one scalar bias per layer, ``2 sigmoid(x) - 1``
  on every layer; a batch of genomes acts on a batch of observations at once.
- ``PointMazeDomain``: ``PointMazeDeceptive-v0`` rolled out for the whole population in numpy (spec §6.3: the
  fastest way; evaluation is the cost). BD = final (x, y).
- ``GymDomain``: any gymnasium env with a flat observation, given a BD function (of the final env, observation and
  info) and a ground-truth cell function; images from ``render()`` at episode end, area-resized to grey
  ``view_size`` squares. The population's envs step in lockstep, so the controller runs batched.
- ``MiniGridDomain``: a ``GymDomain`` for the MiniGrid catalogue ids: controller input (x / W, y / H, one-hot
  direction), 3 logits (left, right, forward; argmax), BD = final agent cell, a symbolic final frame (walls, doors,
  goal, agent as grey levels; nearest-neighbour scaled to ``view_size``) as the image, a fixed layout (reset with the
  run's seed), 100 steps.

Evaluation is deterministic: a genome always gets the same result (the explorers' resume relies on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import gymnasium as gym
import numpy as np

from explore_bench.imaging import area_resize

__all__ = [
    "Controller",
    "Domain",
    "Evaluation",
    "GymDomain",
    "MiniGridDomain",
    "PointMazeDomain",
    "make_domain",
]


# ------------------------------------------------------------------------------------------------- controller
class Controller:
    """``n_in -> hidden_layers x hidden_size -> n_out`` MLP whose weights are a flat genome.

    Genome layout, layer after layer: the weight matrix (``in x out``, row-major), then the layer's one scalar bias.
    Size ``G = in*h + 1 + (h*h + 1)*(L - 1) + h*out + 1``: 48 for 2 -> 2x5 -> 2, 94 for 6 -> 3x5 -> 2 (spec §9.3).
    """

    def __init__(self, n_in: int, n_out: int, hidden_layers: int = 2, hidden_size: int = 5) -> None:
        if min(n_in, n_out, hidden_size) < 1 or hidden_layers < 0:
            raise ValueError(f"Controller: expected positive sizes and hidden_layers >= 0, got n_in={n_in}, "
                             f"n_out={n_out}, hidden_layers={hidden_layers}, hidden_size={hidden_size}")
        sizes = [n_in, *([hidden_size] * hidden_layers), n_out]
        self.shapes = list(zip(sizes[:-1], sizes[1:]))
        self.n_in, self.n_out = n_in, n_out
        self.genome_size = sum(a * b + 1 for a, b in self.shapes)

    def unpack(self, genomes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W / 2 (P, in, out), b / 2 (P, 1)), ...]`` of a batch of genomes ``(P, G)``: halved, because
        ``2 sigmoid(z) - 1 == tanh(z / 2)``; in float32 (numpy's float64 tanh is 5x slower, and rollouts are the
        explorers' cost)."""
        genomes = 0.5 * np.asarray(genomes, dtype=np.float32)
        if genomes.ndim != 2 or genomes.shape[1] != self.genome_size:
            raise ValueError(f"Controller: expected genomes of shape (P, {self.genome_size}), got {genomes.shape}")
        layers, i = [], 0
        for a, b in self.shapes:
            w = genomes[:, i:i + a * b].reshape(-1, a, b)
            layers.append((w, genomes[:, i + a * b:i + a * b + 1]))
            i += a * b + 1
        return layers

    @staticmethod
    def forward(layers: list[tuple[np.ndarray, np.ndarray]], obs: np.ndarray) -> np.ndarray:
        """Outputs ``(P, out)`` float32 in [-1, 1] of unpacked controllers on observations ``(P, in)``."""
        x = np.asarray(obs, dtype=np.float32)
        for w, b in layers:
            x = np.tanh(np.einsum("pi,pio->po", x, w) + b)  # 2 sigmoid(z) - 1 on the halved layer
        return x


# ------------------------------------------------------------------------------------------------ evaluation
@dataclass
class Evaluation:
    """The outcome of one episode per genome (every array has the batch as its first axis)."""

    reward: np.ndarray  # (P,) float64: the episode's reward (graded at the end in the maze)
    bd: np.ndarray  # (P, d) float64: hand-designed behaviour descriptor
    cell: np.ndarray  # (P, 2) int64: ground-truth cell of the final state (coverage metrics only)
    area: np.ndarray  # (P,) int64: reward area reached, -1 for none
    goal_distance: np.ndarray  # (P,) float64: distance of the final state to the nearest goal (dense fitness)
    steps: np.ndarray  # (P,) int64: env steps taken (frames)
    view: np.ndarray | None = None  # (P, S, S) uint8 grey image of the final state, when asked for
    # (P, *grid_shape) bool: every cell any step of the episode occupied (GymDomain; the coverage measure shared
    # with the RL agents, whose runs count the cells of every step too); None where the domain keeps no trajectory
    visited: np.ndarray | None = None


class Domain(Protocol):
    """What an explorer needs of an environment."""

    controller: Controller
    episode_len: int  # most steps one evaluation takes: frames budget / episode_len = evaluations budget
    bd_dim: int
    grid_shape: tuple[int, int]  # shape of the ground-truth cell grid (coverage is counted over it)
    view_size: int

    def evaluate(self, genomes: np.ndarray, views: bool = False) -> Evaluation: ...
    def close(self) -> None: ...


class PointMazeDomain:
    """The point maze (``explore_bench.envs.point_maze``) with the 2 -> 2x5 -> 2 controller of spec §8 (G = 48)."""

    def __init__(self, env_id: str = "PointMazeDeceptive-v0", hidden_layers: int = 2, hidden_size: int = 5,
                 view_size: int = 32) -> None:
        from explore_bench.envs.point_maze import maze_layout

        self.layout = maze_layout(env_id)
        self.controller = Controller(2, 2, hidden_layers, hidden_size)
        self.episode_len = self.layout.episode_len
        self.bd_dim = 2
        self.grid_shape = (self.layout.grid, self.layout.grid)
        self.view_size = int(view_size)

    def evaluate(self, genomes: np.ndarray, views: bool = False) -> Evaluation:
        layers = self.controller.unpack(genomes)
        # the controller's outputs lie in [-1, 1]: no clipping needed
        final = self.layout.rollout(lambda pos: Controller.forward(layers, pos), len(layers[0][0]), clip_action=False)
        reward, area = self.layout.reward(final)
        return Evaluation(reward, final, self.layout.cells(final), area, self.layout.goal_distance(final),
                          np.full(len(final), self.episode_len, np.int64),
                          self.layout.render(final, self.view_size) if views else None)

    def close(self) -> None:
        pass


def grey_view(frame: np.ndarray, size: int) -> np.ndarray:
    """An RGB (H, W, 3) or grey (H, W) frame as a ``size x size`` uint8 grey image (pixel-area average)."""
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim == 3:
        frame = frame.mean(-1)
    return np.clip(np.rint(area_resize(frame, size, size)), 0, 255).astype(np.uint8)


class GymDomain:
    """Any gymnasium env: one env per genome of a batch, stepped in lockstep with the batched controller.

    Args:
        make_env: builds one env (with ``render_mode="rgb_array"`` when images are wanted and ``view_fn`` is None).
        bd_fn: ``(env, final_obs, final_info) -> (d,)`` behaviour descriptor of an episode.
        cell_fn: ``(env, final_obs, final_info) -> (2,)`` int ground-truth cell, inside ``grid_shape``.
        grid_shape: shape of the ground-truth grid.
        obs_fn: ``(env, observation) -> flat float vector`` for the controller (default: the observation flattened).
        view_fn: ``env -> image`` of the final state (default ``env.render()``), made ``view_size`` grey.
        goal_distance_fn: ``(env, final_obs, final_info) -> float`` (default: 0, no dense fitness).
        episode_len: steps per evaluation at most (the env may end an episode earlier).
        seed: every evaluation resets with this seed (a fixed task: evaluation is deterministic).
    Actions: Box spaces take the controller's [-1, 1] outputs rescaled to the bounds; ``Discrete(n)`` the argmax of
    ``n`` outputs (``n_actions`` of them when given: the first ``n_actions`` actions only).
    """

    def __init__(self, make_env: Callable[[], gym.Env], bd_fn: Callable[..., Any], cell_fn: Callable[..., Any],
                 grid_shape: tuple[int, int], *, obs_fn: Callable[[gym.Env, Any], np.ndarray] | None = None,
                 view_fn: Callable[[gym.Env], np.ndarray] | None = None,
                 goal_distance_fn: Callable[..., float] | None = None, episode_len: int = 100, seed: int = 0,
                 hidden_layers: int = 2, hidden_size: int = 5, n_actions: int | None = None,
                 view_size: int = 32) -> None:
        self.make_env = make_env
        self.bd_fn, self.cell_fn, self.goal_distance_fn = bd_fn, cell_fn, goal_distance_fn
        self.obs_fn = obs_fn or (lambda env, obs: np.asarray(obs, dtype=np.float64).ravel())
        self.view_fn = view_fn or (lambda env: env.render())
        self.grid_shape = tuple(int(g) for g in grid_shape)
        self.episode_len, self.seed, self.view_size = int(episode_len), int(seed), int(view_size)
        self.envs: list[gym.Env] = [make_env()]
        probe = self.envs[0]
        obs, info = probe.reset(seed=self.seed)
        space = probe.action_space
        if isinstance(space, gym.spaces.Discrete):
            n_out = int(n_actions or space.n)
            if not 1 <= n_out <= space.n:
                raise ValueError(f"GymDomain: n_actions must be in [1, {space.n}] for {space!r}, got {n_actions}")
        elif isinstance(space, gym.spaces.Box):
            n_out = int(np.prod(space.shape))
        else:
            raise TypeError(f"GymDomain: expected a Discrete or Box action space, got {space!r}")
        self.controller = Controller(len(self.obs_fn(probe, obs)), n_out, hidden_layers, hidden_size)
        self.bd_dim = len(np.atleast_1d(bd_fn(probe, obs, info)))

    def _action(self, out: np.ndarray) -> Any:
        space = self.envs[0].action_space
        if isinstance(space, gym.spaces.Discrete):
            return int(np.argmax(out)) + int(space.start)
        return (space.low + (out.reshape(space.shape) + 1.0) * 0.5 * (space.high - space.low)).astype(space.dtype)

    def evaluate(self, genomes: np.ndarray, views: bool = False) -> Evaluation:
        layers = self.controller.unpack(genomes)
        n = len(layers[0][0])
        while len(self.envs) < n:
            self.envs.append(self.make_env())
        envs = self.envs[:n]
        obs, infos = zip(*(env.reset(seed=self.seed) for env in envs))
        obs, infos = list(obs), list(infos)
        visited = np.zeros((n, *self.grid_shape), bool)
        for i, env in enumerate(envs):
            visited[(i, *self.cell_fn(env, obs[i], infos[i]))] = True
        reward = np.zeros(n)
        steps = np.zeros(n, np.int64)
        alive = np.ones(n, bool)
        for _ in range(self.episode_len):
            idx = np.flatnonzero(alive)
            if not len(idx):
                break
            x = np.stack([self.obs_fn(envs[i], obs[i]) for i in idx])
            out = Controller.forward([(w[idx], b[idx]) for w, b in layers], x)
            for j, i in enumerate(idx):
                obs[i], r, terminated, truncated, infos[i] = envs[i].step(self._action(out[j]))
                visited[(i, *self.cell_fn(envs[i], obs[i], infos[i]))] = True
                reward[i] += float(r)
                steps[i] += 1
                alive[i] = not (terminated or truncated)
        bd = np.stack([np.atleast_1d(np.asarray(self.bd_fn(e, o, f), np.float64)) for e, o, f in zip(envs, obs, infos)])
        cell = np.stack([np.asarray(self.cell_fn(e, o, f), np.int64) for e, o, f in zip(envs, obs, infos)])
        dist = np.asarray([float(self.goal_distance_fn(e, o, f)) if self.goal_distance_fn else 0.0
                           for e, o, f in zip(envs, obs, infos)])
        view = np.stack([grey_view(self.view_fn(env), self.view_size) for env in envs]) if views else None
        area = np.where(reward > 0, 0, -1).astype(np.int64)
        return Evaluation(reward, bd, cell, area, dist, steps, view, visited)

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []


class MiniGridDomain(GymDomain):
    """A MiniGrid catalogue task with a fixed layout: controller (x / W, y / H, one-hot direction) -> 2x8 -> 3
    logits (left, right, forward), 100 steps, BD = final agent cell (spec §8 "MiniGrid variant"). ``n_actions``
    takes the first n of MiniGrid's actions instead (6 adds pickup, drop and toggle: doors and keys)."""

    #: grey level of each MiniGrid object type index in the symbolic frame (empty 0, wall 96, floor 48, door 160,
    #: key 200, ball/box 128, goal 224, lava 64); the agent's cell is 255.
    _LEVELS = {2: 96, 3: 48, 4: 160, 5: 200, 6: 128, 7: 128, 8: 224, 9: 64}
    _AGENT = 255

    def __init__(self, env_id: str, seed: int = 0, hidden_layers: int = 2, hidden_size: int = 8,
                 episode_len: int = 100, view_size: int = 32, n_actions: int = 3) -> None:
        import minigrid  # noqa: F401 - registers the MiniGrid ids

        from explore_bench.envs.minigrid import MINIGRID_ENVS

        if env_id not in MINIGRID_ENVS:
            raise KeyError(f"MiniGridDomain: expected a MiniGrid catalogue id ({', '.join(MINIGRID_ENVS)}), "
                           f"got {env_id!r}")
        minigrid_id = MINIGRID_ENVS[env_id].minigrid_id
        self._lut = np.zeros(256, np.uint8)
        for k, v in self._LEVELS.items():
            self._lut[k] = v
        base = gym.make(minigrid_id).unwrapped
        base.reset(seed=int(seed))
        self.width, self.height = int(base.width), int(base.height)
        goals = [(i % base.width, i // base.width) for i, o in enumerate(base.grid.grid)
                 if o is not None and o.type == "goal"]
        self.goal = np.asarray(goals[0], np.float64) if goals else None
        base.close()
        super().__init__(
            lambda: gym.make(minigrid_id).unwrapped, self._cell, self._cell, (self.width, self.height),
            obs_fn=self._features, view_fn=self._symbolic_frame, goal_distance_fn=self._goal_distance,
            episode_len=episode_len, seed=seed, hidden_layers=hidden_layers, hidden_size=hidden_size,
            n_actions=n_actions, view_size=view_size)

    def _features(self, env: Any, obs: Any) -> np.ndarray:
        """The controller's input: the agent's state, not MiniGrid's egocentric image."""
        features = np.zeros(6)
        features[0], features[1] = env.agent_pos[0] / self.width, env.agent_pos[1] / self.height
        features[2 + int(env.agent_dir)] = 1.0
        return features

    @staticmethod
    def _cell(env: Any, obs: Any, info: Any) -> np.ndarray:
        return np.asarray(env.agent_pos, dtype=np.int64)

    def _goal_distance(self, env: Any, obs: Any, info: Any) -> float:
        return 0.0 if self.goal is None else float(np.linalg.norm(np.asarray(env.agent_pos, np.float64) - self.goal))

    def _symbolic_frame(self, env: Any) -> np.ndarray:
        """The whole grid's object types as grey levels, the agent's cell at 255, scaled to ``view_size`` squares by
        nearest neighbour (cells stay crisp): (S, S) uint8."""
        frame = self._lut[env.grid.encode()[:, :, 0]].T.copy()  # encode() is (W, H, 3)
        frame[int(env.agent_pos[1]), int(env.agent_pos[0])] = self._AGENT
        rows = np.arange(self.view_size) * self.height // self.view_size
        cols = np.arange(self.view_size) * self.width // self.view_size
        return frame[rows[:, None], cols[None, :]]


def make_domain(env_id: str, seed: int = 0, hidden_layers: int | None = None, hidden_size: int | None = None,
                view_size: int = 32, episode_len: int | None = None, n_actions: int | None = None) -> Domain:
    """The domain of a catalogue id: the point maze or a MiniGrid task (controller sizes default to spec §8's).

    Raises ``KeyError`` for other families (bandits: spec §6.4, nothing spatial to diversify)."""
    from explore_bench.envs import env_family

    family = env_family(env_id)
    sizes = {k: v for k, v in (("hidden_layers", hidden_layers), ("hidden_size", hidden_size)) if v is not None}
    if family == "pointmaze":
        if episode_len is not None or n_actions is not None:
            raise ValueError("the point maze's episode length (150) and actions (2 continuous) are part of the task; "
                             "episode_len and n_actions must stay unset")
        return PointMazeDomain(env_id, view_size=view_size, **sizes)
    if family == "minigrid":
        extra = {k: v for k, v in (("episode_len", episode_len), ("n_actions", n_actions)) if v is not None}
        return MiniGridDomain(env_id, seed, view_size=view_size, **sizes, **extra)
    why = ": bandit tasks have no behaviour worth diversifying beyond arm counts" if family == "bandit" else ""
    raise KeyError(f"the policy-search explorers run on the point maze and MiniGrid envs, not on {env_id!r} "
                   f"(family {family!r}{why})")
