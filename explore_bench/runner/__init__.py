"""Suites, run folders, resume and executors.

    from explore_bench.runner import load_suite, run_suite, run_single
    suite = load_suite("smoke")                      # or a path to a YAML file; validated and resolved
    results = run_suite(suite, "runs/smoke", workers=2)   # holds runs/smoke/.lock (OutputLocked if taken)
    summary = run_single(config, "runs/x/seed_0")    # one resolved config (see agents.factory.resolve_config)
"""

from explore_bench.runner.local import RunResult, StaleRunsWarning, check_suite, find_stale, run_suite
from explore_bench.runner.lock import OutputLocked
from explore_bench.runner.run import RunConfigMismatch, run_single, run_status
from explore_bench.runner.suite import (
    RunSpec,
    Suite,
    config_hash,
    list_suites,
    load_suite,
    make_run_spec,
    parse_suite,
    run_dir_for,
)

__all__ = [
    "OutputLocked",
    "RunConfigMismatch",
    "RunResult",
    "RunSpec",
    "StaleRunsWarning",
    "Suite",
    "check_suite",
    "config_hash",
    "find_stale",
    "list_suites",
    "load_suite",
    "make_run_spec",
    "parse_suite",
    "run_dir_for",
    "run_single",
    "run_status",
    "run_suite",
]
