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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from explore_bench.agents.factory import ConfigError, apply_overrides, list_agents, resolve_config
from explore_bench.bonuses import list_bonuses
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


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_frames(value: Any, where: str) -> int:
    """A positive frame count: an int, or an integral float such as 1.0e6."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not _is_int(value) or value <= 0:
        raise ConfigError(f"{where}: expected a positive integer number of frames, got {_describe(value)}")
    return int(value)


def _as_pos_int(value: Any, where: str) -> int:
    if not _is_int(value) or value <= 0:
        raise ConfigError(f"{where}: expected a positive integer, got {_describe(value)}")
    return int(value)


def _as_str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of names, got {_describe(value)}")
    return list(value)


def _as_seeds(value: Any, where: str) -> list[int]:
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(_is_int(v) and v >= 0 for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of non-negative integers, got {_describe(value)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: duplicate seeds in {value}")
    return [int(v) for v in value]


def _as_bonus(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a bonus name or null, got {_describe(value)}")
    if value not in list_bonuses():
        raise ConfigError(f"{where}: unknown bonus {value!r}; valid bonuses: {', '.join(list_bonuses())} (or null)")
    return value


def _check_env(value: str, where: str) -> str:
    key = value[len(NAMESPACE) + 1:] if value.startswith(NAMESPACE + "/") else value
    if key not in list_envs():
        raise ConfigError(f"{where}: unknown env id {value!r}; valid ids: {', '.join(list_envs())}")
    return value


def _check_agent(value: str, where: str) -> str:
    if value not in list_agents():
        raise ConfigError(f"{where}: unknown agent {value!r}; valid agents: {', '.join(list_agents())}")
    return value


def _as_overrides(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of dotted keys to values, got {_describe(value)}")
    out = {}
    for key, v in value.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"{where}: expected dotted string keys such as 'hyperparameters.learning_rate', got {key!r}")
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
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; expected keys among {sorted(allowed)}")
    return value


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
            raise ConfigError(f"{prefix}override {key!r}: unknown top-level key {top!r}; expected one of {valid}")
    try:
        config = apply_overrides(base, overrides)
    except ConfigError as e:
        raise ConfigError(f"{prefix}{e}") from None
    return RunSpec(
        env=env, agent=agent, bonus=bonus, seed=int(seed), frames=int(frames), config=config,
        config_hash=config_hash(config), overrides=overrides, source=source, **settings,
    )


def parse_suite(data: Any, source: str = "<suite>", resolve: bool = True) -> Suite:
    """Validate the parsed YAML of a suite and (with ``resolve``) resolve every run's config."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {_describe(data)}")
    _check_mapping(data, SUITE_KEYS, source)

    name = data.get("name", _safe(Path(source).stem) if source else "suite")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: key 'name': expected a non-empty string, got {_describe(name)}")
    if not _NAME_RE.match(name):  # the default output folder is runs/<name>: no '/', '..' or hidden names
        raise ConfigError(
            f"{source}: key 'name': expected letters, digits and . _ + - (not starting with . _ + -), got {name!r}"
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
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{source}: key 'resources.{k}': expected a non-negative number, got {_describe(v)}")
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
            raise ConfigError(f"suite file {p} does not exist")
        return p
    if str(name_or_path) in list_suites():
        return config_dir("envs") / f"{name_or_path}.yaml"
    raise ConfigError(
        f"unknown suite {str(name_or_path)!r}; built-in suites: {', '.join(list_suites()) or '(none)'}; "
        f"or give the path of a YAML file"
    )


def load_suite(name_or_path: str | os.PathLike, resolve: bool = True) -> Suite:
    """Load, validate and (with ``resolve``) resolve a suite: a built-in name (``smoke``) or a YAML path."""
    path = suite_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)  # safe_load: no tag can build a Python object or run code
    except yaml.constructor.ConstructorError as e:
        first = " ".join(str(e).split())
        raise ConfigError(f"{path}: refused: a suite is plain YAML, tags such as !!python/object are not "
                          f"allowed ({first})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    suite = parse_suite(data, source=str(path), resolve=resolve)
    suite.path = path
    suite.text = text
    return suite
