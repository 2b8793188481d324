"""The bonus contract: `Transitions` in, raw intrinsic rewards out.

A bonus sees time-major batches `(T, N, ...)` of T steps from N parallel envs. `compute` returns the raw
intrinsic reward of every transition as a `(T, N)` float32 numpy array, `update` trains the bonus's own
models and returns float statistics. Normalisation and mixing with the extrinsic reward belong to the
agent integration (see `explore_bench.bonuses.normalization`), so every bonus is treated the same.
"""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from explore_bench.bonuses.normalization import ObservationNormalizer

ArrayLike = np.ndarray | torch.Tensor


class BonusInputError(ValueError):
    """Raised when a bonus receives input it cannot handle (wrong shape, NaN/inf, unsupported space)."""


@dataclass
class Transitions:
    """A time-major batch of transitions: every array has leading dims `(T, N)`.

    obs, next_obs: `(T, N, *obs_shape)`; actions: `(T, N)` for discrete actions, `(T, N, *act_shape)`
    otherwise; dones: `(T, N)` bool, True where the transition ended its episode (then `next_obs` is the
    true terminal observation, never the reset one). `infos` holds optional extras as arrays of leading
    dims `(T, N)`, for example `"cell"` keys for counts or group ids for LLM batches.
    """

    obs: ArrayLike
    actions: ArrayLike
    next_obs: ArrayLike
    dones: ArrayLike
    infos: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """`(T, N)`."""
        return tuple(self.dones.shape[:2])  # type: ignore[return-value]

    def __getitem__(self, index) -> "Transitions":
        """Slice along the time axis, keeping the `(T, N)` layout (`batch[t0:t1]`)."""
        if not isinstance(index, slice):
            raise TypeError("Transitions can only be sliced along time, e.g. batch[2:5]")
        return Transitions(
            self.obs[index],
            self.actions[index],
            self.next_obs[index],
            self.dones[index],
            {k: v[index] for k, v in self.infos.items()},
        )


@dataclass
class TensorBatch:
    """A validated `Transitions` as float/long torch tensors on the bonus's device (still `(T, N, ...)`)."""

    obs: torch.Tensor
    actions: torch.Tensor
    next_obs: torch.Tensor
    dones: torch.Tensor
    infos: Mapping[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.dones.shape)  # type: ignore[return-value]


def _all_finite(x: ArrayLike) -> bool:
    if isinstance(x, torch.Tensor):
        return not x.is_floating_point() or bool(torch.isfinite(x).all())
    x = np.asarray(x)
    return x.dtype.kind not in "fc" or bool(np.isfinite(x).all())


def _as_tensor(x: ArrayLike, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device)
    return torch.as_tensor(np.asarray(x), device=device)


class Bonus(abc.ABC):
    """Base class of every intrinsic-reward module.

    Subclasses implement `compute` and `update` and build their models in `__init__`. The default
    `state_dict` saves every `nn.Module`, optimiser and random generator attribute, plus the plain
    attributes named in `state_attributes` (count tables, episodic memories).

    Optional hooks the agent integration calls when a bonus overrides them:
    - `warm_up(batch)`: update observation statistics from random-action steps, without training.
    - `reset(mask)`: forget episodic state of the envs where `mask` is True (streaming bonuses also
      reset themselves from `batch.dones`).
    """

    #: registry name, set by `register_bonus`
    name: str = "bonus"
    #: "novelty" bonuses score a state seen many times lower than a new one (checked by the conformance suite)
    family: str = "novelty"
    #: spaces this bonus accepts; checked at construction
    supported_observation_spaces: tuple[type[gym.Space], ...] = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete)
    #: plain (non-torch) attributes that belong in `state_dict`
    state_attributes: tuple[str, ...] = ()

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        normalize_obs: bool = False,
    ) -> None:
        if not isinstance(observation_space, self.supported_observation_spaces):
            self._fail(
                f"an observation space of type {' or '.join(s.__name__ for s in self.supported_observation_spaces)}",
                f"{observation_space!r}",
            )
        if not isinstance(action_space, (gym.spaces.Discrete, gym.spaces.Box, gym.spaces.MultiDiscrete)):
            self._fail("a Discrete, MultiDiscrete or Box action space", f"{action_space!r}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = torch.device(device)
        self.seed = int(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        # Own generators so that a bonus is reproducible without touching global RNG state.
        self.torch_rng = torch.Generator(device="cpu").manual_seed(self.seed)
        self.np_rng = np.random.default_rng(self.seed)
        # Whitening of the inputs the bonus's networks see (RND §2.2); only Box observations are whitened.
        self.obs_normalizer = (
            ObservationNormalizer(self._obs_shape()).to(self.device)
            if normalize_obs and isinstance(observation_space, gym.spaces.Box)
            else None
        )
        # uint8 pixels that are not whitened enter the networks in [0, 1] (the ICM reference divides by 255).
        unwhitened_pixels = self.obs_normalizer is None and isinstance(observation_space, gym.spaces.Box)
        self.pixel_scale = 1.0 / 255.0 if unwhitened_pixels and observation_space.dtype == np.uint8 else 1.0

    # ----------------------------------------------------------------- contract
    @abc.abstractmethod
    def compute(self, batch: Transitions) -> np.ndarray:
        """Raw intrinsic reward of each transition, `(T, N)` float32."""

    @abc.abstractmethod
    def update(self, batch: Transitions) -> dict[str, float]:
        """Train the bonus's own models on `batch`; return float statistics such as `{"loss": ...}`."""

    def warm_up(self, batch: Transitions) -> None:
        """Update observation statistics from random-action steps (no training)."""
        self.update_obs_stats(self.prepare(batch).next_obs)

    # ----------------------------------------------------------------- helpers
    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Whiten `obs` with the running statistics (identity when `normalize_obs` is off)."""
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """What the bonus's encoders see: whitened observations, or uint8 pixels scaled to [0, 1]."""
        obs = self.normalize(obs)
        return obs * self.pixel_scale if self.pixel_scale != 1.0 else obs

    def update_obs_stats(self, obs: torch.Tensor) -> None:
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(obs.reshape(-1, *self._obs_shape()))

    def minibatches(self, size: int, epochs: int, n_minibatches: int):
        """Shuffled index tensors: `epochs` passes over `range(size)`, each split into `n_minibatches`."""
        for _ in range(epochs):
            order = torch.randperm(size, generator=self.torch_rng).to(self.device)
            yield from order.chunk(max(1, min(n_minibatches, size)))

    def fit_minibatches(
        self,
        size: int,
        losses_of: Callable[[torch.Tensor], dict[str, torch.Tensor]],
        optimizer: torch.optim.Optimizer,
        epochs: int,
        n_minibatches: int,
        max_grad_norm: float | None,
    ) -> dict[str, float]:
        """One optimiser step per minibatch of `range(size)` on `losses_of(idx)["loss"]` (gradients clipped to
        `max_grad_norm` when given); returns the mean of every reported loss term ({} when `size` is 0)."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        history: dict[str, list[float]] = {}
        for idx in self.minibatches(size, epochs, n_minibatches):
            losses = losses_of(idx)
            optimizer.zero_grad()
            losses["loss"].backward()
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            for key, value in losses.items():
                history.setdefault(key, []).append(float(value.detach()))
        return {key: float(np.mean(values)) for key, values in history.items()}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for key, value in vars(self).items():
            if isinstance(value, (nn.Module, torch.optim.Optimizer)):
                state[key] = value.state_dict()
            elif isinstance(value, torch.Generator):
                state[key] = value.get_state()
            elif isinstance(value, np.random.Generator):
                state[key] = copy.deepcopy(value.bit_generator.state)
        for key in self.state_attributes:
            state[key] = copy.deepcopy(getattr(self, key))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, value in state.items():
            current = getattr(self, key, None)
            if isinstance(current, nn.Module):
                current.load_state_dict(value)
            elif isinstance(current, torch.optim.Optimizer):
                current.load_state_dict(copy.deepcopy(value))  # never share moment tensors with the source
            elif isinstance(current, torch.Generator):
                current.set_state(value)
            elif isinstance(current, np.random.Generator):
                current.bit_generator.state = copy.deepcopy(value)
            elif key in self.state_attributes:
                setattr(self, key, copy.deepcopy(value))
            else:
                raise KeyError(f"{self.name}: unexpected key {key!r} in state_dict")

    # ------------------------------------------------------------ input checks
    def _fail(self, expected: str, got: str) -> None:
        raise BonusInputError(f"bonus '{self.name}': expected {expected}, got {got}")

    def _obs_shape(self) -> tuple[int, ...]:
        if isinstance(self.observation_space, gym.spaces.Discrete):
            return ()
        return tuple(self.observation_space.shape)

    def _action_shape(self) -> tuple[int, ...]:
        return () if isinstance(self.action_space, gym.spaces.Discrete) else tuple(self.action_space.shape)

    def validate(self, batch: Transitions) -> tuple[int, int]:
        """Check `batch` against the spaces without converting it; return `(T, N)`.

        Raises `BonusInputError` naming this bonus, what it expected and what it got.
        """
        if not isinstance(batch, Transitions):
            self._fail("a Transitions batch", type(batch).__name__)
        dones_shape = tuple(batch.dones.shape) if hasattr(batch.dones, "shape") else np.shape(batch.dones)
        if len(dones_shape) != 2:
            self._fail("dones of shape (T, N)", f"shape {dones_shape}")
        t, n = dones_shape
        obs_shape = self._obs_shape()
        for key in ("obs", "next_obs"):
            value = getattr(batch, key)
            shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
            if shape != (t, n, *obs_shape):
                self._fail(f"{key} of shape (T, N, *{obs_shape}) = {(t, n, *obs_shape)}", f"shape {shape}")
            if not _all_finite(value):
                self._fail(f"finite values in {key}", "NaN or inf")
        action_shape = tuple(batch.actions.shape) if hasattr(batch.actions, "shape") else np.shape(batch.actions)
        if action_shape != (t, n, *self._action_shape()):
            self._fail(f"actions of shape {(t, n, *self._action_shape())}", f"shape {action_shape}")
        if not _all_finite(batch.actions):
            self._fail("finite actions", "NaN or inf")
        return t, n

    def prepare(self, batch: Transitions) -> TensorBatch:
        """`validate` the batch, then convert it to torch tensors on `self.device`.

        Observations become float32, discrete actions int64 (Box actions float32), dones bool.
        """
        self.validate(batch)
        obs, next_obs = (_as_tensor(x, self.device).float() for x in (batch.obs, batch.next_obs))
        actions = _as_tensor(batch.actions, self.device)
        actions = actions.float() if isinstance(self.action_space, gym.spaces.Box) else actions.long()
        return TensorBatch(obs, actions, next_obs, _as_tensor(batch.dones, self.device).bool(), batch.infos)
