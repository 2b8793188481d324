"""Same suite, two backends: does a Ray run give the same leaderboard rows as the local process pool?

Runs a suite (default `smoke`) with the local pool into OUT/local and on a local Ray instance
(`ray.init(num_cpus=WORKERS)`) into OUT/ray, then compares every leaderboard row (wall-clock columns aside)
and every run's progress.csv (fps aside). Both backends are resumable, so a killed comparison run again
finishes the missing runs. Writes `comparison.md` and both leaderboards to `--report`.

    python benchmarks/ray_vs_local.py --suite smoke --workers 2 --out runs/ray_vs_local --report results/ray_vs_local
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
from report import emit_table

from explore_bench.leaderboard import build_leaderboard
from explore_bench.runner import load_suite, ray_backend
from explore_bench.runner import run_suite as local_run_suite

#: progress.csv columns that depend on the seed and code only (fps is wall-clock).
DETERMINISTIC = ["frames", "episode_return", "success", "coverage", "intrinsic_mean", "intrinsic_std"]
SHOWN = ["env", "method", "n_seeds", "success_mean", "success_iqm", "coverage_mean", "reached", "success_auc"]


def board(out: Path) -> pd.DataFrame:
    rows = build_leaderboard(out, plots=False)
    wall_clock = [c for c in rows.columns if c.startswith("wall_time")]
    return rows.drop(columns=wall_clock).sort_values(["env", "method"]).reset_index(drop=True)


def progress_mismatches(local: Path, remote: Path) -> tuple[int, list[str]]:
    """Number of runs compared and the run folders whose deterministic progress columns differ."""
    runs = sorted(p.parent.relative_to(local) for p in local.rglob("progress.csv"))
    differ = []
    for run in runs:
        a = pd.read_csv(local / run / "progress.csv")[DETERMINISTIC]
        b = pd.read_csv(remote / run / "progress.csv")[DETERMINISTIC] if (remote / run / "progress.csv").exists() else None
        if b is None or not a.equals(b):
            differ.append(str(run))
    return len(runs), differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="smoke", help="built-in suite name or YAML path (default: smoke)")
    parser.add_argument("--workers", type=int, default=2, help="local pool size and Ray CPUs (default 2)")
    parser.add_argument("--out", type=Path, default=Path("runs/ray_vs_local"))
    parser.add_argument("--report", type=Path, default=None, help="write comparison.md and both leaderboards here")
    args = parser.parse_args(argv)

    import ray

    suite = load_suite(args.suite)
    seconds = {}
    start = time.perf_counter()
    local_run_suite(suite, args.out / "local", workers=args.workers, progress=True)
    seconds["local"] = time.perf_counter() - start
    ray.init(num_cpus=args.workers, include_dashboard=False)
    try:
        start = time.perf_counter()
        ray_backend.run_suite(suite, args.out / "ray", workers=args.workers, progress=True)
        seconds["ray"] = time.perf_counter() - start
    finally:
        ray.shutdown()

    local, remote = board(args.out / "local"), board(args.out / "ray")
    same_rows = local.equals(remote)
    n_runs, differ = progress_mismatches(args.out / "local", args.out / "ray")
    lines = [
        f"# Ray vs local backend: suite `{suite.name}`",
        "",
        f"Command: `python benchmarks/ray_vs_local.py --suite {args.suite} --workers {args.workers}`  ",
        f"Local pool of {args.workers} workers, then a local Ray instance with `num_cpus={args.workers}`; "
        f"wall time {seconds['local']:.0f} s and {seconds['ray']:.0f} s (a resumed comparison counts only what it ran).",
        "",
        f"- Leaderboard rows identical (every column but wall time): **{'yes' if same_rows else 'no'}**",
        f"- progress.csv identical in {', '.join(DETERMINISTIC)}: **{n_runs - len(differ)} of {n_runs} runs**"
        + (f" (differ: {', '.join(differ)})" if differ else ""),
        "",
        "| backend | " + " | ".join(SHOWN) + " |",
        "|---|" + "---|" * len(SHOWN),
    ]
    for name, rows in (("local", local), ("ray", remote)):
        for _, row in rows.iterrows():
            cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in SHOWN]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    emit_table(lines, None if args.report is None else args.report / "comparison.md")
    if args.report is not None:
        for name in ("local", "ray"):
            shutil.copyfile(args.out / name / "leaderboard.csv", args.report / f"leaderboard_{name}.csv")
    return 0 if same_rows and not differ else 1


if __name__ == "__main__":
    sys.exit(main())
