"""Suites: declarative YAML files of envs x agents x bonuses x seeds with a frame budget and overrides.

    name: smoke
    frames: 30000
    seeds: [0, 1]
    envs: [MiniGrid-DoorKey-5x5-v0]
    agents: [ppo]
    bonuses: [null, rnd, count]   # null = no bonus
    overrides: {}                 # dotted keys into the resolved config: {hyperparameters.learning_rate: 1.0e-4}
    resources: {num_cpus: 1, num_gpus: 0}   # per run (for the Ray backend)
    log_every: 10000              # optional: progress row cadence in frames (rows are written at rollout ends)
    checkpoint_every: 50000       # optional: checkpoint cadence in frames
    final_window: 100             # optional: summary "final" metrics = means over the last N episodes
    runs:                         # optional: explicit entries with their own overrides (merged over the top ones)
      - {env: MiniGrid-DoorKey-5x5-v0, agent: ppo, bonus: rnd, seeds: [0], overrides: {intrinsic.int_coef: 0.5}}

The grid (``envs`` x ``agents`` x ``bonuses`` x ``seeds``) and the explicit ``runs`` are both optional, but a
suite needs at least one of them. ``load_suite`` validates strictly and resolves every run with
``resolve_config`` before anything is run: a malformed file raises ``ConfigError`` naming the file, the key and
what was expected.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from explore_bench.agents.factory import (
    AGENT_ALGOS,
    SCHEDULED_HYPERPARAMETERS,
    STANDALONE_ALGOS,
    ConfigError,
    apply_overrides,
    list_agents,
    resolve_config,
)
from explore_bench.bonuses import list_bonuses
from explore_bench.bonuses.registry import bonus_class, is_mixture_expression
from explore_bench.envs import NAMESPACE, list_envs
from explore_bench.paths import available, config_dir

__all__ = [
    "RunSpec",
    "Suite",
    "config_hash",
    "coerce_value",
    "list_suites",
    "load_suite",
    "method_name",
    "parse_suite",
    "run_dir_for",
    "make_run_spec",
]

SUITE_KEYS = {
    "name", "description", "frames", "seeds", "envs", "agents", "bonuses", "overrides", "resources", "runs",
    "log_every", "checkpoint_every", "final_window",
}
RUN_ENTRY_KEYS = {"env", "agent", "bonus", "seed", "seeds", "frames", "overrides"}
RESOURCE_KEYS = {"num_cpus", "num_gpus"}
IDENTITY_KEYS = ("env", "agent", "bonus", "seed", "frames")
DEFAULT_RESOURCES = {"num_cpus": 1, "num_gpus": 0}
DEFAULT_FINAL_WINDOW = 100
MAX_FRAMES = 10**12  # frame budgets, cadences and windows above this are typos (1e99), not settings
MAX_SEED = 2**31 - 1  # numpy seeds stop at 2**32 - 1, and a run also seeds seed + 1, seed + n_envs - 1, ...
MAX_NAME_LENGTH = 100  # the default output folder is runs/<name>
MAX_NODES = 100_000  # values in a suite file, aliases expanded: more is an alias bomb, not a suite

_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def method_name(agent: str, bonus: str | None) -> str:
    """``agent`` or ``agent+bonus`` (the leaderboard's method name)."""
    return str(agent) if bonus is None else f"{agent}+{bonus}"


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _safe(part: str) -> str:
    """One path component: characters unsafe in file names replaced by '_', never empty, '.', '..' or hidden."""
    out = re.sub(r"[^A-Za-z0-9._+-]+", "_", str(part))
    return out if _NAME_RE.match(out) else "_" + out


def run_dir_for(out_dir: str | os.PathLike, env: str, agent: str, bonus: str | None, seed: int) -> Path:
    """``OUT/<env>/<method>/seed_<s>`` (characters unsafe in file names replaced by '_'; a name such as '..'
    becomes '_..': a run folder is always inside ``out_dir``)."""
    path = Path(out_dir) / _safe(env) / _safe(method_name(agent, bonus)) / f"seed_{int(seed)}"
    base = os.path.abspath(out_dir)
    if os.path.commonpath([base, os.path.abspath(path)]) != base:  # cannot happen with _safe; kept as a guard
        raise ConfigError(f"run folder {path} would lie outside the output folder {out_dir}")
    return path


def config_hash(config: Mapping[str, Any]) -> str:
    """Hash of a resolved config without its seed (runs of one method differ only by seed)."""
    payload = {k: v for k, v in config.items() if k != "seed"}
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def coerce_value(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string: turn numeric-looking strings (in overrides) into floats/ints."""
    if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
        text = value.strip()
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    if isinstance(value, dict):
        return {k: coerce_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [coerce_value(v) for v in value]
    return value


def _short(value: Any, limit: int = 100) -> str:
    """``repr(value)``, cut to about ``limit`` characters (an error message is one line, not a dump of the input)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {_short(value)}" if value is not None else "null"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_frames(value: Any, where: str) -> int:
    """A positive frame count: an int, or an integral float such as 1.0e6."""
    given = value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not _is_int(value) or not 0 < value <= MAX_FRAMES:
        raise ConfigError(f"{where}: expected a positive integer number of frames (at most {MAX_FRAMES:.0e}), "
                          f"got {_describe(given)}")
    return int(value)


def _as_pos_int(value: Any, where: str) -> int:
    if not _is_int(value) or not 0 < value <= MAX_FRAMES:
        raise ConfigError(f"{where}: expected a positive integer (at most {MAX_FRAMES:.0e}), got {_describe(value)}")
    return int(value)


def _as_str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of names, got {_describe(value)}")
    return list(value)


def _is_seed(value: Any) -> bool:
    return _is_int(value) and 0 <= value <= MAX_SEED


def _as_seeds(value: Any, where: str) -> list[int]:
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(_is_seed(v) for v in value):
        bad = [f" (item {i} is {_describe(v)})" for i, v in enumerate(value) if not _is_seed(v)][:1] \
            if isinstance(value, list) else []
        raise ConfigError(f"{where}: expected a non-empty list of non-negative integers (at most 2**31 - 1), "
                          f"got {_describe(value)}{''.join(bad)}")
    if len(set(value)) != len(value):
        repeated = next(v for v, n in Counter(value).items() if n > 1)
        raise ConfigError(f"{where}: duplicate seed {repeated} in {_short(value)}")
    return [int(v) for v in value]


def _as_bonus(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a bonus name or null, got {_describe(value)}")
    if is_mixture_expression(value):  # a weighted sum of registered bonuses, e.g. 0.5*empowerment+rnd
        try:
            bonus_class(value)
        except (KeyError, ValueError) as error:
            raise ConfigError(f"{where}: {error.args[0]}; valid bonuses: {', '.join(list_bonuses())}") from None
    elif value not in list_bonuses():
        raise ConfigError(
            f"{where}: unknown bonus {_short(value)}; valid bonuses: {', '.join(list_bonuses())} (or null)"
        )
    return value


def _check_env(value: str, where: str) -> str:
    key = value[len(NAMESPACE) + 1:] if value.startswith(NAMESPACE + "/") else value
    if key not in list_envs():
        raise ConfigError(f"{where}: unknown env id {_short(value)}; valid ids: {', '.join(list_envs())}")
    return value


def _check_agent(value: str, where: str) -> str:
    if value not in list_agents():
        raise ConfigError(f"{where}: unknown agent {_short(value)}; valid agents: {', '.join(list_agents())}")
    return value


def _as_overrides(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of dotted keys to values, got {_describe(value)}")
    out = {}
    for key, v in value.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(
                f"{where}: expected dotted string keys such as 'hyperparameters.learning_rate', got {_short(key)}"
            )
        if key.split(".")[0] in IDENTITY_KEYS:
            raise ConfigError(
                f"{where}.{key}: {key.split('.')[0]!r} cannot be overridden; set it with the suite keys "
                f"(envs, agents, bonuses, seeds, frames) instead"
            )
        out[key] = coerce_value(v)
    return out


def _check_mapping(value: Any, allowed: set[str], where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
    unknown = sorted(str(k) if len(str(k)) <= 60 else f"{str(k)[:60]}..." for k in value if k not in allowed)
    if unknown:
        shown = unknown[:10] + ([f"... {len(unknown) - 10} more"] if len(unknown) > 10 else [])
        raise ConfigError(f"{where}: unknown key(s) {shown}; expected keys among {sorted(allowed)}")
    return value


def _kind_error(old: Any, new: Any) -> str | None:
    """What an override of a default ``old`` by ``new`` should have been, or None if ``new`` fits. Catches, before
    anything runs, the values that SB3 would take and fail with in the middle of training (``gamma: "abc"``)."""
    if old is None:
        return None  # no default to compare with
    if isinstance(old, bool):
        return None if isinstance(new, bool) else "true or false"
    if isinstance(old, int):  # or a list: SB3 takes (n, unit) for some counts (DQN's train_freq: [1, episode])
        return None if _is_int(new) or isinstance(new, list) else "an integer"
    if isinstance(old, float):
        ok = (_is_int(new) or isinstance(new, float)) and math.isfinite(new)
        return None if ok else "a finite number"
    if isinstance(old, str):
        return None if isinstance(new, str) else "a string"
    if isinstance(old, list):  # SB3 also takes a mapping for list-valued settings such as net_arch
        return None if isinstance(new, (list, dict)) else "a list"
    if isinstance(old, dict):
        return None if isinstance(new, dict) else "a mapping"
    return None


def _check_override_values(base: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str) -> None:
    """Each dotted key well formed and each value of the kind of the default it replaces (where there is one)."""
    for key, value in overrides.items():
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"{prefix}override {_short(key)}: expected a dotted key such as "
                              f"'hyperparameters.learning_rate' (no empty part)")
        node: Any = base
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or parts[-1] not in node:
            continue  # a new key: the agent build (check_build) checks that its consumer takes it
        default = node[parts[-1]]
        if parts[0] == "hyperparameters" and parts[-1] in SCHEDULED_HYPERPARAMETERS:
            if isinstance(value, dict):
                continue  # a schedule: the agent build checks its keys
            default = 0.0  # a number may replace a number or a schedule
        expected = _kind_error(default, value)
        if expected is not None:
            raise ConfigError(f"{prefix}override {_short(key)}: expected {expected} (the default is "
                              f"{_short(node[parts[-1]])}), got {_describe(value)}")
    if "algo" in overrides and overrides["algo"] not in AGENT_ALGOS:
        raise ConfigError(f"{prefix}override 'algo': expected one of {sorted(AGENT_ALGOS)}, "
                          f"got {_describe(overrides['algo'])}")


@dataclass
class RunSpec:
    """One run of a suite: identity, resolved config and runner settings (picklable, for worker processes)."""

    env: str
    agent: str
    bonus: str | None
    seed: int
    frames: int
    config: dict[str, Any]
    config_hash: str
    overrides: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    log_every: int | None = None
    checkpoint_every: int | None = None
    final_window: int = DEFAULT_FINAL_WINDOW
    source: str = ""

    @property
    def method(self) -> str:
        return method_name(self.agent, self.bonus)

    @property
    def label(self) -> str:
        return f"{self.env}/{self.method}/seed_{self.seed}"

    def run_dir(self, out_dir: str | os.PathLike) -> Path:
        return run_dir_for(out_dir, self.env, self.agent, self.bonus, self.seed)


@dataclass
class Suite:
    name: str
    path: Path | None
    runs: list[RunSpec]
    resources: dict[str, Any]
    description: str = ""
    text: str = ""  # the YAML source (copied into the output folder)


def make_run_spec(
    env: str,
    agent: str,
    bonus: str | None,
    seed: int,
    frames: int,
    overrides: Mapping[str, Any] | None = None,
    source: str = "",
    **settings: Any,
) -> RunSpec:
    """Resolve one run's config (validating names and overrides); errors are ConfigError prefixed by ``source``."""
    prefix = f"{source}: " if source else ""
    overrides = dict(overrides or {})
    try:
        base = resolve_config(env, agent, bonus, seed, frames)
    except KeyError as e:
        raise ConfigError(f"{prefix}{e.args[0]}") from None
    for key in overrides:
        top = key.split(".")[0]
        if top not in base or top in IDENTITY_KEYS:
            valid = sorted(k for k in base if k not in IDENTITY_KEYS)
            raise ConfigError(
                f"{prefix}override {_short(key)}: unknown top-level key {_short(top)}; expected one of {valid}"
            )
    _check_override_values(base, overrides, prefix)
    try:
        config = apply_overrides(base, overrides)
    except ConfigError as e:
        raise ConfigError(f"{prefix}{e}") from None
    n_envs = config.get("n_envs")
    if config["algo"] not in STANDALONE_ALGOS and (not _is_int(n_envs) or not 0 < n_envs <= 4096):  # SB3 fails on 0 with a bare IndexError
        where = "override 'n_envs'" if "n_envs" in overrides else f"agent {agent!r}: key 'n_envs'"
        raise ConfigError(f"{prefix}{where}: expected a number of parallel envs from 1 to 4096, "
                          f"got {_describe(n_envs)}")
    return RunSpec(
        env=env, agent=agent, bonus=bonus, seed=int(seed), frames=int(frames), config=config,
        config_hash=config_hash(config), overrides=overrides, source=source, **settings,
    )


def parse_suite(data: Any, source: str = "<suite>", resolve: bool = True) -> Suite:
    """Validate the parsed YAML of a suite and (with ``resolve``) resolve every run's config."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {_describe(data)}")
    _check_mapping(data, SUITE_KEYS, source)

    name = data.get("name", _safe(Path(source).stem)[:MAX_NAME_LENGTH] if source else "suite")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: key 'name': expected a non-empty string, got {_describe(name)}")
    if not _NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:  # the default output folder is runs/<name>
        raise ConfigError(  # no '/', '..' or hidden names
            f"{source}: key 'name': expected at most {MAX_NAME_LENGTH} letters, digits and . _ + - (not starting "
            f"with . _ + -), got {_short(name)}"
        )
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{source}: key 'description': expected a string, got {_describe(description)}")

    has_grid = any(k in data for k in ("envs", "agents", "bonuses"))
    if not has_grid and "runs" not in data:
        raise ConfigError(f"{source}: missing key 'envs' (with 'agents', 'seeds' and 'frames'); or give explicit 'runs'")

    frames = _as_frames(data["frames"], f"{source}: key 'frames'") if "frames" in data else None
    seeds = _as_seeds(data["seeds"], f"{source}: key 'seeds'") if "seeds" in data else None
    overrides = _as_overrides(data.get("overrides"), f"{source}: key 'overrides'")

    resources = dict(DEFAULT_RESOURCES)
    if data.get("resources") is not None:
        res = _check_mapping(data["resources"], RESOURCE_KEYS, f"{source}: key 'resources'")
        for k, v in res.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < math.inf:
                raise ConfigError(
                    f"{source}: key 'resources.{k}': expected a non-negative finite number, got {_describe(v)}"
                )
            resources[k] = v

    settings: dict[str, Any] = {"resources": resources}
    for key in ("log_every", "checkpoint_every"):
        if data.get(key) is not None:
            settings[key] = _as_frames(data[key], f"{source}: key {key!r}")
    if data.get("final_window") is not None:
        settings["final_window"] = _as_pos_int(data["final_window"], f"{source}: key 'final_window'")

    # (env, agent, bonus, seed, frames, overrides, where) before resolution
    planned: list[tuple[str, str, str | None, int, int, dict, str]] = []
    if has_grid:
        for key in ("envs", "agents", "seeds", "frames"):
            if key not in data:
                raise ConfigError(f"{source}: missing key {key!r} (required with 'envs'/'agents'/'bonuses')")
        envs = _as_str_list(data["envs"], f"{source}: key 'envs'")
        agents = _as_str_list(data["agents"], f"{source}: key 'agents'")
        raw_bonuses = data.get("bonuses", [None])
        if raw_bonuses is None or isinstance(raw_bonuses, str):
            raw_bonuses = [raw_bonuses]
        if not isinstance(raw_bonuses, list) or not raw_bonuses:
            raise ConfigError(f"{source}: key 'bonuses': expected a non-empty list of bonus names or null, got {_describe(raw_bonuses)}")
        bonuses = [_as_bonus(b, f"{source}: key 'bonuses[{i}]'") for i, b in enumerate(raw_bonuses)]
        for i, e in enumerate(envs):
            _check_env(e, f"{source}: key 'envs[{i}]'")
        for i, a in enumerate(agents):
            _check_agent(a, f"{source}: key 'agents[{i}]'")
        for seed in seeds:
            for env in envs:
                for agent in agents:
                    for bonus in bonuses:
                        planned.append((env, agent, bonus, seed, frames, overrides, source))

    if "runs" in data:
        entries = data["runs"]
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{source}: key 'runs': expected a non-empty list of run entries, got {_describe(entries)}")
        for i, entry in enumerate(entries):
            where = f"{source}: key 'runs[{i}]'"
            _check_mapping(entry, RUN_ENTRY_KEYS, where)
            for key in ("env", "agent"):
                if key not in entry:
                    raise ConfigError(f"{where}: missing key {key!r}")
            env = entry["env"]
            if not isinstance(env, str):
                raise ConfigError(f"{where}.env: expected an env id, got {_describe(env)}")
            _check_env(env, f"{where}.env")
            agent = entry["agent"]
            if not isinstance(agent, str):
                raise ConfigError(f"{where}.agent: expected an agent name, got {_describe(agent)}")
            _check_agent(agent, f"{where}.agent")
            bonus = _as_bonus(entry.get("bonus"), f"{where}.bonus")
            if "seed" in entry and "seeds" in entry:
                raise ConfigError(f"{where}: give 'seed' or 'seeds', not both")
            if "seed" in entry:
                entry_seeds = _as_seeds(entry["seed"], f"{where}.seed")
            elif "seeds" in entry:
                entry_seeds = _as_seeds(entry["seeds"], f"{where}.seeds")
            elif seeds is not None:
                entry_seeds = seeds
            else:
                raise ConfigError(f"{where}: missing key 'seeds' (and no top-level 'seeds')")
            if "frames" in entry:
                entry_frames = _as_frames(entry["frames"], f"{where}.frames")
            elif frames is not None:
                entry_frames = frames
            else:
                raise ConfigError(f"{where}: missing key 'frames' (and no top-level 'frames')")
            entry_overrides = {**overrides, **_as_overrides(entry.get("overrides"), f"{where}.overrides")}
            for seed in entry_seeds:
                planned.append((env, agent, bonus, seed, entry_frames, entry_overrides, f"{source} runs[{i}]"))

    runs: list[RunSpec] = []
    if resolve:
        by_dir: dict[tuple, RunSpec] = {}
        for env, agent, bonus, seed, fr, ov, where in planned:
            spec = make_run_spec(env, agent, bonus, seed, fr, ov, source=where, **copy.deepcopy(settings))
            key = (env, spec.method, seed)
            if key in by_dir:
                if by_dir[key].config_hash != spec.config_hash:
                    raise ConfigError(
                        f"{source}: two runs map to the same folder {spec.label} with different configs "
                        f"({by_dir[key].source} and {where}); put them in separate suites / output folders"
                    )
                continue  # the same run listed twice
            by_dir[key] = spec
            runs.append(spec)
    return Suite(name=name, path=None, runs=runs, resources=resources, description=description)


def list_suites() -> list[str]:
    """Names of the built-in suites (the YAML files in the top-level ``envs/`` folder)."""
    return available("envs")


def suite_path(name_or_path: str | os.PathLike) -> Path:
    """The file of a built-in suite name, or ``name_or_path`` itself if it is a file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists() or os.sep in str(name_or_path):
        if not p.is_file():
            raise ConfigError(f"suite file {p} {'is a folder, not a YAML file' if p.is_dir() else 'does not exist'}")
        return p
    if str(name_or_path) in list_suites():
        return config_dir("envs") / f"{name_or_path}.yaml"
    raise ConfigError(
        f"unknown suite {str(name_or_path)!r}; built-in suites: {', '.join(list_suites()) or '(none)'}; "
        f"or give the path of a YAML file"
    )


class _SuiteLoader(yaml.SafeLoader):
    """``yaml.safe_load`` (no tag can build a Python object or run code) that also refuses duplicate keys, which
    plain YAML resolves silently by keeping the last one (``frames: 1000`` ... ``frames: 1e6``)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_short(key_node.value, 60)} (first on line {seen[key] + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One line: what PyYAML found and where (its own message spans several lines, with a caret)."""
    problem = getattr(e, "problem", None)
    mark = getattr(e, "problem_mark", None)
    if problem is None:  # e.g. a ReaderError: an unacceptable character
        text = str(e)
    else:
        context = getattr(e, "context", None)
        text = (f"{problem}" + (f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "")
                + (f" ({context})" if context else ""))
    text = " ".join(text.replace('in "<unicode string>", ', "").split())
    if isinstance(e, yaml.constructor.ConstructorError) and "constructor for the tag" in str(problem):
        return f"refused: a suite is plain YAML, tags such as !!python/object are not allowed ({text})"
    return f"not valid YAML: {text}"


def _check_size(data: Any, where: str) -> None:
    """Refuse more than MAX_NODES values, aliases expanded (a 'billion laughs' file, or one referencing itself),
    before anything walks the data recursively."""
    stack, count = [data], 0
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ConfigError(f"{where}: too large: more than {MAX_NODES} values once YAML aliases (*name) are "
                              f"expanded, or an alias that contains itself; a suite is a short list of settings")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            stack.extend(value)


def load_suite(name_or_path: str | os.PathLike, resolve: bool = True) -> Suite:
    """Load, validate and (with ``resolve``) resolve a suite: a built-in name (``smoke``) or a YAML path."""
    path = suite_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{path}: not a YAML text file (not UTF-8: byte {e.start} is {e.object[e.start]:#04x})"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the suite file ({e.strerror or e})") from None
    try:
        data = yaml.load(text, Loader=_SuiteLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: lists or mappings nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())[:200]}") from None
    if data is None:
        raise ConfigError(f"{path}: the suite file is empty; expected a mapping with keys such as name, frames, seeds, "
                          f"envs, agents, bonuses")
    _check_size(data, str(path))
    suite = parse_suite(data, source=str(path), resolve=resolve)
    suite.path = path
    suite.text = text
    return suite
