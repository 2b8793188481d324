"""A policy-search explorer's run (NS, TAXONS, SERENE, STAX, random search, objective ES) in the same run folder as
an agent's (see ``run.py``), from an agent file with ``algo`` in ``NOVELTY_ALGOS`` and its settings under
``explorer`` (``explore_bench.agents.novelty_search.SearchConfig``).

Budget: the run's ``frames`` are env steps, as for every agent; the explorer gets ``frames // episode_len``
evaluations (150 steps each in the point maze, at most 100 on MiniGrid), so it never uses more frames than an RL
agent of the same budget. Frames counted are the steps the episodes really took.

Besides ``config.json``, ``summary.json`` and ``run.log``, the folder holds

- ``progress.csv``  the standard columns, one row every ``log_every`` frames (at a generation or emitter step):
                    ``episode_return`` = the best reward found so far, ``success`` = 1 once a reward > 0 was found,
                    ``coverage`` = filled cells of the ground-truth grid over every evaluation so far (the maze's
                    50x50 grid of final positions; MiniGrid: distinct final agent cells), ``fps`` = frames per second,
                    ``cells_visited`` = distinct cells any step of any evaluation occupied (MiniGrid: the coverage
                    an RL run on the same env logs too).
- ``archive.csv``   one row per chunk (``chunk_size`` evaluations): the metrics per evaluation budget (``COLUMNS``):
                    evaluations (all, exploration only), frames, coverage (all, exploration only), best reward,
                    evaluations and frames to the first reward, archive sizes, emitters, and the AE's last training.
- ``checkpoint.novelty.pt``  the explorer's whole state (population, archives, emitters, AE weights and optimiser,
                    random generators, metrics), written atomically (``torch.save`` to a temp file, then renamed)
                    every ``checkpoint_every`` frames at a chunk end and at the end; loaded with
                    ``weights_only=True`` (numbers and tensors only: ``state_bytes`` stores numpy arrays as
                    tensors). A killed run resumes from it, dropping the rows logged after it, and ends exactly as an
                    uninterrupted run. An unreadable
                    checkpoint is moved to ``corrupt/<time>/`` (noted in run.log) and the run restarts from zero.

``run.log`` also gets a line for every AE training that detected a collapse (shared/specs/novelty_search.md
pitfall 12: re-initialised, or still collapsed). The summary's ``final`` has ``success``, ``return`` (best
reward), ``coverage``, on MiniGrid ``cells_visited`` and ``first_success_frames`` (the measures of an RL run), and
the explorer's metrics: ``coverage_explore``, ``evaluations``, ``explore_evaluations``,
``first_reward_evaluation``, ``first_reward_frames``, ``archive_size``, ``areas_found``, the SERENE/STAX emitter
counts, the TAXONS/STAX AE counts, and ``coverage_at_<n>`` / ``best_reward_at_<n>`` / ``archive_size_at_<n>`` /
``first_reward_evaluation_at_<n>`` at the ``report_at`` evaluation counts the run reached.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from explore_bench.agents.factory import NOVELTY_ALGOS, load_state_safely
from explore_bench.agents.novelty_domains import make_domain
from explore_bench.agents.novelty_search import PolicySearch, make_search, search_config
from explore_bench.atomic import atomic_write_bytes
from explore_bench.runner.io import read_rows_until, write_progress, write_table
from explore_bench.runner.run import (
    CORRUPT_DIR,
    PROGRESS_FILE,
    UNKNOWN_COMMIT,
    _read_rows,
    git_commit,
    git_dirty,
    log_event,
)

__all__ = ["COLUMNS", "build_novelty", "evaluation_budget", "load_state", "state_bytes", "train_novelty"]

CHECKPOINT = "checkpoint.novelty.pt"
ARCHIVE_CSV = "archive.csv"
#: Columns of archive.csv: the metrics per evaluation budget.
COLUMNS = ("chunk", "evaluations", "explore_evaluations", "frames", "coverage", "coverage_explore", "best_reward",
           "first_reward_evaluation", "first_reward_frames", "archive_size", "reward_archive_size", "emitters",
           "candidates", "emitters_finished", "emitter_sigma", "ae_retrains", "ae_val_error", "ae_untrained_error",
           "ae_mean_image_ratio", "ae_collapses", "wall_time_s")
#: ``stats()`` keys copied into the summary's final metrics (where the explorer has them).
FINAL_KEYS = ("coverage_explore", "evaluations", "explore_evaluations", "first_reward_evaluation",
              "first_reward_frames", "archive_size", "reward_archive_size", "areas_found", "emitters_finished",
              "exploit_evaluations", "exploit_best_reward", "ae_retrains", "ae_collapses", "ae_reinits",
              "ae_val_error", "ae_untrained_error", "ae_mean_image_ratio", "best_goal_distance", "generation")
#: The explorer settings that shape the domain rather than the search.
_DOMAIN_KEYS = ("hidden_layers", "hidden_size", "view_size", "episode_len", "n_actions")


def build_novelty(config: Mapping[str, Any]) -> PolicySearch:
    """The explorer of a resolved config; a TypeError, ValueError or KeyError names a bad setting or env."""
    if config["algo"] not in NOVELTY_ALGOS:
        raise ValueError(f"unknown policy-search explorer {config['algo']!r}; expected one of {NOVELTY_ALGOS}")
    if config.get("env_kwargs"):
        raise ValueError(f"the policy-search explorers build their env themselves: env_kwargs must be empty, got "
                         f"{dict(config['env_kwargs'])}")
    settings = search_config(config.get("explorer"))  # checked before an env is built
    seed = int(config["seed"])
    domain = make_domain(config["env"], seed, **{k: getattr(settings, k) for k in _DOMAIN_KEYS})
    explorer = make_search(config["algo"], domain, settings, seed)
    try:
        evaluation_budget(config, explorer)  # a budget below one episode is bad input too
    except ValueError:
        explorer.close()
        raise
    return explorer


def evaluation_budget(config: Mapping[str, Any], explorer: PolicySearch) -> int:
    """Evaluations a run of ``config["frames"]`` frames gets: one per ``episode_len`` frames."""
    budget = int(config["frames"]) // explorer.domain.episode_len
    if budget < 1:
        raise ValueError(f"a budget of {config['frames']} frames is less than one episode "
                         f"({explorer.domain.episode_len} steps) of {config['env']}")
    return budget


_ARRAY = "__ndarray__"


def _encode(obj: Any) -> Any:
    """``obj`` with numpy arrays as ``{"__ndarray__": tensor}`` and numpy scalars as python numbers: what
    ``torch.load(weights_only=True)`` reads (numpy's own pickles of empty arrays need globals it refuses)."""
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            return obj[_ARRAY].numpy()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def state_bytes(payload: Mapping[str, Any]) -> bytes:
    """A checkpoint file's bytes: ``torch.save`` of ``payload`` (numpy arrays as tensors)."""
    buf = io.BytesIO()
    torch.save(_encode(dict(payload)), buf)
    return buf.getvalue()


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written from ``state_bytes``, loaded with ``weights_only=True`` (no pickled code can run)."""
    return _decode(load_state_safely(path))


def _load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint's payload, or None (absent, or unreadable: moved to corrupt/ with a line in run.log)."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    try:
        payload = load_state(path)
        if not isinstance(payload, dict) or "explorer" not in payload:
            raise ValueError("not an explorer checkpoint")
        return payload
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is set aside, never fatal
        dest = run_dir / CORRUPT_DIR / _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest / CHECKPOINT)
        log_event(run_dir, f"{CHECKPOINT} unreadable ({type(e).__name__}: {e}); moved to {dest.relative_to(run_dir)}")
        return None


def train_novelty(config: Mapping[str, Any], run_dir: Path, attempt: dict[str, Any], *, log_every: int,
                  checkpoint_every: int, progress_bar: bool = False, **_: Any) -> dict[str, Any]:
    """Run (or resume) the policy-search explorer of ``config`` into ``run_dir`` up to ``config["frames"]`` frames;
    the run's part of the summary. ``attempt`` is kept up to date for the summary of a failure."""
    explorer = build_novelty(config)
    try:
        return _train(explorer, config, run_dir, attempt, log_every, checkpoint_every, progress_bar)
    finally:
        explorer.close()


def _train(explorer: PolicySearch, config: Mapping[str, Any], run_dir: Path, attempt: dict[str, Any], log_every: int,
           checkpoint_every: int, progress_bar: bool) -> dict[str, Any]:
    budget = evaluation_budget(config, explorer)
    payload = _load_checkpoint(run_dir)
    resumed_from = None
    if payload is not None:
        explorer.load_state_dict(payload["explorer"])
        resumed_from = explorer.frames
        log_event(run_dir, f"resumed from {CHECKPOINT} at {resumed_from} frames (trained so far by "
                           f"{', '.join(payload['git_commits'])}; now {git_commit() or UNKNOWN_COMMIT})")
    elif _read_rows(run_dir):
        log_event(run_dir, "no checkpoint: restarting from zero frames (progress rows dropped)")
    payload = payload or {}
    rows = [r for r in _read_rows(run_dir) if r["frames"] <= explorer.frames]
    chunk_rows = read_rows_until(run_dir / ARCHIVE_CSV, explorer.frames)
    write_progress(run_dir / PROGRESS_FILE, rows)
    commits = list(dict.fromkeys([*payload.get("git_commits", []), git_commit() or UNKNOWN_COMMIT]))
    dirty = bool(payload.get("git_dirty")) or bool(git_dirty())
    wall_before, t0 = float(payload.get("wall_time_s", 0.0)), time.time()
    # the row cadence continues from the last kept row, so a resumed run writes the rows an uninterrupted one does
    last = {"row": int(rows[-1]["frames"]) if rows else 0, "ckpt": explorer.frames, "t": time.time(),
            "frames_t": explorer.frames, "ae": len(getattr(getattr(explorer, "ae", None), "history", []))}

    def wall() -> float:
        return wall_before + time.time() - t0

    def checkpoint() -> None:
        payload = {"explorer": explorer.state_dict(), "git_commits": commits, "git_dirty": dirty, "wall_time_s": wall()}
        atomic_write_bytes(run_dir / CHECKPOINT, state_bytes(payload))
        last["ckpt"] = explorer.frames

    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, initial=explorer.evaluations, unit="eval", desc=f"{config['algo']} {config['env']}")

    def on_step() -> None:
        if explorer.frames - last["row"] >= log_every:
            now = time.time()
            fps = (explorer.frames - last["frames_t"]) / max(now - last["t"], 1e-9)
            rows.append(_progress_row(explorer, fps))
            write_progress(run_dir / PROGRESS_FILE, rows)
            last.update(row=explorer.frames, t=now, frames_t=explorer.frames)
        attempt.update(frames=explorer.frames, wall_time_s=wall())
        if bar is not None:
            bar.update(explorer.evaluations - bar.n)

    def on_chunk() -> None:
        stats = explorer.stats()
        if not chunk_rows or int(chunk_rows[-1]["evaluations"]) < explorer.evaluations:  # not the free exploit chunks
            chunk_rows.append({**stats, "chunk": explorer.chunks, "wall_time_s": round(wall(), 3)})
            write_table(run_dir / ARCHIVE_CSV, COLUMNS, chunk_rows)
        _log_ae_trainings(explorer, run_dir, last)
        if explorer.frames - last["ckpt"] >= checkpoint_every:
            checkpoint()

    try:
        stats = explorer.run(budget, on_step, on_chunk)
    finally:
        if bar is not None:
            bar.close()
    if not rows or rows[-1]["frames"] < explorer.frames:
        rows.append(_progress_row(explorer, float("nan")))
        write_progress(run_dir / PROGRESS_FILE, rows)
    checkpoint()
    attempt.update(frames=explorer.frames, wall_time_s=wall())
    return {"frames": explorer.frames, "wall_time_s": wall(), "final": final_metrics(explorer, stats),
            "n_episodes": explorer.evaluations, "resumed_from": resumed_from, "git_commits": commits,
            "git_dirty": dirty}


def _progress_row(explorer: PolicySearch, fps: float) -> dict[str, Any]:
    m = explorer.metrics
    return {"frames": explorer.frames, "episode_return": m.best_reward,
            "success": float(m.first_reward_evaluation is not None), "coverage": float(m.coverage), "fps": fps,
            "cells_visited": float("nan") if m.cells_visited is None else m.cells_visited}


def _log_ae_trainings(explorer: PolicySearch, run_dir: Path, last: dict[str, Any]) -> None:
    """A run.log line for every new AE training that detected a collapse (pitfall 12)."""
    history = getattr(getattr(explorer, "ae", None), "history", [])
    for i, training in enumerate(history[last["ae"]:], start=last["ae"] + 1):
        if training["reinits"] or training["collapsed"]:
            outcome = "still collapsed after" if training["collapsed"] else "recovered after"
            log_event(run_dir, f"AE collapse detected at training {i}: validation error "
                               f"{training['val_error']:.5g} not below the untrained AE's "
                               f"{training['untrained_error']:.5g}; {outcome} {training['reinits']} "
                               f"re-initialisation(s)")
    last["ae"] = len(history)


def final_metrics(explorer: PolicySearch, stats: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's ``final``: the leaderboard's success / return / coverage and the explorer's own metrics."""
    m = explorer.metrics
    final: dict[str, Any] = {"success": float(m.first_reward_evaluation is not None), "return": m.best_reward,
                             "coverage": float(m.coverage)}
    final.update({k: stats[k] for k in FINAL_KEYS if k in stats})
    if m.cells_visited is not None:  # the measures RL runs on the same env report too (runner.run)
        final["cells_visited"] = m.cells_visited
        final["first_success_frames"] = m.first_reward_frames
    for mark, snap in sorted(m.snapshots.items()):
        for key in ("coverage", "best_reward", "archive_size", "first_reward_evaluation"):
            final[f"{key}_at_{mark}"] = snap[key]
    return final
