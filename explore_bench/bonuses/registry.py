"""Bonuses registered by name, so suites and the CLI can refer to them as strings."""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

import gymnasium as gym
import torch

from explore_bench.bonuses.base import Bonus

_REGISTRY: dict[str, type[Bonus]] = {}
# Built-in bonuses, imported on first use so that `import explore_bench.bonuses` stays light.
_BUILTIN_MODULES = ("rnd", "rdd", "icm", "count", "simhash", "e3b", "byol_explore", "byol_hindsight", "empowerment",
                    "go_explore_cells", "toponav", "bd_novelty", "repexp")

B = TypeVar("B", bound=type[Bonus])


def register_bonus(name: str) -> Callable[[B], B]:
    """Class decorator: `@register_bonus("rnd")` makes the class available to `make_bonus("rnd", ...)`."""

    def decorator(cls: B) -> B:
        if is_mixture_expression(name):
            raise ValueError(f"bonus name {name!r}: '+' and '*' are reserved for mixtures such as 0.5*rnd+count")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a bonus named {name!r} is already registered ({_REGISTRY[name].__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"explore_bench.bonuses.{module}")


def list_bonuses() -> list[str]:
    """Names of all registered bonuses, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def is_mixture_expression(name: object) -> bool:
    """True for a weighted sum of bonuses such as "0.5*empowerment+rnd" (registered names have no '+' or '*')."""
    return isinstance(name, str) and ("+" in name or "*" in name)


def bonus_class(name: str) -> type[Bonus]:
    """The class registered under `name`; a `KeyError` lists the valid names.

    A mixture expression ("0.5*empowerment+rnd", see `explore_bench.bonuses.mixture`) gives `BonusMixture` once
    the expression is checked: an unknown component is a `KeyError` listing the valid names, bad syntax a
    `ValueError`.
    """
    _load_builtins()
    if is_mixture_expression(name):
        from explore_bench.bonuses.mixture import BonusMixture, parse_mixture  # it builds on this module

        parse_mixture(name)
        return BonusMixture
    if name not in _REGISTRY:
        raise KeyError(f"unknown bonus {name!r}; registered bonuses: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_bonus(
    name: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    device: str | torch.device = "cpu",
    **overrides,
) -> Bonus:
    """Build the bonus registered as `name` for the given spaces; `overrides` set its hyperparameters.

    `name` may be a weighted sum of registered bonuses, "0.5*empowerment+rnd": a `BonusMixture`, whose
    components take their hyperparameters as `overrides` named after them (`rnd={"lr": 1e-4}`).
    """
    cls = bonus_class(name)
    if is_mixture_expression(name):
        overrides = {"expression": name, **overrides}
    try:
        return cls(observation_space, action_space, device=device, **overrides)
    except TypeError as error:
        if "unexpected keyword" in str(error):
            raise TypeError(f"bonus {name!r}: {error}") from None
        raise
