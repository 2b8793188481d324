"""Bandit tasks and task families (spec bandits.md §4.2).

A ``Task`` is one bandit instance (the arm means); a task family is a distribution over tasks, the "meta" part of
meta-RL. Families are built by name with ``make_family``::

    fam = make_family("bernoulli_gap", n_arms=5, delta=0.2)
    task = fam.sample(rng)                # Task: means (5,), family, params (delta, best), best_arm
    means = fam.sample_batch(rng, 1000)   # (1000, 5), vectorised; the same distribution as sample()

``sample(rng)`` makes the same draws as the first row of ``sample_batch(rng, n)`` from the same generator state, so
scalar and batched code see the same tasks for the same seed (up to floating-point rounding).

Families (defaults in brackets; every one except ``gaussian`` has Bernoulli rewards):

- ``bernoulli_uniform``: mu_k ~ U[0, 1] i.i.d. (RL²).
- ``bernoulli_gap`` [delta=0.2]: best arm b ~ U{0..K-1}; mu_b = 0.5 + delta/2, the others 0.5 - delta/2 (Explore-ICL).
- ``gaussian`` [m0=0, s0=1, sigma=1]: mu_k ~ N(m0, s0²) i.i.d.; rewards N(mu_a, sigma²).
- ``dependent_two_arm``: p ~ U[0, 1], mu = (p, 1 - p); needs n_arms=2.
- ``one_good_arm_zipf`` [s=1.5, p_hi=0.8, p_lo=0.3]: best arm b with P(b=k) ∝ (k+1)^-s; mu_b = p_hi, others p_lo.
- ``latent_linear`` [d=2, kappa=2, feature_seed=0]: fixed unit arm features x_k in R^d (drawn once per family from
  ``feature_seed``); theta ~ N(0, I_d) per task; mu_k = sigmoid(kappa x_k·theta). One pull informs the other arms.
- ``resampled_each_pull`` [base="bernoulli_uniform", plus the base's parameters]: the base family with the flag
  ``resample_each_pull=True``; ``MetaBanditEnv`` then draws a fresh task before every pull (no recurring
  structure: the Exploit-All ablation). Its tasks are the base's tasks (``Task.family`` names the base).
"""

from __future__ import annotations

import inspect
import operator
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

RewardType = Literal["bernoulli", "gaussian"]

__all__ = [
    "FAMILIES",
    "BernoulliGap",
    "BernoulliUniform",
    "DependentTwoArm",
    "Gaussian",
    "LatentLinear",
    "OneGoodArmZipf",
    "ResampledEachPull",
    "Task",
    "TaskFamily",
    "make_family",
]


@dataclass(frozen=True, eq=False)
class Task:
    """One bandit instance.

    ``means``: float64 array (K,) of arm means (stored as a read-only copy); ``family``: name of the family that drew
    it (``"custom"`` for hand-made tasks); ``params``: the family parameters and the task's latent draws (e.g.
    ``{"delta": 0.2, "best": 3}``); ``best_arm``: argmax of ``means``, lowest index on ties (derived, not an
    argument). Equality is identity (``eq=False``): compare ``means`` to compare tasks.
    """

    means: np.ndarray
    family: str = "custom"
    params: dict[str, Any] = field(default_factory=dict)
    best_arm: int = field(init=False)

    def __post_init__(self) -> None:
        means = np.array(self.means, dtype=np.float64)  # a copy: the caller's array may change later
        if means.ndim != 1 or means.size < 2 or not np.all(np.isfinite(means)):
            raise ValueError(f"Task.means must be a finite 1-D array of >= 2 arm means, got {self.means!r}")
        means.setflags(write=False)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "best_arm", int(np.argmax(means)))  # np.argmax: first maximiser = lowest index

    def __reduce__(self):
        # Rebuild through __init__ so an unpickled task (e.g. from a SubprocVecEnv worker) is validated and read-only.
        return Task, (self.means, self.family, self.params)


@runtime_checkable
class TaskFamily(Protocol):
    """A distribution over tasks with ``n_arms`` arms.

    ``reward_type`` says how a pull of arm a is rewarded: ``"bernoulli"`` (r ~ Bernoulli(mu_a)) or ``"gaussian"``
    (r ~ N(mu_a, sigma²)); ``sigma`` is the Gaussian noise std (None for Bernoulli families).
    ``resample_each_pull`` asks the env to draw a fresh task before every pull. ``prior()`` returns the parameters a
    Bayesian baseline may use (always with a ``"type"`` key).
    """

    name: str
    n_arms: int
    reward_type: RewardType
    sigma: float | None
    resample_each_pull: bool

    def sample(self, rng: np.random.Generator) -> Task: ...

    def sample_batch(self, rng: np.random.Generator, n: int) -> np.ndarray: ...

    def prior(self) -> dict[str, Any]: ...


def check_int(value: Any, what: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (ints and numpy integers only), else ``ValueError`` naming ``what``."""
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {v}")
    return v


def check_choice(values: tuple[Any, ...], value: Any, what: str) -> Any:
    """``value`` if it is one of ``values``, else ``ValueError`` naming ``what``."""
    if value not in values:
        raise ValueError(f"{what} must be one of {values}, got {value!r}")
    return value


def _finite(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a finite number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return v


class _Family(ABC):
    """Shared machinery of the built-in families: ``_draw(rng, n)`` returns the (n, K) means and the per-task latent
    draws (arrays with leading dim n); ``sample`` and ``sample_batch`` both go through it."""

    name: str
    reward_type: RewardType = "bernoulli"
    sigma: float | None = None
    resample_each_pull = False

    def __init__(self, n_arms: int):
        self.n_arms = check_int(n_arms, f"{self.name}: n_arms", 2)

    @abstractmethod
    def _draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    @abstractmethod
    def prior(self) -> dict[str, Any]: ...

    def config(self) -> dict[str, Any]:
        """The family's parameters (copied into every task's ``params``)."""
        return {}

    def sample(self, rng: np.random.Generator) -> Task:
        means, latent = self._draw(rng, 1)
        params = self.config() | {k: (v[0].item() if v[0].ndim == 0 else v[0].copy()) for k, v in latent.items()}
        return Task(means[0], self.name, params)

    def sample_batch(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self._draw(rng, check_int(n, f"{self.name}: n", 1))[0]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}(n_arms={self.n_arms}{', ' if args else ''}{args})"


class BernoulliUniform(_Family):
    """``bernoulli_uniform``: mu_k ~ U[0, 1] i.i.d., Bernoulli rewards (RL²)."""

    name = "bernoulli_uniform"

    def _draw(self, rng, n):
        return rng.uniform(size=(n, self.n_arms)), {}

    def prior(self):
        return {"type": "beta", "alpha": 1.0, "beta": 1.0}


class BernoulliGap(_Family):
    """``bernoulli_gap``: one best arm (uniform position) at 0.5 + delta/2, the others at 0.5 - delta/2."""

    name = "bernoulli_gap"

    def __init__(self, n_arms: int, delta: float = 0.2):
        super().__init__(n_arms)
        self.delta = _finite(delta, "bernoulli_gap: delta")
        if not 0.0 < self.delta <= 1.0:
            raise ValueError(f"bernoulli_gap: delta must be in (0, 1], got {delta!r}")
        self.mu_hi = 0.5 + self.delta / 2
        self.mu_lo = 0.5 - self.delta / 2

    def config(self):
        return {"delta": self.delta}

    def _draw(self, rng, n):
        best = rng.integers(self.n_arms, size=n)
        means = np.full((n, self.n_arms), self.mu_lo)
        means[np.arange(n), best] = self.mu_hi
        return means, {"best": best}

    def prior(self):
        return {
            "type": "one_good_arm",
            "best_probs": np.full(self.n_arms, 1.0 / self.n_arms),
            "mu_hi": self.mu_hi,
            "mu_lo": self.mu_lo,
        }


class Gaussian(_Family):
    """``gaussian``: mu_k ~ N(m0, s0²) i.i.d.; a pull of arm a returns N(mu_a, sigma²)."""

    name = "gaussian"
    reward_type = "gaussian"

    def __init__(self, n_arms: int, m0: float = 0.0, s0: float = 1.0, sigma: float = 1.0):
        super().__init__(n_arms)
        self.m0 = _finite(m0, "gaussian: m0")
        self.s0 = _finite(s0, "gaussian: s0")
        self.sigma = _finite(sigma, "gaussian: sigma")
        if self.s0 <= 0 or self.sigma <= 0:
            raise ValueError(f"gaussian: s0 and sigma must be > 0, got s0={s0!r}, sigma={sigma!r}")

    def config(self):
        return {"m0": self.m0, "s0": self.s0, "sigma": self.sigma}

    def _draw(self, rng, n):
        return rng.normal(self.m0, self.s0, size=(n, self.n_arms)), {}

    def prior(self):
        return {"type": "gaussian", "m0": self.m0, "s0": self.s0, "sigma": self.sigma}


class DependentTwoArm(_Family):
    """``dependent_two_arm``: p ~ U[0, 1], mu = (p, 1 - p): pulling one arm tells about the other."""

    name = "dependent_two_arm"

    def __init__(self, n_arms: int = 2):
        super().__init__(n_arms)
        if self.n_arms != 2:
            raise ValueError(f"dependent_two_arm: n_arms must be 2, got {n_arms!r}")

    def _draw(self, rng, n):
        p = rng.uniform(size=n)
        return np.stack([p, 1.0 - p], axis=1), {"p": p}

    def prior(self):
        return {"type": "dependent_two_arm", "p": "uniform"}


class OneGoodArmZipf(_Family):
    """``one_good_arm_zipf``: best arm b with P(b=k) ∝ (k+1)^-s (low indices are likelier: recurring structure);
    mu_b = p_hi, the others p_lo."""

    name = "one_good_arm_zipf"

    def __init__(self, n_arms: int, s: float = 1.5, p_hi: float = 0.8, p_lo: float = 0.3):
        super().__init__(n_arms)
        self.s = _finite(s, "one_good_arm_zipf: s")
        self.p_hi = _finite(p_hi, "one_good_arm_zipf: p_hi")
        self.p_lo = _finite(p_lo, "one_good_arm_zipf: p_lo")
        if self.s < 0:
            raise ValueError(f"one_good_arm_zipf: s must be >= 0, got {s!r}")
        if not 0.0 <= self.p_lo < self.p_hi <= 1.0:
            raise ValueError(f"one_good_arm_zipf: need 0 <= p_lo < p_hi <= 1, got p_lo={p_lo!r}, p_hi={p_hi!r}")
        w = np.arange(1, self.n_arms + 1, dtype=np.float64) ** -self.s
        self.best_probs = w / w.sum()

    def config(self):
        return {"s": self.s, "p_hi": self.p_hi, "p_lo": self.p_lo}

    def _draw(self, rng, n):
        best = rng.choice(self.n_arms, size=n, p=self.best_probs)
        means = np.full((n, self.n_arms), self.p_lo)
        means[np.arange(n), best] = self.p_hi
        return means, {"best": best}

    def prior(self):
        return {"type": "one_good_arm", "best_probs": self.best_probs.copy(), "mu_hi": self.p_hi, "mu_lo": self.p_lo}


class LatentLinear(_Family):
    """``latent_linear``: mu_k = sigmoid(kappa x_k·theta), theta ~ N(0, I_d) per task, unit features x_k fixed per
    family (drawn from ``feature_seed``, so every family built with the same arguments has the same features)."""

    name = "latent_linear"

    def __init__(self, n_arms: int, d: int = 2, kappa: float = 2.0, feature_seed: int = 0):
        super().__init__(n_arms)
        self.d = check_int(d, "latent_linear: d", 1)
        self.kappa = _finite(kappa, "latent_linear: kappa")
        if self.kappa <= 0:
            raise ValueError(f"latent_linear: kappa must be > 0, got {kappa!r}")
        self.feature_seed = check_int(feature_seed, "latent_linear: feature_seed", 0)
        x = np.random.default_rng(self.feature_seed).normal(size=(self.n_arms, self.d))
        self.features = x / np.linalg.norm(x, axis=1, keepdims=True)

    def config(self):
        return {"d": self.d, "kappa": self.kappa, "feature_seed": self.feature_seed}

    def _draw(self, rng, n):
        theta = rng.normal(size=(n, self.d))
        return 1.0 / (1.0 + np.exp(-self.kappa * theta @ self.features.T)), {"theta": theta}

    def prior(self):
        return {"type": "latent_linear", "features": self.features.copy(), "kappa": self.kappa, "theta_cov": 1.0}


class ResampledEachPull:
    """``resampled_each_pull``: ``base`` with ``resample_each_pull=True`` (the env draws a fresh task before every
    pull). Everything else (tasks, batches, prior, reward type) is the base family's."""

    name = "resampled_each_pull"
    resample_each_pull = True

    def __init__(self, base: TaskFamily):
        if base.resample_each_pull:
            raise ValueError("resampled_each_pull: the base family already resamples each pull")
        self.base = base
        self.n_arms = base.n_arms
        self.reward_type = base.reward_type
        self.sigma = base.sigma

    def sample(self, rng: np.random.Generator) -> Task:
        return self.base.sample(rng)

    def sample_batch(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.base.sample_batch(rng, n)

    def prior(self) -> dict[str, Any]:
        return self.base.prior()

    def __repr__(self) -> str:
        return f"ResampledEachPull({self.base!r})"


#: family name -> class
FAMILIES: dict[str, type] = {
    cls.name: cls
    for cls in (
        BernoulliUniform,
        BernoulliGap,
        Gaussian,
        DependentTwoArm,
        OneGoodArmZipf,
        LatentLinear,
        ResampledEachPull,
    )
}


def _build(cls: type, n_arms: int, kwargs: dict[str, Any]) -> TaskFamily:
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_arms")]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"{cls.name}: unknown parameter(s) {unknown}; valid: {allowed or 'none'}")
    return cls(n_arms, **kwargs)


def make_family(name: str, n_arms: int, **kwargs: Any) -> TaskFamily:
    """Build the family ``name`` with ``n_arms`` arms and its parameters ``kwargs``.

    ``resampled_each_pull`` takes ``base`` (a family name, default ``"bernoulli_uniform"``) and passes the other
    ``kwargs`` to the base. Raises ``KeyError`` (listing the valid names) for an unknown name and ``ValueError`` for
    bad parameters (n_arms < 2, delta outside (0, 1], an unknown parameter name, ...).
    """
    if name not in FAMILIES:
        raise KeyError(f"unknown bandit family {name!r}; valid names: {', '.join(FAMILIES)}")
    if name == ResampledEachPull.name:
        base = kwargs.pop("base", BernoulliUniform.name)
        if base not in FAMILIES or base == ResampledEachPull.name:
            raise ValueError(f"resampled_each_pull: base must be one of the other families, got {base!r}")
        return ResampledEachPull(_build(FAMILIES[base], n_arms, kwargs))
    return _build(FAMILIES[name], n_arms, kwargs)
