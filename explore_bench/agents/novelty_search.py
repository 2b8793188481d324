"""Novelty search and its learned-behaviour-space and emitter extensions: NS, TAXONS, SERENE, STAX, with the
baselines that make the point (random policy search, an elitist objective-driven ES).

Spec: shared/specs/novelty_search.md (§3 algorithms, §7 pitfalls, §8 CPU-scale settings). Population-based,
gradient-free search over the genomes of a small MLP controller (``novelty_domains.Controller``); each evaluation is
one episode in a ``Domain`` (the deceptive point maze, vectorised over the population; a MiniGrid task).

The algorithms, top to bottom:

- ``PolicySearch``: what every method shares: budgeted evaluation (``evaluate`` never exceeds the budget: a last
  batch is cut to what is left), Gaussian mutation, the metrics (``SearchMetrics``: ground-truth coverage, best
  reward, evaluations to the first reward), and ``run``: chunks of ``chunk_size`` evaluations until the budget is
  spent, a callback after every generation or emitter step and after every chunk (the runner's checkpoints).
- ``NoveltySearch`` (§3.1): each generation every parent makes ``offspring_per_parent`` mutated children; novelty =
  mean distance to the ``k`` nearest BDs of population + children + archive (+ reward archive), the query itself
  skipped; ``archive_lambda`` random children join the never-pruned archive; the population becomes the
  ``pop_size`` best of parents + children by the generation's criterion (mu + lambda).
- ``LearnedBehaviour`` (§3.2, a mixin): the BD is the latent code of a ``BehaviourAE`` of the final state's image,
  the criterion novelty or surprise (reconstruction error) with probability 1/2 each generation; the AE is
  retrained after exploration chunks 1, 3, 6, 10, 15, ... on the views of archive + population + offspring (+ reward
  archive) and then every stored BD is recomputed (pitfall 3). ``Taxons = LearnedBehaviour + NoveltySearch``.
- ``Serene`` (§3.3): alternating exploration (NS) and exploitation chunks; a rewarding agent found by NS goes to the
  reward archive and seeds a candidate emitter (an elitist local optimiser of the reward, ``Emitter``); exploit
  chunks bootstrap candidates (promoted if they improve), then run the emitter picked on the Pareto front of
  (novelty w.r.t. the reward archive, improvement) until the chunk is spent or it stagnates; an exploit chunk with
  no emitter costs nothing, so NS has the whole budget until a reward is found. ``Stax = LearnedBehaviour + Serene``.
- ``RandomPolicySearch``: fresh N(0, 1) genomes every generation. ``ObjectiveES``: (mu + lambda) elitist ES with the
  same mutation, selecting on the dense distance to the goal (``objective="distance"``, deceived in the maze) or on
  the sparse reward (``objective="reward"``, ties broken at random).

Every explorer is deterministic given its seed, and ``state_dict`` / ``load_state_dict`` hold all of it (numpy
arrays, python numbers and torch tensors only: ``explore_bench.runner.novelty.state_bytes`` checkpoints it with
``torch.save`` and ``load_state`` loads it with ``weights_only=True``), so a run resumed from a chunk boundary ends
exactly as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Literal, Mapping

import numpy as np
from scipy.spatial import cKDTree

from explore_bench.agents.novelty_domains import Domain, Evaluation

__all__ = [
    "ALGORITHMS",
    "Agents",
    "Emitter",
    "LearnedBehaviour",
    "NoveltySearch",
    "ObjectiveES",
    "PolicySearch",
    "RandomPolicySearch",
    "RecordingNS",
    "SearchConfig",
    "SearchMetrics",
    "Serene",
    "Stax",
    "Taxons",
    "emitter_sigma",
    "make_search",
    "novelty",
    "pareto_front",
    "search_config",
    "stagnated",
    "stagnation_window",
]


# ----------------------------------------------------------------------------------------------------- novelty
def novelty(queries: np.ndarray, reference: np.ndarray, k: int = 15, skip_self: bool = True) -> np.ndarray:
    """Mean Euclidean distance of each query BD to its ``k`` nearest BDs in ``reference``.

    ``skip_self``: the queries are members of ``reference``, so the first (zero) distance, the query itself or an
    exact duplicate, is skipped (pitfall 1). With fewer than ``k`` others the mean is over those there are; with none,
    0. A KD-tree, so an archive of tens of thousands of BDs is fine (pitfall 8)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    reference = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if k < 1:
        raise ValueError(f"novelty: k must be >= 1, got {k}")
    n_neighbours = min(k + int(skip_self), len(reference))
    if not len(queries) or n_neighbours - int(skip_self) < 1:
        return np.zeros(len(queries))
    if queries.shape[1] != reference.shape[1]:
        raise ValueError(f"novelty: queries have {queries.shape[1]} dimensions, the reference set {reference.shape[1]}")
    distances, _ = cKDTree(reference).query(queries, k=n_neighbours)
    distances = distances.reshape(len(queries), n_neighbours)
    return distances[:, int(skip_self):].mean(1)


def pareto_front(*objectives: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (every objective maximised)."""
    values = np.stack([np.asarray(o, dtype=np.float64) for o in objectives], 1)  # (n, m)
    geq = (values[None, :, :] >= values[:, None, :]).all(-1)  # geq[i, j]: j is at least as good as i everywhere
    gt = (values[None, :, :] > values[:, None, :]).any(-1)
    return np.flatnonzero(~(geq & gt).any(1))


def emitter_sigma(genome: np.ndarray, others: np.ndarray, fallback: float = 0.05, cap: float | None = 0.1) -> float:
    """An emitter's mutation scale (§3.3): the ancestor's smallest genome distance to the other population and
    offspring genomes, divided by 3; ``fallback`` when it is 0 (or there are no others); at most ``cap`` (pitfall 11:
    with CPU-scale mutation the uncapped value is 0.3-0.5 and the emitter stalls)."""
    others = np.atleast_2d(others)
    d = float(np.linalg.norm(others - genome, axis=1).min()) if len(others) else 0.0
    sigma = d / 3 if d > 0 else float(fallback)
    return min(sigma, float(cap)) if cap is not None else sigma


def stagnation_window(genome_size: int, emitter_pop: int) -> int:
    """B = int(20 G / emitter_pop + 120): the steps an emitter runs before its stagnation test applies (280 for G =
    48 and 6 members)."""
    return int(20 * genome_size / emitter_pop + 120)


def stagnated(values: list[np.ndarray], steps: int, window: int) -> bool:
    """The "custom" stagnation test of §3.3: past ``window`` steps, compare the rewards of the first 20 and the last 20
    steps of the last ``window``; stagnated if the median or the maximum has not grown."""
    if steps <= window:
        return False
    recent = values[-window:]
    first, last = np.concatenate(recent[:20]), np.concatenate(recent[-20:])
    return bool(np.median(first) >= np.median(last) or first.max() >= last.max())


# ------------------------------------------------------------------------------------------------------ agents
@dataclass(eq=False)
class Agents:
    """A set of evaluated policies as columns: a population, offspring, an archive, an emitter's population.

    Every array has one row per agent. ``view`` (uint8 final-state images) only where a learned BD needs them."""

    genome: np.ndarray  # (n, G) float64
    bd: np.ndarray  # (n, d) float64 behaviour descriptor (hand-designed, or the AE's latent code)
    cell: np.ndarray  # (n, 2) int64 ground-truth cell of the final state (metrics only)
    reward: np.ndarray  # (n,) float64
    area: np.ndarray  # (n,) int64 reward area reached, -1 for none
    goal_distance: np.ndarray  # (n,) float64 dense distance to the goal (ObjectiveES)
    born: np.ndarray  # (n,) int64 index of the agent's evaluation
    novelty: np.ndarray  # (n,) float64, as last computed
    surprise: np.ndarray  # (n,) float64 AE reconstruction error (0 with a hand-designed BD)
    used: np.ndarray  # (n,) bool: already seeded an emitter (SERENE)
    view: np.ndarray | None = None  # (n, S, S) uint8

    def __len__(self) -> int:
        return len(self.reward)

    def take(self, idx: np.ndarray | slice) -> Agents:
        """A copy of the rows ``idx``."""
        return Agents(**{f.name: (None if (v := getattr(self, f.name)) is None else v[idx].copy())
                         for f in fields(self)})

    @classmethod
    def concat(cls, *parts: Agents) -> Agents:
        return cls(**{f.name: (None if getattr(parts[0], f.name) is None
                               else np.concatenate([getattr(p, f.name) for p in parts])) for f in fields(cls)})

    @classmethod
    def empty(cls, genome_size: int, bd_dim: int, view_size: int | None = None) -> Agents:
        return cls(np.zeros((0, genome_size)), np.zeros((0, bd_dim)), np.zeros((0, 2), np.int64), np.zeros(0),
                   np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0), np.zeros(0),
                   np.zeros(0, bool), None if view_size is None else np.zeros((0, view_size, view_size), np.uint8))

    def state(self) -> dict[str, np.ndarray | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Agents:
        return cls(**{f.name: state[f.name] for f in fields(cls)})


@dataclass(eq=False)
class Emitter:
    """A local optimiser seeded at a rewarding agent (§3.3, the elitist fitness emitter)."""

    ancestor: Agents  # one agent
    sigma: float  # mutation scale of its children
    most_novel: float  # novelty of the most novel child so far (starts at the ancestor's)
    pop: Agents | None = None  # its population (emitter_pop agents once initialised)
    candidates: Agents | None = None  # children more novel than any before: NS-archive candidates
    values: list[np.ndarray] = field(default_factory=list)  # rewards of its population after each step
    init_values: list[np.ndarray] | None = None  # values of its first 3 steps (the improvement's reference)
    improvement: float = 0.0
    steps: int = 0
    archived_best: float | None = None  # best reward it put in the reward archive

    def estimate_improvement(self) -> None:
        """max(mean of the last 3 steps' rewards - mean of the first 3 steps', 0)."""
        if self.init_values is None:
            self.init_values = self.values[:3]
        self.improvement = max(float(np.mean(self.values[-3:]) - np.mean(self.init_values)), 0.0)

    def state(self) -> dict[str, Any]:
        return {"ancestor": self.ancestor.state(), "sigma": self.sigma, "most_novel": self.most_novel,
                "pop": None if self.pop is None else self.pop.state(),
                "candidates": None if self.candidates is None else self.candidates.state(),
                "values": list(self.values),
                "init_values": None if self.init_values is None else list(self.init_values),
                "improvement": self.improvement, "steps": self.steps, "archived_best": self.archived_best}

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Emitter:
        return cls(Agents.from_state(s["ancestor"]), float(s["sigma"]), float(s["most_novel"]),
                   None if s["pop"] is None else Agents.from_state(s["pop"]),
                   None if s["candidates"] is None else Agents.from_state(s["candidates"]), list(s["values"]),
                   None if s["init_values"] is None else list(s["init_values"]), float(s["improvement"]),
                   int(s["steps"]), s["archived_best"])


# ------------------------------------------------------------------------------------------------------ config
@dataclass
class SearchConfig:
    """Settings of every explorer (an agent file's ``explorer`` mapping); each method reads the ones it uses.
    Defaults: spec §8's CPU scale (pop 100, 2 offspring, sigma 0.1, lambda 5, k 15, chunks of 1000)."""

    pop_size: int = 100
    offspring_per_parent: int = 2
    sigma: float = 0.1  # mutation std (pitfall 4: the paper's 0.05 is too slow at CPU budgets)
    mutation_prob: float = 1.0  # probability that a gene is mutated
    genome_limit: float = 5.0  # genes live in [-limit, limit]
    init_std: float = 1.0  # initial genomes N(0, init_std^2), clipped
    k: int = 15  # nearest neighbours of the novelty
    archive_lambda: int = 5  # children archived per generation
    archive_selection: Literal["random", "best"] = "random"
    chunk_size: int = 1000  # evaluations per chunk (SERENE's scheduler; checkpoints)
    # learned behaviour space (taxons, stax)
    latent: int = 10
    view_size: int = 32
    criterion: Literal["taxons", "novelty", "surprise"] = "taxons"  # taxons: a coin flip each generation
    train_ae: bool = True  # False: the NT ablation (the untrained AE's latent)
    train_on_reward: bool = True  # the reward archive's views join the AE's training data (STAX)
    ae_lr: float = 1e-3
    ae_batch_size: int = 128
    ae_max_epochs: int = 20
    ae_patience: int = 3
    ae_output: Literal["sigmoid", "relu"] = "sigmoid"
    ae_collapse_ratio: float = 1.0
    ae_reinit_tries: int = 2
    # emitters (serene, stax)
    emitter_pop: int = 6
    emitter_sigma_cap: float | None = 0.1  # pitfall 11; None: uncapped
    emitter_sigma_fallback: float = 0.05  # when the ancestor's nearest genome is at distance 0
    bootstrap_steps: int = 5  # candidate emitters' trial steps
    max_emitter_steps: int | None = None
    # objective_es
    objective: Literal["distance", "reward"] = "distance"
    # controller and episode (None: the domain's defaults, spec §8)
    hidden_layers: int | None = None
    hidden_size: int | None = None
    episode_len: int | None = None
    n_actions: int | None = None  # MiniGrid: the first n actions (3: left, right, forward; 6 adds pickup/drop/toggle)
    # metrics snapshots at these evaluation counts (spec §9/§10 budgets)
    report_at: tuple[int, ...] = (10_000, 20_000, 50_000)

    def __post_init__(self) -> None:
        self.report_at = tuple(int(r) for r in self.report_at)
        ints = {"pop_size": 1, "offspring_per_parent": 1, "k": 1, "archive_lambda": 0, "chunk_size": 1, "latent": 1,
                "view_size": 8, "ae_batch_size": 1, "ae_max_epochs": 1, "ae_patience": 0, "ae_reinit_tries": 0,
                "emitter_pop": 1, "bootstrap_steps": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"explorer setting {name!r}: expected an integer >= {low}, got {value!r}")
        positive = ("sigma", "genome_limit", "init_std", "emitter_sigma_fallback", "ae_collapse_ratio")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"explorer setting {name!r}: expected a positive number, got {value!r}")
        for name in ("mutation_prob",):
            if not isinstance(getattr(self, name), (int, float)) or not 0 < getattr(self, name) <= 1:
                raise ValueError(f"explorer setting {name!r}: expected a number in (0, 1], got {getattr(self, name)!r}")
        if not isinstance(self.ae_lr, (int, float)) or self.ae_lr < 0:
            raise ValueError(f"explorer setting 'ae_lr': expected a number >= 0, got {self.ae_lr!r}")
        if self.view_size % 8:
            raise ValueError(f"explorer setting 'view_size': expected a multiple of 8, got {self.view_size}")
        if self.emitter_sigma_cap is not None and not self.emitter_sigma_cap > 0:
            raise ValueError(f"explorer setting 'emitter_sigma_cap': expected a positive number or null, got "
                             f"{self.emitter_sigma_cap!r}")
        choices = {"archive_selection": ("random", "best"), "criterion": ("taxons", "novelty", "surprise"),
                   "ae_output": ("sigmoid", "relu"), "objective": ("distance", "reward")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"explorer setting {name!r}: expected one of {allowed}, got {getattr(self, name)!r}")
        for name in ("hidden_layers", "hidden_size", "episode_len", "n_actions", "max_emitter_steps"):
            value, low = getattr(self, name), 0 if name == "hidden_layers" else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ValueError(f"explorer setting {name!r}: expected a positive integer or null, got {value!r}")


# ----------------------------------------------------------------------------------------------------- metrics
class SearchMetrics:
    """Ground-truth metrics of a search, over every evaluation: coverage (filled cells of the domain's grid), the
    same over exploration (NS) evaluations only (pitfall 9), the cells any step occupied (``cells_visited``, where
    the domain reports trajectories: the measure RL runs share), best reward, reward areas found, and when the
    first reward came (evaluations and frames). ``snapshots[n]`` holds them as they were after exactly n
    evaluations."""

    def __init__(self, grid_shape: tuple[int, int], report_at: tuple[int, ...] = ()) -> None:
        self.visited = np.zeros(grid_shape, bool)
        self.visited_explore = np.zeros(grid_shape, bool)
        self.visited_steps: np.ndarray | None = None  # grid_shape bool, from the first evaluation that reports steps
        self.best_reward = 0.0
        self.best_bd: list[float] | None = None  # BD of the best-rewarded agent (None until a reward)
        self.first_reward_evaluation: int | None = None
        self.first_reward_frames: int | None = None
        self.areas: list[int] = []
        self.report_at = tuple(sorted(report_at))
        self.snapshots: dict[int, dict[str, Any]] = {}

    def update(self, agents: Agents, steps: np.ndarray, evaluations: int, frames: int, exploring: bool,
               visited: np.ndarray | None = None) -> None:
        """Count ``agents``, evaluated after ``evaluations`` evaluations and ``frames`` frames (``visited``: their
        episodes' cells, ``Evaluation.visited``)."""
        if not len(agents):
            return
        if visited is not None:
            if self.visited_steps is None:
                self.visited_steps = np.zeros(self.visited.shape, bool)
            self.visited_steps |= visited.any(axis=0)
        self.visited[agents.cell[:, 0], agents.cell[:, 1]] = True
        if exploring:
            self.visited_explore[agents.cell[:, 0], agents.cell[:, 1]] = True
        best = int(np.argmax(agents.reward))
        if agents.reward[best] > self.best_reward:
            self.best_reward = float(agents.reward[best])
            self.best_bd = [float(v) for v in agents.bd[best]]
        found = np.flatnonzero(agents.reward > 0)
        if len(found) and self.first_reward_evaluation is None:
            self.first_reward_evaluation = evaluations + int(found[0]) + 1
            self.first_reward_frames = frames + int(steps[: found[0] + 1].sum())
        self.areas = sorted(set(self.areas) | {int(a) for a in agents.area[agents.area >= 0]})

    @property
    def coverage(self) -> int:
        return int(self.visited.sum())

    @property
    def coverage_explore(self) -> int:
        return int(self.visited_explore.sum())

    @property
    def cells_visited(self) -> int | None:
        return None if self.visited_steps is None else int(self.visited_steps.sum())

    def state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("visited", "visited_explore", "visited_steps", "best_reward", "best_bd",
                                              "first_reward_evaluation", "first_reward_frames", "areas", "snapshots")}

    def load(self, state: Mapping[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self.snapshots = {int(k): dict(v) for k, v in self.snapshots.items()}


# -------------------------------------------------------------------------------------------------- the search
class PolicySearch:
    """What every explorer shares: budgeted evaluation, mutation, metrics, the chunk loop, the state."""

    name: ClassVar[str] = "policy_search"
    learned_bd: ClassVar[bool] = False

    def __init__(self, domain: Domain, config: SearchConfig | None = None, seed: int = 0) -> None:
        self.domain = domain
        self.config = config or SearchConfig()
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.genome_size = domain.controller.genome_size
        self.bd_dim = self.config.latent if self.learned_bd else domain.bd_dim
        if self.learned_bd and domain.view_size != self.config.view_size:
            raise ValueError(f"{self.name}: the domain renders {domain.view_size}x{domain.view_size} images, the "
                             f"autoencoder expects view_size {self.config.view_size}")
        self.evaluations = 0
        self.explore_evaluations = 0
        self.frames = 0
        self.generation = 0
        self.chunks = 0
        self.budget = 0
        self.exploring = True  # evaluations now are exploration (NS), not exploitation (emitters)
        self.metrics = SearchMetrics(domain.grid_shape, self.config.report_at)

    # ------------------------------------------------------------------------------------------ evaluation
    def remaining(self) -> int:
        return max(self.budget - self.evaluations, 0)

    def evaluate(self, genomes: np.ndarray) -> Agents:
        """Evaluate genomes (the first ``remaining()`` of them: the budget is never exceeded, pitfall 6) and count
        them; the agents with their BDs (``describe``)."""
        genomes = np.asarray(genomes, dtype=np.float64)[: self.remaining()]
        if not len(genomes):
            return Agents.empty(self.genome_size, self.bd_dim, self.config.view_size if self.learned_bd else None)
        ev = self.domain.evaluate(genomes, views=self.learned_bd)
        n = len(genomes)
        agents = Agents(genomes, ev.bd, ev.cell, ev.reward, ev.area, ev.goal_distance,
                        np.arange(self.evaluations, self.evaluations + n), np.zeros(n), np.zeros(n), np.zeros(n, bool),
                        ev.view)
        self.describe(agents, ev)
        self._count(agents, ev)
        return agents

    def _count(self, agents: Agents, ev: Evaluation) -> None:
        """Update counters and metrics, snapshotting the metrics at the ``report_at`` evaluation counts."""
        start = 0
        for mark in self.config.report_at:
            if self.evaluations < mark <= self.evaluations + len(agents) - start:
                cut = start + mark - self.evaluations
                self._count_slice(agents, ev, slice(start, cut))
                self.metrics.snapshots[mark] = self.snapshot()
                start = cut
        self._count_slice(agents, ev, slice(start, len(agents)))

    def _count_slice(self, agents: Agents, ev: Evaluation, part: slice) -> None:
        chunk = agents.take(part)
        self.metrics.update(chunk, ev.steps[part], self.evaluations, self.frames, self.exploring,
                            None if ev.visited is None else ev.visited[part])
        self.evaluations += len(chunk)
        self.explore_evaluations += len(chunk) if self.exploring else 0
        self.frames += int(ev.steps[part].sum())

    def describe(self, agents: Agents, ev: Evaluation) -> None:
        """Set the agents' BDs (and surprise): the domain's hand-designed BD here; the AE's code with a learned BD."""

    def mutate(self, genomes: np.ndarray, sigma: float) -> np.ndarray:
        """``clip(g + N(0, sigma^2) * [u < mutation_prob], -limit, limit)`` per gene."""
        noise = self.rng.normal(0.0, sigma, genomes.shape)
        if self.config.mutation_prob < 1:
            noise *= self.rng.random(genomes.shape) < self.config.mutation_prob
        return np.clip(genomes + noise, -self.config.genome_limit, self.config.genome_limit)

    def random_genomes(self, n: int) -> np.ndarray:
        limit = self.config.genome_limit
        return np.clip(self.rng.normal(0.0, self.config.init_std, (n, self.genome_size)), -limit, limit)

    # ------------------------------------------------------------------------------------------- the loop
    def run(self, budget: int, on_step: Callable[[], Any] | None = None,
            on_chunk: Callable[[], Any] | None = None) -> dict[str, Any]:
        """Search until ``budget`` evaluations in all; ``on_step`` after every generation or emitter step,
        ``on_chunk`` after every chunk (a state a resumed run can start from). Returns ``stats()``."""
        self.budget = int(budget)
        step = on_step or (lambda: None)
        while self.evaluations < self.budget:
            self.step_chunk(step)
            self.chunks += 1
            if on_chunk is not None:
                on_chunk()
        return self.stats()

    def step_chunk(self, on_step: Callable[[], Any]) -> None:
        """Spend one chunk (``chunk_size`` evaluations, the last generation or step of it may go past)."""
        raise NotImplementedError

    def chunk_spent(self, start: int) -> bool:
        return self.evaluations - start >= self.config.chunk_size or not self.remaining()

    # ---------------------------------------------------------------------------------------------- report
    def archive_size(self) -> int:
        return 0

    def snapshot(self) -> dict[str, Any]:
        """The metrics of spec §9/§10 now."""
        m = self.metrics
        return {"evaluations": self.evaluations, "frames": self.frames, "coverage": m.coverage,
                "coverage_explore": m.coverage_explore, "best_reward": m.best_reward,
                "first_reward_evaluation": m.first_reward_evaluation, "archive_size": self.archive_size()}

    def stats(self) -> dict[str, Any]:
        """Everything the runner reports (progress rows, archive.csv, the summary)."""
        m = self.metrics
        return {**self.snapshot(), "explore_evaluations": self.explore_evaluations, "generation": self.generation,
                "chunks": self.chunks, "first_reward_frames": m.first_reward_frames, "areas_found": len(m.areas),
                "best_bd": m.best_bd}

    # ----------------------------------------------------------------------------------------------- state
    _STATE_SCALARS: ClassVar[tuple[str, ...]] = ("evaluations", "explore_evaluations", "frames", "generation",
                                                 "chunks", "budget", "exploring")

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.name, "rng": self.rng.bit_generator.state, "metrics": self.metrics.state(),
                **{k: getattr(self, k) for k in self._STATE_SCALARS}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["method"] != self.name:
            raise ValueError(f"a {state['method']!r} state cannot be loaded into a {self.name!r} explorer")
        self.rng.bit_generator.state = state["rng"]
        self.metrics.load(state["metrics"])
        for k in self._STATE_SCALARS:
            setattr(self, k, state[k])

    def close(self) -> None:
        self.domain.close()


class RandomPolicySearch(PolicySearch):
    """Baseline: ``pop_size * offspring_per_parent`` fresh random genomes each generation, nothing kept."""

    name = "random_search"

    def step_chunk(self, on_step: Callable[[], Any]) -> None:
        start = self.evaluations
        while not self.chunk_spent(start):
            self.evaluate(self.random_genomes(self.config.pop_size * self.config.offspring_per_parent))
            self.generation += 1
            on_step()


class ObjectiveES(PolicySearch):
    """Baseline: an elitist (mu + lambda) ES with NS's mutation, selecting on the objective: minus the distance to
    the goal (dense, ``objective="distance"``) or the sparse reward (``"reward"``). Ties are broken at random, so
    the flat sparse objective drifts instead of freezing."""

    name = "objective_es"

    def __init__(self, domain: Domain, config: SearchConfig | None = None, seed: int = 0) -> None:
        super().__init__(domain, config, seed)
        self.population: Agents | None = None

    def fitness(self, agents: Agents) -> np.ndarray:
        return -agents.goal_distance if self.config.objective == "distance" else agents.reward

    def step_chunk(self, on_step: Callable[[], Any]) -> None:
        start, c = self.evaluations, self.config
        if self.population is None:
            self.population = self.evaluate(self.random_genomes(c.pop_size))
            on_step()
        while not self.chunk_spent(start):
            children = self.evaluate(self.mutate(np.repeat(self.population.genome, c.offspring_per_parent, 0), c.sigma))
            pool = Agents.concat(self.population, children)
            shuffled = self.rng.permutation(len(pool))
            keep = shuffled[np.argsort(-self.fitness(pool)[shuffled], kind="stable")[: c.pop_size]]
            self.population = pool.take(keep)
            self.generation += 1
            on_step()

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        if self.population is not None and len(self.population):  # where the objective led the population
            best = int(np.argmax(self.fitness(self.population)))
            out.update(best_fitness_bd=[float(v) for v in self.population.bd[best]],
                       best_goal_distance=float(self.population.goal_distance[best]))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": None if self.population is None else self.population.state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = None if state["population"] is None else Agents.from_state(state["population"])


class NoveltySearch(PolicySearch):
    """Novelty search (§3.1) on the domain's hand-designed BD."""

    name = "ns"

    def __init__(self, domain: Domain, config: SearchConfig | None = None, seed: int = 0) -> None:
        super().__init__(domain, config, seed)
        self.population: Agents | None = None
        self.offspring: Agents | None = None
        self.archive = Agents.empty(self.genome_size, self.bd_dim, self.config.view_size if self.learned_bd else None)

    def step_chunk(self, on_step: Callable[[], Any]) -> None:
        self.explore_chunk(on_step)

    def explore_chunk(self, on_step: Callable[[], Any]) -> None:
        """NS generations until the chunk is spent."""
        start = self.evaluations
        if self.population is None:
            self.population = self.evaluate(self.random_genomes(self.config.pop_size))
            on_step()
        while not self.chunk_spent(start):
            self.generation_step()
            on_step()
        self.after_explore_chunk()

    def generation_step(self) -> None:
        """One NS generation: children, novelty of parents and children, archive, mu + lambda selection."""
        c = self.config
        parents = self.population
        children = self.evaluate(self.mutate(np.repeat(parents.genome, c.offspring_per_parent, 0), c.sigma))
        self.offspring = children
        self.on_evaluated(parents, children)
        pool = Agents.concat(parents, children)
        # pitfall 2: the parents' novelty is recomputed every generation against the current reference set
        pool.novelty = novelty(pool.bd, np.concatenate([pool.bd, *self.reference_extra()]), c.k)
        score = pool.novelty if self.criterion() == "novelty" else pool.surprise
        child_scores = score[len(parents):]
        if c.archive_selection == "random":
            chosen = self.rng.permutation(len(children))[: c.archive_lambda]
        else:
            chosen = np.argsort(-child_scores, kind="stable")[: c.archive_lambda]
        self.archive = Agents.concat(self.archive, pool.take(len(parents) + np.sort(chosen)))
        self.population = pool.take(np.argsort(-score, kind="stable")[: c.pop_size])
        self.generation += 1

    def reference_extra(self) -> list[np.ndarray]:
        """BDs beside population and offspring in the novelty reference set: the archive (SERENE adds the reward
        archive)."""
        return [self.archive.bd]

    def criterion(self) -> str:
        """What the population is selected on this generation."""
        return "novelty"

    def on_evaluated(self, parents: Agents, children: Agents) -> None:
        """Hook after a generation's children are evaluated (SERENE seeds emitters there)."""

    def after_explore_chunk(self) -> None:
        """Hook after an exploration chunk (the AE's retraining schedule)."""

    def after_bd_change(self) -> None:
        """Hook after every stored BD was recomputed in a new behaviour space."""

    def archive_size(self) -> int:
        return len(self.archive)

    def stored_sets(self) -> list[Agents]:
        """Every set of agents the search keeps (whose BDs a retrained AE must recompute, pitfall 3)."""
        return [s for s in (self.population, self.offspring, self.archive) if s is not None]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "archive": self.archive.state(),
                **{k: (None if getattr(self, k) is None else getattr(self, k).state())
                   for k in ("population", "offspring")}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.archive = Agents.from_state(state["archive"])
        for k in ("population", "offspring"):
            setattr(self, k, None if state[k] is None else Agents.from_state(state[k]))



class RecordingNS(NoveltySearch):
    """NS that remembers its first rewarding agent, the other genomes of that generation and their BDs: where SERENE
    would seed its first emitter (spec §9 test 11 starts an emitter there; the benchmark and the tests use it)."""

    first_rewarding: tuple | None = None

    def on_evaluated(self, parents: Agents, children: Agents) -> None:
        pool = Agents.concat(parents, children)
        found = np.flatnonzero(pool.reward > 0)
        if len(found) and self.first_rewarding is None:
            self.first_rewarding = (pool.take(found[:1]), np.delete(pool.genome, found[0], axis=0), pool.bd.copy())

class Serene(NoveltySearch):
    """SERENE (§3.3): NS exploration chunks alternating with emitter exploitation chunks."""

    name = "serene"

    def __init__(self, domain: Domain, config: SearchConfig | None = None, seed: int = 0) -> None:
        super().__init__(domain, config, seed)
        self.reward_archive = Agents.empty(self.genome_size, self.bd_dim,
                                           self.config.view_size if self.learned_bd else None)
        self.candidates: list[Emitter] = []
        self.emitters: list[Emitter] = []
        self.emitters_finished = 0
        self.exploit_evaluations = 0
        self.exploit_best_reward = 0.0  # best reward an emitter found (the exploitation's own result)
        self.window = stagnation_window(self.genome_size, self.config.emitter_pop)

    def step_chunk(self, on_step: Callable[[], Any]) -> None:
        if self.chunks % 2 == 0:  # the alternating scheduler: explore, exploit, explore, ...
            self.explore_chunk(on_step)
        elif self.candidates or self.emitters:  # an exploit chunk with nothing to exploit costs nothing
            self.exploring = False
            try:
                self.exploit_chunk(on_step)
            finally:
                self.exploring = True

    def reference_extra(self) -> list[np.ndarray]:
        # reward-archive BDs push NS away from reward areas already being exploited
        return [self.archive.bd, self.reward_archive.bd]

    def ns_reference(self) -> np.ndarray:
        """The NS reference set (population, last offspring, archive, reward archive) for emitter agents."""
        sets = [s.bd for s in (self.population, self.offspring) if s is not None]
        return np.concatenate([*sets, *self.reference_extra()])

    def on_evaluated(self, parents: Agents, children: Agents) -> None:
        """Every rewarding agent not used yet goes to the reward archive and seeds a candidate emitter."""
        genomes = np.concatenate([parents.genome, children.genome])
        offset = 0
        for agents in (parents, children):
            for i in np.flatnonzero((agents.reward > 0) & ~agents.used):
                agents.used[i] = True
                ancestor = agents.take(np.array([i]))
                self.reward_archive = Agents.concat(self.reward_archive, ancestor)
                others = np.delete(genomes, offset + i, axis=0)
                sigma = emitter_sigma(ancestor.genome[0], others, self.config.emitter_sigma_fallback,
                                      self.config.emitter_sigma_cap)
                self.candidates.append(Emitter(ancestor, sigma, float("-inf")))
            offset += len(agents)

    # --------------------------------------------------------------------------------------------- exploit
    def exploit_chunk(self, on_step: Callable[[], Any]) -> None:
        """Bootstrap candidates (most novel first), then run chosen emitters until the chunk is spent."""
        c, start = self.config, self.evaluations
        reference = self.ns_reference()
        order = np.argsort(-self._reward_novelty([e.ancestor for e in self.candidates]), kind="stable")
        for emitter in [self.candidates[i] for i in order]:
            if self.config.chunk_size - (self.evaluations - start) <= c.chunk_size / 3 or not self.remaining():
                break
            self.candidates.remove(emitter)
            self.init_emitter(emitter, reference)
            for _ in range(c.bootstrap_steps):
                if not self.remaining():
                    break
                self.emitter_step(emitter, reference)
                on_step()
            emitter.estimate_improvement()
            if emitter.improvement > 0:
                self.emitters.append(emitter)
        while self.emitters and not self.chunk_spent(start):
            emitter = self._choose_emitter()
            while not self.chunk_spent(start):
                self.emitter_step(emitter, reference)
                on_step()
                if self._emitter_done(emitter):
                    self._finish_emitter(emitter)
                    break
            else:
                emitter.estimate_improvement()
        self.exploit_evaluations += self.evaluations - start

    def after_bd_change(self) -> None:
        # the emitters' most-novel thresholds are novelties in the old space: restart them at their ancestors'
        reference = self.ns_reference()
        for emitter in self.emitters:
            emitter.most_novel = float(novelty(emitter.ancestor.bd, reference, self.config.k, skip_self=False)[0])

    def _reward_novelty(self, ancestors: list[Agents]) -> np.ndarray:
        """Novelty of emitter ancestors w.r.t. the reward archive (where they are themselves: skipped)."""
        if not ancestors:
            return np.zeros(0)
        return novelty(np.concatenate([a.bd for a in ancestors]), self.reward_archive.bd, self.config.k)

    def init_emitter(self, emitter: Emitter, reference: np.ndarray) -> None:
        """Evaluate the emitter's first population: ``emitter_pop`` mutations of its ancestor (sigma_e)."""
        genomes = np.repeat(emitter.ancestor.genome, self.config.emitter_pop, 0)
        emitter.pop = self.evaluate(self.mutate(genomes, emitter.sigma))
        self.exploit_best_reward = max(self.exploit_best_reward, float(emitter.pop.reward.max(initial=0.0)))
        emitter.pop.novelty = novelty(emitter.pop.bd, reference, self.config.k, skip_self=False)
        emitter.ancestor.novelty = novelty(emitter.ancestor.bd, reference, self.config.k, skip_self=False)
        emitter.most_novel = float(emitter.ancestor.novelty[0])
        emitter.candidates = emitter.ancestor.take(slice(0, 0))
        emitter.values.append(emitter.pop.reward.copy())

    def emitter_step(self, emitter: Emitter, reference: np.ndarray) -> None:
        """Two children per member; the emitter keeps the best ``emitter_pop`` by reward (elitist); rewards that
        beat the emitter's best so far go to the reward archive; children more novel than any before become
        NS-archive candidates."""
        c = self.config
        children = self.evaluate(self.mutate(np.repeat(emitter.pop.genome, 2, 0), emitter.sigma))
        if not len(children):
            return
        children.novelty = novelty(children.bd, reference, c.k, skip_self=False)
        self.exploit_best_reward = max(self.exploit_best_reward, float(children.reward.max()))
        pool = Agents.concat(emitter.pop, children)
        emitter.pop = pool.take(np.argsort(-pool.reward, kind="stable")[: c.emitter_pop])
        emitter.values.append(emitter.pop.reward.copy())
        emitter.steps += 1
        if emitter.archived_best is None:
            best = int(np.argmax(emitter.pop.reward))
            store = np.array([best]) if emitter.pop.reward[best] > 0 else np.zeros(0, np.int64)
        else:
            store = np.flatnonzero(emitter.pop.reward > emitter.archived_best)
        if len(store):
            self.reward_archive = Agents.concat(self.reward_archive, emitter.pop.take(store))
            emitter.archived_best = float(emitter.pop.reward[store].max())
        novel = np.flatnonzero(children.novelty > emitter.most_novel)
        if len(novel):
            emitter.candidates = Agents.concat(emitter.candidates, children.take(novel))
            emitter.most_novel = float(children.novelty[novel].max())

    def _emitter_done(self, emitter: Emitter) -> bool:
        limit = self.config.max_emitter_steps
        return (limit is not None and emitter.steps >= limit) or stagnated(emitter.values, emitter.steps, self.window)

    def _finish_emitter(self, emitter: Emitter) -> None:
        """Up to lambda random NS-archive candidates join the archive; the ancestor joins the reward archive."""
        chosen = np.sort(self.rng.permutation(len(emitter.candidates))[: self.config.archive_lambda])
        self.archive = Agents.concat(self.archive, emitter.candidates.take(chosen))
        self.reward_archive = Agents.concat(self.reward_archive, emitter.ancestor)
        self.emitters.remove(emitter)
        self.emitters_finished += 1

    def _choose_emitter(self) -> Emitter:
        """Uniformly on the Pareto front of (novelty w.r.t. the reward archive, improvement)."""
        if len(self.reward_archive):
            front = pareto_front(self._reward_novelty([e.ancestor for e in self.emitters]),
                                 np.array([e.improvement for e in self.emitters]))
            return self.emitters[int(self.rng.choice(front))]
        return self.emitters[int(np.argmax([e.improvement for e in self.emitters]))]

    # ---------------------------------------------------------------------------------------------- report
    def stats(self) -> dict[str, Any]:
        sigmas = [e.sigma for e in self.emitters]
        return {**super().stats(), "reward_archive_size": len(self.reward_archive), "emitters": len(self.emitters),
                "candidates": len(self.candidates), "emitters_finished": self.emitters_finished,
                "exploit_evaluations": self.exploit_evaluations, "exploit_best_reward": self.exploit_best_reward,
                "emitter_sigma": float(np.mean(sigmas)) if sigmas else None}  # pitfall 11: log the value

    def stored_sets(self) -> list[Agents]:
        out = [*super().stored_sets(), self.reward_archive]
        for emitter in (*self.candidates, *self.emitters):
            out += [s for s in (emitter.ancestor, emitter.pop, emitter.candidates) if s is not None]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "reward_archive": self.reward_archive.state(),
                "candidates": [e.state() for e in self.candidates], "emitters": [e.state() for e in self.emitters],
                "emitters_finished": self.emitters_finished, "exploit_evaluations": self.exploit_evaluations,
                "exploit_best_reward": self.exploit_best_reward}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.reward_archive = Agents.from_state(state["reward_archive"])
        self.candidates = [Emitter.from_state(s) for s in state["candidates"]]
        self.emitters = [Emitter.from_state(s) for s in state["emitters"]]
        self.emitters_finished = int(state["emitters_finished"])
        self.exploit_evaluations = int(state["exploit_evaluations"])
        self.exploit_best_reward = float(state["exploit_best_reward"])


class LearnedBehaviour:
    """Mixin (§3.2): the BD is a ``BehaviourAE``'s latent code of the final-state image, retrained online."""

    learned_bd = True

    def __init__(self, domain: Domain, config: SearchConfig | None = None, seed: int = 0) -> None:
        from explore_bench.agents.novelty_ae import BehaviourAE

        super().__init__(domain, config, seed)
        c = self.config
        self.ae = BehaviourAE(c.view_size, c.latent, seed=self.seed + 1, lr=c.ae_lr, batch_size=c.ae_batch_size,
                              max_epochs=c.ae_max_epochs, patience=c.ae_patience, output=c.ae_output,
                              collapse_ratio=c.ae_collapse_ratio, reinit_tries=c.ae_reinit_tries)
        self.explore_chunks = 0
        self.next_retrain = 1  # retrain after exploration chunks 1, 3, 6, 10, 15, ...
        self.retrain_gap = 1
        self.ae_collapses = 0  # trainings still collapsed after their re-initialisations
        self.ae_reinits = 0
        self.last_training: dict[str, Any] | None = None

    def describe(self, agents: Agents, ev: Evaluation) -> None:
        agents.bd, agents.surprise = self.ae.encode(agents.view)

    def criterion(self) -> str:
        if self.config.criterion == "taxons":
            return "novelty" if self.rng.random() < 0.5 else "surprise"
        return self.config.criterion

    def after_explore_chunk(self) -> None:
        super().after_explore_chunk()
        self.explore_chunks += 1
        if self.config.train_ae and self.explore_chunks == self.next_retrain:
            self.retrain_gap += 1
            self.next_retrain += self.retrain_gap
            self.retrain()

    def training_views(self) -> np.ndarray:
        """Archive + population + offspring (+ the reward archive with ``train_on_reward``)."""
        sets = [self.archive, self.population, self.offspring]
        if self.config.train_on_reward:
            sets.append(getattr(self, "reward_archive", None))
        return np.concatenate([s.view for s in sets if s is not None and len(s)])

    def retrain(self) -> dict[str, Any]:
        """Retrain the AE, then recompute the BD and surprise of every stored agent (pitfall 3)."""
        stats = self.ae.train(self.training_views())
        self.ae_reinits += stats.reinits
        self.ae_collapses += int(stats.collapsed)
        self.last_training = {**stats.as_dict(), "retrain": len(self.ae.history), "evaluations": self.evaluations}
        for agents in self.stored_sets():
            agents.bd, agents.surprise = self.ae.encode(agents.view)
        self.after_bd_change()
        return self.last_training

    def stats(self) -> dict[str, Any]:
        last = self.last_training or {}
        return {**super().stats(), "ae_retrains": len(self.ae.history), "ae_collapses": self.ae_collapses,
                "ae_reinits": self.ae_reinits, "ae_val_error": last.get("val_error"),
                "ae_untrained_error": last.get("untrained_error"), "ae_mean_image_ratio": last.get("mean_image_ratio")}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "ae": self.ae.state_dict(), "explore_chunks": self.explore_chunks,
                "next_retrain": self.next_retrain, "retrain_gap": self.retrain_gap, "ae_collapses": self.ae_collapses,
                "ae_reinits": self.ae_reinits, "last_training": self.last_training}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.ae.load_state_dict(state["ae"])
        for k in ("explore_chunks", "next_retrain", "retrain_gap", "ae_collapses", "ae_reinits", "last_training"):
            setattr(self, k, state[k])


class Taxons(LearnedBehaviour, NoveltySearch):
    """TAXONS (§3.2): novelty search in the AE's learned behaviour space, novelty or surprise each generation."""

    name = "taxons"


class Stax(LearnedBehaviour, Serene):
    """STAX (§3.4): SERENE with the TAXONS behaviour space for every agent (NS, emitters, reward archive)."""

    name = "stax"


#: algo name (an agent file's ``algo``) -> explorer class.
ALGORITHMS: dict[str, type[PolicySearch]] = {
    cls.name: cls for cls in (NoveltySearch, Taxons, Serene, Stax, RandomPolicySearch, ObjectiveES)
}


def search_config(settings: Mapping[str, Any] | None = None) -> SearchConfig:
    """``SearchConfig(**settings)``; a ``TypeError`` names unknown settings, a ``ValueError`` bad values."""
    settings = dict(settings or {})
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    unknown = set(settings) - known
    if unknown:
        raise TypeError(f"unknown explorer setting(s) {sorted(unknown)}; expected among {sorted(known)}")
    return SearchConfig(**settings)


def make_search(algo: str, domain: Domain, settings: Mapping[str, Any] | SearchConfig | None = None,
                seed: int = 0) -> PolicySearch:
    """The explorer ``algo`` on ``domain`` with ``settings`` (``SearchConfig`` fields, see ``search_config``)."""
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown policy-search explorer {algo!r}; expected one of {sorted(ALGORITHMS)}")
    config = settings if isinstance(settings, SearchConfig) else search_config(settings)
    return ALGORITHMS[algo](domain, config, seed)
