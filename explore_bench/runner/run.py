"""One training run in its own folder: progress, summary, checkpoints, resume.

A run folder ``OUT/<env>/<method>/seed_<s>/`` holds

- ``config.json``     {"config_hash", "config"}: written at run start; a later run into the same folder with a
                      different resolved config is refused (``RunConfigMismatch``) instead of mixing results.
- ``progress.csv``    frames, episode_return, success, coverage, intrinsic_mean, intrinsic_std, fps, tv_fraction,
                      cells_visited: one row at the first rollout end after every ``log_every`` frames; episode
                      metrics are means over the episodes that ended since the previous row (empty when none did).
                      ``tv_fraction`` (the fraction of an episode's steps that pressed a noisy TV) is empty for envs
                      without a TV; ``cells_visited`` (distinct (x, y) cells any step of the run's ended episodes
                      occupied, from ``episode_metrics["cells"]``) is empty for envs that do not report cells. A
                      resumed run rewrites the file (atomically) with the current header; rows of an older runner
                      keep their values and get empty cells in the columns they lack.
- ``checkpoint.zip``  ``save_agent`` every ``checkpoint_every`` frames (at a rollout boundary, after the update)
                      and at the end, with ``checkpoint.bonus.pt`` (a reward wrapper's bonus),
                      ``checkpoint.replay.pkl`` (off-policy agents) and ``checkpoint.json`` (frames, episode
                      windows, wall time so far, the git commits that trained the run, and a manifest: size and
                      sha256 of every file of the set).
- ``checkpoint_prev.*`` the previous checkpoint set, kept as a fallback.
- ``summary.json``    written once, at the end: status "finished" or "failed" (with the error), final metrics
                      (means over the last ``final_window`` episodes; ``tv_fraction`` only when some of them
                      reported one; ``cells_visited`` and ``first_success_frames``, the frames at the end of the
                      first successful episode or null, where the env reports cells), config, config_hash,
                      git_commit (of this attempt), git_commits (every commit that trained some of the run),
                      git_dirty, versions, events (the lines of ``run.log``).
- ``run.log``         one line per notable event: resumes (frames, commit), checkpoints found corrupt and moved
                      aside, restarts from zero.
- ``tb/``             TensorBoard logs, when tensorboard is installed.

A folder whose summary says "finished" is never run again; any other folder resumes from its checkpoint
(``learn(remaining, reset_num_timesteps=False)``), dropping progress rows past the checkpoint.

Crash safety of checkpoints: a new set is written to temp files; then the current set is hard-linked to
``checkpoint_prev.*`` (so a complete set exists at every instant), the new files are moved over the current
ones and ``checkpoint.json`` (the manifest) is replaced last. On resume a set is used only if its manifest
matches its files and it loads; otherwise (a kill mid-checkpoint, a truncated or corrupt file) the set is moved
aside to ``corrupt/<timestamp>/`` with a line in ``run.log`` and the previous set is tried, then a start from
zero. A bad checkpoint never fails the run, nor the suite. The bonus state is loaded with
``torch.load(weights_only=True)``; SB3's zip (its own loader) and the replay buffer (a pickle SB3 writes; there
is no safe format for it) are only ever read from files this runner wrote.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import hashlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import shutil
import subprocess
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from explore_bench.agents.factory import (
    EVAL_ONLY_ALGOS,
    EXPLORER_ALGOS,
    NOVELTY_ALGOS,
    ConfigError,
    bonus_wrapper,
    intrinsic_stats,
    load_state_safely,
    make_agent,
    save_agent,
)
from explore_bench.envs import env_family, frames_per_step
from explore_bench.runner.io import atomic_write_json, read_json, read_progress_rows, write_progress
from explore_bench.runner.suite import config_hash as _config_hash

__all__ = [
    "ProgressCallback",
    "RunConfigMismatch",
    "check_run_dir",
    "default_checkpoint_every",
    "default_log_every",
    "git_commit",
    "git_dirty",
    "run_commits",
    "run_single",
    "run_status",
    "versions",
]

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
PROGRESS_FILE = "progress.csv"
CHECKPOINT_FILE = "checkpoint.zip"
CHECKPOINT_STATE_FILE = "checkpoint.json"
REPLAY_FILE = "checkpoint.replay.pkl"
PREV_CHECKPOINT_FILE = "checkpoint_prev.zip"
PREV_CHECKPOINT_STATE_FILE = "checkpoint_prev.json"
LOG_FILE = "run.log"
CORRUPT_DIR = "corrupt"
#: The stems of the two checkpoint sets, newest first, and the files of a set (``<stem><suffix>``).
CHECKPOINT_STEMS = ("checkpoint", "checkpoint_prev")
SET_SUFFIXES = (".zip", ".bonus.pt", ".replay.pkl")
_HASHED_SUFFIXES = (".zip", ".bonus.pt")  # the replay buffer can be GBs: size only
UNKNOWN_COMMIT = "unknown"
EPISODE_KEYS = ("return", "success", "coverage")
#: Episode metrics only some envs report (``tv_fraction``: envs with a noisy TV); absent from ``final`` elsewhere.
OPTIONAL_EPISODE_KEYS = ("tv_fraction",)
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
_VERSION_DISTS = {
    "torch": "torch",
    "numpy": "numpy",
    "gymnasium": "gymnasium",
    "minigrid": "minigrid",
    "stable_baselines3": "stable-baselines3",
    "explore_bench": "explore-bench",
}


class RunConfigMismatch(ConfigError):
    """A run folder already holds a run with a different resolved config."""


# --------------------------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the repository holding the package, or None (no git, not a checkout)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(_PACKAGE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


@functools.lru_cache(maxsize=1)
def git_dirty() -> bool | None:
    """Whether tracked files of that repository differ from HEAD (None without git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(_PACKAGE_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str | None]:
    """Versions of python and the libraries that change results."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _VERSION_DISTS.items():
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = None
    if out["explore_bench"] is None:
        import explore_bench

        out["explore_bench"] = getattr(explore_bench, "__version__", None)
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_log_every(frames: int) -> int:
    """About 100 rows per run, at most one per 10k frames' worth (rows land on rollout ends anyway)."""
    return max(1, min(10_000, frames // 100))


def default_checkpoint_every(frames: int, log_every: int) -> int:
    """About 10 checkpoints per run, at least one per 100k frames."""
    return max(log_every, min(100_000, frames // 10))


# --------------------------------------------------------------------------------------------------------------
# Run-folder state
# --------------------------------------------------------------------------------------------------------------
def _has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / CHECKPOINT_FILE).exists() or (run_dir / PREV_CHECKPOINT_FILE).exists()


def run_status(run_dir: str | os.PathLike) -> str:
    """"new" (nothing there), "finished", "failed" or "partial" (started, not finished)."""
    run_dir = Path(run_dir)
    try:
        summary = read_json(run_dir / SUMMARY_FILE)
    except ValueError:
        summary = None
    if summary is not None:
        return "finished" if summary.get("status") == "finished" else "failed"
    if (run_dir / CONFIG_FILE).exists() or _has_checkpoint(run_dir):
        return "partial"
    return "new"


def check_run_dir(run_dir: str | os.PathLike, config: Mapping[str, Any], chash: str | None = None) -> None:
    """Raise ``RunConfigMismatch`` if ``run_dir`` holds a run of a different resolved config.

    Only a folder with something to mix (a finished summary or a checkpoint) is protected: a run of another
    config that failed before its first checkpoint is simply started afresh."""
    run_dir = Path(run_dir)
    chash = chash or _config_hash(config)
    try:
        stored = read_json(run_dir / CONFIG_FILE)
    except ValueError as e:
        raise RunConfigMismatch(f"{run_dir / CONFIG_FILE}: unreadable ({e}); move the folder away to rerun") from None
    if stored is None:
        return
    old = stored.get("config_hash")
    if old != chash and (run_status(run_dir) == "finished" or _has_checkpoint(run_dir)):
        old_cfg = stored.get("config") or {}
        diff = sorted(
            k for k in set(old_cfg) | set(config) if k != "seed" and old_cfg.get(k) != config.get(k)
        )
        raise RunConfigMismatch(
            f"{run_dir}: holds a run with a different config (config_hash {old} != {chash}; differing keys: "
            f"{', '.join(diff) or '?'}); use another --out folder or move the old one away"
        )


def run_commits(summary: Mapping[str, Any] | None) -> list[str]:
    """The git commits that trained a run, from its summary (or checkpoint state): ``git_commits`` when
    recorded, else ``[git_commit]``; a missing commit is ``"unknown"``."""
    if not summary:
        return []
    commits = summary.get("git_commits")
    if not isinstance(commits, list) or not commits:
        commits = [summary.get("git_commit")]
    return list(dict.fromkeys(str(c) if c else UNKNOWN_COMMIT for c in commits))


def log_event(run_dir: str | os.PathLike, message: str) -> None:
    """Append one line to the run's ``run.log`` (and the logger)."""
    import logging

    logging.getLogger(__name__).warning("%s: %s", run_dir, message)
    try:
        with open(Path(run_dir) / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(f"{_now()} {message}\n")
    except OSError:
        pass


def read_events(run_dir: str | os.PathLike) -> list[str]:
    try:
        return (Path(run_dir) / LOG_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


# --------------------------------------------------------------------------------------------------------------
# Checkpoint sets
# --------------------------------------------------------------------------------------------------------------
class CorruptCheckpoint(Exception):
    """A checkpoint set that cannot be used (torn by a kill, truncated, corrupt)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(files: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    out = {}
    for suffix, path in files.items():
        entry: dict[str, Any] = {"size": path.stat().st_size}
        if suffix in _HASHED_SUFFIXES:
            entry["sha256"] = _sha256(path)
        out[suffix] = entry
    return out


def _link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` the content of ``src`` atomically (a hard link when the filesystem allows, else a copy)."""
    tmp = dst.parent / f".{dst.name}.linktmp"
    if tmp.exists():
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    if tmp.exists():  # rename() of two links to one inode is a no-op that leaves tmp
        tmp.unlink()


def _rotate_to_prev(run_dir: Path) -> None:
    """checkpoint.* -> checkpoint_prev.* while keeping checkpoint.* in place: a complete set exists throughout."""
    if not (run_dir / CHECKPOINT_STATE_FILE).exists():
        return
    for suffix in (*SET_SUFFIXES, ".json"):  # the manifest last
        src, dst = run_dir / f"checkpoint{suffix}", run_dir / f"checkpoint_prev{suffix}"
        if src.exists():
            _link_or_copy(src, dst)
        elif dst.exists():
            dst.unlink()


def _validate_set(run_dir: Path, stem: str) -> dict[str, Any]:
    """The state of checkpoint set ``stem`` if its manifest matches its files; ``CorruptCheckpoint`` if not."""
    state_path, zip_path = run_dir / f"{stem}.json", run_dir / f"{stem}.zip"
    if not zip_path.exists():
        raise CorruptCheckpoint(f"{zip_path.name} is missing")
    try:
        state = read_json(state_path)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptCheckpoint(f"{state_path.name} is not valid JSON ({e})") from None
    if state is None:
        if stem == "checkpoint":  # written before any state file existed: judged by loading it
            return {}
        raise CorruptCheckpoint(f"{state_path.name} is missing")
    if not isinstance(state, dict) or not isinstance(state.get("frames"), int):
        raise CorruptCheckpoint(f"{state_path.name} has no integer 'frames'")
    files = state.get("files")
    if files is None:  # a checkpoint of an older version of the runner: judged by loading it
        return state
    for suffix, entry in files.items():
        path = run_dir / f"{stem}{suffix}"
        if not path.exists():
            raise CorruptCheckpoint(f"{path.name} is missing (killed mid-checkpoint?)")
        if path.stat().st_size != entry.get("size"):
            raise CorruptCheckpoint(
                f"{path.name} has {path.stat().st_size} bytes, {state_path.name} says {entry.get('size')} "
                f"(truncated, or killed mid-checkpoint)")
        if "sha256" in entry and _sha256(path) != entry["sha256"]:
            raise CorruptCheckpoint(f"{path.name} does not match the sha256 in {state_path.name} (corrupt)")
    return state


def _load_set(fresh, run_dir: Path, stem: str, tb_dir: str | None, device: str):
    """``fresh``'s class loaded from checkpoint set ``stem`` (the counterpart of ``factory.save_agent``)."""
    model = type(fresh).load(run_dir / f"{stem}.zip", env=fresh.get_env(), device=device, tensorboard_log=tb_dir)
    wrapper = bonus_wrapper(model)
    if wrapper is not None:
        wrapper.load_state_dict(load_state_safely(run_dir / f"{stem}.bonus.pt", device))
    replay = run_dir / f"{stem}.replay.pkl"
    if replay.exists() and getattr(model, "replay_buffer", None) is not None:
        model.load_replay_buffer(replay)  # SB3's pickle (no safe format exists); a file this runner wrote
    return model


def _move_aside(run_dir: Path, stem: str, stamp: str) -> Path:
    dest = run_dir / CORRUPT_DIR / stamp
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in (*SET_SUFFIXES, ".json"):
        path = run_dir / f"{stem}{suffix}"
        if path.exists():
            os.replace(path, dest / path.name)
    return dest


def _close_env(model) -> None:
    if model is not None and model.get_env() is not None:
        try:
            model.get_env().close()
        except Exception:  # noqa: BLE001
            pass


def _resume(config: Mapping[str, Any], run_dir: Path, tb_dir: str | None, device: str, verbose: int):
    """(model, state, stem) from the newest usable checkpoint set, or (None, {}, None) when there is none.

    Unusable sets are moved aside to ``corrupt/<timestamp>/`` with a line in run.log. A config error (the agent
    cannot even be built) is raised, not taken for a corrupt checkpoint."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    for stem in CHECKPOINT_STEMS:
        if not any((run_dir / f"{stem}{suffix}").exists() for suffix in (*SET_SUFFIXES, ".json")):
            continue
        fresh = make_agent(config, tensorboard_log=tb_dir, verbose=verbose, device=device)
        model = None
        try:
            state = _validate_set(run_dir, stem)
            model = _load_set(fresh, run_dir, stem, tb_dir, device)
            frames = int(model.num_timesteps) * frames_per_step(config["env"])
            if state.get("files") is not None and state["frames"] != frames:
                raise CorruptCheckpoint(f"{stem}.zip holds {frames} frames, {stem}.json says {state['frames']}")
            if int(state.get("frames", frames)) != frames:  # an old-format set killed between its two writes
                state = {"frames": frames, "wall_time_s": state.get("wall_time_s", 0.0),
                         "git_commits": state.get("git_commits")}
            return model, state, stem
        except Exception as e:  # noqa: BLE001 - whatever is wrong with the files, the run goes on
            _close_env(model if model is not None else fresh)
            reason = str(e) if isinstance(e, CorruptCheckpoint) else f"cannot be loaded: {type(e).__name__}: {e}"
            dest = _move_aside(run_dir, stem, stamp)
            log_event(run_dir, f"checkpoint set {stem}.* unusable: {reason}; moved to {dest.relative_to(run_dir)}")
    return None, {}, None


# --------------------------------------------------------------------------------------------------------------
# Callback
# --------------------------------------------------------------------------------------------------------------
def _nanmean(values) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _episode(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """One ended episode as the callback keeps it: every ``EPISODE_KEYS`` value (None where not reported) and the
    ``OPTIONAL_EPISODE_KEYS`` the env reported."""
    episode = {k: (None if metrics.get(k) is None else float(metrics[k])) for k in EPISODE_KEYS}
    episode.update({k: float(metrics[k]) for k in OPTIONAL_EPISODE_KEYS if metrics.get(k) is not None})
    return episode


class ProgressCallback(BaseCallback):
    """Fills progress.csv from ``infos[i]["episode_metrics"]`` and ``intrinsic_stats(model)``, and checkpoints.

    Rows are written at rollout ends (when the bonus statistics of the rollout are fresh), checkpoints at
    rollout starts (after the policy update), so a checkpoint at F frames covers exactly the rows <= F.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        log_every: int,
        checkpoint_every: int,
        final_window: int = 100,
        rows: list[dict] | None = None,
        state: Mapping[str, Any] | None = None,
        wall_time_before: float = 0.0,
        frames_per_step: int = 1,
    ):
        super().__init__(verbose=0)
        self.frames_per_step = int(frames_per_step)
        self.run_dir = Path(run_dir)
        self.log_every = int(log_every)
        self.checkpoint_every = int(checkpoint_every)
        self.rows: list[dict] = list(rows or [])
        state = dict(state or {})
        self.pending: list[dict] = list(state.get("pending", []))
        self.recent: deque = deque(state.get("recent", []), maxlen=int(final_window))
        self.n_episodes = int(state.get("n_episodes", 0))
        # run-long coverage, the measure RL agents share with the policy-search explorers: every (x, y) cell any
        # step of an ended episode occupied, and the frames at the end of the first successful episode
        self.cells: set[tuple[int, int]] = {(int(x), int(y)) for x, y in state.get("cells", [])}
        self.first_success_frames: int | None = state.get("first_success_frames")
        self.last_row_frames = int(self.rows[-1]["frames"]) if self.rows else 0
        self.last_ckpt_frames = int(state.get("frames", 0))
        self.wall_time_before = float(wall_time_before)
        # provenance of the frames so far: every commit that trained part of the run, and whether any was dirty
        commits = state.get("git_commits")
        if not isinstance(commits, list):  # a fresh run, or an old-format checkpoint (commit not recorded)
            commits = [UNKNOWN_COMMIT] if state.get("frames") else []
        self.git_commits: list[str] = list(dict.fromkeys([*map(str, commits), git_commit() or UNKNOWN_COMMIT]))
        self.git_dirty = bool(state.get("git_dirty")) or bool(git_dirty())
        self._bonus_stats: list[dict[str, float]] = []
        self._t_start = time.time()
        self._t_row = self._t_start
        self._frames_row = 0

    @property
    def frames(self) -> int:
        """Emulator frames so far: agent steps (over all envs) x the env's frames per step."""
        return int(self.model.num_timesteps) * self.frames_per_step

    @property
    def wall_time(self) -> float:
        return self.wall_time_before + (time.time() - self._t_start)

    # -------------------------------------------------------------- SB3 hooks
    def _on_training_start(self) -> None:
        self._t_row = time.time()
        self._frames_row = self.frames

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            metrics = info.get("episode_metrics")
            if metrics is None and "episode" in info:  # envs without ExplorationStats: Monitor's return only
                metrics = {"return": info["episode"].get("r"), "success": None, "coverage": None}
            if metrics is not None:
                episode = _episode(metrics)
                self.cells.update(metrics.get("cells", ()))
                if episode["success"] and self.first_success_frames is None:
                    self.first_success_frames = self.frames
                self.pending.append(episode)
                self.recent.append(episode)
                self.n_episodes += 1
        return True

    def _on_rollout_end(self) -> None:
        stats = intrinsic_stats(self.model)
        if stats:
            self._bonus_stats.append(dict(stats))
        if self.frames - self.last_row_frames >= self.log_every:
            self.write_row()

    def _on_rollout_start(self) -> None:
        if self.frames - self.last_ckpt_frames >= self.checkpoint_every:
            self.checkpoint()

    # -------------------------------------------------------------- rows and checkpoints
    def write_row(self) -> None:
        frames = self.frames
        now = time.time()
        dt = now - self._t_row
        row = {
            "frames": frames,
            "episode_return": _nanmean(e["return"] for e in self.pending),
            "success": _nanmean(e["success"] for e in self.pending),
            "coverage": _nanmean(e["coverage"] for e in self.pending),
            "intrinsic_mean": _nanmean(s.get("intrinsic_mean") for s in self._bonus_stats),
            "intrinsic_std": _nanmean(s.get("intrinsic_std") for s in self._bonus_stats),
            "fps": (frames - self._frames_row) / dt if dt > 0 else float("nan"),
            "tv_fraction": _nanmean(e.get("tv_fraction") for e in self.pending),
            "cells_visited": len(self.cells) if self.cells else float("nan"),
        }
        self.rows.append(row)
        write_progress(self.run_dir / PROGRESS_FILE, self.rows)
        if getattr(self.model, "_logger", None) is not None:  # absent when finishing without learn()
            for key in ("episode_return", "success", "coverage", "tv_fraction"):
                if math.isfinite(row[key]):
                    self.logger.record(f"explore/{key}", row[key])
        self.pending = []
        self._bonus_stats = []
        self.last_row_frames = frames
        self._t_row = now
        self._frames_row = frames

    def checkpoint(self) -> None:
        """Write a new checkpoint set (see the module docstring): temp files, current set -> checkpoint_prev.*
        (hard links), new files over the current ones, and the manifest checkpoint.json last."""
        frames = self.frames
        tmp = self.run_dir / ".checkpoint.tmp.zip"
        save_agent(self.model, tmp)
        new = {".zip": tmp}
        bonus_tmp = tmp.with_suffix(".bonus.pt")
        if bonus_tmp.exists():
            new[".bonus.pt"] = bonus_tmp
        if getattr(self.model, "replay_buffer", None) is not None:  # off-policy agents resume with their data
            replay_tmp = self.run_dir / ".checkpoint.tmp.replay.pkl"
            self.model.save_replay_buffer(replay_tmp)
            new[".replay.pkl"] = replay_tmp
        state = {**self.state(frames), "files": _manifest(new)}
        _rotate_to_prev(self.run_dir)
        for suffix in SET_SUFFIXES:
            dest = self.run_dir / f"checkpoint{suffix}"
            if suffix in new:
                os.replace(new[suffix], dest)
            elif dest.exists():
                dest.unlink()
        atomic_write_json(self.run_dir / CHECKPOINT_STATE_FILE, state)
        self.last_ckpt_frames = frames

    def state(self, frames: int) -> dict[str, Any]:
        return {
            "frames": frames,
            "n_episodes": self.n_episodes,
            "pending": self.pending,
            "recent": list(self.recent),
            "cells": [list(c) for c in sorted(self.cells)],
            "first_success_frames": self.first_success_frames,
            "wall_time_s": self.wall_time,
            "git_commits": self.git_commits,
            "git_dirty": self.git_dirty,
            "saved_at": _now(),
        }

    def finish(self) -> None:
        """Final row (if frames advanced since the last one) and final checkpoint."""
        if not self.rows or self.frames > self.last_row_frames:
            self.write_row()
        if self.frames != self.last_ckpt_frames or not (self.run_dir / CHECKPOINT_FILE).exists():
            self.checkpoint()

    def final_metrics(self) -> dict[str, Any]:
        """Means over the last ``final_window`` episodes; an optional metric only when some of them reported it."""
        final = {k: _nanmean(e.get(k) for e in self.recent) for k in EPISODE_KEYS}
        for k in OPTIONAL_EPISODE_KEYS:
            if any(e.get(k) is not None for e in self.recent):
                final[k] = _nanmean(e.get(k) for e in self.recent)
        final["n_episodes"] = len(self.recent)
        if self.cells:
            final["cells_visited"] = len(self.cells)
            final["first_success_frames"] = self.first_success_frames
        return final


# --------------------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------------------
def _tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _summary_base(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "env": config["env"],
        "agent": config["agent"],
        "bonus": config.get("bonus"),
        "seed": int(config["seed"]),
    }


def write_failed_summary(run_dir: str | os.PathLike, config: Mapping[str, Any], error: str, frames: int | None = None,
                         wall_time_s: float | None = None, tb: str | None = None) -> dict[str, Any]:
    """Record a failed run (status "failed" with the error text) in its summary.json."""
    chash = _config_hash(config)
    summary = {
        "status": "failed",
        **_summary_base(config),
        "frames": frames,
        "frames_budget": int(config["frames"]),
        "wall_time_s": wall_time_s,
        "final": {},
        "error": error,
        "traceback": tb,
        "config": dict(config),
        "config_hash": chash,
        "git_commit": git_commit(),
        "git_dirty": git_dirty() if git_commit() else None,
        "versions": versions(),
        "finished_at": _now(),
    }
    atomic_write_json(Path(run_dir) / SUMMARY_FILE, summary)
    return summary


def run_single(
    config: Mapping[str, Any],
    run_dir: str | os.PathLike,
    *,
    log_every: int | None = None,
    checkpoint_every: int | None = None,
    final_window: int = 100,
    tensorboard: bool | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train the resolved ``config`` into ``run_dir`` (or resume it) and return its summary.

    A folder already finished is not touched (its summary is returned, with ``"skipped": True`` added to the
    returned dict only). A failure during training is recorded as a "failed" summary and returned, not raised;
    a folder holding a different config raises ``RunConfigMismatch`` before anything is written.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, config)
    if run_status(run_dir) == "finished":
        return {**read_json(run_dir / SUMMARY_FILE), "skipped": True}
    run_dir.mkdir(parents=True, exist_ok=True)
    with _RunLock(run_dir):  # an orphaned worker of a killed suite may still be training this folder
        config = dict(config)
        chash = _config_hash(config)
        check_run_dir(run_dir, config, chash)
        if run_status(run_dir) == "finished":  # again: the process we waited for may have finished it
            summary = read_json(run_dir / SUMMARY_FILE)
            return {**summary, "skipped": True}

        frames_budget = int(config["frames"])
        log_every = int(log_every or default_log_every(frames_budget))
        checkpoint_every = int(checkpoint_every or default_checkpoint_every(frames_budget, log_every))
        tensorboard = _tensorboard_available() if tensorboard is None else tensorboard
        tb_dir = str(run_dir / "tb") if tensorboard else None

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        run_dir.mkdir(parents=True, exist_ok=True)
        if (read_json(run_dir / CONFIG_FILE) or {}).get("config_hash") != chash:
            atomic_write_json(run_dir / CONFIG_FILE, {"config_hash": chash, "config": config, "created_at": _now()})
        stale = run_dir / SUMMARY_FILE  # a failed attempt: this one replaces it
        if stale.exists():
            stale.unlink()
        for leftover in run_dir.glob(".*tmp*"):  # temp files of an attempt killed mid-write
            if leftover.is_file():
                leftover.unlink()

        started_at = _now()
        attempt: dict[str, Any] = {"frames": None, "wall_time_s": 0.0, "t0": time.time()}  # for a failed summary
        from explore_bench.runner.bandit import train_eval_only  # these build on this module
        from explore_bench.runner.explorer import train_explorer
        from explore_bench.runner.novelty import train_novelty

        train = _train_agent
        if config.get("algo") in EXPLORER_ALGOS:
            train = train_explorer
        elif config.get("algo") in EVAL_ONLY_ALGOS:
            train = train_eval_only
        elif config.get("algo") in NOVELTY_ALGOS:
            train = train_novelty
        try:
            result = train(config, run_dir, attempt, log_every=log_every, checkpoint_every=checkpoint_every,
                           final_window=final_window, tb_dir=tb_dir, progress_bar=progress_bar, verbose=verbose,
                           device=device)
            summary = {
                "status": "finished",
                **_summary_base(config),
                "frames": result["frames"],
                "frames_budget": frames_budget,
                "wall_time_s": result["wall_time_s"],
                "final": result["final"],
                "n_episodes": result.get("n_episodes"),
                "resumed_from": result["resumed_from"],
                "config": config,
                "config_hash": chash,
                "git_commit": git_commit(),
                "git_commits": result["git_commits"],
                "git_dirty": result["git_dirty"] if git_commit() else None,
                "versions": versions(),
                "events": read_events(run_dir),
                "started_at": started_at,
                "finished_at": _now(),
            }
            atomic_write_json(run_dir / SUMMARY_FILE, summary)
            return summary
        except Exception as e:  # noqa: BLE001 - any training error becomes a failed run, the suite goes on
            wall = attempt["wall_time_s"] or time.time() - attempt["t0"]
            return write_failed_summary(run_dir, config, f"{type(e).__name__}: {e}", attempt["frames"], wall, traceback.format_exc())
        finally:
            torch.set_num_threads(previous_threads)


def _train_agent(config: Mapping[str, Any], run_dir: Path, attempt: dict[str, Any], *, log_every: int, checkpoint_every: int,
                 final_window: int, tb_dir: str | None, progress_bar: bool, verbose: int, device: str) -> dict[str, Any]:
    """Train (or resume) an SB3 agent into ``run_dir``; the run's part of the summary. ``attempt`` is kept up to date
    with the frames and wall time so far, for the summary of a failure."""
    callback: ProgressCallback | None = None
    model = None
    step_frames = frames_per_step(config["env"])
    try:
        model, state, stem = _resume(config, run_dir, tb_dir, device, verbose)
        resumed_from = None
        if model is not None:
            resumed_from = int(model.num_timesteps) * step_frames
            rows = [r for r in _read_rows(run_dir) if r["frames"] <= resumed_from]
            write_progress(run_dir / PROGRESS_FILE, rows)  # drop rows logged after the checkpoint
            prev = ", ".join(run_commits(state)) or UNKNOWN_COMMIT
            log_event(run_dir, f"resumed from {stem}.* at {resumed_from} frames (trained so far by {prev}; "
                               f"now {git_commit() or UNKNOWN_COMMIT}{' dirty' if git_dirty() else ''})")
        else:
            if _read_rows(run_dir):
                log_event(run_dir, "no usable checkpoint: restarting from zero frames (progress rows dropped)")
            model = make_agent(config, tensorboard_log=tb_dir, verbose=verbose, device=device)
            state, rows = {}, []
            write_progress(run_dir / PROGRESS_FILE, rows)
        callback = ProgressCallback(
            run_dir, log_every, checkpoint_every, final_window, rows=rows, state=state,
            wall_time_before=float(state.get("wall_time_s") or 0.0), frames_per_step=step_frames,
        )
        remaining = -(-(int(config["frames"]) - int(model.num_timesteps) * step_frames) // step_frames)  # agent steps
        if remaining > 0:
            model.learn(
                total_timesteps=remaining,
                callback=callback,
                reset_num_timesteps=False,
                progress_bar=progress_bar,
                tb_log_name="run",
            )
        else:
            callback.init_callback(model)
        callback.finish()
        final = callback.final_metrics()
        if env_family(config["env"]) == "bandit":
            from explore_bench.runner.bandit import bandit_final, is_meta_bandit

            if is_meta_bandit(config["env"], config.get("env_kwargs")):
                final.update(bandit_final(model, config, run_dir))  # the held-out tasks replace the training window
        from explore_bench.runner.maps import write_toponav_map  # a picture only where a toponav bonus ran

        write_toponav_map(model, config, run_dir)
        return {
            "frames": callback.frames,
            "wall_time_s": callback.wall_time,
            "final": final,
            "n_episodes": callback.n_episodes,
            "resumed_from": resumed_from,
            "git_commits": callback.git_commits,
            "git_dirty": callback.git_dirty,
        }
    finally:
        if model is not None:
            attempt["frames"] = int(model.num_timesteps) * step_frames
        if callback is not None:
            attempt["wall_time_s"] = callback.wall_time
        _close_env(model)


class _RunLock:
    """Exclusive flock on ``run_dir/.run.lock``: one process trains a run folder at a time (a second waits)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".run.lock"
        self.fd: int | None = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no locking on Windows
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log_event(self.path.parent, "another process is training this run folder; waiting for it to end")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:  # no lock support on this filesystem
            pass
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None


def _read_rows(run_dir: Path) -> list[dict]:
    """progress.csv's rows; an unreadable file is moved aside (with a line in run.log) and counts as empty."""
    try:
        return read_progress_rows(run_dir / PROGRESS_FILE)
    except (ValueError, UnicodeDecodeError, csv.Error) as e:
        dest = run_dir / CORRUPT_DIR / _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(run_dir / PROGRESS_FILE, dest / PROGRESS_FILE)
        log_event(run_dir, f"{PROGRESS_FILE} unreadable ({e}); moved to {dest.relative_to(run_dir)}")
        return []
