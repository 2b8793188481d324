"""Novelty search, TAXONS, SERENE, STAX and their baselines (shared/specs/novelty_search.md §9), the point maze, the
MiniGrid and gymnasium adapters, the runner (run folders, resume after a kill, bad input) and the bd_novelty bonus.

The behavioural tests (spec §9, 8-12) run on PointMazeDeceptive-v0 at the spec's budgets where that fits the file's
one-minute budget and scaled down where it does not (each such test says how); benchmarks/novelty_search.py runs all
of them at full scale. The unit tests of the SERENE/STAX machinery use ``ToyDomain``, whose evaluations cost nothing.
"""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from explore_bench.agents.factory import ConfigError, resolve_config
from explore_bench.agents.novelty_ae import BehaviourAE
from explore_bench.agents.novelty_domains import Controller, Evaluation, GymDomain, make_domain
from explore_bench.agents.novelty_search import (
    Agents,
    Emitter,
    RecordingNS,
    Serene,
    emitter_sigma,
    make_search,
    novelty,
    pareto_front,
    search_config,
    stagnated,
    stagnation_window,
)
from explore_bench.envs import env_family, make_env
from explore_bench.envs.point_maze import MazeLayout, PointMazeEnv

MAZE = "PointMazeDeceptive-v0"


class ToyDomain:
    """A domain whose evaluation costs nothing: BD = tanh of the first two genes; reward graded within ``radius`` of
    (0.5, 0.5) (reachable from random genomes: the emitters start at once); views: a blob at the BD."""

    def __init__(self, genome_size: int = 6, view_size: int = 16, radius: float = 0.3) -> None:
        self.controller = SimpleNamespace(genome_size=genome_size)
        self.radius = radius
        self.episode_len, self.bd_dim, self.grid_shape, self.view_size = 10, 2, (20, 20), view_size

    def evaluate(self, genomes: np.ndarray, views: bool = False) -> Evaluation:
        bd = np.tanh(genomes[:, :2])
        d = np.linalg.norm(bd - 0.5, axis=1)
        reward = np.where(d <= self.radius, (self.radius - d) / self.radius, 0.0)
        cell = np.clip(((bd + 1) / 2 * 20).astype(np.int64), 0, 19)
        view = None
        if views:
            x = np.arange(self.view_size)
            centre = (bd + 1) / 2 * self.view_size
            columns = np.exp(-((x[None] - centre[:, :1]) ** 2) / 4)[:, None, :]
            rows = np.exp(-((x[None] - centre[:, 1:]) ** 2) / 4)[:, :, None]
            view = np.rint(255 * rows * columns).astype(np.uint8)
        return Evaluation(reward, bd, cell, np.where(reward > 0, 0, -1), d, np.full(len(bd), 10, np.int64), view)

    def close(self) -> None:
        pass


SMALL = {"pop_size": 10, "chunk_size": 100, "k": 5, "latent": 4, "view_size": 16, "ae_max_epochs": 3}


def equal_states(a, b) -> bool:
    """Deep equality of two state dicts (numpy arrays and tensors compared by value)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal_states(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal_states(x, y) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, torch.Tensor)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b or (a != a and b != b)


# ---------------------------------------------------------------------------------------------- spec §9 unit tests
def test_1_novelty_of_hand_made_points():
    line = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert novelty(line, line, k=2)[0] == pytest.approx(1.5)  # mean(1, 2): the point itself skipped
    assert novelty(line, line, k=15)[0] == pytest.approx(13 / 3)  # fewer than k others: mean(1, 2, 10)
    duplicate = np.array([[0.0], [0.0], [5.0]])
    assert novelty(duplicate, duplicate, k=1)[0] == 0.0  # exactly one zero distance skipped
    assert novelty(np.array([[3.0]]), line, k=2, skip_self=False)[0] == pytest.approx(1.5)  # mean(1, 2)
    assert novelty(line[:1], line[:1], k=3)[0] == 0.0  # nothing else to compare with


def test_2_ns_archive_grows_by_lambda_and_mu_plus_lambda_keeps_the_most_novel():
    search = make_search("ns", ToyDomain(), {**SMALL, "archive_lambda": 3}, seed=0)
    search.budget = 10_000
    search.population = search.evaluate(search.random_genomes(10))
    for generation in range(1, 6):
        parents, archive_before = search.population, search.archive.bd.copy()
        search.generation_step()
        assert len(search.archive) == 3 * generation and len(search.population) == 10
        pool = Agents.concat(parents, search.offspring)
        scores = novelty(pool.bd, np.concatenate([pool.bd, archive_before]), k=5)
        expected = set(pool.born[np.argsort(-scores, kind="stable")[:10]])
        assert set(search.population.born) == expected
    # TAXONS' other criterion: the population is the top pop_size by surprise
    taxons = make_search("taxons", ToyDomain(), {**SMALL, "criterion": "surprise"}, seed=0)
    taxons.budget = 10_000
    taxons.population = taxons.evaluate(taxons.random_genomes(10))
    parents = taxons.population
    taxons.generation_step()
    pool = Agents.concat(parents, taxons.offspring)
    assert set(taxons.population.born) == set(pool.born[np.argsort(-pool.surprise, kind="stable")[:10]])


def test_3_controller_genome_sizes_and_outputs():
    assert Controller(2, 2, 2, 5).genome_size == 48
    assert Controller(6, 2, 3, 5).genome_size == 6 * 5 + 1 + 2 * (25 + 1) + 5 * 2 + 1 == 94
    assert make_domain(MAZE).controller.genome_size == 48
    controller = Controller(2, 2, 2, 5)
    out = Controller.forward(controller.unpack(np.full((3, 48), 5.0)), np.ones((3, 2)))
    assert out.shape == (3, 2) and np.all(np.abs(out) <= 1)
    # one scalar bias per layer: the last gene shifts every output unit of the last layer alike
    g = np.zeros((1, 48))
    g[0, -1] = 2.0
    out = Controller.forward(controller.unpack(g), np.zeros((1, 2)))
    assert out[0, 0] == out[0, 1] == pytest.approx(2 / (1 + np.exp(-2.0)) - 1, abs=1e-6)


def test_4_emitter_sigma_is_the_nearest_genome_distance_over_3():
    others = np.array([[3.0, 4.0], [6.0, 8.0]])
    assert emitter_sigma(np.zeros(2), others, cap=None) == pytest.approx(5 / 3)
    assert emitter_sigma(np.zeros(2), np.vstack([others, [0.0, 0.0]]), cap=None) == 0.05  # distance 0: fallback
    assert emitter_sigma(np.zeros(2), others) == 0.1  # the CPU-scale cap (pitfall 11)


def test_pareto_front_of_novelty_and_improvement():
    novelty_, improvement = np.array([1.0, 2.0, 3.0, 0.5, 2.0]), np.array([3.0, 2.0, 1.0, 0.5, 1.0])
    assert list(pareto_front(novelty_, improvement)) == [0, 1, 2]  # 3 and 4 are dominated


def test_5_stagnation_fires_after_b_plus_1_constant_steps_not_on_increasing_rewards():
    window = stagnation_window(48, 6)
    assert window == int(20 * 48 / 6 + 120) == 280
    constant = [np.full(6, 0.5) for _ in range(window + 2)]  # the initial population's rewards, then one per step
    assert not stagnated(constant[: window + 1], window, window)
    assert stagnated(constant[: window + 2], window + 1, window)
    increasing = [np.full(6, float(i)) for i in range(2 * window + 1)]
    assert not any(stagnated(increasing[: s + 1], s, window) for s in range(2 * window + 1))


@pytest.mark.parametrize("algo", ["ns", "serene", "stax"])
def test_6_total_evaluations_equal_the_budget_and_never_exceed_it(algo):
    search = make_search(algo, ToyDomain(), SMALL, seed=1)
    seen = []
    search.run(1234, on_step=lambda: seen.append(search.evaluations))
    assert search.evaluations == 1234 and max(seen) <= 1234
    assert search.frames == 10 * 1234
    if algo != "ns":  # rewards are everywhere in the toy domain: the emitters spent part of the budget
        assert search.exploit_evaluations > 0 and search.explore_evaluations + search.exploit_evaluations == 1234


def test_7_after_an_ae_retraining_every_stored_bd_is_in_the_new_space():
    stax = make_search("stax", ToyDomain(radius=0.8), {**SMALL, "train_ae": False}, seed=2)

    def stop_once_every_kind_of_set_is_there():
        if stax.emitters and stax.candidates and any(len(e.candidates) for e in stax.emitters):
            raise StopIteration

    with pytest.raises(StopIteration):
        stax.run(5000, on_chunk=stop_once_every_kind_of_set_is_there)
    before = [s.bd.copy() for s in stax.stored_sets()]
    stax.retrain()
    after = stax.stored_sets()
    assert len(after) == len(before) >= 6
    for old, new in ((o, n) for o, n in zip(before, after) if len(n)):
        assert new.bd.shape == (len(new), 4) and np.isfinite(new.bd).all()
        assert not np.allclose(old, new.bd)
        np.testing.assert_allclose(new.bd, stax.ae.encode(new.view)[0])


# --------------------------------------------------------------------------------------------------------- the maze
def test_maze_dynamics_walls_and_reward():
    layout = MazeLayout()
    up = layout.rollout(lambda pos: np.tile([0.0, 1.0], (len(pos), 1)), 1)
    assert up[0, 1] < 0.3 and up[0, 1] == pytest.approx(0.25)  # blocked by the long wall: a move may not touch it
    right = layout.rollout(lambda pos: np.tile([1.0, 0.0], (len(pos), 1)), 1)
    assert right[0, 0] == pytest.approx(0.15)  # blocked by the short wall
    in_gap = layout.step(np.array([[0.9, 0.25]]), np.array([[0.0, 1.0]]))
    assert in_gap[0, 1] == pytest.approx(0.3)  # the gap: x in (0.7, 1]
    reward, area = layout.reward(np.array([[-0.8, 0.8], [-0.8, 0.725], [0.0, 0.0]]))
    np.testing.assert_allclose(reward, [1.0, 0.5, 0.0])
    assert list(area) == [0, 0, -1]

    def path(pos):  # up, right above the short wall, up through the gap, then left to the goal
        x, y = pos[0]
        a = [0, 1] if y < 0 and x < 0.8 else [1, 0] if x < 0.85 and y < 0.75 else [0, 1] if y < 0.8 else [-1, 0]
        return np.array([a if x > -0.8 or y < 0.75 else [0, 0]], float)

    final = layout.rollout(path, 1)
    assert layout.reward(final)[0][0] > 0.5


def test_gym_env_matches_the_vectorised_rollout_and_reports_episode_metrics():
    assert env_family(MAZE) == "pointmaze"
    rng = np.random.default_rng(0)
    genomes = np.clip(rng.normal(size=(4, 48)), -5, 5)
    fast = make_domain(MAZE).evaluate(genomes, views=True)
    generic = GymDomain(lambda: make_env(MAZE), lambda env, obs, info: env.unwrapped.pos.copy(),
                        lambda env, obs, info: info["cell"], (50, 50), episode_len=150).evaluate(genomes, views=True)
    np.testing.assert_allclose(generic.bd, fast.bd, atol=1e-5)  # the gym env steps the same dynamics
    np.testing.assert_array_equal(generic.cell, fast.cell)
    np.testing.assert_allclose(generic.reward, fast.reward, atol=1e-5)
    assert fast.view.shape == generic.view.shape == (4, 32, 32) and fast.view.dtype == np.uint8
    assert np.abs(fast.view.astype(int) - generic.view.astype(int)).max() <= 1
    env = PointMazeEnv()
    env.reset(seed=0)
    for t in range(150):
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0]))
        assert terminated == (t == 149) and not truncated
    assert info["episode_metrics"]["success"] == 0.0 and info["episode_metrics"]["length"] == 150
    assert info["episode_metrics"]["coverage"] == len({tuple(c) for c in layout_cells_up()})


def layout_cells_up() -> np.ndarray:
    layout, pos, cells = MazeLayout(), np.array([[-0.9, -0.9]]), []
    cells.append(layout.cells(pos)[0])
    for _ in range(150):
        pos = layout.step(pos, np.array([[0.0, 1.0]]))
        cells.append(layout.cells(pos)[0])
    return np.array(cells)


def test_minigrid_adapter_final_cell_bd_and_symbolic_frames():
    domain = make_domain("MiniGrid-FourRooms-v0", seed=0)
    assert domain.controller.genome_size == Controller(6, 3, 2, 8).genome_size
    genomes = np.clip(np.random.default_rng(0).normal(size=(6, domain.controller.genome_size)), -5, 5)
    a, b = domain.evaluate(genomes, views=True), domain.evaluate(genomes, views=True)
    np.testing.assert_array_equal(a.bd, b.bd)  # a fixed layout: evaluation is deterministic
    assert a.bd.shape == (6, 2) and np.array_equal(a.bd, a.cell) and (a.cell < 19).all() and (a.cell >= 0).all()
    assert (a.steps <= 100).all() and a.view.shape == (6, 32, 32) and a.view.max() == 255  # the agent's cell
    assert len({tuple(c) for c in a.cell}) > 1
    # every step's cell (the coverage measure RL runs share): the start and the final cell among them
    assert a.visited.shape == (6, 19, 19) and a.visited[np.arange(6), a.cell[:, 0], a.cell[:, 1]].all()
    assert (a.visited.sum(axis=(1, 2)) <= a.steps + 1).all()
    assert a.visited.any(axis=0).sum() >= len({tuple(c) for c in a.cell})
    domain.envs[0].reset(seed=0)
    start = tuple(int(v) for v in domain.envs[0].agent_pos)
    assert a.visited[:, start[0], start[1]].all()
    assert make_domain("MiniGrid-FourRooms-v0", n_actions=6).controller.n_out == 6  # pickup, drop, toggle too
    with pytest.raises(ValueError, match=r"n_actions must be in \[1, 7\]"):
        make_domain("MiniGrid-FourRooms-v0", n_actions=9)
    with pytest.raises(KeyError, match="not on 'Bandit-v0'.*bandit tasks"):
        make_domain("Bandit-v0")


# -------------------------------------------------------------------------------------- spec §9 behavioural tests
_RUNS: dict = {}


def maze_run(algo: str, seed: int, budget: int, **settings):
    """A run on the maze, memoised across tests (runs are deterministic); NS runs record their first reward."""
    key = (algo, seed, budget, tuple(sorted(settings.items())))
    if key not in _RUNS:
        domain = make_domain(MAZE, view_size=settings.get("view_size", 32))
        search = (RecordingNS(domain, search_config(settings), seed) if algo == "ns"
                  else make_search(algo, domain, settings, seed))
        search.run(budget)
        _RUNS[key] = search
    return _RUNS[key]


def test_8_ns_covers_at_least_twice_the_cells_of_random_search_at_10k():
    ns = [maze_run("ns", s, 20_000).metrics.snapshots[10_000]["coverage"] for s in range(3)]
    rnd = [maze_run("random_search", s, 10_000).metrics.coverage for s in range(3)]
    assert min(ns) >= 2 * max(rnd), (ns, rnd)  # measured: NS 1,526-1,569, random 408-438


def test_9_ns_finds_the_deceptive_reward_and_random_search_does_not():
    """Scaled: spec §9 test 9 asks >= 4/5 seeds within 50k evaluations (5 runs of up to 50k: about 15 s here;
    benchmarks/novelty_search.py: 4/5, at 10.9k-17.3k) and random search 0/3 within 20k. Here NS on the first 3 seeds
    within 20k, >= 2/3 (the spec's own sigma-0.1 first rewards put 2 of 5 under 20k), and random search 0/3 within
    10k (the benchmark runs 20k)."""
    ns = [maze_run("ns", s, 20_000) for s in range(3)]
    found = [r.metrics.first_reward_evaluation for r in ns]
    assert sum(f is not None for f in found) >= 2, found
    assert all(r.metrics.best_reward > 0.5 for r in ns if r.metrics.first_reward_evaluation is not None)
    assert all(maze_run("random_search", s, 10_000).metrics.best_reward == 0 for s in range(3))


def test_10_the_objective_driven_es_is_deceived():
    """Scaled: 5k evaluations (3k on the sparse reward) instead of 20k (benchmarks/novelty_search.py runs 20k): the
    distance ES is under the long wall by then and stays there."""
    for seed in range(3):
        es = maze_run("objective_es", seed, 5_000)
        x, y = es.stats()["best_fitness_bd"]
        assert -1.0 <= x <= -0.6 and 0.2 <= y < 0.3, (x, y)  # right under the long wall
        assert es.stats()["best_goal_distance"] == pytest.approx(0.5, abs=0.05)
        assert es.metrics.best_reward == 0
        assert maze_run("objective_es", seed, 3_000, objective="reward").metrics.best_reward == 0


def test_11_an_emitter_seeded_at_the_first_ns_reward_exploits_it():
    """Spec §9 test 11 on the first three seeds whose NS finds the reward (0, 1 and 3 of 0-3): an elitist fitness
    emitter (6 members, 12 children a step) seeded at NS's first rewarding genome with sigma_e = min(nearest genome /
    3, 0.1) reaches 0.9 within 10k evaluations. (Whole SERENE runs: test_serene_keeps_exploring_between_exploit_chunks
    and benchmarks/novelty_search.py.)"""
    measured = {}
    for seed in (0, 1, 3):
        ns = maze_run("ns", seed, 20_000 if seed < 3 else 12_000)
        ancestor, others, reference = ns.first_rewarding
        exploiter = make_search("serene", make_domain(MAZE), {}, seed)
        exploiter.budget = 10_000
        emitter = Emitter(ancestor, emitter_sigma(ancestor.genome[0], others), float("-inf"))
        assert emitter.sigma <= 0.1
        exploiter.init_emitter(emitter, reference)
        while exploiter.exploit_best_reward < 0.9 and exploiter.remaining():
            exploiter.emitter_step(emitter, reference)
        assert exploiter.exploit_best_reward >= 0.9, (seed, float(ancestor.reward[0]), exploiter.evaluations)
        measured[seed] = (round(float(ancestor.reward[0]), 3), exploiter.evaluations)
    print("first NS reward and emitter evaluations to 0.9:", measured)


def test_serene_keeps_exploring_between_exploit_chunks():
    """Spec §9 test 11's second half, on the toy domain (rewards at once): chunks alternate, exploitation spends
    evaluations, and the exploration chunks between them keep adding cells."""
    serene = make_search("serene", ToyDomain(), SMALL, seed=0)
    seen = []
    serene.run(3000, on_chunk=lambda: seen.append((serene.chunks, serene.explore_evaluations,
                                                   serene.exploit_evaluations, serene.metrics.coverage_explore)))
    assert serene.metrics.first_reward_evaluation <= 110 and serene.emitters_finished + len(serene.emitters) > 0
    explore = [s for s in seen if s[0] % 2 == 1]  # after exploration chunks (chunk 0, 2, 4, ...)
    exploit = [s for s in seen if s[0] % 2 == 0]
    assert all(b[2] > a[2] for a, b in zip(exploit, exploit[1:5]))  # exploitation goes on
    assert explore[-1][3] > explore[0][3] and explore[-1][1] > explore[0][1]  # and so does exploration
    assert 0.2 < serene.exploit_evaluations / 3000 < 0.8  # about half of the budget each


def test_12_learned_behaviour_space_covers_more_than_random_search():
    """Scaled: TAXONS (STAX-lite's learned BD, novelty/surprise coin flip) at 4k evaluations on 16x16 images (AE
    trainings after exploration chunks 1 and 3), one seed; the spec's 20k x 3 seeds on 32x32 images (5 trainings of
    10-20 s each here) is in benchmarks/novelty_search.py."""
    taxons = maze_run("taxons", 0, 4_000, view_size=16)
    random = maze_run("random_search", 0, 4_000)
    assert taxons.metrics.coverage >= 1.5 * random.metrics.coverage, (taxons.metrics.coverage, random.metrics.coverage)
    assert taxons.stats()["ae_retrains"] == 2
    last = taxons.ae.history[-1]
    assert last["val_error"] <= 0.5 * last["untrained_error"]
    assert taxons.archive.bd.shape[1] == 10 and taxons.ae_collapses == 0


# -------------------------------------------------------------------------------------------- the AE's collapse
def test_ae_collapse_is_detected_reinitialised_and_reported(tmp_path):
    views = MazeLayout().render(np.random.default_rng(0).uniform(-1, 1, (60, 2)), 16)
    frozen = BehaviourAE(size=16, latent=4, lr=0.0, max_epochs=2, output="relu", reinit_tries=2)
    stats = frozen.train(views)  # an AE that cannot learn is as bad as the untrained one: a collapse
    assert stats.collapsed and stats.reinits == 2 and stats.val_error >= stats.untrained_error
    healthy = BehaviourAE(size=16, latent=4, max_epochs=5).train(views)
    assert not healthy.collapsed and healthy.reinits == 0 and healthy.val_error < healthy.untrained_error

    from explore_bench.runner.run import run_single

    config = resolve_config(MAZE, "taxons", None, 0, 150 * 400, {
        "explorer.pop_size": 10, "explorer.chunk_size": 100, "explorer.view_size": 16, "explorer.ae_lr": 0.0,
        "explorer.ae_max_epochs": 1, "explorer.ae_reinit_tries": 1})
    summary = run_single(config, tmp_path, tensorboard=False)
    assert summary["status"] == "finished", summary.get("error")
    assert summary["final"]["ae_collapses"] == summary["final"]["ae_retrains"] == 2  # after chunks 1 and 3
    assert summary["final"]["ae_reinits"] == 2
    collapses = [e for e in summary["events"] if "AE collapse detected" in e]
    assert len(collapses) == 2 and "still collapsed after 1 re-initialisation" in collapses[0]


# ------------------------------------------------------------------------------------------------- resume
def test_explorer_state_round_trips_through_a_safe_checkpoint_mid_run(tmp_path):
    """STAX on the toy domain (emitters, reward archive, AE) interrupted at a chunk end, saved as the runner saves it
    and loaded with weights_only=True, ends exactly as the uninterrupted run."""
    from explore_bench.runner.novelty import load_state, state_bytes

    whole = make_search("stax", ToyDomain(radius=0.8), SMALL, seed=3)
    whole.run(900)
    path = tmp_path / "state.pt"

    class Killed(Exception):
        pass

    def on_chunk():
        path.write_bytes(state_bytes(first.state_dict()))
        if first.chunks == 4:
            raise Killed

    first = make_search("stax", ToyDomain(radius=0.8), SMALL, seed=3)
    with pytest.raises(Killed):
        first.run(900, on_chunk=on_chunk)
    assert first.emitters and len(first.reward_archive) and first.ae.history  # the checkpoint holds all of them
    resumed = make_search("stax", ToyDomain(radius=0.8), SMALL, seed=99)
    resumed.load_state_dict(load_state(path))
    resumed.run(900)
    assert equal_states(resumed.state_dict(), whole.state_dict())


def test_run_folder_and_resume_after_a_kill_give_the_uninterrupted_result(tmp_path, monkeypatch):
    from explore_bench.runner.novelty import CHECKPOINT, load_state
    from explore_bench.runner.run import run_single

    overrides = {"explorer.pop_size": 20, "explorer.chunk_size": 200, "explorer.view_size": 16, "explorer.latent": 4,
                 "explorer.ae_max_epochs": 2}
    config = resolve_config(MAZE, "stax", None, 0, 150 * 1500, overrides)
    whole = run_single(config, tmp_path / "whole", log_every=150 * 100, checkpoint_every=1, tensorboard=False)
    assert whole["status"] == "finished" and whole["agent"] == "stax" and whole["bonus"] is None
    assert whole["frames"] == 150 * 1500 and whole["final"]["evaluations"] == 1500
    for name in ("progress.csv", "archive.csv", "config.json", CHECKPOINT):
        assert (tmp_path / "whole" / name).exists(), name

    calls = {"n": 0}
    original = Serene.step_chunk

    def killed_in_the_fifth_chunk(self, on_step):
        calls["n"] += 1
        if calls["n"] == 5:  # an exploration chunk: one generation (and maybe a progress row) past the checkpoint
            self.generation_step()
            on_step()
            raise RuntimeError("killed")
        return original(self, on_step)

    monkeypatch.setattr(Serene, "step_chunk", killed_in_the_fifth_chunk)
    failed = run_single(config, tmp_path / "killed", log_every=150 * 100, checkpoint_every=1, tensorboard=False)
    assert failed["status"] == "failed" and "killed" in failed["error"]
    monkeypatch.setattr(Serene, "step_chunk", original)
    resumed = run_single(config, tmp_path / "killed", log_every=150 * 100, checkpoint_every=1, tensorboard=False)
    assert resumed["status"] == "finished" and 0 < resumed["resumed_from"] < whole["frames"]
    assert any("resumed from" in e for e in resumed["events"])
    assert resumed["final"] == whole["final"]
    columns = ("frames", "episode_return", "success", "coverage")
    assert [[r[c] for c in columns] for r in _rows(tmp_path / "killed" / "progress.csv")] == \
           [[r[c] for c in columns] for r in _rows(tmp_path / "whole" / "progress.csv")]
    assert [{k: v for k, v in r.items() if k != "wall_time_s"} for r in _rows(tmp_path / "killed" / "archive.csv")] == \
           [{k: v for k, v in r.items() if k != "wall_time_s"} for r in _rows(tmp_path / "whole" / "archive.csv")]
    a = load_state(tmp_path / "killed" / CHECKPOINT)["explorer"]
    b = load_state(tmp_path / "whole" / CHECKPOINT)["explorer"]
    assert equal_states(a, b)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_progress_rows_report_frames_coverage_and_success(tmp_path):
    from explore_bench.runner.run import run_single

    config = resolve_config("MiniGrid-FourRooms-v0", "ns", None, 0, 100 * 70, {"explorer.pop_size": 10})
    summary = run_single(config, tmp_path, log_every=2000, tensorboard=False)
    assert summary["status"] == "finished", summary.get("error")
    rows = _rows(tmp_path / "progress.csv")
    assert [int(r["frames"]) for r in rows] == sorted(int(r["frames"]) for r in rows)
    assert int(rows[-1]["frames"]) == summary["frames"] <= 100 * 70
    assert all(r["success"] in ("0.0", "1.0") and float(r["coverage"]) >= 1 for r in rows)
    final = summary["final"]
    assert final["success"] == float(final["first_reward_evaluation"] is not None) and final["evaluations"] == 70
    assert final["coverage"] == float(rows[-1]["coverage"])
    # the cells of every step, as an RL run on the same env counts them: at least the final cells
    cells = [float(r["cells_visited"]) for r in rows]
    assert cells == sorted(cells) and final["cells_visited"] == cells[-1] >= final["coverage"]
    assert final["first_success_frames"] == final["first_reward_frames"]


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_input_gets_clear_errors(tmp_path):
    from explore_bench.runner.local import check_builds
    from explore_bench.runner.novelty import build_novelty
    from explore_bench.runner.suite import make_run_spec

    with pytest.raises(ConfigError, match="standalone explorer.*no bonus"):
        resolve_config(MAZE, "ns", "rnd", 0, 150_000)
    base = resolve_config(MAZE, "ns", None, 0, 150_000)
    with pytest.raises(TypeError, match=r"unknown explorer setting\(s\) \['sigmaa'\]"):
        build_novelty({**base, "explorer": {"sigmaa": 0.1}})
    for bad, match in [({"sigma": -1}, "'sigma': expected a positive number"),
                       ({"pop_size": 0}, "'pop_size': expected an integer >= 1"),
                       ({"archive_selection": "worst"}, "'archive_selection': expected one of"),
                       ({"view_size": 20}, "'view_size': expected a multiple of 8"),
                       ({"mutation_prob": 1.5}, "'mutation_prob'")]:
        with pytest.raises(ValueError, match=match):
            build_novelty({**base, "explorer": bad})
    with pytest.raises(ValueError, match="less than one episode"):
        build_novelty({**base, "frames": 100})
    with pytest.raises(ValueError, match="env_kwargs must be empty"):
        build_novelty({**base, "env_kwargs": {"render_mode": "rgb_array"}})
    with pytest.raises(KeyError, match="bandit tasks have no behaviour"):
        build_novelty(resolve_config("Bandit-v0", "ns", None, 0, 10_000))
    with pytest.raises(ConfigError, match="building the agent failed: TypeError: unknown explorer setting"):
        check_builds([make_run_spec(MAZE, "serene", None, 0, 150_000, {"explorer.emiter_pop": 3})])
    with pytest.raises(ValueError, match=r"expected genomes of shape \(P, 48\)"):
        make_domain(MAZE).evaluate(np.zeros((2, 47)))
    with pytest.raises(ValueError, match="k must be >= 1"):
        novelty(np.zeros((1, 2)), np.zeros((3, 2)), k=0)
    with pytest.raises(ValueError, match="queries have 3 dimensions, the reference set 2"):
        novelty(np.zeros((1, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"images of shape \(n, 16, 16\)"):
        BehaviourAE(size=16).encode(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="a 'ns' state cannot be loaded into a 'serene' explorer"):
        make_search("serene", ToyDomain()).load_state_dict(make_search("ns", ToyDomain()).state_dict())
    with pytest.raises(ValueError, match="finite action"):
        PointMazeEnv().step(np.array([np.nan, 0.0]))


def test_a_corrupt_checkpoint_is_set_aside_and_the_run_restarts(tmp_path):
    from explore_bench.runner.novelty import CHECKPOINT
    from explore_bench.runner.run import run_single

    config = resolve_config(MAZE, "ns", None, 0, 150 * 300, {"explorer.pop_size": 20})
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    summary = run_single(config, tmp_path, tensorboard=False)
    assert summary["status"] == "finished" and summary["resumed_from"] is None
    assert any("unreadable" in e for e in summary["events"]) and list((tmp_path / "corrupt").iterdir())


# ---------------------------------------------------------------------------------------------- the bonus (§6.5)
def test_bd_novelty_bonus_pays_episode_ends_and_archives_lambda_bds():
    import gymnasium as gym

    from explore_bench.bonuses import Transitions, make_bonus
    from explore_bench.bonuses.base import BonusInputError

    space, actions = gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), gym.spaces.Discrete(7)
    bonus = make_bonus("bd_novelty", space, actions, seed=0, at="episode_end", bd_dims=2, archive_lambda=2, k=2)
    t, n = 4, 3
    obs = np.zeros((t, n, 7, 7, 3), np.uint8)
    dones = np.zeros((t, n), bool)
    dones[1, 0] = dones[3, 2] = dones[2, 1] = True
    cells = np.zeros((t, n, 3), np.int64)
    cells[..., 0] = np.arange(t)[:, None]
    cells[..., 2] = 3  # the direction: dropped by bd_dims=2
    batch = Transitions(obs, np.zeros((t, n), np.int64), obs, dones, {"cell": cells})
    assert not bonus.compute(batch).any()  # an empty archive: nothing to compare with
    assert bonus.update(batch) == {"archive_size": 2.0}
    assert bonus.archive.shape == (2, 2) and set(map(tuple, bonus.archive)) <= {(1, 0), (3, 0), (2, 0)}
    rewards = bonus.compute(batch)
    assert (rewards[~dones] == 0).all() and (rewards[dones] >= 0).all()
    far = Transitions(obs[:1, :1], np.zeros((1, 1), np.int64), obs[:1, :1], np.ones((1, 1), bool),
                      {"cell": np.array([[[40, 40, 0]]])})
    assert bonus.compute(far)[0, 0] > rewards.max()
    with pytest.raises(BonusInputError, match="bonus 'bd_novelty': expected finite values in infos"):
        bonus.compute(Transitions(obs, np.zeros((t, n), np.int64), obs, dones, {"cell": cells * np.nan}))
    with pytest.raises(ValueError, match="at must be 'step' or 'episode_end'"):
        make_bonus("bd_novelty", space, actions, at="sometimes")


def test_ppo_trains_with_the_bd_novelty_bonus_on_minigrid(tmp_path):
    from explore_bench.runner.run import run_single

    config = resolve_config("MiniGrid-DoorKey-5x5-v0", "ppo", "bd_novelty", 0, 512, {
        "n_envs": 2, "hyperparameters.n_steps": 64, "hyperparameters.batch_size": 64, "hyperparameters.n_epochs": 1,
        "bonus_kwargs": {"at": "episode_end", "bd_dims": 2}})
    summary = run_single(config, tmp_path, tensorboard=False)
    assert summary["status"] == "finished", summary.get("error")
    assert json.loads((tmp_path / "summary.json").read_text())["bonus"] == "bd_novelty"
