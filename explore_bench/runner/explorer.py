"""A standalone explorer's run (Go-Explore phase 1) in the same run folder as an agent's (see ``run.py``).

Besides ``config.json``, ``summary.json`` and ``run.log``, the folder holds

- ``progress.csv``   the standard columns, one row every ``log_every`` frames: ``episode_return`` = the best score
                     found so far, ``success`` = 1 once a positive-reward terminal state was reached (MiniGrid's
                     goal; empty for Atari, which has no success), ``coverage`` = distinct rooms (Atari, from the RAM)
                     or agent cells (MiniGrid) seen so far, ``fps`` = frames emulated per second.
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

import csv
import io
import pickle
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

from explore_bench.agents.factory import EXPLORER_ALGOS
from explore_bench.agents.go_explore import GoExplore, GoExploreConfig, IterationStats
from explore_bench.atomic import atomic_write_bytes
from explore_bench.runner.io import atomic_write_json, write_progress
from explore_bench.runner.run import (
    PROGRESS_FILE,
    UNKNOWN_COMMIT,
    _read_rows,
    git_commit,
    git_dirty,
    log_event,
)

__all__ = ["EXPLORER_ALGOS", "build_explorer", "train_explorer"]

ARCHIVE_CHECKPOINT = "checkpoint.archive.pkl"
ARCHIVE_CSV = "archive.csv"
DEMO_FILE = "demo.json"
ARCHIVE_COLUMNS = ("iteration", "frames", "frames_game", "cells", "coverage", "max_score", "wall_time_s")


def _archive_csv(rows: list[Mapping[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ARCHIVE_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _read_archive_rows(path: Path, max_frames: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if int(row["frames"]) <= max_frames]


def _progress_row(stats: IterationStats, family: str, fps: float) -> dict[str, Any]:
    success = None if family == "atari" else float(stats.solved_at is not None)
    return {"frames": stats.frames, "episode_return": stats.max_score, "success": success,
            "coverage": float(stats.coverage), "fps": fps}


def build_explorer(config: Mapping[str, Any]) -> GoExplore:
    """The explorer of a resolved config; a TypeError or ValueError names a bad `explorer` setting."""
    if config["algo"] != "go_explore":
        raise ValueError(f"unknown explorer {config['algo']!r}; expected one of {EXPLORER_ALGOS}")
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
    rows = [r for r in _read_rows(run_dir) if r["frames"] <= explorer.frames]
    archive_rows = _read_archive_rows(run_dir / ARCHIVE_CSV, explorer.frames)
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
        rows.append(_progress_row(stats, family, fps))
        write_progress(run_dir / PROGRESS_FILE, rows)
        last.update(row=stats.frames, t=now)

    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, initial=explorer.frames, unit="frame", desc=f"go_explore {config['env']}")

    def on_iteration(stats: IterationStats) -> None:
        archive_rows.append(asdict(stats))
        atomic_write_bytes(run_dir / ARCHIVE_CSV, _archive_csv(archive_rows))
        if stats.frames - last["row"] >= log_every:
            write_row(stats)
        if stats.frames - last["ckpt"] >= checkpoint_every:
            checkpoint()
        attempt.update(frames=stats.frames, wall_time_s=stats.wall_time_s)
        if bar is not None:
            bar.update(stats.frames - bar.n)
            bar.set_postfix(cells=stats.cells, coverage=stats.coverage, score=stats.max_score)

    try:
        stats = explorer.run(budget, on_iteration)
    finally:
        if bar is not None:
            bar.close()
    if not rows or rows[-1]["frames"] < stats.frames:
        write_row(stats)
    checkpoint()
    final = {**{k: v for k, v in _progress_row(stats, family, float("nan")).items() if k != "fps"},
             "cells": stats.cells, "frames_game": stats.frames_game, "solved_at": stats.solved_at,
             "iterations": stats.iteration}
    final["return"] = final.pop("episode_return")
    final.pop("frames")
    return {"frames": stats.frames, "wall_time_s": stats.wall_time_s, "final": final, "resumed_from": resumed_from,
            "git_commits": commits, "git_dirty": dirty}
