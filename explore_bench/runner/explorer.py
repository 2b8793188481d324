"""A standalone explorer's run (Go-Explore phase 1) in the same run folder as an agent's (see ``run.py``).

Besides ``config.json``, ``summary.json`` and ``run.log``, the folder holds

- ``progress.csv``   the standard columns, one row every ``log_every`` frames: ``episode_return`` = the best score
                     found so far, ``success`` = 1 once a positive-reward terminal state was reached (MiniGrid's
                     goal; empty for Atari, which has no success), ``coverage`` = distinct rooms (Atari, from the RAM)
                     or agent cells (MiniGrid) seen so far, ``fps`` = frames emulated per second. A
                     ``go_explore_robust`` run leaves ``success`` empty in phase 1; its phase-2 rows are the policy's
                     return, success and coverage from the true start (``robustify_demo``).
- ``checkpoint.robust.zip`` / ``checkpoint.robust.pkl``  phase 2's model and curriculum (``go_explore_robust``).
- ``archive.csv``    one row per iteration: iteration, frames, frames_game, cells, coverage, max_score, wall_time_s.
- ``demo.json``      the best trajectory (action indices from reset, its score and length; `terminal` when it reached
                     a solved state), rewritten at each checkpoint: phase 2's demonstration.
- ``checkpoint.archive.pkl``  the explorer's state (archive with emulator snapshots, counters, metrics), written
                     atomically every ``checkpoint_every`` frames and at the end. A pickle, because ALE snapshots have
                     no other format; it is only ever read from files this runner wrote. A killed run resumes from
                     it, dropping the rows logged after it.

Frames are emulated frames (agent steps x 4 on Atari), the budget the papers count; ``frames_game`` adds the length
of each trajectory returned to, as if it had been replayed.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from explore_bench.agents.factory import EXPLORER_ALGOS
from explore_bench.agents.go_explore import GoExplore, GoExploreConfig, IterationStats
from explore_bench.atomic import atomic_write_bytes
from explore_bench.runner.io import atomic_write_json, read_rows_until, write_progress, write_table
from explore_bench.runner.run import (
    PROGRESS_FILE,
    UNKNOWN_COMMIT,
    _read_rows,
    git_commit,
    git_dirty,
    log_event,
)

__all__ = ["build_explorer", "train_explorer"]

ARCHIVE_CHECKPOINT = "checkpoint.archive.pkl"
ARCHIVE_CSV = "archive.csv"
DEMO_FILE = "demo.json"
ARCHIVE_COLUMNS = ("iteration", "frames", "frames_game", "cells", "coverage", "max_score", "wall_time_s")


def _progress_row(stats: IterationStats, family: str, fps: float, robust: bool = False) -> dict[str, Any]:
    # Atari has no success; a robustified run's success is its policy's (phase 2), not the explorer's
    success = None if family == "atari" or robust else float(stats.solved_at is not None)
    return {"frames": stats.frames, "episode_return": stats.max_score, "success": success,
            "coverage": float(stats.coverage), "fps": fps}


def build_explorer(config: Mapping[str, Any]) -> GoExplore:
    """The explorer of a resolved config; a TypeError or ValueError names a bad `explorer` setting."""
    if config["algo"] not in EXPLORER_ALGOS:
        raise ValueError(f"unknown explorer {config['algo']!r}; expected one of {EXPLORER_ALGOS}")
    if config["algo"] == "go_explore_robust":
        unknown = set(config.get("robustify") or {}) - set(ROBUSTIFY_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown robustify setting(s) {sorted(unknown)}; expected among {sorted(ROBUSTIFY_DEFAULTS)}")
    settings = dict(config.get("explorer") or {})
    unknown = set(settings) - set(GoExploreConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown explorer setting(s) {sorted(unknown)}; expected among {sorted(GoExploreConfig.__dataclass_fields__)}")
    return GoExplore(config["env"], int(config["seed"]), GoExploreConfig(**settings))


def train_explorer(config: Mapping[str, Any], run_dir: Path, attempt: dict[str, Any], *, log_every: int,
                   checkpoint_every: int, progress_bar: bool = False, **_: Any) -> dict[str, Any]:
    """Run (or resume) the explorer of ``config`` into ``run_dir`` up to ``config["frames"]`` emulated frames; the
    run's part of the summary. ``attempt`` is kept up to date for the summary of a failure."""
    from explore_bench.envs import env_family

    family = env_family(config["env"])
    explorer = build_explorer(config)
    robust = config["algo"] == "go_explore_robust"
    robustify = {**ROBUSTIFY_DEFAULTS, **(config.get("robustify") or {})}
    budget = int(config["frames"])
    checkpoint_path = run_dir / ARCHIVE_CHECKPOINT
    state: dict[str, Any] = {}
    resumed_from = None
    if checkpoint_path.exists():
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)  # noqa: S301 - a file this runner wrote (module docstring)
        explorer.load_state_dict(state["explorer"])
        resumed_from = explorer.frames
        log_event(run_dir, f"resumed from {ARCHIVE_CHECKPOINT} at {resumed_from} frames (trained so far by "
                           f"{', '.join(state['git_commits'])}; now {git_commit() or UNKNOWN_COMMIT})")
    elif _read_rows(run_dir):
        log_event(run_dir, "no checkpoint: restarting from zero frames (progress rows dropped)")
    # a robustified run past phase 1 keeps its later rows for phase 2 to trim to its own checkpoint
    keep = float("inf") if (run_dir / ROBUST_STATE).exists() else explorer.frames
    rows = [r for r in _read_rows(run_dir) if r["frames"] <= keep]
    archive_rows = read_rows_until(run_dir / ARCHIVE_CSV, explorer.frames)
    write_progress(run_dir / PROGRESS_FILE, rows)
    commits = list(dict.fromkeys([*state.get("git_commits", []), git_commit() or UNKNOWN_COMMIT]))
    dirty = bool(state.get("git_dirty")) or bool(git_dirty())
    last = {"row": explorer.frames, "ckpt": explorer.frames, "t": time.time()}

    def checkpoint() -> None:
        payload = {"explorer": explorer.state_dict(), "git_commits": commits, "git_dirty": dirty}
        atomic_write_bytes(checkpoint_path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        atomic_write_json(run_dir / DEMO_FILE, explorer.demonstration())
        last["ckpt"] = explorer.frames

    def write_row(stats: IterationStats) -> None:
        now = time.time()
        fps = (stats.frames - last["row"]) / max(now - last["t"], 1e-9)
        rows.append(_progress_row(stats, family, fps, robust))
        write_progress(run_dir / PROGRESS_FILE, rows)
        last.update(row=stats.frames, t=now)

    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, initial=explorer.frames, unit="frame", desc=f"go_explore {config['env']}")

    def on_iteration(stats: IterationStats) -> None:
        archive_rows.append(asdict(stats))
        write_table(run_dir / ARCHIVE_CSV, ARCHIVE_COLUMNS, archive_rows)
        if stats.frames - last["row"] >= log_every:
            write_row(stats)
        if stats.frames - last["ckpt"] >= checkpoint_every:
            checkpoint()
        attempt.update(frames=stats.frames, wall_time_s=stats.wall_time_s)
        if bar is not None:
            bar.update(stats.frames - bar.n)
            bar.set_postfix(cells=stats.cells, coverage=stats.coverage, score=stats.max_score)

    try:
        stats = explorer.run(min(budget, int(robustify["phase1_frames"])) if robust else budget, on_iteration, until_solved=robust)
        if robust and explorer.solved_at is not None and robustify["polish_frames"]:  # look for a shorter demonstration
            stats = explorer.run(min(budget, explorer.solved_at + int(robustify["polish_frames"])), on_iteration)
    finally:
        if bar is not None:
            bar.close()
    if not rows or rows[-1]["frames"] < stats.frames:
        write_row(stats)
    checkpoint()
    row = _progress_row(stats, family, float("nan"))
    final = {"success": row["success"], "coverage": row["coverage"], "cells": stats.cells, "frames_game": stats.frames_game,
             "solved_at": stats.solved_at, "iterations": stats.iteration, "return": stats.max_score}
    result = {"frames": stats.frames, "wall_time_s": stats.wall_time_s, "final": final, "resumed_from": resumed_from,
              "git_commits": commits, "git_dirty": dirty}
    if robust:
        result = robustify_demo(config, robustify, run_dir, explorer, result, rows, attempt, log_every, checkpoint_every)
    return result


#: Phase 2 settings of `go_explore_robust` (the agent file's `robustify` mapping).
ROBUSTIFY_DEFAULTS = {
    "agent": "ppo",              # the agent file whose algorithm and hyperparameters train the policy
    "phase1_frames": 1_000_000,  # phase 1 stops when the task is solved or after this many frames
    "polish_frames": 0,          # ... and goes on this many frames after the first solution (shorter demonstrations)
    "move_threshold": 0.2,       # success rate from the current starting window that moves it back
    "window": 10,                # episodes start uniformly within this many demonstration steps of the start
    "step": None,                # how far the start moves back (None: 1/20 of the demonstration)
    "episodes_per_check": 32,
    "sticky": 0.25,              # sticky-action probability in training and evaluation
    "eval_episodes": 10,         # from the true start, at each progress row
    "final_eval_episodes": 50,
}
ROBUST_CHECKPOINT = "checkpoint.robust.zip"
ROBUST_STATE = "checkpoint.robust.pkl"


def robustify_demo(config: Mapping[str, Any], settings: Mapping[str, Any], run_dir: Path, explorer: GoExplore,
                   phase1: dict[str, Any], rows: list[dict[str, Any]], attempt: dict[str, Any], log_every: int,
                   checkpoint_every: int) -> dict[str, Any]:
    """Phase 2 (``explore_bench.agents.backward``): train the agent of ``settings["agent"]`` from the phase-1
    demonstration with the backward curriculum and sticky actions for the rest of the frame budget. Progress rows
    go on from phase 1's frames: ``success``, ``episode_return`` and ``coverage`` are the policy's, evaluated from
    the true start. The summary's ``success`` is the final evaluation's; phase 1 keeps its own keys."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    from explore_bench.agents.backward import BackwardCurriculum, evaluate_from_start, make_backward_env
    from explore_bench.agents.factory import ALGORITHMS, agent_config, make_agent

    final = {**phase1["final"], "phase1_frames": phase1["frames"], "demo_length": None, "curriculum_start": None,
             "curriculum_done_at": None}
    if explorer.best_done is None:  # nothing to robustify: the policy is never trained
        log_event(run_dir, f"phase 1 found no solution in {phase1['frames']} frames: no phase 2")
        return {**phase1, "final": {**final, "success": 0.0, "return": 0.0}}
    env_id, seed = config["env"], int(config["seed"])
    actions = list(explorer.best_done[2])
    final["demo_length"] = len(actions)
    agent = {**agent_config(settings["agent"]), "env": env_id, "seed": seed, "bonus": None}
    curriculum = BackwardCurriculum(len(actions), settings["move_threshold"], settings["window"], settings["step"],
                                    settings["episodes_per_check"], seed)
    venv = DummyVecEnv([
        (lambda i=i: make_backward_env(env_id, actions, seed, curriculum, settings["sticky"], noise_seed=seed * 1000 + i))
        for i in range(int(agent["n_envs"]))
    ])
    offset = phase1["frames"]
    state = {"done_at": None}
    model = None
    if (run_dir / ROBUST_CHECKPOINT).exists() and (run_dir / ROBUST_STATE).exists():
        with open(run_dir / ROBUST_STATE, "rb") as f:
            state = pickle.load(f)  # noqa: S301 - a file this runner wrote (module docstring)
        vars(curriculum).update(state["curriculum"])  # in place: the envs hold this object
        model = ALGORITHMS[agent["algo"]]().load(run_dir / ROBUST_CHECKPOINT, env=venv, device="cpu")
        rows[:] = [r for r in rows if r["frames"] <= offset + model.num_timesteps]
        write_progress(run_dir / PROGRESS_FILE, rows)
        log_event(run_dir, f"phase 2 resumed at {offset + model.num_timesteps} frames")
    if model is None:
        model = make_agent(agent, venv=venv)
    wall0 = phase1["wall_time_s"] + float(state.get("wall_time_s", 0.0))
    t0 = time.time()

    def evaluate(episodes: int) -> dict[str, float]:
        return evaluate_from_start(model, env_id, actions, seed, episodes, settings["sticky"], seed=seed + len(rows))

    def save() -> None:
        tmp = run_dir / ".checkpoint.robust.tmp.zip"
        model.save(tmp)
        payload = {"curriculum": dict(vars(curriculum)), "done_at": state["done_at"],
                   "wall_time_s": float(state.get("wall_time_s", 0.0)) + time.time() - t0}
        os.replace(tmp, run_dir / ROBUST_CHECKPOINT)
        atomic_write_bytes(run_dir / ROBUST_STATE, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))

    class Rows(BaseCallback):
        def _on_training_start(self) -> None:
            self.last_row = self.last_ckpt = int(self.model.num_timesteps)
            self.t_row = time.time()

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            frames = int(self.model.num_timesteps)
            if curriculum.done and state["done_at"] is None:
                state["done_at"] = offset + frames
            if frames - self.last_row >= log_every:
                now = time.time()
                metrics = evaluate(int(settings["eval_episodes"]))
                rows.append({"frames": offset + frames, "episode_return": metrics["return"], "success": metrics["success"],
                             "coverage": metrics["coverage"], "fps": (frames - self.last_row) / max(now - self.t_row, 1e-9)})
                write_progress(run_dir / PROGRESS_FILE, rows)
                self.last_row, self.t_row = frames, time.time()
            if frames - self.last_ckpt >= checkpoint_every:
                save()
                self.last_ckpt = frames
            attempt.update(frames=offset + frames, wall_time_s=wall0 + time.time() - t0)

    remaining = int(config["frames"]) - offset - int(model.num_timesteps)
    if remaining > 0:
        model.learn(remaining, callback=Rows(), reset_num_timesteps=False)
    save()
    metrics = evaluate(int(settings["final_eval_episodes"]))
    venv.close()
    final.update(success=metrics["success"], **{"return": metrics["return"]}, coverage=metrics["coverage"],
                 curriculum_start=curriculum.start, curriculum_done_at=state["done_at"])
    return {**phase1, "frames": offset + int(model.num_timesteps), "wall_time_s": wall0 + time.time() - t0, "final": final}
