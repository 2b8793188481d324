"""Command line: ``explore-bench list | train | run | leaderboard | plot | noise-robustness``.

    explore-bench list
    explore-bench train MiniGrid-DoorKey-5x5-v0 --agent ppo --bonus rnd --frames 100000 --seed 0 \\
        --set hyperparameters.learning_rate=1e-4
    explore-bench run smoke --workers 2 --out runs/smoke
    explore-bench run doorkey8x8 --backend ray --address auto --out /shared/runs/doorkey8x8
    explore-bench leaderboard runs/smoke --threshold 0.9
    explore-bench plot runs/smoke --out runs/smoke/plots
    explore-bench noise-robustness --bonuses rnd,icm --worlds remote --seeds 3 --updates 100

Bad input (unknown names, malformed suite, a run folder holding another config, an output folder in use by
another suite) prints one line to stderr and exits with status 2; a suite with failed runs exits with status 1.
``run`` warns in one line about finished runs made by another git commit (reused; ``--rerun-stale`` reruns them).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

PROG = "explore-bench"


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


def _shown(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut to about ``limit`` characters (the error stays one short line)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _frames(text: str) -> int:
    from explore_bench.runner.suite import MAX_FRAMES

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of frames (e.g. 100000 or 1e6), got {_shown(text)}") from None
    if not math.isfinite(value) or not value.is_integer() or not 0 < value <= MAX_FRAMES:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer number of frames (at most {MAX_FRAMES:.0e}), got {_shown(text)}")
    return int(value)


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {_shown(text)}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {_shown(text)}")
    return value


def _seed(text: str) -> int:
    from explore_bench.runner.suite import MAX_SEED

    value = _nonneg_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed between 0 and 2**31 - 1, got {_shown(text)}")
    return value


def _pos_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {_shown(text)}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {_shown(text)}")
    return value


def _names(items: Sequence[str] | None) -> list[str]:
    """``["rnd,icm", "count"]`` -> ``["rnd", "icm", "count"]`` (order kept, duplicates dropped)."""
    out: list[str] = []
    for item in items or []:
        out += [part.strip() for part in item.split(",") if part.strip()]
    return list(dict.fromkeys(out))


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1e-4", "c=[64, 64]"]`` -> ``{"a.b": 1e-4, "c": [64, 64]}`` (values parsed as YAML)."""
    from explore_bench.runner.suite import coerce_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE (e.g. hyperparameters.learning_rate=1e-4), got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out[key] = coerce_value(value)
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's default prints the usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Benchmark of exploration bonuses for deep RL.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    sub.add_parser("list", help="list envs, agents, bonuses and built-in suites")

    p = sub.add_parser("train", help="train one agent on one env into its run folder")
    p.add_argument("env", help="env id (see `explore-bench list`)")
    p.add_argument("--agent", default="ppo", help="agent name (default: ppo)")
    p.add_argument("--bonus", default="none", help="bonus name, or 'none' (default)")
    p.add_argument("--frames", type=_frames, required=True, help="frame budget (e.g. 100000 or 1e6)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default="runs/train", help="results folder (default: runs/train)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the resolved config (dotted, e.g. hyperparameters.learning_rate=1e-4)")
    p.add_argument("--log-every", type=_frames, default=None, help="frames between progress rows")
    p.add_argument("--checkpoint-every", type=_frames, default=None, help="frames between checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("run", help="run a suite (built-in name or YAML path), then build its leaderboard")
    p.add_argument("suite", help="built-in suite name (see `explore-bench list`) or path to a YAML file")
    p.add_argument("--workers", type=_nonneg_int, default=None,
                   help="worker processes (default: number of cores; 0 = serially in this process); with "
                        "--backend ray and no --address: the CPUs of the local Ray instance")
    p.add_argument("--out", default=None, help="results folder (default: runs/<suite name>); with --backend ray "
                                               "it must be on a filesystem every Ray node sees")
    p.add_argument("--threshold", type=float, default=0.9, help="success threshold of the leaderboard")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-leaderboard", action="store_true", help="do not build the leaderboard at the end")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: one Ray task per run "
                        "(needs the extra: pip install \"explore_bench[ray]\")")
    p.add_argument("--address", default=None,
                   help="--backend ray: the Ray cluster to join (e.g. 'auto' on a cluster node, or "
                        "ray://HEAD:10001); default: start a local Ray instance")
    p.add_argument("--max-retries", type=_nonneg_int, default=None,
                   help="--backend ray: restarts of a run whose worker died (from its last checkpoint) before "
                        "it counts as failed (default 2)")
    p.add_argument("--rerun-stale", action="store_true",
                   help="rerun from zero the finished runs made by another git commit than the checkout (their "
                        "folders are moved to OUT/.stale/<timestamp>/); by default they are reused, with a warning")

    p = sub.add_parser("leaderboard", help="aggregate a results folder into leaderboard CSVs and plots")
    p.add_argument("dir", help="results folder (run folders with summary.json at any depth)")
    p.add_argument("--threshold", type=float, default=0.9, help="success threshold (default 0.9)")
    p.add_argument("--out", default=None, help="where to write the leaderboard (default: DIR)")
    p.add_argument("--no-plots", action="store_true")

    p = sub.add_parser("plot", help="normalised-score statistics (IQM, CIs, profiles, P(X>Y)) and all plots")
    p.add_argument("dir", help="results folder (run folders with summary.json at any depth)")
    p.add_argument("--out", default=None, help="where to write the plots (default: DIR)")
    p.add_argument("--threshold", type=float, default=0.9, help="success threshold line on the curves")
    p.add_argument("--resamples", type=_pos_int, default=10_000, help="bootstrap resamples (default 10000)")

    p = sub.add_parser("results", help="rebuild every committed table: leaderboard and plots of each DIR/*/runs")
    p.add_argument("dir", nargs="?", default="results", help="folder of result tables (default: results)")
    p.add_argument("--threshold", type=float, default=0.9, help="success threshold (default 0.9)")
    p.add_argument("--resamples", type=_pos_int, default=10_000, help="bootstrap resamples (default 10000)")

    p = sub.add_parser("noise-robustness",
                       help="B_tv / B_novel of every bonus in the noisy-TV gridworlds (model level, no RL)")
    p.add_argument("--bonuses", nargs="+", default=None, metavar="NAME",
                   help="bonuses to measure, space- or comma-separated (default: every registered bonus)")
    p.add_argument("--worlds", nargs="+", default=None, metavar="WORLD",
                   help="TVGrid worlds: remote, always, big_always, big_remote (default: all four)")
    p.add_argument("--seeds", type=_pos_int, default=3, help="number of seeds, 0..N-1 (default 3)")
    p.add_argument("--updates", type=_pos_int, default=None, help="bonus updates per run (default 100)")
    p.add_argument("--out", default=None, help="output folder (default: results/noise_robustness)")
    p.add_argument("--train-transitions", type=_pos_int, default=None, help="training set size (default 20000)")
    p.add_argument("--eval-sequences", type=_pos_int, default=None,
                   help="sequences in the held-out and in the novel set (default 256)")
    p.add_argument("--batch-sequences", type=_pos_int, default=None, help="sequences per update batch (default 32)")
    p.add_argument("--seq-len", type=_pos_int, default=None, help="steps per sequence (default 16)")
    p.add_argument("--k-tv", type=_pos_int, default=None, help="TV symbols (default 8)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


# ------------------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    from explore_bench.agents.factory import list_agents
    from explore_bench.bonuses import list_bonuses
    from explore_bench.envs import list_envs
    from explore_bench.runner.suite import list_suites, load_suite

    print("envs:")
    for e in list_envs():
        print(f"  {e}")
    print("agents:")
    for a in list_agents():
        print(f"  {a}")
    print("bonuses:")
    for b in list_bonuses():
        print(f"  {b}")
    print("suites:")
    suites = list_suites()
    width = max(map(len, suites), default=0)
    for s in suites:
        try:
            suite = load_suite(s, resolve=False)
            print(f"  {s:<{width}}  {suite.description}")
        except Exception as e:  # noqa: BLE001 - a broken built-in file must not hide the others
            print(f"  {s:<{width}}  (invalid: {e})")
    return 0


def _print_final(summary: dict) -> None:
    final = summary.get("final") or {}

    def fmt(x):
        return "nan" if x is None else f"{x:.3f}"

    print(
        f"{summary.get('status')}: {summary.get('env')} {summary.get('agent')}"
        f"{'+' + summary['bonus'] if summary.get('bonus') else ''} seed {summary.get('seed')}: "
        f"frames {summary.get('frames')}, success {fmt(final.get('success'))}, return {fmt(final.get('return'))}, "
        f"coverage {fmt(final.get('coverage'))}"
    )


def cmd_train(args) -> int:
    from explore_bench.agents.factory import ConfigError
    from explore_bench.runner.local import check_builds
    from explore_bench.runner.run import check_run_dir, run_single, run_status
    from explore_bench.runner.suite import _as_bonus, make_run_spec

    try:
        bonus = _as_bonus(args.bonus, "--bonus")
    except ConfigError as e:
        raise UsageError(str(e)) from None
    overrides = parse_sets(args.sets)
    for key in overrides:
        if key.split(".")[0] in ("env", "agent", "bonus", "seed", "frames"):
            raise UsageError(f"--set {key}: use the ENV argument / --agent / --bonus / --seed / --frames instead")
    spec = make_run_spec(args.env, args.agent, bonus, args.seed, args.frames, overrides)
    run_dir = spec.run_dir(args.out)
    check_run_dir(run_dir, spec.config, spec.config_hash)  # a folder of another config: refused, nothing written
    if run_status(run_dir) != "finished":
        check_builds([spec])
    if not args.no_progress:
        import warnings

        from tqdm import TqdmExperimentalWarning

        warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)  # SB3's bar uses tqdm.rich
    summary = run_single(
        spec.config, run_dir, log_every=args.log_every, checkpoint_every=args.checkpoint_every,
        progress_bar=not args.no_progress,
    )
    if summary.get("skipped"):
        print(f"{run_dir}: already finished; not rerun (move the folder away to train again)")
    _print_final(summary)
    print(f"run folder: {run_dir}")
    if summary.get("status") != "finished":
        print(f"{PROG}: run failed: {summary.get('error')}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args) -> int:
    from explore_bench.runner.suite import load_suite

    if args.backend == "ray":
        from explore_bench.runner import ray_backend

        if args.workers == 0:
            raise UsageError("--workers 0 (serially in this process) is for --backend local; give N >= 1 or leave it out")
        if args.address and args.workers is not None:
            raise UsageError("--workers sizes a local Ray instance; with --address the cluster's own CPUs are used")
        try:
            ray_backend.require_ray()
        except ray_backend.RayNotInstalledError as e:
            raise UsageError(str(e)) from None
        max_retries = ray_backend.DEFAULT_MAX_RETRIES if args.max_retries is None else args.max_retries
        run_suite = functools.partial(ray_backend.run_suite, address=args.address, max_retries=max_retries)
        backend_errors: tuple[type[Exception], ...] = (ray_backend.RayConnectionError,)
    else:
        from explore_bench.runner.local import run_suite

        for flag, value in (("--address", args.address), ("--max-retries", args.max_retries)):
            if value is not None:
                raise UsageError(f"{flag} applies to --backend ray only")
        backend_errors = ()

    suite = load_suite(args.suite)
    out = Path(args.out) if args.out else Path("runs") / suite.name
    if args.backend == "ray":
        workers = args.workers
        where = (f"Ray cluster at {args.address}" if args.address
                 else f"local Ray instance, {workers or os.cpu_count() or 1} CPU(s)")
        where += f", max {max_retries} retries per run"
    else:
        workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
        where = f"{workers} worker(s)"
    print(f"suite {suite.name}: {len(suite.runs)} runs -> {out} ({where})", flush=True)
    from explore_bench.runner.lock import OutputLocked

    def warn_stale(message: str) -> None:
        print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)

    try:
        results = run_suite(suite, out, workers=workers, progress=not args.no_progress,
                            rerun_stale=args.rerun_stale, on_stale=warn_stale)
    except (OutputLocked, *backend_errors) as e:
        raise UsageError(str(e)) from None
    counts = {s: sum(r.status == s for r in results) for s in ("finished", "skipped", "failed")}
    print(f"finished {counts['finished']}, already done {counts['skipped']}, failed {counts['failed']}")
    for r in results:
        if r.status == "failed":
            print(f"  FAILED {r.label}: {(r.error or '').splitlines()[0] if r.error else ''}", file=sys.stderr)
    if not args.no_leaderboard:
        _leaderboard(out, None, args.threshold, plots=True)
    return 1 if counts["failed"] else 0


def _leaderboard(runs_dir: Path, out: Path | None, threshold: float, plots: bool) -> None:
    from explore_bench.leaderboard import build_leaderboard

    board = build_leaderboard(runs_dir, out_dir=out, success_threshold=threshold, plots=plots)
    dest = Path(out) if out is not None else Path(runs_dir)
    cols = ["env", "method", "n_seeds", "n_failed", "success_iqm", "return_iqm", "reached"]
    with _pd_display():
        print(board[cols].to_string(index=False))
    print(f"leaderboard: {dest / 'leaderboard.csv'}")


class _pd_display:
    def __enter__(self):
        import pandas as pd

        self._ctx = pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _results_dir(text: str) -> Path:
    runs_dir = Path(text)
    if not runs_dir.is_dir():
        raise UsageError(f"results folder {runs_dir} {'is a file' if runs_dir.exists() else 'does not exist'}")
    return runs_dir


def cmd_leaderboard(args) -> int:
    runs_dir = _results_dir(args.dir)
    _leaderboard(runs_dir, Path(args.out) if args.out else None, args.threshold, plots=not args.no_plots)
    return 0


def cmd_plot(args) -> int:
    from explore_bench.leaderboard import build_plots

    runs_dir = _results_dir(args.dir)
    written = build_plots(runs_dir, Path(args.out) if args.out else None, n_bootstrap=args.resamples,
                          success_threshold=args.threshold)
    for path in written:
        print(path)
    return 0


def cmd_results(args) -> int:
    """Each table folder that keeps its runs (``DIR/<table>/runs/``) gets its leaderboard and plots rebuilt in place:
    ``leaderboard`` then ``plot``, as made by hand, so the committed files follow from the committed runs."""
    from explore_bench.leaderboard import build_plots

    root = _results_dir(args.dir)
    tables = sorted(runs.parent for runs in root.glob("*/runs") if runs.is_dir())
    if not tables:
        raise UsageError(f"{root}: expected table folders holding a runs/ folder (e.g. {root}/doorkey8x8/runs)")
    for table in tables:
        print(f"== {table}")
        _leaderboard(table / "runs", table, args.threshold, plots=True)
        build_plots(table / "runs", table, n_bootstrap=args.resamples, success_threshold=args.threshold)
    return 0


def cmd_noise_robustness(args) -> int:
    from explore_bench.robustness import (
        DEFAULT_OUT,
        RobustnessConfig,
        run_noise_robustness,
    )

    config = RobustnessConfig(bonuses=_names(args.bonuses), seeds=list(range(args.seeds)))
    if args.bonuses is not None and not config.bonuses:
        raise UsageError("--bonuses: expected at least one bonus name")
    if args.worlds is not None:
        config.worlds = _names(args.worlds)
        if not config.worlds:
            raise UsageError("--worlds: expected at least one world")
    for arg, key in (("updates", "updates"), ("train_transitions", "train_transitions"),
                     ("eval_sequences", "eval_sequences"), ("batch_sequences", "batch_sequences"),
                     ("seq_len", "seq_len"), ("k_tv", "k_tv")):
        if getattr(args, arg) is not None:
            setattr(config, key, getattr(args, arg))
    config.validate()  # unknown bonus / world: KeyError listing the valid ones, before any work
    out = Path(args.out) if args.out else DEFAULT_OUT
    command = " ".join([
        PROG, "noise-robustness", "--bonuses", ",".join(config.bonuses), "--worlds", ",".join(config.worlds),
        "--seeds", str(args.seeds), "--updates", str(config.updates),
        *(f"--{a.replace('_', '-')} {getattr(args, a)}" for a in
          ("train_transitions", "eval_sequences", "batch_sequences", "seq_len", "k_tv") if getattr(args, a) is not None),
    ])
    print(f"noise-robustness: {len(config.bonuses)} bonus(es) x {len(config.worlds)} world(s) x "
          f"{len(config.seeds)} seed(s), {config.updates} updates each -> {out}", flush=True)
    table = run_noise_robustness(config, out, progress=not args.no_progress, command=command)
    cols = ["bonus", "world", "n_seeds", "ratio", "ratio_ci_low", "ratio_ci_high", "b_tv", "b_novel", "plateau"]
    with _pd_display():
        print(table[cols].to_string(index=False))
    print(f"table: {out / 'noise_robustness.csv'}, {out / 'noise_robustness.md'}")
    return 0


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "run": cmd_run,
    "leaderboard": cmd_leaderboard,
    "plot": cmd_plot,
    "results": cmd_results,
    "noise-robustness": cmd_noise_robustness,
}


def _error(message: object) -> None:
    """The one line of a refusal (messages of other libraries may span several)."""
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: usage errors (2) and --help (0)
        return int(e.code or 0)
    from explore_bench.agents.factory import ConfigError

    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, FileNotFoundError) as e:
        _error(e)
        return 2
    except KeyError as e:  # unknown names from the factories: the message lists the valid ones
        _error(e.args[0] if e.args else e)
        return 2
    except ValueError as e:  # e.g. malformed summary files, no runs under a leaderboard folder
        _error(e)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
