"""Where the declarative YAML lives: `agents/` (hyperparameters) and `envs/` (suites).

In a source checkout they are the top-level folders; in an installed wheel they ship as
`explore_bench.configs.agents` / `explore_bench.configs.envs`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def config_dir(kind: str) -> Path:
    """The folder holding the YAML files of `kind` ("agents" or "envs")."""
    if kind not in ("agents", "envs"):
        raise ValueError(f"config kind must be 'agents' or 'envs', got {kind!r}")
    source = _REPO_ROOT / kind
    if source.is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return source
    return Path(str(resources.files(f"explore_bench.configs.{kind}")))


def available(kind: str) -> list[str]:
    """Names (file stems) of the YAML files of `kind`."""
    return sorted(p.stem for p in config_dir(kind).glob("*.yaml"))
