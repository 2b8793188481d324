"""TopoNav's topological map, its bonus, the subgoal explorer and the map picture (shared/specs/toponav.md §9)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from explore_bench.agents.toponav_explorer import GridWorld, MiniGridWalker, TopoNavExplorer
from explore_bench.bonuses import BonusInputError, Transitions, make_bonus
from explore_bench.bonuses.topomap import (
    MINIGRID_DEFAULTS,
    RAM_EMBEDDINGS,
    RULES,
    TopoConfig,
    TopoMap,
    calibrate_thresholds,
    ram_embedding,
)

IMAGE = gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)
ACTIONS = gym.spaces.Discrete(7)


def walk(topomap: TopoMap, xs, env: int = 0, y: float = 0.0):
    """Step `env` through positions (x, y) for x in `xs`; the StepOut of each step."""
    return [topomap.step(env, np.array([x, y], float)) for x in xs]


def cell_batch(cells: np.ndarray, dones: np.ndarray | None = None) -> Transitions:
    """A `(T, N)` batch of MiniGrid-like observations whose agent cells are `cells` `(T, N, 2)`."""
    t, n = cells.shape[:2]
    obs = np.zeros((t, n, *IMAGE.shape), np.uint8)
    dones = np.zeros((t, n), bool) if dones is None else dones
    return Transitions(obs, np.zeros((t, n), np.int64), obs, dones, {"cell": cells.astype(np.int64)})


# ------------------------------------------------------------------------------------------ spec §9 unit tests
def test_straight_line_gives_spaced_nodes_and_a_chain():
    """§9.1: positions 0..30, Chebyshev, delta_new 3: nodes more than 3 apart (8 of them), a chain of edges."""
    m = TopoMap(2)
    m.begin_episode(0, np.zeros(2))
    walk(m, range(1, 31))
    xs = m.nodes[: m.n_nodes, 0]
    np.testing.assert_array_equal(xs, np.arange(0, 29, 4))
    assert np.all(np.abs(xs[:, None] - xs[None, :])[~np.eye(len(xs), dtype=bool)] > 3)
    assert set(m.edges) == {(i, i + 1) for i in range(7)}
    assert all(stats == [1.0, 4.0, 0.0] for stats in m.edges.values())


def test_revisits_count_arrivals_and_decay_as_one_over_sqrt_n():
    """§9.2: a revisit adds no node; with the creation as first visit, the n-th arrival pays beta_visit / sqrt(n)."""
    m = TopoMap(2, dataclasses.replace(MINIGRID_DEFAULTS, beta_front=0.0))
    m.begin_episode(0, np.zeros(2))
    assert walk(m, range(1, 5))[-1].r_int == pytest.approx(0.1)  # the new node at 4
    for n in range(2, 8):
        back = walk(m, range(3, -1, -1))[-1]  # arrival at node 0 ...
        there = walk(m, range(1, 5))[-1]  # ... and at node 1
        assert back.node == 0 and there.node == 1 and m.n_nodes == 2
        assert back.r_int == pytest.approx(0.02 / np.sqrt(n)) and there.r_int == pytest.approx(0.02 / np.sqrt(n))
    assert list(m.visits[:2]) == [7, 7]
    assert sum(r.r_int for r in walk(m, [4, 4, 4])) == 0.0  # staying at a node is no arrival


def test_no_edge_across_a_reset_or_beyond_k_edge_steps():
    """§9.3."""
    m = TopoMap(2)
    m.begin_episode(0, np.zeros(2))
    walk(m, range(1, 5))
    m.step(0, np.array([5.0, 0.0]), done=True)
    walk(m, [9, 10])  # first node of the next episode (its reset observation unknown): no edge from node 1
    m.begin_episode(0, np.array([20.0, 0.0]))  # an explicit reset observation
    walk(m, [21, 22, 23, 24])
    assert set(m.edges) == {(0, 1), (3, 4)}
    # more than k_edge = 20 steps between nodes: no edge either
    m.begin_episode(1, np.array([40.0, 0.0]))
    walk(m, [41, 42] * 10 + [43, 44], env=1)
    assert m.localise(np.array([44.0, 0.0]))[0] == 6 and not any(6 in key for key in m.edges)
    assert m.departures[5] == 1 and m.new_from[5] == 1  # the arrival itself still counts


def hand_built(edges: dict[tuple[int, int], list[float]], n: int = 4,
               config: TopoConfig = MINIGRID_DEFAULTS) -> TopoMap:
    """A map of `n` nodes at x = 0, 10, 20, ... (one visit each) with the given edges `(u, v): [count, steps,
    failures]`."""
    m = TopoMap(2, config)
    for i in range(n):
        m.begin_episode(0, np.array([10.0 * i, 0.0]))
    state = m.get_state()
    state["edge_keys"] = np.array(list(edges), np.int64).reshape(-1, 2)
    state["edge_stats"] = np.array(list(edges.values()), np.float64).reshape(-1, 3)
    m.set_state(state)
    return m


def test_dijkstra_cost_is_the_sum_of_mean_edge_steps():
    """§9.6, and failures make an edge dearer (`failure_cost`, default k_edge per failure)."""
    m = hand_built({(0, 1): [3, 4.5, 0], (1, 2): [1, 7.0, 0], (0, 3): [2, 6.0, 0], (2, 3): [1, 9.0, 0]})
    costs, _ = m.shortest_paths(0)
    np.testing.assert_allclose(costs, [0.0, 4.5, 11.5, 6.0])
    assert m.path(0, 2) == [0, 1, 2] and m.path(3, 1) == [3, 0, 1]
    m = hand_built({(0, 1): [3, 4.5, 1], (1, 2): [1, 7.0, 0], (0, 3): [2, 6.0, 0], (2, 3): [1, 9.0, 0]})
    assert m.path(0, 2) == [0, 3, 2] and m.path(0, 1) == [0, 3, 2, 1]  # 4.5 + 20 for the failed edge > 6 + 9 + 7


def test_subgoal_selection_goal_directed_reachable_only_deterministic_at_t0():
    """§9.4: equally visited nodes; node 3 (most novel) is unreachable and never chosen; a rewarded node wins once a
    goal is known; with t_sel = 0 the choice is deterministic."""
    edges = {(0, 1): [1, 4.0, 0], (1, 2): [1, 4.0, 0]}
    m = hand_built(edges, config=dataclasses.replace(MINIGRID_DEFAULTS, t_sel=0.0))
    m.visits[3] = 0
    first = m.select_subgoal(0)
    assert first in (1, 2) and all(m.select_subgoal(0) == first for _ in range(20))
    soft = hand_built(edges)
    assert 3 not in {soft.select_subgoal(0) for _ in range(300)}
    for chooser in (m, soft):
        chooser.r_ext_max[2] = 1.0
        assert chooser.goal_known()
        assert {chooser.select_subgoal(0) for _ in range(50)} == {2}
    goal = hand_built(edges, config=dataclasses.replace(MINIGRID_DEFAULTS, t_sel=0.0))
    goal.set_goal(np.array([10.0, 0.0]))  # a known goal embedding: G = exp(-d / tau) picks the nearest node
    assert goal.select_subgoal(0) == 1
    assert m.select_subgoal(3) is None  # nothing reachable from an isolated node


def test_safety_overrides_a_subgoal_arrival():
    """§9.5: a safety event and a subgoal arrival in the same step give the safety outcome; without the event the
    same step pays beta_sub (hierarchical mode picks the subgoal itself)."""
    assert RULES == ("safety", "subgoal", "goal", "exploration")
    outcomes = []
    for unsafe in (False, True):
        m = TopoMap(2, dataclasses.replace(MINIGRID_DEFAULTS, t_sel=0.0, auto_subgoal=True))
        m.begin_episode(0, np.zeros(2))
        walk(m, range(1, 5))  # node 1 at 4, edge (0, 1)
        walk(m, range(3, -1, -1))  # back at node 0
        first = m.step(0, np.array([1.0, 0.0]))  # the next step picks node 1 as subgoal
        assert first.subgoal == 1 and np.array_equal(first.subgoal_embedding, [4.0, 0.0])
        walk(m, [2, 3])
        outcomes.append((m.step(0, np.array([4.0, 0.0]), unsafe=unsafe), m.edges[(0, 1)][2]))
    (safe, safe_failures), (hit, hit_failures) = outcomes
    assert safe.subgoal_reached and safe.r_int >= 0.1 and safe_failures == 0
    assert hit.safety and hit.r_int == -0.1 and not hit.subgoal_reached and hit.subgoal is None and hit_failures == 1


def test_subgoal_deadline_marks_the_path_failed_and_goal_redirects():
    """Deadline `2 c + d_slack`: past it, the unwalked edges of the path count a failure; once extrinsic reward is
    seen, a subgoal chosen without it is dropped (rule 3)."""
    m = TopoMap(2, dataclasses.replace(MINIGRID_DEFAULTS, t_sel=0.0, auto_subgoal=True))
    m.begin_episode(0, np.zeros(2))
    walk(m, range(1, 9))
    walk(m, range(7, -1, -1))  # nodes 0, 4, 8 with edges (0, 1), (1, 2); back at 0
    target = m.assign_subgoal(0)
    path, deadline = list(m.envs[0].path), m.envs[0].subgoal_deadline
    assert deadline == int(np.ceil(2 * m.shortest_paths(0)[0][target])) + 10 and path[0] == 0 and len(path) >= 2
    outs = [m.step(0, np.array([0.0, 1.0])) for _ in range(deadline + 1)]  # off the nodes: no progress
    assert outs[-1].subgoal_failed and not any(o.subgoal_failed for o in outs[:-1])
    assert [m.edges[key][2] for key in zip(path, path[1:])] == [1] * (len(path) - 1)
    m.step(0, np.array([0.0, 0.0]))  # a new subgoal, chosen with no goal known
    assert m.envs[0].subgoal is not None and not m.envs[0].goal_directed
    out = m.step(0, np.array([0.0, 2.0]), r_ext=1.0)  # reward: a salient node of its own, the goal is known
    assert out.new_node and m.salient[out.node] and out.subgoal is None


# ------------------------------------------------------------------------------------------------ the bonus
def test_bonus_rewards_follow_the_map_and_survive_a_weights_only_round_trip(tmp_path):
    from explore_bench.agents.factory import load_state_safely

    bonus = make_bonus("toponav", IMAGE, ACTIONS, seed=0)
    xs = np.arange(0, 13)
    cells = np.stack([np.stack([xs, np.zeros_like(xs)], -1), np.stack([xs, np.full_like(xs, 20)], -1)], axis=1)
    rewards = bonus.compute(cell_batch(cells))
    assert bonus.mode == "cell" and bonus.topomap.n_nodes == 8
    paid = {0: 0.1, 4: 0.1, 8: 0.1, 12: 0.1}  # the first cell of each env starts its episode on a new node
    np.testing.assert_allclose(rewards, np.array([[paid.get(x, 0.0)] * 2 for x in xs]), rtol=1e-6)
    assert bonus.update(cell_batch(cells)) == {"n_nodes": 8.0, "n_edges": 6.0, "n_frontier": 8.0, "n_components": 2.0,
                                               "nodes_per_1k_steps": pytest.approx(1000 * 8 / 26)}
    torch.save(bonus.state_dict(), tmp_path / "bonus.pt")
    restored = make_bonus("toponav", IMAGE, ACTIONS, seed=5)
    restored.load_state_dict(load_state_safely(tmp_path / "bonus.pt"))
    back = cell_batch(cells[::-1].copy())
    np.testing.assert_array_equal(bonus.compute(back), restored.compute(back))
    assert bonus.topomap.get_state()["envs"] == restored.topomap.get_state()["envs"]


def test_bonus_resets_episodes_from_dones_and_reset_mask():
    bonus = make_bonus("toponav", IMAGE, ACTIONS, seed=0)
    cells = np.stack([np.arange(0, 9), np.zeros(9)], -1)[:, None]
    dones = np.zeros((9, 1), bool)
    dones[3] = True  # the episode ends at x = 3: x = 4 begins the next one
    bonus.compute(cell_batch(cells, dones))
    assert set(bonus.topomap.edges) == {(1, 2)}  # nodes at 0, 4, 8: only 4 -> 8 in one episode
    bonus.reset(np.array([True]))
    bonus.compute(cell_batch(np.array([[[12, 0]]])))
    assert set(bonus.topomap.edges) == {(1, 2)}


def test_bonus_data_driven_thresholds_for_raw_observations():
    """§6: delta_new = 0.5 x the median nearest-neighbour distance (distinct embeddings), delta_loc = delta_new / 2."""
    space = gym.spaces.Discrete(12)
    bonus = make_bonus("toponav", space, ACTIONS, seed=0)
    states = np.arange(24).reshape(8, 3) % 12
    batch = Transitions(states, np.zeros((8, 3), np.int64), states, np.zeros((8, 3), bool))
    bonus.warm_up(batch)
    assert bonus.mode == "obs" and bonus.topomap.config.delta_new == pytest.approx(0.5 * np.sqrt(2))
    assert bonus.topomap.config.delta_loc == pytest.approx(0.25 * np.sqrt(2))
    assert bonus.compute(batch)[:4].ravel().tolist() == pytest.approx([0.1] * 12)  # 12 one-hot states: 12 nodes
    assert calibrate_thresholds(np.ones((10, 3))) is None  # one distinct embedding has no scale
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)  # Atari frames: a frozen random encoder, Atari defaults
    atari = make_bonus("toponav", frames, gym.spaces.Discrete(18), seed=0)
    x = np.random.default_rng(0).integers(0, 256, (4, 2, 4, 84, 84), dtype=np.uint8)
    atari.warm_up(Transitions(x, np.zeros((4, 2), np.int64), x, np.zeros((4, 2), bool)))
    config = atari.topomap.config
    assert atari.mode == "encoder" and atari.topomap.dim == 32 and config.k_edge == 50 and config.metric == "euclidean"
    same = np.broadcast_to(x[:1, :1], (3, 1, 4, 84, 84)).copy()
    rewards = atari.compute(Transitions(same, np.zeros((3, 1), np.int64), same, np.zeros((3, 1), bool)))
    assert rewards.ravel().tolist() == pytest.approx([0.1, 0.0, 0.0])


def test_ram_embedding_keeps_rooms_apart():
    ram = np.zeros((2, 128), np.uint8)
    ram[:, 42], ram[:, 43] = 50, 60
    ram[1, 3] = 1  # same (x, y), next room
    assert ram_embedding("MontezumaRevenge", ram).tolist() == [[0, 0, 50, 60], [1, 0, 50, 60]]
    bonus = make_bonus("toponav", IMAGE, ACTIONS, embedding="ram", ram_game="MontezumaRevenge", seed=0)
    obs = np.zeros((1, 2, *IMAGE.shape), np.uint8)
    batch = Transitions(obs, np.zeros((1, 2), np.int64), obs, np.zeros((1, 2), bool), {"ram": ram[None]})
    assert bonus.compute(batch).ravel().tolist() == pytest.approx([0.1, 0.1])
    assert bonus.topomap.config.n_context == len(RAM_EMBEDDINGS["MontezumaRevenge"][0])
    assert bonus.topomap.config.delta_new == 16.0 and not bonus.topomap.edges


def test_bad_input_is_a_clear_error():
    bonus = make_bonus("toponav", IMAGE, ACTIONS, seed=0)
    bonus.compute(cell_batch(np.zeros((2, 1, 2))))
    batch = cell_batch(np.zeros((2, 1, 2)))
    with pytest.raises(BonusInputError, match=r"bonus 'toponav': expected infos\['cell'\] .*got a batch without it"):
        bonus.compute(Transitions(batch.obs, batch.actions, batch.next_obs, batch.dones))
    with pytest.raises(BonusInputError, match=r"bonus 'toponav': expected integer infos\['cell'\] .*got float64"):
        bonus.compute(Transitions(batch.obs, batch.actions, batch.next_obs, batch.dones, {"cell": np.zeros((2, 1, 2))}))
    with pytest.raises(BonusInputError, match=r"bonus 'toponav': expected integer infos\['cell'\] of .*\(3, 1, 2\)"):
        bonus.compute(Transitions(batch.obs, batch.actions, batch.next_obs, batch.dones,
                                  {"cell": np.zeros((3, 1, 2), np.int64)}))
    with pytest.raises(BonusInputError, match=r"bonus 'toponav': expected finite infos\['unsafe'\] of shape"):
        bonus.compute(Transitions(batch.obs, batch.actions, batch.next_obs, batch.dones,
                                  {**batch.infos, "unsafe": np.zeros((2, 2), bool)}))
    with pytest.raises(TypeError, match="bonus 'toponav': .*unexpected keyword argument 'delta_nwe'"):
        make_bonus("toponav", IMAGE, ACTIONS, delta_nwe=3)
    with pytest.raises(ValueError, match="bonus 'toponav': .*delta_loc < delta_new"):
        make_bonus("toponav", IMAGE, ACTIONS, delta_loc=3, delta_new=3)
    with pytest.raises(ValueError, match=r"bonus 'toponav' \(cell embedding\): .*delta_loc < delta_new .*delta_loc=4"):
        make_bonus("toponav", IMAGE, ACTIONS, delta_loc=4).compute(batch)  # above the grid's delta_new of 3
    with pytest.raises(ValueError, match="bonus 'toponav': delta_new must be a positive number, got -1"):
        make_bonus("toponav", IMAGE, ACTIONS, delta_new=-1)
    with pytest.raises(ValueError, match="bonus 'toponav': .*metric must be one of"):
        make_bonus("toponav", IMAGE, ACTIONS, metric="manhattan")
    with pytest.raises(ValueError, match="embedding='ram' needs ram_game"):
        make_bonus("toponav", IMAGE, ACTIONS, embedding="ram")
    m = TopoMap(2)
    with pytest.raises(ValueError, match=r"expected an embedding of dimension 2, got shape \(3,\)"):
        m.step(0, np.zeros(3))
    with pytest.raises(ValueError, match="expected a finite embedding, got NaN or inf"):
        m.step(0, np.array([np.nan, 0.0]))
    with pytest.raises(KeyError, match="no RAM embedding for game 'Pong'"):
        ram_embedding("Pong", np.zeros(128))
    with pytest.raises(ValueError, match="start cell \\(0, 0\\) is not a free cell"):
        GridWorld(np.zeros((3, 3), bool), (0, 0))


# ---------------------------------------------------------------------------- spec §9 behavioural tests
@pytest.fixture(scope="module")
def closed_room_runs():
    """§9.7-9.8: uniform random walk (4 moves) over MiniGrid-Empty-16x16's 14x14 free cells, the goal ignored, 50k
    steps, fed to the bonus in batches of 1000 (the embedding is the agent's (x, y) from `infos["cell"]`)."""
    import minigrid  # noqa: F401  (registers the MiniGrid ids)

    env = gym.make("MiniGrid-Empty-16x16-v0")
    env.reset(seed=0)
    runs = []
    for seed in range(3):
        world = GridWorld.from_minigrid(env, with_goal=False)
        assert world.free.sum() == 14 * 14
        moves = np.random.default_rng(seed).integers(4, size=50_000)
        cells = np.array([world.step(int(m)).cell for m in moves])
        bonus = make_bonus("toponav", IMAGE, ACTIONS, seed=seed)
        rewards, counts = [], []
        for chunk in cells.reshape(50, 1000, 1, 2):
            rewards.append(bonus.compute(cell_batch(chunk))[:, 0])
            counts.append(bonus.topomap.n_nodes)
        runs.append({"map": bonus.topomap, "rewards": np.concatenate(rewards), "counts": counts,
                     "free": np.argwhere(world.free).astype(float)})
    env.close()
    return runs


def test_closed_room_saturates(closed_room_runs):
    """§9.7: the node count rises, then stays constant for at least the last 40k steps, ending in [4, 16]; no
    frontier is left."""
    for run in closed_room_runs:
        m = run["map"]
        assert run["counts"][0] < run["counts"][-1] and 4 <= m.n_nodes <= 16
        assert m.created_at[: m.n_nodes].max() <= 10_000 and run["counts"][10:] == [m.n_nodes] * 40
        assert m.stats()["n_frontier"] == 0


@pytest.mark.xfail(strict=True, reason="spec §9.7's r_int < 5% does not hold with §7's defaults: beta_visit / sqrt(n) "
                                       "on ~110 arrivals per node by 50k steps leaves ~9-10% (first 5k ~1.9, last 5k "
                                       "~0.2); threshold kept, reported to the lead")
def test_closed_room_intrinsic_reward_decays_below_5_percent(closed_room_runs):
    for run in closed_room_runs:
        assert run["rewards"][-5000:].mean() < 0.05 * run["rewards"][:5000].mean()


def test_closed_room_coverage_and_connected_graph(closed_room_runs):
    """§9.8: every free cell is within delta_new of a node, and the graph is connected."""
    for run in closed_room_runs:
        stats = run["map"].stats(run["free"])
        assert stats["coverage"] == 1.0 and stats["n_components"] == 1


def rooms_layout(rows: int, cols: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`rows x cols` rooms of `size x size` free cells inside one-cell walls, one random door per shared wall."""
    free = np.zeros((cols * (size + 1) + 1, rows * (size + 1) + 1), bool)
    for r in range(rows):
        for c in range(cols):
            x0, y0 = 1 + c * (size + 1), 1 + r * (size + 1)
            free[x0:x0 + size, y0:y0 + size] = True
            if c + 1 < cols:
                free[x0 + size, y0 + rng.integers(size)] = True
            if r + 1 < rows:
                free[x0 + rng.integers(size), y0 + size] = True
    return free


def test_graph_explorer_beats_a_random_walk_on_eight_rooms():
    """§9.9: 2x4 rooms of 8x8 (522 free cells), start in a corner room: moves to visit 95% of the free cells, the
    explorer (argmax of §5.6's score, map path then 30 random steps with repeat 0.8) against a uniform random walk;
    median over 10 seeds <= 0.85x."""
    explorer, random_walk = [], []
    config = dataclasses.replace(MINIGRID_DEFAULTS, t_sel=0.0)
    for seed in range(10):
        free = rooms_layout(2, 4, 8, np.random.default_rng(seed))
        assert free.sum() == 522
        target = int(np.ceil(0.95 * free.sum()))
        agent = TopoNavExplorer(GridWorld(free, (4, 4)), config, seed=seed)
        explorer.append(agent.run(200_000, stop=lambda a: len(a.visited) >= target))
        world, seen = GridWorld(free, (4, 4)), {(4, 4)}
        for t, move in enumerate(np.random.default_rng(100 + seed).integers(4, size=200_000), start=1):
            seen.add(world.step(int(move)).cell)
            if len(seen) >= target:
                random_walk.append(t)
                break
    assert len(random_walk) == 10 and max(explorer) < 200_000
    assert np.median(explorer) <= 0.85 * np.median(random_walk), (explorer, random_walk)


# ------------------------------------------------------------------------------------------- the explorer
def test_explorer_never_returns_into_a_hazard():
    """Rule 1: after a safety event on a cell, the explorer's moves avoid it (here it ends every episode)."""
    free = np.zeros((9, 3), bool)
    free[1:8, 1] = True
    hazard = np.zeros_like(free)
    hazard[4, 1] = True
    agent = TopoNavExplorer(GridWorld(free, (1, 1), hazard=hazard), seed=0)
    unsafe = sum(agent.step().unsafe for _ in range(400))
    assert unsafe == 1 and agent.hazards == {(4, 1)}


def test_explorer_drives_minigrid_through_doors_to_the_goal():
    """MiniGridWalker: turns, opens doors, walks; the explorer finds MultiRoom-N2-S4's goal and, goal-directed from
    then on (rule 3), reaches it again."""
    from explore_bench.envs import make_env

    walker = MiniGridWalker(make_env("MiniGrid-MultiRoom-N2-S4-v0"), seed=1)
    agent = TopoNavExplorer(walker, seed=0)
    agent.run(4000, stop=lambda a: a.map.goal_known())
    assert agent.map.goal_known() and walker.env_steps > agent.steps
    successes = 0
    for _ in range(400):
        successes += agent.step().reward > 0
    assert successes >= 5


# --------------------------------------------------------------------------------------------- the picture
def test_map_picture_is_written_for_toponav_runs_only(tmp_path):
    from explore_bench.agents.factory import make_agent, resolve_config
    from explore_bench.runner import run_single
    from explore_bench.runner.maps import MAP_FILE, toponav_bonus, write_toponav_map

    small = {"n_envs": 2, "hyperparameters.n_steps": 64, "hyperparameters.batch_size": 64,
             "intrinsic.warmup_rollouts": 1}
    config = resolve_config("MiniGrid-MultiRoom-N2-S4-v0", "ppo", "toponav", 0, 384, small)
    summary = run_single(config, tmp_path / "toponav", tensorboard=False)
    png = tmp_path / "toponav" / MAP_FILE
    assert summary["status"] == "finished" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plain_config = resolve_config("MiniGrid-MultiRoom-N2-S4-v0", "ppo", None, 0, 384, small)
    assert write_toponav_map(make_agent(plain_config), plain_config, tmp_path) is None
    assert not (tmp_path / MAP_FILE).exists()
    wrapped = make_agent(resolve_config("MiniGrid-MultiRoom-N2-S4-v0", "a2c", "toponav", 0, 384, {"n_envs": 2}))
    assert toponav_bonus(wrapped) is not None  # the reward wrapper's bonus is found too
