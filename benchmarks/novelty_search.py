"""The behavioural acceptance tests of shared/specs/novelty_search.md §9 (8-12) at the spec's full scale, on
PointMazeDeceptive-v0, one process (tests/test_novelty_search.py runs scaled versions).

    python benchmarks/novelty_search.py --out results/novelty_search_spec.md

8   coverage (cells of the 50x50 grid of final positions, over every evaluation) at 10k evaluations: NS (sigma 0.1)
    vs random policy search; spec: NS >= 2x random.
9   NS (sigma 0.1) reward > 0 within 50k evaluations, 5 seeds (spec: >= 4/5); random search within 20k, 3 seeds
    (spec: 0/3).
10  elitist (mu + lambda) ES at 20k evaluations on the dense distance to the goal (spec: best final position under the
    long wall, about (-0.8, 0.3), distance about 0.5, no reward) and on the sparse reward (spec: no reward).
11  an elitist fitness emitter seeded at NS's first rewarding genome (sigma_e = min(nearest genome / 3, 0.1)): emitter
    evaluations to a reward >= 0.9, within 10k (spec: 3/3 seeds); and a whole SERENE run: exploration cells when the
    first reward came and 10k evaluations later (spec: NS coverage keeps growing during the exploit chunks).
12  TAXONS (STAX-lite: 32x32 images, latent 10, novelty/surprise coin flip, AE trainings after chunks 1, 3, 6, 10,
    15) at 20k evaluations, 3 seeds: coverage vs random (spec: >= 1.5x), last validation error vs the untrained AE's
    (spec: <= 0.5x in >= 2/3 seeds) and vs the mean image's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from report import emit_table

from explore_bench.agents.novelty_domains import make_domain
from explore_bench.agents.novelty_search import (
    Emitter,
    RecordingNS,
    emitter_sigma,
    make_search,
    search_config,
)

MAZE = "PointMazeDeceptive-v0"


def run(algo: str, seed: int, budget: int, **settings):
    domain = make_domain(MAZE, view_size=settings.get("view_size", 32))
    search = (RecordingNS(domain, search_config(settings), seed) if algo == "ns"
              else make_search(algo, domain, settings, seed))
    start = time.process_time()
    search.run(budget)
    search.cpu_s = time.process_time() - start
    return search


def fmt(values) -> str:
    return ", ".join("never" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:.3g}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    title = "# Novelty search, SERENE and TAXONS vs spec novelty_search.md §9 (tests 8-12) on PointMazeDeceptive-v0"
    lines = [title, "",
             "Command: `python benchmarks/novelty_search.py --out results/novelty_search_spec.md` (one process, one "
             "torch thread). Coverage: filled cells of the 50x50 grid of final positions over every evaluation.", "",
             "| spec §9 test | setting | measured | spec |", "|---|---|---|---|"]

    ns = [run("ns", s, 50_000) for s in range(5)]
    rnd10 = [run("random_search", s, 10_000) for s in range(3)]
    rnd20 = [run("random_search", s, 20_000) for s in range(3)]
    cov_ns = [r.metrics.snapshots[10_000]["coverage"] for r in ns]
    cov_rnd = [r.metrics.coverage for r in rnd10]
    lines.append(f"| 8 | coverage at 10k, NS sigma 0.1 (5 seeds) vs random (3) | NS {fmt(cov_ns)}; random "
                 f"{fmt(cov_rnd)}; min ratio {min(cov_ns) / max(cov_rnd):.2f} | >= 2x |")
    found = [r.metrics.first_reward_evaluation for r in ns]
    lines.append(f"| 9 | NS sigma 0.1, first reward within 50k (5 seeds) | {sum(f is not None for f in found)}/5: "
                 f"{fmt(found)}; coverage at 50k {fmt([r.metrics.coverage for r in ns])}; best reward "
                 f"{fmt([r.metrics.best_reward for r in ns])} | >= 4/5 |")
    lines.append(f"| 9 | random search, reward within 20k (3 seeds) | {sum(r.metrics.best_reward > 0 for r in rnd20)}"
                 f"/3; coverage {fmt([r.metrics.coverage for r in rnd20])} | 0/3 |")

    es = [run("objective_es", s, 20_000) for s in range(3)]
    sparse = [run("objective_es", s, 20_000, objective="reward") for s in range(3)]
    where = "; ".join(f"({e.stats()['best_fitness_bd'][0]:.2f}, {e.stats()['best_fitness_bd'][1]:.2f}) "
                      f"d={e.stats()['best_goal_distance']:.3f}" for e in es)
    lines.append(f"| 10 | ES on the distance to the goal, 20k (3 seeds) | best final positions {where}; rewards "
                 f"{sum(e.metrics.best_reward > 0 for e in es)}/3 | under the wall, d about 0.5, 0/3 |")
    lines.append(f"| 10 | ES on the sparse reward, 20k (3 seeds) | rewards "
                 f"{sum(e.metrics.best_reward > 0 for e in sparse)}/3 | 0/3 |")

    to_09 = []
    for r in [r for r in ns if r.first_rewarding is not None][:3]:
        ancestor, others, reference = r.first_rewarding
        exploiter = make_search("serene", make_domain(MAZE), {}, r.seed)
        exploiter.budget = 10_000
        emitter = Emitter(ancestor, emitter_sigma(ancestor.genome[0], others), float("-inf"))
        exploiter.init_emitter(emitter, reference)
        while exploiter.exploit_best_reward < 0.9 and exploiter.remaining():
            exploiter.emitter_step(emitter, reference)
        to_09.append((r.seed, float(ancestor.reward[0]), emitter.sigma,
                      exploiter.evaluations if exploiter.exploit_best_reward >= 0.9 else None,
                      exploiter.exploit_best_reward))
    lines.append("| 11 | emitter from NS's first reward (seed: first reward, sigma_e, evaluations to 0.9, best) | "
                 + "; ".join(f"{s}: {a:.2f}, {sig:.3f}, {fmt([n])}, {b:.3f}" for s, a, sig, n, b in to_09)
                 + " | >= 0.9 within 10k in 3/3 |")
    first = next(r for r in ns if r.first_rewarding is not None)
    serene = make_search("serene", make_domain(MAZE), {}, first.seed)
    trace = {}

    def on_chunk():
        if serene.metrics.first_reward_evaluation is not None and "first" not in trace:
            trace["first"] = (serene.evaluations, serene.metrics.coverage_explore)
        trace["last"] = (serene.evaluations, serene.metrics.coverage_explore, serene.exploit_evaluations,
                         serene.exploit_best_reward)

    serene.run(first.metrics.first_reward_evaluation + 10_000, on_chunk=on_chunk)
    (e0, c0), (e1, c1, x1, b1) = trace["first"], trace["last"]
    lines.append(f"| 11 | SERENE seed {first.seed}: exploration cells at the first reward -> 10k later | {c0:,} at "
                 f"{e0:,} -> {c1:,} at {e1:,} ({x1:,} exploitation evaluations, emitter best {b1:.3f}) | growing |")

    taxons = [run("taxons", s, 20_000) for s in range(3)]
    cov_t = [t.metrics.coverage for t in taxons]
    cov_r = [r.metrics.coverage for r in rnd20]
    errors = [(h["val_error"], h["untrained_error"], h["mean_image_ratio"]) for h in (t.ae.history[-1] for t in taxons)]
    firsts = fmt([t.metrics.first_reward_evaluation for t in taxons])
    lines.append(f"| 12 | TAXONS (STAX-lite) 20k, 32x32 (3 seeds): coverage vs random | {fmt(cov_t)} vs {fmt(cov_r)}; "
                 f"min ratio {min(cov_t) / max(cov_r):.2f}; first rewards {firsts} | >= 1.5x |")
    lines.append("| 12 | last AE training: validation error / untrained / mean-image ratio | "
                 + "; ".join(f"{v:.4f} / {u:.4f} / {m:.2f}" for v, u, m in errors)
                 + f"; <= 0.5x untrained in {sum(v <= 0.5 * u for v, u, _ in errors)}/3, <= 0.5x mean image in "
                 f"{sum(m <= 0.5 for _, _, m in errors)}/3 | <= 0.5x untrained in >= 2/3 |")
    cpu = {"NS 50k": np.mean([r.cpu_s for r in ns]), "random 20k": np.mean([r.cpu_s for r in rnd20]),
           "ES 20k": np.mean([e.cpu_s for e in es]), "TAXONS 20k": np.mean([t.cpu_s for t in taxons])}
    lines.append("")
    lines.append("CPU seconds per run (one thread, mean): " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    emit_table(lines, args.out)


if __name__ == "__main__":
    main()
