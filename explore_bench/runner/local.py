"""Local executor: the runs of a suite in a pool of ``spawn``-ed worker processes (one torch thread each).

    from explore_bench.runner import load_suite, run_suite
    results = run_suite(load_suite("smoke"), "runs/smoke", workers=2)

Before anything runs, every run folder is checked: finished runs are skipped, a folder holding a different
config aborts the whole suite (``RunConfigMismatch``), and (``check_build``) one agent per distinct config is
built so that a bad hyperparameter fails up front rather than in every worker. A run that fails is recorded
(summary.json status "failed") and the others go on.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from explore_bench.agents.factory import ConfigError
from explore_bench.runner.io import atomic_write_text
from explore_bench.runner.suite import RunSpec, Suite

__all__ = ["RunResult", "check_suite", "run_spec", "run_suite"]


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
    from explore_bench.agents.factory import make_agent
    from explore_bench.runner.run import check_run_dir, run_status

    todo, done = [], []
    for spec in suite.runs:
        run_dir = spec.run_dir(out_dir)
        check_run_dir(run_dir, spec.config, spec.config_hash)
        (done if run_status(run_dir) == "finished" else todo).append(spec)
    if check_build:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # multi-threaded orthogonal init is slower, not faster, on a busy machine
        try:
            built: set[str] = set()
            for spec in todo:
                if spec.config_hash in built:
                    continue
                try:
                    model = make_agent(spec.config)
                except Exception as e:  # noqa: BLE001
                    raise ConfigError(
                        f"{spec.source}: run {spec.label}: building the agent failed: {type(e).__name__}: {e}"
                    ) from None
                model.get_env().close()
                built.add(spec.config_hash)
        finally:
            torch.set_num_threads(threads)
    return todo, done


def run_suite(
    suite: Suite,
    out_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    check_build: bool = True,
    tensorboard: bool | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run every unfinished run of ``suite`` into ``out_dir`` and return one ``RunResult`` per run.

    ``workers``: size of the process pool (default: the number of cores); ``0`` runs serially in this process
    (for debugging). Finished runs come back as "skipped" without being touched.
    """
    out_dir = Path(out_dir)
    todo, done = check_suite(suite, out_dir, check_build=check_build)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy = out_dir / "suite.yaml"
    if suite.text and (not copy.exists() or copy.read_text(encoding="utf-8") != suite.text):
        atomic_write_text(copy, suite.text)

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
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
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


def _progress_bar(total: int, name: str, enabled: bool, initial: int = 0):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"suite {name}", unit="run", dynamic_ncols=True)
