"""Go-Explore phase 1: remember cells, return to one by restoring the emulator, explore from it at random.

Ecoffet et al., "Go-Explore: a New Approach for Hard-Exploration Problems" (arXiv 1901.10995) and "First return,
then explore" (Nature 2021). Spec: shared/specs/go_explore.md §3-§6.

The loop (one `GoExplore.iteration`):

1. weights of every archived cell (`selection_weights`: GE-Nature's `1 / sqrt(seen + 1)`, or GE-2019's count
   terms), computed once per batch; draw `batch_size` cells with replacement;
2. for each drawn cell: restore its snapshot ("return"), then take up to `explore_steps` random actions, each
   repeated with probability `repeat_prob` (mean run 1 / (1 - repeat_prob)); stop at a terminal state, on life loss
   where `end_on_life_loss`, or at the episode cap;
3. the trajectories are applied in batch order: the first visit of a key in a trajectory raises its `seen`
   count, and enters the archive if the key is new or its score beats the cell's (equal score: shorter
   trajectory wins); terminal states are never archived (a positive-reward terminal is a solved task, kept as
   `best_done`); counters of cells added or improved are reset after the batch (`reset_cell_on_update`).

With `return_to_cells=False` every trajectory starts from the reset state instead: the same repeated-random
explorer without the return, the baseline of spec §11 test 8 (with `explore_steps` at the episode cap it plays
each life to its end).

Trajectories can run in worker processes (`workers`): each gets its cells' snapshots and the archive's
(score, length) table of the batch start, so it snapshots only states that might enter the archive, and returns
what it saw; the main process applies the results in batch order. Each trajectory's random stream is derived
from (seed, iteration, index), so a run gives the same archive with any number of workers.

Domains (`make_domain`): Atari through ale-py directly (deterministic: no sticky actions, frame skip 4, minimal
action set; cells are `downscale_cell` of the raw 210x160 grey screen; rooms from the RAM), and MiniGrid (cells
are the exact state: agent position and direction, carried object, and the state of every door, key, ball and
box; return restores a pickled copy of the env, whose step counter keeps MiniGrid's own time limit).
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Hashable, Iterable, Literal, Mapping, Protocol

import gymnasium as gym
import numpy as np

from explore_bench.bonuses.go_explore_cells import downscale_cell

__all__ = [
    "AtariDomain",
    "Cell",
    "Domain",
    "GoExplore",
    "GoExploreConfig",
    "GoExploreResetWrapper",
    "MiniGridDomain",
    "Trajectory",
    "accepts",
    "explore_from",
    "improves",
    "make_domain",
    "selection_weights",
]

Weights = Literal["nature", "ge2019"]


# ---------------------------------------------------------------------------------------------------- domains
@dataclass
class StepResult:
    key: Hashable
    reward: float
    terminal: bool  # the episode ended (game over, goal reached, time limit): never archived
    died: bool  # a life was lost on this step
    position: Hashable | None  # what coverage counts: a room (Atari), an agent cell (MiniGrid)


class Domain(Protocol):
    """What Go-Explore needs of an environment: deterministic steps, snapshots, a cell key per state."""

    n_actions: int
    frames_per_step: int

    def reset(self) -> StepResult: ...
    def step(self, action: int) -> StepResult: ...
    def snapshot(self) -> Any: ...
    def restore(self, snapshot: Any) -> None: ...


def atari_cell(ale: Any, width: int = 11, height: int = 8, levels: int = 8) -> bytes:
    """The cell key of the ALE's current raw grey screen (`downscale_cell`)."""
    return downscale_cell(ale.getScreenGrayscale(), width, height, levels).tobytes()


class AtariDomain:
    """An ALE game for phase 1: no sticky actions, `frame_skip` 4, the minimal action set, no no-op starts.

    Key: `downscale_cell` of ALE's grey screen after the step (`width x height`, `levels`). Position: the room
    from the RAM where `explore_bench.envs.atari` knows it (Montezuma's (level, room), Pitfall's room byte).
    `max_steps`: the episode cap in agent steps (27,000 = 108,000 frames), enforced by the explorer through the
    trajectory length.
    """

    frames_per_step = 4

    def __init__(self, game: str, seed: int = 0, width: int = 11, height: int = 8, levels: int = 8) -> None:
        from ale_py import ALEInterface, LoggerMode, roms

        from explore_bench.envs.atari import rom_name, room_of

        ALEInterface.setLoggerMode(LoggerMode.Error)
        self.game = game
        self.ale = ALEInterface()
        self.ale.setInt("random_seed", int(seed))
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("frame_skip", self.frames_per_step)
        self.ale.loadROM(roms.get_rom_path(rom_name(game)))
        self.actions = list(self.ale.getMinimalActionSet())
        self.n_actions = len(self.actions)
        self.cell_shape = (int(width), int(height), int(levels))
        self._room_of = room_of
        self._lives = 0

    def _result(self, reward: float) -> StepResult:
        lives = self.ale.lives()
        died = lives < self._lives
        self._lives = lives
        key = atari_cell(self.ale, *self.cell_shape)
        return StepResult(key, reward, self.ale.game_over(), died, self._room_of(self.game, self.ale.getRAM()))

    def reset(self) -> StepResult:
        self.ale.reset_game()
        self._lives = self.ale.lives()
        return self._result(0.0)

    def step(self, action: int) -> StepResult:
        return self._result(float(self.ale.act(self.actions[action])))

    def snapshot(self) -> Any:
        return self.ale.cloneState()

    def restore(self, snapshot: Any) -> None:
        self.ale.restoreState(snapshot)
        self._lives = self.ale.lives()

    def screen(self) -> np.ndarray:
        return self.ale.getScreenGrayscale()


class MiniGridDomain:
    """A MiniGrid task, reset once with `seed` (MiniGrid layouts are random per seed), without the "done" action.

    Key: (x, y, direction, carried object type, (type, open) of every door, key, ball and box on the grid, in grid
    order; spec §3.4: where a dropped key lies is not part of the cell). A snapshot
    is the pickled env (its step counter included, so MiniGrid's `max_steps` still ends episodes).
    """

    frames_per_step = 1
    _OBJECTS = ("door", "key", "ball", "box")

    def __init__(self, env_id: str, seed: int = 0) -> None:
        import gymnasium as gym
        import minigrid  # noqa: F401 - registers the MiniGrid ids

        from explore_bench.envs.minigrid import MINIGRID_ENVS

        if env_id not in MINIGRID_ENVS:
            raise KeyError(f"unknown MiniGrid id {env_id!r}; expected one of {sorted(MINIGRID_ENVS)}")
        self.env = gym.make(MINIGRID_ENVS[env_id].minigrid_id).unwrapped
        self.seed = int(seed)
        # MiniGrid's actions are left, right, forward, pickup, drop, toggle, done: the six before "done"
        self.n_actions = int(self.env.actions.done)

    def _key(self) -> tuple:
        return self.state_key(self.env)

    @classmethod
    def state_key(cls, env: Any) -> tuple:
        """The exact-state cell of an unwrapped MiniGrid env (see the class docstring)."""
        objects = tuple(
            (obj.type, bool(getattr(obj, "is_open", False)))
            for obj in env.grid.grid
            if obj is not None and obj.type in cls._OBJECTS
        )
        carrying = env.carrying.type if env.carrying is not None else None
        return (int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir), carrying, objects)

    def _result(self, reward: float, terminal: bool) -> StepResult:
        return StepResult(self._key(), reward, terminal, False, (int(self.env.agent_pos[0]), int(self.env.agent_pos[1])))

    def reset(self) -> StepResult:
        self.env.reset(seed=self.seed)
        return self._result(0.0, False)

    def step(self, action: int) -> StepResult:
        _, reward, terminated, truncated, _ = self.env.step(action)
        return self._result(float(reward), bool(terminated or truncated))

    def snapshot(self) -> bytes:
        return pickle.dumps(self.env, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: bytes) -> None:
        self.env = pickle.loads(snapshot)


def make_domain(env_id: str, seed: int = 0, **kwargs: Any) -> Domain:
    """The domain of a catalogue id (`explore_bench.envs`): Atari or MiniGrid. Raises KeyError otherwise."""
    from explore_bench.envs import env_family

    family = env_family(env_id)
    if family == "atari":
        from explore_bench.envs.atari import game_of

        return AtariDomain(game_of(env_id), seed, **kwargs)
    if family == "minigrid":
        return MiniGridDomain(env_id, seed)
    raise KeyError(f"Go-Explore needs an env it can snapshot: an Atari or MiniGrid id, got {env_id!r} ({family})")


# ---------------------------------------------------------------------------------------------------- archive
@dataclass
class Cell:
    """One archived cell: the best (highest score, then shortest) known way into it, and its counters."""

    score: float
    traj_len: int
    snapshot: Any
    actions: bytes  # the action indices from reset that reach the cell (a demonstration)
    seen: int = 0
    chosen: int = 0
    chosen_since_new: int = 0


def improves(score: float, traj_len: int, prior: tuple[float, int] | None) -> bool:
    """The update rule (spec §5) against a known (score, traj_len): none known, a higher score, or the same score by
    a shorter trajectory."""
    return prior is None or score > prior[0] or (score == prior[0] and traj_len < prior[1])


def accepts(cell: Cell | None, score: float, traj_len: int) -> bool:
    """`improves` against an archived cell (None: a new key)."""
    return improves(score, traj_len, None if cell is None else (cell.score, cell.traj_len))


def _with_path(cell: Cell | None, score: float, traj_len: int, snapshot: Any, actions: bytes) -> Cell:
    """A new cell, or `cell` with a better way into it (its counters kept)."""
    if cell is None:
        return Cell(score, traj_len, snapshot, actions)
    return replace(cell, score=score, traj_len=traj_len, snapshot=snapshot, actions=actions)


def selection_weights(seen: np.ndarray, chosen: np.ndarray, chosen_since_new: np.ndarray, kind: Weights = "nature") -> np.ndarray:
    """Unnormalised selection weights of cells with these counters (spec §4).

    "nature": `1 / sqrt(seen + 1)` (GE-Nature, domain-agnostic). "ge2019": GE-2019's no-domain-knowledge weights,
    `1 + sum_a (w_a * (1 / (v_a + 0.001)) ** 0.5 + 1e-5)` over (seen, chosen, chosen since new) with
    w = (3, 0.1, 0) (`phase1_montezuma_no_domain.sh`).
    """
    seen = np.asarray(seen, dtype=np.float64)
    if kind == "nature":
        return 1.0 / np.sqrt(seen + 1.0)
    if kind == "ge2019":
        terms = [w * (1.0 / (np.asarray(v, np.float64) + 1e-3)) ** 0.5 + 1e-5 for w, v in ((3.0, seen), (0.1, chosen), (0.0, chosen_since_new))]
        return 1.0 + sum(terms)
    raise ValueError(f"selection weights must be 'nature' or 'ge2019', got {kind!r}")


# ------------------------------------------------------------------------------------------------ exploration
@dataclass
class Trajectory:
    """What one explore trajectory saw, for the archive update (made in a worker, applied in the main process)."""

    index: int  # position in the batch
    start: Hashable  # the key returned to
    visits: list[Hashable]  # keys first visited in this trajectory, in order (each raises `seen`)
    # (key, score, traj_len, snapshot, actions since the start) of first visits that beat the batch-start archive
    candidates: list[tuple[Hashable, float, int, Any, bytes]]
    steps: int
    positions: set
    done: tuple[float, int, bytes] | None = None  # (score, length, actions) of a positive-reward terminal state


def explore_from(domain: Domain, start_key: Hashable, cell: Cell, known: Mapping[Hashable, tuple[float, int]],
                 rng: np.random.Generator, explore_steps: int, repeat_prob: float, end_on_life_loss: bool,
                 max_steps: int, index: int = 0) -> Trajectory:
    """Return to `cell` (restore its snapshot) and explore from it; see the module docstring.

    `known`: key -> (score, traj_len) of the archive at the batch start: only first visits that `accepts` would
    take get a snapshot (the main process re-checks them against the archive as it is when applied).
    """
    domain.restore(cell.snapshot)
    visited = {start_key}
    traj = Trajectory(index, start_key, [], [], 0, set())
    score, action = cell.score, -1
    actions = bytearray()
    for t in range(1, explore_steps + 1):
        if action < 0 or rng.random() >= repeat_prob:
            action = int(rng.integers(domain.n_actions))
        result = domain.step(action)
        actions.append(action)
        traj.steps = t
        score += result.reward
        length = cell.traj_len + t
        if result.position is not None:
            traj.positions.add(result.position)
        if result.terminal:
            if result.reward > 0:
                traj.done = (score, length, cell.actions + bytes(actions))
            break
        if (result.died and end_on_life_loss) or length >= max_steps:
            break  # the dying step is dropped (a doomed state is no place to return to), as the truncated one
        if result.key not in visited:
            visited.add(result.key)
            traj.visits.append(result.key)
            if improves(score, length, known.get(result.key)):
                traj.candidates.append((result.key, score, length, domain.snapshot(), bytes(actions)))
    return traj


_WORKER_DOMAIN: Domain | None = None


def _init_worker(env_id: str, seed: int, domain_kwargs: dict) -> None:
    import torch

    torch.set_num_threads(1)
    global _WORKER_DOMAIN
    _WORKER_DOMAIN = make_domain(env_id, seed, **domain_kwargs)


def _explore_chunk(args: tuple) -> list[Trajectory]:
    tasks, known, settings = args
    return [explore_from(_WORKER_DOMAIN, key, cell, known, np.random.default_rng(seed_seq), index=i, **settings)
            for i, key, cell, seed_seq in tasks]


# ------------------------------------------------------------------------------------------------- explorer
@dataclass
class GoExploreConfig:
    """Phase-1 settings (spec §9; MiniGrid values in §3.4)."""

    batch_size: int = 100
    explore_steps: int = 100
    repeat_prob: float = 0.95  # action repeat with mean 20 steps
    weights: Weights = "nature"
    end_on_life_loss: bool = True
    reset_cell_on_update: bool = True
    max_steps: int = 27_000  # episode cap in agent steps (108,000 Atari frames)
    return_to_cells: bool = True  # False: always start from reset (the no-return baseline)
    workers: int = 1
    domain_kwargs: dict = field(default_factory=dict)

    def validate(self) -> "GoExploreConfig":
        for name in ("batch_size", "explore_steps", "max_steps", "workers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"go_explore: {name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= float(self.repeat_prob) < 1.0:
            raise ValueError(f"go_explore: repeat_prob must be in [0, 1), got {self.repeat_prob}")
        if self.weights not in ("nature", "ge2019"):
            raise ValueError(f"go_explore: weights must be 'nature' or 'ge2019', got {self.weights!r}")
        return self


@dataclass
class IterationStats:
    iteration: int
    frames: int  # frames emulated (explore steps x frames per step): the budget
    frames_game: int  # plus the trajectories returned to, as if replayed (the papers' "game frames")
    cells: int
    max_score: float
    coverage: int  # distinct positions seen: rooms (Atari), agent cells (MiniGrid)
    solved_at: int | None  # frames when a positive-reward terminal state was first reached
    wall_time_s: float


class GoExplore:
    """Go-Explore phase 1 on a catalogue env (`make_domain`), or on any `domain` given. See the module docstring.

    >>> explorer = GoExplore("MiniGrid-DoorKey-8x8-v0", seed=0, config=GoExploreConfig(batch_size=20, explore_steps=50))
    >>> stats = explorer.iteration()
    """

    def __init__(self, env_id: str, seed: int = 0, config: GoExploreConfig | None = None, domain: Domain | None = None) -> None:
        self.env_id = env_id
        self.seed = int(seed)
        self.config = (config or GoExploreConfig()).validate()
        if domain is not None and self.config.workers > 1:
            raise ValueError("go_explore: a domain object runs in this process only (workers=1); workers build theirs from env_id")
        self.domain = domain if domain is not None else make_domain(env_id, self.seed, **self.config.domain_kwargs)
        start = self.domain.reset()
        self.start_key = start.key
        self.archive: dict[Hashable, Cell] = {start.key: Cell(0.0, 0, self.domain.snapshot(), b"")}
        self.positions: set = {start.position} if start.position is not None else set()
        self.iterations = 0
        self.frames = 0
        self.frames_game = 0
        self.max_score = 0.0
        self.best_done: tuple[float, int, bytes] | None = None
        self.solved_at: int | None = None
        self.wall_time_s = 0.0
        self._pool = None

    # ------------------------------------------------------------------ one iteration
    def select(self, rng: np.random.Generator) -> list[Hashable]:
        if not self.config.return_to_cells:
            return [self.start_key] * self.config.batch_size
        keys = list(self.archive)
        cells = self.archive.values()
        w = selection_weights(
            np.fromiter((c.seen for c in cells), np.float64, len(keys)),
            np.fromiter((c.chosen for c in cells), np.float64, len(keys)),
            np.fromiter((c.chosen_since_new for c in cells), np.float64, len(keys)),
            self.config.weights,
        )
        picks = rng.choice(len(keys), size=self.config.batch_size, p=w / w.sum())
        return [keys[i] for i in picks]

    def iteration(self) -> IterationStats:
        t0 = time.perf_counter()
        seeds = np.random.SeedSequence([self.seed, self.iterations]).spawn(self.config.batch_size + 1)
        picks = self.select(np.random.default_rng(seeds[0]))
        known = {k: (c.score, c.traj_len) for k, c in self.archive.items()}
        tasks = [(i, key, self.archive[key], seeds[i + 1]) for i, key in enumerate(picks)]
        settings = {k: getattr(self.config, k) for k in ("explore_steps", "repeat_prob", "end_on_life_loss", "max_steps")}
        updated: set[Hashable] = set()
        for traj in self._run(tasks, known, settings):
            updated |= self.apply(traj, origin=tasks[traj.index][2])
        if self.config.reset_cell_on_update:
            for key in updated:
                cell = self.archive[key]
                cell.seen = cell.chosen = cell.chosen_since_new = 0
        self.iterations += 1
        self.wall_time_s += time.perf_counter() - t0
        return self.stats()

    def _run(self, tasks: list[tuple], known: dict, settings: dict) -> Iterable[Trajectory]:
        if self.config.workers == 1:
            return [explore_from(self.domain, key, cell, known, np.random.default_rng(s), index=i, **settings) for i, key, cell, s in tasks]
        if self._pool is None:
            ctx = mp.get_context("spawn")  # forking after torch has run can crash the children
            self._pool = ctx.Pool(self.config.workers, _init_worker, (self.env_id, self.seed, self.config.domain_kwargs))
        chunks = [tasks[w :: self.config.workers] for w in range(self.config.workers)]
        results = self._pool.map(_explore_chunk, [(chunk, known, settings) for chunk in chunks if chunk])
        return sorted((traj for chunk in results for traj in chunk), key=lambda traj: traj.index)

    def apply(self, traj: Trajectory, origin: Cell) -> set[Hashable]:
        """Counters and archive updates of one trajectory (spec §4.4, §5), in the order it saw them; returns the
        keys it added or improved.

        `origin`: the cell as it was when the trajectory returned to it. An earlier trajectory of the batch may have
        improved the archived cell since; the new cells' action paths must extend the path that was restored.
        """
        start = self.archive[traj.start]
        start.chosen += 1
        start.chosen_since_new += 1
        start.seen += 1
        fps = self.domain.frames_per_step
        self.frames += traj.steps * fps
        self.frames_game += (origin.traj_len + traj.steps) * fps
        self.positions |= traj.positions
        candidates = {c[0]: c for c in traj.candidates}
        updated = set()
        for key in traj.visits:
            cell = self.archive.get(key)
            if key in candidates:
                _, score, length, snapshot, suffix = candidates[key]
                if accepts(cell, score, length):
                    cell = self.archive[key] = _with_path(cell, score, length, snapshot, origin.actions + suffix)
                    updated.add(key)
                    self.max_score = max(self.max_score, score)
            if cell is not None:
                cell.seen += 1
        if updated:
            start.chosen_since_new = 0
        if traj.done is not None:
            if self.solved_at is None:
                self.solved_at = self.frames
            if improves(traj.done[0], traj.done[1], None if self.best_done is None else self.best_done[:2]):
                self.best_done = traj.done
            self.max_score = max(self.max_score, traj.done[0])
        return updated

    def stats(self) -> IterationStats:
        return IterationStats(self.iterations, self.frames, self.frames_game, len(self.archive), self.max_score,
                              len(self.positions), self.solved_at, self.wall_time_s)

    # ------------------------------------------------------------------ running
    def run(self, frames: int, callback: Callable[[IterationStats], Any] | None = None, until_solved: bool = False) -> IterationStats:
        """Iterate until `frames` frames have been emulated in all (resumes count what was done before), or, with
        `until_solved`, until a positive-reward terminal state is reached. `callback(stats)` after each iteration."""
        stats = self.stats()
        try:
            while self.frames < frames and not (until_solved and self.solved_at is not None):
                stats = self.iteration()
                if callback is not None:
                    callback(stats)
        finally:
            self.close()
        return stats

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def best_cell(self) -> Cell:
        """The archived cell with the highest score (then the shortest trajectory)."""
        return max(self.archive.values(), key=lambda c: (c.score, -c.traj_len))

    def demonstration(self) -> dict[str, Any]:
        """The best trajectory found, as action indices from reset: a positive-reward terminal state (a solved
        MiniGrid task) if one was reached, otherwise the best archived cell."""
        if self.best_done is not None:
            score, length, actions = self.best_done
            return {"score": score, "length": length, "actions": list(actions), "terminal": True}
        cell = self.best_cell()
        return {"score": cell.score, "length": cell.traj_len, "actions": list(cell.actions), "terminal": False}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id, "seed": self.seed, "config": asdict(self.config),
            "archive": self.archive, "positions": self.positions, "iterations": self.iterations,
            "frames": self.frames, "frames_game": self.frames_game, "max_score": self.max_score,
            "best_done": self.best_done, "solved_at": self.solved_at, "wall_time_s": self.wall_time_s,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["env_id"] != self.env_id or int(state["seed"]) != self.seed:
            raise ValueError(f"a Go-Explore state of {state['env_id']} seed {state['seed']} cannot load into {self.env_id} seed {self.seed}")
        for name in ("archive", "positions", "iterations", "frames", "frames_game", "max_score", "best_done", "solved_at", "wall_time_s"):
            setattr(self, name, state[name])



# ---------------------------------------------------------------------------------------------- reset wrapper
class GoExploreResetWrapper(gym.Wrapper):
    """Start episodes from archived states: Go-Explore's "return", then the policy explores (spec §8.2).

    Wraps a catalogue env of the Atari or MiniGrid family (`explore_bench.envs.make_env`). Every step of the policy
    computes the state's cell (Atari: the 11x8x8 cell of the raw screen; MiniGrid: the exact state) and keeps, per
    cell, the best snapshot reached by the policy's own episodes (the update rule of `accepts`, with the episode's
    score and length) and a `seen` count (once per episode). At reset, with probability `p_return` (and an archive
    that holds more than the start), the env is reset, a cell drawn with `selection_weights`, its snapshot restored,
    and one `noop_action` stepped through the wrapper stack so that every wrapper's observation (frame stacks
    included) comes from the restored state; that step is part of the new episode. Otherwise a plain reset.

    For training only: evaluation must start from the true reset. With sticky actions the return is approximate
    (the snapshot holds the emulator, not the action history). `info["returned"]` says whether the episode starts
    from an archived cell.
    """

    def __init__(self, env: gym.Env, p_return: float = 0.5, weights: Weights = "nature", seed: int = 0,
                 noop_action: int | None = None) -> None:
        super().__init__(env)
        if not 0.0 <= p_return <= 1.0:
            raise ValueError(f"GoExploreResetWrapper: p_return must be in [0, 1], got {p_return}")
        from minigrid.minigrid_env import MiniGridEnv

        base = env.unwrapped
        self.family = "atari" if hasattr(base, "ale") else "minigrid" if isinstance(base, MiniGridEnv) else None
        if self.family is None:
            raise TypeError(f"GoExploreResetWrapper needs an ALE or MiniGrid env it can snapshot, got {type(base).__name__}")
        self.p_return, self.weights = float(p_return), weights
        self.noop_action = noop_action if noop_action is not None else (0 if self.family == "atari" else int(base.actions.done))
        self.rng = np.random.default_rng(seed)
        self.archive: dict[Hashable, Cell] = {}
        self._visited: set = set()
        self._score, self._length = 0.0, 0

    def key(self) -> Hashable:
        base = self.env.unwrapped
        if self.family == "atari":
            return atari_cell(base.ale)
        return MiniGridDomain.state_key(base)

    def snapshot(self) -> Any:
        base = self.env.unwrapped
        return base.ale.cloneState() if self.family == "atari" else pickle.dumps(base, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: Any) -> None:
        base = self.env.unwrapped
        if self.family == "atari":
            base.ale.restoreState(snapshot)
        else:  # in place: the wrappers above hold this very object
            base.__dict__.update(pickle.loads(snapshot).__dict__)

    def _visit(self, terminal: bool) -> None:
        """Counters and archive update for the state just reached (terminal states are never archived)."""
        if terminal:
            return
        key = self.key()
        if key in self._visited:
            return
        self._visited.add(key)
        cell = self.archive.get(key)
        if accepts(cell, self._score, self._length):
            cell = self.archive[key] = _with_path(cell, self._score, self._length, self.snapshot(), b"")
        cell.seen += 1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._visited = set()
        returned = len(self.archive) > 1 and self.rng.random() < self.p_return
        if returned:
            keys = list(self.archive)
            cells = list(self.archive.values())
            w = selection_weights([c.seen for c in cells], [c.chosen for c in cells], [c.chosen_since_new for c in cells], self.weights)
            cell = cells[int(self.rng.choice(len(keys), p=w / w.sum()))]
            cell.chosen += 1
            self.restore(cell.snapshot)
            self._score, self._length = cell.score, cell.traj_len
            obs, reward, terminated, truncated, info = self.env.step(self.noop_action)
            self._score += float(reward)
            self._length += 1
            if terminated or truncated:  # the no-op ended it (a time limit): start from the true reset instead
                obs, info = self.env.reset()
                returned = False
        if not returned:
            self._score, self._length = 0.0, 0
        self._visit(False)
        return obs, {**info, "returned": returned}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._score += float(reward)
        self._length += 1
        self._visit(terminated or truncated)
        return obs, reward, terminated, truncated, info
