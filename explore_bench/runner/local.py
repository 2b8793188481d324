"""Local executor: the runs of a suite in a pool of ``spawn``-ed worker processes (one torch thread each).

    from explore_bench.runner import load_suite, run_suite
    results = run_suite(load_suite("smoke"), "runs/smoke", workers=2)

Before anything runs, every run folder is checked: finished runs are skipped, a folder holding a different
config aborts the whole suite (``RunConfigMismatch``), and (``check_build``) one agent per distinct config is
built so that a bad hyperparameter fails up front rather than in every worker. A run that fails is recorded
(summary.json status "failed") and the others go on.

One suite per output folder: ``run_suite`` (here and in the Ray backend) holds an exclusive flock on
``OUT/.lock`` for its whole duration (``lock.OutputLock``); a second suite on the same folder is refused at once
with ``OutputLocked`` (naming the folder and the holder's pid). The kernel releases the lock however the
holder exits, SIGKILL included, so there is never a stale lock to clean up.

Code version: ``config_hash`` covers the resolved config, not the code. A finished run whose summary names a
commit other than the current checkout's (``find_stale``) is still reused, not rerun, but never silently:
``run_suite`` reports it through ``on_stale`` (default: a ``StaleRunsWarning``; ``explore-bench run`` prints
one line). With ``rerun_stale=True`` (``--rerun-stale``) such runs are moved aside to
``OUT/.stale/<timestamp>/<env>/<method>/seed_<s>`` and rerun from zero. A run resumed across commits records
every commit in its summary's ``git_commits``, and the leaderboard flags rows whose runs differ in code
(``git_commits``, ``mixed_code``). Without git (no checkout) nothing is stale: there is nothing to compare.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import multiprocessing as mp
import os
import warnings
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from explore_bench.agents.factory import ConfigError
from explore_bench.runner.io import atomic_write_text, read_json
from explore_bench.runner.lock import OutputLock, OutputLocked
from explore_bench.runner.suite import RunSpec, Suite

__all__ = [
    "OutputLocked", "RunResult", "StaleRun", "StaleRunsWarning", "check_suite", "find_stale", "run_spec",
    "run_suite", "stale_message",
]
STALE_DIR = ".stale"


class StaleRunsWarning(UserWarning):
    """Finished runs made by another commit than the current checkout are reused."""


@dataclass
class StaleRun:
    """A finished run whose code (``commits``, from its summary) differs from the current checkout's."""

    spec: RunSpec
    run_dir: Path
    commits: list[str]


@dataclass
class RunResult:
    """What happened to one run of a suite: status is "finished", "failed" or "skipped" (finished earlier)."""

    label: str
    run_dir: Path
    status: str
    error: str | None = None
    frames: int | None = None
    wall_time_s: float | None = None
    final: dict | None = None


def run_spec(spec: RunSpec, run_dir: str | os.PathLike, progress_bar: bool = False,
             tensorboard: bool | None = None) -> dict[str, Any]:
    """Run one spec into ``run_dir`` (the worker entry point); returns its summary."""
    from explore_bench.runner.run import run_single

    return run_single(
        spec.config, run_dir, log_every=spec.log_every, checkpoint_every=spec.checkpoint_every,
        final_window=spec.final_window, progress_bar=progress_bar, tensorboard=tensorboard,
    )


def _result(spec: RunSpec, run_dir: Path, summary: dict) -> RunResult:
    status = "skipped" if summary.get("skipped") else str(summary.get("status"))
    return RunResult(spec.label, run_dir, status, summary.get("error"), summary.get("frames"),
                     summary.get("wall_time_s"), summary.get("final"))


def check_suite(suite: Suite, out_dir: str | os.PathLike, check_build: bool = True) -> tuple[list[RunSpec], list[RunSpec]]:
    """(to run, already finished). Raises ``RunConfigMismatch`` / ``ConfigError`` before anything is written."""
    from explore_bench.runner.run import check_run_dir, run_status

    todo, done = [], []
    for spec in suite.runs:
        run_dir = spec.run_dir(out_dir)
        check_run_dir(run_dir, spec.config, spec.config_hash)
        (done if run_status(run_dir) == "finished" else todo).append(spec)
    if check_build:
        check_builds(todo)
    return todo, done


def check_builds(specs: list[RunSpec]) -> None:
    """Build each distinct agent of ``specs`` once: whatever an agent refuses is a ``ConfigError`` before any run
    folder is written, not a failed run."""
    import torch

    from explore_bench.agents.factory import EVAL_ONLY_ALGOS, EXPLORER_ALGOS, NOVELTY_ALGOS, make_agent
    from explore_bench.runner.bandit import check_eval_only
    from explore_bench.runner.explorer import build_explorer
    from explore_bench.runner.novelty import build_novelty

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # multi-threaded orthogonal init is slower, not faster, on a busy machine
    try:
        built: set[str] = set()
        for spec in specs:
            if spec.config_hash in built:
                continue
            where = f"{spec.source}: " if spec.source else ""
            try:
                if spec.config["algo"] in EXPLORER_ALGOS:
                    build_explorer(spec.config).close()
                elif spec.config["algo"] in EVAL_ONLY_ALGOS:
                    check_eval_only(spec.config)
                elif spec.config["algo"] in NOVELTY_ALGOS:
                    build_novelty(spec.config).close()
                else:
                    make_agent(spec.config).get_env().close()
            except Exception as e:  # noqa: BLE001 - whatever the agent refuses is bad input
                raise ConfigError(f"{where}run {spec.label}: building the agent failed: {type(e).__name__}: {e}") from None
            built.add(spec.config_hash)
    finally:
        torch.set_num_threads(threads)


def find_stale(specs: list[RunSpec], out_dir: str | os.PathLike, commit: str | None = None) -> list[StaleRun]:
    """The finished runs among ``specs`` made (in whole or part) by another commit than ``commit`` (default:
    the current checkout's). [] without git: there is nothing to compare with."""
    from explore_bench.runner.run import SUMMARY_FILE, git_commit, run_commits

    commit = commit or git_commit()
    if commit is None:
        return []
    stale = []
    for spec in specs:
        run_dir = spec.run_dir(out_dir)
        try:
            summary = read_json(run_dir / SUMMARY_FILE)
        except ValueError:
            continue
        if summary is None or summary.get("status") != "finished":
            continue
        commits = run_commits(summary)
        if commits != [commit]:
            stale.append(StaleRun(spec, run_dir, commits))
    return stale


def stale_message(stale: list[StaleRun], out_dir: str | os.PathLike, commit: str | None = None,
                  rerun: bool = False, limit: int = 5) -> str:
    """One line naming the stale runs (the first ``limit``) and their commits."""
    from explore_bench.runner.run import git_commit

    commit = commit or git_commit() or "?"
    names = ", ".join(f"{s.spec.label} ({'+'.join(c[:8] for c in s.commits)})" for s in stale[:limit])
    if len(stale) > limit:
        names += f" and {len(stale) - limit} more"
    what = ("moved aside to " + str(Path(out_dir) / STALE_DIR) + "/ and rerun from zero" if rerun
            else "reused, not rerun (--rerun-stale reruns them)")
    return (f"{len(stale)} finished run(s) in {out_dir} were made by another commit than the checkout "
            f"({commit[:8]}): {names}; {what}")


def _move_stale(stale: list[StaleRun], out_dir: Path) -> Path:
    dest_root = out_dir / STALE_DIR / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for s in stale:
        dest = dest_root / s.run_dir.relative_to(out_dir)
        n = 1
        while dest.exists():
            dest, n = dest.with_name(f"{dest.name}.{n}"), n + 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(s.run_dir, dest)
    return dest_root


def prepare_suite(
    suite: Suite,
    out_dir: Path,
    lock: OutputLock,
    check_build: bool = True,
    rerun_stale: bool = False,
    on_stale: Callable[[str], None] | None = None,
    before_write: Callable[[list[RunSpec]], None] | None = None,
) -> tuple[list[RunSpec], list[RunSpec]]:
    """The common start of both backends: the lock, ``check_suite``, stale runs, the copy of the suite file.

    The lock is probed first (an existing ``OUT/.lock`` held by another suite refuses at once, writing
    nothing), ``check_suite`` then runs (a bad suite writes nothing, not even the lock file), the lock is
    taken (creating the folder) and the run statuses are read again under it."""
    had_lock = lock.acquire(create=False)
    todo, done = check_suite(suite, out_dir, check_build=check_build)
    if before_write is not None:
        before_write(todo)
    lock.acquire(create=True)
    if not had_lock:  # another suite may have finished runs between the check and the lock
        todo, done = check_suite(suite, out_dir, check_build=False)
    stale = find_stale(done, out_dir)
    if stale:
        message = stale_message(stale, out_dir, rerun=rerun_stale)
        if on_stale is not None:
            on_stale(message)
        else:
            warnings.warn(message, StaleRunsWarning, stacklevel=3)
        if rerun_stale:
            _move_stale(stale, out_dir)
            moved = {s.spec.label for s in stale}
            done = [s for s in done if s.label not in moved]
            todo_labels = moved | {s.label for s in todo}
            todo = [s for s in suite.runs if s.label in todo_labels]
    copy = out_dir / "suite.yaml"
    if suite.text and (not copy.exists() or copy.read_text(encoding="utf-8") != suite.text):
        atomic_write_text(copy, suite.text)
    return todo, done


def run_suite(
    suite: Suite,
    out_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    check_build: bool = True,
    tensorboard: bool | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    *,
    rerun_stale: bool = False,
    on_stale: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Run every unfinished run of ``suite`` into ``out_dir`` and return one ``RunResult`` per run.

    ``workers``: size of the process pool (default: the number of cores); ``0`` runs serially in this process
    (for debugging). Finished runs come back as "skipped" without being touched. Holds ``OUT/.lock`` throughout
    (``OutputLocked`` if another suite holds it). Finished runs of another commit are reported through
    ``on_stale`` (one line; default a ``StaleRunsWarning``) and, with ``rerun_stale``, moved to ``OUT/.stale/``
    and rerun from zero.
    """
    out_dir = Path(out_dir)
    lock = OutputLock(out_dir)  # taken inside prepare_suite, once the suite checked out
    try:
        return _run_suite_locked(suite, out_dir, lock, workers, progress, check_build, tensorboard, on_result,
                                 rerun_stale, on_stale)
    finally:
        lock.release()


def _run_suite_locked(suite, out_dir, lock, workers, progress, check_build, tensorboard, on_result, rerun_stale,
                      on_stale) -> list[RunResult]:
    todo, done = prepare_suite(suite, out_dir, lock, check_build, rerun_stale, on_stale)

    results: list[RunResult] = [RunResult(s.label, s.run_dir(out_dir), "skipped") for s in done]
    bar = _progress_bar(len(suite.runs), suite.name, progress, initial=len(done))

    def record(result: RunResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)
        if bar is not None:
            bar.update(1)
            counts = {s: sum(r.status == s for r in results) for s in ("finished", "failed", "skipped")}
            bar.set_postfix(counts, refresh=True)

    try:
        if workers is None:
            workers = os.cpu_count() or 1
        if workers <= 0 or not todo:
            for spec in todo:
                run_dir = spec.run_dir(out_dir)
                record(_result(spec, run_dir, run_spec(spec, run_dir, tensorboard=tensorboard)))
        else:
            _run_pool(todo, out_dir, min(workers, len(todo)), tensorboard, record)
    finally:
        if bar is not None:
            bar.close()
    order = {s.label: i for i, s in enumerate(suite.runs)}
    return sorted(results, key=lambda r: order.get(r.label, len(order)))


def _run_pool(todo: list[RunSpec], out_dir: Path, workers: int, tensorboard: bool | None,
              record: Callable[[RunResult], None]) -> None:
    from explore_bench.runner.run import write_failed_summary

    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent,
                                initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_spec, spec, spec.run_dir(out_dir), False, tensorboard): spec for spec in todo}
        try:
            for fut in cf.as_completed(futures):
                spec = futures[fut]
                run_dir = spec.run_dir(out_dir)
                try:
                    record(_result(spec, run_dir, fut.result()))
                except BrokenProcessPool:
                    error = "worker process died (killed or crashed) during this run"
                    write_failed_summary(run_dir, spec.config, error)
                    record(RunResult(spec.label, run_dir, "failed", error))
                except Exception as e:  # noqa: BLE001 - an error outside run_single's own handling
                    error = f"{type(e).__name__}: {e}"
                    write_failed_summary(run_dir, spec.config, error)
                    record(RunResult(spec.label, run_dir, "failed", error))
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _die_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: on Linux, SIGKILL this worker when the suite process dies (a SIGKILLed suite
    must not leave orphans training run folders after its lock is gone); the per-run lock of ``run_single``
    covers the other platforms."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _progress_bar(total: int, name: str, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"suite {name}", unit="run", dynamic_ncols=True)
