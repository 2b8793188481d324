"""Fuzz: malformed suite files and CLI argument lists fed to the real entry point ``explore_bench.cli.main``.

Every case is invalid up front. Each must be refused the same way: a non-zero exit status, no exception out
of ``main``, one clear error line on stderr (no traceback) naming what was expected (for a suite file: the file
and the offending key or value), and nothing written: the ``--out`` folder (and ``runs/`` in the working
folder) must not exist afterwards. Not even ``OUT/.lock``: the runner (``runner.local.prepare_suite``) probes the
lock without creating it, checks the whole suite (``check_suite``, which also builds each distinct agent once),
and only then takes the lock, creating the folder; ``train`` likewise builds its agent before the run folder.

The cases come from seeded ``random.Random`` generators (deterministic). Each family is one test that loops
over its cases and fails at the end with a readable list of the failing cases and what they printed. Training
can never start: the entry points that would train are replaced by a stub that raises ``_WouldTrain``.
"""

from __future__ import annotations

import random
import shutil
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from explore_bench.agents.factory import list_agents
from explore_bench.bonuses import list_bonuses
from explore_bench.cli import main
from explore_bench.envs import list_envs
from explore_bench.runner.suite import list_suites, load_suite

ENV = "MiniGrid-DoorKey-5x5-v0"
MAX_MESSAGE = 2000  # a clear error is one line, not a dump of the input
DROP = object()  # grid(...) value: remove the key

# A valid suite: every suite case below is this one with one thing broken (test_base_suites_are_valid).
BASE_GRID: dict[str, Any] = {
    "name": "fuzz",
    "description": "fuzz base",
    "frames": 1000,
    "seeds": [0, 1],
    "envs": [ENV],
    "agents": ["ppo"],
    "bonuses": [None, "rnd"],
    "overrides": {"n_envs": 4, "hyperparameters.n_steps": 32},
    "resources": {"num_cpus": 1, "num_gpus": 0},
    "log_every": 500,
    "checkpoint_every": 500,
    "final_window": 10,
}
BASE_RUNS: dict[str, Any] = {
    "name": "fuzz-runs",
    "frames": 1000,
    "seeds": [0],
    "runs": [{"env": ENV, "agent": "ppo", "bonus": "count", "seeds": [0, 1], "overrides": {"n_envs": 4}}],
}


class _WouldTrain(BaseException):
    """Raised by the stubs of the training entry points: a fuzz case got past validation."""


@dataclass
class Case:
    label: str
    argv: list[str]
    must: tuple  # substrings of the error line; a tuple inside means "any of these"
    out: Path | None = None  # must not exist afterwards
    watch: Path | None = None  # an existing folder that must not change


@pytest.fixture
def no_training(monkeypatch, tmp_path):
    """Stub every path into training; run the cases in an empty working folder."""
    import explore_bench.robustness as robustness
    import explore_bench.runner.local as local
    import explore_bench.runner.ray_backend as ray_backend
    import explore_bench.runner.run as run_mod

    def stub(*args, **kwargs):
        raise _WouldTrain("training was started")

    for module, name in ((run_mod, "run_single"), (local, "run_spec"),
                         (local, "_run_pool"), (ray_backend, "run_suite"), (robustness, "run_noise_robustness")):
        monkeypatch.setattr(module, name, stub)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def run_cases(cases: list[Case], capsys, cwd: Path) -> None:
    """Run every case through ``main``; assert at the end, listing every failing case."""
    failures: list[str] = []
    for i, case in enumerate(cases):
        before = _snapshot(case.watch) if case.watch is not None else None
        problems: list[str] = []
        rc: Any = None
        try:
            rc = main(case.argv)
        except _WouldTrain:
            problems.append("training started")
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - the point: nothing may escape main
            problems.append(f"raised {type(e).__name__}: {str(e)[:200]}")
        captured = capsys.readouterr()
        err = captured.err.strip()
        if rc == 0:
            problems.append("exit status 0")
        if "Traceback" in captured.err + captured.out:
            problems.append("traceback printed")
        if not err:
            problems.append("nothing on stderr")
        else:
            if "\n" in err:
                problems.append(f"{err.count(chr(10)) + 1} lines on stderr")
            if not err.startswith("explore-bench"):
                problems.append("stderr does not start with 'explore-bench'")
            if len(err) > MAX_MESSAGE:
                problems.append(f"message of {len(err)} characters")
        for m in case.must:
            options = m if isinstance(m, tuple) else (m,)
            if not any(o in err for o in options):
                problems.append(f"message lacks {m!r}")
        if case.out is not None and case.out.exists():
            problems.append(f"--out folder created: {sorted(_snapshot(case.out))[:5]}")
        if case.watch is not None and _snapshot(case.watch) != before:
            problems.append(f"{case.watch} changed: {sorted(set(_snapshot(case.watch)) ^ set(before or {}))[:5]}")
        leftovers = sorted(p.name for p in cwd.iterdir())
        if leftovers:
            problems.append(f"written in the working folder: {leftovers}")
            for p in cwd.iterdir():  # keep the next cases' check meaningful
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if problems:
            argv = " ".join(repr(a) if len(a) < 120 else repr(a[:100] + "...") for a in case.argv)
            failures.append(f"[{i}] {case.label}: {'; '.join(problems)}\n    argv: {argv}\n    rc={rc} "
                            f"stderr: {err[:400]!r}\n    stdout: {captured.out.strip()[:200]!r}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures[:60])


# ------------------------------------------------------------------------------------------------------------
# Random pieces
# ------------------------------------------------------------------------------------------------------------
def _word(rng: random.Random, n: int | None = None, alphabet: str = string.ascii_lowercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n or rng.randint(3, 12)))


def _unknown(rng: random.Random, known: list[str], alphabet: str = string.ascii_letters + "-_") -> str:
    """A random name that is not in ``known`` (nor one of the 'no bonus' spellings)."""
    taken = {k.lower() for k in known} | {"none", "null", ""}
    while True:
        name = _word(rng, alphabet=alphabet)
        if name.lower() not in taken:
            return name


UNICODE_NAMES = ["naïve", "Мини", "日本語", "🚀rocket", "ｐｐｏ", "rnd\u0301", "MiniGrid-DoorKey-5x5-v0\u200b",
                 "ǅungla", "\u202eevil", "ppo\u00a0"]
ESCAPING_NAMES = ["../x", "../../etc/passwd", "/abs/path", "a/../b", "..", ".", "x/..", "~/x", "..\\x", "./ppo"]


# ------------------------------------------------------------------------------------------------------------
# Suite files
# ------------------------------------------------------------------------------------------------------------
def _changed(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`data` with `changes` applied in place: a value replaces the key's value, DROP removes the key."""
    for k, v in changes.items():
        if v is DROP:
            data.pop(k, None)
        else:
            data[k] = v
    return data


def grid(**changes: Any) -> dict[str, Any]:
    data = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
            for k, v in BASE_GRID.items()}
    return _changed(data, changes)


def with_runs(entry_changes: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    data = dict(BASE_RUNS)
    data["runs"] = [_changed(dict(BASE_RUNS["runs"][0]), entry_changes or {})]
    return _changed(data, changes)


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=10**6)


# (label, content, must); the file path is always required in the message as well
SuiteSpec = tuple[str, "str | bytes", tuple]


def yaml_syntax_cases(rng: random.Random) -> list[SuiteSpec]:
    fixed = [
        "frames: [1000\n", "frames: {a: 1\n", "seeds: [0, 1]]\n", "a: b: c\n", "\tframes: 1000\n",
        "frames: 1000\n  seeds: [0]\n envs: [x]\n", "name: 'unterminated\n", 'name: "unterminated\n',
        "- a\nb: c\n", "frames: *nowhere\n", "frames: &a\n&a: 1\n", "%YAML 9.9\n---\nframes: 1\n",
        "frames: 1000\n---\nframes: 2000\n", "{frames: 1000,, seeds: [0]}\n", "? [a\n", "frames: @1000\n",
        "frames: `1000`\n", "envs: [a, b\nagents: [ppo]\n", "!!\n", "frames: 1000\nframes 2000\nseeds: [0]\n",
    ]
    cases: list[SuiteSpec] = [(f"yaml syntax {i}", text, ("YAML",)) for i, text in enumerate(fixed)]
    # duplicate keys: plain YAML keeps the last one silently; a suite refuses them
    base_text = dump(BASE_GRID)
    duplicates = [
        base_text + "frames: 1000000\n", base_text + "seeds: [5]\n",
        base_text.replace("{n_envs: 4", "{n_envs: 4, n_envs: 8"),
        base_text.replace("num_gpus: 0", "num_gpus: 0, num_cpus: 2"), "name: a\nname: b\n" + dump(grid(name=DROP)),
        dump(with_runs()).replace("  agent: ppo\n", "  agent: ppo\n  agent: a2c\n"),
    ]
    cases += [(f"duplicate key {i}", text, ("duplicate key",)) for i, text in enumerate(duplicates)]
    base = dump(BASE_GRID)
    breakers = ["[", "{", "]", "}", ": :", "\t", "'", '"', "*undefined", "&", "%", "@", "`", "\n  - x\n", ",,", "!!"]
    tries = 0
    while len(cases) < len(fixed) + 25 and tries < 1000:
        tries += 1
        pos = rng.randrange(len(base))
        text = base[:pos] + rng.choice(breakers) + base[pos:]
        try:
            yaml.safe_load(text)
        except yaml.YAMLError:
            cases.append((f"yaml syntax: breaker inserted at {pos}", text, ("YAML",)))
    return cases


def top_level_cases(rng: random.Random) -> list[SuiteSpec]:
    texts = ["- frames\n- seeds\n", "42\n", "3.5\n", "true\n", "'just a string'\n", "[1, 2, 3]\n",
             "!!set {frames: null, seeds: null}\n", "-1\n", "!!binary aGVsbG8=\n", "2001-12-14\n",
             dump([BASE_GRID]), dump([BASE_GRID, BASE_RUNS]), "frames\n", ".inf\n"]
    texts += [dump(rng.sample(list(BASE_GRID), 3)) for _ in range(3)]
    return [(f"top level {i}", t, ("mapping",)) for i, t in enumerate(texts)]


def empty_cases(rng: random.Random) -> list[SuiteSpec]:
    texts = ["", "\n", "\n\n\n", "   ", "# only a comment\n", "---\n", "---\n...\n", "null\n", "~\n", "\ufeff",
             "# a\n# b\n\n"]
    return [(f"empty {i}", t, (("empty", "mapping"),)) for i, t in enumerate(texts)]


def binary_cases(rng: random.Random) -> list[SuiteSpec]:
    cases: list[SuiteSpec] = []
    for i in range(8):
        data = bytes([0xFF, 0xFE]) + rng.randbytes(rng.randint(1, 2000))  # never valid UTF-8 (0xFF)
        cases.append((f"binary garbage {i}", data, (("UTF-8", "text"),)))
    cases += [
        ("png header", b"\x89PNG\r\n\x1a\n" + rng.randbytes(64), (("UTF-8", "text"),)),
        ("gzip header", b"\x1f\x8b\x08\x00" + rng.randbytes(64), (("UTF-8", "text"),)),
        ("utf-16 suite", dump(BASE_GRID).encode("utf-16"), (("UTF-8", "text"),)),
        ("latin-1 suite", "name: caf\xe9\n".encode("latin-1") + dump(grid(name=DROP)).encode(), (("UTF-8", "text"),)),
        ("NUL bytes", b"\x00" * 64, ("YAML",)),
        ("control characters", b"frames: 1000\x01\x02\x03\nseeds: [0]\n", ("YAML",)),
        ("NUL inside a valid suite", dump(BASE_GRID).encode().replace(b"frames", b"fra\x00mes"), ("YAML",)),
    ]
    return cases


def missing_key_cases(rng: random.Random) -> list[SuiteSpec]:
    cases: list[SuiteSpec] = [(f"grid without {k}", dump(grid(**{k: DROP})), (f"'{k}'",))
                              for k in ("envs", "agents", "seeds", "frames")]
    cases += [
        ("no grid and no runs", dump(grid(envs=DROP, agents=DROP, bonuses=DROP)), ("'envs'", "'runs'")),
        ("only a name", "name: lonely\n", ("'envs'",)),
        ("bonuses without envs", dump(grid(envs=DROP)), ("'envs'",)),
        ("run entry without env", dump(with_runs({"env": DROP})), ("runs[0]", "'env'")),
        ("run entry without agent", dump(with_runs({"agent": DROP})), ("runs[0]", "'agent'")),
        ("runs without any seeds", dump(with_runs({"seeds": DROP}, seeds=DROP)), ("runs[0]", "'seeds'")),
        ("runs without any frames", dump(with_runs(frames=DROP)), ("runs[0]", "'frames'")),
    ]
    for i in range(3):  # the grid with a random one of its required keys gone, and the rest shuffled
        key = rng.choice(["envs", "agents", "seeds", "frames"])
        data = grid(**{key: DROP})
        items = list(data.items())
        rng.shuffle(items)
        cases.append((f"shuffled grid without {key} ({i})", dump(dict(items)), (f"'{key}'",)))
    return cases


def unknown_key_cases(rng: random.Random) -> list[SuiteSpec]:
    typos = ["frame", "seed", "env", "agent", "bonus", "override", "resource", "log-every", "logEvery", "Frames",
             "FRAMES", "checkpoint", "final-window", "run", "nmae", "desc", "workers", "out"]
    cases: list[SuiteSpec] = [(f"unknown key {k!r}", dump(grid(**{k: 1})), ("unknown key", repr(k), "frames"))
                              for k in typos]
    for _ in range(6):
        k = _unknown(rng, list(BASE_GRID) + ["runs"])
        cases.append((f"random unknown key {k!r}", dump(grid(**{k: rng.choice([1, "x", [1], None])})), (repr(k),)))
    for k in ["fráme", "日本", "🚀"]:
        cases.append((f"unicode unknown key {k!r}", dump(grid(**{k: 1})), (repr(k),)))
    cases += [
        ("integer key", dump(BASE_GRID) + "5: five\n", ("unknown key", "'5'")),
        ("boolean key", dump(BASE_GRID) + "true: 1\n", ("unknown key", "'True'")),
        ("null key", dump(BASE_GRID) + "~: 1\n", ("unknown key", "'None'")),
        ("list key", dump(BASE_GRID) + "? [a, b]\n: 1\n", (("unhashable", "unknown key"),)),
        ("unknown resource", dump(grid(resources={"gpus": 1})), ("resources", "'gpus'", "num_gpus")),
        ("unknown resource 2", dump(grid(resources={"num_cpus": 1, "memory": "8G"})), ("resources", "'memory'")),
        ("unknown run entry key", dump(with_runs({"colour": "red"})), ("runs[0]", "'colour'")),
        ("misspelt run entry key", dump(with_runs({"seedz": [0]})), ("runs[0]", "'seedz'")),
        ("run entry with frame", dump(with_runs({"frame": 10})), ("runs[0]", "'frame'")),
    ]
    return cases


def wrong_type_cases(rng: random.Random) -> list[SuiteSpec]:
    cases: list[SuiteSpec] = []

    def add(key: str, values: list[Any], must: tuple = (), builder: Callable[..., dict] = grid) -> None:
        for v in values:
            cases.append((f"{key} = {v!r}"[:80], dump(builder(**{key: v})), (f"'{key}", *must)))

    add("frames", ["abc", -5, 0, -1000, 1.5, 999.9, True, False, [1000], {"a": 1}, None, "", "1e99", 1e99,
                   -1e3, float("inf"), float("-inf"), float("nan"), 10**30, "ten", [], "1000 frames"],
        ("positive integer",))
    add("seeds", ["zero", "0", -1, [-1], [0, 0], [1, 1, 2], ["a"], [], {}, [1.5], True, [True], None, [0, None],
                  [[0]], 2**40, [2**64], -(2**31), {"0": 1}], ())
    add("envs", ["MiniGrid-Nope-v0", [], [1], {}, None, 5, [[ENV]], [ENV, "nope"], ["minigrid-doorkey-5x5-v0"],
                 [ENV.replace("5x5", "5x6")], [ENV + " "], True], ())
    add("agents", ["sac", [], [None], 3, {"ppo": 1}, ["PPO"], ["ppo", "sac"], [["ppo"]], True, [1.5]], ())
    add("bonuses", ["nope", [1], {}, [], ["rnd", "nope"], 3, ["RND"], [["rnd"]], True, ["rnd", 2.5], ["rnd-"]], ())
    add("name", ["", 5, [1], ".hidden", "a/b", "a b", "-x", None, "+x", "_x", "x" * 300, {"a": 1}, True], ())
    add("description", [5, [1], {"a": 1}, True, 1.5], ())
    add("overrides", ["x", [1], 5, True, [{"n_envs": 4}]], ("mapping",))
    add("resources", ["x", [1], 5, True, {"num_cpus": -1}, {"num_cpus": "a"}, {"num_cpus": True},
                      {"num_cpus": float("nan")}, {"num_gpus": float("inf")}, {"num_gpus": [1]},
                      {"num_cpus": None}, {"num_cpus": -0.5}], ())
    for key in ("log_every", "checkpoint_every"):
        add(key, ["abc", 0, -5, 1.5, [1], True, "1e99", {}, float("nan"), 10**40], ())
    add("final_window", [0, -1, "x", 1.5, True, [10], "10", 2**70], ("positive integer",))
    add("runs", ["x", [], [5], ["ppo"], {"env": ENV}, True, [None], [[ENV, "ppo"]]], (), with_runs)

    overrides: list[tuple[Any, tuple]] = [
        ({"nope.key": 1}, ("'nope'",)), ({"seed": 3}, ("'seed'",)), ({"env": "x"}, ("'env'",)),
        ({"frames": 10}, ("'frames'",)), ({"bonus.x": 1}, ("'bonus'",)), ({"": 1}, ("dotted",)),
        ({"a..b": 1}, ("'a..b'",)), ({".n_envs": 1}, ("'.n_envs'",)), ({"n_envs.": 1}, ("'n_envs.'",)),
        ({5: 1}, ("5",)), ({None: 1}, ("None",)),
        ({"hyperparameters..learning_rate": 1e-4}, ("hyperparameters..learning_rate",)),
        ({"hyperparameters": "x"}, ("'hyperparameters'",)), ({"hyperparameters": 5}, ("'hyperparameters'",)),
        ({"hyperparameters.learning_rate": "abc"}, ("hyperparameters.learning_rate", "'abc'")),
        ({"hyperparameters.learning_rate": [1e-4]}, ("hyperparameters.learning_rate",)),
        ({"hyperparameters.learning_rate": True}, ("hyperparameters.learning_rate",)),
        ({"hyperparameters.n_steps": 32.5}, ("hyperparameters.n_steps", "32.5")),
        ({"hyperparameters.n_steps": "many"}, ("hyperparameters.n_steps",)),
        ({"hyperparameters.n_steps": False}, ("hyperparameters.n_steps",)),
        ({"hyperparameters.gamma": True}, ("hyperparameters.gamma",)),
        ({"hyperparameters.gamma": {"a": 1}}, ("hyperparameters.gamma",)),
        ({"hyperparameters.normalize_advantage": "yes"}, ("hyperparameters.normalize_advantage",)),
        ({"hyperparameters.normalize_advantage": 1}, ("hyperparameters.normalize_advantage",)),
        ({"n_envs": "four"}, ("n_envs",)), ({"n_envs": [4]}, ("n_envs",)), ({"n_envs": 4.5}, ("n_envs",)),
        ({"n_envs.x": 1}, ("n_envs",)), ({"n_envs": None}, ("n_envs",)),
        ({"policy_kwargs.net_arch": "big"}, ("policy_kwargs.net_arch",)),
        ({"policy_kwargs.net_arch": 64}, ("policy_kwargs.net_arch",)),
        ({"policy_kwargs": [64]}, ("policy_kwargs",)),
        ({"intrinsic.int_coef": "lots"}, ("intrinsic.int_coef",)),
        ({"intrinsic.int_coef": [1]}, ("intrinsic.int_coef",)),
        ({"intrinsic": 1.0}, ("'intrinsic'",)), ({"policy": 5}, ("'policy'",)), ({"algo": ["ppo"]}, ("'algo'",)),
        ({"algo": "sac"}, ("algo",)),
        ({"env_kwargs": "x"}, ("env_kwargs",)), ({"bonus_kwargs": [1]}, ("bonus_kwargs",)),
        ({"n_envs": 0}, ("n_envs",)), ({"n_envs": -2}, ("n_envs",)),
    ]
    for value, must in overrides:
        cases.append((f"overrides = {value!r}"[:80], dump(grid(overrides=value)), ("override", *must)))
    # names unknown below a known key: refused up front when the agent is built, before any folder exists
    for value in ({"hyperparameters.no_such_param": 1}, {"policy_kwargs.no_such_kwarg": True}):
        must = ("building the agent", *(k.split(".")[-1] for k in value))
        cases.append((f"overrides = {value!r}", dump(grid(overrides=value)), must))
    for value, must in overrides[:12:3]:
        cases.append((f"run entry overrides = {value!r}"[:80], dump(with_runs({"overrides": value})),
                      ("runs[0]", *must)))

    entries: list[tuple[dict, tuple]] = [
        ({"env": 5}, ("env",)), ({"env": None}, ("env",)), ({"env": "MiniGrid-Nope-v0"}, ("'MiniGrid-Nope-v0'",)),
        ({"agent": 5}, ("agent",)), ({"agent": "sac"}, ("'sac'",)), ({"bonus": "nope"}, ("'nope'",)),
        ({"bonus": 5}, ("bonus",)), ({"seed": 0}, ("'seed'", "'seeds'")), ({"seeds": [-1]}, ("seeds",)),
        ({"seeds": "0"}, ("seeds",)), ({"frames": 0}, ("frames",)), ({"frames": "abc"}, ("frames",)),
        ({"overrides": 5}, ("overrides",)), ({"bonus": ["rnd"]}, ("bonus",)),
    ]
    for change, must in entries:
        cases.append((f"run entry {change!r}"[:80], dump(with_runs(change)), ("runs[0]", *must)))
    same_folder = with_runs()
    same_folder["runs"] = [dict(same_folder["runs"][0]), {**same_folder["runs"][0], "overrides": {"n_envs": 2}}]
    cases.append(("two runs in one folder with different configs", dump(same_folder), ("same folder",)))
    cases.append(("run entries not a list of mappings", dump(with_runs(runs=[BASE_RUNS["runs"][0], "x"])),
                  ("runs[1]",)))
    return cases


def tag_cases(rng: random.Random) -> list[SuiteSpec]:
    texts = [
        "!!python/object:os.system {}\n",
        "!!python/object/apply:os.system ['echo pwned > pwned.txt']\n",
        "frames: !!python/name:os.system\n",
        "frames: !!python/int 5\n",
        "seeds: !!python/tuple [0, 1]\n",
        "!!python/object/new:subprocess.Popen [['touch', 'pwned']]\n",
        dump(grid(frames=DROP)) + "frames: !!python/object/apply:builtins.int ['1000']\n",
        dump(grid(envs=DROP)) + "envs: !custom [x]\n",
        "frames: !<tag:yaml.org,2002:python/object:builtins.dict> {}\n",
        dump(grid(frames=DROP)) + "frames: !!python/long 1000\n",
        dump(grid(overrides=DROP)) + "overrides: !!python/dict {n_envs: 4}\n",
    ]
    cases: list[SuiteSpec] = [(f"yaml tag {i}", t, ("tags",)) for i, t in enumerate(texts)]
    # safe tags building values of the wrong type
    cases += [
        ("!!set seeds", dump(grid(seeds=DROP)) + "seeds: !!set {0: null, 1: null}\n", ("'seeds'",)),
        ("!!binary frames", dump(grid(frames=DROP)) + "frames: !!binary AAAA\n", ("'frames'",)),
        ("!!timestamp frames", dump(grid(frames=DROP)) + "frames: !!timestamp 2001-12-14\n", ("'frames'",)),
        ("!!str seeds", dump(grid(seeds=DROP)) + "seeds: !!str 0\n", ("'seeds'",)),
        ("!!omap overrides", dump(grid(overrides=DROP)) + "overrides: !!omap [{n_envs: 4}]\n", ("'overrides'",)),
        ("!!bool name", dump(grid(name=DROP)) + "name: !!bool true\n", ("'name'",)),
    ]
    return cases


def huge_cases(rng: random.Random) -> list[SuiteSpec]:
    cases: list[SuiteSpec] = [
        ("frames 10**30", dump(grid(frames=10**30)), ("'frames'",)),
        ("frames 2**63", dump(grid(frames=2**63)), ("'frames'",)),
        ("frames 1.0e+99", dump(grid(frames=1e99)), ("'frames'",)),
        ("frames of 5000 digits", dump(grid(frames=DROP)) + "frames: " + "9" * 5000 + "\n", (("'frames'", "digits"),)),
        ("seed of 5000 digits", dump(grid(seeds=DROP)) + "seeds: [" + "7" * 5000 + "]\n", (("'seeds'", "digits"),)),
        ("seed 10**30", dump(grid(seeds=[10**30])), ("'seeds'",)),
        ("seed 2**32", dump(grid(seeds=[2**32])), ("'seeds'",)),
        ("log_every 10**40", dump(grid(log_every=10**40)), ("'log_every'",)),
        ("20000 seeds, one negative", dump(grid(seeds=list(range(20000)) + [-1])), ("'seeds'",)),
        ("20000 envs, one unknown", dump(grid(envs=[ENV] * 20000 + ["nope"])), ("'nope'",)),
        ("a name of 300 characters", dump(grid(name="n" * 300)), ("'name'",)),
        ("a name of 10000 characters, no --out", dump(grid(name="n" * 10000)), ("'name'",)),
        ("an unknown key of 10000 characters", dump(grid(**{"k" * 10000: 1})), ("unknown key", "kkkkkkkk")),
        ("deeply nested list", dump(grid(overrides=DROP)) + "overrides: " + "[" * 3000 + "]" * 3000 + "\n",
         (("overrides", "nested"),)),
        ("deeply nested mapping", "{a: " * 3000 + "1" + "}" * 3000 + "\n", (("nested", "mapping"),)),
        ("billion laughs", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
         + dump(grid(overrides=DROP)) + "overrides: {bonus_kwargs.x: *i}\n", (("large", "'a'"),)),
        ("billion laughs in overrides only", dump(grid(overrides=DROP))
         + "overrides:\n  env_kwargs.z: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"  env_kwargs.{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
         (("large", "overrides"),)),
        ("self-referencing alias", dump(grid(overrides=DROP)) + "overrides: {env_kwargs.x: &r [*r]}\n",
         (("large", "recursive", "overrides"),)),
    ]
    return cases


def unicode_and_escape_cases(rng: random.Random) -> list[SuiteSpec]:
    cases: list[SuiteSpec] = []
    for i, name in enumerate(UNICODE_NAMES):
        key = ["envs", "agents", "bonuses", "name"][i % 4]
        cases.append((f"unicode {key} {name!r}", dump(grid(**{key: [name] if key != "name" else name})), (f"'{key}",)))
    for i, name in enumerate(ESCAPING_NAMES):
        key = ["name", "envs", "agents", "bonuses"][i % 4]
        cases.append((f"escaping {key} {name!r}", dump(grid(**{key: [name] if key != "name" else name})), (f"'{key}",)))
    cases += [
        ("escaping override key", dump(grid(overrides={"../x": 1})), ("'../x'",)),
        ("escaping run entry env", dump(with_runs({"env": "../../x"})), ("runs[0]", "'../../x'")),
        ("newline in an env id", dump(grid(envs=["Mini\nGrid"])), ("'envs",)),
        ("NUL in a bonus", dump(grid(bonuses=["rnd\x00"])), ("'bonuses",)),
    ]
    return cases


SUITE_FAMILIES: dict[str, Callable[[random.Random], list[SuiteSpec]]] = {
    "yaml_syntax": yaml_syntax_cases,
    "top_level": top_level_cases,
    "empty": empty_cases,
    "binary": binary_cases,
    "missing_keys": missing_key_cases,
    "unknown_keys": unknown_key_cases,
    "wrong_types": wrong_type_cases,
    "yaml_tags": tag_cases,
    "huge": huge_cases,
    "unicode_and_escaping": unicode_and_escape_cases,
}


def suite_cases(family: str, folder: Path) -> list[Case]:
    rng = random.Random(f"explore_bench-fuzz-{family}")
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for i, (label, content, must) in enumerate(SUITE_FAMILIES[family](rng)):
        path = folder / f"{family}_{i:03d}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        out = folder / "out" / f"{family}_{i:03d}"
        argv = ["run", str(path), "--workers", "0", "--no-progress", "--no-leaderboard"]
        if "no --out" not in label:
            argv += ["--out", str(out)]
        cases.append(Case(label, argv, (str(path), *must), out=out))
    return cases


def test_base_suites_are_valid(tmp_path):
    """The suites the cases break are valid: each case fails because of what it broke, nothing else."""
    for i, data in enumerate((BASE_GRID, BASE_RUNS)):
        path = tmp_path / f"base{i}.yaml"
        path.write_text(dump(data))
        assert load_suite(path).runs


@pytest.mark.parametrize("family", sorted(SUITE_FAMILIES))
def test_malformed_suite_files(family, tmp_path, capsys, no_training):
    cases = suite_cases(family, tmp_path / "suites")
    assert len(cases) >= 5
    run_cases(cases, capsys, no_training)


# ------------------------------------------------------------------------------------------------------------
# Command lines
# ------------------------------------------------------------------------------------------------------------
TRAIN = ["train", ENV, "--frames", "100", "--no-progress"]


def cli_subcommand_cases(rng: random.Random, tmp: Path) -> list[Case]:
    cases = [Case("no arguments", [], ("COMMAND",))]
    words = ["trian", "rn", "leaderbord", "plots", "List", "TRAIN", "", "-", "run-suite", "help", "noise", "tarin"]
    words += [_unknown(rng, ["list", "train", "run", "leaderboard", "plot", "noise-robustness"]) for _ in range(8)]
    words += ["тренировка", "🚀", "../run", "train\x00"]
    for w in words:
        cases.append(Case(f"unknown command {w!r}", [w], (("invalid choice", "COMMAND", "unrecognized"),)))
    for flag in ["--frames", "--version", "-x", "--out", "--seed=1"]:
        cases.append(Case(f"option before the command {flag!r}", [flag], ()))
    return cases


def cli_missing_cases(rng: random.Random, tmp: Path) -> list[Case]:
    out = tmp / "out_missing"
    raw = [
        (["train"], ("required",)), (["train", ENV], ("--frames",)), (["train", "--frames", "100"], ("env",)),
        (["run"], ("suite",)), (["leaderboard"], ("dir",)), (["plot"], ("dir",)),
        (["train", ENV, "--frames"], ("--frames",)), (["train", ENV, "--frames", "100", "--seed"], ("--seed",)),
        (["train", ENV, "--frames", "100", "--set"], ("--set",)),
        (["train", ENV, "--frames", "100", "--agent"], ("--agent",)),
        (["train", ENV, "--frames", "100", "--bonus"], ("--bonus",)),
        (["train", ENV, "--frames", "100", "--out"], ("--out",)),
        (["run", "smoke", "--out"], ("--out",)), (["run", "smoke", "--workers"], ("--workers",)),
        (["run", "smoke", "--backend"], ("--backend",)), (["plot", str(tmp), "--resamples"], ("--resamples",)),
        (["leaderboard", str(tmp), "--threshold"], ("--threshold",)),
        (["noise-robustness", "--seeds"], ("--seeds",)),
        (["list", "extra"], ("unrecognized",)), (["list", "--out", "x"], ("unrecognized",)),
        ([*TRAIN, "--bogus"], ("--bogus",)), ([*TRAIN, "extra", "args"], ("unrecognized",)),
        (["run", "smoke", "--frames", "100", "--out", str(out)], ("--frames",)),
        (["run", "smoke", "other", "--out", str(out)], ("unrecognized",)),
        (["leaderboard", str(tmp), str(tmp)], ("unrecognized",)),
        ([*TRAIN, "--log-every"], ("--log-every",)), ([*TRAIN, "--workers", "2"], ("--workers",)),
    ]
    for _ in range(5):
        flag = "--" + _word(rng)
        raw.append(([*TRAIN, flag, "1"], (flag,)))
    return [Case(f"missing/extra {a[:4]}", [*a], m, out=out) for a, m in raw]


def cli_train_id_cases(rng: random.Random, tmp: Path) -> list[Case]:
    cases = []
    envs = [ENV.replace("5x5", "5x6"), ENV.lower(), ENV + " ", " " + ENV, "", "MiniGrid", "CartPole-v1",
            "explore_bench/nope", "explore_bench/", *ESCAPING_NAMES[:5], *UNICODE_NAMES[:4]]
    envs += [_unknown(rng, list_envs(), string.ascii_letters + "-0123456789") for _ in range(8)]
    for i, env in enumerate(envs):
        out = tmp / f"out_env_{i}"
        cases.append(Case(f"train unknown env {env!r}", ["train", env, "--frames", "100", "--out", str(out)],
                          (("unknown env id", "env"),), out=out))
    agents = ["PPO", "sac", "", " ppo", "ppo ", *ESCAPING_NAMES[:4], *UNICODE_NAMES[4:7]]
    agents += [_unknown(rng, list_agents()) for _ in range(6)]
    for i, agent in enumerate(agents):
        out = tmp / f"out_agent_{i}"
        cases.append(Case(f"train unknown agent {agent!r}", [*TRAIN, "--agent", agent, "--out", str(out)],
                          ("agent", repr(agent)), out=out))
    bonuses = ["RND", "rnd,icm", "rnd ", "nothing", "0", "false", *ESCAPING_NAMES[:4], *UNICODE_NAMES[5:8]]
    bonuses += [_unknown(rng, list_bonuses()) for _ in range(6)]
    for i, bonus in enumerate(bonuses):
        out = tmp / f"out_bonus_{i}"
        cases.append(Case(f"train unknown bonus {bonus!r}", [*TRAIN, "--bonus", bonus, "--out", str(out)],
                          ("--bonus", repr(bonus)), out=out))
    return cases


def cli_number_cases(rng: random.Random, tmp: Path) -> list[Case]:
    cases = []
    frames = ["abc", "-5", "1e99", "0", "1.5", "nan", "inf", "-inf", "", " ", "0x10", "1e-3", "-0", "1,000", "10**6",
              "1e1000", "9" * 50, "9" * 5000, "1000 frames", "0.0", "-1e6", "1e12x", "1e13"]
    frames += [_word(rng) for _ in range(4)]
    for i, value in enumerate(frames):
        out = tmp / f"out_frames_{i}"
        option = ["--frames", "--log-every", "--checkpoint-every"][i % 3]
        argv = ["train", ENV, "--frames", value if option == "--frames" else "100", "--out", str(out), "--no-progress"]
        if option != "--frames":
            argv += [option, value]
        cases.append(Case(f"train {option} {value[:20]!r}", argv, (option,), out=out))
    seeds = ["-1", "abc", "1.5", "", "1e3", "0x1", "9" * 30, str(2**32), str(2**63), "-99", "one", "1 2", "nan"]
    for i, value in enumerate(seeds):
        out = tmp / f"out_seed_{i}"
        argv = [*TRAIN, "--seed", value, "--out", str(out)]
        cases.append(Case(f"train --seed {value[:20]!r}", argv, ("--seed",), out=out))
    return cases


def cli_set_cases(rng: random.Random, tmp: Path) -> list[Case]:
    sets: list[tuple[str, tuple]] = [
        ("novalue", ("KEY=VALUE",)), ("=1", ("KEY=VALUE",)), ("", ("KEY=VALUE",)), ("=", ("KEY=VALUE",)),
        (" =1", ("KEY=VALUE",)), ("hyperparameters.learning_rate", ("KEY=VALUE",)),
        ("nope=1", ("'nope'",)),
        ("hyperparams.lr=1", ("hyperparams",)), ("Hyperparameters.gamma=0.9", ("Hyperparameters",)),
        ("seed=3", ("--seed",)), ("env=x", ("ENV",)), ("agent=a2c", ("--agent",)), ("bonus=rnd", ("--bonus",)),
        ("frames=1", ("--frames",)), ("a..b=1", ("a..b",)), (".x=1", ("'.x'",)), ("x.=1", ("'x.'",)),
        ("hyperparameters..learning_rate=1e-4", ("hyperparameters..learning_rate",)),
        ("hyperparameters.learning_rate=abc", ("hyperparameters.learning_rate", "'abc'")),
        ("hyperparameters.learning_rate=[1e-4]", ("hyperparameters.learning_rate",)),
        ("hyperparameters.learning_rate=true", ("hyperparameters.learning_rate",)),
        ("hyperparameters.learning_rate=", ("hyperparameters.learning_rate",)),
        ("hyperparameters.n_steps=1.5", ("hyperparameters.n_steps",)),
        ("hyperparameters.n_steps=1e3", ("hyperparameters.n_steps",)),
        ("hyperparameters.gamma=[0.9]", ("hyperparameters.gamma",)),
        ("hyperparameters.normalize_advantage=maybe", ("hyperparameters.normalize_advantage",)),
        ("hyperparameters=5", ("'hyperparameters'",)),
        ("n_envs=[1,2]", ("n_envs",)), ("n_envs=true", ("n_envs",)), ("n_envs=four", ("n_envs",)),
        ("n_envs=[1", ("n_envs",)), ("n_envs={a: 1}", ("n_envs",)), ("n_envs.x=1", ("n_envs",)),
        ("intrinsic.int_coef=lots", ("intrinsic.int_coef",)),
        ("policy_kwargs.net_arch=big", ("policy_kwargs.net_arch",)),
        ("hyperparamètres.lr=1", ("hyperparamètres",)), ("../x=1", ("'../x'",)),
        # unknown below a known key, or a value no agent can be built with: refused before the run folder exists
        ("hyperparameters.no_such_param=1", ("no_such_param",)), ("n_envs=0", ("n_envs",)),
        ("n_envs=-1", ("n_envs",)), ("algo=sac", ("algo",)),
    ]
    for _ in range(4):
        key = _word(rng)
        sets.append((f"{key}={rng.randint(0, 9)}", (repr(key),)))
    cases = []
    for i, (item, must) in enumerate(sets):
        out = tmp / f"out_set_{i}"
        argv = [*TRAIN, "--bonus", rng.choice(["none", "rnd", "count"]), "--set", item, "--out", str(out)]
        cases.append(Case(f"train --set {item[:40]!r}", argv, ("explore-bench: error", *must), out=out))
    # the bad --set among good ones
    for i, (item, must) in enumerate(sets[6:40:6]):
        out = tmp / f"out_sets_{i}"
        argv = [*TRAIN, "--set", "n_envs=4", "--set", item, "--set", "hyperparameters.n_steps=32", "--out", str(out)]
        cases.append(Case(f"train good --set then {item[:40]!r}", argv, must, out=out))
    return cases


def cli_run_cases(rng: random.Random, tmp: Path) -> list[Case]:
    cases = []
    existing_dir = tmp / "a_folder.yaml"
    existing_dir.mkdir()
    missing = [str(tmp / "missing.yaml"), str(tmp / "no" / "such" / "dir" / "s.yml"), "nope.yaml", "nope.yml",
               str(existing_dir), str(tmp), ".", "", "./", "../", "/", "smoke.yaml", "envs/", "SMOKE"]
    missing += [_unknown(rng, list_suites()) for _ in range(6)]
    missing += [str(tmp / (_word(rng) + rng.choice([".yaml", ".yml", ".txt", ""]))) for _ in range(4)]
    for i, suite in enumerate(missing):
        out = tmp / f"out_run_{i}"
        must = ((suite or "''", "suite"),)
        cases.append(Case(f"run {suite.replace(str(tmp), 'TMP')!r}", ["run", suite, "--out", str(out)], must, out=out))
    flags: list[tuple[list[str], tuple]] = [
        (["--workers", "-1"], ("--workers",)),
        (["--workers", "abc"], ("--workers",)), (["--workers", "1.5"], ("--workers",)),
        (["--workers", ""], ("--workers",)), (["--workers", "-100"], ("--workers",)),
        (["--backend", "ray", "--workers", "0"], ("--workers 0",)),
        (["--backend", "ray", "--address", "auto", "--workers", "2"], ("--workers",)),
        (["--backend", "slurm"], ("--backend",)),
        (["--backend", ""], ("--backend",)), (["--backend", "RAY"], ("--backend",)),
        (["--backend", "local,ray"], ("--backend",)), (["--backend", "dask"], ("--backend",)),
        (["--address", "auto"], ("--address",)), (["--max-retries", "1"], ("--max-retries",)),
        (["--max-retries", "-1"], ("--max-retries",)), (["--threshold", "abc"], ("--threshold",)),
        (["--threshold", ""], ("--threshold",)),
    ]
    for i, (extra, must) in enumerate(flags):
        out = tmp / f"out_flags_{i}"
        cases.append(Case(f"run smoke {' '.join(extra)}", ["run", "smoke", "--out", str(out), *extra], must, out=out))
    return cases


def cli_results_cases(rng: random.Random, tmp: Path) -> list[Case]:
    cases = []
    empty = tmp / "empty"
    empty.mkdir()
    junk = tmp / "junk"
    (junk / "sub").mkdir(parents=True)
    (junk / "notes.txt").write_text("hello")
    a_file = tmp / "a_file.txt"
    a_file.write_text("not a folder")
    summaries = [b"", b"{", b"[]", b"null", b"42", b'{"status": "finished"}', b"\xff\xfe garbage", b'{"env": 1}',
                 b'{"status": "finished", "env": "x", "agent": "ppo", "bonus": null, "seed": "zero", "final": {}}']
    bad_runs = []
    for i, text in enumerate(summaries):
        d = tmp / f"bad_summary_{i}"
        (d / "env" / "ppo" / "seed_0").mkdir(parents=True)
        (d / "env" / "ppo" / "seed_0" / "summary.json").write_bytes(text)
        bad_runs.append(d)
    folders: list[tuple[Path, tuple, Path | None]] = [
        (tmp / "missing", ("does not exist",), None), (tmp / "no" / "such", ("does not exist",), None),
        (empty, ("no", "run"), empty), (junk, ("no", "run"), junk), (a_file, (str(a_file),), None),
    ]
    folders += [(tmp / _word(rng), ("does not exist",), None) for _ in range(4)]
    folders += [(d, ("summary",), d) for d in bad_runs]
    for i, (folder, must, watch) in enumerate(folders):
        for command in ("leaderboard", "plot"):
            out = tmp / f"out_{command}_{i}"
            argv = [command, str(folder), "--out", str(out)] if i % 2 else [command, str(folder)]
            cases.append(Case(f"{command} {folder.name}", argv, must, out=out, watch=watch))
    extra: list[tuple[list[str], tuple]] = [
        (["plot", str(empty), "--resamples", "0"], ("--resamples",)),
        (["plot", str(empty), "--resamples", "-1"], ("--resamples",)),
        (["plot", str(empty), "--resamples", "abc"], ("--resamples",)),
        (["plot", str(empty), "--threshold", "x"], ("--threshold",)),
        (["leaderboard", str(empty), "--threshold", "abc"], ("--threshold",)),
        (["leaderboard", str(empty), "--bogus"], ("--bogus",)), (["leaderboard", ""], (("does not exist", "no"),)),
    ]
    cases += [Case(f"{a[0]} {a[2:]}", a, m, watch=empty) for a, m in extra]
    # noise-robustness: bad names and sizes are refused before any work
    noise: list[tuple[list[str], tuple]] = [
        (["--bonuses", "nope"], ("'nope'",)),
        (["--bonuses", "rnd,nope"], ("'nope'",)), (["--worlds", "nowhere"], ("'nowhere'",)),
        (["--bonuses", ","], ("--bonuses",)), (["--worlds", ","], ("--worlds",)), (["--seeds", "0"], ("--seeds",)),
        (["--seeds", "-1"], ("--seeds",)), (["--updates", "0"], ("--updates",)), (["--k-tv", "abc"], ("--k-tv",)),
        (["--seq-len", "0"], ("--seq-len",)), (["--bonuses", "../rnd"], ("'../rnd'",)),
    ]
    for i, (a, m) in enumerate(noise):
        out = tmp / f"out_noise_{i}"
        argv = ["noise-robustness", *a, "--out", str(out), "--no-progress"]
        cases.append(Case(f"noise-robustness {a}", argv, m, out=out))
    return cases


CLI_FAMILIES: dict[str, Callable[[random.Random, Path], list[Case]]] = {
    "subcommands": cli_subcommand_cases,
    "missing_and_extra": cli_missing_cases,
    "train_ids": cli_train_id_cases,
    "numbers": cli_number_cases,
    "set": cli_set_cases,
    "run": cli_run_cases,
    "results_folders": cli_results_cases,
}


def cli_cases(family: str, tmp: Path) -> list[Case]:
    tmp.mkdir(parents=True, exist_ok=True)
    return CLI_FAMILIES[family](random.Random(f"explore_bench-fuzz-cli-{family}"), tmp)


@pytest.mark.parametrize("family", sorted(CLI_FAMILIES))
def test_malformed_command_lines(family, tmp_path, capsys, no_training):
    cases = cli_cases(family, tmp_path / "cli")
    assert len(cases) >= 5
    run_cases(cases, capsys, no_training)


def test_cases_are_deterministic_and_enough(tmp_path):
    n_suites = n_lines = 0
    for family, make in SUITE_FAMILIES.items():
        seed = f"explore_bench-fuzz-{family}"
        cases = make(random.Random(seed))
        assert cases == make(random.Random(seed)), family
        n_suites += len(cases)
    for family in CLI_FAMILIES:
        runs = [cli_cases(family, tmp_path / name) for name in ("first", "second")]
        texts = [repr([(c.label, c.argv, c.must) for c in cases]).replace(str(tmp_path / name), "TMP")
                 for cases, name in zip(runs, ("first", "second"))]
        assert texts[0] == texts[1], family
        n_lines += len(runs[0])
    assert n_suites >= 200 and n_lines >= 200, (n_suites, n_lines)
