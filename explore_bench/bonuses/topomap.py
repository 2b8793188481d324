"""A TopoNav-style topological map over state embeddings. Spec: shared/specs/toponav.md §3-§8.

TopoNav (Hossain et al. 2024, arXiv:2402.04061) builds a graph of landmarks while it moves, rewards novel and
frontier landmarks, and picks subgoals on the graph for a low-level controller. The paper's thresholds and
weights are not available: every default here is an explore_bench choice (spec §7), not a paper value.

The map (`TopoMap`) is shared by all parallel envs; each env keeps its own position on it (`EnvState`). Per step
and env (`TopoMap.step`, spec §5):

1. localise the embedding at its nearest node `v*` if `d* <= delta_loc` (between nodes the env keeps its last node);
2. add a node if `d* > delta_new`, the map is empty, or a salient event happened off the existing nodes
   (hysteresis: `delta_loc < delta_new`, so an agent on a boundary does not flicker between nodes);
3. arrival at a node other than the last one: count the visit, add or update the edge from the last node with the
   steps taken since leaving it, only if there were at most `k_edge` and no episode boundary in between;
4. rewards and subgoals by an ordered rule list (HODAT-style, spec §5.7), `RULES`: safety, subgoal, goal,
   exploration. A rule may stop the chain, so a safety event always overrides the rest (a weighted sum could not
   guarantee that).

Embeddings are float vectors whose first `n_context` entries are discrete context (room, level): two embeddings
with different context are infinitely far apart. The rest are coordinates under the Chebyshev (grid cells) or
Euclidean metric. `grid_embedding`, `ram_embedding` and `calibrate_thresholds` give the per-domain embeddings and
thresholds of spec §6. Shortest paths are Dijkstra over mean edge steps (failed edges penalised) with
`scipy.sparse.csgraph`. Nearest neighbours are brute force: a few microseconds per query at the node caps of §7
with low-dimensional embeddings, so the spec's KD-tree (beyond a few thousand nodes) is not needed.

Only numpy and scipy: the map imports no agent, env or SB3 code.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

__all__ = [
    "ATARI_DEFAULTS",
    "MINIGRID_DEFAULTS",
    "RAM_EMBEDDINGS",
    "RULES",
    "EnvState",
    "StepOut",
    "TopoConfig",
    "TopoMap",
    "calibrate_thresholds",
    "grid_embedding",
    "nearest_distances",
    "ram_embedding",
]

Metric = Literal["chebyshev", "euclidean"]
METRICS = ("chebyshev", "euclidean")
#: the ordered rules of `TopoMap.step` (spec §5.7); the first ones may stop the chain
RULES = ("safety", "subgoal", "goal", "exploration")


@dataclass(frozen=True)
class TopoConfig:
    """Hyperparameters of a `TopoMap` (spec §7: explore_bench defaults for MiniGrid; the paper gives none).

    delta_loc, delta_new: localisation and new-node distances, `0 < delta_loc < delta_new`.
    metric: "chebyshev" (grid cells) or "euclidean", over the coordinates after the `n_context` context entries.
    beta_new, beta_visit, beta_front, beta_sub, beta_safe: reward of a new node, of the n-th arrival at a node
        (`beta_visit / sqrt(n)`), of arriving at a frontier node (times its score), of reaching the subgoal, and
        the penalty of a safety event.
    k_edge: most steps between two nodes for an edge. f_min, n_front: a node is a frontier node if its score
        `F >= f_min` or it has fewer than `n_front` visits.
    w_nov, w_front, w_goal, w_cost, tau_goal, t_sel: subgoal score `w_nov / sqrt(1 + visits) + w_front F + w_goal G
        - w_cost c`, softmax temperature `t_sel` (0: argmax); `G = exp(-d(node, goal) / tau_goal)` for a known goal
        embedding (`tau_goal` None: `delta_new`), else 1 at nodes where extrinsic reward was seen.
    d_slack: subgoal deadline `2 c + d_slack` steps. failure_cost: extra path cost per recorded failure of an edge
        (None: `k_edge`). node_cap: no node is added beyond it. directed: one-way edges (falls).
    auto_subgoal: hierarchical mode: an env without a subgoal picks one at the start of each step (the
        meta-controller of h-DQN); off, subgoals are only set by `TopoMap.assign_subgoal` (a scripted explorer).
    """

    delta_loc: float = 0.5
    delta_new: float = 3.0
    metric: Metric = "chebyshev"
    n_context: int = 0
    beta_new: float = 0.1
    beta_visit: float = 0.02
    beta_front: float = 0.05
    beta_sub: float = 0.1
    beta_safe: float = 0.1
    k_edge: int = 20
    f_min: float = 0.3
    n_front: int = 3
    w_nov: float = 1.0
    w_front: float = 1.0
    w_goal: float = 5.0
    w_cost: float = 0.02
    tau_goal: float | None = None
    t_sel: float = 0.1
    d_slack: int = 10
    failure_cost: float | None = None
    node_cap: int = 2000
    directed: bool = False
    auto_subgoal: bool = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.delta_loc) and np.isfinite(self.delta_new) and 0 < self.delta_loc < self.delta_new):
            raise ValueError(f"TopoConfig: expected 0 < delta_loc < delta_new (hysteresis, spec §8.2), got delta_loc="
                             f"{self.delta_loc}, delta_new={self.delta_new}")
        if self.metric not in METRICS:
            raise ValueError(f"TopoConfig: metric must be one of {METRICS}, got {self.metric!r}")
        for name in ("n_context", "k_edge", "n_front", "d_slack"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 0:
                raise ValueError(f"TopoConfig: {name} must be a non-negative integer, got {getattr(self, name)!r}")
        if int(self.node_cap) != self.node_cap or self.node_cap < 1:
            raise ValueError(f"TopoConfig: node_cap must be a positive integer, got {self.node_cap!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not np.isfinite(value):
                raise ValueError(f"TopoConfig: {f.name} must be finite, got {value}")
        for name in ("t_sel", "w_cost", "beta_safe", "beta_sub", "beta_new", "beta_visit", "beta_front"):
            if getattr(self, name) < 0:
                raise ValueError(f"TopoConfig: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("tau_goal", "failure_cost"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"TopoConfig: {name} must be a positive number or None, got {value!r}")


#: spec §7, MiniGrid column (agent (x, y) in cells, Chebyshev)
MINIGRID_DEFAULTS = TopoConfig()
#: spec §7, Atari column (RAM embedding: room and level as context, then x, y in pixels; Euclidean)
ATARI_DEFAULTS = TopoConfig(delta_loc=4.0, delta_new=16.0, metric="euclidean", n_context=2, beta_visit=0.01, k_edge=50,
                            w_cost=0.01, d_slack=50, node_cap=10_000)


# --------------------------------------------------------------------------------------------- embeddings
def grid_embedding(cell: np.ndarray, dims: int = 2) -> np.ndarray:
    """`(..., k)` integer cells (MiniGrid's `infos["cell"]` = x, y, dir) -> `(..., dims)` float coordinates (x, y)."""
    cell = np.asarray(cell)
    if cell.ndim == 0 or cell.shape[-1] < dims:
        raise ValueError(f"grid_embedding: expected cells with at least {dims} entries on the last axis, got shape "
                         f"{cell.shape}")
    return cell[..., :dims].astype(np.float64)


#: game -> (context RAM addresses, coordinate RAM addresses), spec §6 (mila-iqia/atari-representation-learning's
#: ram annotations): Montezuma (room 3, level 57; x 42, y 43), Pitfall (room 1; x 97, y 105)
RAM_EMBEDDINGS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "MontezumaRevenge": ((3, 57), (42, 43)),
    "Pitfall": ((1,), (97, 105)),
}


def ram_embedding(game: str, ram: np.ndarray) -> np.ndarray:
    """`(..., 128)` Atari RAM -> `(..., n_context + 2)` embeddings: room (and level) as context, then x, y in pixels.

    Use with `TopoConfig(metric="euclidean", n_context=len(RAM_EMBEDDINGS[game][0]))` (`ATARI_DEFAULTS` for
    Montezuma's Revenge): coordinates repeat across rooms, the context keeps them apart (spec §8.6).
    """
    if game not in RAM_EMBEDDINGS:
        raise KeyError(f"ram_embedding: no RAM embedding for game {game!r}; known games: {', '.join(RAM_EMBEDDINGS)}")
    ram = np.asarray(ram)
    if ram.ndim == 0 or ram.shape[-1] != 128:
        raise ValueError(f"ram_embedding: expected RAM of shape (..., 128), got shape {ram.shape}")
    context, coords = RAM_EMBEDDINGS[game]
    return ram[..., list(context) + list(coords)].astype(np.float64)


def _distances(nodes: np.ndarray, e: np.ndarray, metric: Metric, n_context: int) -> np.ndarray:
    """Exact distance from embedding `e` (D,) to every row of `nodes` (n, D); inf where the context differs."""
    diff = np.abs(nodes[:, n_context:] - e[n_context:])
    if metric == "chebyshev":  # column by column: numpy reduces a short inner axis several times slower
        d = diff[:, 0].copy()
        for k in range(1, diff.shape[1]):
            np.maximum(d, diff[:, k], out=d)
    else:
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    if n_context:
        d[(nodes[:, :n_context] != e[:n_context]).any(axis=1)] = np.inf
    return d


def nearest_distances(a: np.ndarray, b: np.ndarray, metric: Metric, n_context: int = 0,
                      exclude_self: bool = False) -> np.ndarray:
    """Distance from each row of `a` (M, D) to its nearest row of `b` (n, D), in row chunks that bound memory.

    Euclidean distances use the `|a|^2 + |b|^2 - 2ab` expansion (fast in high dimension, error ~1e-7 relative);
    `exclude_self` ignores the diagonal (`a` is `b`), for nearest-neighbour statistics.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.full(len(a), np.inf)
    if not len(b):
        return out
    width = max(1, b.shape[1])
    chunk = max(1, 4_000_000 // (len(b) * width))
    b_sq = (b[:, n_context:] ** 2).sum(axis=1)
    for start in range(0, len(a), chunk):
        rows = a[start:start + chunk]
        if metric == "euclidean":
            coords = rows[:, n_context:]
            sq = (coords**2).sum(axis=1)[:, None] + b_sq[None, :] - 2.0 * coords @ b[:, n_context:].T
            d = np.sqrt(np.maximum(sq, 0.0))
        else:
            d = np.abs(rows[:, None, n_context:] - b[None, :, n_context:]).max(axis=2, initial=0.0)
        if n_context:
            d[(rows[:, None, :n_context] != b[None, :, :n_context]).any(axis=2)] = np.inf
        if exclude_self:
            d[np.arange(len(rows)), np.arange(start, start + len(rows))] = np.inf
        out[start:start + chunk] = d.min(axis=1)
    return out


def calibrate_thresholds(embeddings: np.ndarray, metric: Metric = "euclidean", n_context: int = 0,
                         rng: np.random.Generator | None = None, max_samples: int = 5000) -> tuple[float, float] | None:
    """Spec §6's data-driven thresholds for learned or raw embeddings: `delta_new` = 0.5 x the median distance of a
    sample (at most `max_samples` distinct embeddings, e.g. of a random walk) to its nearest neighbour,
    `delta_loc = 0.5 delta_new`. Repeated embeddings count once (a repeated state has no scale). None if fewer than
    two distinct finite embeddings.
    """
    x = np.unique(np.asarray(embeddings, np.float64).reshape(len(embeddings), -1), axis=0)
    if len(x) > max_samples:
        x = x[(rng or np.random.default_rng(0)).choice(len(x), max_samples, replace=False)]
    nn = nearest_distances(x, x, metric, n_context, exclude_self=True)
    nn = nn[np.isfinite(nn)]
    if len(nn) < 2 or np.median(nn) <= 0:
        return None
    delta_new = 0.5 * float(np.median(nn))
    return 0.5 * delta_new, delta_new


# ------------------------------------------------------------------------------------------------- the map
@dataclass
class EnvState:
    """Where one env stands on the map: its last node, the steps since it was last at it, its subgoal and path."""

    cur_node: int | None = None
    prev_node: int | None = None
    steps_since_node: int = 0
    last_edge: tuple[int, int] | None = None
    subgoal: int | None = None
    subgoal_steps: int = 0
    subgoal_deadline: int = 0
    goal_directed: bool = False
    path: list[int] = field(default_factory=list)
    progress: int = 0


@dataclass
class StepOut:
    """What one `TopoMap.step` did (spec §3): the intrinsic reward and where the env now stands.

    node: the node the env is localised at this step (None between nodes); new_node: it was created this step;
    subgoal, subgoal_embedding: the env's subgoal after the step; subgoal_reached / subgoal_failed: the subgoal was
    reached / abandoned at its deadline this step; safety: the safety rule fired (and overrode the others).
    """

    r_int: float
    node: int | None
    new_node: bool
    subgoal: int | None
    subgoal_reached: bool
    subgoal_embedding: np.ndarray | None
    subgoal_failed: bool = False
    safety: bool = False


class TopoMap:
    """A graph of landmark nodes over embeddings of dimension `dim`, shared by parallel envs (spec §4).

    Node arrays (first `n_nodes` rows): `nodes` (embeddings), `visits` (arrivals, the creation counting as the
    first), `created_at` (global step), `departures`, `new_from` (nodes created on the arrival right after leaving
    the node), `r_ext_max` (best extrinsic reward while localised at it), `salient`. `edges` maps `(u, v)` (`u < v`
    unless directed) to `[count, mean_steps, failures]`. `envs` holds each env's `EnvState`.
    """

    def __init__(self, dim: int, config: TopoConfig = MINIGRID_DEFAULTS, seed: int | None = 0) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"TopoMap: dim must be a positive integer, got {dim!r}")
        if config.n_context >= dim:
            raise ValueError(f"TopoMap: n_context ({config.n_context}) must leave coordinates in dim {dim}")
        self.dim = int(dim)
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.n_nodes = 0
        capacity = 64
        self.nodes = np.zeros((capacity, self.dim))
        self.visits = np.zeros(capacity, np.int64)
        self.created_at = np.zeros(capacity, np.int64)
        self.departures = np.zeros(capacity, np.int64)
        self.new_from = np.zeros(capacity, np.int64)
        self.r_ext_max = np.zeros(capacity)
        self.salient = np.zeros(capacity, bool)
        self.edges: dict[tuple[int, int], list[float]] = {}
        self.envs: list[EnvState] = []
        self.goal: np.ndarray | None = None
        self.global_step = 0
        self._graph: csr_matrix | None = None  # cached cost matrix, None when nodes or edges changed
        self._rules = [getattr(self, f"_rule_{rule}") for rule in RULES]

    _NODE_ARRAYS = ("nodes", "visits", "created_at", "departures", "new_from", "r_ext_max", "salient")

    # ------------------------------------------------------------------------------------------- queries
    def distances(self, e: np.ndarray) -> np.ndarray:
        """Distance from embedding `e` to every node, `(n_nodes,)`."""
        return _distances(self.nodes[: self.n_nodes], e, self.config.metric, self.config.n_context)

    def localise(self, e: np.ndarray) -> tuple[int | None, float]:
        """The nearest node and its distance (None, inf on an empty map)."""
        if not self.n_nodes:
            return None, float("inf")
        d = self.distances(e)
        v = int(np.argmin(d))
        return v, float(d[v])

    def frontier_scores(self) -> np.ndarray:
        """`F(v) = (new_from + 1) / (departures + 2) / sqrt(1 + visits)` of every node (spec §5.4)."""
        n = self.n_nodes
        return _frontier_score(self.new_from[:n], self.departures[:n], self.visits[:n])

    def frontier(self) -> np.ndarray:
        """Bool mask of the frontier nodes: `F >= f_min` or fewer than `n_front` visits."""
        return self._is_frontier(self.frontier_scores(), self.visits[: self.n_nodes])

    def _is_frontier(self, score: np.ndarray | float, visits: np.ndarray | int) -> np.ndarray | bool:
        """Whether nodes of these frontier scores and visits are frontier nodes (arrays or scalars)."""
        return (score >= self.config.f_min) | (visits < self.config.n_front)

    def edge_cost(self, stats: Sequence[float]) -> float:
        """Path cost of an edge: its mean steps plus `failure_cost` per recorded failure."""
        penalty = self.config.k_edge if self.config.failure_cost is None else self.config.failure_cost
        return float(stats[1] + penalty * stats[2])

    def graph(self) -> csr_matrix:
        """The `(n_nodes, n_nodes)` sparse matrix of edge costs (cached until the map changes)."""
        if self._graph is None:
            n = self.n_nodes
            if self.edges:
                (rows, cols), costs = zip(*self.edges.keys()), [self.edge_cost(s) for s in self.edges.values()]
                self._graph = csr_matrix((costs, (rows, cols)), shape=(n, n))
            else:
                self._graph = csr_matrix((n, n))
        return self._graph

    def shortest_paths(self, source: int) -> tuple[np.ndarray, np.ndarray]:
        """Dijkstra from `source`: `(costs, predecessors)`, inf / -9999 for unreachable nodes."""
        return dijkstra(self.graph(), directed=self.config.directed, indices=int(source), return_predecessors=True)

    def path(self, source: int, target: int) -> list[int]:
        """The cheapest node path from `source` to `target` (both included); [] if unreachable."""
        costs, pred = self.shortest_paths(source)
        return _walk_back(pred, source, target) if np.isfinite(costs[target]) else []

    def goal_known(self) -> bool:
        """A goal embedding was set, or extrinsic reward was seen at some node (spec §5.7 rule 3)."""
        return self.goal is not None or bool((self.r_ext_max[: self.n_nodes] > 0).any())

    def select_subgoal(self, current_node: int | None, goal_embedding: np.ndarray | None = None,
                       costs: np.ndarray | None = None) -> int | None:
        """The next subgoal by spec §5.6: `S(v) = w_nov / sqrt(1 + visits) + w_front F + w_goal G - w_cost c(cur, v)`
        over the nodes reachable from `current_node` (never itself), softmax with temperature `t_sel` (argmax, first
        of equals, when 0). `costs`: the path costs `c` from `current_node` (default: Dijkstra on the graph; inf is
        unreachable). None when no other node is reachable."""
        if current_node is None or self.n_nodes < 2:
            return None
        cfg = self.config
        costs = self.shortest_paths(current_node)[0] if costs is None else np.asarray(costs, np.float64)
        candidates = np.isfinite(costs)
        candidates[current_node] = False
        if not candidates.any():
            return None
        n = self.n_nodes
        goal = self.goal if goal_embedding is None else self._check(goal_embedding)
        if goal is not None:
            tau = cfg.delta_new if cfg.tau_goal is None else cfg.tau_goal
            g = np.exp(-self.distances(goal) / tau)
        else:
            g = (self.r_ext_max[:n] > 0).astype(np.float64)
        score = cfg.w_nov / np.sqrt(1.0 + self.visits[:n]) + cfg.w_front * self.frontier_scores() + cfg.w_goal * g
        score = score[candidates] - cfg.w_cost * costs[candidates]
        index = np.flatnonzero(candidates)
        if cfg.t_sel == 0:
            return int(index[np.argmax(score)])
        p = np.exp((score - score.max()) / cfg.t_sel)
        return int(self.rng.choice(index, p=p / p.sum()))

    def stats(self, ground_truth: np.ndarray | None = None) -> dict[str, float]:
        """Map statistics (spec §3): nodes, edges, frontier nodes, connected components, and `coverage`, the share
        of `ground_truth` embeddings (e.g. every free cell) within `delta_new` of some node, when given."""
        n = self.n_nodes
        out = {"n_nodes": float(n), "n_edges": float(len(self.edges)), "n_frontier": float(self.frontier().sum()),
               "n_components": float(connected_components(self.graph(), directed=False)[0]) if n else 0.0}
        if ground_truth is not None:
            d = nearest_distances(ground_truth, self.nodes[:n], self.config.metric, self.config.n_context)
            out["coverage"] = float(np.mean(d <= self.config.delta_new)) if len(d) else 1.0
        return out

    # ------------------------------------------------------------------------------------------- updates
    def env(self, index: int) -> EnvState:
        """The state of env `index` (created on first use)."""
        while len(self.envs) <= index:
            self.envs.append(EnvState())
        return self.envs[index]

    def set_goal(self, embedding: np.ndarray | None) -> None:
        """Set (or clear) the goal embedding: selection becomes goal-directed (spec §5.7 rule 3)."""
        self.goal = None if embedding is None else self._check(embedding)

    def begin_episode(self, env: int, embedding: np.ndarray | None = None) -> int | None:
        """Start a new episode in `env`: no edge will join it to the last one (a reset is a teleport, spec §8.3).

        With the first observation's `embedding` the env is localised at (or creates, without reward) its node;
        without it (the reset observation is unknown), its first localisation becomes its start node.
        """
        self.env(env)
        self.envs[env] = EnvState()
        if embedding is None:
            return None
        e = self._check(embedding)
        v, d = self.localise(e)
        if (v is None or d > self.config.delta_new) and self.n_nodes < self.config.node_cap:
            v, d = self._add_node(e, salient=False), 0.0
        if v is None or d > self.config.delta_loc:
            return None
        self.envs[env].cur_node = v
        return v

    def assign_subgoal(self, env: int, goal_embedding: np.ndarray | None = None,
                       fallback_costs: Callable[[], np.ndarray] | None = None) -> int | None:
        """Select a subgoal for `env` from its last node (`select_subgoal`) and plan its path on the graph; deadline
        `2 c + d_slack` steps. `fallback_costs()` gives `(n_nodes,)` costs (inf where unknown) for the nodes the graph
        does not reach, from a planner that knows more (a scripted explorer's visited cells); it is called only when
        some node is unreachable, and the path to such a node is the direct hop `[cur, node]`."""
        st = self.env(env)
        self._close_subgoal(st)
        if st.cur_node is None:
            return None
        costs, pred = self.shortest_paths(st.cur_node)
        reachable = np.isfinite(costs)
        if fallback_costs is not None and not reachable.all():
            costs = np.where(reachable, costs, np.asarray(fallback_costs(), np.float64))
        target = self.select_subgoal(st.cur_node, goal_embedding, costs)
        if target is None:
            return None
        st.path = _walk_back(pred, st.cur_node, target) if reachable[target] else [st.cur_node, target]
        st.subgoal = target
        st.subgoal_deadline = int(np.ceil(2.0 * costs[target])) + self.config.d_slack
        st.goal_directed = self.goal_known()
        return target

    def step(self, env: int, embedding: np.ndarray, r_ext: float = 0.0, done: bool = False, unsafe: bool = False,
             salient: bool = False) -> StepOut:
        """One transition of `env` that reached `embedding` (spec §5); `done`: it ended the episode; `unsafe`: a
        life loss / lava / collision; `salient`: an event worth a node of its own (extrinsic reward counts as one)."""
        cfg = self.config
        e = self._check(embedding)
        st = self.env(env)
        self.global_step += 1
        if cfg.auto_subgoal and st.subgoal is None and st.cur_node is not None:
            self.assign_subgoal(env)
        st.steps_since_node += 1
        if st.subgoal is not None:
            st.subgoal_steps += 1
        salient = salient or r_ext != 0

        # perception: localise, add a node, count the arrival and its edge
        v, d = self.localise(e)
        new = False
        if (v is None or d > cfg.delta_new or (salient and d > cfg.delta_loc)) and self.n_nodes < cfg.node_cap:
            v, d, new = self._add_node(e, salient), 0.0, True
        localised = v is not None and d <= cfg.delta_loc
        # an arrival comes from the env's last node; the first node of an episode that began off the map is its start
        arrived = localised and st.cur_node is not None and v != st.cur_node
        if arrived:
            self._arrive(st, v, new)
        if localised:
            st.cur_node = v
            st.steps_since_node = 0
            self.r_ext_max[v] = max(self.r_ext_max[v], r_ext)
            self.salient[v] |= salient
        out = StepOut(0.0, v if localised else None, new, None, False, None)
        facts = _Facts(st, v, new, arrived, unsafe)
        for rule in self._rules:
            if rule(facts, out):
                break
        out.subgoal = st.subgoal
        out.subgoal_embedding = None if st.subgoal is None else self.nodes[st.subgoal].copy()
        if done:
            self.begin_episode(env)
        return out

    # --------------------------------------------------------------------------------- the ordered rules
    def _rule_safety(self, f: "_Facts", out: StepOut) -> bool:
        """1. Safety first: `-beta_safe`, the subgoal closed, the last edge marked failed; nothing else counts."""
        if not f.unsafe:
            return False
        out.r_int, out.safety = -self.config.beta_safe, True
        if f.st.last_edge is not None:
            self._fail_edge(f.st.last_edge)
        self._close_subgoal(f.st)
        return True

    def _rule_subgoal(self, f: "_Facts", out: StepOut) -> bool:
        """2. The current subgoal: `beta_sub` on reaching it (h-DQN's low-level reward); at its deadline, the edges
        of the planned path not yet walked are marked failed and it is abandoned."""
        st = f.st
        if st.subgoal is None:
            return False
        if st.cur_node in st.path:
            st.progress = max(st.progress, st.path.index(st.cur_node))
        if st.cur_node == st.subgoal:
            out.r_int += self.config.beta_sub
            out.subgoal_reached = True
            self._close_subgoal(st)
        elif st.subgoal_steps > st.subgoal_deadline:
            for u, w in zip(st.path[st.progress:], st.path[st.progress + 1:]):
                self._fail_edge(self._edge_key(u, w))
            out.subgoal_failed = True
            self._close_subgoal(st)
        return False

    def _rule_goal(self, f: "_Facts", out: StepOut) -> bool:
        """3. The global goal: once it is known, a subgoal chosen without it is dropped, so the next selection is
        goal-directed (`w_goal` dominates the score)."""
        if f.st.subgoal is not None and not f.st.goal_directed and self.goal_known():
            self._close_subgoal(f.st)
        return False

    def _rule_exploration(self, f: "_Facts", out: StepOut) -> bool:
        """4. Exploration: `beta_new` for a new node; on arrival at a known node `beta_visit / sqrt(visits)`, plus
        `beta_front F` if it is a frontier node."""
        cfg = self.config
        if f.new:
            out.r_int += cfg.beta_new
        elif f.arrived:
            v = f.node
            out.r_int += cfg.beta_visit / np.sqrt(self.visits[v])
            score = _frontier_score(self.new_from[v], self.departures[v], self.visits[v])
            if self._is_frontier(score, self.visits[v]):
                out.r_int += cfg.beta_front * score
        return False

    # ------------------------------------------------------------------------------------------ internals
    def _check(self, embedding: np.ndarray) -> np.ndarray:
        e = np.asarray(embedding, np.float64).reshape(-1)
        if e.shape != (self.dim,):
            raise ValueError(f"TopoMap: expected an embedding of dimension {self.dim}, got shape {np.shape(embedding)}")
        if not np.isfinite(e).all():
            raise ValueError("TopoMap: expected a finite embedding, got NaN or inf")
        return e

    def _add_node(self, e: np.ndarray, salient: bool) -> int:
        v = self.n_nodes
        if v == len(self.nodes):  # amortised growth: double every node array
            for name in self._NODE_ARRAYS:
                old = getattr(self, name)
                grown = np.zeros((2 * len(old), *old.shape[1:]), old.dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)
        self.nodes[v] = e
        self.visits[v] = 1
        self.created_at[v] = self.global_step
        self.salient[v] = salient
        self.n_nodes += 1
        self._graph = None
        return v

    def _edge_key(self, u: int, v: int) -> tuple[int, int]:
        return (u, v) if self.config.directed or u < v else (v, u)

    def _arrive(self, st: EnvState, v: int, new: bool) -> None:
        """Arrival at `v` from the env's last node: visit, departure, edge (if within `k_edge` steps)."""
        u = st.cur_node
        if not new:
            self.visits[v] += 1
        self.departures[u] += 1
        if new:
            self.new_from[u] += 1
        if st.steps_since_node <= self.config.k_edge:
            key = self._edge_key(u, v)
            stats = self.edges.setdefault(key, [0.0, 0.0, 0.0])
            stats[0] += 1
            stats[1] += (st.steps_since_node - stats[1]) / stats[0]  # running mean (sticky actions: spec §8.7)
            st.last_edge = key
            self._graph = None
        st.prev_node = u

    def _fail_edge(self, key: tuple[int, int]) -> None:
        if key in self.edges:
            self.edges[key][2] += 1
            self._graph = None

    @staticmethod
    def _close_subgoal(st: EnvState) -> None:
        st.subgoal, st.path, st.progress, st.subgoal_steps, st.subgoal_deadline = None, [], 0, 0, 0

    # -------------------------------------------------------------------------------------------- state
    def get_state(self) -> dict[str, Any]:
        """Everything as numpy arrays and plain containers (loads with `torch.load(weights_only=True)`)."""
        n = self.n_nodes
        return {
            "dim": self.dim,
            "n_nodes": n,
            **{name: getattr(self, name)[:n].copy() for name in self._NODE_ARRAYS},
            "edge_keys": np.array(list(self.edges.keys()), np.int64).reshape(-1, 2),
            "edge_stats": np.array(list(self.edges.values()), np.float64).reshape(-1, 3),
            "envs": [dataclasses.asdict(st) for st in self.envs],
            "goal": None if self.goal is None else self.goal.copy(),
            "global_step": self.global_step,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state["dim"] != self.dim:
            raise ValueError(f"TopoMap: state has embeddings of dimension {state['dim']}, this map {self.dim}")
        n = int(state["n_nodes"])
        for name in self._NODE_ARRAYS:
            values = np.asarray(state[name])
            array = np.zeros((max(64, 2 * n), *values.shape[1:]), values.dtype)
            array[:n] = values
            setattr(self, name, array)
        self.n_nodes = n
        self.edges = {(int(u), int(v)): [float(x) for x in stats]
                      for (u, v), stats in zip(state["edge_keys"], state["edge_stats"])}
        self.envs = [EnvState(**{**st, "last_edge": None if st["last_edge"] is None else tuple(st["last_edge"]),
                                 "path": list(st["path"])}) for st in state["envs"]]
        self.goal = None if state["goal"] is None else np.asarray(state["goal"], np.float64).copy()
        self.global_step = int(state["global_step"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._graph = None


def _frontier_score(new_from: np.ndarray | int, departures: np.ndarray | int,
                    visits: np.ndarray | int) -> np.ndarray | float:
    """Spec §5.4's frontier score of nodes with these counts (arrays or scalars)."""
    return (new_from + 1.0) / (departures + 2.0) / np.sqrt(1.0 + visits)


def _walk_back(pred: np.ndarray, source: int, target: int) -> list[int]:
    """The node path `source` -> `target` from Dijkstra's predecessor array (target reachable)."""
    path = [int(target)]
    while path[-1] != source:
        path.append(int(pred[path[-1]]))
    return path[::-1]


@dataclass
class _Facts:
    """What perception found in one step, for the rules."""

    st: EnvState
    node: int | None
    new: bool
    arrived: bool
    unsafe: bool
