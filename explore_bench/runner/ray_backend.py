"""Ray executor: each run of a suite is one Ray task (Ray core tasks, not Ray Tune).

    from explore_bench.runner import load_suite
    from explore_bench.runner.ray_backend import run_suite
    results = run_suite(load_suite("doorkey8x8"), "/shared/runs/doorkey8x8", address="auto")

It mirrors ``explore_bench.runner.local.run_suite``: the same up-front checks (``check_suite``: finished runs
come back as "skipped" untouched, a folder of another config aborts the suite), the same progress bar and
one ``RunResult`` per run. Each task asks Ray for the run's ``resources`` (``num_cpus``/``num_gpus`` from the
suite file) and calls the same ``run_spec`` the local pool calls, so it writes the same run folder.

**The output folder must be on a filesystem every Ray node sees, at the same absolute path** (NFS, a cluster
file system, or a one-node cluster): the tasks write the run folders there directly, and a retried task
resumes from the checkpoint the dead one left there. explore_bench (the same version) must be installed on
every node.

Retries: a task whose worker dies (killed, OOM-killed, node lost: Ray's ``WorkerCrashedError``,
``NodeDiedError``, ...) is resubmitted by Ray up to ``max_retries`` times (the remote function's own
``max_retries``); the new attempt resumes from the run folder's last checkpoint. Once the retries are spent the
run is recorded as failed (summary.json with the error) and the rest of the suite goes on. An exception inside
a run is not retried (``retry_exceptions=False``): ``run_single`` records it as a failed run itself.

Importing this module does not import Ray; ``run_suite`` does, and raises ``RayNotInstalledError`` (an
``ImportError`` whose message says ``pip install "explore_bench[ray]"``) when it is missing.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

from explore_bench.agents.factory import ConfigError
from explore_bench.runner.io import atomic_write_text
from explore_bench.runner.local import (
    RunResult,
    _progress_bar,
    _result,
    prepare_suite,
    run_spec,
)
from explore_bench.runner.lock import OutputLock
from explore_bench.runner.suite import RunSpec, Suite

__all__ = ["DEFAULT_MAX_RETRIES", "RayConnectionError", "RayNotInstalledError", "require_ray", "run_suite"]

DEFAULT_MAX_RETRIES = 2
INSTALL_HINT = 'pip install "explore_bench[ray]"'

#: Test-only fault injection (see ``_arm_test_kill``): JSON ``{"runs": {LABEL: N}, "counter_dir": DIR}`` makes
#: the first N attempts of run LABEL SIGKILL their own worker right after their first new checkpoint.
TEST_KILL_ENV = "EXPLORE_BENCH_TEST_RAY_KILL"


class RayNotInstalledError(ImportError):
    """``--backend ray`` without Ray installed."""


class RayConnectionError(RuntimeError):
    """``ray.init`` failed: no cluster at the address given, or a local instance that would not start."""


def require_ray():
    """The ``ray`` module, or ``RayNotInstalledError`` with the install command."""
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalledError(f"the ray backend needs Ray, which is not installed ({e}); {INSTALL_HINT}") from None
    return ray


# --------------------------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------------------------
def _ray_task(spec: RunSpec, run_dir: str, tensorboard: bool | None, test_kill: dict | None = None) -> dict[str, Any]:
    """One run in a Ray worker: ``run_spec`` (which sets torch to one thread, as in the local pool's workers)."""
    stop = _arm_test_kill(Path(run_dir), test_kill) if test_kill else None
    try:
        return run_spec(spec, run_dir, False, tensorboard)
    finally:
        if stop is not None:
            stop.set()


def _checkpoint_frames(run_dir: Path) -> int:
    try:
        return int(json.loads((run_dir / "checkpoint.json").read_text(encoding="utf-8"))["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _arm_test_kill(run_dir: Path, plan: dict) -> threading.Event | None:
    """Test-only: SIGKILL this worker as soon as the run writes a checkpoint past the one it started from.

    ``plan`` = {"times": N, "counter": FILE}: only the first N attempts die (FILE counts the kills, since each
    attempt is a new process). A watcher thread, so the run itself is not patched and the kill lands at an
    arbitrary point of training, as a real one would."""
    counter = Path(plan["counter"])
    kills = int(counter.read_text()) if counter.exists() else 0
    if kills >= int(plan["times"]):
        return None
    start = _checkpoint_frames(run_dir)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.005):
            if _checkpoint_frames(run_dir) > start:
                atomic_write_text(counter, str(kills + 1))
                os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    threading.Thread(target=watch, name="explore-bench-test-kill", daemon=True).start()
    return stop


def _test_kill_plans() -> dict[str, dict]:
    raw = os.environ.get(TEST_KILL_ENV)
    if not raw:
        return {}
    data = json.loads(raw)
    counter_dir = Path(data["counter_dir"])
    return {
        label: {"times": int(times), "counter": str(counter_dir / (label.replace("/", "__") + ".kills"))}
        for label, times in data["runs"].items()
    }


# --------------------------------------------------------------------------------------------------------------
# The executor
# --------------------------------------------------------------------------------------------------------------
def _task_options(spec: RunSpec, max_retries: int) -> dict[str, Any]:
    res = spec.resources or {}
    return {
        "num_cpus": res.get("num_cpus", 1),
        "num_gpus": res.get("num_gpus", 0),
        "max_retries": int(max_retries),
        "retry_exceptions": False,
    }


def _check_fits(ray, todo: list[RunSpec], started_here: bool) -> None:
    """A run asking for more CPUs/GPUs than the whole cluster has would wait forever: refuse it (own local
    instance) or warn (a cluster given by address may autoscale)."""
    total = ray.cluster_resources()
    have = {"num_cpus": total.get("CPU", 0.0), "num_gpus": total.get("GPU", 0.0)}
    for spec in todo:
        for key, available in have.items():
            wanted = (spec.resources or {}).get(key, 0)
            if wanted > available:
                message = (f"{spec.source or 'suite'}: run {spec.label} asks for resources.{key}={wanted} but the Ray "
                           f"cluster has {available:g}")
                if started_here:
                    raise ConfigError(message + " (give a larger --workers, or lower resources in the suite file)")
                warnings.warn(message + "; it will wait until the cluster grows", RuntimeWarning, stacklevel=3)
                return


def _describe_ray_error(ray, error: BaseException, max_retries: int) -> str:
    """The error text of a run whose task Ray gave up on."""
    first = (str(error).strip().splitlines() or [""])[0]
    ex = ray.exceptions
    crashes = (ex.WorkerCrashedError, ex.NodeDiedError, ex.OutOfMemoryError, ex.LocalRayletDiedError)
    if isinstance(error, crashes):  # the kinds Ray retries up to max_retries
        return (f"Ray task died {max_retries + 1} time(s) (max_retries={max_retries}), the last time with "
                f"{type(error).__name__}: {first}")
    return f"Ray could not run the task: {type(error).__name__}: {first}"


def _failed(spec: RunSpec, run_dir: Path, task_dir: str, error: str, tb: str | None = None) -> RunResult:
    from explore_bench.runner.run import write_failed_summary

    frames, wall = None, None
    try:  # how far the run got: its last checkpoint
        state = json.loads((Path(task_dir) / "checkpoint.json").read_text(encoding="utf-8"))
        frames, wall = int(state["frames"]), state.get("wall_time_s")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    write_failed_summary(task_dir, spec.config, error, frames, wall, tb)
    return RunResult(spec.label, run_dir, "failed", error, frames, wall)


def run_suite(
    suite: Suite,
    out_dir: str | os.PathLike,
    workers: int | None = None,
    progress: bool = True,
    check_build: bool = True,
    tensorboard: bool | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    *,
    address: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    rerun_stale: bool = False,
    on_stale: Callable[[str], None] | None = None,
) -> list[RunResult]:
    """Run every unfinished run of ``suite`` into ``out_dir`` as Ray tasks; one ``RunResult`` per run.

    The Ray connection: an already initialised one (``ray.init`` called by the caller) is used as it is;
    else ``ray.init(address=address)`` when ``address`` is given (``"auto"``: the cluster this node belongs to);
    else a local Ray instance with ``workers`` CPUs (default: every core), shut down at the end.
    ``out_dir`` must be on a filesystem every Ray node sees at the same absolute path (see the module docstring).
    ``max_retries``: how many times a task whose worker died is restarted (from the run's last checkpoint)
    before the run is recorded as failed. ``OUT/.lock`` is held by this driver throughout (``OutputLocked`` if
    another suite holds it); ``rerun_stale`` / ``on_stale`` as in the local backend.
    """
    if workers is not None and workers <= 0:
        raise ValueError(f"the ray backend needs workers >= 1 (CPUs of the local Ray instance), got {workers}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    ray = require_ray()
    out_dir = Path(out_dir)
    lock = OutputLock(out_dir)  # held for the whole suite, as by the local backend
    try:
        return _run_suite_locked(ray, suite, out_dir, lock, workers, progress, check_build, tensorboard, on_result,
                                 address, max_retries, rerun_stale, on_stale)
    finally:
        lock.release()


def _run_suite_locked(ray, suite, out_dir, lock, workers, progress, check_build, tensorboard, on_result, address,
                      max_retries, rerun_stale, on_stale) -> list[RunResult]:
    started_here = False

    def connect(todo: list[RunSpec]) -> None:  # before anything is written
        nonlocal started_here
        if not todo or ray.is_initialized():
            return
        try:
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=workers or os.cpu_count() or 1)
        except (ConnectionError, ValueError, RuntimeError) as e:
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            first = (str(e).strip().splitlines() or [""])[0]
            raise RayConnectionError(f"could not start or reach {where}: {type(e).__name__}: {first}") from e
        started_here = True

    try:
        todo, done = prepare_suite(suite, out_dir, lock, check_build, rerun_stale, on_stale, before_write=connect)
        connect(todo)  # --rerun-stale may have added runs
        if todo:
            _check_fits(ray, todo, started_here)
    except BaseException:
        if started_here:
            ray.shutdown()
        raise
    results: list[RunResult] = [RunResult(s.label, s.run_dir(out_dir), "skipped") for s in done]
    order = {s.label: i for i, s in enumerate(suite.runs)}
    bar = _progress_bar(len(suite.runs), suite.name, progress, initial=len(done))
    if not todo:  # as the local backend: the bar shows everything skipped
        if bar is not None:
            bar.close()
        return sorted(results, key=lambda r: order.get(r.label, len(order)))

    def record(result: RunResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)
        if bar is not None:
            bar.update(1)
            counts = {s: sum(r.status == s for r in results) for s in ("finished", "failed", "skipped")}
            bar.set_postfix(counts, refresh=True)

    pending: dict[Any, RunSpec] = {}
    try:
        remote = ray.remote(_ray_task)
        kill_plans = _test_kill_plans()
        absolute = out_dir.resolve()  # workers do not share the driver's working directory
        for spec in todo:
            ref = remote.options(**_task_options(spec, max_retries)).remote(
                spec, str(spec.run_dir(absolute)), tensorboard, kill_plans.get(spec.label)
            )
            pending[ref] = spec
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                spec = pending.pop(ref)
                run_dir, task_dir = spec.run_dir(out_dir), str(spec.run_dir(absolute))
                try:
                    summary = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # an exception outside run_single's own handling
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, ray.exceptions.RayError):  # a system error surfaced through the task
                        record(_failed(spec, run_dir, task_dir, _describe_ray_error(ray, cause, max_retries)))
                    else:
                        error = f"{type(cause).__name__}: {cause}" if cause is not None else str(e).splitlines()[0]
                        record(_failed(spec, run_dir, task_dir, error, str(e)))
                except ray.exceptions.RayError as e:  # worker crashed / node died, retries spent
                    record(_failed(spec, run_dir, task_dir, _describe_ray_error(ray, e, max_retries)))
                else:
                    record(_result(spec, run_dir, summary))
    except BaseException:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
        if started_here:
            ray.shutdown()
    return sorted(results, key=lambda r: order.get(r.label, len(order)))
