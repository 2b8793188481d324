"""A weighted sum of registered bonuses is itself a bonus: `make_bonus("0.5*empowerment+rnd", ...)`.

The expression is `[weight*]name` terms joined by `+`, weights positive numbers (1 when omitted), each
registered bonus at most once. It is not registered itself (`list_bonuses()` lists the base bonuses); the
registry's `make_bonus` and `bonus_class` recognise an expression by its `+` or `*`, so a mix is a one-line
suite entry (`bonuses: [empowerment+rnd]`). Component hyperparameters are keyword arguments named after the
component: `make_bonus("empowerment+rnd", obs_space, act_space, rnd={"lr": 1e-4}, empowerment={"horizon": 2})`.

Each component's raw reward is divided by the running std of its own discounted intrinsic return (the
agent's `IntrinsicRewardNormalizer`, same gamma) before the weighted sum. Why per component: the agent
normalises the sum with one scale, and raw scales differ by orders of magnitude (RND's squared error ~1e-3,
empowerment ~1 nat) and drift apart (novelty decays with visits, empowerment does not), so summed raw the
largest component would dominate and the weights would not mean what they say. Normalised first, each
component pays in units of its own return std and `w_i` sets its share; the agent's outer normalisation then
divides every component by the same number, which cannot change their ratio.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from explore_bench.bonuses.base import ArrayLike, Bonus, Transitions
from explore_bench.bonuses.normalization import IntrinsicRewardNormalizer
from explore_bench.bonuses.registry import list_bonuses, make_bonus

_WEIGHT = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(rf"\s*(?:(?P<weight>{_WEIGHT})\s*\*\s*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*")  # [weight*]name
_SYNTAX = "[weight*]name terms joined by '+', e.g. 0.5*empowerment+rnd"


def _quoted(expression: str, limit: int = 80) -> str:
    """`repr` of an expression, cut to `limit` characters: error messages stay one readable line."""
    return repr(expression if len(expression) <= limit else expression[:limit] + "...")


def parse_mixture(expression: str) -> list[tuple[float, str]]:
    """`[(weight, name), ...]` of a mixture expression, in its order.

    Raises `ValueError` (syntax, a weight that is not a positive finite number, a repeated bonus) or `KeyError`
    (a name that is not registered; the message lists the registered ones).
    """
    terms: list[tuple[float, str]] = []
    position, shown = 0, _quoted(expression)
    while True:
        match = _TERM.match(expression, position)
        if match is None:
            raise ValueError(f"bonus mixture {shown}: cannot parse at character {position}; expected {_SYNTAX}")
        weight = float(match["weight"]) if match["weight"] is not None else 1.0
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"bonus mixture {shown}: weight of {match['name']!r} must be a positive number")
        terms.append((weight, match["name"]))
        position = match.end()
        if position == len(expression):
            break
        if expression[position] != "+":
            raise ValueError(f"bonus mixture {shown}: cannot parse at character {position}; expected {_SYNTAX}")
        position += 1
    names = [name for _, name in terms]
    registered = list_bonuses()
    for name in names:
        if name not in registered:
            raise KeyError(f"unknown bonus {name!r} in mixture {shown}; registered bonuses: {', '.join(registered)}")
        if names.count(name) > 1:
            raise ValueError(f"bonus mixture {shown}: {name!r} appears twice; give it one weight instead")
    return terms


def canonical_expression(terms: list[tuple[float, str]]) -> str:
    """The expression of `terms` with weights of 1 left out: `[(0.5, "empowerment"), (1.0, "rnd")]` ->
    `"0.5*empowerment+rnd"`."""
    return "+".join(name if weight == 1.0 else f"{weight:g}*{name}" for weight, name in terms)


class BonusMixture(Bonus):
    """`sum_i w_i * r_i / std_i`: the weighted sum of component bonuses, each normalised as the agent does.

    Args:
        expression: the mixture, e.g. "0.5*empowerment+rnd" (set by `make_bonus` from the name).
        normalize_components: divide each component by the running std of its discounted intrinsic return
            before summing (True; False sums raw rewards).
        gamma: discount of those returns (0.99, the agent's `gamma_int` default).
        **component_overrides: `name={...}` hyperparameters of the component `name`.

    Component i is seeded with `seed + i`. `compute` advances each component's normaliser (and streaming
    components' episodic state) by one batch, so call it once per batch of new transitions from the same N
    envs, as the agent does.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        expression: str = "",
        normalize_components: bool = True,
        gamma: float = 0.99,
        **component_overrides: Mapping[str, Any],
    ) -> None:
        terms = parse_mixture(expression)
        self.name = canonical_expression(terms)  # errors below and in `validate` name the mixture
        names = [name for _, name in terms]
        for key, value in component_overrides.items():
            if key not in names or not isinstance(value, Mapping):
                raise TypeError(
                    f"got an unexpected keyword argument {key!r}: component hyperparameters are keyword arguments "
                    f"named after a component ({', '.join(names)}), each a dict"
                )
        super().__init__(observation_space, action_space, device, seed)
        self.weights = {name: weight for weight, name in terms}
        self.components = {
            name: make_bonus(name, observation_space, action_space, device, seed=self.seed + i,
                             **dict(component_overrides.get(name, {})))
            for i, name in enumerate(names)
        }  # fmt: skip
        self.normalize_components = bool(normalize_components)
        self.normalizers = {name: IntrinsicRewardNormalizer(gamma) for name in names}
        novelty = all(component.family == "novelty" for component in self.components.values())
        self.family = "novelty" if novelty else "mixed"

    # ---------------------------------------------------------------- contract
    def compute(self, batch: Transitions) -> np.ndarray:
        t_len, n_envs = self.validate(batch)
        total = np.zeros((t_len, n_envs), np.float64)
        for name, component in self.components.items():
            raw = component.compute(batch)
            if self.normalize_components and t_len > 0:
                self._check_envs(self.normalizers[name], n_envs)
                raw = self.normalizers[name].normalize(raw)
            total += self.weights[name] * raw
        return total.astype(np.float32)

    def update(self, batch: Transitions) -> dict[str, float]:
        stats: dict[str, float] = {}
        losses = []
        for name, component in self.components.items():
            component_stats = component.update(batch)
            stats.update({f"{name}_{key}": float(value) for key, value in component_stats.items()})
            stats[f"{name}_return_std"] = self.normalizers[name].std
            losses.append(component_stats.get("loss", math.nan))
        finite = [loss for loss in losses if math.isfinite(loss)]
        return {"loss": float(sum(finite)) if finite else math.nan, **stats}

    def warm_up(self, batch: Transitions) -> None:
        for component in self.components.values():
            component.warm_up(batch)

    def reset(self, mask: ArrayLike | None = None) -> None:
        """Forward an episode reset to the components that keep episodic state."""
        for component in self.components.values():
            if hasattr(component, "reset"):
                component.reset(mask)

    def state_dict(self) -> dict[str, Any]:
        return {
            "expression": self.name,
            "components": {name: component.state_dict() for name, component in self.components.items()},
            "normalizers": {name: normalizer.state_dict() for name, normalizer in self.normalizers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("expression") != self.name:
            raise ValueError(f"bonus '{self.name}': the state is of the mixture {state.get('expression')!r}")
        for name, component in self.components.items():
            component.load_state_dict(state["components"][name])
            self.normalizers[name].load_state_dict(state["normalizers"][name])

    # ----------------------------------------------------------------- helpers
    def _check_envs(self, normalizer: IntrinsicRewardNormalizer, n_envs: int) -> None:
        """The discounted returns are per env: a batch from another number of envs cannot continue them."""
        tracked = normalizer.filter.rewems
        if tracked is not None and tracked.shape != (n_envs,):
            self._fail(f"batches from the same {tracked.shape[0]} envs as the first compute", f"N = {n_envs}")
